//! Scenarios written once and run against both hosts: the native wasm host (with the sample
//! backend as its upstream) and a real Envoy in front of the same backend. Where they agree,
//! the native host can be trusted for that behaviour.

use std::net::SocketAddr;

use crate::envoy::Envoy;
use crate::host::{Proxy, StreamOutcome};
use crate::message::{Request, Response};

/// Somewhere to send a request and see the response the client gets.
pub trait Target {
    fn name(&self) -> &'static str;
    fn send(&self, request: Request) -> Response;
}

/// The native host, forwarding what the filter lets through to a real backend over HTTP.
pub struct NativeTarget {
    pub proxy: Proxy,
    pub backend: SocketAddr,
}

impl Target for NativeTarget {
    fn name(&self) -> &'static str {
        "native host"
    }

    fn send(&self, request: Request) -> Response {
        let exchange = self
            .proxy
            .request(request)
            .unwrap_or_else(|e| panic!("native host: {e}"));
        match exchange.outcome() {
            StreamOutcome::LocalReply(response) => response,
            StreamOutcome::Forwarded => {
                let upstream = exchange
                    .upstream_request()
                    .unwrap_or_else(|e| panic!("native host: {e}"));
                let answer = upstream
                    .send(self.backend)
                    .unwrap_or_else(|e| panic!("backend unreachable: {e}"));
                // Hop-by-hop framing is the proxy's business, not the filter's.
                let mut answer = answer;
                answer
                    .headers
                    .retain(|(k, _)| k != "transfer-encoding" && k != "connection");
                exchange
                    .respond(answer)
                    .unwrap_or_else(|e| panic!("native host: {e}"))
            }
            other => panic!("native host: exchange ended as {other:?}"),
        }
    }
}

/// A real Envoy.
pub struct EnvoyTarget(pub Envoy);

impl Target for EnvoyTarget {
    fn name(&self) -> &'static str {
        "real Envoy"
    }

    fn send(&self, request: Request) -> Response {
        self.0.send(&request)
    }
}
