//! Request validation through the compiled filter: the seed's create-user example on the
//! native host and on a real Envoy (same scenarios), then body handling, strict routes,
//! parameters and metrics.

use serde_json::{Value, json};
use test_harness::differential::{EnvoyTarget, NativeTarget, Target};
use test_harness::envoy::{Bootstrap, Envoy};
use test_harness::expect::{self, assert_helmet_headers};
use test_harness::host::{Harness, Proxy, StreamOutcome};
use test_harness::{Request, Response, backend, backend_with_journal};

/// The seed's `CreateUserSchema` (email, password 8-128, name 1-100).
fn create_user_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "email": {"type": "string", "format": "email"},
            "password": {"type": "string", "minLength": 8, "maxLength": 128},
            "name": {"type": "string", "minLength": 1, "maxLength": 100}
        },
        "required": ["email", "password", "name"],
        "additionalProperties": false
    })
}

fn config() -> Value {
    json!({
        "defaults": {"cors": {"allow_origins": ["https://app.example.com"]}},
        "routes": [
            {"name": "create_user", "match": {"path": "/users", "methods": ["POST"]},
             "validate": {"body": create_user_schema(), "max_body_bytes": 4096}},
            {"name": "user", "match": {"path": "/users/{id}", "methods": ["GET"]},
             "validate": {"path_params": {"id": {"type": "integer", "minimum": 1}}}}
        ]
    })
}

fn create(body: &Value) -> Request {
    Request::post("/users")
        .header("origin", "https://app.example.com")
        .json(body)
}

/// Asserts a problem+json refusal: status, code, and the pointers of its errors.
fn assert_problem(response: &Response, status: u16, code: &str, pointers: &[&str], who: &str) {
    expect::assert_problem(response, status, code, pointers, who);
    // The browser sees the real error: the CORS headers are there for an allowed origin.
    assert_eq!(
        response.header_value("access-control-allow-origin"),
        Some("https://app.example.com"),
        "{who}"
    );
    assert_helmet_headers(response, who);
}

fn seed_example(target: &dyn Target) {
    let who = target.name();
    let valid =
        json!({"email": "grace@example.com", "password": "correct horse", "name": "Grace Hopper"});
    let created = target.send(create(&valid));
    assert_eq!(created.status, 201, "{who}: {}", created.text());
    assert_eq!(created.json_body()["email"], "grace@example.com", "{who}");

    let bad_email = target.send(create(
        &json!({"email": "grace", "password": "correct horse", "name": "Grace"}),
    ));
    assert_problem(&bad_email, 400, "invalid_body", &["/email"], who);
    assert_eq!(
        bad_email.json_body()["errors"][0]["keyword"],
        "format",
        "{who}"
    );
    let short_password = target.send(create(
        &json!({"email": "grace@example.com", "password": "short", "name": "Grace"}),
    ));
    assert_problem(&short_password, 400, "invalid_body", &["/password"], who);
    assert_eq!(
        short_password.json_body()["errors"][0]["keyword"],
        "minLength",
        "{who}"
    );
    let missing_name = target.send(create(
        &json!({"email": "grace@example.com", "password": "correct horse"}),
    ));
    assert_problem(&missing_name, 400, "invalid_body", &[""], who);
    assert_eq!(
        missing_name.json_body()["errors"][0]["message"],
        "\"name\" is a required property",
        "{who}"
    );

    let wrong_type = target.send(
        Request::post("/users")
            .header("origin", "https://app.example.com")
            .header("content-type", "text/plain")
            .body("email=grace@example.com"),
    );
    assert_problem(&wrong_type, 415, "unsupported_media_type", &[], who);
    let oversized = target.send(create(&json!({"email": "grace@example.com", "password": "correct horse", "name": "x".repeat(5000)})));
    assert_problem(&oversized, 413, "body_too_large", &[], who);
    let broken = target.send(
        Request::post("/users")
            .header("origin", "https://app.example.com")
            .header("content-type", "application/json")
            .body("{\"email\": \"grace@example.com\",\n \"password\": }"),
    );
    assert_problem(&broken, 400, "malformed_body", &[""], who);
    assert_eq!(
        broken.json_body()["errors"][0]["message"],
        "expected value at line 2 column 14",
        "{who}"
    );

    let bad_id =
        target.send(Request::get("/users/abc").header("origin", "https://app.example.com"));
    assert_problem(&bad_id, 400, "invalid_request", &["/path/id"], who);
    assert_eq!(target.send(Request::get("/users/1")).status, 200, "{who}");
}

