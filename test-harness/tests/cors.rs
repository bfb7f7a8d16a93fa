//! CORS through the compiled filter, the same browser-shaped scenarios on the native host and
//! on a real Envoy, both in front of the sample backend. Expected headers come from the Fetch
//! standard's CORS check: a preflight needs an ok status, `Access-Control-Allow-Origin` equal to
//! the request's origin (`*` only without credentials), `Access-Control-Allow-Credentials:
//! true` when credentials are used, the method and headers listed; the actual response needs
//! the same origin check.

use serde_json::{Value, json};
use test_harness::differential::{EnvoyTarget, NativeTarget, Target};
use test_harness::envoy::{Bootstrap, Envoy};
use test_harness::expect::assert_helmet_headers;
use test_harness::host::Harness;
use test_harness::{Request, Response, backend};

const APP: &str = "https://app.example.com";
const EVIL: &str = "https://app.example.com.evil.net";

fn config() -> Value {
    json!({
        "defaults": {"cors": {
            "allow_origins": [APP, "https://*.partner.example.org"],
            "allow_methods": ["GET", "POST", "PUT", "DELETE"],
            "allow_headers": ["content-type", "authorization"],
            "expose_headers": ["x-request-id"],
            "allow_credentials": true,
            "max_age": 600
        }},
        "routes": [
            {"name": "public", "match": {"prefix": "/status/"}, "cors": {"allow_origins": ["*"], "allow_credentials": false}},
            {"name": "lenient", "match": {"prefix": "/health"}, "cors": {"disallowed": "omit"}}
        ]
    })
}

fn browser_preflight(origin: &str, method: &str, headers: &str) -> Request {
    Request::options("/users")
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", headers)
        .header("accept", "*/*")
}

/// Exactly one Access-Control-Allow-Origin, whatever the response.
fn one_acao<'r>(response: &'r Response, who: &str) -> &'r str {
    let all = response.header_all("access-control-allow-origin");
    assert_eq!(all.len(), 1, "{who}: {all:?}");
    all[0]
}

