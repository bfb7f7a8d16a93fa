//! The health endpoint: every check's HTTP call at once under the configured timeout, the
//! answer once all are back (or timed out), cached for `cache_for`, one run per VM at a time
//! with the exchanges that ask meanwhile answered with it.

use std::time::Duration;

use serde_json::json;

use super::Flow;
use super::tests::{Ex, Vm, counters};
use crate::logging::Level;

fn two_checks() -> Vm {
    Vm::load(
        json!({"health": {"version": "1.2.3", "timeout": "500ms", "cache_for": "1s",
        "checks": {
            "database": {"cluster": "db", "path": "/ping"},
            "search": {"cluster": "search", "path": "/_health", "expected_status": 204}
        }}}),
    )
}

fn status(exchange: &Ex<'_>) -> Option<u16> {
    exchange.reply().map(|r| r.status)
}

fn body(exchange: &Ex<'_>) -> serde_json::Value {
    let reply = exchange.reply().expect("answered");
    serde_json::from_slice(&reply.body).expect("JSON")
}

const UNHEALTHY: fn() -> serde_json::Value = || {
    json!({"event": "unhealthy", "policy": "health", "status": 503, "route": "",
        "method": "GET", "path": "/healthz"})
};

#[test]
fn the_checks_run_in_parallel_and_the_answer_is_cached() {
    let vm = two_checks();
    vm.host.advance(Duration::from_secs(90));
    let (mut exchange, flow) = vm.get("/healthz", &[]);
    assert_eq!(flow, Flow::Pause, "waiting for the checks");
    let calls = vm.host.calls();
    assert_eq!(calls.len(), 2, "both checks at once");
    assert_eq!(calls[0].cluster, "db");
    assert_eq!(calls[0].header(":path"), Some("/ping"));
    assert_eq!(calls[0].header(":authority"), Some("db"));
    assert_eq!(calls[0].timeout, Duration::from_millis(500));
    assert_eq!(calls[1].header(":path"), Some("/_health"));

    exchange.wait(Duration::from_millis(30));
    exchange.call_answered(calls[0].token, Some(200));
    assert_eq!(status(&exchange), None, "the search check is still out");
    exchange.wait(Duration::from_millis(50));
    exchange.call_answered(calls[1].token, Some(204));
    assert_eq!(status(&exchange), Some(200));
    assert_eq!(
        body(&exchange),
        json!({"status": "healthy", "uptime_seconds": 90, "version": "1.2.3", "checks": {
            "database": {"status": "healthy", "duration_ms": 30},
            "search": {"status": "healthy", "duration_ms": 80}
        }})
    );

    // Cached: answered at once, no new calls within cache_for.
    let (again, flow) = vm.get("/healthz", &[]);
    assert_eq!(flow, Flow::Pause);
    assert_eq!(status(&again), Some(200));
    assert_eq!(vm.host.calls().len(), 2);
    vm.host.advance(Duration::from_secs(1));
    vm.get("/healthz", &[]);
    assert_eq!(vm.host.calls().len(), 4, "the cache expired");
    assert_eq!(
        vm.counters(),
        counters(&[("hardening.requests.unmatched.health", 3)])
    );
    assert!(vm.lines().is_empty());
}

#[test]
fn requests_during_a_run_wait_for_its_answer() {
    let vm = two_checks();
    let (mut first, _) = vm.get("/healthz", &[]);
    let (second, _) = vm.get("/healthz", &[]);
    let (third, _) = vm.get("/healthz?probe=lb", &[]);
    let calls = vm.host.calls();
    assert_eq!(calls.len(), 2, "one run for the three requests");
    first.call_answered(calls[0].token, Some(200));
    first.call_answered(calls[1].token, Some(204));
    for exchange in [&first, &second, &third] {
        assert_eq!(status(exchange), Some(200));
    }
    assert_eq!(vm.host.host_calls().get("send_reply_to"), Some(&1));
}

#[test]
fn when_the_runs_owner_leaves_those_waiting_get_what_is_known() {
    let vm = two_checks();
    let (mut owner, _) = vm.get("/healthz", &[]);
    let (waiter, _) = vm.get("/healthz", &[]);
    let calls = vm.host.calls();
    owner.call_answered(calls[0].token, Some(200));
    owner.done();
    assert_eq!(status(&waiter), Some(503));
    assert_eq!(body(&waiter)["checks"]["database"]["status"], "healthy");
    assert_eq!(body(&waiter)["checks"]["search"]["status"], "unhealthy");
    assert_eq!(vm.lines(), [(Level::Warn, UNHEALTHY())]);
    // Not cached: the next request runs the checks again.
    vm.get("/healthz", &[]);
    assert_eq!(vm.host.calls().len(), 4);
}

#[test]
fn a_silent_check_times_out_and_makes_it_503() {
    let vm = two_checks();
    let (mut exchange, _) = vm.get("/healthz", &[]);
    let calls = vm.host.calls();
    exchange.call_answered(calls[0].token, Some(500));
    exchange.wait(Duration::from_millis(499));
    assert_eq!(status(&exchange), None);
    exchange.wait(Duration::from_millis(1));
    assert_eq!(status(&exchange), Some(503));
    assert_eq!(
        body(&exchange)["checks"],
        json!({"database": {"status": "unhealthy", "duration_ms": 0},
            "search": {"status": "unhealthy", "duration_ms": 500}})
    );
    assert_eq!(vm.lines(), [(Level::Warn, UNHEALTHY())]);
    assert_eq!(
        vm.counters(),
        counters(&[("hardening.requests.unmatched.health", 1)])
    );
}

#[test]
fn a_check_of_an_unknown_cluster_fails_at_once() {
    let vm = two_checks();
    vm.host.unknown_cluster("db");
    vm.host.unknown_cluster("search");
    let (exchange, flow) = vm.get("/healthz", &[]);
    assert_eq!(flow, Flow::Pause);
    assert_eq!(status(&exchange), Some(503));
    assert!(vm.host.calls().is_empty());
}

#[test]
fn a_run_whose_answers_never_come_is_taken_over_with_its_waiters() {
    let vm = two_checks();
    let (_lost, _) = vm.get("/healthz", &[]);
    let (waiter, _) = vm.get("/healthz", &[]);
    // The host lost the calls: nothing comes back, not even a timeout. Past the timeout by
    // more than a second, the next request starts a run of its own.
    vm.host.advance(Duration::from_millis(1501));
    let (mut next, _) = vm.get("/healthz", &[]);
    let calls = vm.host.calls();
    assert_eq!(calls.len(), 4);
    next.call_answered(calls[2].token, Some(200));
    next.call_answered(calls[3].token, Some(204));
    assert_eq!(status(&next), Some(200));
    assert_eq!(status(&waiter), Some(200));
}
