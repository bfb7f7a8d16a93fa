//! The only module that talks to the proxy-wasm host: it turns host callbacks into calls on
//! the [`Engine`] and carries out what the engine decides.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

use crate::config::Config;
use crate::engine::Engine;

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
        Some(Box::new(Exchange { engine }))
    }
}

/// One per HTTP request/response exchange.
struct Exchange {
    #[allow(dead_code)]
    engine: Rc<Engine>,
}

impl Context for Exchange {}

impl HttpContext for Exchange {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        Action::Continue
    }
}

fn log(level: LogLevel, message: &str) {
    // Logging can only fail if the host is gone; nothing useful to do then.
    let _ = proxy_wasm::hostcalls::log(level, message);
}
