//! The host boundary ([`Environment`], [`Host`]) over Envoy's dynamic-module callbacks, for
//! one stream: direct calls into Envoy, no copies of header maps (their pairs are borrowed from
//! Envoy's memory for the hook), time from the process clock, rate-limit state in the
//! process's atomic tables.
//!
//! Local replies are kept, not sent: Envoy does not pass a filter's own local reply back
//! through that filter's response callbacks (proxy-wasm does), so the shell first lets the
//! exchange edit a reply made in the request phase (`Exchange::edit_own_reply`), then sends it
//! ([`Outgoing`]).

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use super::abi::{self, Buffer, FilterEnvoy, Header};
use crate::environment::{Environment, GrpcCall, HeaderMap, Host, HttpCall};
use crate::logging::Level;
use crate::policy::rate_limit::{RateStore, rls};
use crate::reply::LocalResponse;
use crate::response::ResponseHeaders;

/// What the filter configuration gives every stream's host.
pub struct Shared<'c> {
    pub store: &'c dyn RateStore,
    /// Envoy's ids of the engine's counters, by index.
    pub counters: &'c [Option<usize>],
}

/// A reply the core asked for, sent by the shell once the core returns.
pub enum Outgoing {
    /// To this stream.
    Own(LocalResponse),
    /// To other streams of this worker that waited for this one (by exchange id).
    To(Vec<u32>, LocalResponse),
    /// Let this stream's stopped request go on.
    Resume,
}

/// The host as one stream sees it during one hook.
pub struct StreamHost<'c> {
    filter: FilterEnvoy,
    shared: Shared<'c>,
    /// The response headers as read, to write back only the names whose values changed.
    response_read: RefCell<Vec<Header>>,
    /// The headers and body of the HTTP call answer being delivered.
    callout_headers: Vec<Header>,
    callout_body: Vec<u8>,
    outgoing: RefCell<Vec<Outgoing>>,
}

impl<'c> StreamHost<'c> {
    pub fn new(filter: FilterEnvoy, shared: Shared<'c>) -> Self {
        Self {
            filter,
            shared,
            response_read: RefCell::new(Vec::new()),
            callout_headers: Vec::new(),
            callout_body: Vec::new(),
            outgoing: RefCell::new(Vec::new()),
        }
    }

    /// The host of an HTTP call's answer, with its headers and body.
    pub fn with_callout(mut self, headers: Vec<Header>, body: Vec<u8>) -> Self {
        self.callout_headers = headers;
        self.callout_body = body;
        self
    }

    /// The replies the core asked for, in order.
    pub fn take_outgoing(&self) -> Vec<Outgoing> {
        std::mem::take(&mut *self.outgoing.borrow_mut())
    }
}

/// Sends a local reply on a stream (Envoy adds `content-length`).
pub fn send(filter: FilterEnvoy, reply: &LocalResponse) {
    let mut headers: Vec<Header> = reply
        .headers
        .iter()
        .map(|(k, v)| Header::of(k.as_bytes(), v.as_bytes()))
        .collect();
    // SAFETY: `filter` is a live stream of this worker (the caller's contract); Envoy copies
    // the headers and the body during the call.
    unsafe {
        abi::envoy_dynamic_module_callback_http_send_response(
            filter,
            u32::from(reply.status),
            headers.as_mut_ptr(),
            headers.len(),
            Buffer::of(&reply.body),
            Buffer::of(b"hardening"),
        );
    }
}

/// Writes a line to Envoy's log (`dynamic_modules` logger).
pub fn log(level: u32, line: &str) {
    // SAFETY: Envoy reads the line during the call.
    unsafe { abi::envoy_dynamic_module_callback_log(level, Buffer::of(line.as_bytes())) }
}

/// Every header of a map, borrowed from Envoy's memory (valid until the hook returns).
fn headers(filter: FilterEnvoy, header_type: u32) -> Vec<Header> {
    // SAFETY: `filter` is the live stream of this hook; Envoy writes `size` entries.
    unsafe {
        let size = abi::envoy_dynamic_module_callback_http_get_headers_size(filter, header_type);
        let mut out = vec![Header::EMPTY; size];
        if size == 0
            || !abi::envoy_dynamic_module_callback_http_get_headers(
                filter,
                header_type,
                out.as_mut_ptr(),
            )
        {
            return Vec::new();
        }
        out
    }
}