#[test]
fn the_seeds_example_on_the_native_host() {
    let target = NativeTarget {
        proxy: Harness::filter()
            .config(config())
            .workers(2)
            .start()
            .expect("filter starts"),
        backend: backend(),
    };
    seed_example(&target);
}

#[test]
fn the_seeds_example_through_a_real_envoy() {
    let envoy = Envoy::start(&Bootstrap::new(backend(), config())).expect("envoy starts");
    let target = EnvoyTarget(envoy);
    seed_example(&target);
    let stats = target.0.prometheus();
    assert!(
        stats.contains("hardening_validate_create_user_passed{} 1"),
        "{stats}"
    );
    assert!(
        stats.contains("hardening_validate_create_user_rejected_invalid_body{} 3"),
        "{stats}"
    );
}

// ---- body handling in detail (native host) ----

fn native(config: Value) -> Proxy {
    Harness::filter()
        .config(config)
        .start()
        .expect("filter starts")
}

fn local(proxy: &Proxy, request: Request) -> Response {
    let exchange = proxy.request(request).expect("request");
    exchange.local_response().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_body_is_held_until_its_end_then_forwarded_whole() {
    let proxy = native(config());
    let body = json!({"email": "a@example.com", "password": "correct horse", "name": "A"})
        .to_string()
        .into_bytes();
    let exchange = proxy
        .request(
            Request::post("/users")
                .header("content-type", "application/json")
                .body(body.clone())
                .chunked(7),
        )
        .expect("request");
    let upstream = exchange.upstream_request().expect("forwarded");
    assert_eq!(upstream.body, body);
    let cost = exchange.cost();
    assert_eq!(
        cost.host_calls.get("proxy_get_buffer_bytes"),
        Some(&1),
        "read once, at the end"
    );
}

#[test]
fn a_body_that_ends_in_trailers_is_checked_when_they_arrive() {
    // HTTP/2 (and HTTP/1.1 with trailers on) can end a stream with trailers instead of the
    // last body chunk; the body must still be validated before anything is forwarded.
    let proxy = native(config());
    let invalid = json!({"email": "not-an-email", "password": "short"});
    let refused = local(
        &proxy,
        create(&invalid).chunked(5).trailer("x-checksum", "1234"),
    );
    assert_problem(
        &refused,
        400,
        "invalid_body",
        &["", "/email", "/password"],
        "native, trailers",
    );
    let valid = json!({"email": "t@example.com", "password": "correct horse", "name": "T"});
    let exchange = proxy
        .request(create(&valid).chunked(5).trailer("x-checksum", "1234"))
        .expect("request");
    let upstream = exchange.upstream_request().expect("forwarded");
    assert_eq!(upstream.body, valid.to_string().into_bytes());
    assert_eq!(
        upstream.trailers,
        [("x-checksum".to_string(), "1234".to_string())]
    );
    assert_eq!(
        proxy.counter("hardening.requests.create_user.forwarded"),
        Some(1)
    );
    assert_eq!(
        proxy.counter("hardening.requests.create_user.rejected"),
        Some(1)
    );
    // A route that only counts its body (no schema) is done counting at the trailers.
    let proxy = native(
        json!({"routes": [{"name": "upload", "match": {"path": "/upload"},
        "validate": {"max_body_bytes": 10}}]}),
    );
    let small = Request::post("/upload")
        .body("12345")
        .trailer("x-checksum", "1");
    let exchange = proxy.request(small).expect("request");
    assert_eq!(
        exchange.upstream_request().expect("forwarded").body,
        b"12345"
    );
    assert_eq!(
        proxy.counter("hardening.requests.upload.forwarded"),
        Some(1)
    );
    let big = Request::post("/upload")
        .body("0123456789ab")
        .chunked(4)
        .trailer("x-checksum", "1");
    assert_eq!(local(&proxy, big).status, 413);
}

#[test]
fn bodies_that_say_nothing_about_their_size_are_counted() {
    let proxy = native(config());
    // Chunked (no Content-Length) and over the limit: refused once the bytes exceed it.
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(5000));
    let mut request = Request::post("/users")
        .header("content-type", "application/json")
        .header("transfer-encoding", "chunked")
        .body(big.clone())
        .chunked(1000);
    request.headers.retain(|(k, _)| k != "content-length");
    let refused = local(&proxy, request);
    assert_eq!(refused.status, 413);
    // A Content-Length that lies (says less than arrives) does not help.
    let lying = Request::post("/users")
        .header("content-type", "application/json")
        .header("content-length", "10")
        .body(big)
        .chunked(1000);
    assert_eq!(local(&proxy, lying).status, 413);
}

