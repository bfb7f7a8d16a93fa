//! The per-request decisions: which policies apply to a request, what they decide about it,
//! and what they do to its response. Pure: the shell gives it views of the request and
//! response (and an [`Environment`] for time, shared data, metrics and the log) and carries
//! out what it decides.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::config::Config;
use crate::environment::Environment;
use crate::environment::SharedData;
use crate::logging::{Event as LogEvent, Level};
use crate::metrics::{Decision, Metrics};
use crate::policy::PolicySet;
use crate::policy::cors;
use crate::policy::errors::Errors;
use crate::policy::health::{Health, Outcome as HealthOutcome};
use crate::policy::https_redirect::Verdict as RedirectVerdict;
use crate::policy::rate_limit::{self, Event, Inputs, KeyHasher, RateHeaders};
use crate::policy::validate::{self, BodyPlan, Refusal, UnknownRoutes};
use crate::reply::LocalResponse;
use crate::request::{Headers, RequestHead};
use crate::response::ResponseHeaders;
use crate::routes::Route;
use crate::syntax::path_only;

/// The compiled config plus the decisions made from it.
#[derive(Debug)]
pub struct Engine {
    config: Config,
    reads_request_headers: bool,
    /// Set by `prepare` (rate limits need their tables and the shared hash secret).
    hasher: Option<KeyHasher>,
    metrics: Metrics,
    /// Whether this VM has already said that Envoy takes client addresses from headers the
    /// client sent (said once per VM; the engine is per VM).
    forgeable_client_warned: AtomicBool,
}

/// What the engine decided about a request, kept for its response.
#[derive(Debug, Clone)]
pub struct ExchangeState {
    pub policies: Arc<PolicySet>,
    pub cors: Option<cors::Verdict>,
    pub rate_limit: Option<RateHeaders>,
    /// The matched route's index, for counters and logs.
    route: Option<usize>,
    /// What validation does with the body, and how much of it has arrived.
    body: BodyPlan,
    received: u64,
    request_id: Option<String>,
    /// The filter answered this request itself (its own reply is not an upstream error).
    answered: bool,
    /// For log lines of a later phase (body, response): method, path without query, the
    /// included request headers.
    method: String,
    path: String,
    log_headers: Option<serde_json::Value>,
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
            answered: false,
            method: String::new(),
            path: String::new(),
            log_headers: None,
        }
    }
}

/// What the shell does with the request now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestDecision {
    /// Let it through to the upstream.
    Continue,
    /// Keep the whole request, headers included, from the upstream until its body has been
    /// checked: the shell stops at the headers (Envoy still hands this filter the body, and
    /// buffers it while `on_request_body` says `Pause`), and `on_request_body` decides.
    Hold,
    /// Answer it (the response still passes through `on_response_headers`).
    Respond(LocalResponse),
    /// The health endpoint: answer from the cache, or run the checks and call `health_report`.
    CheckHealth,
}

/// What the shell does with a chunk of request body.
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

/// What the shell does with the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseDecision {
    /// Write back the edited headers (if they changed) and let it through.
    Continue,
    /// Answer with this instead (the upstream's body is never forwarded).
    Replace(LocalResponse),
}

/// The event of the line that says `client_ip` keys can be forged (see
/// `warn_if_client_address_forgeable`).
pub const FORGEABLE_CLIENT_ADDRESS_EVENT: &str = "client_address_from_request_headers";

/// What that line says, and what to set.
pub const FORGEABLE_CLIENT_ADDRESS_DETAIL: &str = "a request reached the filter without \
X-Forwarded-For, which Envoy adds to every request when the http_connection_manager has \
use_remote_address: true. Without it, Envoy takes source.address (the client_ip rate-limit key) \
from the X-Forwarded-For the client sends, so a client that sends a new value with each request \
escapes client_ip limits. Set use_remote_address: true on the http_connection_manager, with \
xff_num_trusted_hops: 0 when Envoy is the edge, or N behind N trusted proxies that append to \
X-Forwarded-For. (skip_xff_append: true and the custom_header original IP detection add nothing \
to X-Forwarded-For either: with those, make sure the address cannot come from the client.) Said \
once per worker.";

