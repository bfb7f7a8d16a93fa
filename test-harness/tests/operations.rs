//! Operations through the compiled filter: upstream errors replaced, HTTPS redirect, the health
//! endpoint with checks, structured logs with redaction, metrics, secrets from the
//! environment. Native host first, then a real Envoy.

use std::time::Duration;

use sample_backend::STACK_TRACE;
use serde_json::{Value, json};
use test_harness::envoy::{Bootstrap, Envoy};
use test_harness::expect::assert_helmet_headers;
use test_harness::host::{CallOutcome, Harness, HarnessError, LogLevel, Proxy, StreamOutcome};
use test_harness::{Request, Response, backend};

fn native(config: Value) -> Proxy {
    Harness::filter()
        .config(config)
        .start()
        .expect("filter starts")
}

fn through(proxy: &Proxy, request: Request, upstream: Response) -> Response {
    let exchange = proxy.request(request).expect("request");
    match exchange.outcome() {
        StreamOutcome::Forwarded => exchange.respond(upstream).expect("response"),
        StreamOutcome::LocalReply(response) => response,
        other => panic!("{other:?}"),
    }
}

fn stack_trace_response() -> Response {
    Response::with_status(500)
        .header("content-type", "text/plain; charset=utf-8")
        .header("content-length", "300")
        .header("etag", "\"v1\"")
        .header("retry-after", "5")
        .body(format!("Internal Server Error\n{STACK_TRACE}\n"))
}