#[test]
fn hostile_bodies_get_clear_refusals() {
    let proxy = native(config());
    let post = |body: Vec<u8>| {
        local(
            &proxy,
            Request::post("/users")
                .header("content-type", "application/json")
                .body(body),
        )
    };
    let deep = post(format!("{}{}", "[".repeat(2000), "]".repeat(2000)).into_bytes());
    assert_eq!(deep.status, 400);
    assert_eq!(
        deep.json_body()["errors"][0]["message"],
        "recursion limit exceeded at line 1 column 128"
    );
    let huge_number = post(b"{\"email\": 1e999}".to_vec());
    assert_eq!(
        huge_number.json_body()["errors"][0]["message"],
        "number out of range at line 1 column 15"
    );
    let not_utf8 = post(b"{\"email\": \"\xff\xfe\"}".to_vec());
    assert_eq!(not_utf8.json_body()["code"], "malformed_body");
    let duplicate = post(
        br#"{"email": "a@example.com", "password": "correct horse", "name": "A", "name": "B"}"#
            .to_vec(),
    );
    assert_eq!(
        duplicate.json_body()["errors"][0]["message"],
        "duplicate key \"name\" at line 1 column 75"
    );
    let get_with_body = local(
        &proxy,
        Request::get("/users/1")
            .header("content-type", "application/json")
            .body("{}"),
    );
    assert_eq!(
        (
            get_with_body.status,
            get_with_body.json_body()["code"].clone()
        ),
        (400, json!("body_not_allowed"))
    );
    // Without a length, the bytes decide: a chunked body is refused at its first chunk...
    let chunked_get = local(
        &proxy,
        Request::get("/users/1")
            .header("transfer-encoding", "chunked")
            .body("{}")
            .chunked(1),
    );
    assert_eq!(chunked_get.status, 400);
    assert_eq!(chunked_get.json_body()["code"], "body_not_allowed");
    // ...and a stream that ends without any (here with trailers) goes through.
    let empty = proxy
        .request(Request::get("/users/1").trailer("x-checksum", "1"))
        .expect("request");
    assert_eq!(
        empty.outcome(),
        StreamOutcome::Forwarded,
        "{:?}",
        empty.local_response()
    );
    assert!(!proxy.worker_failed(0));
}

#[test]
fn a_password_in_a_refused_body_is_not_echoed() {
    let proxy = native(config());
    let secret = "Tr0ub4dor&3-super-secret";
    let refused = local(
        &proxy,
        create(&json!({"email": "not-an-email", "password": secret, "name": "A", "role": "admin"})),
    );
    assert_eq!(refused.status, 400);
    assert!(!refused.text().contains(secret), "{}", refused.text());
    assert!(!proxy.logs().iter().any(|l| l.message.contains(secret)));
}

#[test]
fn a_strict_api_refuses_what_it_does_not_describe() {
    let mut strict = config();
    strict["defaults"]["validate"] = json!({"unknown_routes": "reject"});
    let proxy = native(strict);
    let not_found = local(&proxy, Request::get("/admin"));
    assert_eq!(
        (not_found.status, not_found.json_body()["code"].clone()),
        (404, json!("route_not_found"))
    );
    let not_allowed = local(&proxy, Request::new("DELETE", "/users/1"));
    assert_eq!(not_allowed.status, 405);
    assert_eq!(not_allowed.header_value("allow"), Some("GET, HEAD"));
    assert_eq!(not_allowed.json_body()["code"], "method_not_allowed");
    // Preflights are still answered (CORS runs first).
    let preflight = local(
        &proxy,
        Request::options("/admin")
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", "GET"),
    );
    assert_eq!(preflight.status, 204);
}

