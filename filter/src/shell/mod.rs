//! The only module that talks to the proxy-wasm host: it turns host callbacks into calls on
//! the [`Engine`] and carries out what the engine decides, with as few host calls as it can.

mod health;
mod host;

use std::cell::RefCell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MapType};

use crate::config::Config;
use crate::engine::{BodyStep, Engine, ExchangeState, RequestDecision, ResponseDecision};
use crate::environment::Environment;
use crate::environment::SharedData;
use crate::logging::Level;
use crate::pairs;
use crate::reply::LocalResponse;
use crate::request::Headers;
use crate::response::ResponseHeaders;
use health::{HealthCache, HealthRun, InFlight};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(PluginRoot::default()) });
}}

/// What every exchange of a VM shares.
struct Shared {
    engine: Engine,
    /// The host's ids of the engine's counters, by index.
    metrics: Vec<Option<u32>>,
    /// When the VM loaded the config (for the health endpoint's uptime).
    started_at: u64,
    health_cache: RefCell<HealthCache>,
    /// The health run under way in this VM, if any: one at a time, whoever asks meanwhile
    /// waits for its answer (so the endpoint never multiplies the load on dependencies).
    health_run: RefCell<Option<InFlight>>,
}

/// One per plugin per VM: holds the compiled configuration all of the VM's requests share.
#[derive(Default)]
struct PluginRoot {
    shared: Option<Rc<Shared>>,
}

impl Context for PluginRoot {}

impl RootContext for PluginRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        // `${NAME}` secrets come from the VM's environment (vm_config.environment_variables).
        let config = Config::from_bytes_with_env(&bytes, &|name| std::env::var(name).ok());
        let mut engine = match config {
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
        let metrics = engine
            .metric_names()
            .iter()
            .map(|name| host::define_counter(name))
            .collect();
        self.shared = Some(Rc::new(Shared {
            engine,
            metrics,
            started_at: host::now_unix_nanos(),
            health_cache: RefCell::new(HealthCache::default()),
            health_run: RefCell::new(None),
        }));
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let shared = self.shared.clone()?;
        Some(Box::new(Exchange {
            id: context_id,
            shared,
            state: None,
            health: None,
        }))
    }
}

/// One per HTTP request/response exchange.
struct Exchange {
    id: u32,
    shared: Rc<Shared>,
    /// Decided when the request headers arrive; `None` if they never did (then the response
    /// is left alone).
    state: Option<ExchangeState>,
    /// A health check run in progress.
    health: Option<HealthRun>,
}

impl Exchange {
    fn env(&self) -> HostEnvironment<'_> {
        HostEnvironment {
            metrics: &self.shared.metrics,
        }
    }

    fn engine(&self) -> &Engine {
        &self.shared.engine
    }
}

impl Context for Exchange {
    fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        _body_size: usize,
        _num_trailers: usize,
    ) {
        let Some(run) = self.health.as_mut() else {
            return;
        };
        // No headers: the call was reset (a timeout arrives as Envoy's own 504).
        let status = (num_headers > 0)
            .then(|| host::header_map(MapType::HttpCallResponseHeaders))
            .and_then(|buffer| {
                let pairs = pairs::decode(&buffer)?;
                let (_, value) = pairs.into_iter().find(|(k, _)| *k == b":status")?;
                std::str::from_utf8(value).ok()?.parse().ok()
            });
        run.record(token, status, host::now_unix_nanos());
        if run.is_done() {
            self.finish_health();
        }
    }

    fn on_done(&mut self) -> bool {
        // The client left while this exchange's health run was under way: Envoy cancels its
        // calls, so those who wait for it get what is known (the missing checks unhealthy).
        if let Some(run) = self.health.take() {
            let now = host::now_unix_nanos();
            let uptime =
                std::time::Duration::from_nanos(now.saturating_sub(self.shared.started_at));
            if let Some(report) = self
                .engine()
                .health_report(&run.outcomes(), uptime, &self.env())
            {
                self.answer_waiters(&report);
            }
        }
        true
    }
}

impl HttpContext for Exchange {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let env = self.env();
        let (state, decision) = if self.engine().reads_request_headers() {
            // One host call for every header, read in place.
            let buffer = host::header_map(MapType::HttpRequestHeaders);
            let headers = Headers::new(pairs::decode(&buffer).unwrap_or_default());
            self.engine()
                .on_request_headers(Some(&headers), end_of_stream, &env)
        } else {
            self.engine().on_request_headers(None, end_of_stream, &env)
        };
        self.state = Some(state);
        match decision {
            RequestDecision::CheckHealth => self.start_health(),
            other => act(other),
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let shared = Rc::clone(&self.shared);
        let env = HostEnvironment {
            metrics: &shared.metrics,
        };
        let Some(state) = self.state.as_mut() else {
            return Action::Continue;
        };
        let step = shared
            .engine
            .on_request_body(state, body_size, end_of_stream, &env);
        body_action(&shared.engine, state, step, &env)
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        let shared = Rc::clone(&self.shared);
        let env = HostEnvironment {
            metrics: &shared.metrics,
        };
        let Some(state) = self.state.as_mut() else {
            return Action::Continue;
        };
        let step = shared.engine.on_request_trailers(state, &env);
        body_action(&shared.engine, state, step, &env)
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(state) = self.state.as_ref() else {
            return Action::Continue;
        };
        if !state.policies.edits_response_headers() {
            return Action::Continue;
        }
        // Read once, edit in the core, write once: two host calls whatever the number of
        // headers set or removed.
        let buffer = host::header_map(MapType::HttpResponseHeaders);
        let mut headers = ResponseHeaders::new(pairs::decode(&buffer).unwrap_or_default());
        match self
            .engine()
            .on_response_headers(state, &mut headers, &self.env())
        {
            ResponseDecision::Continue => {
                if headers.changed()
                    && !host::set_header_map(MapType::HttpResponseHeaders, &headers.encode())
                {
                    log(LogLevel::Warn, "could not write the response headers");
                }
                Action::Continue
            }
            ResponseDecision::Replace(response) => {
                // Sent straight to the client; Envoy drops the upstream's body.
                send(&response);
                Action::Pause
            }
        }
    }
}