#[test]
fn an_upstream_500_becomes_a_generic_problem_with_the_request_id() {
    let proxy = native(json!({"defaults": {"errors": {}}}));
    let response = through(
        &proxy,
        Request::get("/users").header("x-request-id", "req-42"),
        stack_trace_response(),
    );
    assert_eq!(response.status, 500);
    assert_eq!(
        response.header_value("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(
        response.header_value("etag"),
        None,
        "headers describing the old body are gone"
    );
    assert_eq!(
        response.header_value("retry-after"),
        Some("5"),
        "other upstream headers stay"
    );
    let body = response.json_body();
    assert_eq!(body["type"], "about:blank");
    assert_eq!(body["title"], "Internal Server Error");
    assert_eq!(body["status"], 500);
    assert_eq!(body["request_id"], "req-42");
    assert_eq!(body["timestamp"], "2026-01-01T00:00:00.000Z");
    assert!(!response.text().contains("ECONNREFUSED") && !response.text().contains("/srv/app"));
    assert_eq!(
        response
            .header_value("content-length")
            .map(|v| v.parse::<usize>().ok()),
        Some(Some(response.body.len()))
    );
    assert_helmet_headers(&response, "replaced 500");
    let logged = proxy.log_messages(LogLevel::Error);
    assert_eq!(logged.len(), 1, "{logged:?}");
    let line: Value = serde_json::from_str(&logged[0]).expect("a JSON line");
    assert_eq!(line["event"], "replaced_upstream_error");
    assert_eq!(line["status"], 500);
    assert_eq!(line["request_id"], "req-42");
    assert!(!logged[0].contains("ECONNREFUSED"));
    assert_eq!(
        proxy.counter("hardening.requests.unmatched.upstream_error_replaced"),
        Some(1)
    );
}

#[test]
fn errors_can_be_kept_per_route_and_content_type() {
    let proxy = native(json!({
        "defaults": {"errors": {"keep_content_types": ["application/problem+json"]}},
        "routes": [{"name": "legacy", "match": {"prefix": "/legacy/"}, "errors": false}]
    }));
    let legacy = through(&proxy, Request::get("/legacy/x"), stack_trace_response());
    assert!(legacy.text().contains("ECONNREFUSED"), "opted out");
    let own_problem = Response::with_status(503)
        .json(&json!({"type": "https://api.example.com/problems/maintenance", "status": 503}));
    let own_problem = Response {
        headers: vec![("content-type".into(), "application/problem+json".into())],
        ..own_problem
    };
    let kept = through(&proxy, Request::get("/x"), own_problem);
    assert_eq!(
        kept.json_body()["type"],
        "https://api.example.com/problems/maintenance"
    );
    // The filter's own 5xx answers are never "replaced": the health endpoint's 503.
    let proxy = Harness::filter()
        .config(
            json!({"defaults": {"errors": {}}, "health": {"checks": {"db": {"cluster": "db"}}}}),
        )
        .cluster("db")
        .on_http_call(|_| CallOutcome::now(Response::with_status(500)))
        .start()
        .expect("starts");
    let health = proxy
        .request(Request::get("/healthz"))
        .expect("request")
        .local_response()
        .expect("answered");
    assert_eq!(health.status, 503);
    assert_eq!(
        health.header_value("content-type"),
        Some("application/json")
    );
    assert_eq!(health.json_body()["status"], "unhealthy");
    assert_eq!(
        proxy.counter("hardening.requests.unmatched.upstream_error_replaced"),
        Some(0)
    );
}

#[test]
fn http_requests_are_redirected_to_https_with_the_query() {
    let proxy = native(
        json!({"defaults": {"https_redirect": {"exempt_paths": ["/healthz"], "hosts": ["api.example.com"]}},
               "routes": [{"name": "legacy", "match": {"prefix": "/legacy/"}, "https_redirect": {"status": 301}}],
               "health": {}}),
    );
    let redirect = |path: &str| {
        proxy
            .request(
                Request::get(path)
                    .header("host", "api.example.com")
                    .header("x-forwarded-proto", "http"),
            )
            .expect("request")
    };
    let response = redirect("/users?page=2&sort=name")
        .local_response()
        .expect("redirected");
    assert_eq!(response.status, 308);
    assert_eq!(
        response.header_value("location"),
        Some("https://api.example.com/users?page=2&sort=name")
    );
    assert_helmet_headers(&response, "redirect");
    let health = redirect("/healthz")
        .local_response()
        .expect("health answered");
    assert_eq!(
        health.status, 200,
        "the exempt health path is not redirected"
    );
    let already = proxy
        .request(Request::get("/users").header("x-forwarded-proto", "https"))
        .expect("request");
    assert_eq!(already.outcome(), StreamOutcome::Forwarded);
    let evil = proxy
        .request(
            Request::get("/")
                .header("host", "evil.example/steal")
                .header("x-forwarded-proto", "http"),
        )
        .expect("request");
    let refused = evil.local_response().expect("refused");
    assert_eq!(refused.status, 400);
    assert_eq!(refused.json_body()["code"], "invalid_host");
    // Not one of `hosts`: refused, also on a route that overrides only the status.
    for path in ["/users", "/legacy/x"] {
        let forged = proxy
            .request(
                Request::get(path)
                    .header("host", "evil.example")
                    .header("x-forwarded-proto", "http"),
            )
            .expect("request");
        assert_eq!(
            forged.local_response().expect("refused").status,
            400,
            "{path}"
        );
    }
    let legacy = redirect("/legacy/x?a=1")
        .local_response()
        .expect("redirected");
    assert_eq!(legacy.status, 301);
    assert_eq!(
        legacy.header_value("location"),
        Some("https://api.example.com/legacy/x?a=1")
    );
}

fn health_config() -> Value {
    json!({"health": {"version": "1.2.3", "timeout": "500ms", "cache_for": "1s", "checks": {
        "database": {"cluster": "db", "path": "/ping"},
        "search": {"cluster": "search", "path": "/_health", "expected_status": 204}
    }}})
}

#[test]
fn health_is_healthy_when_every_check_answers_as_expected() {
    let proxy = Harness::filter()
        .config(health_config())
        .cluster("db")
        .cluster("search")
        .on_http_call(|call| match call.cluster.as_str() {
            "db" => CallOutcome::Respond {
                after: Duration::from_millis(30),
                response: Response::ok(),
            },
            _ => CallOutcome::Respond {
                after: Duration::from_millis(80),
                response: Response::with_status(204),
            },
        })
        .start()
        .expect("starts");
    proxy.advance(Duration::from_secs(90)).expect("clock");
    let exchange = proxy.request(Request::get("/healthz")).expect("request");
    assert!(exchange.is_paused(), "waiting for the checks");
    assert_eq!(proxy.http_calls().len(), 2, "both checks at once");
    assert_eq!(proxy.http_calls()[0].header(":path"), Some("/ping"));
    assert_eq!(
        proxy.http_calls()[0].timeout,
        Some(Duration::from_millis(500))
    );
    proxy.advance(Duration::from_millis(80)).expect("clock");
    let response = exchange.local_response().expect("answered");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.json_body(),
        json!({"status": "healthy", "uptime_seconds": 90, "version": "1.2.3", "checks": {
            "database": {"status": "healthy", "duration_ms": 30},
            "search": {"status": "healthy", "duration_ms": 80}
        }})
    );
    // Cached: no new calls within cache_for.
    let again = proxy.request(Request::get("/healthz")).expect("request");
    assert_eq!(again.local_response().expect("cached").status, 200);
    assert_eq!(proxy.http_calls().len(), 2);
    proxy.advance(Duration::from_secs(1)).expect("clock");
    proxy.request(Request::get("/healthz")).expect("request");
    assert_eq!(proxy.http_calls().len(), 4, "the cache expired");
}