#[test]
fn query_and_header_schemas() {
    let proxy = native(
        json!({"routes": [{"name": "search", "match": {"path": "/search"}, "validate": {
            "query": {"type": "object", "required": ["q"], "properties": {"q": {"type": "string", "minLength": 2}, "limit": {"type": "integer", "maximum": 50}, "tag": {"type": "array", "items": {"type": "string"}}}},
            "headers": {"type": "object", "required": ["x-api-key"], "properties": {"x-api-key": {"type": "string", "pattern": "^k_[a-z0-9]{8}$"}}}
        }}]}),
    );
    let key = ("x-api-key", "k_abcdefgh");
    let ok = proxy
        .request(Request::get("/search?q=rust&limit=10&tag=a&tag=b").header(key.0, key.1))
        .expect("request");
    assert_eq!(ok.outcome(), StreamOutcome::Forwarded);
    let refused = local(
        &proxy,
        Request::get("/search?limit=500").header("x-api-key", "nope"),
    );
    let pointers: Vec<String> = refused.json_body()["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["pointer"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(pointers, ["/query", "/query/limit", "/headers/x-api-key"]);
    assert_eq!(
        proxy.counter("hardening.validate.search.rejected.invalid_request"),
        Some(1)
    );
    assert_eq!(proxy.counter("hardening.validate.search.passed"), Some(1));
}

#[test]
fn envoy_counts_chunked_bodies_against_the_limit() {
    let envoy = Envoy::start(&Bootstrap::new(backend(), config())).expect("envoy starts");
    let chunk = format!("{{\"name\": \"{}", "x".repeat(3000));
    let rest = format!("{}\"}}", "y".repeat(3000));
    let mut raw = b"POST /users HTTP/1.1\r\nhost: example.com\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".to_vec();
    for part in [chunk.as_bytes(), rest.as_bytes()] {
        raw.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        raw.extend_from_slice(part);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let response = test_harness::http1::send_raw(envoy.listener, &raw, "POST").expect("response");
    assert_eq!(response.status, 413, "{}", response.text());
    assert_eq!(response.json_body()["code"], "body_too_large");
    // A small chunked body that passes the schema goes through.
    let body =
        json!({"email": "c@example.com", "password": "correct horse", "name": "C"}).to_string();
    let mut raw = b"POST /users HTTP/1.1\r\nhost: example.com\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".to_vec();
    raw.extend_from_slice(format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len()).as_bytes());
    assert_eq!(
        test_harness::http1::send_raw(envoy.listener, &raw, "POST")
            .expect("response")
            .status,
        201
    );
}

#[test]
fn envoy_validates_a_body_that_ends_in_trailers() {
    // With trailers, the last body chunk is not the end of the stream: the trailers are. A
    // filter that only validated at a body chunk's end of stream would let this through.
    let envoy =
        Envoy::start(&Bootstrap::new(backend(), config()).http1_trailers()).expect("envoy starts");
    let invalid = json!({"email": "not-an-email", "password": "short"});
    let response = envoy.send(&create(&invalid).trailer("x-checksum", "1234"));
    assert_problem(
        &response,
        400,
        "invalid_body",
        &["", "/email", "/password"],
        "Envoy, trailers",
    );
    let valid = json!({"email": "t@example.com", "password": "correct horse", "name": "T"});
    let response = envoy.send(&create(&valid).trailer("x-checksum", "1234"));
    assert_eq!(response.status, 201, "{}", response.text());
    let prometheus = envoy.prometheus();
    for line in [
        "hardening_requests_create_user_forwarded{} 1",
        "hardening_requests_create_user_rejected{} 1",
    ] {
        assert!(prometheus.contains(line), "{line} in {prometheus}");
    }
}

/// A POST whose headers do not end the stream, which then ends without a byte of body (here
/// with trailers; an HTTP/2 client may send an empty DATA frame): no body, so `body_required`,
/// as when the headers end the stream, not a JSON parse error.
#[test]
fn a_post_that_ends_without_a_body_is_body_required() {
    let proxy = native(config());
    let response = local(
        &proxy,
        Request::post("/users")
            .header("origin", "https://app.example.com")
            .header("content-type", "application/json")
            .trailer("x-checksum", "1"),
    );
    assert_problem(&response, 400, "body_required", &[], "native host");
}

/// `$schema` selects the draft, through the compiled filter: under draft 4 `exclusiveMinimum:
/// true` makes `minimum` exclusive.
#[test]
fn dollar_schema_selects_draft_4() {
    let proxy = native(
        json!({"routes": [{"name": "n", "match": {"path": "/n"}, "validate": {"body": {
            "$schema": "http://json-schema.org/draft-04/schema#",
            "type": "object", "required": ["n"],
            "properties": {"n": {"type": "number", "minimum": 5, "exclusiveMinimum": true}}
        }}}]}),
    );
    let post = |n: u32| {
        proxy
            .request(Request::post("/n").json(&json!({ "n": n })))
            .expect("request")
    };
    assert_eq!(post(6).outcome(), StreamOutcome::Forwarded);
    let refused = post(5).local_response().expect("refused");
    assert_eq!(refused.status, 400);
    let body = refused.json_body();
    assert_eq!(
        (
            &body["code"],
            &body["errors"][0]["pointer"],
            &body["errors"][0]["keyword"]
        ),
        (
            &json!("invalid_body"),
            &json!("/n"),
            &json!("exclusiveMinimum")
        )
    );
}

/// A HEAD meets the GET route's checks (servers answer HEAD as GET), and a query key in
/// bracket form cannot slip past its schema.
#[test]
fn head_and_bracketed_query_keys_meet_the_get_routes_checks() {
    let proxy = native(
        json!({"routes": [{"name": "user", "match": {"path": "/users/{id}", "methods": ["GET"]},
        "validate": {
            "path_params": {"id": {"type": "integer", "minimum": 1}},
            "query": {"type": "object", "properties": {"limit": {"type": "integer", "maximum": 50}}}
        }}]}),
    );
    let head = local(&proxy, Request::new("HEAD", "/users/abc"));
    assert_eq!(
        (
            head.status,
            head.json_body()["errors"][0]["pointer"].clone()
        ),
        (400, json!("/path/id"))
    );
    let bracketed = local(&proxy, Request::get("/users/1?limit[]=1000"));
    assert_eq!(bracketed.status, 400);
    assert_eq!(
        bracketed.json_body()["errors"][0],
        json!({"pointer": "/query/limit", "keyword": "type", "message": "given as a list (`limit[]`); one value is expected"})
    );
    let operator = local(&proxy, Request::get("/users/1?limit%5B%24gt%5D=0"));
    assert_eq!(operator.status, 400);
    assert_eq!(operator.json_body()["errors"][0]["pointer"], "/query/limit");
    let ok = proxy
        .request(Request::get("/users/1?limit=10"))
        .expect("request");
    assert_eq!(ok.outcome(), StreamOutcome::Forwarded);
}

/// A WebSocket handshake on a validated route opens its tunnel through a real Envoy (with
/// `upgrade_configs`), and bytes cross it both ways: the stream after the handshake is not
/// a body to refuse. Its parameters are still checked.
#[test]
fn a_websocket_opens_through_a_validated_route_on_a_real_envoy() {
    use std::io::{Read, Write};
    let config = json!({"routes": [{"name": "ws", "match": {"path": "/ws", "methods": ["GET"]},
        "validate": {"query": {"type": "object", "properties": {"room": {"type": "integer"}}}}}]});
    let envoy =
        Envoy::start(&Bootstrap::new(backend(), config).websockets()).expect("envoy starts");
    let handshake = |query: &str| {
        let mut stream = std::net::TcpStream::connect(envoy.listener).expect("connect");
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        write!(
            stream,
            "GET /ws{query} HTTP/1.1\r\nhost: localhost\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n"
        )
        .expect("handshake sent");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut byte).expect("response head");
            assert_eq!(
                n,
                1,
                "connection closed after {:?}",
                String::from_utf8_lossy(&head)
            );
            head.push(byte[0]);
        }
        (stream, String::from_utf8_lossy(&head).to_string())
    };
    let (mut stream, head) = handshake("?room=7");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}\n{}", envoy.log());
    let frames: &[u8] = b"\x81\x05hello, and more bytes than a GET body may have";
    stream.write_all(frames).expect("tunnel write");
    let mut echoed = vec![0u8; frames.len()];
    stream.read_exact(&mut echoed).expect("tunnel read");
    assert_eq!(echoed, frames);
    let (_, refused) = handshake("?room=seven");
    assert!(refused.starts_with("HTTP/1.1 400"), "{refused}");
}