/// A header map as Envoy lends it for one hook.
pub struct NativeMap(Vec<Header>);

impl HeaderMap for NativeMap {
    fn pairs(&self) -> Vec<(&[u8], &[u8])> {
        pairs_of(&self.0)
    }
}

/// The pairs of headers Envoy lent, borrowed from its memory.
fn pairs_of(headers: &[Header]) -> Vec<(&[u8], &[u8])> {
    headers
        .iter()
        .map(|h| {
            // SAFETY: Envoy's header memory stays valid until the hook returns, and headers are
            // never kept past their hook.
            unsafe {
                (
                    Buffer {
                        ptr: h.key_ptr,
                        len: h.key_len,
                    }
                    .bytes(),
                    Buffer {
                        ptr: h.value_ptr,
                        len: h.value_len,
                    }
                    .bytes(),
                )
            }
        })
        .collect()
}

/// The wall clock, nanoseconds since the Unix epoch.
pub fn now_unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Environment for StreamHost<'_> {
    fn now_unix_nanos(&self) -> u64 {
        now_unix_nanos()
    }

    fn client_address(&self) -> Option<String> {
        let mut address = Buffer::EMPTY;
        // SAFETY: Envoy points `address` at its own string, valid during this hook.
        unsafe {
            if !abi::envoy_dynamic_module_callback_http_filter_get_attribute_string(
                self.filter,
                abi::SOURCE_ADDRESS,
                &mut address,
            ) {
                return None;
            }
            std::str::from_utf8(address.bytes())
                .ok()
                .map(str::to_string)
        }
    }

    fn rate_store(&self) -> &dyn RateStore {
        self.shared.store
    }

    fn increment(&self, metric: usize, by: u64) {
        if let Some(Some(id)) = self.shared.counters.get(metric) {
            // SAFETY: a live stream; no labels. A refused increment only loses a count.
            unsafe {
                abi::envoy_dynamic_module_callback_http_filter_increment_counter(
                    self.filter,
                    *id,
                    std::ptr::null_mut(),
                    0,
                    by,
                );
            }
        }
    }

    fn log(&self, level: Level, line: &str) {
        log(log_level(level), line);
    }
}

pub fn log_level(level: Level) -> u32 {
    match level {
        Level::Debug => abi::LOG_DEBUG,
        Level::Info => abi::LOG_INFO,
        Level::Warn => abi::LOG_WARN,
        Level::Error => abi::LOG_ERROR,
    }
}

impl Host for StreamHost<'_> {
    type Map = NativeMap;

    fn request_headers(&self) -> NativeMap {
        NativeMap(headers(self.filter, abi::REQUEST_HEADERS))
    }

    fn response_headers(&self) -> NativeMap {
        let read = headers(self.filter, abi::RESPONSE_HEADERS);
        self.response_read.borrow_mut().clone_from(&read);
        NativeMap(read)
    }

    fn set_response_headers(&self, edited: &ResponseHeaders<'_>) {
        let read = self.response_read.borrow();
        super::headers_diff::write(self.filter, &pairs_of(&read), edited.pairs());
    }

    fn request_body(&self, size: usize) -> Vec<u8> {
        let mut body = Vec::with_capacity(size);
        // What Envoy buffered for this filter, then this callback's chunk (unless the chunk is
        // that buffer, handed on by an earlier filter that held the body).
        append_body(self.filter, abi::BUFFERED_REQUEST_BODY, &mut body);
        if !received_is_buffered(self.filter) {
            append_body(self.filter, abi::RECEIVED_REQUEST_BODY, &mut body);
        }
        body.truncate(size);
        body
    }

    fn send_reply(&self, reply: &LocalResponse) {
        self.outgoing
            .borrow_mut()
            .push(Outgoing::Own(reply.clone()));
    }

    fn send_reply_to(&self, exchanges: &[u32], reply: &LocalResponse) {
        self.outgoing
            .borrow_mut()
            .push(Outgoing::To(exchanges.to_vec(), reply.clone()));
    }

    fn dispatch_http_call(&self, call: &HttpCall<'_>) -> Option<u32> {
        let timeout = u64::try_from(call.timeout.as_millis()).unwrap_or(u64::MAX);
        callout(self.filter, call.cluster, call.headers, &[], timeout)
    }

    fn http_call_response_headers(&self) -> NativeMap {
        NativeMap(self.callout_headers.clone())
    }

    fn http_call_response_body(&self) -> Vec<u8> {
        self.callout_body.clone()
    }

    /// Envoy 1.40's dynamic modules have no gRPC calls: a unary call is an HTTP/2 callout
    /// with gRPC's headers and framing, its answer read back by the exchange.
    fn dispatch_grpc_call(&self, call: &GrpcCall<'_>) -> Option<u32> {
        let timeout = u64::try_from(call.timeout.as_millis()).unwrap_or(u64::MAX);
        let headers = rls::grpc_headers(call.cluster, timeout);
        let body = rls::grpc_frame(call.message)?;
        callout(self.filter, call.cluster, &headers, &body, timeout)
    }

    fn resume_request(&self) {
        self.outgoing.borrow_mut().push(Outgoing::Resume);
    }
}

