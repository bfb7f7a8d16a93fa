//! The response phase: the response policies' edits, or, for an upstream error the errors
//! policy replaces, the replacement.

use super::report::Said;
use super::{Engine, ExchangeState, ResponseDecision};
use crate::environment::Environment;
use crate::logging::{Event, Level, PolicyName};
use crate::metrics::Decision;
use crate::policy::errors::Errors;
use crate::reply::LocalResponse;
use crate::response::ResponseHeaders;

impl Engine {
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
            && let Some(status) = errors.replaced_status(headers)
        {
            return ResponseDecision::Replace(self.replace_error(state, headers, status, env));
        }
        edit_response(state, headers);
        ResponseDecision::Continue
    }

    /// The upstream error's replacement: counted, logged at `error`, built by the errors policy
    /// from the edited headers.
    fn replace_error<'a>(
        &self,
        state: &'a ExchangeState,
        headers: &mut ResponseHeaders<'a>,
        status: u16,
        env: &dyn Environment,
    ) -> LocalResponse {
        Errors::drop_body_headers(headers);
        edit_response(state, headers);
        let timestamp = crate::time::rfc3339(env.now_unix_nanos());
        self.count(state.route, Decision::UpstreamErrorReplaced);
        let said = Said {
            level: Level::Error,
            event: Event::ReplacedUpstreamError,
            policy: PolicyName::Errors,
            code: None,
            status: Some(status),
        };
        self.log_later(env, state, said, None);
        Errors::replacement(status, headers, state.request.request_id(), &timestamp)
    }
}

/// The response policies' edits: CORS, the RateLimit fields, security headers.
fn edit_response<'a>(state: &'a ExchangeState, headers: &mut ResponseHeaders<'a>) {
    if let (Some(cors), Some(verdict)) = (&state.policies.cors, &state.cors) {
        cors.on_response(verdict, headers);
    }
    if let Some(limits) = &state.policies.rate_limit {
        limits.on_response(state.rate_limit.as_ref(), headers);
    }
    if let Some(security_headers) = &state.policies.security_headers {
        security_headers.apply(headers);
    }
}
