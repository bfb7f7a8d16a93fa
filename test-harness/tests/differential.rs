//! The same scenarios against the native host and a real Envoy (ARCHITECTURE.md lists where
//! the two differ and why). The module under test is the probe fixture, which exercises one
//! ABI feature per request header.

use serde_json::{Value, json};
use test_harness::differential::{EnvoyTarget, NativeTarget, Target};
use test_harness::envoy::{Bootstrap, Envoy};
use test_harness::host::{CallOutcome, Harness, HarnessError};
use test_harness::{Request, Response, backend};
use xtask::wasm::PROBE;

fn echo_headers(response: &Response) -> Vec<(String, String)> {
    let body = response.json_body();
    body["headers"]
        .as_array()
        .expect("echo headers")
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().unwrap_or("").to_string(),
                pair[1].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn echoed<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Header edits: added and removed request headers reach the upstream as edited; a response
/// header is added; request headers are no longer readable in the response phase once the
/// request continued.
fn header_edits(target: &dyn Target) {
    let response = target.send(
        Request::get("/echo")
            .header("x-probe-add", "x-added=1")
            .header("x-probe-remove", "x-gone")
            .header("x-gone", "bye")
            .header("x-probe-response-add", "x-resp=2"),
    );
    let who = target.name();
    assert_eq!(response.status, 200, "{who}");
    let seen = echo_headers(&response);
    assert_eq!(echoed(&seen, "x-added"), ["1"], "{who}");
    assert!(echoed(&seen, "x-gone").is_empty(), "{who}");
    assert_eq!(response.header_value("x-resp"), Some("2"), "{who}");
    assert_eq!(
        response.header_value("x-probe-response-saw-request-header"),
        Some("no"),
        "{who}"
    );
}

/// A local response: never reaches the upstream; Envoy frames it (content-type text/plain,
/// content-length) and sends it through the filter's own response callbacks, where the
/// request headers are still readable (they never continued).
fn local_response(target: &dyn Target) {
    let response = target.send(Request::get("/echo").header("x-probe-local", "418"));
    let who = target.name();
    assert_eq!(response.status, 418, "{who}");
    assert_eq!(response.body, b"probe", "{who}");
    assert_eq!(response.header_value("x-probe"), Some("local"), "{who}");
    assert_eq!(
        response.header_value("content-type"),
        Some("text/plain"),
        "{who}"
    );
    assert_eq!(response.header_value("content-length"), Some("5"), "{who}");
    assert_eq!(
        response.header_value("x-probe-response-saw-request-header"),
        Some("yes"),
        "{who}"
    );
}

/// A body paused until its end, read whole, and replaced: the upstream gets the new body.
fn paused_then_continued_body(target: &dyn Target) {
    let body = vec![b'a'; 3000];
    let response = target.send(
        Request::post("/echo")
            .header("x-probe-buffer", "1")
            .body(body)
            .chunked(1000),
    );
    let who = target.name();
    assert_eq!(response.status, 200, "{who}");
    let echo = response.json_body();
    let report = "x-probe-body-bytes=3000;x-probe-body-calls=";
    assert_eq!(
        echo["body_bytes"]
            .as_u64()
            .map(|n| n as usize > report.len()),
        Some(true),
        "{who}: {echo}"
    );
}

/// Shared data written by one request is read by the next (in Envoy, whichever worker).
fn shared_data_round_trip(target: &dyn Target) {
    let who = target.name();
    let set = target.send(Request::get("/echo").header("x-probe-shared-set", "color=blue"));
    assert_eq!(
        echoed(&echo_headers(&set), "x-probe-set-status"),
        ["ok"],
        "{who}"
    );
    let get = target.send(Request::get("/echo").header("x-probe-shared-get", "color"));
    let seen = echo_headers(&get);
    assert_eq!(echoed(&seen, "x-probe-value"), ["blue"], "{who}");
    // A stale (non-zero, different) CAS is refused.
    let cas: u32 = echoed(&seen, "x-probe-cas")[0].parse().expect("cas");
    let stale = target.send(
        Request::get("/echo")
            .header("x-probe-shared-set", "color=red")
            .header("x-probe-cas", &(cas + 1000).to_string()),
    );
    assert_eq!(
        echoed(&echo_headers(&stale), "x-probe-set-status"),
        ["CasMismatch"],
        "{who}"
    );
    let missing = target.send(Request::get("/echo").header("x-probe-shared-get", "no-such-key"));
    assert_eq!(
        echoed(&echo_headers(&missing), "x-probe-value"),
        ["<missing>"],
        "{who}"
    );
}

/// An HTTP call to a cluster; the request waits for the answer, then continues.
fn http_call(target: &dyn Target) {
    let who = target.name();
    let response = target.send(Request::get("/echo").header("x-probe-call", "backend"));
    assert_eq!(response.status, 200, "{who}");
    assert_eq!(
        echoed(&echo_headers(&response), "x-probe-call-status"),
        ["404"],
        "{who}"
    );
    let unknown = target.send(Request::get("/echo").header("x-probe-call", "no-such-cluster"));
    assert_eq!(
        echoed(&echo_headers(&unknown), "x-probe-call-status"),
        ["BadArgument"],
        "{who}"
    );
}

type Scenario = (&'static str, fn(&dyn Target));

const SCENARIOS: &[Scenario] = &[
    ("header edits", header_edits),
    ("local response", local_response),
    ("paused then continued body", paused_then_continued_body),
    ("shared data", shared_data_round_trip),
    ("http call", http_call),
];

#[test]
fn scenarios_on_the_native_host() {
    let backend = backend();
    let proxy = Harness::load(xtask::wasm::ensure(&PROBE).expect("probe builds"))
        .cluster("backend")
        .on_http_call(|_| {
            CallOutcome::now(Response::with_status(404).json(&json!({"error": "not found"})))
        })
        .workers(2)
        .start()
        .expect("native host starts");
    let target = NativeTarget { proxy, backend };
    for (name, scenario) in SCENARIOS {
        eprintln!("native host: {name}");
        scenario(&target);
    }
}

#[test]
fn scenarios_on_a_real_envoy() {
    let backend = backend();
    let envoy = Envoy::start(
        &Bootstrap::new(backend, Value::Null)
            .module(&PROBE)
            .concurrency(2),
    )
    .expect("envoy starts");
    let target = EnvoyTarget(envoy);
    for (name, scenario) in SCENARIOS {
        eprintln!("real Envoy: {name}");
        scenario(&target);
    }
}

#[test]
fn config_rejection_on_both() {
    let native = Harness::load(xtask::wasm::ensure(&PROBE).expect("probe builds"))
        .config_bytes(b"reject".to_vec())
        .start();
    match native {
        Err(HarnessError::ConfigRejected { log, .. }) => {
            assert_eq!(log, ["probe: configuration rejected on request"]);
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("native host accepted a configuration the module refuses"),
    }
    let bootstrap = Bootstrap::new(backend(), Value::String("reject".into())).module(&PROBE);
    let log = Envoy::start_expecting_failure(&bootstrap).expect("Envoy refuses");
    assert!(
        log.contains("wasm log hardening hardening: probe: configuration rejected on request"),
        "{log}"
    );
    assert!(
        log.contains("Failed to configure base Wasm plugin"),
        "{log}"
    );
}
