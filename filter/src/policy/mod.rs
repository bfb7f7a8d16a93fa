//! The policies, each plain Rust over plain types: config in, request or response view in,
//! a decision or an edit out. None of them calls the host.

pub mod cors;
pub mod errors;
pub mod health;
pub mod https_redirect;
pub mod rate_limit;
pub mod security_headers;
pub mod set;
pub mod validate;

pub use set::{PolicySet, RawPolicies};
