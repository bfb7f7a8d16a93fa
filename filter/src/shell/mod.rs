//! The proxy-wasm shell: contexts that forward the host's callbacks to the core
//! ([`crate::exchange`]), and ([`host`]) the host boundary implemented over proxy-wasm's raw
//! calls. Nothing here decides anything.

mod host;

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

use crate::engine::Engine;
use crate::exchange::{self, Flow, Plugin};
use crate::policy::rate_limit::ServiceAnswer;
use host::ExchangeHost;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(PluginRoot::default()) });
}}

/// What every exchange of a VM shares.
struct Shared {
    plugin: Plugin,
    /// The host's ids of the engine's counters, by index.
    metrics: Vec<Option<u32>>,
}

/// One per plugin per VM: holds the compiled configuration all of the VM's requests share.
#[derive(Default)]
struct PluginRoot {
    shared: Option<Rc<Shared>>,
}

impl PluginRoot {
    fn flush_counters(&self) {
        if let Some(shared) = &self.shared {
            // Counters belong to no exchange: the id is never read for them.
            let host = ExchangeHost::new(0, &shared.metrics);
            shared.plugin.flush_counters(&host);
        }
    }
}

impl Context for PluginRoot {
    /// The plugin is going away (a new config, or Envoy stopping): the last counts go out.
    fn on_done(&mut self) -> bool {
        self.flush_counters();
        true
    }
}

impl RootContext for PluginRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        // Should the host configure this root again, the counts kept so far go out first.
        self.flush_counters();
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        // `${NAME}` secrets come from the VM's environment (vm_config.environment_variables).
        let engine = Engine::load(
            &bytes,
            &|name| std::env::var(name).ok(),
            &host::HostSharedData,
            host::random_secret,
        );
        let engine = match engine {
            Ok(engine) => engine,
            Err(error) => {
                // Returning false makes Envoy refuse the plugin; this line says why.
                host::log(LogLevel::Error, &error);
                return false;
            }
        };
        let metrics = engine
            .metric_names()
            .iter()
            .map(|name| host::define_counter(name))
            .collect();
        let plugin = Plugin::new(engine, host::now_unix_nanos());
        self.shared = Some(Rc::new(Shared { plugin, metrics }));
        // Counts are kept in the VM and handed to Envoy on this tick (`exchange::FLUSH_PERIOD`).
        if !host::set_tick_period(exchange::FLUSH_PERIOD) {
            host::log(
                LogLevel::Error,
                "the host refused a tick: counters reach it only when the plugin stops",
            );
        }
        true
    }

    fn on_tick(&mut self) {
        self.flush_counters();
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let shared = self.shared.clone()?;
        Some(Box::new(ExchangeContext {
            shared,
            core: exchange::Exchange::new(context_id),
        }))
    }
}

/// One per HTTP request/response exchange: the core's exchange, and what the VM's share.
struct ExchangeContext {
    shared: Rc<Shared>,
    core: exchange::Exchange,
}

impl ExchangeContext {
    /// The core's exchange, the VM's plugin, and the host as this exchange sees it.
    fn parts(&mut self) -> (&mut exchange::Exchange, &Plugin, ExchangeHost<'_>) {
        let host = ExchangeHost::new(self.core.id(), &self.shared.metrics);
        (&mut self.core, &self.shared.plugin, host)
    }
}

impl Context for ExchangeContext {
    fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        _body_size: usize,
        _num_trailers: usize,
    ) {
        let (core, plugin, host) = self.parts();
        core.on_http_call_response(plugin, &host, token, num_headers > 0);
    }

    /// The rate limit service's answer: `status_code` 0 with the message, or the call closed
    /// with that gRPC status.
    fn on_grpc_call_response(&mut self, token: u32, status_code: u32, response_size: usize) {
        let (core, plugin, host) = self.parts();
        if status_code == 0 {
            let message = host::grpc_message(response_size);
            core.on_grpc_call_response(plugin, &host, token, ServiceAnswer::Message(&message));
        } else {
            let (code, message) = host::grpc_status();
            let answer = ServiceAnswer::Closed {
                code: if code == 0 { status_code } else { code },
                message: &message,
            };
            core.on_grpc_call_response(plugin, &host, token, answer);
        }
    }

    fn on_done(&mut self) -> bool {
        let (core, plugin, host) = self.parts();
        core.on_done(plugin, &host);
        true
    }
}

impl HttpContext for ExchangeContext {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let (core, plugin, host) = self.parts();
        action(core.on_request_headers(plugin, &host, end_of_stream))
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let (core, plugin, host) = self.parts();
        action(core.on_request_body(plugin, &host, body_size, end_of_stream))
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        let (core, plugin, host) = self.parts();
        action(core.on_request_trailers(plugin, &host))
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let (core, plugin, host) = self.parts();
        action(core.on_response_headers(plugin, &host))
    }
}

fn action(flow: Flow) -> Action {
    match flow {
        Flow::Continue => Action::Continue,
        // proxy-wasm cannot stop the headers and still be handed the body: the host turns a
        // filter's StopIteration into StopAllIteration, and then no body callback comes until
        // the filter continues. So the headers go on to the next filter, Envoy's buffer filter
        // (docs/config.md), which holds the request from the router until it ends; this filter
        // holds and checks the body before any of it reaches that filter.
        Flow::HoldHeaders => Action::Continue,
        // In a body callback, Envoy holds the chunk (StopIterationAndBuffer). In the headers,
        // Envoy's Wasm filter stops everything (StopAllIterationAndWatermark): `Wait`.
        Flow::Pause | Flow::Wait => Action::Pause,
    }
}