#[test]
fn requests_during_a_run_wait_for_it_instead_of_starting_another() {
    let proxy = Harness::filter()
        .config(health_config())
        .cluster("db")
        .cluster("search")
        .on_http_call(|call| CallOutcome::Respond {
            after: Duration::from_millis(100),
            response: Response::with_status(if call.cluster == "db" { 200 } else { 204 }),
        })
        .start()
        .expect("starts");
    let first = proxy.request(Request::get("/healthz")).expect("request");
    let second = proxy.request(Request::get("/healthz")).expect("request");
    let third = proxy
        .request(Request::get("/healthz?probe=lb"))
        .expect("request");
    assert!(first.is_paused() && second.is_paused() && third.is_paused());
    assert_eq!(
        proxy.http_calls().len(),
        2,
        "one run for the three requests"
    );
    proxy.advance(Duration::from_millis(100)).expect("clock");
    for exchange in [&first, &second, &third] {
        let response = exchange.local_response().expect("answered");
        assert_eq!(response.status, 200);
        assert_eq!(response.json_body()["status"], "healthy");
        assert_helmet_headers(&response, "health answer");
    }

    // The exchange that started a run goes away: Envoy cancels its calls; the others get
    // an answer at once (the unanswered checks unhealthy), not a hang.
    proxy
        .advance(Duration::from_secs(5))
        .expect("past the cache");
    let owner = proxy.request(Request::get("/healthz")).expect("request");
    let waiter = proxy.request(Request::get("/healthz")).expect("request");
    assert_eq!(proxy.http_calls().len(), 4);
    owner.abort().expect("client leaves");
    let response = waiter.local_response().expect("answered");
    assert_eq!(response.status, 503);
    assert_eq!(
        response.json_body()["checks"]["database"]["status"],
        "unhealthy"
    );
    // Not cached: the next request runs the checks again.
    let again = proxy.request(Request::get("/healthz")).expect("request");
    assert_eq!(proxy.http_calls().len(), 6);
    proxy.advance(Duration::from_millis(100)).expect("clock");
    assert_eq!(again.local_response().expect("answered").status, 200);
}

#[test]
fn a_failing_or_silent_check_makes_it_503_within_the_timeout() {
    let proxy = Harness::filter()
        .config(health_config())
        .cluster("db")
        .cluster("search")
        .on_http_call(|call| match call.cluster.as_str() {
            "db" => CallOutcome::now(Response::with_status(500)),
            _ => CallOutcome::NoAnswer,
        })
        .start()
        .expect("starts");
    let exchange = proxy.request(Request::get("/healthz")).expect("request");
    proxy.advance(Duration::from_millis(499)).expect("clock");
    assert!(exchange.is_paused());
    proxy.advance(Duration::from_millis(1)).expect("clock");
    let response = exchange.local_response().expect("answered at the timeout");
    assert_eq!(response.status, 503);
    let body = response.json_body();
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["checks"]["database"]["status"], "unhealthy");
    assert_eq!(body["checks"]["search"]["status"], "unhealthy");
    assert_eq!(body["checks"]["search"]["duration_ms"], 500);
    assert!(
        proxy
            .log_messages(LogLevel::Warn)
            .iter()
            .any(|l| l.contains("\"event\":\"unhealthy\""))
    );
}