/// Starts an HTTP callout; its id, or `None` if Envoy refused it (an unknown cluster).
fn callout(
    filter: FilterEnvoy,
    cluster: &str,
    headers: &[(String, String)],
    body: &[u8],
    timeout_ms: u64,
) -> Option<u32> {
    let mut headers: Vec<Header> = headers
        .iter()
        .map(|(k, v)| Header::of(k.as_bytes(), v.as_bytes()))
        .collect();
    let mut id = 0u64;
    // SAFETY: a live stream; Envoy copies the cluster name, headers and body during the call.
    let started = unsafe {
        abi::envoy_dynamic_module_callback_http_filter_http_callout(
            filter,
            &mut id,
            Buffer::of(cluster.as_bytes()),
            headers.as_mut_ptr(),
            headers.len(),
            Buffer::of(body),
            timeout_ms,
        )
    };
    if started == abi::CALLOUT_SUCCESS {
        u32::try_from(id).ok()
    } else {
        None
    }
}

/// Lets the stream's stopped request go on.
pub fn continue_decoding(filter: FilterEnvoy) {
    // SAFETY: a live stream, on its worker, with no hook's borrow of it left (see `send_all`).
    unsafe { abi::envoy_dynamic_module_callback_http_filter_continue_decoding(filter) }
}

/// Appends a body buffer's chunks (borrowed from Envoy for the hook) to `out`.
fn append_body(filter: FilterEnvoy, body_type: u32, out: &mut Vec<u8>) {
    // SAFETY: a live stream; Envoy writes `count` buffers that stay valid during the hook.
    unsafe {
        if abi::envoy_dynamic_module_callback_http_get_body_size(filter, body_type) == 0 {
            return;
        }
        let count = abi::envoy_dynamic_module_callback_http_get_body_chunks_size(filter, body_type);
        let mut chunks = vec![Buffer::EMPTY; count];
        if abi::envoy_dynamic_module_callback_http_get_body_chunks(
            filter,
            body_type,
            chunks.as_mut_ptr(),
        ) {
            for chunk in chunks {
                out.extend_from_slice(chunk.bytes());
            }
        }
    }
}

/// Whether this callback's chunk is the body an earlier filter buffered and now lets go
/// (Envoy then hands over its buffer itself).
fn received_is_buffered(filter: FilterEnvoy) -> bool {
    // SAFETY: a live stream in its body callback; a plain value out.
    unsafe { abi::envoy_dynamic_module_callback_http_received_buffered_request_body(filter) }
}

/// The request body as the core counts it: this callback's chunk, plus what Envoy buffered
/// when this filter holds the body; only the buffer when the chunk is an earlier filter's
/// buffer.
pub fn request_body_size(filter: FilterEnvoy, held: bool) -> usize {
    let size = |body_type| {
        // SAFETY: a live stream; a plain value out.
        unsafe { abi::envoy_dynamic_module_callback_http_get_body_size(filter, body_type) }
    };
    if received_is_buffered(filter) {
        size(abi::BUFFERED_REQUEST_BODY)
    } else if held {
        size(abi::RECEIVED_REQUEST_BODY).saturating_add(size(abi::BUFFERED_REQUEST_BODY))
    } else {
        size(abi::RECEIVED_REQUEST_BODY)
    }
}
