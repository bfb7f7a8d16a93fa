//! Edge hardening for APIs behind Envoy, as one proxy-wasm module.
//!
//! The crate is a functional core with a thin shell: everything except [`shell`] is plain Rust
//! over plain types and is tested natively; only `shell` talks to the proxy-wasm host, and only
//! when compiled to wasm with the `proxy` feature.

// A panic kills the worker's VM: nothing a request or a config can reach may panic.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

pub mod config;
pub mod engine;
pub mod environment;
pub mod logging;
pub mod metrics;
pub mod pairs;
pub mod policy;
pub mod problem;
pub mod reply;
pub mod request;
pub mod response;
pub mod routes;
pub mod syntax;
pub mod time;

#[cfg(all(target_family = "wasm", feature = "proxy"))]
mod shell;
