//! The policies' order: the health endpoint, HTTPS redirect, CORS, rate limits, strict
//! routing, validation. A request answered by one never reaches the next: it is not counted
//! there, and costs nothing there (no clock, no shared data).

use serde_json::json;

use super::Flow;
use super::tests::{Vm, calls, counters};

fn every_request_policy() -> Vm {
    let vm = Vm::load(json!({
        "defaults": {
            "https_redirect": {"hosts": ["api.example.com"]},
            "cors": {"allow_origins": ["https://app.example.com"]},
            "rate_limit": {"name": "api", "limit": 1, "window": "1m", "key": "route"},
            "validate": {"unknown_routes": "reject"}
        },
        "routes": [{"name": "user", "match": {"path": "/users/{id}", "methods": ["GET"]},
            "validate": {"path_params": {"id": {"type": "integer"}}}}],
        "health": {}
    }));
    vm.host.clear_host_calls();
    vm
}

const HTTPS: (&str, &str) = ("x-forwarded-proto", "https");

#[test]
fn a_request_cors_refuses_never_reaches_the_rate_limit() {
    let vm = every_request_policy();
    let (exchange, _) = vm.get("/users/1", &[HTTPS, ("origin", "https://evil.example")]);
    assert_eq!(exchange.reply().map(|r| r.status), Some(403));
    assert_eq!(
        vm.host.host_calls(),
        calls(&[("log", 1), ("request_headers", 1), ("send_reply", 1)]),
        "no clock, no shared data"
    );
    assert_eq!(
        vm.counters(),
        counters(&[("hardening.requests.user.rejected", 1)])
    );
    // The limit's one request is still there.
    assert_eq!(vm.get("/users/1", &[HTTPS]).1, Flow::Continue);
}

#[test]
fn a_preflight_is_answered_before_the_rate_limit_counts_it() {
    let vm = every_request_policy();
    let mut preflight = vm.exchange(
        &[
            (":method", "OPTIONS"),
            (":path", "/users/1"),
            HTTPS,
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "GET"),
        ],
        b"",
    );
    assert_eq!(preflight.headers(true), Flow::Pause);
    assert_eq!(
        vm.counters(),
        counters(&[("hardening.requests.user.preflight", 1)])
    );
}

#[test]
fn the_redirect_comes_before_cors() {
    let vm = every_request_policy();
    let (exchange, _) = vm.get(
        "/users/1",
        &[
            ("x-forwarded-proto", "http"),
            (":authority", "api.example.com"),
            ("origin", "https://evil.example"),
        ],
    );
    assert_eq!(exchange.reply().map(|r| r.status), Some(308));
    assert_eq!(
        vm.counters(),
        counters(&[("hardening.requests.user.redirected", 1)])
    );
}

#[test]
fn a_request_the_rate_limit_refuses_is_not_validated() {
    let vm = every_request_policy();
    assert_eq!(vm.get("/users/1", &[HTTPS]).1, Flow::Continue);
    let (refused, _) = vm.get("/users/not-a-number", &[HTTPS]);
    assert_eq!(refused.reply().map(|r| r.status), Some(429));
    let (unknown, _) = vm.get("/nowhere", &[HTTPS]);
    assert_eq!(
        unknown.reply().map(|r| r.status),
        Some(404),
        "not limited: its own key"
    );
    assert_eq!(
        vm.counters(),
        counters(&[
            ("hardening.rate_limit.api.allowed", 2),
            ("hardening.rate_limit.api.limited", 1),
            ("hardening.requests.unmatched.rejected", 1),
            ("hardening.requests.user.forwarded", 1),
            ("hardening.requests.user.rejected", 1),
            ("hardening.validate.unmatched.rejected.route_not_found", 1),
            ("hardening.validate.user.passed", 1),
        ])
    );
}

#[test]
fn the_health_endpoint_comes_before_every_policy() {
    let vm = every_request_policy();
    let (exchange, _) = vm.get(
        "/healthz",
        &[
            ("x-forwarded-proto", "http"),
            ("origin", "https://evil.example"),
        ],
    );
    assert_eq!(exchange.reply().map(|r| r.status), Some(200));
    assert_eq!(
        vm.counters(),
        counters(&[("hardening.requests.unmatched.health", 1)])
    );
}
