//! Rate limits: each request costs one clock read, one client address read (none when it is
//! read from `X-Forwarded-For`) and one shared-data read and write; allowed and limited requests are counted per limit, a refusal
//! says so in one line, a dry run only says it would have refused.

use std::time::Duration;

use serde_json::json;

use super::Flow;
use super::tests::{Vm, calls, counters};
use crate::logging::Level;

fn two_a_minute(mode: &str) -> Vm {
    let vm = Vm::load(json!({"defaults": {"rate_limit": {
        "name": "api", "limit": 2, "window": "1m", "mode": mode
    }}}));
    vm.host.set_client_address(Some("192.0.2.7:41000"));
    vm
}

const FROM_CLIENT: &[(&str, &str)] = &[("x-forwarded-for", "192.0.2.7"), ("x-request-id", "r")];

#[test]
fn the_third_request_in_a_minute_is_refused_and_counted_per_limit() {
    let vm = two_a_minute("enforce");
    let (mut first, flow) = vm.get("/users", FROM_CLIENT);
    assert_eq!(flow, Flow::Continue);
    assert_eq!(
        vm.host.host_calls(),
        calls(&[
            ("client_address", 1),
            ("get_shared_data", 1),
            ("now_unix_nanos", 1),
            ("request_headers", 1),
            ("set_shared_data", 1),
        ])
    );
    first.response(&[(":status", "200"), ("ratelimit", "upstream's own")]);
    assert_eq!(
        first.written_header("ratelimit-policy").as_deref(),
        Some("\"api\";q=2;w=60")
    );
    assert_eq!(
        first.written_header("ratelimit").as_deref(),
        Some("\"api\";r=1;t=30")
    );
    vm.get("/users", FROM_CLIENT);
    let (third, flow) = vm.get("/users", FROM_CLIENT);
    assert_eq!(flow, Flow::Pause);
    let reply = third.reply().expect("refused");
    assert_eq!(reply.status, 429);
    assert_eq!(reply.header("retry-after"), Some("30"));

    assert_eq!(
        vm.counters(),
        counters(&[
            ("hardening.rate_limit.api.allowed", 2),
            ("hardening.rate_limit.api.limited", 1),
            ("hardening.requests.unmatched.forwarded", 2),
            ("hardening.requests.unmatched.rejected", 1),
        ])
    );
    assert_eq!(
        vm.lines(),
        [(
            Level::Warn,
            json!({"event": "rejected", "policy": "rate_limit", "code": "rate_limited",
                "status": 429, "route": "", "method": "GET", "path": "/users",
                "request_id": "r"})
        )]
    );

    // Half a minute later one request's worth has come back.
    vm.host.advance(Duration::from_secs(30));
    assert_eq!(vm.get("/users", FROM_CLIENT).1, Flow::Continue);
    assert_eq!(vm.counters()["hardening.rate_limit.api.allowed"], 3);
}

#[test]
fn a_dry_run_lets_the_request_through_and_says_it_would_have_refused() {
    let vm = two_a_minute("dry_run");
    for _ in 0..3 {
        assert_eq!(vm.get("/users", FROM_CLIENT).1, Flow::Continue);
    }
    assert_eq!(
        vm.counters(),
        counters(&[
            ("hardening.rate_limit.api.allowed", 2),
            ("hardening.rate_limit.api.dry_run_limited", 1),
            ("hardening.requests.unmatched.forwarded", 3),
        ])
    );
    assert_eq!(
        vm.lines(),
        [(
            Level::Warn,
            json!({"event": "dry_run_limited", "policy": "rate_limit", "code": "api",
                "route": "", "method": "GET", "path": "/users", "request_id": "r"})
        )]
    );
}

#[test]
fn a_client_address_envoy_took_from_the_client_is_said_once() {
    let vm = two_a_minute("enforce");
    vm.get("/users", &[]);
    vm.get("/users", &[]);
    let lines = vm.lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let (level, line) = &lines[0];
    assert_eq!(*level, Level::Warn);
    assert_eq!(line["event"], "client_address_from_request_headers");
    assert_eq!(line["policy"], "rate_limit");
}

#[test]
fn with_the_address_from_x_forwarded_for_no_property_is_read() {
    let vm = Vm::load(json!({
        "client_address": {"from": "x_forwarded_for", "xff_num_trusted_hops": 1},
        "defaults": {"rate_limit": {"name": "api", "limit": 1, "window": "1m"}}
    }));
    vm.host.set_client_address(Some("10.0.0.1:41000"));
    // One hop trusted: the second entry from the right is the client.
    let from = |xff: &'static str| [("x-forwarded-for", xff)];
    assert_eq!(vm.get("/", &from("192.0.2.7, 10.0.0.9")).1, Flow::Continue);
    assert_eq!(
        vm.host.host_calls(),
        calls(&[
            ("get_shared_data", 1),
            ("now_unix_nanos", 1),
            ("request_headers", 1),
            ("set_shared_data", 1),
        ])
    );
    assert_eq!(vm.get("/", &from("192.0.2.7, 10.0.0.8")).1, Flow::Pause);
    assert_eq!(vm.get("/", &from("192.0.2.8, 10.0.0.8")).1, Flow::Continue);
    // Too few entries: the peer Envoy saw (`source.address`), read from the host.
    assert_eq!(vm.get("/", &from("192.0.2.7")).1, Flow::Continue);
    assert_eq!(vm.host.host_calls().get("client_address"), Some(&1));
    assert_eq!(
        vm.get("/", &from("not an address, 10.0.0.8")).1,
        Flow::Pause
    );
    assert_eq!(vm.host.host_calls().get("client_address"), Some(&2));
}
