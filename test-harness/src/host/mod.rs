//! A native proxy-wasm host: runs the real compiled module under wasmtime and plays Envoy's
//! side of ABI 0.2.1, with several worker VMs sharing data, metrics and a clock the test
//! controls.
//!
//! ```no_run
//! use test_harness::host::Harness;
//! use test_harness::{Request, Response};
//! # fn main() -> Result<(), test_harness::host::HarnessError> {
//! let envoy = Harness::filter().config(serde_json::json!({})).workers(2).start()?;
//! let exchange = envoy.request(Request::get("/users"))?;
//! let upstream = exchange.upstream_request()?;
//! let response = exchange.respond(Response::ok().header("x-powered-by", "Express"))?;
//! # Ok(()) }
//! ```
//!
//! Differences from Envoy are listed in ARCHITECTURE.md.

mod abi;
mod callout;
mod error;
mod grpc;
mod hostcalls;
mod memory;
mod module_cache;
mod shared;
mod state;
mod vm;
mod wasi;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub use abi::LogLevel;
pub use callout::{CallOutcome, HttpCall};
pub use error::{HarnessError, Result};
pub use grpc::{GrpcCall, GrpcOutcome};
pub use shared::{Interference, LogRecord, SharedCounters, SharedDataMap, Stat, VmLabel};
pub use state::StreamOutcome;
pub use vm::Cost;

use shared::Shared;
use state::{HostState, PluginSettings};
use vm::Vm;

use crate::message::{Request, Response};

/// Builds a running plugin: the module, its configuration, how many workers.
pub struct Harness {
    wasm: std::result::Result<PathBuf, String>,
    plugin: PluginSettings,
    workers: usize,
}

impl Harness {
    /// The module at `path`.
    pub fn load(path: impl Into<PathBuf>) -> Self {
        Self {
            wasm: Ok(path.into()),
            plugin: PluginSettings::default(),
            workers: 1,
        }
    }

    /// This project's filter (`dist/hardening.wasm`), built first if missing or stale.
    pub fn filter() -> Self {
        let wasm = xtask::wasm::ensure(&xtask::wasm::FILTER);
        Self {
            wasm,
            plugin: PluginSettings::default(),
            workers: 1,
        }
    }

    /// The plugin configuration as JSON.
    pub fn config(self, config: serde_json::Value) -> Self {
        self.config_bytes(config.to_string().into_bytes())
    }

    /// The plugin configuration exactly as Envoy would hand it over.
    pub fn config_bytes(mut self, bytes: Vec<u8>) -> Self {
        self.plugin.configuration = bytes;
        self
    }

    pub fn vm_config_bytes(mut self, bytes: Vec<u8>) -> Self {
        self.plugin.vm_configuration = bytes;
        self
    }

    /// Worker VMs (Envoy's `--concurrency`); the main thread gets one more VM.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// An entry of `vm_config.environment_variables`.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.plugin.env.push((key.into(), value.into()));
        self
    }

    /// A cluster `dispatch_http_call` and `dispatch_grpc_call` may name.
    pub fn cluster(mut self, name: &str) -> Self {
        self.plugin.clusters.push(name.into());
        self
    }

    /// How clusters answer HTTP calls (default: 503 "no healthy upstream").
    pub fn on_http_call(
        mut self,
        responder: impl Fn(&HttpCall) -> CallOutcome + Send + Sync + 'static,
    ) -> Self {
        self.plugin.responder = Some(Arc::new(responder));
        self
    }

    /// How clusters answer gRPC calls (default: close 14 "no healthy upstream").
    pub fn on_grpc_call(
        mut self,
        responder: impl Fn(&GrpcCall) -> GrpcOutcome + Send + Sync + 'static,
    ) -> Self {
        self.plugin.grpc_responder = Some(Arc::new(responder));
        self
    }

    /// A property the host reports (dotted path, raw bytes).
    pub fn property(mut self, path: &str, value: &[u8]) -> Self {
        self.plugin.properties.push((path.into(), value.to_vec()));
        self
    }

    /// Envoy's stream buffer limit (default 1 MiB).
    pub fn buffer_limit(mut self, bytes: usize) -> Self {
        self.plugin.buffer_limit = bytes;
        self
    }

    /// The level `proxy_get_log_level` reports.
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.plugin.log_level = level;
        self
    }

    /// Compiles the module (once per process per module) and starts it as Envoy does: a
    /// configuration canary that is then dropped, the main thread's VM, and one VM per worker.
    /// A refused configuration is `Err(ConfigRejected)`.
    pub fn start(self) -> Result<Proxy> {
        let path = self.wasm.map_err(HarnessError::Load)?;
        let (engine, module) = module_cache::load(&path)?;
        let mut linker = wasmtime::Linker::new(&engine);
        hostcalls::add_to_linker(&mut linker)
            .map_err(|e| HarnessError::Instantiate(e.to_string()))?;
        wasi::add_to_linker(&mut linker).map_err(|e| HarnessError::Instantiate(e.to_string()))?;
        stub_unknown_imports(&mut linker, &module)?;

        let shared = Arc::new(Shared::default());
        let plugin = Arc::new(self.plugin);
        let new_vm = |label| {
            Vm::start(
                &engine,
                &module,
                &linker,
                HostState::new(label, Arc::clone(&shared), Arc::clone(&plugin)),
            )
        };
        drop(new_vm(VmLabel::Canary)?);
        let main = Mutex::new(new_vm(VmLabel::Main)?);
        let workers = (0..self.workers)
            .map(|i| new_vm(VmLabel::Worker(i)).map(Mutex::new))
            .collect::<Result<Vec<_>>>()?;
        Ok(Proxy {
            shared,
            main,
            workers,
            next_worker: AtomicUsize::new(0),
        })
    }
}

