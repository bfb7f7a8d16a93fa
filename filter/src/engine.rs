//! The per-request decisions: which policies apply to a request, what they decide about it,
//! and what they do to its response. Pure: the shell gives it views of the request and
//! response and carries out what it decides.

use std::sync::Arc;

use crate::config::{Config, PolicySet};
use crate::environment::Environment;
use crate::policy::cors;
use crate::policy::rate_limit::{self, Event, Inputs, KeyHasher, RateHeaders, SharedData};
use crate::reply::LocalResponse;
use crate::request::{Headers, RequestHead};
use crate::response::ResponseHeaders;
use crate::routes::Route;

/// The compiled config plus the decisions made from it.
#[derive(Debug)]
pub struct Engine {
    config: Config,
    reads_request_headers: bool,
    /// Set by `prepare` (rate limits need their tables and the shared hash secret).
    hasher: Option<KeyHasher>,
}

/// What the engine decided about a request, kept for its response.
#[derive(Debug, Clone)]
pub struct ExchangeState {
    pub policies: Arc<PolicySet>,
    pub cors: Option<cors::Verdict>,
    pub rate_limit: Option<RateHeaders>,
}

/// The counters of each rate limit, in this order after its name.
const RATE_LIMIT_EVENTS: &[&str] = &[
    "allowed",
    "limited",
    "dry_run_limited",
    "store_conflicts",
    "store_errors",
];

/// Response headers the rate limiter owns when it applies (the upstream's are dropped).
const RATE_LIMIT_HEADERS: &[&str] = &[
    "ratelimit",
    "ratelimit-policy",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
];

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
            hasher: None,
        }
    }

    /// Creates what shared state the config needs (rate-limit tables, the key hash secret) if
    /// another VM has not already; run when a VM loads the config.
    pub fn prepare(
        &mut self,
        shared: &dyn SharedData,
        fresh_secret: [u8; 16],
    ) -> Result<(), String> {
        if self.config.limits.is_empty() {
            return Ok(());
        }
        let hasher = rate_limit::prepare_tables(
            shared,
            self.config.limits.iter().map(|l| l.as_ref()),
            fresh_secret,
        )
        .map_err(|e| format!("rate limiting: {e}"))?;
        self.hasher = Some(hasher);
        Ok(())
    }

    /// The counters the engine reports, by index (the shell defines them once per VM).
    pub fn metric_names(&self) -> Vec<String> {
        self.config
            .limits
            .iter()
            .flat_map(|limit| {
                RATE_LIMIT_EVENTS
                    .iter()
                    .map(move |event| format!("hardening.rate_limit.{}.{event}", limit.name))
            })
            .collect()
    }

    fn rate_limit_metric(&self, limit: &rate_limit::Limit, event: Event) -> Option<(usize, u64)> {
        let position = self
            .config
            .limits
            .iter()
            .position(|l| l.name == limit.name)?;
        let (offset, by) = match event {
            Event::Allowed => (0, 1),
            Event::Limited => (1, 1),
            Event::DryRunLimited => (2, 1),
            Event::StoreConflicts(n) => (3, u64::from(n)),
            Event::StoreError => (4, 1),
        };
        Some((position * RATE_LIMIT_EVENTS.len() + offset, by))
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

    /// Decides about a request from its headers (`None` when `reads_request_headers` is
    /// false). Policies run in order: CORS (a preflight is answered before anything counts it),
    /// then rate limits.
    pub fn on_request_headers(
        &self,
        headers: Option<&Headers<'_>>,
        env: &dyn Environment,
    ) -> (ExchangeState, RequestDecision) {
        let Some(headers) = headers else {
            let state = ExchangeState {
                policies: Arc::clone(&self.config.defaults),
                cors: None,
                rate_limit: None,
            };
            return (state, RequestDecision::Continue);
        };
        let head = RequestHead::from_headers(headers);
        let route = self.route_for(&head);
        let policies = route.map_or_else(
            || Arc::clone(&self.config.defaults),
            |r| Arc::clone(&r.policies),
        );
        let mut state = ExchangeState {
            policies: Arc::clone(&policies),
            cors: None,
            rate_limit: None,
        };
        if let Some(cors) = &policies.cors {
            let (verdict, action) = cors.on_request(&head);
            state.cors = Some(verdict);
            if let cors::Action::Respond(answer) = action {
                return (state, RequestDecision::Respond(answer));
            }
        }
        if let (Some(limits), Some(hasher)) = (&policies.rate_limit, &self.hasher) {
            let client = limits
                .needs_client_address()
                .then(|| env.client_address())
                .flatten();
            let inputs = Inputs {
                now: env.now_unix_nanos(),
                client: client.as_deref(),
                route: route.map_or("", |r| r.name.as_str()),
                shared: env.shared_data(),
                hasher,
            };
            let outcome = limits.check(&head, &inputs);
            for (limit, event) in &outcome.events {
                if let Some((metric, by)) = self.rate_limit_metric(limit, *event) {
                    env.increment(metric, by);
                }
            }
            state.rate_limit = outcome.headers;
            if let Some(refusal) = outcome.refusal {
                return (state, RequestDecision::Respond(refusal));
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
        if state.policies.rate_limit.is_some() {
            headers.retain(|name| !RATE_LIMIT_HEADERS.iter().any(|h| h.as_bytes() == name));
            if let Some(rate) = &state.rate_limit {
                headers.push("ratelimit-policy", rate.policy.as_bytes());
                headers.push("ratelimit", rate.state.as_bytes());
                if let Some((limit, remaining, reset)) = &rate.legacy {
                    headers.push("x-ratelimit-limit", limit.as_bytes());
                    headers.push("x-ratelimit-remaining", remaining.as_bytes());
                    headers.push("x-ratelimit-reset", reset.as_bytes());
                }
            }
        }
        if let Some(security_headers) = &state.policies.security_headers {
            security_headers.apply(headers);
        }
    }
}