// ---- the upstream never sees a refused request ----

/// A request over HTTP/1.1, its headers and first body part sent 300 ms before the rest, so
/// that an upstream request opened at the headers would reach the backend before any answer.
fn slow_post(
    envoy: &Envoy,
    path: &str,
    content_type: &str,
    body: &[u8],
    chunked: bool,
) -> Response {
    let framing = if chunked {
        "transfer-encoding: chunked".to_string()
    } else {
        format!("content-length: {}", body.len())
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: example.com\r\ncontent-type: {content_type}\r\n{framing}\r\nconnection: close\r\n\r\n"
    );
    let (first, rest) = body.split_at(body.len() / 2);
    let frame = |part: &[u8]| {
        let mut framed = Vec::new();
        if chunked {
            if !part.is_empty() {
                framed.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                framed.extend_from_slice(part);
                framed.extend_from_slice(b"\r\n");
            }
        } else {
            framed.extend_from_slice(part);
        }
        framed
    };
    let mut start = head.into_bytes();
    start.extend_from_slice(&frame(first));
    let mut end = frame(rest);
    if chunked {
        end.extend_from_slice(b"0\r\n\r\n");
    }
    test_harness::http1::send_raw_in_parts(
        envoy.listener,
        &[&start, &end],
        std::time::Duration::from_millis(300),
        "POST",
    )
    .expect("response")
}

