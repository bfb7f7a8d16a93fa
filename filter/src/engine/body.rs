//! The request body's state machine: counted against the limit chunk by chunk (held or
//! streamed, as the header phase planned), then, at its end (the last chunk or the trailers),
//! let go or read whole and validated.

use super::report::Said;
use super::{BodyStep, Engine, ExchangeState, RequestDecision};
use crate::environment::Environment;
use crate::logging::{Event, Level, PolicyName};
use crate::metrics::Decision;
use crate::policy::validate::{BodyPlan, Refusal, Validation};
use crate::reply::LocalResponse;

impl Engine {
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
            let refusal = too_much(validation, state);
            return BodyStep::Respond(self.refuse_body(state, refusal, None, env));
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
        self.count_validation(state.route, None);
        self.count_forwarded(state);
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
        match validation.on_body(body, required, state.request.request_id()) {
            Ok(()) => {
                self.count_validation(state.route, None);
                self.count_forwarded(state);
                RequestDecision::Continue
            }
            Err(refusal) => {
                RequestDecision::Respond(self.refuse_body(state, refusal, Some(body), env))
            }
        }
    }

    /// The body passed: the request goes on, counted as forwarded unless it still waits for
    /// the rate limit service's answer (which counts it then, either way).
    fn count_forwarded(&self, state: &ExchangeState) {
        if state.query.is_none() {
            self.count(state.route, Decision::Forwarded);
        }
    }

    /// Refuses the request for its body: counts it, says why (with the body, its secret
    /// fields redacted, when the configured level is `debug`), answers it.
    fn refuse_body(
        &self,
        state: &mut ExchangeState,
        refusal: Refusal,
        body: Option<&[u8]>,
        env: &dyn Environment,
    ) -> LocalResponse {
        state.body = BodyPlan::None;
        state.answered = true;
        self.count_validation(state.route, Some(refusal.reason));
        self.count(state.route, Decision::Rejected);
        let logging = &self.config.logging;
        let body = body
            .filter(|_| logging.enabled(Level::Debug))
            .map(|b| logging.body(b));
        let said = Said {
            level: Level::Warn,
            event: Event::Rejected,
            policy: PolicyName::Validate,
            code: Some(refusal.reason.code()),
            status: Some(refusal.response.status),
        };
        self.log_later(env, state, said, body);
        refusal.response
    }
}

/// The refusal of a body over its limit: any body where none is allowed, else too large.
fn too_much(validation: &Validation, state: &ExchangeState) -> Refusal {
    let id = state.request.request_id();
    if state.body == BodyPlan::Forbid {
        validation.body_not_allowed(state.request.method(), id)
    } else {
        validation.too_large(id)
    }
}
