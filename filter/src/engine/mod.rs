//! The per-request decisions: which policies apply to a request, what they decide about it,
//! and what they do to its response. It reads the request and response through views its
//! caller hands it; through an [`Environment`] it reads the clock and the client's address,
//! reads and writes the rate limiter's store (its buckets), bumps counters and writes log
//! lines.
//! What the host must do (answer, hold, let go, write headers) it returns to its caller.
//!
//! By phase: setup here; [`request`] (route, health, HTTPS redirect, CORS, rate limits,
//! validation), [`body`] (the request body's state machine), [`response`] (response edits,
//! error replacement), [`report`] (counters and log lines), [`types`] (what it decides and
//! what it keeps of an exchange).
//!
//! [`Environment`]: crate::environment::Environment

mod body;
mod client_address;
mod global;
mod health;
mod report;
mod request;
mod response;
mod types;

use std::sync::atomic::AtomicBool;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::policy::cors;
use crate::policy::health::Health;
use crate::policy::rate_limit::{KeyHasher, Limit, RateStore};
use crate::policy::validate::UnknownRoutes;
use crate::request::RequestHead;
use crate::routes::Route;

pub use client_address::{FORGEABLE_CLIENT_ADDRESS_DETAIL, FORGEABLE_CLIENT_ADDRESS_EVENT};
pub use types::{BodyStep, ExchangeState, RequestDecision, ResponseDecision};

/// The compiled config plus the decisions made from it.
#[derive(Debug)]
pub struct Engine {
    config: Config,
    reads_request_headers: bool,
    /// Set by `prepare` (rate limits need their tables and the shared hash secret).
    hasher: Option<KeyHasher>,
    metrics: Metrics,
    /// Whether this VM has already said that Envoy takes client addresses from headers the
    /// client sent (said once per VM; the engine is per VM).
    forgeable_client_warned: AtomicBool,
}

impl Engine {
    pub fn new(config: Config) -> Self {
        let reads_request_headers = !config.routes.is_empty()
            || config.health.is_some()
            || config.unknown_routes == UnknownRoutes::Reject
            || config.defaults.reads_request_headers()
            || config
                .routes
                .iter()
                .any(|r| r.policies.reads_request_headers());
        let metrics = Metrics::new(&config);
        Self {
            config,
            reads_request_headers,
            hasher: None,
            metrics,
            forgeable_client_warned: AtomicBool::new(false),
        }
    }

    /// A VM's engine from the plugin configuration's bytes: decoded, its `${NAME}` secrets
    /// looked up with `secret`, compiled, and its shared state created in `store` (the
    /// rate-limit key hash secret is `fresh_secret()` unless another worker made one). The
    /// error is the line that says why the config is refused.
    pub fn load(
        bytes: &[u8],
        secret: &dyn Fn(&str) -> Option<String>,
        store: &dyn RateStore,
        fresh_secret: impl FnOnce() -> Result<[u8; 16], String>,
    ) -> Result<Self, String> {
        let config = Config::from_bytes_with_env(bytes, secret).map_err(|e| e.to_string())?;
        let mut engine = Self::new(config);
        // Only rate limits key their state with the secret: no random bytes asked for otherwise.
        if !engine.config.limits.is_empty() {
            engine.prepare(store, fresh_secret()?)?;
        }
        Ok(engine)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether any decision needs the request's headers; if not, the exchange reads nothing
    /// and passes `None`.
    pub fn reads_request_headers(&self) -> bool {
        self.reads_request_headers
    }

    /// Creates what shared state the config needs in `store` (rate-limit tables, the key hash
    /// secret) if another worker has not already; run when a worker loads the config.
    pub fn prepare(&mut self, store: &dyn RateStore, fresh_secret: [u8; 16]) -> Result<(), String> {
        if self.config.limits.is_empty() {
            return Ok(());
        }
        // Global limits are counted by their service: no table here.
        let limits: Vec<&Limit> = self
            .config
            .limits
            .iter()
            .filter(|l| !l.is_global())
            .map(|l| l.as_ref())
            .collect();
        let hasher = store
            .prepare(&limits, fresh_secret)
            .map_err(|e| format!("rate limiting: {e}"))?;
        self.hasher = Some(hasher);
        Ok(())
    }

    /// The counters the engine reports, by index (the shell defines them once per VM).
    pub fn metric_names(&self) -> &[String] {
        self.metrics.names()
    }

    pub fn health(&self) -> Option<&Health> {
        self.config.health.as_ref()
    }

    /// The route a request belongs to, if any. A CORS preflight belongs to the route of the
    /// request it announces (`Access-Control-Request-Method` on the same path), so that a
    /// route written for `POST /users` answers the browser's `OPTIONS /users` with its own
    /// CORS policy (and, with `cors: false`, lets it through to the upstream).
    pub fn route_for(&self, request: &RequestHead<'_, '_>) -> Option<&Route> {
        match cors::announced_method(request) {
            Some(announced) => self.config.routes.find_preflight(announced, request.path),
            None => self.config.routes.find(request.method, request.path),
        }
    }
}

#[cfg(test)]
mod forwarded_for_tests;
#[cfg(test)]
mod load_tests;

// Property tests: native only (see Cargo.toml: on wasm32 under Node they would cost minutes).
#[cfg(all(test, not(target_family = "wasm")))]
mod tests;
