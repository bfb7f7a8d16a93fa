//! A request's question to the rate limit service (global limits): the call, the wait, and
//! the answer carried out. The request waits whole (its body too) unless its body is to be
//! checked meanwhile; then it is let go only once both the body and the answer have passed.

use super::{Exchange, Flow, Plugin, act};
use crate::engine::RequestDecision;
use crate::environment::{GrpcCall, HeaderMap, Host};
use crate::policy::rate_limit::{ServiceAnswer, rls};

/// The call out for this exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ServiceCall {
    token: u32,
    /// The host holds the request for this call alone (it must be resumed at the answer).
    stopped: bool,
}

impl Exchange {
    /// Sends the question the engine left in the state; `hold`: the body is checked
    /// meanwhile.
    pub(super) fn ask_service(&mut self, plugin: &Plugin, host: &impl Host, hold: bool) -> Flow {
        let Some(state) = self.state.as_mut() else {
            return Flow::Continue;
        };
        let token = state.query.as_ref().and_then(|query| {
            host.dispatch_grpc_call(&GrpcCall {
                cluster: &query.service.cluster,
                service: rls::SERVICE,
                method: rls::METHOD,
                message: &query.message,
                timeout: query.service.timeout,
            })
        });
        let Some(token) = token else {
            let decision = plugin
                .engine
                .on_service_answer(state, ServiceAnswer::NotSent, host);
            return act(host, decision);
        };
        self.service_call = Some(ServiceCall {
            token,
            stopped: !hold,
        });
        if hold { Flow::HoldHeaders } else { Flow::Wait }
    }

    /// What the body phase decided, unless the request still waits for the service: then a
    /// body that passed waits too, and the answer lets it go.
    pub(super) fn unless_waiting(&mut self, flow: Flow) -> Flow {
        match self.service_call.as_mut() {
            Some(call) if flow == Flow::Continue => {
                call.stopped = true;
                Flow::Pause
            }
            _ => flow,
        }
    }

    /// The answer to a gRPC call of this exchange (from a host with gRPC calls).
    pub fn on_grpc_call_response(
        &mut self,
        plugin: &Plugin,
        host: &impl Host,
        token: u32,
        answer: ServiceAnswer<'_>,
    ) {
        let Some(call) = self.service_call.filter(|c| c.token == token) else {
            return;
        };
        self.service_call = None;
        let Some(state) = self.state.as_mut() else {
            return;
        };
        // Its body was refused meanwhile: the request has its answer already.
        if state.answered() {
            state.query = None;
            return;
        }
        match plugin.engine.on_service_answer(state, answer, host) {
            RequestDecision::Respond(reply) => host.send_reply(&reply),
            // Let go now if the request waited for the answer alone; a body still to be
            // checked lets it go itself.
            _ if call.stopped => host.resume_request(),
            _ => {}
        }
    }

    /// Whether `token` is this exchange's call to the service.
    pub(super) fn is_service_call(&self, token: u32) -> bool {
        self.service_call.is_some_and(|c| c.token == token)
    }

    /// The service's answer carried as an HTTP/2 call's (`has_headers` false: reset).
    pub(super) fn on_service_http_answer(
        &mut self,
        plugin: &Plugin,
        host: &impl Host,
        token: u32,
        has_headers: bool,
    ) {
        if !has_headers {
            let answer = ServiceAnswer::Closed {
                code: 14,
                message: "reset",
            };
            return self.on_grpc_call_response(plugin, host, token, answer);
        }
        let map = host.http_call_response_headers();
        let body = host.http_call_response_body();
        let answer = rls::answer_over_http(&map.pairs(), &body);
        let answer = match &answer {
            rls::HttpAnswer::Message(message) => ServiceAnswer::Message(message),
            rls::HttpAnswer::Closed { code, message } => ServiceAnswer::Closed {
                code: *code,
                message,
            },
        };
        self.on_grpc_call_response(plugin, host, token, answer);
    }
}