#[test]
fn logs_are_json_lines_and_never_carry_secrets() {
    let config = json!({
        "logging": {"level": "debug", "include_headers": ["user-agent", "authorization", "cookie"]},
        "defaults": {"cors": {"allow_origins": ["https://app.example.com"]}},
        "routes": [{"name": "create_user", "match": {"path": "/users", "methods": ["POST"]}, "validate": {"body": {
            "type": "object", "properties": {"email": {"type": "string", "format": "email"}, "password": {"type": "string", "minLength": 8}},
            "required": ["email", "password"]
        }}}]
    });
    let proxy = native(config);
    let password = "S3cret-Passw0rd!";
    let refused = proxy
        .request(
            Request::post("/users")
                .header("authorization", "Bearer eyJhbGciOi.secret.token")
                .header("cookie", "session=abc123")
                .header("user-agent", "curl/8.5")
                .json(&json!({"email": "not-an-email", "password": password, "nested": {"token": "t0k3n-value"}})),
        )
        .expect("request");
    assert_eq!(refused.local_response().expect("400").status, 400);
    let cors = proxy
        .request(
            Request::get("/users")
                .header("origin", "https://evil.example")
                .header("authorization", "Bearer eyJ.x.y"),
        )
        .expect("request");
    assert_eq!(cors.local_response().expect("403").status, 403);
    let lines = proxy.log_messages(LogLevel::Debug);
    assert!(lines.len() >= 2, "{lines:?}");
    for line in &lines {
        let parsed: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert_eq!(parsed["event"], "rejected");
        for secret in [
            password,
            "eyJhbGciOi",
            "session=abc123",
            "t0k3n-value",
            "eyJ.x.y",
        ] {
            assert!(!line.contains(secret), "{secret} in {line}");
        }
    }
    let body_line = lines
        .iter()
        .find(|l| l.contains("\"policy\":\"validate\""))
        .expect("validation line");
    assert!(
        body_line.contains("[REDACTED]") && body_line.contains("not-an-email"),
        "{body_line}"
    );
    let cors_line = lines
        .iter()
        .find(|l| l.contains("\"policy\":\"cors\""))
        .expect("cors line");
    assert!(
        cors_line.contains("\"authorization\":\"[REDACTED]\""),
        "{cors_line}"
    );
}

#[test]
fn a_warn_level_skips_debug_details() {
    let proxy = native(
        json!({"logging": {"level": "warn"}, "routes": [{"match": {"path": "/users"}, "validate": {"body": {"type": "object"}}}]}),
    );
    let exchange = proxy
        .request(
            Request::post("/users")
                .header("content-type", "application/json")
                .body("[1]"),
        )
        .expect("request");
    assert_eq!(exchange.local_response().expect("400").status, 400);
    let lines = proxy.log_messages(LogLevel::Debug);
    assert_eq!(lines.len(), 1);
    assert!(!lines[0].contains("\"body\""), "{}", lines[0]);
}

#[test]
fn secrets_come_from_the_environment_and_a_missing_one_refuses_the_config() {
    let config = json!({"defaults": {"cors": {"allow_origins": ["${APP_ORIGIN}", "${EXTRA_ORIGIN:-http://localhost:3000}"]}}});
    let proxy = Harness::filter()
        .config(config.clone())
        .env("APP_ORIGIN", "https://app.example.com")
        .start()
        .expect("starts");
    let allowed = proxy
        .request(Request::get("/").header("origin", "https://app.example.com"))
        .expect("request");
    assert_eq!(allowed.outcome(), StreamOutcome::Forwarded);
    let dev = proxy
        .request(Request::get("/").header("origin", "http://localhost:3000"))
        .expect("request");
    assert_eq!(dev.outcome(), StreamOutcome::Forwarded);
    match Harness::filter().config(config).start() {
        Err(HarnessError::ConfigRejected { log, .. }) => assert_eq!(
            log,
            [
                "invalid configuration at `defaults.cors.allow_origins[0]`: the required secret APP_ORIGIN is not set (add it to vm_config.environment_variables, or Envoy's environment for the native build, or write ${APP_ORIGIN:-default})"
            ]
        ),
        other => panic!("{:?}", other.err()),
    }
}