fn preflight_allowed(target: &dyn Target) {
    let who = target.name();
    let response = target.send(browser_preflight(APP, "PUT", "content-type,authorization"));
    assert_eq!(response.status, 204, "{who}: {}", response.text());
    assert!(response.body.is_empty(), "{who}");
    assert_eq!(one_acao(&response, who), APP);
    assert_eq!(
        response.header_value("access-control-allow-credentials"),
        Some("true"),
        "{who}"
    );
    assert_eq!(
        response.header_value("access-control-allow-methods"),
        Some("GET,POST,PUT,DELETE"),
        "{who}"
    );
    assert_eq!(
        response.header_value("access-control-allow-headers"),
        Some("content-type,authorization"),
        "{who}"
    );
    assert_eq!(
        response.header_value("access-control-max-age"),
        Some("600"),
        "{who}"
    );
    assert_eq!(
        response.header_value("vary"),
        Some("Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
        "{who}"
    );
    assert_eq!(
        response.header_value("content-length"),
        None,
        "{who}: a 204 has no Content-Length"
    );
    assert_helmet_headers(&response, who);
    // A subdomain of the partner pattern passes; the bare domain does not.
    assert_eq!(
        target
            .send(browser_preflight(
                "https://eu.partner.example.org",
                "GET",
                "content-type"
            ))
            .status,
        204,
        "{who}"
    );
    assert_eq!(
        target
            .send(browser_preflight(
                "https://partner.example.org",
                "GET",
                "content-type"
            ))
            .status,
        403,
        "{who}"
    );
}

fn preflight_refused(target: &dyn Target) {
    let who = target.name();
    for (request, code) in [
        (
            browser_preflight(EVIL, "PUT", "content-type"),
            "cors_origin_not_allowed",
        ),
        (
            browser_preflight(APP, "PATCH", "content-type"),
            "cors_method_not_allowed",
        ),
        (
            browser_preflight(APP, "PUT", "content-type,x-api-key"),
            "cors_header_not_allowed",
        ),
    ] {
        let response = target.send(request);
        assert_eq!(response.status, 403, "{who}");
        assert_eq!(
            response.header_value("content-type"),
            Some("application/problem+json"),
            "{who}"
        );
        assert_eq!(response.json_body()["code"], code, "{who}");
        assert!(
            response
                .header_all("access-control-allow-origin")
                .is_empty(),
            "{who}"
        );
        // A filter-made error carries the security headers too.
        assert_helmet_headers(&response, &format!("{who}: CORS 403"));
    }
}

fn options_without_requested_method_goes_upstream(target: &dyn Target) {
    let who = target.name();
    let response = target.send(Request::options("/echo").header("origin", APP));
    assert_eq!(response.status, 200, "{who}");
    assert_eq!(
        response.json_body()["method"],
        "OPTIONS",
        "{who}: the backend answered"
    );
    assert_eq!(one_acao(&response, who), APP);
}

fn actual_request_allowed(target: &dyn Target) {
    let who = target.name();
    let response = target.send(
        Request::post("/users")
            .header("origin", APP)
            .json(&json!({"name": "Grace Hopper", "email": "grace@example.com"})),
    );
    assert_eq!(response.status, 201, "{who}");
    assert_eq!(one_acao(&response, who), APP);
    assert_eq!(
        response.header_value("access-control-allow-credentials"),
        Some("true"),
        "{who}"
    );
    assert_eq!(
        response.header_value("access-control-expose-headers"),
        Some("x-request-id"),
        "{who}"
    );
    assert_eq!(response.header_value("vary"), Some("Origin"), "{who}");
    assert!(
        response
            .header_all("access-control-allow-methods")
            .is_empty(),
        "{who}: preflight-only header"
    );
}

fn actual_request_disallowed(target: &dyn Target) {
    let who = target.name();
    let response = target.send(Request::get("/echo").header("origin", EVIL));
    assert_eq!(response.status, 403, "{who}: never reached the backend");
    assert_eq!(
        response.json_body()["code"],
        "cors_origin_not_allowed",
        "{who}"
    );
    // With `disallowed: omit` the request passes, without CORS headers.
    let response = target.send(Request::get("/health").header("origin", EVIL));
    assert_eq!(response.status, 200, "{who}");
    assert!(
        response
            .header_all("access-control-allow-origin")
            .is_empty(),
        "{who}"
    );
    assert_eq!(response.header_value("vary"), Some("Origin"), "{who}");
}

fn upstream_cors_headers_replaced(target: &dyn Target) {
    let who = target.name();
    let response = target.send(Request::get("/cors-upstream").header("origin", APP));
    assert_eq!(response.status, 200, "{who}");
    assert_eq!(
        one_acao(&response, who),
        APP,
        "{who}: the upstream's * is gone"
    );
    assert_eq!(
        response.header_value("vary"),
        Some("Accept-Encoding, Origin"),
        "{who}"
    );
}

fn wildcard_route(target: &dyn Target) {
    let who = target.name();
    let response =
        target.send(Request::get("/status/200").header("origin", "https://anyone.example.net"));
    assert_eq!(response.status, 200, "{who}");
    assert_eq!(one_acao(&response, who), "*");
    assert!(
        response
            .header_all("access-control-allow-credentials")
            .is_empty(),
        "{who}"
    );
    assert!(
        response.header_all("vary").is_empty(),
        "{who}: a static * needs no Vary"
    );
}

fn no_origin_untouched(target: &dyn Target) {
    let who = target.name();
    let response = target.send(Request::get("/users"));
    assert_eq!(response.status, 200, "{who}");
    assert!(
        response
            .headers
            .iter()
            .all(|(k, _)| !k.starts_with("access-control-")),
        "{who}"
    );
    assert_eq!(
        response.header_value("vary"),
        Some("Origin"),
        "{who}: caches must know the answer depends on Origin"
    );
}

type Scenario = (&'static str, fn(&dyn Target));

const SCENARIOS: &[Scenario] = &[
    ("preflight allowed", preflight_allowed),
    ("preflight refused", preflight_refused),
    (
        "OPTIONS without a requested method",
        options_without_requested_method_goes_upstream,
    ),
    ("actual request allowed", actual_request_allowed),
    ("actual request disallowed", actual_request_disallowed),
    (
        "upstream CORS headers replaced",
        upstream_cors_headers_replaced,
    ),
    ("wildcard route", wildcard_route),
    ("no Origin", no_origin_untouched),
];

#[test]
fn cors_on_the_native_host() {
    let target = NativeTarget {
        proxy: Harness::filter()
            .config(config())
            .workers(2)
            .start()
            .expect("filter starts"),
        backend: backend(),
    };
    for (name, scenario) in SCENARIOS {
        eprintln!("native host: {name}");
        scenario(&target);
    }
}

#[test]
fn cors_on_a_real_envoy() {
    let target =
        EnvoyTarget(Envoy::start(&Bootstrap::new(backend(), config())).expect("envoy starts"));
    for (name, scenario) in SCENARIOS {
        eprintln!("real Envoy: {name}");
        scenario(&target);
    }
}

#[test]
fn envoys_own_errors_carry_cors_headers_for_an_allowed_origin() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr");
    let envoy = Envoy::start(&Bootstrap::new(closed, config())).expect("envoy starts");
    let response = envoy.send(&Request::get("/users").header("origin", APP));
    assert_eq!(response.status, 503);
    assert_eq!(one_acao(&response, "real Envoy"), APP);
    assert_helmet_headers(&response, "Envoy's 503");
}

#[test]
fn a_preflight_is_never_forwarded() {
    let proxy = Harness::filter()
        .config(config())
        .start()
        .expect("filter starts");
    let exchange = proxy
        .request(browser_preflight(APP, "POST", "content-type"))
        .expect("request");
    assert!(exchange.upstream_request().is_err());
    assert_eq!(exchange.local_response().expect("answered").status, 204);
}

/// A preflight belongs to the route of the request it announces: a route written for
/// `POST /echo` (the backend echoes; with its own CORS, none in defaults) answers the browser's
/// `OPTIONS /echo`, even in a strict API that refuses methods a route does not list.
fn strict_routes() -> Value {
    json!({
        "defaults": {"validate": {"unknown_routes": "reject"}},
        "routes": [{"name": "echo", "match": {"path": "/echo", "methods": ["POST"]},
                    "cors": {"allow_origins": [APP], "allow_methods": ["POST"]}}]
    })
}

fn preflight_by_announced_method(target: &dyn Target) {
    let who = target.name();
    let preflight = |method: &str| {
        target.send(
            Request::options("/echo")
                .header("origin", APP)
                .header("access-control-request-method", method),
        )
    };
    let allowed = preflight("POST");
    assert_eq!(allowed.status, 204, "{who}: {}", allowed.text());
    assert_eq!(one_acao(&allowed, who), APP);
    assert_eq!(
        allowed.header_value("access-control-allow-methods"),
        Some("POST"),
        "{who}"
    );
    // The actual request it announced goes through, with its CORS headers.
    let posted = target.send(
        Request::post("/echo")
            .header("origin", APP)
            .json(&json!({"item": 1})),
    );
    assert_eq!(posted.status, 200, "{who}: {}", posted.text());
    assert_eq!(one_acao(&posted, who), APP);
    // No route serves GET /echo, so this is a plain OPTIONS, which the strict API refuses.
    let unserved = preflight("GET");
    assert_eq!(unserved.status, 405, "{who}: {}", unserved.text());
    assert_eq!(unserved.header_value("allow"), Some("POST"), "{who}");
    assert_eq!(unserved.json_body()["code"], "method_not_allowed", "{who}");
    let plain_options = target.send(Request::options("/echo").header("origin", APP));
    assert_eq!(plain_options.status, 405, "{who}");
}

#[test]
fn a_preflight_is_answered_by_the_route_of_the_method_it_announces() {
    let native = NativeTarget {
        proxy: Harness::filter()
            .config(strict_routes())
            .start()
            .expect("filter starts"),
        backend: backend(),
    };
    preflight_by_announced_method(&native);
    let envoy = EnvoyTarget(
        Envoy::start(&Bootstrap::new(backend(), strict_routes())).expect("envoy starts"),
    );
    preflight_by_announced_method(&envoy);
}

/// A route that turns CORS off leaves its preflights to the upstream: the defaults' CORS does
/// not answer them for it.
#[test]
fn a_route_without_cors_leaves_its_preflights_to_the_upstream() {
    let target = NativeTarget {
        proxy: Harness::filter()
            .config(json!({
                "defaults": {"cors": {"allow_origins": [APP]}},
                "routes": [{"name": "own_cors", "match": {"prefix": "/echo/own", "methods": ["PUT"]}, "cors": false}]
            }))
            .start()
            .expect("filter starts"),
        backend: backend(),
    };
    let preflight = |path: &str| {
        target.send(
            Request::options(path)
                .header("origin", APP)
                .header("access-control-request-method", "PUT"),
        )
    };
    let upstream = preflight("/echo/own");
    assert_eq!(upstream.status, 200, "{}", upstream.text());
    assert_eq!(
        upstream.json_body()["method"],
        "OPTIONS",
        "the backend answered"
    );
    assert!(
        upstream
            .header_all("access-control-allow-origin")
            .is_empty()
    );
    let answered = preflight("/echo/other");
    assert_eq!(answered.status, 204, "{}", answered.text());
    assert_eq!(one_acao(&answered, "native host"), APP);
}
