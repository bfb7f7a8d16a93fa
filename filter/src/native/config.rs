//! The filter configuration Envoy creates on its main thread (`config_new`): the engine,
//! compiled once and shared by every worker thread, the process-wide rate-limit tables, and
//! Envoy's ids of the counters. Each worker keeps its own [`Plugin`] over the shared engine
//! (the health endpoint's cache and run belong to a worker, as to a Wasm VM).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Weak};

use super::abi::{self, Buffer, ConfigEnvoy};
use super::host::{self, Shared};
use crate::engine::Engine;
use crate::exchange::Plugin;
use crate::policy::rate_limit::{AtomicTables, TableRegistry};

/// The rate-limit tables of every configuration of this process: a configuration loaded again
/// with the same limit keeps its state, as the Wasm build's shared data does.
static TABLES: LazyLock<Arc<TableRegistry>> = LazyLock::new(|| Arc::new(TableRegistry::default()));

/// Tells each configuration apart in the workers' plugin lists.
static SERIAL: AtomicU64 = AtomicU64::new(1);

/// Every worker thread uses the configuration at once, through a raw pointer the compiler
/// cannot check: what it holds must be `Send + Sync`.
const _: () = {
    const fn shared_by_threads<T: Send + Sync>() {}
    shared_by_threads::<Engine>();
    shared_by_threads::<AtomicTables>();
    shared_by_threads::<Vec<Option<usize>>>();
};

pub struct NativeConfig {
    engine: Arc<Engine>,
    store: AtomicTables,
    counters: Vec<Option<usize>>,
    serial: u64,
    /// When the configuration loaded (the health endpoint's uptime), ns since the Unix epoch.
    loaded_at: u64,
    /// Held while the configuration lives; the workers' plugins of a dropped one are pruned.
    alive: Arc<()>,
}

/// A worker's plugin for one configuration: its serial, whether it is alive, the plugin.
type WorkerPlugin = (u64, Weak<()>, Rc<Plugin>);

thread_local! {
    /// This worker's plugins, one per live configuration.
    static PLUGINS: RefCell<Vec<WorkerPlugin>> = const { RefCell::new(Vec::new()) };
}

impl NativeConfig {
    /// Loads the configuration Envoy hands over; the error is the line that says why it is
    /// refused.
    pub fn load(config_envoy: ConfigEnvoy, bytes: &[u8]) -> Result<Self, String> {
        let store = AtomicTables::new(Arc::clone(&TABLES));
        // `${NAME}` secrets come from Envoy's process environment.
        let engine = Engine::load(
            bytes,
            &|name| std::env::var(name).ok(),
            &store,
            random_secret,
        )?;
        let counters = engine
            .metric_names()
            .iter()
            .map(|name| define_counter(config_envoy, name))
            .collect();
        Ok(Self {
            engine: Arc::new(engine),
            store,
            counters,
            serial: SERIAL.fetch_add(1, Ordering::Relaxed),
            loaded_at: host::now_unix_nanos(),
            alive: Arc::new(()),
        })
    }

    pub fn shared(&self) -> Shared<'_> {
        Shared {
            store: &self.store,
            counters: &self.counters,
        }
    }

    pub fn has_health(&self) -> bool {
        self.engine.health().is_some()
    }

    /// This worker's plugin for this configuration, made on its first stream.
    pub fn plugin(&self) -> Rc<Plugin> {
        PLUGINS.with(|plugins| {
            let mut plugins = plugins.borrow_mut();
            if let Some((_, _, plugin)) = plugins.iter().find(|(s, _, _)| *s == self.serial) {
                return Rc::clone(plugin);
            }
            plugins.retain(|(_, alive, _)| alive.strong_count() > 0);
            let plugin = Rc::new(Plugin::new(Arc::clone(&self.engine), self.loaded_at));
            plugins.push((self.serial, Arc::downgrade(&self.alive), Rc::clone(&plugin)));
            plugin
        })
    }
}

fn define_counter(config_envoy: ConfigEnvoy, name: &str) -> Option<usize> {
    let mut id = 0usize;
    // SAFETY: called from `config_new` with Envoy's live configuration; no labels.
    let result = unsafe {
        abi::envoy_dynamic_module_callback_http_filter_config_define_counter(
            config_envoy,
            Buffer::of(name.as_bytes()),
            std::ptr::null_mut(),
            0,
            &mut id,
        )
    };
    if result == abi::METRICS_SUCCESS {
        Some(id)
    } else {
        host::log(abi::LOG_WARN, &format!("Envoy refused the counter {name}"));
        None
    }
}

/// 16 random bytes from the operating system.
fn random_secret() -> Result<[u8; 16], String> {
    let mut secret = [0u8; 16];
    getrandom::fill(&mut secret).map_err(|e| format!("no random bytes: {e}"))?;
    Ok(secret)
}
