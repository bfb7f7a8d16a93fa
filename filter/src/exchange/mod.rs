//! One exchange driven through the engine, whatever the host: the shell forwards each of the
//! host's callbacks here with a [`Host`] for the exchange, and gets back what to do with the
//! stream. Here the engine's decisions become host calls (read a header map only when a
//! decision needs it, write it back only when an edit changed it, read the body only to
//! validate it, answer), and the health endpoint's runs are kept ([`health`]).

mod global;
mod health;

use std::sync::Arc;
use std::time::Duration;

use crate::engine::{BodyStep, Engine, ExchangeState, RequestDecision, ResponseDecision};
use crate::environment::{Environment, HeaderMap, Host};
use crate::reply::LocalResponse;
use crate::request::Headers;
use crate::response::ResponseHeaders;
use health::{HealthRun, HealthRuns};

/// How often a shell calls [`Plugin::flush_counters`] (with proxy-wasm, the root context's
/// tick): the most a counter in the host lags behind the VM's count.
pub const FLUSH_PERIOD: Duration = Duration::from_secs(1);

/// What a VM's exchanges share: the engine, and the health endpoint's cache and run.
pub struct Plugin {
    /// Shared by the worker threads of a native build; a Wasm VM's own.
    engine: Arc<Engine>,
    /// When the VM loaded the config (for the health endpoint's uptime).
    started_at: u64,
    health: HealthRuns,
}

impl Plugin {
    pub fn new(engine: impl Into<Arc<Engine>>, started_at: u64) -> Self {
        Self {
            engine: engine.into(),
            started_at,
            health: HealthRuns::default(),
        }
    }

    /// Hands the counts kept since the last flush to the host: every [`FLUSH_PERIOD`], and
    /// when the VM stops.
    pub fn flush_counters(&self, env: &dyn Environment) {
        self.engine.flush_counters(env);
    }
}

/// What the host does with the stream after a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Let it go on.
    Continue,
    /// Keep the request from the upstream until its body has been checked, while the body
    /// still comes to this filter. (A proxy-wasm host cannot: its shell lets the headers go,
    /// and Envoy's buffer filter after this one holds the request.)
    HoldHeaders,
    /// Stop: the filter answered, holds the body until its end, or waits for its health run.
    Pause,
    /// Stop the whole request, body and trailers included, until the host is told to resume
    /// it (the rate limit service's answer).
    Wait,
}

/// One HTTP request and its response, as the core keeps it.
pub struct Exchange {
    /// The host's id of the exchange (health waiters are answered by it).
    id: u32,
    /// Decided when the request headers arrive; `None` if they never did (then the response
    /// is left alone).
    state: Option<ExchangeState>,
    /// A health check run in progress.
    health: Option<HealthRun>,
    /// The question to the rate limit service, until its answer.
    service_call: Option<global::ServiceCall>,
}

