//! Edge hardening for APIs behind Envoy, as one proxy-wasm module.
//!
//! The crate is a functional core with a thin shell: everything except [`shell`] is plain Rust
//! over plain types and is tested natively; only `shell` talks to the proxy-wasm host, and only
//! when compiled to wasm with the `proxy` feature.

pub mod config;
pub mod engine;
pub mod problem;
pub mod request;
pub mod routes;

#[cfg(all(target_family = "wasm", feature = "proxy"))]
mod shell;
