//! Global limits against real components: two Envoy processes (two replicas, 2 workers each)
//! with the filter (the build `HARDENING_BUILD` names), one sample backend, the rate limit
//! service of this repository (`hardening-ratelimit`) and Redis (Debian's `redis-server`),
//! over real sockets. One limit holds across both replicas; Redis or the service going away
//! follows `failure_mode` within the timeout, Envoy stays up, and the limits come back with
//! them.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_harness::envoy::{Bootstrap, Envoy};
use test_harness::{Request, backend_with_journal};
use xtask::ratelimit::{Redis, Service};

/// The limits the service counts (Limitador's format), one per limit name of the configs.
const LIMITS: &str = r#"
- namespace: edge
  name: fleet
  max_value: 40
  seconds: 60
  conditions: ["descriptors[0].limit == 'fleet'"]
  variables: ["descriptors[0].route"]
- namespace: edge
  name: small
  max_value: 3
  seconds: 60
  conditions: ["descriptors[0].limit == 'small'"]
  variables: ["descriptors[0].route"]
- namespace: edge
  name: open
  max_value: 100000
  seconds: 60
  conditions: ["descriptors[0].limit == 'open'"]
  variables: ["descriptors[0].route"]
- namespace: edge
  name: closed
  max_value: 100000
  seconds: 60
  conditions: ["descriptors[0].limit == 'closed'"]
  variables: ["descriptors[0].route"]
"#;

fn limits_file() -> PathBuf {
    let dir = xtask::paths::work().join("tests");
    std::fs::create_dir_all(&dir).expect("work dir");
    let path = dir.join(format!("global-limits-{}.yaml", std::process::id()));
    std::fs::write(&path, LIMITS).expect("limits file");
    path
}

/// A global limit on the route `name` (`/echo/name...`: the sample backend echoes), asking
/// `cluster`.
fn route(name: &str, limit: u32, cluster: &str, failure_mode: &str, timeout: &str) -> Value {
    json!({"name": name, "match": {"prefix": format!("/echo/{name}")},
        "rate_limit": {"name": name, "scope": "global", "limit": limit, "window": "1m",
            "key": "route", "service": {"cluster": cluster, "domain": "edge",
            "timeout": timeout, "failure_mode": failure_mode}}})
}

