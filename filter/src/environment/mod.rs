//! The host boundary: everything the core asks of the host it runs in, as two traits a shell
//! implements over its host's API (the proxy-wasm shell over the raw ABI calls, in
//! `shell/host.rs`) and [`Recording`] implements in memory for native tests:
//!
//! - [`Environment`]: what the engine's decisions need: the clock, the client's address,
//!   shared data, counters, log lines;
//! - [`Host`]: what driving one exchange needs besides: its header maps read and written
//!   whole, its body, local replies (to it, or to exchanges that waited for its health run),
//!   HTTP calls to clusters with their timeouts.
//!
//! Every method is called only when a decision needs it: the number of host calls per request
//! is the core's to keep low, whatever the shell.

mod host;
mod recording;
mod shared_data;

pub use host::{EncodedMap, HeaderMap, Host, HttpCall};
pub use recording::{Call, Recording, RecordingHost, Stream};
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
