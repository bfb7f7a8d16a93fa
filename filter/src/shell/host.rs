//! The host boundary ([`Environment`], [`Host`], [`SharedData`]) over proxy-wasm, straight
//! through the ABI rather than the SDK's wrappers where it matters: header maps read and
//! written as whole buffers (one host call and one allocation each way, whatever the number of
//! headers; the SDK's map getters allocate two strings per header and panic on values that are
//! not UTF-8), and time, properties, shared data and metrics with every status handled (the
//! SDK panics on statuses it does not expect, and a panic kills the worker's VM).

use proxy_wasm::types::{LogLevel, MapType, MetricType, Status};

use crate::environment::{
    EncodedMap, Environment, GetError, GrpcCall, Host, HttpCall, SetError, SharedData,
};
use crate::logging::Level;
use crate::policy::rate_limit::RateStore;
use crate::reply::LocalResponse;
use crate::response::ResponseHeaders;

#[link(wasm_import_module = "env")]
unsafe extern "C" {
    fn proxy_get_header_map_pairs(
        map_type: MapType,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> Status;
    fn proxy_set_header_map_pairs(map_type: MapType, data: *const u8, size: usize) -> Status;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> Status;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> Status;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
        return_cas: *mut u32,
    ) -> Status;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> Status;
    fn proxy_define_metric(
        metric_type: MetricType,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> Status;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> Status;
    fn proxy_set_tick_period_milliseconds(period: u32) -> Status;
    fn proxy_continue_stream(stream_type: u32) -> Status;
    fn proxy_get_status(
        return_code: *mut u32,
        return_message_data: *mut *mut u8,
        return_message_size: *mut usize,
    ) -> Status;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> Status;
}

/// `BufferType::HttpRequestBody`, `BufferType::HttpCallResponseBody`,
/// `BufferType::GrpcReceiveBuffer`.
const HTTP_REQUEST_BODY: u32 = 0;
const HTTP_CALL_RESPONSE_BODY: u32 = 4;
const GRPC_RECEIVE_BUFFER: u32 = 5;
/// `StreamType::HttpRequest`.
const HTTP_REQUEST_STREAM: u32 = 0;

/// The first `size` bytes of a buffer Envoy holds (empty if it will not say).
fn buffer(buffer_type: u32, size: usize) -> Vec<u8> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut returned: usize = 0;
    // SAFETY: as for `header_map`.
    unsafe {
        match proxy_get_buffer_bytes(buffer_type, 0, size, &mut data, &mut returned) {
            Status::Ok => host_buffer(data, returned),
            _ => Vec::new(),
        }
    }
}

/// The first `size` bytes of the request body Envoy holds (empty if it will not say).
pub fn request_body(size: usize) -> Vec<u8> {
    buffer(HTTP_REQUEST_BODY, size)
}

/// The message of the gRPC call answer being delivered.
pub fn grpc_message(size: usize) -> Vec<u8> {
    buffer(GRPC_RECEIVE_BUFFER, size)
}

/// The status of the gRPC call that just closed: its code and message (the SDK's getter
/// panics on a refusal and on a message that is not UTF-8).
pub fn grpc_status() -> (u32, String) {
    let mut code = 0u32;
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: as for `header_map`; the host also writes one u32.
    unsafe {
        match proxy_get_status(&mut code, &mut data, &mut size) {
            Status::Ok => {
                let message = host_buffer(data, size);
                (code, String::from_utf8_lossy(&message).into_owned())
            }
            _ => (code, String::new()),
        }
    }
}

/// Takes ownership of a buffer the host allocated through this module's allocator.
///
/// # Safety
/// `data` must be null or point to `size` bytes from `proxy_on_memory_allocate` (a boxed slice
/// of exactly `size` bytes), not owned by anything else.
unsafe fn host_buffer(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() {
        Vec::new()
    } else {
        // SAFETY: per this function's contract.
        unsafe { Vec::from_raw_parts(data, size, size) }
    }
}

