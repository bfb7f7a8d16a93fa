//! The native host itself: several VMs sharing data, CAS conflicts, a clock the test moves,
//! ticks, HTTP calls with timeouts, traps, Envoy's buffer limit, host-call accounting.
//! The module is the probe fixture (fixtures/probe), which exercises one ABI feature per
//! request header.

use std::time::Duration;

use test_harness::host::{CallOutcome, Harness, HarnessError, Proxy, StreamOutcome};
use test_harness::{Request, Response};
use xtask::wasm::PROBE;

fn probe() -> Harness {
    Harness::load(xtask::wasm::ensure(&PROBE).expect("probe builds"))
}

fn upstream_header(proxy: &Proxy, worker: usize, request: Request, name: &str) -> Option<String> {
    let exchange = proxy.request_on(worker, request).expect("request");
    let upstream = exchange.upstream_request().expect("forwarded");
    upstream.header_value(name).map(str::to_string)
}

#[test]
fn a_value_written_by_one_vm_is_read_by_another() {
    let proxy = probe().workers(2).start().expect("starts");
    let set = upstream_header(
        &proxy,
        0,
        Request::get("/").header("x-probe-shared-set", "k=from-worker-0"),
        "x-probe-set-status",
    );
    assert_eq!(set.as_deref(), Some("ok"));
    let value = upstream_header(
        &proxy,
        1,
        Request::get("/").header("x-probe-shared-get", "k"),
        "x-probe-value",
    );
    assert_eq!(value.as_deref(), Some("from-worker-0"));
}

#[test]
fn a_stale_cas_is_a_conflict_and_cas_zero_overwrites() {
    let proxy = probe().workers(2).start().expect("starts");
    upstream_header(
        &proxy,
        0,
        Request::get("/").header("x-probe-shared-set", "k=1"),
        "x-probe-set-status",
    );
    let cas_seen_by_1 = upstream_header(
        &proxy,
        1,
        Request::get("/").header("x-probe-shared-get", "k"),
        "x-probe-cas",
    )
    .expect("cas");
    // Worker 0 writes again: the CAS worker 1 holds is now stale.
    upstream_header(
        &proxy,
        0,
        Request::get("/").header("x-probe-shared-set", "k=2"),
        "x-probe-set-status",
    );
    let conflict = upstream_header(
        &proxy,
        1,
        Request::get("/")
            .header("x-probe-shared-set", "k=3")
            .header("x-probe-cas", &cas_seen_by_1),
        "x-probe-set-status",
    );
    assert_eq!(conflict.as_deref(), Some("CasMismatch"));
    assert_eq!(
        proxy.shared_data(|d| d.get(b"k")).map(|(v, _)| v),
        Some(b"2".to_vec())
    );
    let overwrite = upstream_header(
        &proxy,
        1,
        Request::get("/")
            .header("x-probe-shared-set", "k=4")
            .header("x-probe-cas", "0"),
        "x-probe-set-status",
    );
    assert_eq!(overwrite.as_deref(), Some("ok"));
    assert_eq!(proxy.shared_counters().cas_mismatches, 1);
}

#[test]
fn a_missing_key_is_created_whatever_the_cas() {
    // Envoy ignores the CAS when the key does not exist yet.
    let proxy = probe().start().expect("starts");
    let created = upstream_header(
        &proxy,
        0,
        Request::get("/")
            .header("x-probe-shared-set", "new=1")
            .header("x-probe-cas", "12345"),
        "x-probe-set-status",
    );
    assert_eq!(created.as_deref(), Some("ok"));
}

#[test]
fn interference_forces_a_conflict_between_read_and_write() {
    // The tick handler reads `ticks` then writes it with the CAS it read; a write from
    // "another VM" in between makes the first attempt fail, and the module retries.
    let proxy = probe()
        .config_bytes(b"tick_ms=1000".to_vec())
        .workers(1)
        .start()
        .expect("starts");
    proxy.shared_data(|d| d.set(b"ticks", b"10", 0));
    let mut interfered = false;
    proxy.interfere(Some(Box::new(move |key, data| {
        if key == b"ticks" && !interfered {
            interfered = true;
            data.set(b"ticks", b"100", 0);
        }
    })));
    proxy.advance(Duration::from_millis(1000)).expect("ticks");
    // Main thread VM and the worker each ticked once: 100 (interference) + 1 + 1.
    assert_eq!(
        proxy.shared_data(|d| d.get(b"ticks")).map(|(v, _)| v),
        Some(b"102".to_vec())
    );
    assert_eq!(proxy.shared_counters().cas_mismatches, 1);
}

#[test]
fn moving_the_clock_fires_ticks_in_every_vm() {
    let proxy = probe()
        .config_bytes(b"tick_ms=1000".to_vec())
        .workers(3)
        .start()
        .expect("starts");
    proxy.advance(Duration::from_millis(999)).expect("advance");
    assert_eq!(proxy.counter_now("probe_ticks"), Some(0));
    proxy.advance(Duration::from_millis(1)).expect("advance");
    // Envoy runs on_tick in each worker's VM and in the main thread's.
    assert_eq!(proxy.counter_now("probe_ticks"), Some(4));
    proxy.advance(Duration::from_millis(2500)).expect("advance");
    // The clock stops at every due tick (2 s and 3 s) as a running Envoy's would.
    assert_eq!(proxy.counter_now("probe_ticks"), Some(12));
    assert_eq!(
        proxy.shared_data(|d| d.get(b"ticks")).map(|(v, _)| v),
        Some(b"12".to_vec())
    );
}