#[test]
fn requests_are_counted_by_route_and_decision() {
    let proxy = native(json!({
        "defaults": {"cors": {"allow_origins": ["https://app.example.com"]}},
        "routes": [{"name": "Users API", "match": {"prefix": "/users"}}]
    }));
    through(&proxy, Request::get("/users"), Response::ok());
    through(
        &proxy,
        Request::get("/users").header("origin", "https://evil.example"),
        Response::ok(),
    );
    through(
        &proxy,
        Request::options("/users")
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", "GET"),
        Response::ok(),
    );
    through(&proxy, Request::get("/other"), Response::ok());
    assert_eq!(
        proxy.counter("hardening.requests.users_api.forwarded"),
        Some(1)
    );
    assert_eq!(
        proxy.counter("hardening.requests.users_api.rejected"),
        Some(1)
    );
    assert_eq!(
        proxy.counter("hardening.requests.users_api.preflight"),
        Some(1)
    );
    assert_eq!(
        proxy.counter("hardening.requests.unmatched.forwarded"),
        Some(1)
    );
}

#[test]
fn a_streamed_body_counts_once_as_forwarded_or_rejected() {
    let proxy = native(
        json!({"routes": [{"name": "upload", "match": {"path": "/upload"}, "validate": {"max_body_bytes": 10}}]}),
    );
    // No content-length: the size is known only as the chunks arrive.
    let small = proxy
        .request(
            Request::post("/upload")
                .header("transfer-encoding", "chunked")
                .body("12345678")
                .chunked(4),
        )
        .expect("request");
    assert!(
        small
            .upstream_request()
            .expect("forwarded")
            .header_value("content-length")
            .is_none()
    );
    small.respond(Response::ok()).expect("response");
    let large = proxy
        .request(
            Request::post("/upload")
                .header("transfer-encoding", "chunked")
                .body("1234567890abcdef")
                .chunked(4),
        )
        .expect("request");
    assert_eq!(large.local_response().expect("413").status, 413);
    assert_eq!(
        proxy.counter("hardening.requests.upload.forwarded"),
        Some(1)
    );
    assert_eq!(proxy.counter("hardening.requests.upload.rejected"), Some(1));
    assert_eq!(proxy.counter("hardening.validate.upload.passed"), Some(1));
    assert_eq!(
        proxy.counter("hardening.validate.upload.rejected.body_too_large"),
        Some(1)
    );
}

// ---- a real Envoy ----

#[test]
fn envoy_replaces_the_backends_stack_trace() {
    let envoy = Envoy::start(&Bootstrap::new(
        backend(),
        json!({"defaults": {"errors": {}}}),
    ))
    .expect("envoy starts");
    let response = envoy.send(&Request::get("/boom").header("x-request-id", "trace-me-1"));
    assert_eq!(response.status, 500);
    assert_eq!(
        response.header_value("content-type"),
        Some("application/problem+json")
    );
    assert!(
        !response.text().contains("ECONNREFUSED") && !response.text().contains("db.js"),
        "{}",
        response.text()
    );
    assert_eq!(response.json_body()["request_id"], "trace-me-1");
    assert_eq!(response.json_body()["title"], "Internal Server Error");
    assert_helmet_headers(&response, "real Envoy, replaced 500");
    assert!(
        envoy
            .log()
            .contains("\"event\":\"replaced_upstream_error\""),
        "{}",
        envoy.log()
    );
    // Envoy's own 503 (nothing listens upstream) leaks its reset reason; replaced too.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr");
    let envoy = Envoy::start(&Bootstrap::new(closed, json!({"defaults": {"errors": {}}})))
        .expect("envoy starts");
    let unavailable = envoy.send(&Request::get("/users"));
    assert_eq!(unavailable.status, 503);
    assert!(
        !unavailable.text().contains("reset reason"),
        "{}",
        unavailable.text()
    );
    assert_eq!(unavailable.json_body()["title"], "Service Unavailable");
}

