//! The per-request decisions: which policies apply to a request, what they decide about it,
//! and what they do to its response. Pure: the shell gives it views of the request and
//! response and carries out what it decides.

use std::sync::Arc;

use crate::config::{Config, PolicySet};
use crate::policy::cors;
use crate::reply::LocalResponse;
use crate::request::{Headers, RequestHead};
use crate::response::ResponseHeaders;
use crate::routes::Route;

/// The compiled config plus the decisions made from it.
#[derive(Debug)]
pub struct Engine {
    config: Config,
    reads_request_headers: bool,
}

/// What the engine decided about a request, kept for its response.
#[derive(Debug, Clone)]
pub struct ExchangeState {
    pub policies: Arc<PolicySet>,
    pub cors: Option<cors::Verdict>,
}

/// What the shell does with the request now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestDecision {
    /// Let it through to the upstream.
    Continue,
    /// Answer it (the response still passes through `on_response_headers`).
    Respond(LocalResponse),
}

impl Engine {
    pub fn new(config: Config) -> Self {
        let reads_request_headers = !config.routes.is_empty()
            || config.defaults.reads_request_headers()
            || config
                .routes
                .iter()
                .any(|r| r.policies.reads_request_headers());
        Self {
            config,
            reads_request_headers,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether any decision needs the request's headers; if not, the shell reads nothing and
    /// passes `None`.
    pub fn reads_request_headers(&self) -> bool {
        self.reads_request_headers
    }

    /// The route a request belongs to, if any.
    pub fn route_for(&self, request: &RequestHead<'_, '_>) -> Option<&Route> {
        self.config.routes.find(request.method, request.path)
    }

    /// The policies for a request: its route's, or the defaults.
    pub fn policies_for(&self, request: &RequestHead<'_, '_>) -> Arc<PolicySet> {
        self.route_for(request).map_or_else(
            || Arc::clone(&self.config.defaults),
            |route| Arc::clone(&route.policies),
        )
    }

    /// Decides about a request from its headers (`None` when `reads_request_headers` is false).
    pub fn on_request_headers(
        &self,
        headers: Option<&Headers<'_>>,
    ) -> (ExchangeState, RequestDecision) {
        let Some(headers) = headers else {
            let state = ExchangeState {
                policies: Arc::clone(&self.config.defaults),
                cors: None,
            };
            return (state, RequestDecision::Continue);
        };
        let head = RequestHead::from_headers(headers);
        let policies = self.policies_for(&head);
        let mut state = ExchangeState {
            policies: Arc::clone(&policies),
            cors: None,
        };
        if let Some(cors) = &policies.cors {
            let (verdict, action) = cors.on_request(&head);
            state.cors = Some(verdict);
            if let cors::Action::Respond(answer) = action {
                return (state, RequestDecision::Respond(answer));
            }
        }
        (state, RequestDecision::Continue)
    }

    /// Edits a response (from the upstream, from Envoy, or the filter's own) on its way out.
    pub fn on_response_headers<'a>(
        &self,
        state: &'a ExchangeState,
        headers: &mut ResponseHeaders<'a>,
    ) {
        if let (Some(cors), Some(verdict)) = (&state.policies.cors, &state.cors) {
            cors.on_response(verdict, headers);
        }
        if let Some(security_headers) = &state.policies.security_headers {
            security_headers.apply(headers);
        }
    }
}
