//! Validation from OpenAPI documents through the compiled filter: the orders API in 3.0 and
//! in 3.1 through a real Envoy (valid requests reach the backend unchanged, invalid ones are
//! refused with problem+json and never reach it), and GitHub's REST description (1,223
//! operations) loaded in the native host and in a real Envoy, with what it costs.

use std::time::Instant;

use serde_json::{Value, json};
use test_harness::envoy::{Bootstrap, Envoy};
use test_harness::host::Harness;
use test_harness::{Request, Response, backend, backend_with_journal};

fn fixture(name: &str) -> Value {
    let path = xtask::paths::root()
        .join("test-harness/fixtures/openapi")
        .join(name);
    test_harness::envoy::read_yaml(&path).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Asserts a problem+json refusal with its status, code, error pointers and request id.
fn assert_problem(response: &Response, status: u16, code: &str, pointers: &[&str], who: &str) {
    test_harness::expect::assert_problem(response, status, code, pointers, who);
    let body = response.json_body();
    assert!(body["request_id"].is_string(), "{who}: {body}");
}

fn orders_through_envoy(document: &str) {
    let (upstream, journal) = backend_with_journal();
    let config = json!({"openapi": {"document": fixture(document), "max_body_bytes": 512}});
    let envoy = Envoy::start(&Bootstrap::new(upstream, config)).expect("envoy starts");
    let tenant = |r: Request| r.header("x-tenant", "acme");

    // Valid requests reach the backend as they were sent.
    let valid = [
        tenant(Request::get("/api/orders?limit=5&status=open,shipped")),
        Request::get("/api/orders/42/items/AB-1234"),
        Request::get("/api/orders/search?q=ab&filter[minTotal]=10&filter[currency]=EUR"),
        tenant(Request::post("/api/orders"))
            .json(&json!({"item": "book", "quantity": 2, "note": null})),
        Request::new("DELETE", "/api/orders/7"),
    ];
    for request in &valid {
        let response = envoy.send(request);
        assert_ne!(
            response.header_value("content-type"),
            Some("application/problem+json"),
            "{document} {}: {}",
            request.target,
            response.text()
        );
    }
    let arrivals = journal.arrivals();
    let seen: Vec<(&str, &str)> = arrivals
        .iter()
        .map(|a| (a.method.as_str(), a.target.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("GET", "/api/orders?limit=5&status=open,shipped"),
            ("GET", "/api/orders/42/items/AB-1234"),
            (
                "GET",
                "/api/orders/search?q=ab&filter[minTotal]=10&filter[currency]=EUR"
            ),
            ("POST", "/api/orders"),
            ("DELETE", "/api/orders/7"),
        ],
        "{document}"
    );
    assert_eq!(
        arrivals.get(3).and_then(|a| a.body.clone()),
        Some(
            json!({"item": "book", "quantity": 2, "note": null})
                .to_string()
                .into_bytes()
        ),
        "{document}: the body arrives unchanged"
    );

    // Invalid ones are answered by the filter.
    let send = |r: Request| envoy.send(&r);
    let who = document;
    assert_problem(
        &send(tenant(Request::get("/api/orders?limit=500"))),
        400,
        "invalid_request",
        &["/query/limit"],
        who,
    );
    assert_problem(
        &send(tenant(Request::get("/api/orders?status=open,lost"))),
        400,
        "invalid_request",
        &["/query/status/1"],
        who,
    );
    assert_problem(
        &send(Request::get("/api/orders").header("x-tenant", "A")),
        400,
        "invalid_request",
        &["/headers/x-tenant"],
        who,
    );
    assert_problem(
        &send(Request::get("/api/orders/0")),
        400,
        "invalid_request",
        &["/path/orderId"],
        who,
    );
    assert_problem(
        &send(Request::get("/api/orders/search?q=ab&filter[currency]=GBP")),
        400,
        "invalid_request",
        &["/query/filter/currency"],
        who,
    );
    let bad_body = json!({"item": "", "quantity": 2, "price": 0});
    assert_problem(
        &send(tenant(Request::post("/api/orders")).json(&bad_body)),
        400,
        "invalid_body",
        &["/item", "/price"],
        who,
    );
    let too_big = json!({"item": "x".repeat(600), "quantity": 1});
    assert_problem(
        &send(tenant(Request::post("/api/orders")).json(&too_big)),
        413,
        "body_too_large",
        &[],
        who,
    );
    let xml = tenant(Request::post("/api/orders"))
        .header("content-type", "application/xml")
        .body("<order/>");
    assert_problem(&send(xml), 415, "unsupported_media_type", &[], who);
    assert_problem(
        &send(Request::get("/api/invoices")),
        404,
        "route_not_found",
        &[],
        who,
    );
    let patch = send(Request::new("PATCH", "/api/orders/7"));
    assert_problem(&patch, 405, "method_not_allowed", &[], who);
    assert_eq!(
        patch.header_value("allow"),
        Some("DELETE, GET, HEAD"),
        "{who}"
    );
    assert_eq!(
        journal.arrivals().len(),
        valid.len(),
        "{who}: a refused request reached the backend"
    );
}

#[test]
fn an_openapi_3_0_document_through_a_real_envoy() {
    orders_through_envoy("api-3.0.yaml");
}

#[test]
fn an_openapi_3_1_document_through_a_real_envoy() {
    orders_through_envoy("api-3.1.yaml");
}

/// GitHub's description, pinned (`xtask::openapi_samples`).
fn github() -> Value {
    let path = xtask::openapi_samples::github_description(&xtask::paths::root())
        .unwrap_or_else(|e| panic!("{e}"));
    let text = std::fs::read(&path).expect("readable");
    serde_json::from_slice(&text).expect("JSON")
}

/// Requests on GitHub's API: (method, target, body, expected status: 0 forwarded).
const GITHUB_REQUESTS: &[(&str, &str, Option<&str>, u16)] = &[
    ("GET", "/repos/octocat/hello-world", None, 0),
    (
        "GET",
        "/repos/octocat/hello-world/compare/main...feature",
        None,
        0,
    ),
    (
        "GET",
        "/enterprises/acme/code-security/configurations/defaults",
        None,
        0,
    ),
    (
        "GET",
        "/repos/octocat/hello-world/issues?state=bogus&per_page=many",
        None,
        400,
    ),
    (
        "POST",
        "/repos/octocat/hello-world/issues",
        Some(r#"{"title": "Bug"}"#),
        0,
    ),
    (
        "POST",
        "/repos/octocat/hello-world/issues",
        Some(r#"{"body": "no title"}"#),
        400,
    ),
    ("GET", "/no/such/path", None, 404),
    ("PATCH", "/repos/octocat/hello-world/issues", None, 405),
];

/// The mean time of finding a path's route in the compiled table (the core, natively).
fn lookup_time(
    config: &hardening::config::Config,
    method: &str,
    path: &str,
) -> std::time::Duration {
    const ROUNDS: u32 = 20_000;
    let started = Instant::now();
    for _ in 0..ROUNDS {
        std::hint::black_box(config.routes.find(method, std::hint::black_box(path)));
    }
    started.elapsed() / ROUNDS
}

/// Loading and matching in the core itself (natively, optimised as the test profile is).
#[test]
fn githubs_description_in_the_core() {
    let config = json!({"openapi": {"document": github()}}).to_string();
    let started = Instant::now();
    let github = hardening::config::Config::from_bytes(config.as_bytes()).expect("loads");
    let loading = started.elapsed();
    assert_eq!(github.routes.len(), 1223);
    let small = json!({"openapi": {"document": fixture("api-3.1.yaml")}}).to_string();
    let orders = hardening::config::Config::from_bytes(small.as_bytes()).expect("loads");
    let deep = "/repos/octocat/hello-world/actions/runs/42/attempts/1/logs";
    let found = github.routes.find("GET", deep).map(|r| r.name.as_str());
    assert_eq!(found, Some("actions/download-workflow-run-attempt-logs"));
    eprintln!(
        "github description in the core: compiled in {loading:.2?}; route lookup {:.0?} for a deep \
         template, {:.0?} for an unknown path (the orders document's 6 routes: {:.0?}, {:.0?})",
        lookup_time(&github, "GET", deep),
        lookup_time(&github, "GET", "/no/such/path"),
        lookup_time(&orders, "GET", "/api/orders/42/items/AB-1234"),
        lookup_time(&orders, "GET", "/no/such/path"),
    );
}

/// One of `GITHUB_REQUESTS` as a request (a body is JSON).
fn github_request(method: &str, target: &str, body: Option<&str>) -> Request {
    let request = Request::new(method, target);
    match body {
        Some(body) => request
            .header("content-type", "application/json")
            .body(body),
        None => request,
    }
}

#[test]
fn githubs_description_loads_in_the_native_host() {
    let config = json!({"openapi": {"document": github()}});
    let started = Instant::now();
    let proxy = Harness::filter()
        .config(config)
        .start()
        .expect("the filter loads it");
    let loading = started.elapsed();
    let (memory, configure_fuel) = proxy.worker_footprint(0).expect("a worker");
    let mut fuel = Vec::new();
    for (method, target, body, status) in GITHUB_REQUESTS {
        let request = github_request(method, target, *body);
        let exchange = proxy.request(request).expect("request");
        if *status == 0 {
            exchange
                .upstream_request()
                .unwrap_or_else(|e| panic!("{method} {target}: {e}"));
        } else {
            let reply = exchange
                .local_response()
                .unwrap_or_else(|e| panic!("{method} {target}: {e}"));
            assert_eq!(reply.status, *status, "{method} {target}: {}", reply.text());
        }
        fuel.push((*target, exchange.cost().fuel));
    }
    // The same forwarded GET through the small orders document, letting unknown paths through.
    let small =
        json!({"openapi": {"document": fixture("api-3.1.yaml"), "unknown_routes": "allow"}});
    let baseline = Harness::filter().config(small).start().expect("loads");
    let (baseline_memory, baseline_fuel) = baseline.worker_footprint(0).expect("a worker");
    let deep = "/repos/octocat/hello-world/actions/runs/42/attempts/1/logs";
    let per_request = |proxy: &test_harness::host::Proxy| {
        let exchange = proxy.request(Request::get(deep)).expect("request");
        exchange.upstream_request().expect("forwarded");
        exchange.cost().fuel
    };
    eprintln!(
        "github description in the native host: 1 worker + main + canary loaded in {loading:.2?}; \
         worker memory {} MiB (orders: {} MiB); proxy_on_configure fuel {configure_fuel} (orders: {baseline_fuel}); \
         fuel of a forwarded GET on a deep template {} (orders: {}); fuel per request {fuel:?}",
        memory >> 20,
        baseline_memory >> 20,
        per_request(&proxy),
        per_request(&baseline),
    );
}

/// The mean time of `count` sequential exchanges of `request` (each on its connection).
fn mean_exchange(envoy: &Envoy, request: &Request, count: u32) -> std::time::Duration {
    let started = Instant::now();
    for _ in 0..count {
        envoy.send(request);
    }
    started.elapsed() / count
}

#[test]
fn githubs_description_loads_in_a_real_envoy() {
    // The baseline: the small orders document, letting unknown paths through as GitHub's
    // document will route this one, so both forward the same request to the backend.
    let deep = Request::get("/repos/octocat/hello-world/actions/runs/42/attempts/1/logs");
    let small =
        json!({"openapi": {"document": fixture("api-3.1.yaml"), "unknown_routes": "allow"}});
    let started = Instant::now();
    let baseline = Envoy::start(&Bootstrap::new(backend(), small)).expect("envoy starts");
    let baseline_loading = started.elapsed();
    let baseline_memory = baseline.resident_bytes().unwrap_or(0);
    let baseline_time = mean_exchange(&baseline, &deep, 300);
    drop(baseline);

    let started = Instant::now();
    let config = json!({"openapi": {"document": github()}});
    let envoy = Envoy::start(&Bootstrap::new(backend(), config)).expect("envoy starts");
    let loading = started.elapsed();
    for (method, target, body, status) in GITHUB_REQUESTS {
        let request = github_request(method, target, *body);
        let response = envoy.send(&request);
        let refused = response.header_value("content-type") == Some("application/problem+json");
        match status {
            0 => assert!(!refused, "{method} {target}: {}", response.text()),
            status => assert_eq!(
                response.status,
                *status,
                "{method} {target}: {}",
                response.text()
            ),
        }
    }
    let time = mean_exchange(&envoy, &deep, 300);
    eprintln!(
        "github description in Envoy ({:?} build): ready in {loading:.2?} (the orders document: {baseline_loading:.2?}); \
         resident {} MiB (orders: {} MiB); mean exchange of a forwarded GET on a deep template, one connection each: {time:.2?} (orders: {baseline_time:.2?})",
        test_harness::envoy::Build::from_env(),
        envoy.resident_bytes().unwrap_or(0) >> 20,
        baseline_memory >> 20
    );
}