/// Response headers the rate limiter owns when it applies (the upstream's are dropped).
const RATE_LIMIT_HEADERS: &[&str] = &[
    "ratelimit",
    "ratelimit-policy",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
];

impl Engine {
    pub fn new(config: Config) -> Self {
        let reads_request_headers = !config.routes.is_empty()
            || config.health.is_some()
            || config.unknown_routes == UnknownRoutes::Reject
            || config.defaults.reads_request_headers()
            || config
                .routes
                .iter()
                .any(|r| r.policies.reads_request_headers());
        let metrics = Metrics::new(&config);
        Self {
            config,
            reads_request_headers,
            hasher: None,
            metrics,
            forgeable_client_warned: AtomicBool::new(false),
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
    pub fn metric_names(&self) -> &[String] {
        self.metrics.names()
    }

    pub fn health(&self) -> Option<&Health> {
        self.config.health.as_ref()
    }

    /// The route a request belongs to, if any. A CORS preflight belongs to the route of the
    /// request it announces (`Access-Control-Request-Method` on the same path), so that a
    /// route written for `POST /users` answers the browser's `OPTIONS /users` with its own
    /// CORS policy (and, with `cors: false`, lets it through to the upstream).
    pub fn route_for(&self, request: &RequestHead<'_, '_>) -> Option<&Route> {
        match cors::announced_method(request) {
            Some(announced) => self.config.routes.find_preflight(announced, request.path),
            None => self.config.routes.find(request.method, request.path),
        }
    }

    fn route_name(&self, route: Option<usize>) -> &str {
        route
            .and_then(|i| self.config.routes.iter().find(|r| r.index == i))
            .map_or("", |r| r.name.as_str())
    }

    fn count(&self, env: &dyn Environment, route: Option<usize>, decision: Decision) {
        if let Some(metric) = self.metrics.decision(route, decision) {
            env.increment(metric, 1);
        }
    }

    fn log(&self, env: &dyn Environment, level: Level, event: &LogEvent<'_>) {
        if self.config.logging.enabled(level) {
            env.log(level, &event.to_line());
        }
    }

    /// One line about a request, from its header phase (built only if its level is on).
    #[allow(clippy::too_many_arguments)]
    fn log_request(
        &self,
        env: &dyn Environment,
        level: Level,
        state: &ExchangeState,
        head: &RequestHead<'_, '_>,
        (event, policy): (&'static str, &'static str),
        code: Option<&str>,
        status: Option<u16>,
    ) {
        if !self.config.logging.enabled(level) {
            return;
        }
        let line = LogEvent {
            event,
            policy,
            code,
            status,
            route: self.route_name(state.route),
            method: head.method,
            path: path_only(head.path),
            request_id: head.request_id(),
            headers: self.config.logging.headers(head.headers.iter()),
            body: None,
        };
        env.log(level, &line.to_line());
    }

    /// One line about a request, from a later phase (body, response), from what the exchange
    /// kept of it.
    #[allow(clippy::too_many_arguments)]
    fn log_later(
        &self,
        env: &dyn Environment,
        level: Level,
        state: &ExchangeState,
        (event, policy): (&'static str, &'static str),
        code: Option<&str>,
        status: u16,
        body: Option<serde_json::Value>,
    ) {
        if !self.config.logging.enabled(level) {
            return;
        }
        let line = LogEvent {
            event,
            policy,
            code,
            status: Some(status),
            route: self.route_name(state.route),
            method: &state.method,
            path: &state.path,
            request_id: state.request_id.as_deref(),
            headers: state.log_headers.clone(),
            body,
        };
        env.log(level, &line.to_line());
    }

    fn log_refusal(
        &self,
        env: &dyn Environment,
        state: &ExchangeState,
        head: &RequestHead<'_, '_>,
        policy: &'static str,
        response: &LocalResponse,
    ) {
        if !self.config.logging.enabled(Level::Warn) {
            return;
        }
        let body = serde_json::from_slice::<serde_json::Value>(&response.body).ok();
        let code = body
            .as_ref()
            .and_then(|b| b.get("code"))
            .and_then(|c| c.as_str());
        let status = Some(response.status);
        self.log_request(
            env,
            Level::Warn,
            state,
            head,
            ("rejected", policy),
            code,
            status,
        );
    }

    /// Answers the request and remembers that the filter did.
    fn answer(
        &self,
        mut state: ExchangeState,
        response: LocalResponse,
    ) -> (ExchangeState, RequestDecision) {
        state.answered = true;
        (state, RequestDecision::Respond(response))
    }

    fn refuse(
        &self,
        state: ExchangeState,
        head: &RequestHead<'_, '_>,
        policy: &'static str,
        response: LocalResponse,
        env: &dyn Environment,
    ) -> (ExchangeState, RequestDecision) {
        self.count(env, state.route, Decision::Rejected);
        self.log_refusal(env, &state, head, policy, &response);
        self.answer(state, response)
    }

    fn refuse_invalid(
        &self,
        state: ExchangeState,
        head: &RequestHead<'_, '_>,
        refusal: Refusal,
        env: &dyn Environment,
    ) -> (ExchangeState, RequestDecision) {
        if let Some(metric) = self.metrics.validation(state.route, Some(refusal.reason)) {
            env.increment(metric, 1);
        }
        self.refuse(state, head, "validate", refusal.response, env)
    }

    /// Says once per VM, at `warn`, that `source.address` (the `client_ip` key) is taken from
    /// headers the client sent. With `use_remote_address: true` Envoy's connection manager
    /// appends the peer's address to `X-Forwarded-For` before any filter runs (HTTP/1.1 and
    /// HTTP/2 alike; an internal redirect keeps the header), so a request that arrives without
    /// one means it does not: with its default settings Envoy takes the client address from
    /// the rightmost `X-Forwarded-For` address the client sent, and a client escapes a
    /// `client_ip` limit by sending a new one each time. Reads only the headers already here.
    /// Envoy appends nothing either with `skip_xff_append: true` or a `custom_header` original
    /// IP detection, which may be safe: the line says so (checked in Envoy 1.40).
    fn warn_if_client_address_forgeable(&self, head: &RequestHead<'_, '_>, env: &dyn Environment) {
        if head.headers.get_bytes("x-forwarded-for").is_some()
            || !self.config.logging.enabled(Level::Warn)
            || self.forgeable_client_warned.swap(true, Ordering::Relaxed)
        {
            return;
        }
        #[derive(serde::Serialize)]
        struct Line {
            event: &'static str,
            policy: &'static str,
            detail: &'static str,
        }
        let line = Line {
            event: FORGEABLE_CLIENT_ADDRESS_EVENT,
            policy: "rate_limit",
            detail: FORGEABLE_CLIENT_ADDRESS_DETAIL,
        };
        env.log(
            Level::Warn,
            &serde_json::to_string(&line).unwrap_or_default(),
        );
    }

    /// Decides about a request from its headers (`None` when `reads_request_headers` is
    /// false; `end_of_stream`: the request has no body). In order: the health endpoint, HTTPS
    /// redirect, CORS (a preflight is answered before anything counts it), rate limits, strict
    /// routing, validation.
    pub fn on_request_headers(
        &self,
        headers: Option<&Headers<'_>>,
        end_of_stream: bool,
        env: &dyn Environment,
    ) -> (ExchangeState, RequestDecision) {
        let Some(headers) = headers else {
            self.count(env, None, Decision::Forwarded);
            return (
                ExchangeState::new(Arc::clone(&self.config.defaults), None),
                RequestDecision::Continue,
            );
        };
        let head = RequestHead::from_headers(headers);
        if self
            .config
            .health
            .as_ref()
            .is_some_and(|h| h.is_health_request(head.method, head.path))
        {
            self.count(env, None, Decision::Health);
            let mut state = ExchangeState::new(Arc::clone(&self.config.defaults), None);
            state.answered = true;
            return (state, RequestDecision::CheckHealth);
        }
        let route = self.route_for(&head);
        let policies = route.map_or_else(
            || Arc::clone(&self.config.defaults),
            |r| Arc::clone(&r.policies),
        );
        let mut state = ExchangeState::new(Arc::clone(&policies), route.map(|r| r.index));
        state.request_id = head.request_id().map(str::to_string);
        if policies.errors.is_some() || policies.validate.is_some() {
            // For the log lines of a later phase (body, response).
            state.method = head.method.to_string();
            state.path = path_only(head.path).to_string();
            state.log_headers = self.config.logging.headers(head.headers.iter());
        }

        if let Some(redirect) = &policies.https_redirect {
            match redirect.on_request(&head) {
                RedirectVerdict::Pass => {}
                RedirectVerdict::Redirect(response) => {
                    self.count(env, state.route, Decision::Redirected);
                    let code = Some("https_required");
                    let what = ("redirected", "https_redirect");
                    let status = Some(response.status);
                    self.log_request(env, Level::Info, &state, &head, what, code, status);
                    return self.answer(state, response);
                }
                RedirectVerdict::BadHost(response) => {
                    return self.refuse(state, &head, "https_redirect", response, env);
                }
            }
        }
        if let Some(cors) = &policies.cors {
            let (verdict, action) = cors.on_request(&head);
            let preflight = verdict == cors::Verdict::Preflight;
            state.cors = Some(verdict);
            if let cors::Action::Respond(answer) = action {
                if preflight && (200..300).contains(&answer.status) {
                    self.count(env, state.route, Decision::Preflight);
                    return self.answer(state, answer);
                }
                return self.refuse(state, &head, "cors", answer, env);
            }
        }
        if let (Some(limits), Some(hasher)) = (&policies.rate_limit, &self.hasher) {
            let client = if limits.needs_client_address() {
                self.warn_if_client_address_forgeable(&head, env);
                env.client_address()
            } else {
                None
            };
            let inputs = Inputs {
                now: env.now_unix_nanos(),
                client: client.as_deref(),
                route: route.map_or("", |r| r.name.as_str()),
                shared: env.shared_data(),
                hasher,
            };
            let outcome = limits.check(&head, &inputs);
            for (limit, event) in &outcome.events {
                if let Some((metric, by)) = self.metrics.rate_limit(&limit.name, *event) {
                    env.increment(metric, by);
                }
                if *event == Event::DryRunLimited {
                    let what = ("dry_run_limited", "rate_limit");
                    let code = Some(limit.name.as_str());
                    self.log_request(env, Level::Warn, &state, &head, what, code, None);
                }
            }
            state.rate_limit = outcome.headers;
            if let Some(refusal) = outcome.refusal {
                return self.refuse(state, &head, "rate_limit", refusal, env);
            }
        }
        if route.is_none() && self.config.unknown_routes == UnknownRoutes::Reject {
            let refusal =
                validate::unknown_route(self.config.routes.methods_for_path(head.path), &head);
            return self.refuse_invalid(state, &head, refusal, env);
        }
        if let Some(validation) = &policies.validate {
            let params = match route {
                Some(route) if validation.reads_path_params() => route.params(path_only(head.path)),
                _ => None,
            };
            match validation.on_request(&head, params.as_deref(), end_of_stream) {
                Err(refusal) => return self.refuse_invalid(state, &head, refusal, env),
                // A body yet to come is counted (passed, forwarded) once it has all arrived
                // within the limit, so that no request counts as both forwarded and rejected.
                Ok(plan) => {
                    if plan == BodyPlan::None
                        && let Some(metric) = self.metrics.validation(state.route, None)
                    {
                        env.increment(metric, 1);
                    }
                    state.body = plan;
                }
            }
        }
        if state.body.holds_request() {
            return (state, RequestDecision::Hold);
        }
        if state.body == BodyPlan::None {
            self.count(env, state.route, Decision::Forwarded);
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
        let Some(validation) = state.policies.validate.as_ref() else {
            return BodyStep::Continue;
        };
        let (limit, held) = match state.body {
            BodyPlan::None => return BodyStep::Continue,
            BodyPlan::Count { limit } => (limit, false),
            BodyPlan::Hold { limit } | BodyPlan::Buffer { limit, .. } => (limit, true),
            BodyPlan::Forbid => (0, true),
        };
        // What Envoy reports after a pause is everything it holds; a streamed chunk is new.
        let size = body_size as u64;
        state.received = if held {
            size
        } else {
            state.received.saturating_add(size)
        };
        if state.received > limit {
            let id = state.request_id.as_deref();
            let refusal = if state.body == BodyPlan::Forbid {
                validation.body_not_allowed(&state.method, id)
            } else {
                validation.too_large(id)
            };
            state.body = BodyPlan::None;
            state.answered = true;
            if let Some(metric) = self.metrics.validation(state.route, Some(refusal.reason)) {
                env.increment(metric, 1);
            }
            self.count(env, state.route, Decision::Rejected);
            self.log_body_refusal(env, state, &refusal, None);
            return BodyStep::Respond(refusal.response);
        }
        if !end_of_stream {
            return if held {
                BodyStep::Pause
            } else {
                BodyStep::Continue
            };
        }
        if matches!(state.body, BodyPlan::Buffer { .. }) {
            return BodyStep::Check {
                size: usize::try_from(state.received).unwrap_or(usize::MAX),
            };
        }
        // Ended within the limit with nothing more to check: the request goes through.
        state.body = BodyPlan::None;
        if let Some(metric) = self.metrics.validation(state.route, None) {
            env.increment(metric, 1);
        }
        self.count(env, state.route, Decision::Forwarded);
        BodyStep::Continue
    }

    /// The request ended with trailers (always possible in HTTP/2 and HTTP/3; in HTTP/1.1 when
    /// the connection manager enables them): its last body chunk did not end the stream, so
    /// the body is complete only now. Without this, a body followed by trailers would reach
    /// the upstream unchecked.
    pub fn on_request_trailers(
        &self,
        state: &mut ExchangeState,
        env: &dyn Environment,
    ) -> BodyStep {
        // Nothing new arrives with trailers; what Envoy holds (buffering) is what was counted.
        let held = match state.body {
            BodyPlan::Hold { .. } | BodyPlan::Buffer { .. } | BodyPlan::Forbid => {
                usize::try_from(state.received).unwrap_or(usize::MAX)
            }
            BodyPlan::Count { .. } | BodyPlan::None => 0,
        };
        self.on_request_body(state, held, true, env)
    }

    fn log_body_refusal(
        &self,
        env: &dyn Environment,
        state: &ExchangeState,
        refusal: &Refusal,
        body: Option<&[u8]>,
    ) {
        let logging = &self.config.logging;
        // A warning like any refusal; the body (its secret fields redacted) only when the
        // configured level is `debug`.
        let level = Level::Warn;
        let body = body
            .filter(|_| logging.enabled(Level::Debug))
            .map(|b| logging.body(b));
        let what = ("rejected", "validate");
        let code = Some(refusal.reason.code());
        self.log_later(env, level, state, what, code, refusal.response.status, body);
    }

    /// The whole body of a request whose route validates it.
    pub fn on_request_body_complete(
        &self,
        state: &mut ExchangeState,
        body: &[u8],
        env: &dyn Environment,
    ) -> RequestDecision {
        let required = matches!(state.body, BodyPlan::Buffer { required: true, .. });
        state.body = BodyPlan::None;
        let Some(validation) = state.policies.validate.as_ref() else {
            return RequestDecision::Continue;
        };
        let outcome = validation.on_body(body, required, state.request_id.as_deref());
        let reason = outcome.as_ref().err().map(|r| r.reason);
        if let Some(metric) = self.metrics.validation(state.route, reason) {
            env.increment(metric, 1);
        }
        match outcome {
            Ok(()) => {
                self.count(env, state.route, Decision::Forwarded);
                RequestDecision::Continue
            }
            Err(refusal) => {
                state.answered = true;
                self.count(env, state.route, Decision::Rejected);
                self.log_body_refusal(env, state, &refusal, Some(body));
                RequestDecision::Respond(refusal.response)
            }
        }
    }

    /// The health endpoint's answer from the checks' outcomes (in the order of
    /// `health().checks`).
    pub fn health_report(
        &self,
        outcomes: &[HealthOutcome],
        uptime: Duration,
        env: &dyn Environment,
    ) -> Option<LocalResponse> {
        let health = self.config.health.as_ref()?;
        let report = health.report(outcomes, uptime);
        if report.status != 200 {
            self.log(
                env,
                Level::Warn,
                &LogEvent {
                    event: "unhealthy",
                    policy: "health",
                    code: None,
                    status: Some(report.status),
                    route: "",
                    method: "GET",
                    path: &health.path,
                    request_id: None,
                    headers: None,
                    body: None,
                },
            );
        }
        Some(report)
    }

    /// Edits a response (from the upstream, from Envoy, or the filter's own) on its way out,
    /// or replaces an upstream error.
    pub fn on_response_headers<'a>(
        &self,
        state: &'a ExchangeState,
        headers: &mut ResponseHeaders<'a>,
        env: &dyn Environment,
    ) -> ResponseDecision {
        if let Some(errors) = &state.policies.errors
            && !state.answered
            && let Some(status) = headers.status()
            && errors.replaces(
                status,
                headers
                    .get("content-type")
                    .and_then(|v| std::str::from_utf8(v).ok()),
            )
        {
            return ResponseDecision::Replace(self.replace_error(state, headers, status, env));
        }
        self.edit_response(state, headers);
        ResponseDecision::Continue
    }

    fn edit_response<'a>(&self, state: &'a ExchangeState, headers: &mut ResponseHeaders<'a>) {
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

    /// The generic problem+json that replaces an upstream error: the upstream's headers but
    /// those describing its body, our response edits, and a body with the request id.
    fn replace_error<'a>(
        &self,
        state: &'a ExchangeState,
        headers: &mut ResponseHeaders<'a>,
        status: u16,
        env: &dyn Environment,
    ) -> LocalResponse {
        headers.retain(|name| !Errors::describes_body(name));
        self.edit_response(state, headers);
        let mut reply_headers: Vec<(String, String)> = headers
            .pairs()
            .iter()
            .filter(|(k, _)| k.first() != Some(&b':'))
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(k).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect();
        reply_headers.push(("content-type".into(), crate::problem::CONTENT_TYPE.into()));
        let timestamp = crate::time::rfc3339(env.now_unix_nanos());
        self.count(env, state.route, Decision::UpstreamErrorReplaced);
        let what = ("replaced_upstream_error", "errors");
        self.log_later(env, Level::Error, state, what, None, status, None);
        LocalResponse {
            status,
            headers: reply_headers,
            body: Errors::body(status, state.request_id.as_deref(), &timestamp),
        }
    }
}

#[cfg(test)]
mod forwarded_for_tests;

// Property tests: native only (see Cargo.toml: on wasm32 under Node they would cost minutes).
#[cfg(all(test, not(target_family = "wasm")))]
mod tests;
