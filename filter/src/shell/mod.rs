//! The only module that talks to the proxy-wasm host: it turns host callbacks into calls on
//! the [`Engine`] and carries out what the engine decides, with as few host calls as it can.

mod host;

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MapType};

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use crate::config::Config;
use crate::engine::{BodyStep, Engine, ExchangeState, RequestDecision};
use crate::environment::Environment;
use crate::pairs;
use crate::policy::rate_limit::SharedData;
use crate::reply::LocalResponse;
use crate::request::Headers;
use crate::response::ResponseHeaders;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(PluginRoot::default()) });
}}

/// One per plugin per VM: holds the compiled configuration all of the VM's requests share.
#[derive(Default)]
struct PluginRoot {
    engine: Option<Rc<Engine>>,
    metrics: Rc<Vec<Option<u32>>>,
}

impl Context for PluginRoot {}

impl RootContext for PluginRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        let mut engine = match Config::from_bytes(&bytes) {
            Ok(config) => Engine::new(config),
            Err(error) => {
                // Returning false makes Envoy refuse the plugin; this line says why.
                log(LogLevel::Error, &error.to_string());
                return false;
            }
        };
        if let Err(error) = engine.prepare(&host::HostSharedData, random_secret()) {
            log(LogLevel::Error, &error);
            return false;
        }
        self.metrics = Rc::new(
            engine
                .metric_names()
                .iter()
                .map(|name| host::define_counter(name))
                .collect(),
        );
        self.engine = Some(Rc::new(engine));
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let engine = self.engine.clone()?;
        Some(Box::new(Exchange {
            engine,
            metrics: Rc::clone(&self.metrics),
            state: None,
        }))
    }
}

/// One per HTTP request/response exchange.
struct Exchange {
    engine: Rc<Engine>,
    /// The host's ids of the engine's counters, by index.
    metrics: Rc<Vec<Option<u32>>>,
    /// Decided when the request headers arrive; `None` if they never did (then the response
    /// is left alone).
    state: Option<ExchangeState>,
}

impl Context for Exchange {}

impl HttpContext for Exchange {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let env = HostEnvironment {
            metrics: &self.metrics,
        };
        let (state, decision) = if self.engine.reads_request_headers() {
            // One host call for every header, read in place.
            let buffer = host::header_map(MapType::HttpRequestHeaders);
            let headers = Headers::new(pairs::decode(&buffer).unwrap_or_default());
            self.engine
                .on_request_headers(Some(&headers), end_of_stream, &env)
        } else {
            self.engine.on_request_headers(None, end_of_stream, &env)
        };
        self.state = Some(state);
        act(decision)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(state) = self.state.as_mut() else {
            return Action::Continue;
        };
        let env = HostEnvironment {
            metrics: &self.metrics,
        };
        match self
            .engine
            .on_request_body(state, body_size, end_of_stream, &env)
        {
            BodyStep::Continue => Action::Continue,
            // Envoy holds the body (StopIterationAndBuffer) and hands it over whole at its end.
            BodyStep::Pause => Action::Pause,
            BodyStep::Check => {
                let body = host::request_body(body_size);
                act(self.engine.on_request_body_complete(state, &body, &env))
            }
            BodyStep::Respond(response) => {
                send(&response);
                Action::Pause
            }
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(state) = self.state.as_ref() else {
            return Action::Continue;
        };
        if state.policies.edits_response_headers() {
            // Read once, edit in the core, write once: two host calls whatever the number of
            // headers set or removed.
            let buffer = host::header_map(MapType::HttpResponseHeaders);
            let mut headers = ResponseHeaders::new(pairs::decode(&buffer).unwrap_or_default());
            self.engine.on_response_headers(state, &mut headers);
            if headers.changed()
                && !host::set_header_map(MapType::HttpResponseHeaders, &headers.encode())
            {
                log(LogLevel::Warn, "could not write the response headers");
            }
        }
        Action::Continue
    }
}

fn act(decision: RequestDecision) -> Action {
    match decision {
        RequestDecision::Continue => Action::Continue,
        RequestDecision::Respond(response) => {
            send(&response);
            Action::Pause
        }
    }
}

/// The host, as the engine sees it; each call is made only when a policy asks.
struct HostEnvironment<'m> {
    metrics: &'m [Option<u32>],
}

impl Environment for HostEnvironment<'_> {
    fn now_unix_nanos(&self) -> u64 {
        host::now_unix_nanos()
    }

    fn client_address(&self) -> Option<String> {
        host::property(b"source\0address").and_then(|bytes| String::from_utf8(bytes).ok())
    }

    fn shared_data(&self) -> &dyn SharedData {
        &host::HostSharedData
    }

    fn increment(&self, metric: usize, by: u64) {
        if let Some(Some(id)) = self.metrics.get(metric) {
            host::increment_counter(*id, by);
        }
    }
}

/// 16 random bytes (from the host, through WASI `random_get`, which seeds std's hashers).
fn random_secret() -> [u8; 16] {
    let mut secret = [0u8; 16];
    for half in secret.chunks_exact_mut(8) {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u8(0);
        half.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    secret
}

/// Sends the filter's own response. Envoy passes it back through this filter's response
/// callbacks, where the response policies apply to it like to any other.
fn send(response: &LocalResponse) {
    let headers: Vec<(&str, &str)> = response
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let body = (!response.body.is_empty()).then_some(response.body.as_slice());
    if proxy_wasm::hostcalls::send_http_response(u32::from(response.status), headers, body).is_err()
    {
        log(LogLevel::Warn, "could not send a local response");
    }
}

fn log(level: LogLevel, message: &str) {
    // Logging can only fail if the host is gone; nothing useful to do then.
    let _ = proxy_wasm::hostcalls::log(level, message);
}
