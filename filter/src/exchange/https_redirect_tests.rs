//! HTTPS redirect: a plain-HTTP request is sent to HTTPS (counted, one `info` line), one for a
//! host the API does not serve refused.

use serde_json::json;

use super::Flow;
use super::tests::{Vm, counters};
use crate::logging::Level;

fn redirecting() -> Vm {
    Vm::load(json!({"defaults": {"https_redirect": {"hosts": ["api.example.com"]}}}))
}

#[test]
fn plain_http_is_sent_to_https() {
    let vm = redirecting();
    let (exchange, flow) = vm.get(
        "/users?page=2",
        &[
            ("x-forwarded-proto", "http"),
            (":authority", "api.example.com"),
        ],
    );
    assert_eq!(flow, Flow::Pause);
    let reply = exchange.reply().expect("redirected");
    assert_eq!(reply.status, 308);
    assert_eq!(
        reply.header("location"),
        Some("https://api.example.com/users?page=2")
    );
    assert_eq!(
        vm.counters(),
        counters(&[("hardening.requests.unmatched.redirected", 1)])
    );
    assert_eq!(
        vm.lines(),
        [(
            Level::Info,
            json!({"event": "redirected", "policy": "https_redirect", "code": "https_required",
                "status": 308, "route": "", "method": "GET", "path": "/users"})
        )]
    );
    let (_, flow) = vm.get(
        "/users",
        &[
            ("x-forwarded-proto", "https"),
            (":authority", "api.example.com"),
        ],
    );
    assert_eq!(flow, Flow::Continue);
}

#[test]
fn a_host_the_api_does_not_serve_is_refused() {
    let vm = redirecting();
    let (exchange, _) = vm.get(
        "/users",
        &[
            ("x-forwarded-proto", "http"),
            (":authority", "evil.example"),
        ],
    );
    assert_eq!(exchange.reply().map(|r| r.status), Some(400));
    assert_eq!(
        vm.counters(),
        counters(&[("hardening.requests.unmatched.rejected", 1)])
    );
    assert_eq!(
        vm.lines(),
        [(
            Level::Warn,
            json!({"event": "rejected", "policy": "https_redirect", "code": "invalid_host",
                "status": 400, "route": "", "method": "GET", "path": "/users"})
        )]
    );
}
