//! Rate limits through the compiled filter: several worker VMs sharing one table in shared
//! data (the native host's, with Envoy's CAS rules), then a real Envoy with several workers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sample_backend::Backend;
use serde_json::{Value, json};
use test_harness::envoy::{Bootstrap, Envoy};
use test_harness::expect::assert_helmet_headers;
use test_harness::host::{Harness, Proxy, StreamOutcome};
use test_harness::{Request, Response};

fn limited(limit: u32, window: &str, extra: Value) -> Value {
    let mut section = json!({"name": "api", "limit": limit, "window": window});
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            section[k] = v;
        }
    }
    json!({"defaults": {"rate_limit": section}})
}

/// Sends a request on a worker; true if it reached the upstream.
fn allowed(proxy: &Proxy, worker: usize, request: Request) -> bool {
    let exchange = proxy.request_on(worker, request).expect("request");
    match exchange.outcome() {
        StreamOutcome::Forwarded => {
            exchange.respond(Response::ok()).expect("response");
            true
        }
        StreamOutcome::LocalReply(response) => {
            assert_eq!(response.status, 429, "{}", response.text());
            false
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn vms_sharing_one_table_allow_exactly_the_burst_then_one_per_interval() {
    for workers in [2, 4] {
        // 10 per minute: a burst of 10, then one every 6 s.
        let proxy = Harness::filter()
            .config(limited(10, "1m", json!({})))
            .workers(workers)
            .start()
            .expect("starts");
        let mut passed = 0;
        for i in 0..40 {
            passed += usize::from(allowed(&proxy, i % workers, Request::get("/items")));
        }
        assert_eq!(passed, 10, "{workers} workers");
        proxy.advance(Duration::from_millis(5_999)).expect("clock");
        assert!(!allowed(&proxy, 0, Request::get("/items")));
        proxy.advance(Duration::from_millis(1)).expect("clock");
        assert!(allowed(&proxy, 1 % workers, Request::get("/items")));
        assert!(!allowed(&proxy, 0, Request::get("/items")));
        assert_eq!(proxy.counter("hardening.rate_limit.api.allowed"), Some(11));
        assert_eq!(proxy.counter("hardening.rate_limit.api.limited"), Some(32));
    }
}

#[test]
fn workers_racing_on_threads_never_let_more_through() {
    let proxy = Harness::filter()
        .config(limited(100, "1h", json!({})))
        .workers(4)
        .start()
        .expect("starts");
    let passed = AtomicU32::new(0);
    std::thread::scope(|scope| {
        for worker in 0..4 {
            let (proxy, passed) = (&proxy, &passed);
            scope.spawn(move || {
                for _ in 0..60 {
                    if allowed(proxy, worker, Request::get("/items")) {
                        passed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    assert_eq!(passed.load(Ordering::SeqCst), 100);
}

#[test]
fn a_forced_cas_conflict_is_retried_and_counted() {
    let proxy = Harness::filter()
        .config(limited(3, "1m", json!({})))
        .workers(2)
        .start()
        .expect("starts");
    let mut interfered = false;
    proxy.interfere(Some(Box::new(move |key, data| {
        if !interfered && key.starts_with(b"hardening.rl.") && !key.ends_with(b"ready") {
            interfered = true;
            // Another worker writes the bucket between this read and its write.
            if let Some((value, _)) = data.get(key) {
                data.set(key, &value, 0);
            }
        }
    })));
    assert!(allowed(&proxy, 0, Request::get("/")));
    proxy.interfere(None);
    assert_eq!(
        proxy.counter("hardening.rate_limit.api.store_conflicts"),
        Some(1)
    );
    assert!(allowed(&proxy, 1, Request::get("/")));
    assert!(allowed(&proxy, 0, Request::get("/")));
    assert!(
        !allowed(&proxy, 1, Request::get("/")),
        "the retried request counted once"
    );
}

#[test]
fn the_wall_clock_going_back_costs_at_most_a_window() {
    let proxy = Harness::filter()
        .config(limited(2, "10s", json!({})))
        .start()
        .expect("starts");
    assert!(allowed(&proxy, 0, Request::get("/")));
    assert!(allowed(&proxy, 0, Request::get("/")));
    proxy.step_wall_clock_back(Duration::from_secs(3600));
    assert!(!allowed(&proxy, 0, Request::get("/")));
    proxy.advance(Duration::from_secs(5)).expect("clock");
    assert!(allowed(&proxy, 0, Request::get("/")), "not an hour");
}

#[test]
fn a_flood_of_distinct_clients_leaves_the_table_as_it_was() {
    let proxy = Harness::filter()
        .config(limited(3, "1m", json!({"slots": 1024})))
        .start()
        .expect("starts");
    let entries = proxy.shared_data(|d| d.len());
    assert_eq!(
        entries,
        1024 / 8 + 2,
        "128 buckets, the ready marker and the secret, created at start"
    );
    let hot = "198.51.100.7:4444";
    for _ in 0..3 {
        assert!(allowed(&proxy, 0, Request::get("/").from_source(hot)));
    }
    for i in 0..20_000u32 {
        let client = format!("10.{}.{}.{}:1000", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        allowed(&proxy, 0, Request::get("/").from_source(&client));
    }
    assert_eq!(proxy.shared_data(|d| d.len()), entries);
    assert!(proxy.shared_data(|d| d.bytes()) <= 128 * (128 + 40) + 64);
    assert!(
        !allowed(&proxy, 0, Request::get("/").from_source(hot)),
        "the hot client is still limited"
    );
    // IPv6 clients in one /56 share a budget.
    let proxy = Harness::filter()
        .config(limited(1, "1m", json!({})))
        .start()
        .expect("starts");
    assert!(allowed(
        &proxy,
        0,
        Request::get("/").from_source("[2001:db8:0:ab01::1]:1")
    ));
    assert!(!allowed(
        &proxy,
        0,
        Request::get("/").from_source("[2001:db8:0:abff::2]:1")
    ));
    assert!(allowed(
        &proxy,
        0,
        Request::get("/").from_source("[2001:db8:0:ac00::1]:1")
    ));
}

#[test]
fn responses_carry_the_ratelimit_fields_and_a_429_carries_retry_after_cors_and_security_headers() {
    let mut config = limited(2, "1m", json!({"legacy_headers": true}));
    config["defaults"]["cors"] = json!({"allow_origins": ["https://app.example.com"]});
    let proxy = Harness::filter().config(config).start().expect("starts");
    let send = |proxy: &Proxy| {
        let exchange = proxy
            .request(Request::get("/items").header("origin", "https://app.example.com"))
            .expect("request");
        match exchange.outcome() {
            StreamOutcome::Forwarded => exchange
                .respond(Response::ok().header("ratelimit", "\"upstream\";r=5"))
                .expect("response"),
            StreamOutcome::LocalReply(response) => response,
            other => panic!("{other:?}"),
        }
    };
    let first = send(&proxy);
    assert_eq!(first.status, 200);
    assert_eq!(
        first.header_value("ratelimit-policy"),
        Some("\"api\";q=2;w=60")
    );
    assert_eq!(
        first.header_value("ratelimit"),
        Some("\"api\";r=1;t=30"),
        "the upstream's field replaced"
    );
    assert_eq!(first.header_value("x-ratelimit-limit"), Some("2"));
    assert_eq!(first.header_value("x-ratelimit-remaining"), Some("1"));
    assert_eq!(first.header_value("x-ratelimit-reset"), Some("30"));
    send(&proxy);
    proxy.advance(Duration::from_secs(12)).expect("clock");
    let refused = send(&proxy);
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header_value("retry-after"), Some("18"));
    assert_eq!(refused.header_value("ratelimit"), Some("\"api\";r=0;t=18"));
    assert_eq!(
        refused.header_value("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(
        refused.header_value("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(refused.json_body()["code"], "rate_limited");
    assert_helmet_headers(&refused, "native host 429");
}

#[test]
fn dry_run_never_refuses_and_counts_what_it_would_have() {
    let proxy = Harness::filter()
        .config(limited(1, "1m", json!({"mode": "dry_run"})))
        .start()
        .expect("starts");
    for _ in 0..3 {
        assert!(allowed(&proxy, 0, Request::get("/")));
    }
    assert_eq!(
        proxy.counter("hardening.rate_limit.api.dry_run_limited"),
        Some(2)
    );
}

#[test]
fn a_route_without_limits_is_not_counted() {
    let mut config = limited(1, "1m", json!({}));
    config["routes"] =
        json!([{"name": "health", "match": {"path": "/health"}, "rate_limit": false}]);
    let proxy = Harness::filter().config(config).start().expect("starts");
    for _ in 0..5 {
        assert!(allowed(&proxy, 0, Request::get("/health")));
    }
    assert!(allowed(&proxy, 0, Request::get("/items")));
    assert!(!allowed(&proxy, 0, Request::get("/items")));
}

// ---- a real Envoy with several workers ----

fn backend() -> SocketAddr {
    Backend::bind("127.0.0.1:0").expect("backend binds").spawn()
}

/// The number of connections each worker of the listener accepted.
fn connections_per_worker(envoy: &Envoy) -> Vec<u64> {
    let stats = envoy
        .admin_get("/stats?filter=worker_.*downstream_cx_total")
        .expect("stats")
        .text();
    stats
        .lines()
        .filter(|l| l.starts_with("listener.127.0.0.1_"))
        .filter_map(|l| l.rsplit(": ").next()?.trim().parse().ok())
        .collect()
}

#[test]
fn envoy_workers_together_allow_exactly_the_burst() {
    for workers in [2u32, 4] {
        let burst = 30;
        let config = json!({
            "defaults": {"rate_limit": {"name": "api", "limit": burst, "window": "1h"}, "cors": {"allow_origins": ["https://app.example.com"]}}
        });
        let envoy = Envoy::start(&Bootstrap::new(backend(), config).concurrency(workers))
            .expect("envoy starts");
        let statuses: Vec<(u16, Response)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let envoy = &envoy;
                    scope.spawn(move || {
                        (0..10)
                            .map(|_| {
                                let response = envoy.send(
                                    &Request::get("/users")
                                        .header("origin", "https://app.example.com"),
                                );
                                (response.status, response)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("client thread"))
                .collect()
        });
        let ok = statuses.iter().filter(|(s, _)| *s == 200).count();
        let others: Vec<(u16, String)> = statuses
            .iter()
            .filter(|(s, _)| *s != 200 && *s != 429)
            .map(|(s, r)| (*s, r.text()))
            .collect();
        assert!(others.is_empty(), "{others:?}");
        let limited: Vec<&Response> = statuses
            .iter()
            .filter(|(s, _)| *s == 429)
            .map(|(_, r)| r)
            .collect();
        assert_eq!(ok, burst as usize, "--concurrency {workers}");
        assert_eq!(
            limited.len(),
            80 - burst as usize,
            "--concurrency {workers}"
        );
        for response in &limited {
            let retry: u64 = response
                .header_value("retry-after")
                .expect("retry-after")
                .parse()
                .expect("seconds");
            assert!((1..=120).contains(&retry), "{retry}");
            assert_eq!(
                response.header_value("ratelimit-policy"),
                Some("\"api\";q=30;w=3600")
            );
            assert_eq!(
                response.header_value("ratelimit"),
                Some(format!("\"api\";r=0;t={retry}").as_str())
            );
            assert_eq!(
                response.header_value("access-control-allow-origin"),
                Some("https://app.example.com")
            );
            assert_helmet_headers(response, "real Envoy 429");
        }
        let busy_workers = connections_per_worker(&envoy)
            .iter()
            .filter(|n| **n > 0)
            .count();
        assert!(
            busy_workers >= 2,
            "the load reached several workers: {:?}",
            connections_per_worker(&envoy)
        );
        let prometheus = envoy.admin_get("/stats/prometheus").expect("stats").text();
        assert!(
            prometheus.contains(&format!("hardening_rate_limit_api_allowed{{}} {burst}")),
            "{prometheus}"
        );
    }
}
