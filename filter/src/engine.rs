//! The per-request decisions: which policies apply to a request, what they decide about it,
//! and what they do to its response. Pure: the shell gives it views of the request and
//! response and carries out what it decides.

use std::sync::Arc;

use crate::config::{Config, PolicySet};
use crate::environment::Environment;
use crate::policy::cors;
use crate::policy::rate_limit::{self, Event, Inputs, KeyHasher, RateHeaders, SharedData};
use crate::policy::validate::{self, BodyPlan, Reason, Refusal, UnknownRoutes};
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
    /// Where each validated route's counters start (`None`: requests no route matches).
    validate_metrics: Vec<(Option<usize>, String, usize)>,
}

/// What the engine decided about a request, kept for its response.
#[derive(Debug, Clone)]
pub struct ExchangeState {
    pub policies: Arc<PolicySet>,
    pub cors: Option<cors::Verdict>,
    pub rate_limit: Option<RateHeaders>,
    /// The matched route's index, for validation counters.
    route: Option<usize>,
    /// What validation does with the body, and how much of it has arrived.
    body: BodyPlan,
    received: u64,
    request_id: Option<String>,
}

impl ExchangeState {
    fn new(policies: Arc<PolicySet>, route: Option<usize>) -> Self {
        Self {
            policies,
            cors: None,
            rate_limit: None,
            route,
            body: BodyPlan::None,
            received: 0,
            request_id: None,
        }
    }
}

/// What the shell does with a chunk of request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyStep {
    /// Pass it on.
    Continue,
    /// Hold it (Envoy buffers) until more arrives.
    Pause,
    /// The whole body is here: read it and call `on_request_body_complete`.
    Check,
    Respond(LocalResponse),
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
        let mut validate_metrics = Vec::new();
        let mut next = config.limits.len() * RATE_LIMIT_EVENTS.len();
        let mut add = |route: Option<usize>, label: String| {
            validate_metrics.push((route, label, next));
            next += 1 + Reason::ALL.len();
        };
        if config.unknown_routes == UnknownRoutes::Reject || config.defaults.validate.is_some() {
            add(None, "unmatched".into());
        }
        for route in config
            .routes
            .iter()
            .filter(|r| r.policies.validate.is_some())
        {
            add(Some(route.index), metric_label(&route.name));
        }
        Self {
            config,
            reads_request_headers,
            hasher: None,
            validate_metrics,
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
        let mut names: Vec<String> = self
            .config
            .limits
            .iter()
            .flat_map(|limit| {
                RATE_LIMIT_EVENTS
                    .iter()
                    .map(move |event| format!("hardening.rate_limit.{}.{event}", limit.name))
            })
            .collect();
        for (_, label, _) in &self.validate_metrics {
            names.push(format!("hardening.validate.{label}.passed"));
            names.extend(
                Reason::ALL
                    .iter()
                    .map(|r| format!("hardening.validate.{label}.rejected.{}", r.code())),
            );
        }
        names
    }

    /// Counts a validation outcome (`None`: passed).
    fn count_validation(
        &self,
        route: Option<usize>,
        reason: Option<Reason>,
        env: &dyn Environment,
    ) {
        let Some((_, _, base)) = self.validate_metrics.iter().find(|(r, _, _)| *r == route) else {
            return;
        };
        let offset = reason.map_or(0, |reason| {
            1 + Reason::ALL.iter().position(|r| *r == reason).unwrap_or(0)
        });
        env.increment(base + offset, 1);
    }

    fn refused(
        &self,
        state: ExchangeState,
        refusal: Refusal,
        env: &dyn Environment,
    ) -> (ExchangeState, RequestDecision) {
        self.count_validation(state.route, Some(refusal.reason), env);
        (state, RequestDecision::Respond(refusal.response))
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
    /// false; `end_of_stream`: the request has no body). Policies run in order: CORS (a
    /// preflight is answered before anything counts it), rate limits, validation.
    pub fn on_request_headers(
        &self,
        headers: Option<&Headers<'_>>,
        end_of_stream: bool,
        env: &dyn Environment,
    ) -> (ExchangeState, RequestDecision) {
        let Some(headers) = headers else {
            return (
                ExchangeState::new(Arc::clone(&self.config.defaults), None),
                RequestDecision::Continue,
            );
        };
        let head = RequestHead::from_headers(headers);
        let route = self.route_for(&head);
        let policies = route.map_or_else(
            || Arc::clone(&self.config.defaults),
            |r| Arc::clone(&r.policies),
        );
        let mut state = ExchangeState::new(Arc::clone(&policies), route.map(|r| r.index));
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
        if route.is_none() && self.config.unknown_routes == UnknownRoutes::Reject {
            let refusal = validate::unknown_route(&self.config.routes, &head);
            return self.refused(state, refusal, env);
        }
        if let Some(validation) = &policies.validate {
            match validation.on_request(&head, route, end_of_stream) {
                Err(refusal) => return self.refused(state, refusal, env),
                Ok(BodyPlan::Buffer { limit }) => {
                    state.body = BodyPlan::Buffer { limit };
                    state.request_id = head.request_id().map(str::to_string);
                }
                Ok(plan) => {
                    self.count_validation(state.route, None, env);
                    state.body = plan;
                    state.request_id = head.request_id().map(str::to_string);
                }
            }
        }
        (state, RequestDecision::Continue)
    }

    /// A chunk of request body arrived. `body_size` is what Envoy reports: the chunk, or, after
    /// a pause, everything held so far.
    pub fn on_request_body(
        &self,
        state: &mut ExchangeState,
        body_size: usize,
        end_of_stream: bool,
        env: &dyn Environment,
    ) -> BodyStep {
        let size = body_size as u64;
        let Some(validation) = state.policies.validate.as_ref() else {
            return BodyStep::Continue;
        };
        let (limit, buffering) = match state.body {
            BodyPlan::None => return BodyStep::Continue,
            BodyPlan::Count { limit } => (limit, false),
            BodyPlan::Buffer { limit } => (limit, true),
        };
        state.received = if buffering {
            size
        } else {
            state.received.saturating_add(size)
        };
        if state.received > limit {
            let refusal = validation.too_large(state.request_id.as_deref());
            state.body = BodyPlan::None;
            self.count_validation(state.route, Some(refusal.reason), env);
            return BodyStep::Respond(refusal.response);
        }
        match (buffering, end_of_stream) {
            (false, _) => BodyStep::Continue,
            (true, false) => BodyStep::Pause,
            (true, true) => BodyStep::Check,
        }
    }

    /// The whole body of a request whose route validates it.
    pub fn on_request_body_complete(
        &self,
        state: &mut ExchangeState,
        body: &[u8],
        env: &dyn Environment,
    ) -> RequestDecision {
        state.body = BodyPlan::None;
        let Some(validation) = &state.policies.validate else {
            return RequestDecision::Continue;
        };
        match validation.on_body(body, state.request_id.as_deref()) {
            Ok(()) => {
                self.count_validation(state.route, None, env);
                RequestDecision::Continue
            }
            Err(refusal) => {
                self.count_validation(state.route, Some(refusal.reason), env);
                RequestDecision::Respond(refusal.response)
            }
        }
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

/// A route name as a metric name segment: letters, digits and `_`.
fn metric_label(name: &str) -> String {
    let label: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let label = label.trim_matches('_').to_string();
    if label.is_empty() {
        "root".into()
    } else {
        label
    }
}
