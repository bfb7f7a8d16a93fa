//! What the engine decides, and what it keeps of an exchange between its phases.

use std::sync::Arc;

use crate::policy::PolicySet;
use crate::policy::cors;
use crate::policy::rate_limit::{RateHeaders, ServiceQuery};
use crate::policy::validate::BodyPlan;
use crate::reply::LocalResponse;

/// What the engine decided about a request, kept for its body and its response.
#[derive(Debug, Clone)]
pub struct ExchangeState {
    pub policies: Arc<PolicySet>,
    pub cors: Option<cors::Verdict>,
    pub rate_limit: Option<RateHeaders>,
    /// The question for the rate limit service, until its answer (global limits).
    pub query: Option<ServiceQuery>,
    /// The matched route's index, for counters and logs.
    pub(super) route: Option<usize>,
    /// What validation does with the body, and how much of it has arrived.
    pub(super) body: BodyPlan,
    pub(super) received: u64,
    /// The filter answered this request itself (its own reply is not an upstream error).
    pub(super) answered: bool,
    /// What a later phase (body, response) says of the request: kept only for the policies
    /// that act then (validation, error replacement).
    pub(super) request: Kept,
    /// The included request headers, for a later phase's log lines.
    pub(super) log_headers: Option<serde_json::Value>,
}

/// The request's id, method and path without query, in one buffer: one allocation per
/// request instead of three.
#[derive(Debug, Clone, Default)]
pub(super) struct Kept {
    text: String,
    /// Where the id ends (`None`: the request had none), where the method ends.
    id_end: Option<usize>,
    method_end: usize,
}

impl Kept {
    pub(super) fn new(request_id: Option<&str>, method: &str, path: &str) -> Self {
        let size = request_id.map_or(0, str::len) + method.len() + path.len();
        let mut text = String::with_capacity(size);
        let id_end = request_id.map(|id| {
            text.push_str(id);
            text.len()
        });
        text.push_str(method);
        let method_end = text.len();
        text.push_str(path);
        Self {
            text,
            id_end,
            method_end,
        }
    }

    /// The request id Envoy assigned (`x-request-id`).
    pub(super) fn request_id(&self) -> Option<&str> {
        self.text.get(..self.id_end?)
    }

    pub(super) fn method(&self) -> &str {
        let start = self.id_end.unwrap_or(0);
        self.text.get(start..self.method_end).unwrap_or_default()
    }

    /// Without its query string.
    pub(super) fn path(&self) -> &str {
        self.text.get(self.method_end..).unwrap_or_default()
    }
}

impl ExchangeState {
    /// Whether the filter has answered the request itself (nothing else may answer it).
    pub fn answered(&self) -> bool {
        self.answered
    }

    pub(super) fn new(policies: Arc<PolicySet>, route: Option<usize>) -> Self {
        Self {
            policies,
            cors: None,
            rate_limit: None,
            query: None,
            route,
            body: BodyPlan::None,
            received: 0,
            answered: false,
            request: Kept::default(),
            log_headers: None,
        }
    }
}

/// What the exchange does with the request now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestDecision {
    /// Let it through to the upstream.
    Continue,
    /// Keep the whole request, headers included, from the upstream until its body has been
    /// checked (`Flow::HoldHeaders`: a proxy-wasm shell cannot stop the headers itself, and
    /// Envoy's buffer filter after it holds them); the body comes to this filter and is held
    /// while `on_request_body` says `Pause`, and `on_request_body` decides.
    Hold,
    /// Answer it (the response still passes through `on_response_headers`).
    Respond(LocalResponse),
    /// The health endpoint: answer from the cache, or run the checks and call `health_report`.
    CheckHealth,
    /// Ask the rate limit service `ExchangeState::query` and wait for its answer
    /// (`on_service_answer`). `hold`: the body is to be checked meanwhile (as for `Hold`);
    /// otherwise the whole request waits, body included.
    AskService { hold: bool },
}

/// What the exchange does with a chunk of request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyStep {
    /// Pass it on.
    Continue,
    /// Hold it (Envoy buffers) until more arrives.
    Pause,
    /// The whole body is here: read these many bytes of it and call
    /// `on_request_body_complete`.
    Check {
        size: usize,
    },
    Respond(LocalResponse),
}

/// What the exchange does with the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseDecision {
    /// Write back the edited headers (if they changed) and let it through.
    Continue,
    /// Answer with this instead (the upstream's body is never forwarded).
    Replace(LocalResponse),
}
