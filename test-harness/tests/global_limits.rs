//! Global limits through the compiled Wasm filter on the native host: the request waits for
//! the rate limit service's gRPC answer (the test's responder plays the service, counting for
//! every worker VM), goes on or is refused with the service's numbers; a service that times
//! out, fails or is not a cluster follows `failure_mode`; a stream that leaves first does not
//! hurt the VM. The same against a real Envoy, Redis and service: `global_limits_envoy.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hardening::policy::rate_limit::rls::{
    Code, DescriptorStatus, RateLimit, RateLimitRequest, RateLimitResponse,
};
use prost::Message;
use serde_json::{Value, json};
use test_harness::host::{GrpcCall, GrpcOutcome, Harness, Proxy, StreamOutcome};
use test_harness::{Request, Response};

fn config(failure_mode: &str) -> Value {
    json!({"defaults": {"rate_limit": {"name": "api", "scope": "global", "limit": 5,
        "window": "1m", "service": {"cluster": "ratelimit", "domain": "edge",
        "timeout": "100ms", "failure_mode": failure_mode}}}})
}

/// A service that lets `limit` requests through, then refuses, for every VM.
fn counting_service(limit: u32) -> impl Fn(&GrpcCall) -> GrpcOutcome + Send + Sync + 'static {
    let used = Arc::new(AtomicU32::new(0));
    move |call: &GrpcCall| {
        assert_eq!(
            (
                call.cluster.as_str(),
                call.service.as_str(),
                call.method.as_str()
            ),
            (
                "ratelimit",
                "envoy.service.ratelimit.v3.RateLimitService",
                "ShouldRateLimit"
            )
        );
        assert_eq!(call.timeout, Some(Duration::from_millis(100)));
        let request = RateLimitRequest::decode(call.message.as_slice()).expect("decodes");
        assert_eq!(request.domain, "edge");
        let n = used.fetch_add(1, Ordering::SeqCst) + 1;
        let code = if n <= limit {
            Code::Ok
        } else {
            Code::OverLimit
        };
        GrpcOutcome::reply(answer(code, limit.saturating_sub(n)))
    }
}

fn answer(code: Code, remaining: u32) -> Vec<u8> {
    RateLimitResponse {
        overall_code: code as i32,
        statuses: vec![DescriptorStatus {
            code: code as i32,
            current_limit: Some(RateLimit {
                requests_per_unit: 5,
                unit: 2,
                name: "api".into(),
            }),
            limit_remaining: remaining,
            duration_until_reset: Some(prost_types::Duration {
                seconds: 42,
                nanos: 0,
            }),
        }],
        response_headers_to_add: vec![],
    }
    .encode_to_vec()
}

fn proxy(
    failure_mode: &str,
    service: impl Fn(&GrpcCall) -> GrpcOutcome + Send + Sync + 'static,
) -> Proxy {
    Harness::filter()
        .config(config(failure_mode))
        .cluster("ratelimit")
        .workers(2)
        .on_grpc_call(service)
        .start()
        .expect("starts")
}

#[test]
fn the_service_decides_for_every_worker_with_its_numbers_in_the_fields() {
    let proxy = proxy("allow", counting_service(5));
    let mut forwarded = 0;
    for i in 0..12 {
        let exchange = proxy
            .request_on(i % 2, Request::get("/items"))
            .expect("request");
        match exchange.outcome() {
            StreamOutcome::Forwarded => {
                let response = exchange.respond(Response::ok()).expect("response");
                assert_eq!(
                    response.header_value("ratelimit-policy"),
                    Some("\"api\";q=5;w=60")
                );
                let state = format!("\"api\";r={};t=42", 4 - forwarded);
                assert_eq!(response.header_value("ratelimit"), Some(state.as_str()));
                forwarded += 1;
            }
            StreamOutcome::LocalReply(response) => {
                assert_eq!(response.status, 429, "{}", response.text());
                assert_eq!(response.header_value("retry-after"), Some("42"));
                assert_eq!(response.header_value("ratelimit"), Some("\"api\";r=0;t=42"));
                assert_eq!(
                    response.header_value("content-type"),
                    Some("application/problem+json")
                );
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(forwarded, 5);
    assert_eq!(proxy.grpc_calls().len(), 12);
    assert_eq!(
        proxy.counter("hardening.rate_limit.api.service_requests"),
        Some(12)
    );
    assert_eq!(proxy.counter("hardening.rate_limit.api.allowed"), Some(5));
    assert_eq!(proxy.counter("hardening.rate_limit.api.limited"), Some(7));
}

#[test]
fn a_silent_service_times_out_and_failure_mode_decides() {
    for (mode, expected) in [("allow", None), ("deny", Some(503))] {
        let proxy = proxy(mode, |_| GrpcOutcome::NoAnswer);
        let exchange = proxy.request(Request::get("/items")).expect("request");
        assert_eq!(exchange.outcome(), StreamOutcome::Paused, "{mode}");
        proxy.advance(Duration::from_millis(99)).expect("clock");
        assert_eq!(exchange.outcome(), StreamOutcome::Paused, "{mode}");
        proxy.advance(Duration::from_millis(1)).expect("clock");
        match (exchange.outcome(), expected) {
            (StreamOutcome::Forwarded, None) => {}
            (StreamOutcome::LocalReply(response), Some(status)) => {
                assert_eq!(response.status, status);
                assert!(
                    response
                        .text()
                        .contains("\"code\":\"rate_limit_unavailable\"")
                );
            }
            (other, _) => panic!("{mode}: {other:?}"),
        }
        assert_eq!(
            proxy.counter("hardening.rate_limit.api.service_timeouts"),
            Some(1)
        );
        let lines = proxy.log_messages(proxy_wasm_warn());
        assert!(
            lines
                .iter()
                .any(|l| l.contains("\"event\":\"rate_limit_service_failed\"")
                    && l.contains("\"code\":\"timeout\"")),
            "{lines:?}"
        );
    }
}

fn proxy_wasm_warn() -> test_harness::host::LogLevel {
    test_harness::host::LogLevel::Warn
}

#[test]
fn an_error_status_or_an_unknown_cluster_follows_failure_mode() {
    let closed = proxy("deny", |_| GrpcOutcome::close(14, "no healthy upstream"));
    let exchange = closed.request(Request::get("/items")).expect("request");
    match exchange.outcome() {
        StreamOutcome::LocalReply(response) => assert_eq!(response.status, 503),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        closed.counter("hardening.rate_limit.api.service_errors"),
        Some(1)
    );

    // No such cluster: Envoy refuses the call at once (ParseFailure).
    let unknown = Harness::filter()
        .config(config("allow"))
        .start()
        .expect("starts");
    let exchange = unknown.request(Request::get("/items")).expect("request");
    assert_eq!(exchange.outcome(), StreamOutcome::Forwarded);
    assert_eq!(
        unknown.counter("hardening.rate_limit.api.service_errors"),
        Some(1)
    );
}

#[test]
fn a_stream_that_leaves_before_the_answer_does_not_hurt_the_vm() {
    let proxy = proxy("allow", |_| GrpcOutcome::Reply {
        after: Duration::from_millis(50),
        message: answer(Code::Ok, 3),
    });
    let gone = proxy.request(Request::get("/items")).expect("request");
    gone.abort().expect("abort");
    proxy.advance(Duration::from_millis(60)).expect("clock");
    assert!(!proxy.worker_failed(0));
    let next = proxy.request(Request::get("/items")).expect("request");
    proxy.advance(Duration::from_millis(60)).expect("clock");
    assert_eq!(next.outcome(), StreamOutcome::Forwarded);
}