fn hold_config() -> Value {
    json!({"routes": [
        {"name": "create_user", "match": {"path": "/users", "methods": ["POST"]},
         "validate": {"body": create_user_schema(), "max_body_bytes": 4096}},
        {"name": "upload", "match": {"path": "/echo/upload", "methods": ["POST"]},
         "validate": {"content_types": ["text/plain"], "max_body_bytes": 16}}
    ]})
}

/// Sends requests refused for their body (schema, broken JSON, size, content type), with a
/// Content-Length and chunked; each gets its problem+json.
fn send_refused_bodies(envoy: &Envoy) {
    let invalid = json!({"email": "not-an-email", "password": "short", "name": "M"}).to_string();
    let broken = br#"{"email": "m@example.com", "password": "#;
    let large = format!("{{\"name\": \"{}\"}}", "x".repeat(5000));
    let json = "application/json";
    for chunked in [false, true] {
        let framing = if chunked { "chunked" } else { "content-length" };
        for (path, content_type, body, status, code) in [
            ("/users", json, invalid.as_bytes(), 400, "invalid_body"),
            ("/users", json, broken.as_slice(), 400, "malformed_body"),
            ("/users", json, large.as_bytes(), 413, "body_too_large"),
            (
                "/users",
                "text/plain",
                invalid.as_bytes(),
                415,
                "unsupported_media_type",
            ),
            (
                "/echo/upload",
                "text/plain",
                b"seventeen bytes!!",
                413,
                "body_too_large",
            ),
        ] {
            let response = slow_post(envoy, path, content_type, body, chunked);
            let who = format!("{path} {content_type} {framing}: {}", response.text());
            assert_eq!(response.status, status, "{who}");
            assert_eq!(response.json_body()["code"], code, "{who}");
        }
    }
}

#[test]
fn envoy_never_lets_a_refused_body_reach_the_backend() {
    let (backend, journal) = backend_with_journal();
    let envoy = Envoy::start(&Bootstrap::new(backend, hold_config())).expect("envoy starts");
    send_refused_bodies(&envoy);
    assert_eq!(
        journal.arrivals(),
        [],
        "refused requests reached the backend"
    );

    let valid = json!({"email": "v@example.com", "password": "correct horse", "name": "V"})
        .to_string()
        .into_bytes();
    for chunked in [false, true] {
        let response = slow_post(&envoy, "/users", "application/json", &valid, chunked);
        assert_eq!(response.status, 201, "{}", response.text());
        let response = slow_post(
            &envoy,
            "/echo/upload",
            "text/plain",
            b"sixteen bytes!!!",
            chunked,
        );
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.json_body()["body_bytes"], 16);
    }
    let arrived: Vec<(String, Option<Vec<u8>>)> = journal
        .arrivals()
        .into_iter()
        .map(|a| (a.target, a.body))
        .collect();
    let user = ("/users".to_string(), Some(valid.clone()));
    let upload = (
        "/echo/upload".to_string(),
        Some(b"sixteen bytes!!!".to_vec()),
    );
    assert_eq!(arrived, [user.clone(), upload.clone(), user, upload]);
}

