//! The host boundary: everything the core asks of the host it runs in, as two traits a shell
//! implements over its host's API (the proxy-wasm shell over the raw ABI calls, in
//! `shell/host.rs`) and [`Recording`] implements in memory for native tests:
//!
//! - [`Environment`]: what the engine's decisions need: the clock, the client's address,
//!   the rate limiter's store (shared data in Wasm), counters, log lines;
//! - [`Host`]: what driving one exchange needs besides: its header maps read and written
//!   whole, its body, local replies (to it, or to exchanges that waited for its health run),
//!   HTTP and gRPC calls to clusters with their timeouts, letting a stopped request go on.
//!
//! Every method is called only when a decision needs it: the number of host calls per request
//! is the core's to keep low, whatever the shell.

mod host;
mod recording;

pub use host::{EncodedMap, GrpcCall, HeaderMap, Host, HttpCall};
pub use recording::{Call, Recording, RecordingHost, Stream};
// Shared data belongs to the rate limiter that keeps its tables there; the shells implement it.
pub use crate::policy::rate_limit::{GetError, MemorySharedData, SetError, SharedData};

use crate::logging::Level;
use crate::policy::rate_limit::RateStore;

pub trait Environment {
    /// Wall clock, nanoseconds since the Unix epoch.
    fn now_unix_nanos(&self) -> u64;
    /// The downstream address Envoy computed (`source.address`, `ip:port`).
    fn client_address(&self) -> Option<String>;
    /// Where rate limits keep their state, shared by every worker: shared data in a Wasm
    /// build (every [`SharedData`] is a store), process memory in a native one.
    fn rate_store(&self) -> &dyn RateStore;
    /// Adds to the counter at `metric` in [`crate::engine::Engine::metric_names`].
    fn increment(&self, metric: usize, by: u64);
    /// Writes a line to the host's log.
    fn log(&self, level: Level, line: &str);
}
