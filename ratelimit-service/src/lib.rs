//! A rate limit service for Envoy: `envoy.service.ratelimit.v3.RateLimitService` over gRPC,
//! counting with Limitador over Redis, limits in Limitador's YAML format (the same file works
//! with `limitador-server`).
//!
//! Unlike Limitador's own server, each descriptor is checked alone (its limits say
//! `descriptors[0]`), counting is exact under concurrency (Limitador's reserve and commit),
//! and every descriptor gets a status (limit, remaining, reset), as envoyproxy/ratelimit
//! answers.

#![forbid(unsafe_code)]

pub mod cli;
pub mod limits;
pub mod server;
pub mod service;
pub mod status;
pub mod storage;

pub use cli::Args;
pub use limits::Limits;
pub use server::run;
