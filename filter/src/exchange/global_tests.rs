//! Global limits through the exchange: the request waits for the rate limit service (whole,
//! or while its body is checked), the answer lets it go or refuses it, a failure follows
//! `failure_mode`; the answer comes as a gRPC call's, or as an HTTP/2 call's (dynamic modules).

use prost::Message;
use serde_json::{Value, json};

use super::Flow;
use super::tests::{Ex, Vm, counters};
use crate::logging::Level;
use crate::policy::rate_limit::ServiceAnswer;
use crate::policy::rate_limit::rls::{
    self, Code, DescriptorStatus, RateLimit, RateLimitRequest, RateLimitResponse,
};

/// A local and a global limit; `validate`: a route `create` (POST /users) checks bodies.
fn vm(service: Value, validate: Option<Value>) -> Vm {
    let defaults = json!({"rate_limit": [
        {"name": "burst", "limit": 50, "window": "1s"},
        {"name": "api", "scope": "global", "limit": 100, "window": "1m", "service": service},
    ]});
    let routes = match validate {
        Some(validate) => json!([{"name": "create",
            "match": {"path": "/users", "methods": ["POST"]}, "validate": validate}]),
        None => json!([]),
    };
    let vm = Vm::load(json!({"defaults": defaults, "routes": routes}));
    vm.host.set_client_address(Some("192.0.2.7:41000"));
    vm
}

/// Envoy (`use_remote_address: true`) appended the client's address.
const FROM_CLIENT: (&str, &str) = ("x-forwarded-for", "192.0.2.7");

fn service(failure_mode: &str) -> Value {
    json!({"cluster": "ratelimit", "domain": "edge", "timeout": "50ms",
        "failure_mode": failure_mode})
}

fn answer(code: Code, remaining: u32) -> Vec<u8> {
    RateLimitResponse {
        overall_code: code as i32,
        statuses: vec![DescriptorStatus {
            code: code as i32,
            current_limit: Some(RateLimit {
                requests_per_unit: 100,
                unit: 2,
                name: "api".into(),
            }),
            limit_remaining: remaining,
            duration_until_reset: Some(prost_types::Duration {
                seconds: 20,
                nanos: 0,
            }),
        }],
        response_headers_to_add: vec![],
    }
    .encode_to_vec()
}

impl Ex<'_> {
    fn grpc_answered(&mut self, answer: ServiceAnswer<'_>) {
        let call = self.vm.host.calls().pop().expect("a call");
        let host = self.vm.host.host(self.core.id());
        self.core
            .on_grpc_call_response(&self.vm.plugin, &host, call.token, answer);
    }

    fn resumed(&self) -> u32 {
        self.vm.host.stream(self.core.id()).resumed
    }
}

#[test]
fn the_request_waits_for_the_service_and_goes_on_with_its_numbers() {
    let vm = vm(service("allow"), None);
    let (mut ex, flow) = vm.get("/users", &[("x-request-id", "r"), FROM_CLIENT]);
    assert_eq!(flow, Flow::Wait);
    let calls = vm.host.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].cluster, "ratelimit");
    assert_eq!(calls[0].timeout, std::time::Duration::from_millis(50));
    let (method, message) = calls[0].grpc.clone().expect("a gRPC call");
    assert_eq!(
        method,
        "envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit"
    );
    let request = RateLimitRequest::decode(message.as_slice()).expect("decodes");
    assert_eq!(request.domain, "edge");
    assert_eq!(request.descriptors.len(), 1);
    assert_eq!(ex.resumed(), 0);

    let bytes = answer(Code::Ok, 99);
    ex.grpc_answered(ServiceAnswer::Message(&bytes));
    assert_eq!(ex.resumed(), 1);
    assert!(ex.reply().is_none());
    ex.response(&[(":status", "200")]);
    assert_eq!(
        ex.written_header("ratelimit-policy").as_deref(),
        Some("\"burst\";q=50;w=1, \"api\";q=100;w=60")
    );
    assert_eq!(
        ex.written_header("ratelimit").as_deref(),
        Some("\"burst\";r=49;t=1, \"api\";r=99;t=20")
    );
    assert_eq!(
        vm.counters(),
        counters(&[
            ("hardening.rate_limit.api.allowed", 1),
            ("hardening.rate_limit.api.service_requests", 1),
            ("hardening.rate_limit.burst.allowed", 1),
            ("hardening.requests.unmatched.forwarded", 1),
        ])
    );
}

