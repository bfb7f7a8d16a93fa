//! Security headers: every response gets them, edited in one read and one write, and nothing
//! of the request is read for them.

use serde_json::json;

use super::Flow;
use super::tests::{Vm, calls, counters};

#[test]
fn every_response_gets_helmets_headers_without_the_request_being_read() {
    let vm = Vm::load(json!({}));
    let (mut exchange, flow) = vm.get("/users", &[]);
    assert_eq!(flow, Flow::Continue);
    let upstream = [
        (":status", "200"),
        ("content-type", "application/json"),
        ("x-powered-by", "Express"),
    ];
    assert_eq!(exchange.response(&upstream), Flow::Continue);

    assert_eq!(
        exchange.written_header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert_eq!(
        exchange
            .written_header("strict-transport-security")
            .as_deref(),
        Some("max-age=31536000; includeSubDomains")
    );
    assert_eq!(exchange.written_header("x-powered-by"), None, "removed");
    assert_eq!(
        exchange.written_header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        vm.host.host_calls(),
        calls(&[("response_headers", 1), ("set_response_headers", 1)])
    );
    assert_eq!(
        vm.counters(),
        counters(&[("hardening.requests.unmatched.forwarded", 1)])
    );
    assert!(vm.lines().is_empty());
}

#[test]
fn a_route_without_them_leaves_its_responses_unread() {
    let vm = Vm::load(json!({
        "routes": [{"name": "raw", "match": {"prefix": "/raw/"}, "security_headers": false}]
    }));
    let (mut exchange, _) = vm.get("/raw/file", &[]);
    assert_eq!(exchange.response(&[(":status", "200")]), Flow::Continue);
    assert_eq!(exchange.written(), None);
    // The routes need the request's headers; the response is not read at all.
    assert_eq!(vm.host.host_calls(), calls(&[("request_headers", 1)]));
    assert_eq!(
        vm.counters(),
        counters(&[("hardening.requests.raw.forwarded", 1)])
    );
}
