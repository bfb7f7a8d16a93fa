//! Native test support: the sample backend, a driver for a real Envoy, and a raw HTTP/1.1
//! client that shows responses exactly as they came off the wire.

pub mod backend;
pub mod envoy;
pub mod http1;