impl Exchange {
    pub fn new(id: u32) -> Self {
        Self {
            id,
            state: None,
            health: None,
            service_call: None,
        }
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    pub fn on_request_headers(
        &mut self,
        plugin: &Plugin,
        host: &impl Host,
        end_of_stream: bool,
    ) -> Flow {
        let engine = &plugin.engine;
        let (state, decision) = if engine.reads_request_headers() {
            // One host call for every header, read in place.
            let map = host.request_headers();
            let headers = Headers::new(map.pairs());
            engine.on_request_headers(Some(&headers), end_of_stream, host)
        } else {
            engine.on_request_headers(None, end_of_stream, host)
        };
        self.state = Some(state);
        match decision {
            RequestDecision::CheckHealth => self.start_health(plugin, host),
            RequestDecision::AskService { hold } => self.ask_service(plugin, host, hold),
            other => act(host, other),
        }
    }

    /// A chunk of request body: `body_size` is what the host reports (the chunk, or after a
    /// pause everything it holds).
    pub fn on_request_body(
        &mut self,
        plugin: &Plugin,
        host: &impl Host,
        body_size: usize,
        end_of_stream: bool,
    ) -> Flow {
        let Some(state) = self.state.as_mut() else {
            return Flow::Continue;
        };
        let engine = &plugin.engine;
        let step = engine.on_request_body(state, body_size, end_of_stream, host);
        let flow = body_flow(engine, state, step, host);
        self.unless_waiting(flow)
    }

    /// The request's trailers: its body ended without a last chunk.
    pub fn on_request_trailers(&mut self, plugin: &Plugin, host: &impl Host) -> Flow {
        let Some(state) = self.state.as_mut() else {
            return Flow::Continue;
        };
        let engine = &plugin.engine;
        let step = engine.on_request_trailers(state, host);
        let flow = body_flow(engine, state, step, host);
        self.unless_waiting(flow)
    }

    /// The response's headers (the upstream's, Envoy's own reply, or the filter's): read
    /// once, edited in the core, written once if something changed; or replaced.
    pub fn on_response_headers(&mut self, plugin: &Plugin, host: &impl Host) -> Flow {
        let Some(state) = self.state.as_ref() else {
            return Flow::Continue;
        };
        if !state.policies.edits_response_headers() {
            return Flow::Continue;
        }
        let map = host.response_headers();
        let mut headers = ResponseHeaders::new(map.pairs());
        match plugin.engine.on_response_headers(state, &mut headers, host) {
            ResponseDecision::Continue => {
                if headers.changed() {
                    host.set_response_headers(&headers);
                }
                Flow::Continue
            }
            ResponseDecision::Replace(response) => {
                // Sent straight to the client; the host drops the upstream's body.
                host.send_reply(&response);
                Flow::Pause
            }
        }
    }
}

impl Exchange {
    /// A reply this filter sends in the request phase, as the exchange's response policies
    /// edit it (CORS, RateLimit fields, security headers), for hosts that do not pass a
    /// filter's own local reply back through its response callbacks: Envoy's dynamic modules.
    /// (proxy-wasm does, and `on_response_headers` edits it there.)
    pub fn edit_own_reply(
        &self,
        plugin: &Plugin,
        env: &dyn Environment,
        reply: LocalResponse,
    ) -> LocalResponse {
        let Some(state) = self.state.as_ref() else {
            return reply;
        };
        if !state.policies.edits_response_headers() {
            return reply;
        }
        let status = reply.status.to_string();
        let pairs = std::iter::once((&b":status"[..], status.as_bytes()))
            .chain(
                reply
                    .headers
                    .iter()
                    .map(|(k, v)| (k.as_bytes(), v.as_bytes())),
            )
            .collect();
        let mut headers = ResponseHeaders::new(pairs);
        let edited = match plugin.engine.on_response_headers(state, &mut headers, env) {
            ResponseDecision::Continue => headers
                .pairs()
                .iter()
                .filter(|(k, _)| !k.starts_with(b":"))
                .map(|(k, v)| {
                    (
                        String::from_utf8_lossy(k).into_owned(),
                        String::from_utf8_lossy(v).into_owned(),
                    )
                })
                .collect(),
            ResponseDecision::Replace(replacement) => return replacement,
        };
        LocalResponse {
            status: reply.status,
            headers: edited,
            body: reply.body,
        }
    }
}

/// Carries out the engine's step for the request body (from a body chunk, or from the trailers
/// that ended the stream; in both cases the host still holds what it buffered for this filter).
fn body_flow(engine: &Engine, state: &mut ExchangeState, step: BodyStep, host: &impl Host) -> Flow {
    match step {
        BodyStep::Continue => Flow::Continue,
        // The host holds the body (Envoy: StopIterationAndBuffer) and hands it over whole at
        // its end.
        BodyStep::Pause => Flow::Pause,
        BodyStep::Check { size } => {
            let body = host.request_body(size);
            act(host, engine.on_request_body_complete(state, &body, host))
        }
        BodyStep::Respond(response) => {
            host.send_reply(&response);
            Flow::Pause
        }
    }
}

/// Carries out the engine's decision about the request.
fn act(host: &impl Host, decision: RequestDecision) -> Flow {
    match decision {
        // A question to the service is asked by `Exchange::ask_service`, never from here.
        RequestDecision::Continue
        | RequestDecision::CheckHealth
        | RequestDecision::AskService { .. } => Flow::Continue,
        RequestDecision::Hold => Flow::HoldHeaders,
        RequestDecision::Respond(response) => {
            host.send_reply(&response);
            Flow::Pause
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod cors_tests;
#[cfg(test)]
mod counters_tests;
#[cfg(test)]
mod errors_tests;
#[cfg(test)]
mod global_tests;
#[cfg(test)]
mod health_tests;
#[cfg(test)]
mod https_redirect_tests;
#[cfg(test)]
mod order_tests;
#[cfg(test)]
mod rate_limit_tests;
#[cfg(test)]
mod security_headers_tests;
#[cfg(test)]
mod validation_tests;
