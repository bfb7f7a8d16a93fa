//! Rate limits through the compiled filter: several worker VMs sharing one table in shared
//! data (the native host's, with Envoy's CAS rules), then a real Envoy with several workers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use test_harness::envoy::{Bootstrap, Envoy};
use test_harness::expect::assert_helmet_headers;
use test_harness::host::{Harness, Proxy, StreamOutcome};
use test_harness::{Request, Response, backend};

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
        let prometheus = envoy.prometheus();
        assert!(
            prometheus.contains(&format!("hardening_rate_limit_api_allowed{{}} {burst}")),
            "{prometheus}"
        );
    }
}

// ---- `client_ip` and the connection manager's view of the client's address ----

/// The event of the filter's warning that `client_ip` keys come from headers the client sent.
const FORGEABLE: &str = "\"event\":\"client_address_from_request_headers\"";

/// The filter's warning lines in Envoy's log.
fn forgeable_warnings(envoy: &Envoy) -> Vec<String> {
    envoy
        .log()
        .lines()
        .filter(|l| l.contains(FORGEABLE))
        .map(str::to_string)
        .collect()
}

fn get_forwarded_for(envoy: &Envoy, forwarded_for: &str) -> u16 {
    envoy
        .send(&Request::get("/users").header("x-forwarded-for", forwarded_for))
        .status
}

/// A counter of the filter, read from Envoy's Prometheus page (`hardening_..._allowed`).
fn envoy_counter(envoy: &Envoy, name: &str) -> u64 {
    let stats = envoy.prometheus();
    stats
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}{{}} "))?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{stats}"))
}

/// One HTTP/2 GET over cleartext (prior knowledge; header fields as plain HPACK literals), on
/// its own connection, returning once the response stream has ended. What the filter decided is
/// read from its counters.
fn h2c_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> std::io::Result<()> {
    use std::io::{Read, Write};
    fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        out.extend_from_slice(&u32::try_from(payload.len()).expect("small").to_be_bytes()[1..]);
        out.extend_from_slice(&[kind, flags]);
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
    }
    let authority = addr.to_string();
    let mut block = Vec::new();
    let pseudo = [
        (":method", "GET"),
        (":scheme", "http"),
        (":path", path),
        (":authority", authority.as_str()),
    ];
    for (name, value) in pseudo.into_iter().chain(headers.iter().copied()) {
        block.push(0); // a literal field without indexing, with a new name
        for text in [name, value] {
            block.push(u8::try_from(text.len()).expect("shorter than 127"));
            block.extend_from_slice(text.as_bytes());
        }
    }
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    frame(&mut out, 0x4, 0, 0, &[]); // SETTINGS
    frame(&mut out, 0x1, 0x4 | 0x1, 1, &block); // HEADERS, END_HEADERS | END_STREAM
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(&out)?;
    loop {
        let mut head = [0u8; 9];
        stream.read_exact(&mut head)?;
        let length = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let (kind, flags) = (head[3], head[4]);
        let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0; length];
        stream.read_exact(&mut payload)?;
        match kind {
            0x4 if flags & 0x1 == 0 => {
                let mut ack = Vec::new();
                frame(&mut ack, 0x4, 0x1, 0, &[]);
                stream.write_all(&ack)?;
            }
            0x0 | 0x1 if id == 1 && flags & 0x1 != 0 => return Ok(()),
            0x3 | 0x7 => return Err(std::io::Error::other(format!("frame type {kind}"))),
            _ => {}
        }
    }
}

