//! `dispatch_http_call`: what the filter asked for, and how the test's responder answers.

use std::time::Duration;

use crate::message::Response;

/// An HTTP call the filter dispatched to an Envoy cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpCall {
    pub cluster: String,
    /// All headers, pseudo-headers (`:method`, `:path`, `:authority`) included.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout: Option<Duration>,
}

impl HttpCall {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How the (emulated) cluster answers a call.
#[derive(Debug, Clone)]
pub enum CallOutcome {
    /// Answer after this much (controlled) time.
    Respond { after: Duration, response: Response },
    /// The stream is reset after this much time: the filter sees no headers and status
    /// BrokenConnection.
    Reset { after: Duration },
    /// Never answer: the call's timeout fires (Envoy then delivers a 504 response).
    NoAnswer,
}

impl CallOutcome {
    pub fn now(response: Response) -> Self {
        Self::Respond {
            after: Duration::ZERO,
            response,
        }
    }
}

pub type Responder = dyn Fn(&HttpCall) -> CallOutcome + Send + Sync;

/// A dispatched call waiting for its answer.
#[derive(Debug, Clone)]
pub struct PendingCall {
    pub token: u32,
    /// The context that dispatched it (Envoy cancels a context's calls when it is deleted).
    pub context: u32,
    /// Monotonic nanoseconds when the answer (or the timeout) is delivered; `None`: never.
    pub due_at: Option<u64>,
    /// `None`: a reset.
    pub answer: Option<Response>,
}

/// Envoy answers a timed-out call itself: a router local reply inside its async client.
pub fn timeout_response() -> Response {
    Response::with_status(504)
        .header("content-type", "text/plain")
        .body("upstream request timeout")
}

/// The answer for a call to a cluster without healthy hosts, as Envoy gives it.
pub fn no_healthy_upstream() -> Response {
    Response::with_status(503)
        .header("content-type", "text/plain")
        .body("no healthy upstream")
}
