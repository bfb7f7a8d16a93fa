//! The rate limit service's answer for a request's global limits (or its absence): counted,
//! logged when the service failed, and turned into the request's fate.

use super::report::Said;
use super::{Engine, ExchangeState, RequestDecision};
use crate::environment::Environment;
use crate::logging::{Event, Level, Line, PolicyName};
use crate::metrics::Decision;
use crate::policy::rate_limit::{self, ServiceAnswer};

impl Engine {
    /// What the request does now that the service answered (or failed): refused (429, or 503
    /// when it failed and `failure_mode` is `deny`), or let through (on, or on to its body
    /// check).
    pub fn on_service_answer(
        &self,
        state: &mut ExchangeState,
        answer: ServiceAnswer<'_>,
        env: &dyn Environment,
    ) -> RequestDecision {
        let Some(query) = state.query.take() else {
            return RequestDecision::Continue;
        };
        let outcome = query.decide(answer, &mut state.rate_limit, state.request.request_id());
        for (limit, event) in &outcome.events {
            self.count_rate_limit(&limit.name, *event);
            if *event == rate_limit::Event::DryRunLimited {
                self.say_later(
                    env,
                    state,
                    Level::Warn,
                    Event::DryRunLimited,
                    &limit.name,
                    None,
                );
            }
        }
        if let Some(failure) = outcome.failure {
            let status = outcome.refusal.as_ref().map(|r| r.status);
            self.say_failed(
                env,
                state,
                &failure.code(),
                outcome.detail.as_deref(),
                status,
            );
        }
        match outcome.refusal {
            Some(refusal) => {
                self.count(state.route, Decision::Rejected);
                if outcome.failure.is_none() {
                    let status = Some(refusal.status);
                    self.say_later(
                        env,
                        state,
                        Level::Warn,
                        Event::Rejected,
                        "rate_limited",
                        status,
                    );
                }
                Self::answer(state, refusal)
            }
            None => self.let_through(state),
        }
    }

    /// The `rate_limit_service_failed` line, with the failed call's status message.
    fn say_failed(
        &self,
        env: &dyn Environment,
        state: &ExchangeState,
        code: &str,
        detail: Option<&str>,
        status: Option<u16>,
    ) {
        if !self.config.logging.enabled(Level::Warn) {
            return;
        }
        let line = Line {
            event: Event::RateLimitServiceFailed,
            policy: PolicyName::RateLimit,
            code: Some(code),
            status,
            route: self.route_name(state.route),
            method: state.request.method(),
            path: state.request.path(),
            request_id: state.request.request_id(),
            headers: state.log_headers.clone(),
            body: None,
            detail,
        };
        env.log(Level::Warn, &line.to_line());
    }

    /// One line of the rate limiter's about the request, after its header phase.
    fn say_later(
        &self,
        env: &dyn Environment,
        state: &ExchangeState,
        level: Level,
        event: Event,
        code: &str,
        status: Option<u16>,
    ) {
        let said = Said {
            level,
            event,
            policy: PolicyName::RateLimit,
            code: Some(code),
            status,
        };
        self.log_later(env, state, said, None);
    }
}
