//! Edge hardening for APIs behind Envoy, as one proxy-wasm module.
//!
//! The crate is a core with a thin shell: everything except `shell` is plain Rust over plain
//! types, tested natively. The core reaches its host only through the traits of
//! [`environment`]; [`exchange`] drives one HTTP exchange through the [`engine`] over them.
//! `shell` is the proxy-wasm host's side: contexts that forward callbacks to [`exchange`], and
//! the traits implemented over proxy-wasm's calls; it is compiled only for wasm with the
//! `proxy` feature.

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

pub mod client_address;
pub mod config;
pub mod engine;
pub mod environment;
pub mod exchange;
pub mod header_writes;
pub mod logging;
pub mod metrics;
pub mod openapi;
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

#[cfg(all(not(target_family = "wasm"), feature = "native"))]
mod native;
