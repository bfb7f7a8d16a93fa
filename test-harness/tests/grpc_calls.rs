//! gRPC calls on the native host, as Envoy 1.40 makes them: answers delivered to the root
//! context (the SDK routes them to the stream by token), closes with their status, timeouts
//! as close 4, unknown clusters refused, calls that outlive their stream. The module is the
//! probe fixture (`x-probe-grpc`), which dispatches `probe.Service/Call` with a 1 s timeout.

use std::time::Duration;

use test_harness::host::{Exchange, GrpcCall, GrpcOutcome, Harness, StreamOutcome};
use test_harness::{Request, Response};
use xtask::wasm::PROBE;

fn probe() -> Harness {
    Harness::load(xtask::wasm::ensure(&PROBE).expect("probe builds")).cluster("rls")
}

fn grpc_request() -> Request {
    Request::get("/").header("x-probe-grpc", "rls")
}

/// The `x-probe-grpc*` headers the upstream received, by name.
fn probe_headers(exchange: &Exchange<'_>) -> Vec<(String, String)> {
    let upstream = exchange.upstream_request().expect("forwarded");
    upstream
        .headers
        .into_iter()
        .filter(|(k, _)| k.starts_with("x-probe-grpc-"))
        .collect()
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn after(ms: u64, outcome: GrpcOutcome) -> GrpcOutcome {
    let after = Duration::from_millis(ms);
    match outcome {
        GrpcOutcome::Reply { message, .. } => GrpcOutcome::Reply { after, message },
        GrpcOutcome::Close { code, message, .. } => GrpcOutcome::Close {
            after,
            code,
            message,
        },
        GrpcOutcome::NoAnswer => GrpcOutcome::NoAnswer,
    }
}

#[test]
fn a_reply_reaches_the_stream_that_dispatched_the_call() {
    let proxy = probe()
        .on_grpc_call(|_| GrpcOutcome::reply(b"pong".to_vec()))
        .start()
        .expect("starts");
    let exchange = proxy.request(grpc_request()).expect("request");
    assert_eq!(
        probe_headers(&exchange),
        headers(&[
            ("x-probe-grpc-status", "0"),
            ("x-probe-grpc-token", "5"),
            ("x-probe-grpc-body", "pong"),
        ])
    );
    assert_eq!(
        proxy.grpc_calls(),
        vec![GrpcCall {
            cluster: "rls".into(),
            service: "probe.Service".into(),
            method: "Call".into(),
            metadata: vec![("x-meta".into(), b"v".to_vec())],
            message: b"ping".to_vec(),
            timeout: Some(Duration::from_millis(1000)),
        }]
    );
    assert_eq!(proxy.pending_grpc_calls(), 0);
}

#[test]
fn a_close_gives_its_code_and_message_through_get_status() {
    let proxy = probe()
        .on_grpc_call(|_| GrpcOutcome::close(14, "upstream connect error"))
        .start()
        .expect("starts");
    let exchange = proxy.request(grpc_request()).expect("request");
    assert_eq!(
        probe_headers(&exchange),
        headers(&[
            ("x-probe-grpc-status", "14"),
            ("x-probe-grpc-token", "5"),
            ("x-probe-grpc-message", "upstream connect error"),
            ("x-probe-grpc-status-code", "14"),
        ])
    );
}

#[test]
fn without_a_responder_the_cluster_has_no_healthy_upstream() {
    let proxy = probe().start().expect("starts");
    let exchange = proxy.request(grpc_request()).expect("request");
    assert_eq!(
        probe_headers(&exchange),
        headers(&[
            ("x-probe-grpc-status", "14"),
            ("x-probe-grpc-token", "5"),
            ("x-probe-grpc-message", "no healthy upstream"),
            ("x-probe-grpc-status-code", "14"),
        ])
    );
}

#[test]
fn no_answer_is_a_deadline_exceeded_close_at_the_timeout() {
    let proxy = probe()
        .on_grpc_call(|_| GrpcOutcome::NoAnswer)
        .start()
        .expect("starts");
    let exchange = proxy.request(grpc_request()).expect("request");
    assert!(exchange.is_paused());
    proxy.advance(Duration::from_millis(999)).expect("advance");
    assert!(exchange.is_paused(), "closed before the timeout");
    assert_eq!(proxy.pending_grpc_calls(), 1);
    proxy.advance(Duration::from_millis(1)).expect("advance");
    assert_eq!(
        probe_headers(&exchange),
        headers(&[
            ("x-probe-grpc-status", "4"),
            ("x-probe-grpc-token", "5"),
            ("x-probe-grpc-message", "upstream request timeout"),
            ("x-probe-grpc-status-code", "4"),
        ])
    );
    assert_eq!(proxy.pending_grpc_calls(), 0);
}

#[test]
fn a_delayed_reply_arrives_when_the_clock_reaches_it() {
    let proxy = probe()
        .on_grpc_call(|_| after(200, GrpcOutcome::reply(b"late".to_vec())))
        .start()
        .expect("starts");
    let exchange = proxy.request(grpc_request()).expect("request");
    proxy.advance(Duration::from_millis(199)).expect("advance");
    assert!(exchange.is_paused(), "delivered early");
    proxy.advance(Duration::from_millis(1)).expect("advance");
    assert_eq!(
        probe_headers(&exchange),
        headers(&[
            ("x-probe-grpc-status", "0"),
            ("x-probe-grpc-token", "5"),
            ("x-probe-grpc-body", "late"),
        ])
    );
}

#[test]
fn a_reply_due_after_the_timeout_is_the_timeout_close() {
    let proxy = probe()
        .on_grpc_call(|_| after(1500, GrpcOutcome::reply(b"too late".to_vec())))
        .start()
        .expect("starts");
    let exchange = proxy.request(grpc_request()).expect("request");
    proxy.advance(Duration::from_millis(1000)).expect("advance");
    assert_eq!(
        probe_headers(&exchange),
        headers(&[
            ("x-probe-grpc-status", "4"),
            ("x-probe-grpc-token", "5"),
            ("x-probe-grpc-message", "upstream request timeout"),
            ("x-probe-grpc-status-code", "4"),
        ])
    );
    // Nothing else comes, not even the reply at its own time.
    proxy.advance(Duration::from_secs(1)).expect("advance");
    assert_eq!(proxy.pending_grpc_calls(), 0);
    assert!(!proxy.worker_failed(0));
}

#[test]
fn an_unknown_cluster_is_a_parse_failure() {
    let proxy = probe()
        .on_grpc_call(|_| GrpcOutcome::reply(b"pong".to_vec()))
        .start()
        .expect("starts");
    let request = Request::get("/").header("x-probe-grpc", "nowhere");
    let exchange = proxy.request(request).expect("request");
    assert_eq!(
        probe_headers(&exchange),
        headers(&[("x-probe-grpc-status", "ParseFailure")])
    );
    assert_eq!(proxy.grpc_calls(), Vec::new());
    assert_eq!(proxy.pending_grpc_calls(), 0);
}

#[test]
fn an_answer_after_the_stream_is_gone_reaches_the_root_and_is_dropped() {
    let proxy = probe()
        .on_grpc_call(|_| after(100, GrpcOutcome::reply(b"pong".to_vec())))
        .start()
        .expect("starts");
    let exchange = proxy.request(grpc_request()).expect("request");
    exchange.abort().expect("abort");
    assert_eq!(exchange.outcome(), StreamOutcome::Reset);
    // Envoy keeps the call on the root context: deleting the stream cancels nothing.
    assert_eq!(proxy.pending_grpc_calls(), 1);
    proxy
        .advance(Duration::from_millis(100))
        .expect("delivered");
    assert_eq!(proxy.pending_grpc_calls(), 0);
    assert!(!proxy.worker_failed(0));
    let next = proxy.request(grpc_request()).expect("request");
    proxy
        .advance(Duration::from_millis(100))
        .expect("delivered");
    assert_eq!(
        probe_headers(&next),
        headers(&[
            ("x-probe-grpc-status", "0"),
            ("x-probe-grpc-token", "9"),
            ("x-probe-grpc-body", "pong"),
        ])
    );
}

#[test]
fn call_ids_are_one_more_than_multiples_of_four() {
    let proxy = probe()
        .on_grpc_call(|_| GrpcOutcome::reply(Vec::new()))
        .start()
        .expect("starts");
    let tokens: Vec<String> = (0..3)
        .map(|_| {
            let exchange = proxy.request(grpc_request()).expect("request");
            let upstream = exchange.upstream_request().expect("forwarded");
            upstream
                .header_value("x-probe-grpc-token")
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(tokens, ["5", "9", "13"]);
}

#[test]
fn each_worker_dispatches_and_receives_its_own_calls() {
    let proxy = probe()
        .workers(2)
        .on_grpc_call(|call| {
            let reply = format!("{}/{}", call.service, call.method);
            after(10, GrpcOutcome::reply(reply.into_bytes()))
        })
        .start()
        .expect("starts");
    let first = proxy.request_on(0, grpc_request()).expect("request");
    let second = proxy.request_on(1, grpc_request()).expect("request");
    assert!(first.is_paused() && second.is_paused());
    assert_eq!(proxy.pending_grpc_calls(), 2);
    proxy.advance(Duration::from_millis(10)).expect("advance");
    // Ids are per VM, as in Envoy: each worker's first call is 5.
    for exchange in [&first, &second] {
        assert_eq!(
            probe_headers(exchange),
            headers(&[
                ("x-probe-grpc-status", "0"),
                ("x-probe-grpc-token", "5"),
                ("x-probe-grpc-body", "probe.Service/Call"),
            ])
        );
    }
    assert_eq!(proxy.grpc_calls().len(), 2);
    let response = first.respond(Response::ok()).expect("respond");
    assert_eq!(response.status, 200);
}

#[test]
fn a_cancelled_call_is_never_answered_and_a_second_cancel_is_not_found() {
    let proxy = probe()
        .on_grpc_call(|_| after(10, GrpcOutcome::reply(b"pong".to_vec())))
        .start()
        .expect("starts");
    let request = grpc_request().header("x-probe-grpc-cancel", "1");
    let exchange = proxy.request(request).expect("request");
    assert_eq!(
        probe_headers(&exchange),
        headers(&[("x-probe-grpc-cancel", "Ok(()) Err(NotFound)")])
    );
    assert_eq!(proxy.pending_grpc_calls(), 0);
    // An answer now would find the request gone on (its headers no longer writable): the
    // probe's callback would panic.
    proxy.advance(Duration::from_millis(10)).expect("advance");
    assert!(!proxy.worker_failed(0));
}