#[test]
fn envoy_redirects_http_and_exempts_health() {
    let config = json!({"defaults": {"https_redirect": {"exempt_paths": ["/healthz"], "hosts": ["api.example.com"]}}, "health": {}});
    let envoy = Envoy::start(&Bootstrap::new(backend(), config)).expect("envoy starts");
    // Envoy at the edge sets x-forwarded-proto from the connection: plain HTTP here.
    let response = envoy.send(&Request::get("/users?page=2").header("host", "api.example.com"));
    assert_eq!(response.status, 308);
    assert_eq!(
        response.header_value("location"),
        Some("https://api.example.com/users?page=2")
    );
    let health = envoy.send(&Request::get("/healthz"));
    assert_eq!(health.status, 200);
    assert_eq!(health.json_body()["status"], "healthy");
}

#[test]
fn envoy_health_checks_clusters_in_parallel_under_a_timeout() {
    let backend = backend();
    let config = json!({"health": {"timeout": "300ms", "checks": {
        "backend": {"cluster": "backend", "path": "/health"},
        "failing": {"cluster": "backend", "path": "/status/500"},
        "slow": {"cluster": "slow", "path": "/slow?ms=2000"}
    }}});
    let envoy = Envoy::start(&Bootstrap::new(backend, config.clone()).cluster("slow", backend))
        .expect("envoy starts");
    let started = std::time::Instant::now();
    let response = envoy.send(&Request::get("/healthz"));
    let took = started.elapsed();
    assert_eq!(response.status, 503);
    assert!(
        took < Duration::from_millis(1500),
        "answered within the timeout, took {took:?}"
    );
    let body = response.json_body();
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["checks"]["backend"]["status"], "healthy");
    assert_eq!(body["checks"]["failing"]["status"], "unhealthy");
    assert_eq!(body["checks"]["slow"]["status"], "unhealthy");
    let slow_ms = body["checks"]["slow"]["duration_ms"]
        .as_u64()
        .expect("duration");
    // Envoy's clock is read once per event loop pass: a few ms either side of the timeout.
    assert!(
        (250..1500).contains(&slow_ms),
        "the slow check took {slow_ms} ms"
    );

    // Three probes at once on the one worker: one run answers all three, and the slow
    // cluster sees a single call.
    std::thread::sleep(Duration::from_millis(2100)); // past the cache
    let envoy_ref = &envoy;
    let answers: Vec<Response> = std::thread::scope(|scope| {
        let probes: Vec<_> = (0..3)
            .map(|_| scope.spawn(move || envoy_ref.send(&Request::get("/healthz"))))
            .collect();
        probes
            .into_iter()
            .map(|p| p.join().expect("probe"))
            .collect()
    });
    for answer in &answers {
        assert_eq!(answer.status, 503, "{}", answer.text());
        assert_eq!(answer.json_body()["checks"]["slow"]["status"], "unhealthy");
    }
    let stats = envoy
        .admin_get("/stats?filter=cluster.slow.upstream_rq_total")
        .expect("stats")
        .text();
    assert!(
        stats
            .lines()
            .any(|l| l.trim() == "cluster.slow.upstream_rq_total: 2"),
        "one call per run (two runs in all):\n{stats}"
    );

    let healthy =
        json!({"health": {"checks": {"backend": {"cluster": "backend", "path": "/health"}}}});
    let envoy = Envoy::start(&Bootstrap::new(backend, healthy)).expect("envoy starts");
    let response = envoy.send(&Request::get("/healthz"));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.json_body()["checks"]["backend"]["status"],
        "healthy"
    );
}

#[test]
fn envoy_log_lines_never_carry_the_password_of_a_rejected_body() {
    let config = json!({
        "logging": {"level": "debug", "include_headers": ["authorization", "user-agent"]},
        "routes": [{"name": "create_user", "match": {"path": "/users", "methods": ["POST"]}, "validate": {"body": {
            "type": "object",
            "properties": {"email": {"type": "string", "format": "email"}, "password": {"type": "string", "minLength": 8}},
            "required": ["email", "password"]
        }}}]
    });
    let envoy = Envoy::start(&Bootstrap::new(backend(), config)).expect("envoy starts");
    let password = "Tr0ub4dor&3-horse";
    let response = envoy.send(
        &Request::post("/users")
            .header("authorization", "Bearer abc.def.ghi")
            .header("x-request-id", "log-redaction-1")
            .json(&json!({"email": "not-an-email", "password": password})),
    );
    assert_eq!(response.status, 400);
    assert!(!response.text().contains(password));
    let log = envoy.log();
    let line = log
        .lines()
        .find(|l| l.contains("log-redaction-1") && l.contains("\"event\":\"rejected\""))
        .unwrap_or_else(|| panic!("no rejected line in:\n{log}"));
    assert!(line.contains("\"password\":\"[REDACTED]\""), "{line}");
    assert!(line.contains("not-an-email"), "{line}");
    assert!(!log.contains(password), "the password is in Envoy's log");
    assert!(
        !log.contains("abc.def.ghi"),
        "the bearer token is in Envoy's log"
    );
}

