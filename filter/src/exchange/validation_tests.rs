//! Validation: a body held to its end, read once and checked against the route's schema;
//! passed and refused bodies counted per route and reason; a refusal's line carries the body
//! (its secrets redacted) at `debug`; strict routing refuses what no route describes.

use serde_json::json;

use super::Flow;
use super::tests::{Vm, counters};
use crate::logging::Level;

fn create_user() -> Vm {
    Vm::load(json!({
        "logging": {"level": "debug"},
        "routes": [{"name": "create_user", "match": {"path": "/users", "methods": ["POST"]},
            "validate": {"max_body_bytes": 64, "content_types": ["application/json"], "body": {
                "type": "object", "required": ["email"],
                "properties": {"email": {"type": "string"}}}}}]
    }))
}

fn post<'v>(vm: &'v Vm, body: &[u8]) -> super::tests::Ex<'v> {
    vm.exchange(
        &[
            (":method", "POST"),
            (":path", "/users"),
            ("content-type", "application/json"),
            ("x-request-id", "r"),
        ],
        body,
    )
}

#[test]
fn a_valid_body_is_held_to_its_end_read_once_and_let_go() {
    let vm = create_user();
    let body = br#"{"email":"ada@example.com"}"#;
    let mut exchange = post(&vm, body);
    assert_eq!(exchange.headers(false), Flow::HoldHeaders);
    assert_eq!(exchange.body(10, false), Flow::Pause);
    assert_eq!(vm.host.host_calls().get("request_body"), None);
    assert_eq!(exchange.body(body.len(), true), Flow::Continue);
    assert_eq!(vm.host.host_calls().get("request_body"), Some(&1));
    assert_eq!(
        vm.counters(),
        counters(&[
            ("hardening.requests.create_user.forwarded", 1),
            ("hardening.validate.create_user.passed", 1),
        ])
    );
    assert!(vm.lines().is_empty());
}

#[test]
fn an_invalid_body_is_refused_and_logged_with_its_secrets_redacted() {
    let vm = create_user();
    let body = br#"{"email":1,"password":"hunter22"}"#;
    let mut exchange = post(&vm, body);
    assert_eq!(exchange.headers(false), Flow::HoldHeaders);
    assert_eq!(exchange.body(body.len(), true), Flow::Pause);
    let reply = exchange.reply().expect("refused");
    assert_eq!(reply.status, 400);
    assert_eq!(
        vm.counters(),
        counters(&[
            ("hardening.requests.create_user.rejected", 1),
            ("hardening.validate.create_user.rejected.invalid_body", 1),
        ])
    );
    assert_eq!(
        vm.lines(),
        [(
            Level::Warn,
            json!({"event": "rejected", "policy": "validate", "code": "invalid_body",
                "status": 400, "route": "create_user", "method": "POST", "path": "/users",
                "request_id": "r", "body": {"email": 1, "password": "[REDACTED]"}})
        )]
    );
}

#[test]
fn a_body_over_the_limit_is_refused_before_its_end() {
    let vm = create_user();
    let mut exchange = post(&vm, &[b' '; 100]);
    exchange.headers(false);
    assert_eq!(exchange.body(40, false), Flow::Pause);
    assert_eq!(exchange.body(100, false), Flow::Pause);
    assert_eq!(exchange.reply().map(|r| r.status), Some(413));
    assert_eq!(vm.host.host_calls().get("request_body"), None, "never read");
    assert_eq!(
        vm.counters(),
        counters(&[
            ("hardening.requests.create_user.rejected", 1),
            ("hardening.validate.create_user.rejected.body_too_large", 1),
        ])
    );
    assert_eq!(
        vm.lines(),
        [(
            Level::Warn,
            json!({"event": "rejected", "policy": "validate", "code": "body_too_large",
                "status": 413, "route": "create_user", "method": "POST", "path": "/users",
                "request_id": "r"})
        )]
    );
}

#[test]
fn a_body_ended_by_trailers_is_checked_at_the_trailers() {
    let vm = create_user();
    let body = br#"{"name":"no email"}"#;
    let mut exchange = post(&vm, body);
    exchange.headers(false);
    assert_eq!(exchange.body(body.len(), false), Flow::Pause);
    assert_eq!(exchange.trailers(), Flow::Pause);
    assert_eq!(exchange.reply().map(|r| r.status), Some(400));
    assert_eq!(
        vm.counters(),
        counters(&[
            ("hardening.requests.create_user.rejected", 1),
            ("hardening.validate.create_user.rejected.invalid_body", 1),
        ])
    );
}

#[test]
fn strict_routing_refuses_what_no_route_describes() {
    let vm = Vm::load(json!({
        "defaults": {"validate": {"unknown_routes": "reject"}},
        "routes": [{"name": "users", "match": {"path": "/users", "methods": ["GET"]}}]
    }));
    let (unknown, flow) = vm.get("/admin", &[]);
    assert_eq!(flow, Flow::Pause);
    assert_eq!(unknown.reply().map(|r| r.status), Some(404));
    let mut delete = vm.exchange(&[(":method", "DELETE"), (":path", "/users")], b"");
    assert_eq!(delete.headers(true), Flow::Pause);
    assert_eq!(delete.reply().map(|r| r.status), Some(405));
    assert_eq!(vm.get("/users", &[]).1, Flow::Continue);
    assert_eq!(
        vm.counters(),
        counters(&[
            ("hardening.requests.unmatched.rejected", 2),
            ("hardening.requests.users.forwarded", 1),
            (
                "hardening.validate.unmatched.rejected.method_not_allowed",
                1
            ),
            ("hardening.validate.unmatched.rejected.route_not_found", 1),
            // The route validates too (with the defaults' settings): it passed.
            ("hardening.validate.users.passed", 1),
        ])
    );
    let codes: Vec<_> = vm
        .lines()
        .into_iter()
        .map(|(_, l)| l["code"].clone())
        .collect();
    assert_eq!(
        codes,
        [json!("route_not_found"), json!("method_not_allowed")]
    );
}