#[test]
fn over_the_limit_the_waiting_request_is_refused() {
    let vm = vm(service("allow"), None);
    let (mut ex, _) = vm.get("/users", &[("x-request-id", "r"), FROM_CLIENT]);
    let bytes = answer(Code::OverLimit, 0);
    ex.grpc_answered(ServiceAnswer::Message(&bytes));
    assert_eq!(ex.resumed(), 0);
    let reply = ex.reply().expect("refused");
    assert_eq!(reply.status, 429);
    assert_eq!(reply.header("retry-after"), Some("20"));
    ex.reply_comes_back();
    assert_eq!(
        ex.written_header("ratelimit").as_deref(),
        Some("\"burst\";r=49;t=1, \"api\";r=0;t=20")
    );
    assert_eq!(vm.counters()["hardening.rate_limit.api.limited"], 1);
    assert_eq!(vm.counters()["hardening.requests.unmatched.rejected"], 1);
    assert_eq!(
        vm.lines(),
        [(
            Level::Warn,
            json!({"event": "rejected", "policy": "rate_limit", "code": "rate_limited",
                "status": 429, "route": "", "method": "GET", "path": "/users",
                "request_id": "r"})
        )]
    );
    // A late second answer for the same call changes nothing.
    ex.grpc_answered(ServiceAnswer::Message(&answer(Code::Ok, 5)));
    assert_eq!(vm.host.replies(ex.id()).len(), 1);
    assert_eq!(ex.resumed(), 0);
}

#[test]
fn a_failed_service_lets_requests_through_or_refuses_them_per_failure_mode() {
    let allow = vm(service("allow"), None);
    let (mut ex, _) = allow.get("/users", &[("x-request-id", "r"), FROM_CLIENT]);
    ex.grpc_answered(ServiceAnswer::Closed {
        code: 4,
        message: "upstream request timeout",
    });
    assert_eq!(ex.resumed(), 1);
    assert!(ex.reply().is_none());
    assert_eq!(
        allow.counters()["hardening.rate_limit.api.service_timeouts"],
        1
    );
    assert_eq!(
        allow.counters()["hardening.requests.unmatched.forwarded"],
        1
    );
    assert_eq!(
        allow.lines(),
        [(
            Level::Warn,
            json!({"event": "rate_limit_service_failed", "policy": "rate_limit",
                "code": "timeout", "detail": "upstream request timeout", "route": "", "method": "GET", "path": "/users",
                "request_id": "r"})
        )]
    );

    let deny = vm(service("deny"), None);
    let (mut ex, _) = deny.get("/users", &[]);
    ex.grpc_answered(ServiceAnswer::Closed {
        code: 14,
        message: "no healthy upstream",
    });
    assert_eq!(ex.resumed(), 0);
    assert_eq!(ex.reply().expect("denied").status, 503);
    assert_eq!(
        deny.counters()["hardening.rate_limit.api.service_errors"],
        1
    );
    assert_eq!(deny.counters()["hardening.requests.unmatched.rejected"], 1);
}

#[test]
fn a_service_that_cannot_be_asked_is_a_failure_at_once() {
    let allow = vm(service("allow"), None);
    allow.host.unknown_cluster("ratelimit");
    let (ex, flow) = allow.get("/users", &[]);
    assert_eq!(flow, Flow::Continue);
    assert!(ex.reply().is_none());
    assert_eq!(
        allow.counters()["hardening.rate_limit.api.service_errors"],
        1
    );

    let deny = vm(service("deny"), None);
    deny.host.unknown_cluster("ratelimit");
    let (ex, flow) = deny.get("/users", &[]);
    assert_eq!(flow, Flow::Pause);
    assert_eq!(ex.reply().expect("denied").status, 503);
}

fn validated() -> Option<Value> {
    Some(json!({"max_body_bytes": 100, "body": {"type": "object"}}))
}