/// The last value of a counter in Envoy's Prometheus text (either build's prefix).
fn counter(envoy: &Envoy, name: &str) -> u64 {
    let wanted = name.replace('.', "_");
    envoy
        .prometheus()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            l.split(['{', ' '])
                .next()
                .is_some_and(|n| n.ends_with(&wanted))
        })
        .and_then(|l| l.rsplit(' ').next()?.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn one_limit_holds_exactly_across_two_replicas() {
    let mut redis = Redis::start().expect("redis starts");
    let service = Service::start(&redis.url(), &limits_file()).expect("service starts");
    let (upstream, journal) = backend_with_journal();
    let config = json!({"routes": [route("fleet", 40, "ratelimit", "deny", "2s")]});
    let replica = || {
        let bootstrap = Bootstrap::new(upstream, config.clone())
            .concurrency(2)
            .grpc_cluster("ratelimit", service.address());
        Envoy::start(&bootstrap).expect("envoy starts")
    };
    let replicas = [replica(), replica()];
    // 8 clients at once, each alternating between the replicas: 120 requests for 40.
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..8)
            .map(|client| {
                let replicas = &replicas;
                scope.spawn(move || {
                    (0..15)
                        .map(|i| {
                            let envoy = &replicas[(client + i) % 2];
                            let response = envoy.send(&Request::get("/echo/fleet"));
                            if response.status == 429 {
                                assert_eq!(
                                    response.header_value("content-type"),
                                    Some("application/problem+json")
                                );
                                let retry: u64 = response
                                    .header_value("retry-after")
                                    .and_then(|v| v.parse().ok())
                                    .expect("retry-after");
                                assert!((1..=60).contains(&retry), "retry-after {retry}");
                                assert!(
                                    response
                                        .text()
                                        .contains("\"violated_policies\":[\"fleet\"]")
                                );
                            }
                            response.status
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        clients
            .into_iter()
            .flat_map(|c| c.join().expect("client"))
            .collect()
    });
    let passed = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((passed, limited), (40, 80), "{statuses:?}");
    assert_eq!(journal.arrivals_on("/echo/fleet").len(), 40);
    // The Wasm build hands its counts to Envoy once a second.
    std::thread::sleep(Duration::from_millis(1500));
    let sent: u64 = replicas
        .iter()
        .map(|e| counter(e, "hardening.rate_limit.fleet.service_requests"))
        .sum();
    assert_eq!(sent, 120);
    let allowed: u64 = replicas
        .iter()
        .map(|e| counter(e, "hardening.rate_limit.fleet.allowed"))
        .sum();
    assert_eq!(allowed, 40);
    // Within the limit, a response carries the service's numbers (once the service has
    // reconnected to the restarted, empty Redis: `deny` until then).
    redis.restart().expect("redis restarts empty");
    let deadline = Instant::now() + Duration::from_secs(15);
    let response = loop {
        let response = replicas[0].send(&Request::get("/echo/fleet"));
        if response.status != 503 || Instant::now() > deadline {
            break response;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header_value("ratelimit-policy"),
        Some("\"fleet\";q=40;w=60")
    );
    let state = response.header_value("ratelimit").expect("ratelimit");
    assert!(state.starts_with("\"fleet\";r=39;t="), "{state}");
}

/// Sends a GET; its status and how long the answer took.
fn timed(envoy: &Envoy, path: &str) -> (u16, Duration) {
    let started = Instant::now();
    let status = envoy.send(&Request::get(path)).status;
    let took = started.elapsed();
    eprintln!("{path}: {status} in {took:?}");
    (status, took)
}

/// Polls until `path` answers `status` (a restarted component reconnecting).
fn eventually(envoy: &Envoy, path: &str, status: u16) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = envoy.send(&Request::get(path)).status;
        if got == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path}: still {got}, not {status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn failure_mode_holds_when_redis_or_the_service_go_away_and_limits_come_back() {
    let mut redis = Redis::start().expect("redis starts");
    let mut service = Service::start(&redis.url(), &limits_file()).expect("service starts");
    // A cluster that accepts connections and never answers: the call times out.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_address: SocketAddr = silent.local_addr().expect("address");
    let config = json!({"routes": [
        route("open", 100_000, "ratelimit", "allow", "300ms"),
        route("closed", 100_000, "ratelimit", "deny", "300ms"),
        route("small", 3, "ratelimit", "deny", "300ms"),
        route("slow", 10, "silent", "deny", "200ms"),
    ]});
    let (upstream, _) = backend_with_journal();
    let bootstrap = Bootstrap::new(upstream, config)
        .concurrency(2)
        .grpc_cluster("ratelimit", service.address())
        .grpc_cluster("silent", silent_address);
    let envoy = Envoy::start(&bootstrap).expect("envoy starts");
    // The routes' timeout: with Redis or the service gone the answer is an error status that
    // comes at once (measured: 1-8 ms), well within it.
    let within = Duration::from_millis(300);

    assert_eq!(timed(&envoy, "/echo/open").0, 200);
    assert_eq!(timed(&envoy, "/echo/closed").0, 200);
    // A body waits with its request for the answer, and all of it reaches the upstream.
    for request in [
        Request::post("/echo/open").body(vec![b'x'; 70_000]),
        Request::post("/echo/open")
            .body(vec![b'y'; 5_000])
            .chunked(1_000),
    ] {
        let response = envoy.send(&request);
        assert_eq!(response.status, 200, "{}", response.text());
        let size = request.body.len();
        assert_eq!(response.json_body()["body_bytes"], json!(size));
    }

    // Redis stops: the service answers UNAVAILABLE.
    redis.stop();
    for (path, expected) in [("/echo/open", 200), ("/echo/closed", 503)] {
        let (status, took) = timed(&envoy, path);
        assert_eq!(status, expected, "{path} without Redis");
        assert!(took < within, "{path} took {took:?}");
    }
    let refusal = envoy.send(&Request::get("/echo/closed"));
    assert!(
        refusal
            .text()
            .contains("\"code\":\"rate_limit_unavailable\"")
    );
    assert_eq!(refusal.header_value("retry-after"), Some("1"));
    redis.restart().expect("redis restarts");
    eventually(&envoy, "/echo/closed", 200);

    // The service stops: no one answers on its port.
    service.stop();
    for (path, expected) in [("/echo/open", 200), ("/echo/closed", 503)] {
        let (status, took) = timed(&envoy, path);
        assert_eq!(status, expected, "{path} without the service");
        assert!(took < within, "{path} took {took:?}");
    }
    service.restart().expect("service restarts");
    eventually(&envoy, "/echo/closed", 200);

    // The limits are back: exactly 3 for `small`.
    let statuses: Vec<u16> = (0..6)
        .map(|_| envoy.send(&Request::get("/echo/small")).status)
        .collect();
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429]);

    // A service that never answers: the timeout, then failure_mode.
    let (status, took) = timed(&envoy, "/echo/slow");
    assert_eq!(status, 503);
    assert!(
        took >= Duration::from_millis(150) && took < Duration::from_millis(200 + 700),
        "{took:?}"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let failures: Vec<String> = envoy
        .log()
        .lines()
        .filter(|l| l.contains("rate_limit_service_failed") && l.contains("/echo/slow"))
        .map(str::to_string)
        .collect();
    assert_eq!(
        counter(&envoy, "hardening.rate_limit.slow.service_timeouts"),
        1,
        "{failures:?}"
    );
    assert!(counter(&envoy, "hardening.rate_limit.closed.service_errors") >= 2);
    assert!(counter(&envoy, "hardening.rate_limit.open.service_errors") >= 2);

    // Envoy is up and well.
    assert_eq!(envoy.admin_get("/ready").expect("admin").status, 200);
    let log = envoy.log();
    assert!(log.contains("rate_limit_service_failed"), "{log}");
    drop(silent);
}