/// Envoy registers every `env.proxy_*` function; those this host does not implement answer
/// Unimplemented. A WASI import Envoy does not provide makes the module fail to load, as it
/// does in Envoy.
fn stub_unknown_imports(
    linker: &mut wasmtime::Linker<HostState>,
    module: &wasmtime::Module,
) -> Result<()> {
    let probe = HostState::new(
        VmLabel::Canary,
        Arc::new(Shared::default()),
        Arc::new(PluginSettings::default()),
    );
    let mut store = wasmtime::Store::new(module.engine(), probe);
    for import in module.imports() {
        let (module_name, name) = (import.module(), import.name());
        let wasmtime::ExternType::Func(ty) = import.ty() else {
            continue;
        };
        let defined = linker.get_by_import(&mut store, &import).is_some();
        if defined {
            continue;
        }
        if module_name.starts_with("wasi") && !wasi::PROVIDED.contains(&name) {
            return Err(HarnessError::Instantiate(format!(
                "the module imports {module_name}.{name}, which Envoy does not provide"
            )));
        }
        linker
            .func_new(
                module_name,
                name,
                ty.clone(),
                |_caller, _params, results| {
                    if let Some(first) = results.first_mut() {
                        *first = wasmtime::Val::I32(abi::Status::Unimplemented.code());
                    }
                    Ok(())
                },
            )
            .map_err(|e| HarnessError::Instantiate(e.to_string()))?;
    }
    Ok(())
}

/// The running plugin: the main thread's VM and the workers' VMs, sharing data, metrics, the
/// clock and the log.
pub struct Proxy {
    shared: Arc<Shared>,
    main: Mutex<Vm>,
    workers: Vec<Mutex<Vm>>,
    next_worker: AtomicUsize,
}

fn counter_in(stats: &std::collections::BTreeMap<String, Stat>, name: &str) -> Option<u64> {
    match stats.get(name) {
        Some(Stat::Counter(v)) => Some(*v),
        _ => None,
    }
}

