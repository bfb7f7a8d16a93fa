//! What the core needs from outside a request that the request itself does not carry: the
//! time, the client's address, shared data, metrics. The shell implements it over the host;
//! tests implement it in memory. Every method is called only when a policy needs it.

mod shared_data;

pub use shared_data::{GetError, MemorySharedData, SetError, SharedData};

use crate::logging::Level;

pub trait Environment {
    /// Wall clock, nanoseconds since the Unix epoch.
    fn now_unix_nanos(&self) -> u64;
    /// The downstream address Envoy computed (`source.address`, `ip:port`).
    fn client_address(&self) -> Option<String>;
    fn shared_data(&self) -> &dyn SharedData;
    /// Adds to the counter at `metric` in [`crate::engine::Engine::metric_names`].
    fn increment(&self, metric: usize, by: u64);
    /// Writes a line to the host's log.
    fn log(&self, level: Level, line: &str);
}