#[test]
fn envoys_default_connection_manager_keys_client_ip_by_the_forwarded_for_the_client_sent() {
    // No use_remote_address: Envoy's default. source.address is the rightmost address of the
    // X-Forwarded-For the client sent (xff_num_trusted_hops 0), else the connection's peer.
    let envoy = Envoy::start(&Bootstrap::new(backend(), limited(2, "1h", json!({}))))
        .expect("envoy starts");
    let plain: Vec<u16> = (0..3)
        .map(|_| envoy.send(&Request::get("/users")).status)
        .collect();
    assert_eq!(plain, [200, 200, 429], "the peer 127.0.0.1 is limited");
    // A new forged value per request: a fresh budget each time.
    for i in 0..10 {
        assert_eq!(get_forwarded_for(&envoy, &format!("203.0.113.{i}")), 200);
    }
    // Only the rightmost address counts.
    let rightmost: Vec<u16> = [
        "198.51.100.1, 192.0.2.200",
        "198.51.100.2,192.0.2.200",
        "192.0.2.200",
    ]
    .iter()
    .map(|xff| get_forwarded_for(&envoy, xff))
    .collect();
    assert_eq!(rightmost, [200, 200, 429]);
    // A value that is not an address leaves the peer's.
    assert_eq!(get_forwarded_for(&envoy, "unknown"), 429);
    // HTTP/2 alike: a forged value is a fresh budget, none is the peer's.
    let allowed = envoy_counter(&envoy, "hardening_rate_limit_api_allowed");
    let limited = envoy_counter(&envoy, "hardening_rate_limit_api_limited");
    h2c_get(
        envoy.listener,
        "/users",
        &[("x-forwarded-for", "203.0.113.99")],
    )
    .expect("h2c");
    h2c_get(envoy.listener, "/users", &[]).expect("h2c");
    assert_eq!(
        envoy_counter(&envoy, "hardening_rate_limit_api_allowed"),
        allowed + 1
    );
    assert_eq!(
        envoy_counter(&envoy, "hardening_rate_limit_api_limited"),
        limited + 1
    );
    // The filter said so, once (one worker, one VM), at warn, with what to set.
    let warnings = forgeable_warnings(&envoy);
    assert_eq!(warnings.len(), 1, "{}", envoy.log());
    assert!(warnings[0].contains("[warning]"), "{}", warnings[0]);
    for needed in ["use_remote_address: true", "xff_num_trusted_hops: 0"] {
        assert!(warnings[0].contains(needed), "{}", warnings[0]);
    }
}

#[test]
fn with_use_remote_address_a_forged_forwarded_for_changes_nothing_and_nothing_is_said() {
    let envoy =
        Envoy::start(&Bootstrap::new(backend(), limited(2, "1h", json!({}))).use_remote_address(0))
            .expect("envoy starts");
    let statuses: Vec<u16> = (0..6)
        .map(|i| match i % 2 {
            0 => envoy.send(&Request::get("/users")).status,
            _ => get_forwarded_for(&envoy, &format!("203.0.113.{i}")),
        })
        .collect();
    assert_eq!(statuses, [200, 200, 429, 429, 429, 429]);
    // HTTP/2, with and without a forged value: the peer's budget, spent.
    let limited = envoy_counter(&envoy, "hardening_rate_limit_api_limited");
    h2c_get(envoy.listener, "/users", &[]).expect("h2c");
    h2c_get(
        envoy.listener,
        "/users",
        &[("x-forwarded-for", "203.0.113.99")],
    )
    .expect("h2c");
    assert_eq!(
        envoy_counter(&envoy, "hardening_rate_limit_api_limited"),
        limited + 2
    );
    assert_eq!(envoy_counter(&envoy, "hardening_rate_limit_api_allowed"), 2);
    // Envoy appended the peer to X-Forwarded-For of every request, HTTP/2 included, before
    // the filter saw it: no warning.
    assert!(forgeable_warnings(&envoy).is_empty(), "{}", envoy.log());
}

#[test]
fn behind_a_balancer_that_appends_one_trusted_hop_keys_by_the_address_it_appended() {
    // use_remote_address with xff_num_trusted_hops 1: the balancer (here the test client)
    // appends the client's address; whatever the client wrote left of it does not count.
    let envoy =
        Envoy::start(&Bootstrap::new(backend(), limited(2, "1h", json!({}))).use_remote_address(1))
            .expect("envoy starts");
    let statuses: Vec<u16> = [
        "203.0.113.1, 198.51.100.7",
        "203.0.113.2, 198.51.100.7",
        "198.51.100.7",
        "203.0.113.3, 198.51.100.8",
    ]
    .iter()
    .map(|xff| get_forwarded_for(&envoy, xff))
    .collect();
    assert_eq!(statuses, [200, 200, 429, 200]);
    assert!(forgeable_warnings(&envoy).is_empty(), "{}", envoy.log());
}

