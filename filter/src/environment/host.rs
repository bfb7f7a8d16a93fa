//! What driving one exchange needs from the host besides the [`Environment`]: header maps,
//! the body, local replies and HTTP calls. The core calls each method at most as often as the
//! decision needs it (a header map is read only when a policy reads it, written back only when
//! an edit changed it), so a shell's cost per request is the core's, not the shell's.
//!
//! No timers: the only things the core waits for are calls, and the host times those out
//! itself ([`HttpCall::timeout`], [`GrpcCall::timeout`]; Envoy then answers an HTTP call with
//! its own 504 and closes a gRPC call with DEADLINE_EXCEEDED).

use std::time::Duration;

use super::Environment;
use crate::reply::LocalResponse;
use crate::response::ResponseHeaders;

/// A header map as the host hands it over, read whole: whatever holds its bytes, with its
/// pairs borrowed from them.
pub trait HeaderMap {
    /// The pairs in order, names lowercase; empty if the host had none or sent garbled ones.
    fn pairs(&self) -> Vec<(&[u8], &[u8])>;
}

/// A header map in the proxy-wasm ABI's encoding ([`crate::pairs`]), read in place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncodedMap(pub Vec<u8>);

impl HeaderMap for EncodedMap {
    fn pairs(&self) -> Vec<(&[u8], &[u8])> {
        crate::pairs::decode(&self.0).unwrap_or_default()
    }
}

/// An HTTP call to a cluster (a health check).
#[derive(Debug, Clone, Copy)]
pub struct HttpCall<'a> {
    pub cluster: &'a str,
    /// Pseudo-headers (`:method`, `:path`, `:authority`) first.
    pub headers: &'a [(String, String)],
    /// When the host gives up on the call and answers it itself.
    pub timeout: Duration,
}

/// A unary gRPC call to a cluster (the rate limit service's `ShouldRateLimit`).
#[derive(Debug, Clone, Copy)]
pub struct GrpcCall<'a> {
    pub cluster: &'a str,
    /// `package.Service`.
    pub service: &'a str,
    pub method: &'a str,
    /// The request message, serialised (not framed).
    pub message: &'a [u8],
    pub timeout: Duration,
}

/// One exchange's host. Failures the core cannot act on (a refused header write or reply)
/// are the shell's to log.
pub trait Host: Environment {
    type Map: HeaderMap;

    /// The request's headers, in one call.
    fn request_headers(&self) -> Self::Map;
    /// The response's headers, in one call.
    fn response_headers(&self) -> Self::Map;
    /// Replaces the response's headers with these, in one call.
    fn set_response_headers(&self, headers: &ResponseHeaders<'_>);
    /// The first `size` bytes of the request body the host holds (empty if it will not say).
    fn request_body(&self, size: usize) -> Vec<u8>;
    /// Answers this exchange. Sent while the request is decoded, Envoy passes it back through
    /// the filter's response callbacks, where the response policies apply to it.
    fn send_reply(&self, reply: &LocalResponse);
    /// Answers other exchanges of this VM (by the ids the core was given) with one reply;
    /// those that ended meanwhile are skipped.
    fn send_reply_to(&self, exchanges: &[u32], reply: &LocalResponse);
    /// Starts an HTTP call, whose answer comes back to this exchange with the token returned;
    /// `None` if the host could not start it (an unknown cluster).
    fn dispatch_http_call(&self, call: &HttpCall<'_>) -> Option<u32>;
    /// The headers of the HTTP call answer being delivered.
    fn http_call_response_headers(&self) -> Self::Map;
    /// The body of the HTTP call answer being delivered (empty if none).
    fn http_call_response_body(&self) -> Vec<u8>;
    /// Starts a unary gRPC call whose answer comes back to this exchange with the token
    /// returned: through `Exchange::on_grpc_call_response`, or, from a host that carries it
    /// as an HTTP/2 call (Envoy's dynamic modules), as that call's answer
    /// (`Exchange::on_http_call_response`). `None` if the host could not start it.
    fn dispatch_grpc_call(&self, call: &GrpcCall<'_>) -> Option<u32>;
    /// Lets a request this filter stopped go on (after an answer it waited for).
    fn resume_request(&self);
}