/// The serialised pairs of a header map (empty if the host has no such map now).
pub fn header_map(map_type: MapType) -> Vec<u8> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes a pointer to `size` bytes it allocated through this module's
    // allocator, or null.
    unsafe {
        match proxy_get_header_map_pairs(map_type, &mut data, &mut size) {
            Status::Ok => host_buffer(data, size),
            _ => Vec::new(),
        }
    }
}

/// Replaces a header map with serialised pairs; false if the host refused.
pub fn set_header_map(map_type: MapType, pairs: &[u8]) -> bool {
    // SAFETY: the host only reads `pairs.len()` bytes from the pointer during the call.
    unsafe { proxy_set_header_map_pairs(map_type, pairs.as_ptr(), pairs.len()) == Status::Ok }
}

/// The host's wall clock, nanoseconds since the Unix epoch (0 if it will not say).
pub fn now_unix_nanos() -> u64 {
    let mut now = 0u64;
    // SAFETY: the host writes one u64.
    match unsafe { proxy_get_current_time_nanoseconds(&mut now) } {
        Status::Ok => now,
        _ => 0,
    }
}

/// A property's raw value; `path` segments joined with NUL (`source\0address`).
pub fn property(path: &[u8]) -> Option<Vec<u8>> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: as for `header_map`.
    unsafe {
        match proxy_get_property(path.as_ptr(), path.len(), &mut data, &mut size) {
            Status::Ok => Some(host_buffer(data, size)),
            _ => None,
        }
    }
}

/// proxy-wasm shared data.
pub struct HostSharedData;

impl SharedData for HostSharedData {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, GetError> {
        let mut data: *mut u8 = std::ptr::null_mut();
        let mut size: usize = 0;
        let mut cas: u32 = 0;
        // SAFETY: as for `header_map`; the host also writes one u32.
        unsafe {
            match proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) {
                Status::Ok => Ok(Some((host_buffer(data, size), cas))),
                Status::NotFound => Ok(None),
                _ => Err(GetError),
            }
        }
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError> {
        // SAFETY: the host only reads the two buffers during the call.
        match unsafe {
            proxy_set_shared_data(
                key.as_ptr(),
                key.len(),
                value.as_ptr(),
                value.len(),
                cas.unwrap_or(0),
            )
        } {
            Status::Ok => Ok(()),
            Status::CasMismatch => Err(SetError::CasMismatch),
            _ => Err(SetError::Failed),
        }
    }
}

/// Defines a counter; `None` if the host refuses.
pub fn define_counter(name: &str) -> Option<u32> {
    let mut id = 0u32;
    // SAFETY: the host reads the name during the call and writes one u32.
    match unsafe { proxy_define_metric(MetricType::Counter, name.as_ptr(), name.len(), &mut id) } {
        Status::Ok => Some(id),
        _ => None,
    }
}

pub fn increment_counter(id: u32, by: u64) {
    // Counters only go up; a refused increment only loses a count.
    let _ = unsafe { proxy_increment_metric(id, i64::try_from(by).unwrap_or(i64::MAX)) };
}

/// Asks the host for a tick every `period` (the SDK's `set_tick_period` panics on a refusal);
/// false if it refuses.
pub fn set_tick_period(period: std::time::Duration) -> bool {
    let millis = u32::try_from(period.as_millis()).unwrap_or(u32::MAX);
    // SAFETY: a plain value in, a status out.
    matches!(
        unsafe { proxy_set_tick_period_milliseconds(millis) },
        Status::Ok
    )
}

/// 16 random bytes from the host (WASI `random_get`).
pub fn random_secret() -> Result<[u8; 16], String> {
    let mut secret = [0u8; 16];
    getrandom::fill(&mut secret).map_err(|e| format!("no random bytes from the host: {e}"))?;
    Ok(secret)
}

pub fn log(level: LogLevel, message: &str) {
    // Logging can only fail if the host is gone; nothing useful to do then.
    let _ = proxy_wasm::hostcalls::log(level, message);
}