#[test]
fn an_http_call_without_answer_times_out_with_envoys_504() {
    let proxy = probe()
        .cluster("slow")
        .on_http_call(|_| CallOutcome::NoAnswer)
        .start()
        .expect("starts");
    let exchange = proxy
        .request(Request::get("/").header("x-probe-call", "slow"))
        .expect("request");
    assert!(exchange.is_paused());
    let calls = proxy.http_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].cluster, "slow");
    assert_eq!(calls[0].header(":path"), Some("/probe"));
    assert_eq!(calls[0].timeout, Some(Duration::from_secs(5)));
    proxy.advance(Duration::from_millis(4999)).expect("advance");
    assert!(exchange.is_paused());
    proxy.advance(Duration::from_millis(1)).expect("advance");
    let upstream = exchange
        .upstream_request()
        .expect("continued after the timeout");
    assert_eq!(upstream.header_value("x-probe-call-status"), Some("504"));
}

#[test]
fn a_delayed_answer_and_a_reset() {
    let proxy = probe()
        .cluster("svc")
        .on_http_call(|call| match call.header(":authority") {
            Some("probe") => CallOutcome::Respond {
                after: Duration::from_millis(200),
                response: Response::with_status(204),
            },
            _ => CallOutcome::Reset {
                after: Duration::ZERO,
            },
        })
        .start()
        .expect("starts");
    let exchange = proxy
        .request(Request::get("/").header("x-probe-call", "svc"))
        .expect("request");
    assert!(exchange.is_paused());
    proxy.advance(Duration::from_millis(200)).expect("advance");
    assert_eq!(
        exchange
            .upstream_request()
            .expect("continued")
            .header_value("x-probe-call-status"),
        Some("204")
    );

    let reset = probe()
        .cluster("svc")
        .on_http_call(|_| CallOutcome::Reset {
            after: Duration::ZERO,
        })
        .start()
        .expect("starts");
    let exchange = reset
        .request(Request::get("/").header("x-probe-call", "svc"))
        .expect("request");
    assert_eq!(
        exchange
            .upstream_request()
            .expect("continued")
            .header_value("x-probe-call-status"),
        Some("reset")
    );
}

#[test]
fn a_panic_fails_the_worker_and_is_reported_as_a_value() {
    let proxy = probe().workers(2).start().expect("starts");
    let err = proxy
        .request_on(0, Request::get("/").header("x-probe-panic", "1"))
        .err()
        .expect("trap");
    match &err {
        HarnessError::Trap {
            callback, message, ..
        } => {
            assert_eq!(*callback, "proxy_on_request_headers");
            assert!(message.contains("unreachable"), "{message}");
        }
        other => panic!("{other}"),
    }
    assert!(proxy.worker_failed(0));
    assert!(
        proxy
            .log_messages(test_harness::host::LogLevel::Critical)
            .iter()
            .any(|m| m.contains("probe asked to panic"))
    );
    assert!(matches!(
        proxy.request_on(0, Request::get("/")),
        Err(HarnessError::VmFailed { .. })
    ));
    // The other worker still serves.
    assert!(
        proxy
            .request_on(1, Request::get("/"))
            .expect("worker 1")
            .upstream_request()
            .is_ok()
    );
}

#[test]
fn bodies_arrive_in_chunks_and_buffer_until_the_end() {
    let proxy = probe().start().expect("starts");
    let exchange = proxy
        .request(
            Request::post("/")
                .header("x-probe-buffer", "1")
                .body(vec![b'x'; 3000])
                .chunked(1000),
        )
        .expect("request");
    let upstream = exchange.upstream_request().expect("forwarded");
    assert_eq!(
        upstream.body,
        b"x-probe-body-bytes=3000;x-probe-body-calls=3"
    );
    assert_eq!(upstream.header_value("content-length"), None);
}

#[test]
fn buffering_past_envoys_limit_gives_envoys_413() {
    let proxy = probe().buffer_limit(1500).start().expect("starts");
    let exchange = proxy
        .request(
            Request::post("/")
                .header("x-probe-buffer", "1")
                .body(vec![b'x'; 3000])
                .chunked(1000),
        )
        .expect("request");
    let response = exchange.local_response().expect("local reply");
    assert_eq!(response.status, 413);
    assert_eq!(response.body, b"Payload Too Large");
    // Sent through the filter chain: the module's response callback saw it (and, the request
    // headers having continued, could no longer read them).
    assert_eq!(
        response.header_value("x-probe-response-saw-request-header"),
        Some("no")
    );
}

#[test]
fn a_local_response_never_reaches_the_upstream() {
    let proxy = probe().start().expect("starts");
    let exchange = proxy
        .request(Request::get("/").header("x-probe-local", "403"))
        .expect("request");
    assert!(exchange.upstream_request().is_err());
    match exchange.outcome() {
        StreamOutcome::LocalReply(response) => assert_eq!(response.status, 403),
        other => panic!("{other:?}"),
    }
    assert!(exchange.respond(Response::ok()).is_err());
}

#[test]
fn host_calls_and_fuel_are_counted_per_exchange() {
    let proxy = probe().start().expect("starts");
    let exchange = proxy
        .request(Request::get("/").header("x-probe-add", "a=1"))
        .expect("request");
    exchange.respond(Response::ok()).expect("response");
    let cost = exchange.cost();
    // One get per probe header the module looks for, one add in each direction.
    assert_eq!(cost.host_calls.get("proxy_add_header_map_value"), Some(&2));
    assert_eq!(cost.host_calls.get("proxy_get_header_map_pairs"), Some(&1));
    assert!(
        cost.host_calls
            .get("proxy_get_header_map_value")
            .is_some_and(|n| *n >= 5)
    );
    assert!(cost.fuel > 0);
}
