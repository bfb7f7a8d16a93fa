//! Global limits: what the config accepts, the question a request asks, what an answer (or
//! none) decides.

use std::time::Duration;

use prost::Message;
use serde_json::{Value, json};

use super::*;
use crate::policy::rate_limit::rls::{Code, DescriptorStatus, RateLimit, RateLimitResponse, Unit};
use crate::policy::rate_limit::{KeyHasher, MemorySharedData, RateLimits, RawLimits, compile};
use crate::request::Headers;

fn limits(config: Value) -> Result<RateLimits, String> {
    let raw: RawLimits = serde_json::from_value(config).map_err(|e| e.to_string())?;
    compile(&raw).map_err(|e| e.to_string())
}

fn global(extra: Value) -> Value {
    let mut limit = json!({"name": "api", "scope": "global", "limit": 100, "window": "1m",
        "service": {"cluster": "ratelimit", "domain": "edge"}});
    if let (Some(limit), Some(extra)) = (limit.as_object_mut(), extra.as_object()) {
        limit.extend(extra.clone());
    }
    limit
}

#[test]
fn a_global_limit_names_its_service_with_defaults_for_the_rest() {
    let compiled = limits(global(json!({}))).expect("valid");
    let limit = &compiled.limits[0];
    let Scope::Global(service) = &limit.scope else {
        panic!("not global: {:?}", limit.scope);
    };
    assert_eq!(
        **service,
        Service {
            cluster: "ratelimit".into(),
            domain: "edge".into(),
            timeout: Duration::from_millis(100),
            failure_mode: OnError::Allow,
        }
    );
}

#[test]
fn global_limits_refuse_what_they_cannot_honour() {
    let cases = [
        (
            json!({"service": null}),
            "`service`: required with scope: global",
        ),
        (
            json!({"service": {"domain": "edge"}}),
            "`service.cluster`: required",
        ),
        (
            json!({"service": {"cluster": "ratelimit"}}),
            "`service.domain`: required",
        ),
        // 'a' is field 12 as a fixed64, and 8 bytes follow: Envoy would read a GrpcService.
        (
            json!({"service": {"cluster": "a12345678", "domain": "edge"}}),
            "`service.cluster`: `a12345678` reads as a serialised protobuf message",
        ),
        (
            json!({"service": {"cluster": "rl", "domain": "edge", "timeout": "11s"}}),
            "`service.timeout`: at most 10s",
        ),
        (json!({"burst": 5}), "`burst`: only for local limits"),
        (json!({"slots": 64}), "`slots`: only for local limits"),
        (
            json!({"on_error": "deny"}),
            "`on_error`: only for local limits",
        ),
        (
            json!({"service": {"cluster": "rl", "domain": "edge", "extra": 1}}),
            "unknown field `extra`",
        ),
    ];
    for (extra, expected) in cases {
        let error = limits(global(extra.clone())).expect_err(&extra.to_string());
        assert!(error.contains(expected), "{extra}: {error}");
    }
    // Cluster names as Envoy, Istio and Envoy Gateway write them are taken.
    for cluster in [
        "ratelimit",
        "outbound|8081||ratelimit.default.svc.cluster.local",
        "rls_cluster-1",
    ] {
        let extra = json!({"service": {"cluster": cluster, "domain": "edge"}});
        assert!(limits(global(extra)).is_ok(), "{cluster}");
    }
    let local_with_service = json!({"limit": 1, "window": "1s",
        "service": {"cluster": "rl", "domain": "edge"}});
    let error = limits(local_with_service).expect_err("service on a local limit");
    assert!(
        error.contains("`service`: only for scope: global"),
        "{error}"
    );
}

#[test]
fn the_global_limits_of_a_list_share_one_service() {
    let other = global(json!({"name": "b", "service": {"cluster": "other", "domain": "edge"}}));
    let error = limits(json!([global(json!({})), other])).expect_err("two services");
    assert!(
        error.contains("`[1].service`: the global limits of one list"),
        "{error}"
    );
    let same = global(json!({"name": "b", "key": "route"}));
    assert!(limits(json!([global(json!({})), same])).is_ok());
}