fn post(vm: &Vm) -> Ex<'_> {
    vm.exchange(
        &[
            (":method", "POST"),
            (":path", "/users"),
            ("content-type", "application/json"),
            FROM_CLIENT,
        ],
        b"{}",
    )
}

#[test]
fn a_body_checked_before_the_answer_waits_for_it() {
    let vm = vm(service("allow"), validated());
    let mut ex = post(&vm);
    assert_eq!(ex.headers(false), Flow::HoldHeaders);
    assert_eq!(ex.body(2, true), Flow::Pause);
    assert_eq!(
        vm.counters().get("hardening.requests.create.forwarded"),
        None
    );
    let bytes = answer(Code::Ok, 10);
    ex.grpc_answered(ServiceAnswer::Message(&bytes));
    assert_eq!(ex.resumed(), 1);
    assert_eq!(vm.counters()["hardening.requests.create.forwarded"], 1);

    // The answer first: the body's end lets the request go itself.
    let mut ex = post(&vm);
    assert_eq!(ex.headers(false), Flow::HoldHeaders);
    ex.grpc_answered(ServiceAnswer::Message(&bytes));
    assert_eq!(ex.resumed(), 0);
    assert_eq!(ex.body(2, true), Flow::Continue);
    assert_eq!(vm.counters()["hardening.requests.create.forwarded"], 2);

    // Refused after its body passed: counted as rejected only.
    let mut ex = post(&vm);
    ex.headers(false);
    assert_eq!(ex.body(2, true), Flow::Pause);
    ex.grpc_answered(ServiceAnswer::Message(&answer(Code::OverLimit, 0)));
    assert_eq!(ex.reply().expect("refused").status, 429);
    assert_eq!(ex.resumed(), 0);
    assert_eq!(vm.counters()["hardening.requests.create.forwarded"], 2);
    assert_eq!(vm.counters()["hardening.requests.create.rejected"], 1);
}

#[test]
fn an_answer_carried_over_http_is_read_as_grpc() {
    let vm = vm(service("allow"), None);
    let framed = rls::grpc_frame(&answer(Code::OverLimit, 0)).expect("frame");
    let (mut ex, _) = vm.get("/users", &[]);
    let token = vm.host.calls()[0].token;
    vm.host
        .answer_call_with(
            token,
            &[(":status", "200"), ("content-type", "application/grpc")],
            &framed,
        )
        .expect("out");
    let host = vm.host.host(ex.id());
    ex.core
        .on_http_call_response(&vm.plugin, &host, token, true);
    assert_eq!(ex.reply().expect("refused").status, 429);

    // Envoy's own trailers-only answer to a timed-out call.
    let (mut ex, _) = vm.get("/users", &[]);
    let token = vm.host.calls()[1].token;
    let headers = [
        (":status", "200"),
        ("content-type", "application/grpc"),
        ("grpc-status", "4"),
        ("grpc-message", "upstream request timeout"),
    ];
    vm.host.answer_call_with(token, &headers, b"").expect("out");
    let host = vm.host.host(ex.id());
    ex.core
        .on_http_call_response(&vm.plugin, &host, token, true);
    assert_eq!(ex.resumed(), 1);
    assert_eq!(
        vm.counters()["hardening.rate_limit.api.service_timeouts"],
        1
    );
}

#[test]
fn a_body_refused_before_the_answer_is_not_answered_twice() {
    let vm = vm(service("allow"), validated());
    let mut ex = vm.exchange(
        &[
            (":method", "POST"),
            (":path", "/users"),
            ("content-type", "application/json"),
            FROM_CLIENT,
        ],
        &[b' '; 200],
    );
    assert_eq!(ex.headers(false), Flow::HoldHeaders);
    assert_eq!(ex.body(200, true), Flow::Pause);
    assert_eq!(ex.reply().expect("too large").status, 413);
    ex.grpc_answered(ServiceAnswer::Message(&answer(Code::OverLimit, 0)));
    assert_eq!(vm.host.replies(ex.id()).len(), 1);
    assert_eq!(ex.resumed(), 0);
    assert_eq!(vm.counters()["hardening.requests.create.rejected"], 1);
    assert_eq!(vm.counters().get("hardening.rate_limit.api.limited"), None);
}