fn lock(vm: &Mutex<Vm>) -> MutexGuard<'_, Vm> {
    vm.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Proxy {
    /// Sends a request to the next worker (round robin).
    pub fn request(&self, request: Request) -> Result<Exchange<'_>> {
        let worker = self.next_worker.fetch_add(1, Ordering::SeqCst) % self.workers.len();
        self.request_on(worker, request)
    }

    /// Sends a request to a given worker.
    pub fn request_on(&self, worker: usize, request: Request) -> Result<Exchange<'_>> {
        let vm = self.workers.get(worker).ok_or_else(|| {
            HarnessError::Usage(format!("there are only {} workers", self.workers.len()))
        })?;
        let ctx = lock(vm).begin(&request)?;
        Ok(Exchange {
            proxy: self,
            worker,
            ctx,
        })
    }

    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// A worker VM's linear memory and the fuel its `proxy_on_configure` used.
    pub fn worker_footprint(&self, worker: usize) -> Option<(usize, u64)> {
        let mut vm = lock(self.workers.get(worker)?);
        let fuel = vm.configure_fuel;
        Some((vm.memory_bytes(), fuel))
    }

    /// Moves the clock forward and delivers whatever became due in every VM (ticks, HTTP and
    /// gRPC call answers and timeouts), each at its own time, in order, as a running Envoy
    /// would.
    pub fn advance(&self, by: Duration) -> Result<()> {
        let clock = &self.shared.clock;
        let target = clock
            .monotonic_nanos()
            .saturating_add(u64::try_from(by.as_nanos()).unwrap_or(u64::MAX));
        loop {
            let mut next = lock(&self.main).next_due();
            for vm in &self.workers {
                next = match (next, lock(vm).next_due()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            let step_to = match next {
                Some(at) if at <= target => at,
                _ => target,
            };
            clock.advance(Duration::from_nanos(
                step_to.saturating_sub(clock.monotonic_nanos()),
            ));
            lock(&self.main).run_due()?;
            for vm in &self.workers {
                lock(vm).run_due()?;
            }
            if step_to >= target {
                return Ok(());
            }
        }
    }

    /// Steps the wall clock back (as NTP may); monotonic time is unaffected.
    pub fn step_wall_clock_back(&self, by: Duration) {
        self.shared.clock.step_wall_back(by);
    }

    pub fn wall_clock_nanos(&self) -> u64 {
        self.shared.clock.wall_nanos()
    }

    /// Every line the module logged, from every VM, in order.
    pub fn logs(&self) -> Vec<LogRecord> {
        self.shared.logs()
    }

    /// The messages logged at `level` or above.
    pub fn log_messages(&self, at_least: LogLevel) -> Vec<String> {
        self.logs()
            .into_iter()
            .filter(|r| r.level >= at_least)
            .map(|r| r.message)
            .collect()
    }

    /// Fires every VM's tick now (the filter hands its counts to the host on its tick); the
    /// first VM that failed is the error, the others still tick.
    pub fn tick(&self) -> Result<()> {
        let mut outcome = lock(&self.main).tick_now();
        for vm in &self.workers {
            let ticked = lock(vm).tick_now();
            if outcome.is_ok() {
                outcome = ticked;
            }
        }
        outcome
    }

    /// The host's metrics as they stand, without a tick.
    pub fn stats_now(&self) -> std::collections::BTreeMap<String, Stat> {
        self.shared.stats()
    }

    /// The host's metrics after every VM's next tick (a VM that failed does not tick).
    pub fn stats(&self) -> std::collections::BTreeMap<String, Stat> {
        let _ = self.tick();
        self.shared.stats()
    }

    /// A counter's value after every VM's next tick, if the module defined it.
    pub fn counter(&self, name: &str) -> Option<u64> {
        counter_in(&self.stats(), name)
    }

    /// A counter's value as it stands, without a tick.
    pub fn counter_now(&self, name: &str) -> Option<u64> {
        counter_in(&self.stats_now(), name)
    }

    /// Reads or changes shared data from the host side (a write bumps the CAS, as a write
    /// from another VM would).
    pub fn shared_data<R>(&self, f: impl FnOnce(&mut SharedDataMap) -> R) -> R {
        self.shared.with_data(f)
    }

    /// Installs (or removes) a hook that runs after every shared-data `get`, to force CAS
    /// conflicts.
    pub fn interfere(&self, hook: Option<Interference>) {
        self.shared.set_interference(hook);
    }

    pub fn shared_counters(&self) -> SharedCounters {
        self.shared.shared_counters()
    }

    /// HTTP calls the module dispatched, from every VM.
    pub fn http_calls(&self) -> Vec<HttpCall> {
        let mut calls = lock(&self.main).calls_made();
        for vm in &self.workers {
            calls.extend(lock(vm).calls_made());
        }
        calls
    }

    /// gRPC calls the module dispatched, from every VM.
    pub fn grpc_calls(&self) -> Vec<GrpcCall> {
        let mut calls = lock(&self.main).grpc_calls_made();
        for vm in &self.workers {
            calls.extend(lock(vm).grpc_calls_made());
        }
        calls
    }

    /// gRPC calls dispatched in every VM and neither answered nor cancelled yet.
    pub fn pending_grpc_calls(&self) -> usize {
        let workers: usize = self
            .workers
            .iter()
            .map(|vm| lock(vm).pending_grpc_calls())
            .sum();
        lock(&self.main).pending_grpc_calls() + workers
    }

    /// Whether a worker's VM has failed (trapped).
    pub fn worker_failed(&self, worker: usize) -> bool {
        self.workers
            .get(worker)
            .is_some_and(|vm| lock(vm).is_failed())
    }
}

/// One request/response exchange in a worker.
pub struct Exchange<'p> {
    proxy: &'p Proxy,
    worker: usize,
    ctx: u32,
}

impl Exchange<'_> {
    fn vm(&self) -> MutexGuard<'_, Vm> {
        lock(&self.proxy.workers[self.worker])
    }

    pub fn worker(&self) -> usize {
        self.worker
    }

    pub fn outcome(&self) -> StreamOutcome {
        self.vm().outcome(self.ctx).unwrap_or(StreamOutcome::Reset)
    }

    /// The response the filter sent instead of forwarding the request.
    pub fn local_response(&self) -> Result<Response> {
        match self.outcome() {
            StreamOutcome::LocalReply(response) => Ok(response),
            other => Err(HarnessError::Usage(format!(
                "expected a local response, the exchange is {other:?}"
            ))),
        }
    }

    /// The request as it reached the upstream.
    pub fn upstream_request(&self) -> Result<Request> {
        match self.outcome() {
            StreamOutcome::Forwarded => self
                .vm()
                .upstream_request(self.ctx)
                .ok_or_else(|| HarnessError::Usage("no upstream request recorded".into())),
            other => Err(HarnessError::Usage(format!(
                "expected the request upstream, the exchange is {other:?}"
            ))),
        }
    }

    pub fn is_paused(&self) -> bool {
        self.outcome() == StreamOutcome::Paused
    }

    /// The upstream answers; returns what the client receives.
    pub fn respond(&self, response: Response) -> Result<Response> {
        self.vm().respond(self.ctx, &response)
    }

    /// The client resets the stream (goes away) now.
    pub fn abort(&self) -> Result<()> {
        self.vm().abort(self.ctx)
    }

    /// What the exchange has cost inside the module so far (host calls, fuel).
    pub fn cost(&self) -> Cost {
        self.vm().cost(self.ctx)
    }
}
