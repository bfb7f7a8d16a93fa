//! The service binary against a real redis-server, through envoy-types' generated client:
//! exact counting under concurrency, per-value counters, the statuses, Redis going away and
//! coming back, and the refusals (bad limits file, malformed requests).

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::rate_limit::Unit;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::{Code, DescriptorStatus};
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_client::RateLimitServiceClient;
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use support::{LimitsFile, Redis, Service, request};
use tonic::transport::Channel;

const LIMITS: &str = "
- namespace: hardening
  name: api
  max_value: 50
  seconds: 60
  conditions: [\"descriptors[0].limit == 'api'\"]
  variables: []
- namespace: hardening
  name: per_user
  max_value: 2
  seconds: 60
  conditions: [\"descriptors[0].limit == 'per_user'\"]
  variables: [\"descriptors[0].user\"]
- namespace: sequential
  name: hourly
  max_value: 30
  seconds: 3600
  conditions: []
  variables: []
- namespace: fussy
  name: fussy
  max_value: 5
  seconds: 60
  conditions: ['int(descriptors[0].n) > 5']
  variables: []
";

type Client = RateLimitServiceClient<Channel>;

async fn ask(
    client: &mut Client,
    request: RateLimitRequest,
) -> Result<RateLimitResponse, tonic::Status> {
    client
        .should_rate_limit(request)
        .await
        .map(|r| r.into_inner())
}

fn code(status: &DescriptorStatus) -> Code {
    Code::try_from(status.code).unwrap_or(Code::Unknown)
}

fn overall(response: &RateLimitResponse) -> Code {
    Code::try_from(response.overall_code).unwrap_or(Code::Unknown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_the_limit_is_admitted_under_concurrency() {
    let redis = Redis::start();
    let service = Service::start(&redis.url(), LIMITS);
    ready(&service).await;
    let mut tasks = tokio::task::JoinSet::new();
    // 8 connections, 25 calls in flight on each: 200 at once on one counter of 50.
    for _ in 0..8 {
        let client = service.client().await;
        for _ in 0..25 {
            let mut client = client.clone();
            tasks.spawn(async move {
                let started = Instant::now();
                let answer = ask(&mut client, request("hardening", &[&[("limit", "api")]])).await;
                (answer, started.elapsed())
            });
        }
    }
    let started = Instant::now();
    let mut admitted = Vec::new();
    let mut refused = Vec::new();
    let mut slowest = Duration::ZERO;
    while let Some(joined) = tasks.join_next().await {
        let (answer, took) = joined.expect("task");
        slowest = slowest.max(took);
        let response = answer.expect("an answer");
        assert_eq!(response.statuses.len(), 1);
        let status = response.statuses[0].clone();
        assert_eq!(overall(&response), code(&status));
        let limit = status.current_limit.clone().expect("current_limit");
        assert_eq!((limit.name.as_str(), limit.requests_per_unit), ("api", 50));
        assert_eq!(limit.unit, Unit::Minute as i32);
        let reset = status.duration_until_reset.expect("duration_until_reset");
        assert!(
            (0..=60).contains(&reset.seconds) && (reset.seconds, reset.nanos) != (0, 0),
            "{reset:?}"
        );
        match code(&status) {
            Code::Ok => admitted.push(status.limit_remaining),
            Code::OverLimit => refused.push(status.limit_remaining),
            other => panic!("unexpected code {other:?}"),
        }
    }
    eprintln!(
        "200 concurrent calls answered in {:?}, the slowest in {slowest:?}",
        started.elapsed()
    );
    assert_eq!(
        (admitted.len(), refused.len()),
        (50, 150),
        "admitted remaining: {admitted:?}"
    );
    admitted.sort_unstable();
    assert_eq!((admitted[0], admitted[49]), (0, 49), "{admitted:?}");
    assert!(refused.iter().all(|&r| r == 0), "{refused:?}");

    // Once the commits are in, the counter holds exactly 50 and refuses on.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut client = service.client().await;
    let response = ask(&mut client, request("hardening", &[&[("limit", "api")]]))
        .await
        .unwrap();
    assert_eq!(overall(&response), Code::OverLimit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_call_after_another_counts_one_by_one() {
    let redis = Redis::start();
    let service = Service::start(&redis.url(), LIMITS);
    ready(&service).await;
    let mut client = service.client().await;
    let mut answers = Vec::new();
    for _ in 0..32 {
        let response = ask(&mut client, request("sequential", &[&[("any", "thing")]]))
            .await
            .unwrap();
        let status = &response.statuses[0];
        assert_eq!(
            status.current_limit.as_ref().map(|l| l.unit),
            Some(Unit::Hour as i32)
        );
        answers.push((overall(&response), status.limit_remaining));
    }
    // The commit of one call is not awaited by its answer, yet the next call never finds
    // the hit counted twice (value and hold): no early refusal.
    let expected: Vec<(Code, u32)> = (0..30)
        .rev()
        .map(|r| (Code::Ok, r))
        .chain([(Code::OverLimit, 0), (Code::OverLimit, 0)])
        .collect();
    assert_eq!(answers, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_value_of_a_variable_counts_alone() {
    let redis = Redis::start();
    let service = Service::start(&redis.url(), LIMITS);
    ready(&service).await;
    let mut client = service.client().await;
    let alice: &[(&str, &str)] = &[("limit", "per_user"), ("user", "alice")];
    let bob: &[(&str, &str)] = &[("limit", "per_user"), ("user", "bob")];
    let carol: &[(&str, &str)] = &[("limit", "per_user"), ("user", "carol")];

    let mut remaining = Vec::new();
    for _ in 0..3 {
        let response = ask(&mut client, request("hardening", &[alice]))
            .await
            .unwrap();
        remaining.push((overall(&response), response.statuses[0].limit_remaining));
    }
    assert_eq!(
        remaining,
        [(Code::Ok, 1), (Code::Ok, 0), (Code::OverLimit, 0)]
    );
    let response = ask(&mut client, request("hardening", &[bob]))
        .await
        .unwrap();
    assert_eq!(
        (overall(&response), response.statuses[0].limit_remaining),
        (Code::Ok, 1)
    );

    // Two descriptors: statuses in order, OVER_LIMIT overall; carol's hit is released, not
    // counted, as the request is refused.
    let response = ask(&mut client, request("hardening", &[carol, alice]))
        .await
        .unwrap();
    assert_eq!(overall(&response), Code::OverLimit);
    let codes: Vec<Code> = response.statuses.iter().map(code).collect();
    assert_eq!(codes, [Code::Ok, Code::OverLimit]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let response = ask(&mut client, request("hardening", &[carol]))
        .await
        .unwrap();
    assert_eq!(
        (overall(&response), response.statuses[0].limit_remaining),
        (Code::Ok, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_descriptor_no_limit_matches_is_ok_without_a_limit() {
    let redis = Redis::start();
    let service = Service::start(&redis.url(), LIMITS);
    ready(&service).await;
    let mut client = service.client().await;
    for request in [
        request("hardening", &[&[("limit", "unknown")]]),
        request("hardening", &[&[]]),
        request("another-domain", &[&[("limit", "api")]]),
        // `user` missing: per_user's variable is unset, so it does not apply.
        request("hardening", &[&[("limit", "per_user")]]),
    ] {
        let response = ask(&mut client, request).await.unwrap();
        assert_eq!(overall(&response), Code::Ok);
        assert_eq!(response.statuses.len(), 1);
        assert_eq!(code(&response.statuses[0]), Code::Ok);
        assert_eq!(response.statuses[0].current_limit, None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_and_unevaluable_conditions_are_refused() {
    let redis = Redis::start();
    let service = Service::start(&redis.url(), LIMITS);
    ready(&service).await;
    let mut client = service.client().await;
    let status = ask(&mut client, request("", &[&[("limit", "api")]]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("domain"), "{status:?}");
    let status = ask(&mut client, request("hardening", &[]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");

    // `int('abc')` fails: Limitador would panic on it; the service answers INTERNAL, once
    // logged, and serves on. (So would a request without `n`: Limitador's missing-key
    // leniency does not reach into a function's argument.)
    for _ in 0..3 {
        let status = ask(&mut client, request("fussy", &[&[("n", "abc")]]))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Internal, "{status:?}");
        assert!(status.message().contains("fussy"), "{status:?}");
    }
    let log = service.wait_for_stderr("cannot be evaluated");
    assert_eq!(log.matches("cannot be evaluated").count(), 1, "{log}");
    let response = ask(&mut client, request("fussy", &[&[("n", "7")]]))
        .await
        .unwrap();
    assert_eq!(response.statuses[0].limit_remaining, 4);
}

/// Waits for the service to reach Redis: a domain without limits answers OK once connected
/// (and spends nothing).
async fn ready(service: &Service) {
    let mut client = service.client().await;
    let started = Instant::now();
    while ask(&mut client, request("probe", &[&[("k", "v")]]))
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not connected: {}",
            service.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls until an answer is OK; the time it took.
async fn until_ok(client: &mut Client, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let answer = ask(client, request("hardening", &[&[("limit", "api")]])).await;
        match answer {
            Ok(response) if overall(&response) == Code::Ok => return started.elapsed(),
            _ if started.elapsed() > limit => panic!("no OK within {limit:?}: last {answer:?}"),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_going_away_is_unavailable_fast_and_coming_back_serves_again() {
    let mut redis = Redis::start();
    let port = redis.port;
    let service = Service::start(&redis.url(), LIMITS);
    ready(&service).await;
    let mut client = service.client().await;
    until_ok(&mut client, Duration::from_secs(5)).await;

    redis.stop();
    let mut messages = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let status = ask(&mut client, request("hardening", &[&[("limit", "api")]]))
            .await
            .unwrap_err();
        let took = started.elapsed();
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        assert!(
            took < Duration::from_millis(500),
            "UNAVAILABLE took {took:?}"
        );
        messages.push(format!("{} ({took:?})", status.message()));
    }

    // A new, empty Redis on the same port: no counters, no scripts (NOSCRIPT recovered).
    let _redis = Redis::start_on(port);
    let took = until_ok(&mut client, Duration::from_secs(5)).await;
    eprintln!("OK again {took:?} after Redis came back");
    let log = service.wait_for_stderr("storage working again");
    assert_eq!(
        log.matches("storage failing").count(),
        1,
        "{log}\n{messages:#?}"
    );
    assert_eq!(
        log.matches("storage working again").count(),
        1,
        "{log}\n{messages:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_redis_is_unavailable_within_500_ms() {
    let redis = Redis::start();
    let service = Service::start(&redis.url(), LIMITS);
    ready(&service).await;
    let mut client = service.client().await;
    until_ok(&mut client, Duration::from_secs(5)).await;
    redis.signal("STOP");
    for _ in 0..3 {
        let started = Instant::now();
        let status = ask(&mut client, request("hardening", &[&[("limit", "api")]]))
            .await
            .unwrap_err();
        let took = started.elapsed();
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        assert!(
            took < Duration::from_millis(500),
            "UNAVAILABLE took {took:?}"
        );
    }
    redis.signal("CONT");
    until_ok(&mut client, Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_scripts_are_loaded_again() {
    let redis = Redis::start();
    let service = Service::start(&redis.url(), LIMITS);
    ready(&service).await;
    let mut client = service.client().await;
    until_ok(&mut client, Duration::from_secs(5)).await;
    assert_eq!(redis.command("SCRIPT FLUSH").as_deref(), Some("+OK\r\n"));
    let response = ask(&mut client, request("hardening", &[&[("limit", "api")]]))
        .await
        .unwrap();
    assert_eq!(
        (overall(&response), response.statuses[0].limit_remaining),
        (Code::Ok, 48)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_starts_without_redis_and_stops_on_sigterm() {
    let port = support::free_port();
    let mut service = Service::start(&format!("redis://127.0.0.1:{port}"), LIMITS);
    let mut client = service.client().await;
    let status = ask(&mut client, request("hardening", &[&[("limit", "api")]]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");

    let _redis = Redis::start_on(port);
    let took = until_ok(&mut client, Duration::from_secs(5)).await;
    eprintln!("OK {took:?} after Redis started");
    let log = service.wait_for_stderr("storage working again");
    assert_eq!(log.matches("storage failing").count(), 1, "{log}");

    let exit = service
        .terminate(Duration::from_secs(10))
        .expect("exits on SIGTERM");
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn a_bad_limits_file_exits_with_status_2_naming_the_problem() {
    for (yaml, expected) in [
        (
            "- {namespace: a, max_value: 1, seconds: 60, conditions: ['descriptors[0].a =='], variables: []}",
            "limit #1",
        ),
        (
            "- {namespace: a, max_value: 1, seconds: 60, condtions: []}",
            "unknown key `condtions`",
        ),
        (
            "- {namespace: a, seconds: 60, conditions: [], variables: []}",
            "max_value is missing",
        ),
        ("limits: []", "expected a list"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_hardening-ratelimit"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--redis",
                "redis://127.0.0.1:1",
                "--limits",
            ])
            .arg(LimitsFile::new(yaml).path())
            .output()
            .expect("run hardening-ratelimit");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{yaml}: {stderr}");
        assert!(
            stderr.contains("bad limits file") && stderr.contains(expected),
            "{yaml}: {stderr}"
        );
        assert!(output.stdout.is_empty(), "{yaml}: it served");
    }
    let output = Command::new(env!("CARGO_BIN_EXE_hardening-ratelimit"))
        .args([
            "--redis",
            "redis://127.0.0.1:1",
            "--limits",
            "/nonexistent/limits.yaml",
        ])
        .output()
        .expect("run hardening-ratelimit");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("cannot read /nonexistent/limits.yaml")
    );
}