#[test]
fn behind_a_proxy_protocol_balancer_the_address_it_declares_is_the_key() {
    // The proxy_protocol listener filter makes the address the balancer declares the
    // connection's peer; use_remote_address with 0 hops then keys by it, whatever XFF says.
    let mut config = Bootstrap::new(backend(), limited(2, "1h", json!({})))
        .use_remote_address(0)
        .to_json();
    config["static_resources"]["listeners"][0]["listener_filters"] = json!([{
        "name": "envoy.filters.listener.proxy_protocol",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol"},
    }]);
    let envoy = Envoy::start_config(&config, 1).expect("envoy starts");
    let send = |client: &str, forwarded_for: &str| {
        let mut bytes = format!("PROXY TCP4 {client} 127.0.0.1 40000 80\r\n").into_bytes();
        let request = Request::get("/users").header("x-forwarded-for", forwarded_for);
        bytes.extend(request.to_http1(&envoy.listener.to_string()));
        test_harness::http1::send_raw(envoy.listener, &bytes, "GET")
            .expect("response")
            .status
    };
    let statuses = [
        send("198.51.100.7", "203.0.113.1"),
        send("198.51.100.7", "203.0.113.2"),
        send("198.51.100.7", "203.0.113.3"),
        send("198.51.100.8", "203.0.113.3"),
    ];
    assert_eq!(statuses, [200, 200, 429, 200]);
    assert!(forgeable_warnings(&envoy).is_empty(), "{}", envoy.log());
}

#[test]
fn the_xff_detection_extension_trusts_only_the_balancers_addresses() {
    // original_ip_detection_extensions with xff_trusted_cidrs (without use_remote_address):
    // from a trusted peer, the rightmost untrusted X-Forwarded-For address is the client; a
    // peer outside those networks is the client itself, whatever it sends.
    let start = |cidr: (&str, u32)| {
        let mut config = Bootstrap::new(backend(), limited(2, "1h", json!({}))).to_json();
        config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
            ["original_ip_detection_extensions"] = json!([{
            "name": "envoy.http.original_ip_detection.xff",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.http.original_ip_detection.xff.v3.XffConfig",
                "xff_trusted_cidrs": {"cidrs": [{"address_prefix": cidr.0, "prefix_len": cidr.1}]},
            },
        }]);
        Envoy::start_config(&config, 1).expect("envoy starts")
    };
    let trusted = start(("127.0.0.0", 8));
    let statuses: Vec<u16> = [
        "203.0.113.1, 198.51.100.7",
        "203.0.113.2, 198.51.100.7",
        "198.51.100.7, 127.0.0.9",
        "198.51.100.8",
    ]
    .iter()
    .map(|xff| get_forwarded_for(&trusted, xff))
    .collect();
    assert_eq!(statuses, [200, 200, 429, 200]);
    let untrusted = start(("10.0.0.0", 8));
    let statuses: Vec<u16> = (0..3)
        .map(|i| get_forwarded_for(&untrusted, &format!("203.0.113.{i}")))
        .collect();
    assert_eq!(statuses, [200, 200, 429]);
    // From an untrusted peer Envoy appends it to X-Forwarded-For, which the filter sees.
    assert_eq!(untrusted.send(&Request::get("/users")).status, 429);
    assert!(
        forgeable_warnings(&untrusted).is_empty(),
        "{}",
        untrusted.log()
    );
}

#[test]
fn the_address_read_from_x_forwarded_for_is_the_one_envoy_computed() {
    // `client_address: {from: x_forwarded_for}` with the connection manager's hops keys by
    // the address Envoy's source.address holds: the same statuses for the same requests under
    // Envoy's defaults, use_remote_address with 0 hops, and with 1 hop. (That the property is
    // then not read is the host-call count of the unit test in exchange/rate_limit_tests.rs;
    // the test client is on loopback, for which Envoy appends its own address.)
    let sequence = [
        "",
        "203.0.113.1",
        "203.0.113.1, 198.51.100.7",
        "198.51.100.7",
        "unknown",
        "203.0.113.2, 198.51.100.8",
        "",
        "203.0.113.1",
        "203.0.113.3, 198.51.100.7",
    ];
    for hops in [None, Some(0), Some(1)] {
        let run = |client_address: Value| -> Vec<u16> {
            let mut config = limited(2, "1h", json!({}));
            config["client_address"] = client_address;
            let bootstrap = Bootstrap::new(backend(), config);
            let bootstrap = match hops {
                Some(hops) => bootstrap.use_remote_address(hops),
                None => bootstrap,
            };
            let envoy = Envoy::start(&bootstrap).expect("envoy starts");
            sequence
                .iter()
                .map(|xff| match *xff {
                    "" => envoy.send(&Request::get("/users")).status,
                    xff => get_forwarded_for(&envoy, xff),
                })
                .collect()
        };
        let from_envoy = run(json!({"from": "envoy"}));
        let from_header = run(json!({
            "from": "x_forwarded_for", "xff_num_trusted_hops": hops.unwrap_or(0)
        }));
        assert!(
            from_envoy.contains(&429) && from_envoy.contains(&200),
            "hops {hops:?}: {from_envoy:?}"
        );
        assert_eq!(from_header, from_envoy, "hops {hops:?}");
    }
}