#[test]
fn envoy_metrics_are_in_prometheus_and_a_missing_secret_refuses_the_config() {
    let config = json!({"routes": [{"name": "users", "match": {"prefix": "/users"}, "validate": {"max_body_bytes": 10}}]});
    let envoy = Envoy::start(&Bootstrap::new(backend(), config)).expect("envoy starts");
    envoy.send(&Request::get("/users"));
    envoy.send(&Request::post("/users").body("this body is too long"));
    let stats = envoy.prometheus();
    for expected in [
        "hardening_requests_users_forwarded{} 1",
        "hardening_requests_users_rejected{} 1",
        "hardening_validate_users_rejected_body_too_large{} 1",
        "hardening_validate_users_passed{} 1",
    ] {
        assert!(
            stats.lines().any(|line| line == expected),
            "{expected} missing from:\n{stats}"
        );
    }
    let secret = json!({"health": {"checks": {"db": {"cluster": "backend", "headers": {"authorization": "Bearer ${DB_HEALTH_TOKEN}"}}}}});
    let log = Envoy::start_expecting_failure(&Bootstrap::new(backend(), secret.clone()))
        .expect("refused");
    assert!(
        log.contains("the required secret DB_HEALTH_TOKEN is not set"),
        "{log}"
    );
    assert!(!log.contains("Bearer "), "{log}");
    let envoy =
        Envoy::start(&Bootstrap::new(backend(), secret).env("DB_HEALTH_TOKEN", "t0ps3cret"))
            .expect("envoy starts with the secret");
    assert_eq!(envoy.send(&Request::get("/healthz")).status, 200);
    assert!(!envoy.log().contains("t0ps3cret"));
}

/// A Prometheus `__name__=~"..."` pattern (literals and `.*` only) against a name.
fn matches_pattern(pattern: &str, name: &str) -> bool {
    match pattern.split_once(".*") {
        None => pattern == name,
        Some((head, tail)) => {
            name.starts_with(head)
                && (head.len()..=name.len()).any(|at| {
                    name.get(at..)
                        .is_some_and(|rest| matches_pattern(tail, rest))
                })
        }
    }
}

#[test]
fn the_dashboard_queries_counters_the_filter_defines() {
    let proxy = native(json!({
        "defaults": {"rate_limit": {"name": "api", "limit": 10, "window": "1m"}, "errors": {}},
        "routes": [{"name": "create_user", "match": {"path": "/users", "methods": ["POST"]}, "validate": {"body": {"type": "object"}}}]
    }));
    // As /stats/prometheus names them.
    let names: Vec<String> = proxy.stats().keys().map(|k| k.replace('.', "_")).collect();
    let path = xtask::paths::root().join("envoy/observability/grafana-dashboard.json");
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("dashboard")).expect("JSON");
    let mut checked = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("expr");
            for (i, _) in expr.match_indices("__name__=~\"") {
                let rest = &expr[i + "__name__=~\"".len()..];
                let pattern = &rest[..rest.find('"').expect("closing quote")];
                if !pattern.starts_with("hardening_") {
                    continue;
                }
                assert!(
                    names.iter().any(|n| matches_pattern(pattern, n)),
                    "panel {:?}: {pattern} matches no counter of {names:?}",
                    panel["title"]
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 8, "only {checked} patterns checked");
    assert!(
        matches_pattern("a_.*_limited", "a_x_limited")
            && !matches_pattern("a_.*_limited", "a_x_allowed")
    );
}