impl Exchange {
    /// Answers from the cache, waits for the run under way, or dispatches the checks (in
    /// parallel) and waits.
    fn start_health(&mut self) -> Action {
        let now = host::now_unix_nanos();
        let Some(health) = self.engine().health() else {
            return Action::Continue;
        };
        if let Some(cached) = self
            .shared
            .health_cache
            .borrow()
            .fresh(now, health.cache_for)
        {
            send(cached);
            return Action::Pause;
        }
        let waiters = {
            let mut under_way = self.shared.health_run.borrow_mut();
            if let Some(run) = under_way.as_mut()
                && !run.is_overdue(now, health.timeout)
            {
                run.waiters.push(self.id);
                return Action::Pause;
            }
            // A run that should have ended (never, unless Envoy lost its calls): this one
            // takes over its waiters.
            under_way.take().map(|run| run.waiters).unwrap_or_default()
        };
        *self.shared.health_run.borrow_mut() = Some(InFlight::new(self.id, now, waiters));
        let mut run = HealthRun::new(health.checks.len(), now);
        for (index, check) in health.checks.iter().enumerate() {
            let headers: Vec<(&str, &str)> = check
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            match self.dispatch_http_call(&check.cluster, headers, None, vec![], health.timeout) {
                Ok(token) => run.dispatched(token, index),
                // An unknown cluster, or Envoy could not start the call: that check fails.
                Err(_) => run.failed(index, now),
            }
        }
        let done = run.is_done();
        self.health = Some(run);
        if done {
            self.finish_health();
        }
        Action::Pause
    }

    fn finish_health(&mut self) {
        let Some(run) = self.health.take() else {
            return;
        };
        let now = host::now_unix_nanos();
        let uptime = std::time::Duration::from_nanos(now.saturating_sub(self.shared.started_at));
        let env = self.env();
        if let Some(report) = self.engine().health_report(&run.outcomes(), uptime, &env) {
            self.shared
                .health_cache
                .borrow_mut()
                .store(now, report.clone());
            send(&report);
            self.answer_waiters(&report);
        }
    }

    /// Sends the answer of this exchange's run to every exchange that waited for it (those
    /// that went away meanwhile are skipped: Envoy no longer knows their ids).
    fn answer_waiters(&self, report: &LocalResponse) {
        let waiters = self
            .shared
            .health_run
            .borrow_mut()
            .take_if(|run| run.owner == self.id)
            .map(|run| run.waiters)
            .unwrap_or_default();
        if waiters.is_empty() {
            return;
        }
        for waiter in waiters {
            if proxy_wasm::hostcalls::set_effective_context(waiter).is_ok() {
                send(report);
            }
        }
        // Back to this exchange for whatever the host does next.
        let _ = proxy_wasm::hostcalls::set_effective_context(self.id);
    }
}

/// Carries out the engine's step for the request body (from a body chunk, or from the trailers
/// that ended the stream; in both cases Envoy still holds what it buffered for this filter).
fn body_action(
    engine: &Engine,
    state: &mut ExchangeState,
    step: BodyStep,
    env: &HostEnvironment<'_>,
) -> Action {
    match step {
        BodyStep::Continue => Action::Continue,
        // Envoy holds the body (StopIterationAndBuffer) and hands it over whole at its end.
        BodyStep::Pause => Action::Pause,
        BodyStep::Check { size } => {
            let body = host::request_body(size);
            act(engine.on_request_body_complete(state, &body, env))
        }
        BodyStep::Respond(response) => {
            send(&response);
            Action::Pause
        }
    }
}

fn act(decision: RequestDecision) -> Action {
    match decision {
        RequestDecision::Continue | RequestDecision::CheckHealth => Action::Continue,
        // proxy-wasm cannot stop the headers and still be handed the body: the host turns a
        // filter's StopIteration into StopAllIteration, and then no body callback comes until
        // the filter continues. So the headers go on to the next filter, Envoy's buffer filter
        // (docs/config.md), which holds the request from the router until it ends; this filter
        // holds and checks the body before any of it reaches that filter.
        RequestDecision::Hold => Action::Continue,
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

    fn log(&self, level: Level, line: &str) {
        let level = match level {
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        log(level, line);
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

/// Sends the filter's own response. When sent while the request is being decoded, Envoy passes
/// it back through this filter's response callbacks, where the response policies apply to it
/// like to any other.
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
