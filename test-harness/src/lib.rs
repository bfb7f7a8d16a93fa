//! Native test support: a native proxy-wasm host that runs the built module
//! (`host`), a driver for a real Envoy (`envoy`), and a raw HTTP/1.1 client (`http1`). Both
//! hosts take the same [`Request`] and give back the same [`Response`].

pub mod differential;
pub mod envoy;
pub mod expect;
pub mod host;
pub mod http1;
pub mod message;

pub use message::{Request, Response};
