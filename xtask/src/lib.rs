//! The project's one build entry point, as a library so that tests can call the same code the
//! `cargo xtask` command runs (build the wasm when stale, install Envoy when missing).

pub mod bench;
pub mod core_tests;
pub mod demo_stack;
pub mod envoy;
pub mod envoy_admin;
pub mod fn_length;
pub mod fuzz;
pub mod layers;
pub mod lock;
pub mod native;
pub mod oci;
pub mod openapi_samples;
pub mod paths;
pub mod process;
pub mod ratelimit;
pub mod test_run;
pub mod wasm;

/// Errors are one-line messages that say what to do.
pub type Result<T> = std::result::Result<T, String>;
