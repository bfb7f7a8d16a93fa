//! The only module that talks to the proxy-wasm host: it turns host callbacks into calls on
//! the [`Engine`] and carries out what the engine decides, with as few host calls as it can.

mod host;

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MapType};

use crate::config::Config;
use crate::engine::{Engine, ExchangeState, RequestDecision};
use crate::pairs;
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
}

impl Context for PluginRoot {}

impl RootContext for PluginRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        match Config::from_bytes(&bytes) {
            Ok(config) => {
                self.engine = Some(Rc::new(Engine::new(config)));
                true
            }
            Err(error) => {
                // Returning false makes Envoy refuse the plugin; this line says why.
                log(LogLevel::Error, &error.to_string());
                false
            }
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let engine = self.engine.clone()?;
        Some(Box::new(Exchange {
            engine,
            state: None,
        }))
    }
}

/// One per HTTP request/response exchange.
struct Exchange {
    engine: Rc<Engine>,
    /// Decided when the request headers arrive; `None` if they never did (then the response
    /// is left alone).
    state: Option<ExchangeState>,
}

impl Context for Exchange {}

impl HttpContext for Exchange {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let (state, decision) = if self.engine.reads_request_headers() {
            // One host call for every header, read in place.
            let buffer = host::header_map(MapType::HttpRequestHeaders);
            let headers = Headers::new(pairs::decode(&buffer).unwrap_or_default());
            self.engine.on_request_headers(Some(&headers))
        } else {
            self.engine.on_request_headers(None)
        };
        self.state = Some(state);
        match decision {
            RequestDecision::Continue => Action::Continue,
            RequestDecision::Respond(response) => {
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
