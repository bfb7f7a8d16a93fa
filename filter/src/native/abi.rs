//! The part of Envoy's dynamic-module C ABI (`v0.2.0`, Envoy 1.40) the native shell uses:
//! types and the callbacks Envoy exports. Written from Envoy's
//! `source/extensions/dynamic_modules/abi/abi.h` and checked against the 1.40 binary, which
//! exports every `envoy_dynamic_module_callback_*` below (`nm -D`); where the published header
//! is newer than 1.40, the 1.40 signature was read from the binary (the number of argument
//! registers a callback uses) and proven by the real-Envoy tests.

use std::ffi::c_void;

/// `{const char* ptr; size_t length}`, passed by value: bytes Envoy or the module owns.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Buffer {
    pub ptr: *const u8,
    pub len: usize,
}

impl Buffer {
    pub const EMPTY: Self = Self {
        ptr: std::ptr::null(),
        len: 0,
    };

    pub fn of(bytes: &[u8]) -> Self {
        Self {
            ptr: bytes.as_ptr(),
            len: bytes.len(),
        }
    }

    /// The bytes, borrowed.
    ///
    /// # Safety
    /// `ptr` must be null or point to `len` readable bytes that outlive `'a`.
    pub unsafe fn bytes<'a>(self) -> &'a [u8] {
        if self.ptr.is_null() || self.len == 0 {
            &[]
        } else {
            // SAFETY: per this function's contract.
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
        }
    }
}

/// A header (`envoy_dynamic_module_type_envoy_http_header`, and the module's own
/// `..._module_http_header`, laid out alike).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Header {
    pub key_ptr: *const u8,
    pub key_len: usize,
    pub value_ptr: *const u8,
    pub value_len: usize,
}

impl Header {
    pub const EMPTY: Self = Self {
        key_ptr: std::ptr::null(),
        key_len: 0,
        value_ptr: std::ptr::null(),
        value_len: 0,
    };

    pub fn of(key: &[u8], value: &[u8]) -> Self {
        Self {
            key_ptr: key.as_ptr(),
            key_len: key.len(),
            value_ptr: value.as_ptr(),
            value_len: value.len(),
        }
    }
}

/// The stream's filter in Envoy (`envoy_dynamic_module_type_http_filter_envoy_ptr`).
pub type FilterEnvoy = *mut c_void;
/// The filter configuration in Envoy (`..._http_filter_config_envoy_ptr`).
pub type ConfigEnvoy = *mut c_void;

/// `envoy_dynamic_module_type_http_header_type`.
pub const REQUEST_HEADERS: u32 = 0;
pub const RESPONSE_HEADERS: u32 = 2;
/// `envoy_dynamic_module_type_http_body_type`: the chunk of this callback, and what Envoy
/// buffered for this filter before it.
pub const RECEIVED_REQUEST_BODY: u32 = 0;
pub const BUFFERED_REQUEST_BODY: u32 = 1;
/// `envoy_dynamic_module_type_attribute_id_SourceAddress`: `source.address`, the downstream
/// address the connection manager settled on (the Wasm build's `source.address`).
pub const SOURCE_ADDRESS: u32 = 24;

/// `..._on_http_filter_request_headers_status` (and the response's).
pub const HEADERS_CONTINUE: u32 = 0;
pub const HEADERS_STOP_ITERATION: u32 = 1;
pub const HEADERS_STOP_ALL_ITERATION_AND_BUFFER: u32 = 3;
/// `..._on_http_filter_request_body_status`.
pub const BODY_CONTINUE: u32 = 0;
pub const BODY_STOP_ITERATION_AND_BUFFER: u32 = 1;
/// `..._on_http_filter_request_trailers_status`.
pub const TRAILERS_CONTINUE: u32 = 0;
pub const TRAILERS_STOP_ITERATION: u32 = 1;
/// `..._http_callout_init_result_Success`.
pub const CALLOUT_SUCCESS: u32 = 0;
/// `..._http_callout_result_Success`: the answer arrived (a reset arrives otherwise).
pub const CALLOUT_RESULT_SUCCESS: u32 = 0;
/// `..._metrics_result_Success`.
pub const METRICS_SUCCESS: u32 = 0;

/// `envoy_dynamic_module_type_log_level`.
pub const LOG_DEBUG: u32 = 1;
pub const LOG_INFO: u32 = 2;
pub const LOG_WARN: u32 = 3;
pub const LOG_ERROR: u32 = 4;

unsafe extern "C" {
    pub fn envoy_dynamic_module_callback_log(level: u32, message: Buffer);

    pub fn envoy_dynamic_module_callback_http_filter_config_define_counter(
        config: ConfigEnvoy,
        name: Buffer,
        label_names: *mut Buffer,
        label_names_len: usize,
        counter_id: *mut usize,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_increment_counter(
        filter: FilterEnvoy,
        id: usize,
        label_values: *mut Buffer,
        label_values_len: usize,
        value: u64,
    ) -> u32;

    pub fn envoy_dynamic_module_callback_http_get_headers_size(
        filter: FilterEnvoy,
        header_type: u32,
    ) -> usize;
    pub fn envoy_dynamic_module_callback_http_get_headers(
        filter: FilterEnvoy,
        header_type: u32,
        result: *mut Header,
    ) -> bool;
    /// Replaces every value of `key` with `value`; an empty value removes the header.
    pub fn envoy_dynamic_module_callback_http_set_header(
        filter: FilterEnvoy,
        header_type: u32,
        key: Buffer,
        value: Buffer,
    ) -> bool;
    /// Adds a value (an empty one is refused).
    pub fn envoy_dynamic_module_callback_http_add_header(
        filter: FilterEnvoy,
        header_type: u32,
        key: Buffer,
        value: Buffer,
    ) -> bool;

    pub fn envoy_dynamic_module_callback_http_get_body_chunks_size(
        filter: FilterEnvoy,
        body_type: u32,
    ) -> usize;
    pub fn envoy_dynamic_module_callback_http_get_body_chunks(
        filter: FilterEnvoy,
        body_type: u32,
        result: *mut Buffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_get_body_size(
        filter: FilterEnvoy,
        body_type: u32,
    ) -> usize;

    /// Whether this body callback's chunk is the buffer an earlier filter held and let go.
    pub fn envoy_dynamic_module_callback_http_received_buffered_request_body(
        filter: FilterEnvoy,
    ) -> bool;

    pub fn envoy_dynamic_module_callback_http_send_response(
        filter: FilterEnvoy,
        status: u32,
        headers: *mut Header,
        headers_len: usize,
        body: Buffer,
        details: Buffer,
    );

    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_string(
        filter: FilterEnvoy,
        attribute: u32,
        result: *mut Buffer,
    ) -> bool;

    /// Lets a request this filter stopped go on (Envoy's `continueDecoding`).
    pub fn envoy_dynamic_module_callback_http_filter_continue_decoding(filter: FilterEnvoy);

    pub fn envoy_dynamic_module_callback_http_filter_http_callout(
        filter: FilterEnvoy,
        callout_id: *mut u64,
        cluster: Buffer,
        headers: *mut Header,
        headers_len: usize,
        body: Buffer,
        timeout_ms: u64,
    ) -> u32;
}
