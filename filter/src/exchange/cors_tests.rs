//! CORS: a preflight answered and counted as one, a disallowed origin refused with one line,
//! an allowed origin's response given its CORS headers.

use serde_json::json;

use super::Flow;
use super::tests::{Vm, calls, counters};
use crate::logging::Level;

fn app_only() -> serde_json::Value {
    json!({"defaults": {"cors": {"allow_origins": ["https://app.example.com"]}}})
}

#[test]
fn a_preflight_is_answered_and_counted_as_one() {
    let vm = Vm::load(app_only());
    let mut preflight = vm.exchange(
        &[
            (":method", "OPTIONS"),
            (":path", "/users"),
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "POST"),
        ],
        b"",
    );
    assert_eq!(preflight.headers(true), Flow::Pause);
    let reply = preflight.reply().expect("answered");
    assert_eq!(reply.status, 204);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(
        vm.counters(),
        counters(&[("hardening.requests.unmatched.preflight", 1)])
    );
    assert!(vm.lines().is_empty());
}

#[test]
fn a_disallowed_origin_is_refused_with_one_line() {
    let vm = Vm::load(app_only());
    let (exchange, flow) = vm.get(
        "/users?token=secret",
        &[
            ("origin", "https://evil.example"),
            ("x-request-id", "rid-1"),
        ],
    );
    assert_eq!(flow, Flow::Pause);
    let reply = exchange.reply().expect("refused");
    assert_eq!(reply.status, 403);
    assert_eq!(
        vm.counters(),
        counters(&[("hardening.requests.unmatched.rejected", 1)])
    );
    assert_eq!(
        vm.lines(),
        [(
            Level::Warn,
            json!({"event": "rejected", "policy": "cors", "code": "cors_origin_not_allowed",
                "status": 403, "route": "", "method": "GET", "path": "/users",
                "request_id": "rid-1"})
        )]
    );
}

#[test]
fn an_allowed_origin_gets_its_cors_headers_and_vary() {
    let vm = Vm::load(app_only());
    let (mut exchange, flow) = vm.get("/users", &[("origin", "https://app.example.com")]);
    assert_eq!(flow, Flow::Continue);
    let upstream = [
        (":status", "200"),
        ("vary", "accept-encoding"),
        ("access-control-allow-origin", "*"),
    ];
    exchange.response(&upstream);
    assert_eq!(
        exchange
            .written_header("access-control-allow-origin")
            .as_deref(),
        Some("https://app.example.com")
    );
    assert_eq!(
        exchange.written_header("vary").as_deref(),
        Some("accept-encoding, Origin")
    );
    assert_eq!(
        vm.counters(),
        counters(&[("hardening.requests.unmatched.forwarded", 1)])
    );
    assert!(vm.lines().is_empty());
}

#[test]
fn a_response_the_policies_leave_as_it_is_is_not_written_back() {
    let vm = Vm::load(json!({"defaults": {
        "security_headers": false,
        "cors": {"allow_origins": ["https://app.example.com"]}
    }}));
    let (mut exchange, _) = vm.get("/users", &[]);
    vm.host.clear_host_calls();
    assert_eq!(
        exchange.response(&[(":status", "200"), ("vary", "Origin")]),
        Flow::Continue
    );
    assert_eq!(exchange.written(), None);
    assert_eq!(vm.host.host_calls(), calls(&[("response_headers", 1)]));
}