/// Why docs/config.md puts Envoy's buffer filter after the Wasm build: without it, the router
/// opens the upstream request as soon as the headers pass (proxy-wasm cannot hold them while
/// the filter reads the body), and the backend sees the start of every request refused for its
/// body, reset before the body ends. The native build holds the headers itself: nothing
/// arrives.
#[test]
fn without_the_buffer_filter_a_refused_body_opens_an_upstream_request_in_wasm_only() {
    let (backend, journal) = backend_with_journal();
    let bootstrap = Bootstrap::new(backend, hold_config()).without_buffer_filter();
    let envoy = Envoy::start(&bootstrap).expect("envoy starts");
    send_refused_bodies(&envoy);
    let arrived = journal.arrivals();
    if bootstrap.native() {
        assert_eq!(arrived, [], "refused requests reached the backend");
        return;
    }
    assert!(
        arrived
            .iter()
            .any(|a| a.target == "/users" && a.body.is_none()),
        "{arrived:?}"
    );
}

/// An earlier filter that buffers the whole body (Envoy's buffer filter here; an ext_authz or
/// Lua filter that reads bodies does the same) hands it on at once: counted and validated once,
/// not twice (the native build's chunk is then that buffer itself).
#[test]
fn a_body_an_earlier_filter_buffered_is_counted_once() {
    let (backend, journal) = backend_with_journal();
    let bootstrap = Bootstrap::new(backend, hold_config()).buffer_filter_first();
    let envoy = Envoy::start(&bootstrap).expect("envoy starts");
    let valid = json!({"email": "e@example.com", "password": "correct horse", "name": "E"})
        .to_string()
        .into_bytes();
    let response = envoy.send(
        &Request::post("/users")
            .header("content-type", "application/json")
            .body(valid.clone()),
    );
    assert_eq!(response.status, 201, "{}", response.text());
    // 16 bytes is the upload route's limit exactly: counted twice it would be 32.
    let response = envoy.send(
        &Request::post("/echo/upload")
            .header("content-type", "text/plain")
            .body("sixteen bytes!!!"),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let response = envoy.send(
        &Request::post("/echo/upload")
            .header("content-type", "text/plain")
            .body("seventeen bytes!!"),
    );
    assert_eq!(response.status, 413, "{}", response.text());
    assert_eq!(response.json_body()["code"], "body_too_large");
    let arrived: Vec<(String, Option<Vec<u8>>)> = journal
        .arrivals()
        .into_iter()
        .map(|a| (a.target, a.body))
        .collect();
    assert_eq!(
        arrived,
        [
            ("/users".to_string(), Some(valid)),
            (
                "/echo/upload".to_string(),
                Some(b"sixteen bytes!!!".to_vec())
            ),
        ]
    );
}

// ---- route variants get their route's policies ----

/// Paths a common framework routes to the `/users` handler (Express: case-insensitive,
/// trailing slash optional) and those Envoy folds into it before filters run
/// (`normalize_path` decodes percent-encoded unreserved characters and resolves dot segments,
/// `merge_slashes`).
const USERS_VARIANTS: &[&str] = &[
    "/users",
    "/users/",
    "/Users",
    "/USERS/",
    "/users;x=1",
    "/%75sers",
    "//users",
    "/a/../users",
];

#[test]
fn envoy_refuses_an_invalid_body_on_every_variant_of_the_route() {
    let (backend, journal) = backend_with_journal();
    let envoy = Envoy::start(&Bootstrap::new(backend, config())).expect("envoy starts");
    let invalid = json!({"email": "not-an-email", "password": "short"});
    for path in USERS_VARIANTS {
        let mut request = create(&invalid);
        request.target = path.to_string();
        let response = envoy.send(&request);
        assert_problem(
            &response,
            400,
            "invalid_body",
            &["", "/email", "/password"],
            path,
        );
    }
    assert_eq!(journal.arrivals(), [], "a variant reached the backend");
}

#[test]
fn envoy_with_exact_matching_leaves_the_variants_unmatched() {
    let (backend, journal) = backend_with_journal();
    let mut config = config();
    config["route_matching"] = json!("exact");
    let envoy = Envoy::start(&Bootstrap::new(backend, config)).expect("envoy starts");
    let invalid = json!({"email": "not-an-email", "password": "short"});
    let response = envoy.send(&create(&invalid));
    assert_eq!(response.status, 400, "{}", response.text());
    for path in ["/users/", "/Users", "/USERS/"] {
        let mut request = create(&invalid);
        request.target = path.to_string();
        // Not the route's: the request goes on (the sample backend routes exactly, so 404).
        assert_eq!(envoy.send(&request).status, 404, "{path}");
    }
    let arrived: Vec<String> = journal.arrivals().into_iter().map(|a| a.target).collect();
    assert_eq!(arrived, ["/users/", "/Users", "/USERS/"]);
}
