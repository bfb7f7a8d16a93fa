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

/// Starts the sample backend on a free loopback port (it serves until the process ends) and
/// returns its address: the upstream of the end-to-end tests.
pub fn backend() -> std::net::SocketAddr {
    backend_with_journal().0
}

/// [`backend`], with the journal of what it receives.
pub fn backend_with_journal() -> (std::net::SocketAddr, sample_backend::Journal) {
    let backend = sample_backend::Backend::bind("127.0.0.1:0").expect("backend binds");
    let journal = backend.journal();
    (backend.spawn(), journal)
}
