//! What the engine reports of its decisions: one counter per decision (and per rate-limit and
//! validation outcome), and one JSON line for each refusal, redirect, dry-run hit and replaced
//! error, written only when the configured level lets it.

use serde_json::Value;

use super::{Engine, ExchangeState, RequestDecision};
use crate::environment::Environment;
use crate::logging::{Event, Level, Line, PolicyName};
use crate::metrics::Decision;
use crate::policy::rate_limit;
use crate::policy::validate::{Reason, Refusal};
use crate::reply::LocalResponse;
use crate::request::RequestHead;
use crate::syntax::path_only;

/// What a log line says about a decision; the rest of the line comes from the request.
pub(super) struct Said<'a> {
    pub level: Level,
    pub event: Event,
    pub policy: PolicyName,
    pub code: Option<&'a str>,
    pub status: Option<u16>,
}

impl Engine {
    pub(super) fn route_name(&self, route: Option<usize>) -> &str {
        route
            .and_then(|i| self.config.routes.get(i))
            .map_or("", |r| r.name.as_str())
    }

    pub(super) fn count(&self, route: Option<usize>, decision: Decision) {
        if let Some(metric) = self.metrics.decision(route, decision) {
            self.metrics.add(metric, 1);
        }
    }

    /// A validation outcome of the route: passed (`reason` `None`) or refused for `reason`.
    pub(super) fn count_validation(&self, route: Option<usize>, reason: Option<Reason>) {
        if let Some(metric) = self.metrics.validation(route, reason) {
            self.metrics.add(metric, 1);
        }
    }

    pub(super) fn count_rate_limit(&self, limit: &str, event: rate_limit::Event) {
        if let Some((metric, by)) = self.metrics.rate_limit(limit, event) {
            self.metrics.add(metric, by);
        }
    }

    /// Hands the counts the VM kept since the last flush to the host, one call per counter
    /// that moved (see [`crate::metrics`]).
    pub fn flush_counters(&self, env: &dyn Environment) {
        self.metrics.drain(|metric, by| env.increment(metric, by));
    }

    pub(super) fn log(&self, env: &dyn Environment, level: Level, line: &Line<'_>) {
        if self.config.logging.enabled(level) {
            env.log(level, &line.to_line());
        }
    }

    /// One line about a request, from its header phase (built only if its level is on).
    pub(super) fn log_request(
        &self,
        env: &dyn Environment,
        state: &ExchangeState,
        head: &RequestHead<'_, '_>,
        said: Said<'_>,
    ) {
        if !self.config.logging.enabled(said.level) {
            return;
        }
        let line = Line {
            event: said.event,
            policy: said.policy,
            code: said.code,
            status: said.status,
            route: self.route_name(state.route),
            method: head.method,
            path: path_only(head.path),
            request_id: head.request_id(),
            headers: self.config.logging.headers(head.headers.iter()),
            body: None,
            detail: None,
        };
        env.log(said.level, &line.to_line());
    }

    /// One line about a request, from a later phase (body, response), from what the exchange
    /// kept of it.
    pub(super) fn log_later(
        &self,
        env: &dyn Environment,
        state: &ExchangeState,
        said: Said<'_>,
        body: Option<Value>,
    ) {
        if !self.config.logging.enabled(said.level) {
            return;
        }
        let line = Line {
            event: said.event,
            policy: said.policy,
            code: said.code,
            status: said.status,
            route: self.route_name(state.route),
            method: state.request.method(),
            path: state.request.path(),
            request_id: state.request.request_id(),
            headers: state.log_headers.clone(),
            body,
            detail: None,
        };
        env.log(said.level, &line.to_line());
    }

    /// The `rejected` line of a refusal answered at the headers, with the problem's code.
    fn log_refusal(
        &self,
        env: &dyn Environment,
        state: &ExchangeState,
        head: &RequestHead<'_, '_>,
        policy: PolicyName,
        response: &LocalResponse,
    ) {
        if !self.config.logging.enabled(Level::Warn) {
            return;
        }
        let body = serde_json::from_slice::<Value>(&response.body).ok();
        let code = body
            .as_ref()
            .and_then(|b| b.get("code"))
            .and_then(|c| c.as_str());
        let said = Said {
            level: Level::Warn,
            event: Event::Rejected,
            policy,
            code,
            status: Some(response.status),
        };
        self.log_request(env, state, head, said);
    }

    /// Answers the request and remembers that the filter did.
    pub(super) fn answer(state: &mut ExchangeState, response: LocalResponse) -> RequestDecision {
        state.answered = true;
        RequestDecision::Respond(response)
    }

    /// Refuses the request: counts it, says why, answers it.
    pub(super) fn refuse(
        &self,
        state: &mut ExchangeState,
        head: &RequestHead<'_, '_>,
        policy: PolicyName,
        response: LocalResponse,
        env: &dyn Environment,
    ) -> RequestDecision {
        self.count(state.route, Decision::Rejected);
        self.log_refusal(env, state, head, policy, &response);
        Self::answer(state, response)
    }

    /// Refuses the request for validation (strict routing included), counted by reason too.
    pub(super) fn refuse_invalid(
        &self,
        state: &mut ExchangeState,
        head: &RequestHead<'_, '_>,
        refusal: Refusal,
        env: &dyn Environment,
    ) -> RequestDecision {
        self.count_validation(state.route, Some(refusal.reason));
        self.refuse(state, head, PolicyName::Validate, refusal.response, env)
    }
}