/// Sends a local reply to the exchange the host has in context.
fn send(response: &LocalResponse) {
    let headers: Vec<(&str, &str)> = response
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let body = (!response.body.is_empty()).then_some(response.body.as_slice());
    if proxy_wasm::hostcalls::send_http_response(u32::from(response.status), headers, body).is_err()
    {
        log(LogLevel::Warn, "could not send a local response");
    }
}

/// The host as one exchange sees it; each call is made only when the core asks.
pub struct ExchangeHost<'m> {
    /// The exchange's context id.
    id: u32,
    /// The host's ids of the engine's counters, by index.
    metrics: &'m [Option<u32>],
}

impl<'m> ExchangeHost<'m> {
    pub fn new(id: u32, metrics: &'m [Option<u32>]) -> Self {
        Self { id, metrics }
    }
}

impl Environment for ExchangeHost<'_> {
    fn now_unix_nanos(&self) -> u64 {
        now_unix_nanos()
    }

    fn client_address(&self) -> Option<String> {
        property(b"source\0address").and_then(|bytes| String::from_utf8(bytes).ok())
    }

    fn rate_store(&self) -> &dyn RateStore {
        &HostSharedData
    }

    fn increment(&self, metric: usize, by: u64) {
        if let Some(Some(id)) = self.metrics.get(metric) {
            increment_counter(*id, by);
        }
    }

    fn log(&self, level: Level, line: &str) {
        let level = match level {
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        log(level, line);
    }
}

impl Host for ExchangeHost<'_> {
    type Map = EncodedMap;

    fn request_headers(&self) -> EncodedMap {
        EncodedMap(header_map(MapType::HttpRequestHeaders))
    }

    fn response_headers(&self) -> EncodedMap {
        EncodedMap(header_map(MapType::HttpResponseHeaders))
    }

    fn set_response_headers(&self, headers: &ResponseHeaders<'_>) {
        if !set_header_map(MapType::HttpResponseHeaders, &headers.encode()) {
            log(LogLevel::Warn, "could not write the response headers");
        }
    }

    fn request_body(&self, size: usize) -> Vec<u8> {
        request_body(size)
    }

    fn send_reply(&self, reply: &LocalResponse) {
        send(reply);
    }

    fn send_reply_to(&self, exchanges: &[u32], reply: &LocalResponse) {
        // Envoy no longer knows the ids of exchanges that ended: those are skipped.
        for exchange in exchanges {
            if proxy_wasm::hostcalls::set_effective_context(*exchange).is_ok() {
                send(reply);
            }
        }
        // Back to this exchange for whatever the host does next.
        let _ = proxy_wasm::hostcalls::set_effective_context(self.id);
    }

    fn dispatch_http_call(&self, call: &HttpCall<'_>) -> Option<u32> {
        let headers: Vec<(&str, &str)> = call
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        // Through the SDK, which routes the answer back to this context.
        proxy_wasm::hostcalls::dispatch_http_call(call.cluster, headers, None, vec![], call.timeout)
            .ok()
    }

    fn http_call_response_headers(&self) -> EncodedMap {
        EncodedMap(header_map(MapType::HttpCallResponseHeaders))
    }

    fn http_call_response_body(&self) -> Vec<u8> {
        buffer(HTTP_CALL_RESPONSE_BODY, usize::MAX)
    }

    fn dispatch_grpc_call(&self, call: &GrpcCall<'_>) -> Option<u32> {
        // Through the SDK, which routes the answer back to this context. It panics on
        // statuses other than OK, ParseFailure (an unknown cluster) and InternalFailure: the
        // config refuses the cluster names that would make Envoy answer BadArgument.
        proxy_wasm::hostcalls::dispatch_grpc_call(
            call.cluster,
            call.service,
            call.method,
            vec![],
            Some(call.message),
            call.timeout,
        )
        .ok()
    }

    fn resume_request(&self) {
        // SAFETY: a plain value in, a status out (the SDK's wrapper panics on a refusal).
        if unsafe { proxy_continue_stream(HTTP_REQUEST_STREAM) } != Status::Ok {
            log(LogLevel::Warn, "could not resume a request");
        }
    }
}
