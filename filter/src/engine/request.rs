//! The request's header phase: the health endpoint, the route, then each request policy in
//! order, each a step that lets the request go on or answers it.

use std::ops::ControlFlow::{self, Break, Continue};
use std::sync::Arc;

use super::report::Said;
use super::types::Kept;
use super::{Engine, ExchangeState, RequestDecision};
use crate::environment::Environment;
use crate::logging::{Event, Level, PolicyName};
use crate::metrics::Decision;
use crate::policy::cors;
use crate::policy::https_redirect::Verdict as RedirectVerdict;
use crate::policy::rate_limit::{self, Inputs};
use crate::policy::validate::{self, BodyPlan, UnknownRoutes};
use crate::request::{Headers, RequestHead};
use crate::routes::Route;
use crate::syntax::path_only;

/// What a step does with the request: go on to the next step, or answer (`Break`).
type Step = ControlFlow<RequestDecision>;

impl Engine {
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
            self.count(None, Decision::Forwarded);
            let state = ExchangeState::new(Arc::clone(&self.config.defaults), None);
            return (state, RequestDecision::Continue);
        };
        let head = RequestHead::from_headers(headers);
        if self.is_health_request(&head) {
            return self.health_request();
        }
        let route = self.route_for(&head);
        let mut state = self.state_for(route, &head);
        let decision = match self.request_policies(&mut state, &head, route, end_of_stream, env) {
            Break(decision) => decision,
            Continue(()) => self.let_through(&state),
        };
        (state, decision)
    }

    fn is_health_request(&self, head: &RequestHead<'_, '_>) -> bool {
        self.config
            .health
            .as_ref()
            .is_some_and(|h| h.is_health_request(head.method, head.path))
    }

    /// The health endpoint: the exchange answers it (from the cache or after the checks).
    fn health_request(&self) -> (ExchangeState, RequestDecision) {
        self.count(None, Decision::Health);
        let mut state = ExchangeState::new(Arc::clone(&self.config.defaults), None);
        state.answered = true;
        (state, RequestDecision::CheckHealth)
    }

    /// The exchange's state: the route's policies, and what later phases log of the request.
    fn state_for(&self, route: Option<&Route>, head: &RequestHead<'_, '_>) -> ExchangeState {
        let policies = route.map_or(&self.config.defaults, |r| &r.policies);
        let mut state = ExchangeState::new(Arc::clone(policies), route.map(|r| r.index));
        let global = state
            .policies
            .rate_limit
            .as_ref()
            .is_some_and(|r| r.has_global());
        if state.policies.errors.is_some() || state.policies.validate.is_some() || global {
            let path = path_only(head.path);
            state.request = Kept::new(head.request_id(), head.method, path);
            state.log_headers = self.config.logging.headers(head.headers.iter());
        }
        state
    }

    /// The request policies in order; the first that answers stops the rest.
    fn request_policies(
        &self,
        state: &mut ExchangeState,
        head: &RequestHead<'_, '_>,
        route: Option<&Route>,
        end_of_stream: bool,
        env: &dyn Environment,
    ) -> Step {
        self.https_redirect(state, head, env)?;
        self.cors(state, head, env)?;
        self.rate_limit(state, head, route, env)?;
        self.strict_routing(state, head, route, env)?;
        self.validate(state, head, route, end_of_stream, env)
    }

    /// Every policy let the request through: it goes on, waits for its body, or first for
    /// the rate limit service's answer.
    pub(super) fn let_through(&self, state: &ExchangeState) -> RequestDecision {
        if let Some(query) = &state.query {
            for limit in &query.limits {
                self.count_rate_limit(&limit.name, rate_limit::Event::ServiceRequest);
            }
            return RequestDecision::AskService {
                hold: state.body.holds_request(),
            };
        }
        if state.body.holds_request() {
            return RequestDecision::Hold;
        }
        if state.body == BodyPlan::None {
            self.count(state.route, Decision::Forwarded);
        }
        RequestDecision::Continue
    }

    fn https_redirect(
        &self,
        state: &mut ExchangeState,
        head: &RequestHead<'_, '_>,
        env: &dyn Environment,
    ) -> Step {
        let Some(redirect) = &state.policies.https_redirect else {
            return Continue(());
        };
        match redirect.on_request(head) {
            RedirectVerdict::Pass => Continue(()),
            RedirectVerdict::Redirect(response) => {
                self.count(state.route, Decision::Redirected);
                let said = Said {
                    level: Level::Info,
                    event: Event::Redirected,
                    policy: PolicyName::HttpsRedirect,
                    code: Some("https_required"),
                    status: Some(response.status),
                };
                self.log_request(env, state, head, said);
                Break(Self::answer(state, response))
            }
            RedirectVerdict::BadHost(response) => {
                Break(self.refuse(state, head, PolicyName::HttpsRedirect, response, env))
            }
        }
    }

    /// A preflight is answered here (counted as one); a disallowed origin refused. The
    /// verdict stays for the response's CORS headers.
    fn cors(
        &self,
        state: &mut ExchangeState,
        head: &RequestHead<'_, '_>,
        env: &dyn Environment,
    ) -> Step {
        let Some(cors) = &state.policies.cors else {
            return Continue(());
        };
        let (verdict, action) = cors.on_request(head);
        let preflight = verdict == cors::Verdict::Preflight;
        state.cors = Some(verdict);
        let cors::NextStep::Respond(answer) = action else {
            return Continue(());
        };
        if preflight && (200..300).contains(&answer.status) {
            self.count(state.route, Decision::Preflight);
            return Break(Self::answer(state, answer));
        }
        Break(self.refuse(state, head, PolicyName::Cors, answer, env))
    }

    /// Through the environment: the client's address if a limit keys by it (unless it is read
    /// from `X-Forwarded-For`), one clock read, a shared-data read and write per limit. The
    /// RateLimit fields stay for the response.
    fn rate_limit(
        &self,
        state: &mut ExchangeState,
        head: &RequestHead<'_, '_>,
        route: Option<&Route>,
        env: &dyn Environment,
    ) -> Step {
        let (Some(limits), Some(hasher)) = (&state.policies.rate_limit, &self.hasher) else {
            return Continue(());
        };
        let client = if limits.needs_client_address() {
            self.warn_if_client_address_forgeable(head, env);
            self.config
                .client_address
                .address_in(head.headers)
                .or_else(|| {
                    env.client_address()
                        .as_deref()
                        .and_then(rate_limit::parse_ip)
                })
        } else {
            None
        };
        let inputs = Inputs {
            now: env.now_unix_nanos(),
            client,
            route: route.map_or("", |r| r.name.as_str()),
            store: env.rate_store(),
            hasher,
        };
        let outcome = limits.check(head, &inputs);
        for (limit, event) in &outcome.events {
            self.count_rate_limit(&limit.name, *event);
            if *event == rate_limit::Event::DryRunLimited {
                let said = Said {
                    level: Level::Warn,
                    event: Event::DryRunLimited,
                    policy: PolicyName::RateLimit,
                    code: Some(limit.name.as_str()),
                    status: None,
                };
                self.log_request(env, state, head, said);
            }
        }
        state.rate_limit = outcome.headers;
        state.query = outcome.query;
        match outcome.refusal {
            Some(refusal) => Break(self.refuse(state, head, PolicyName::RateLimit, refusal, env)),
            None => Continue(()),
        }
    }

    /// With `unknown_routes: reject`, a request no route matches is refused (405 if its path
    /// has routes for other methods, else 404).
    fn strict_routing(
        &self,
        state: &mut ExchangeState,
        head: &RequestHead<'_, '_>,
        route: Option<&Route>,
        env: &dyn Environment,
    ) -> Step {
        if route.is_some() || self.config.unknown_routes != UnknownRoutes::Reject {
            return Continue(());
        }
        let methods = self.config.routes.methods_for_path(head.path);
        let refusal = validate::unknown_route(methods, head);
        Break(self.refuse_invalid(state, head, refusal, env))
    }

    /// Size, content type and parameters; what to do with the body stays in the state.
    fn validate(
        &self,
        state: &mut ExchangeState,
        head: &RequestHead<'_, '_>,
        route: Option<&Route>,
        end_of_stream: bool,
        env: &dyn Environment,
    ) -> Step {
        let Some(validation) = &state.policies.validate else {
            return Continue(());
        };
        let params = match route {
            Some(route) if validation.reads_path_params() => route.params(path_only(head.path)),
            _ => None,
        };
        match validation.on_request(head, params.as_deref(), end_of_stream) {
            Err(refusal) => Break(self.refuse_invalid(state, head, refusal, env)),
            // A body yet to come is counted (passed, forwarded) once it has all arrived
            // within the limit, so that no request counts as both forwarded and rejected.
            Ok(plan) => {
                if plan == BodyPlan::None {
                    self.count_validation(state.route, None);
                }
                state.body = plan;
                Continue(())
            }
        }
    }
}
