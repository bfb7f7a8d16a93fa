//! Error replacement: an upstream 5xx is answered instead with a generic problem+json
//! (counted, one `error` line); the filter's own replies and kept content types are not.

use serde_json::json;

use super::Flow;
use super::tests::{START, Vm, counters};
use crate::logging::Level;

fn replacing() -> Vm {
    Vm::load(json!({"defaults": {"errors": {"keep_content_types": ["application/problem+json"]}}}))
}

#[test]
fn an_upstream_error_is_replaced_by_a_generic_problem() {
    let vm = replacing();
    let (mut exchange, flow) = vm.get("/users?token=t", &[("x-request-id", "r")]);
    assert_eq!(flow, Flow::Continue);
    let upstream = [
        (":status", "503"),
        ("content-type", "text/html"),
        ("content-length", "1234"),
        ("x-trace", "abc"),
    ];
    assert_eq!(exchange.response(&upstream), Flow::Pause);
    let reply = exchange.reply().expect("replaced");
    assert_eq!(reply.status, 503);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(reply.header("content-length"), None);
    assert_eq!(reply.header("x-trace"), Some("abc"));
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
    let body: serde_json::Value = serde_json::from_slice(&reply.body).expect("JSON");
    assert_eq!(
        body,
        json!({"type": "about:blank", "title": "Service Unavailable", "status": 503,
            "code": "upstream_error", "request_id": "r",
            "timestamp": crate::time::rfc3339(START)})
    );
    assert_eq!(exchange.written(), None, "replaced, not edited");
    assert_eq!(
        vm.counters(),
        counters(&[
            ("hardening.requests.unmatched.forwarded", 1),
            ("hardening.requests.unmatched.upstream_error_replaced", 1),
        ])
    );
    assert_eq!(
        vm.lines(),
        [(
            Level::Error,
            json!({"event": "replaced_upstream_error", "policy": "errors", "status": 503,
                "route": "", "method": "GET", "path": "/users", "request_id": "r"})
        )]
    );
}

#[test]
fn kept_content_types_and_the_filters_own_replies_go_out_as_they_are() {
    let vm = Vm::load(json!({
        "defaults": {"errors": {"keep_content_types": ["application/problem+json"]}},
        "health": {"checks": {"db": {"cluster": "db"}}}
    }));
    let (mut exchange, _) = vm.get("/users", &[]);
    let problem = [
        (":status", "500"),
        ("content-type", "application/problem+json"),
    ];
    assert_eq!(exchange.response(&problem), Flow::Continue);
    assert!(exchange.reply().is_none());
    // The health endpoint's own 503 comes back through the response callbacks: edited, not
    // replaced.
    vm.host.unknown_cluster("db");
    let (mut health, _) = vm.get("/healthz", &[]);
    assert_eq!(health.reply().map(|r| r.status), Some(503));
    assert_eq!(health.reply_comes_back(), Flow::Continue);
    assert_eq!(vm.host.replies(health.id()).len(), 1);
    assert_eq!(
        health.written_header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert_eq!(
        vm.counters(),
        counters(&[
            ("hardening.requests.unmatched.forwarded", 1),
            ("hardening.requests.unmatched.health", 1),
        ])
    );
}