/// The question for a GET with these headers from 192.0.2.77.
fn ask(limits: &RateLimits, headers: &[(&str, &str)]) -> Outcome {
    let mut pairs: Vec<(&[u8], &[u8])> = vec![(b":method", b"GET"), (b":path", b"/users/7?q=1")];
    pairs.extend(headers.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())));
    let headers = Headers::new(pairs);
    let store = MemorySharedData::default();
    let inputs = Inputs {
        now: 1_000_000_000,
        client: crate::policy::rate_limit::parse_ip("192.0.2.77:5000"),
        route: "users",
        store: &store,
        hasher: &KeyHasher::new([7; 16]),
    };
    limits.check(&RequestHead::from_headers(&headers), &inputs)
}

use crate::policy::rate_limit::Outcome;

fn entries(query: &ServiceQuery) -> Vec<Vec<(String, String)>> {
    let request = RateLimitRequest::decode(query.message.as_slice()).expect("decodes");
    assert_eq!(request.domain, "edge");
    assert_eq!(request.hits_addend, 1);
    request
        .descriptors
        .into_iter()
        .map(|d| d.entries.into_iter().map(|e| (e.key, e.value)).collect())
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn a_request_asks_one_descriptor_per_global_limit_after_the_local_ones_pass() {
    let compiled = limits(json!([
        {"name": "local", "limit": 5, "window": "1s"},
        global(json!({"ipv4_prefix": 24})),
        global(json!({"name": "keys", "key": ["header:x-api-key", "path", "route"]})),
    ]))
    .expect("valid");
    let outcome = ask(&compiled, &[("x-api-key", "k1")]);
    assert!(outcome.refusal.is_none());
    let query = outcome.query.expect("a question");
    assert_eq!(query.limits.len(), 2);
    assert_eq!(
        entries(&query),
        [
            pairs(&[("limit", "api"), ("client_ip", "192.0.2.0/24")]),
            pairs(&[
                ("limit", "keys"),
                ("header:x-api-key", "k1"),
                ("path", "/users/7"),
                ("route", "users")
            ]),
        ]
    );
    // The local limit counted it and gave its fields.
    assert_eq!(
        outcome.headers.expect("local fields").policy,
        "\"local\";q=5;w=1"
    );
}

#[test]
fn a_missing_key_header_is_shared_or_refused_before_asking() {
    let shared = limits(global(json!({"key": "header:x-api-key"}))).expect("valid");
    let query = ask(&shared, &[]).query.expect("asked");
    assert_eq!(
        entries(&query),
        [pairs(&[
            ("limit", "api"),
            ("header:x-api-key", MISSING_VALUE)
        ])]
    );
    let reject = limits(global(
        json!({"key": "header:x-api-key", "missing_key": "reject"}),
    ))
    .expect("valid");
    let outcome = ask(&reject, &[]);
    assert!(outcome.query.is_none());
    assert_eq!(outcome.refusal.expect("refused").status, 400);
}

#[test]
fn a_local_refusal_spares_the_service() {
    let compiled = limits(json!([
        {"name": "local", "limit": 1, "window": "1m"},
        global(json!({})),
    ]))
    .expect("valid");
    let store = MemorySharedData::default();
    let headers = Headers::new(vec![(b":method", b"GET"), (b":path", b"/")]);
    let head = RequestHead::from_headers(&headers);
    let hasher = KeyHasher::new([1; 16]);
    let inputs = Inputs {
        now: 1,
        client: None,
        route: "",
        store: &store,
        hasher: &hasher,
    };
    use crate::policy::rate_limit::RateStore;
    let local: Vec<&Limit> = compiled.limits.iter().take(1).map(|l| l.as_ref()).collect();
    store.prepare(&local, [1; 16]).expect("tables");
    assert!(compiled.check(&head, &inputs).query.is_some());
    let second = compiled.check(&head, &inputs);
    assert_eq!(second.refusal.expect("local refusal").status, 429);
    assert!(second.query.is_none());
}

fn query(extra: Value) -> ServiceQuery {
    let compiled = limits(global(extra)).expect("valid");
    ask(&compiled, &[]).query.expect("asked")
}

fn answer(code: Code, statuses: Vec<DescriptorStatus>) -> Vec<u8> {
    RateLimitResponse {
        overall_code: code as i32,
        statuses,
        response_headers_to_add: vec![],
    }
    .encode_to_vec()
}

fn status(code: Code, remaining: u32, reset_secs: i64) -> DescriptorStatus {
    DescriptorStatus {
        code: code as i32,
        current_limit: Some(RateLimit {
            requests_per_unit: 100,
            unit: Unit::Minute as i32,
            name: "api".into(),
        }),
        limit_remaining: remaining,
        duration_until_reset: Some(prost_types::Duration {
            seconds: reset_secs,
            nanos: 500_000_000,
        }),
    }
}

#[test]
fn an_ok_answer_passes_with_the_services_numbers_in_the_fields() {
    let q = query(json!({"legacy_headers": true}));
    let mut fields = None;
    let bytes = answer(Code::Ok, vec![status(Code::Ok, 41, 29)]);
    let outcome = q.decide(ServiceAnswer::Message(&bytes), &mut fields, Some("r1"));
    assert!(outcome.refusal.is_none() && outcome.failure.is_none());
    assert_eq!(outcome.events.len(), 1);
    assert_eq!(outcome.events[0].1, Event::Allowed);
    let fields = fields.expect("fields");
    assert_eq!(fields.policy, "\"api\";q=100;w=60");
    assert_eq!(fields.state, "\"api\";r=41;t=30");
    assert_eq!(
        fields.legacy,
        Some(("100".into(), "41".into(), "30".into()))
    );
}

#[test]
fn over_limit_is_the_429_with_retry_after_from_the_reset() {
    let q = query(json!({"message": "Slow down."}));
    let mut fields = None;
    let bytes = answer(Code::OverLimit, vec![status(Code::OverLimit, 0, 12)]);
    let outcome = q.decide(ServiceAnswer::Message(&bytes), &mut fields, Some("r1"));
    let refusal = outcome.refusal.expect("refused");
    assert_eq!(refusal.status, 429);
    assert_eq!(refusal.header("retry-after"), Some("13"));
    let body: Value = serde_json::from_slice(&refusal.body).expect("json");
    assert_eq!(body["code"], "rate_limited");
    assert_eq!(body["detail"], "Slow down.");
    assert_eq!(body["request_id"], "r1");
    assert_eq!(body["violated_policies"], json!(["api"]));
    assert_eq!(outcome.events[0].1, Event::Limited);
    assert_eq!(fields.expect("fields").state, "\"api\";r=0;t=13");

    // Without a reset in the answer, a client comes back after the window.
    let bare = answer(Code::OverLimit, vec![]);
    let outcome = q.decide(ServiceAnswer::Message(&bare), &mut None, None);
    assert_eq!(
        outcome.refusal.expect("refused").header("retry-after"),
        Some("60")
    );

    let dry = query(json!({"mode": "dry_run"}));
    let outcome = dry.decide(ServiceAnswer::Message(&bytes), &mut None, None);
    assert!(outcome.refusal.is_none());
    assert_eq!(outcome.events[0].1, Event::DryRunLimited);
}

#[test]
fn a_service_without_statuses_gives_the_policy_but_no_state() {
    let q = query(json!({}));
    let mut fields = None;
    let bytes = answer(Code::Ok, vec![]);
    let outcome = q.decide(ServiceAnswer::Message(&bytes), &mut fields, None);
    assert!(outcome.refusal.is_none());
    let fields = fields.expect("fields");
    assert_eq!(fields.policy, "\"api\";q=100;w=60");
    assert_eq!(fields.state, "");
}

#[test]
fn failures_follow_the_failure_mode_and_say_what_failed() {
    let allow = query(json!({}));
    let deny =
        query(json!({"service": {"cluster": "rl", "domain": "edge", "failure_mode": "deny"}}));
    let timeout = ServiceAnswer::Closed {
        code: 4,
        message: "upstream request timeout",
    };
    let cases = [
        (timeout, Failure::Timeout, Event::ServiceTimeout),
        (
            ServiceAnswer::Closed {
                code: 14,
                message: "upstream request timeout",
            },
            Failure::Timeout,
            Event::ServiceTimeout,
        ),
        (
            ServiceAnswer::Closed {
                code: 14,
                message: "upstream request timeout{response_timeout}",
            },
            Failure::Timeout,
            Event::ServiceTimeout,
        ),
        (
            ServiceAnswer::Closed {
                code: 14,
                message: "no healthy upstream",
            },
            Failure::Status(14),
            Event::ServiceError,
        ),
        (
            ServiceAnswer::NotSent,
            Failure::NotSent,
            Event::ServiceError,
        ),
        (
            ServiceAnswer::Message(b"\xff\xff"),
            Failure::Undecodable,
            Event::ServiceError,
        ),
    ];
    for (answer_, failure, event) in cases {
        let passed = allow.decide(answer_, &mut None, None);
        assert!(passed.refusal.is_none(), "{answer_:?}");
        assert_eq!(passed.failure, Some(failure), "{answer_:?}");
        assert_eq!(passed.events[0].1, event, "{answer_:?}");
        let refused = deny.decide(answer_, &mut None, Some("r"));
        let refusal = refused.refusal.expect("denied");
        assert_eq!(refusal.status, 503);
        assert_eq!(refusal.header("retry-after"), Some("1"));
        let body: Value = serde_json::from_slice(&refusal.body).expect("json");
        assert_eq!(body["code"], "rate_limit_unavailable");
    }
    let unknown = answer(Code::Unknown, vec![]);
    let outcome = allow.decide(ServiceAnswer::Message(&unknown), &mut None, None);
    assert_eq!(outcome.failure, Some(Failure::UnknownCode));
    assert_eq!(Failure::Status(14).code(), "grpc_status_14");
}

// Whatever comes back (the service's bytes, an HTTP answer's headers and body), the answer
// is read without a panic: a usable verdict, or a failure that follows `failure_mode`.
#[cfg(not(target_family = "wasm"))]
proptest::proptest! {
    #[test]
    fn any_answer_decides_without_a_panic(
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        status in "[0-9]{0,4}",
        grpc_status in proptest::option::of("[0-9a-z]{0,3}"),
    ) {
        let q = query(json!({"legacy_headers": true}));
        let mut fields = None;
        let outcome = q.decide(ServiceAnswer::Message(&bytes), &mut fields, None);
        proptest::prop_assert!(outcome.refusal.is_none() || outcome.failure.is_none()
            || outcome.refusal.as_ref().is_some_and(|r| r.status == 503));
        let mut headers: Vec<(&[u8], &[u8])> = vec![(b":status", status.as_bytes())];
        if let Some(code) = &grpc_status {
            headers.push((b"grpc-status", code.as_bytes()));
        }
        match rls::answer_over_http(&headers, &bytes) {
            rls::HttpAnswer::Message(message) => {
                proptest::prop_assert_eq!(status.as_str(), "200");
                let framed = rls::grpc_frame(message);
                proptest::prop_assert_eq!(framed.as_deref(), Some(&bytes[..]));
            }
            rls::HttpAnswer::Closed { code, .. } => proptest::prop_assert_ne!(code, 0),
        }
    }
}
