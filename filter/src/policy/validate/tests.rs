use serde_json::{Value, json};

use super::*;
use crate::config::Config;
use crate::request::Headers;
use crate::syntax::path_only;

/// The seed's `CreateUserSchema` (zod: email, password 8-128, name 1-100) as the filter's config.
fn create_user() -> Value {
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

fn config(route_validate: Value) -> Config {
    Config::from_bytes(
        json!({"routes": [{"name": "users", "match": {"path": "/users/{id}", "methods": ["GET", "POST", "PUT"]}, "validate": route_validate}]})
            .to_string()
            .as_bytes(),
    )
    .expect("valid")
}

fn start(
    config: &Config,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    eos: bool,
) -> Result<BodyPlan, Refusal> {
    let mut pairs: Vec<(&[u8], &[u8])> = vec![
        (b":method", method.as_bytes()),
        (b":path", path.as_bytes()),
        (b"x-request-id", b"r1"),
    ];
    pairs.extend(headers.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())));
    let headers = Headers::new(pairs);
    let head = RequestHead::from_headers(&headers);
    let route = config.routes.find(head.method, head.path).expect("route");
    route
        .policies
        .validate
        .as_ref()
        .expect("validate")
        .on_request(&head, route.params(path_only(head.path)).as_deref(), eos)
}

fn body(config: &Config, bytes: &[u8]) -> Result<(), Refusal> {
    let route = config.routes.iter().next().expect("route");
    route
        .policies
        .validate
        .as_ref()
        .expect("validate")
        .on_body(bytes, true, Some("r1"))
}

fn problem(refusal: &Refusal) -> Value {
    serde_json::from_slice(&refusal.response.body).expect("problem json")
}

const JSON: (&str, &str) = ("content-type", "application/json");

#[test]
fn the_seeds_create_user_example() {
    let config = config(json!({"body": create_user()}));
    assert_eq!(
        start(
            &config,
            "POST",
            "/users/1",
            &[JSON, ("content-length", "80")],
            false
        ),
        Ok(BodyPlan::Buffer {
            limit: DEFAULT_MAX_BODY_BYTES,
            required: true
        })
    );
    assert_eq!(
        body(
            &config,
            br#"{"email":"ada@example.com","password":"correct horse","name":"Ada"}"#
        ),
        Ok(())
    );

    let refused = body(
        &config,
        br#"{"email":"not-an-email","password":"short","name":""}"#,
    )
    .expect_err("invalid");
    assert_eq!(refused.response.status, 400);
    assert_eq!(refused.reason, Reason::InvalidBody);
    assert_eq!(
        problem(&refused),
        json!({
            "type": "about:blank", "title": "Bad Request", "status": 400,
            "detail": "The request body does not match the schema.", "code": "invalid_body", "request_id": "r1",
            "errors": [
                {"pointer": "/email", "keyword": "format", "message": "value is not a \"email\""},
                {"pointer": "/name", "keyword": "minLength", "message": "value is shorter than 1 character"},
                {"pointer": "/password", "keyword": "minLength", "message": "value is shorter than 8 characters"}
            ]
        })
    );
    let missing = body(
        &config,
        br#"{"email":"ada@example.com","password":"correct horse"}"#,
    )
    .expect_err("invalid");
    assert_eq!(
        problem(&missing)["errors"],
        json!([{"pointer": "", "keyword": "required", "message": "\"name\" is a required property"}])
    );
}

#[test]
fn the_password_never_appears_in_errors() {
    let config = config(json!({"body": create_user()}));
    let secret = "hunter2-but-longer-than-128-".repeat(6);
    let refused = body(
        &config,
        format!(r#"{{"email":"a@example.com","password":"{secret}","name":"A"}}"#).as_bytes(),
    )
    .expect_err("too long");
    let text = String::from_utf8(refused.response.body).expect("utf8");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(
        text.contains("\"pointer\":\"/password\",\"keyword\":\"maxLength\""),
        "{text}"
    );
}

#[test]
fn broken_json_reports_line_and_column() {
    let config = config(json!({"body": create_user()}));
    let refused =
        body(&config, b"{\"email\": \"a@example.com\",\n \"name\": }").expect_err("broken");
    assert_eq!(refused.reason, Reason::MalformedBody);
    assert_eq!(
        problem(&refused)["detail"],
        "The body is not valid JSON: expected value at line 2 column 10."
    );
    assert_eq!(
        problem(&refused)["errors"],
        json!([{"pointer": "", "keyword": "json", "message": "expected value at line 2 column 10"}])
    );
    let duplicate = body(&config, br#"{"name": "a", "name": "b"}"#).expect_err("duplicate");
    assert_eq!(
        problem(&duplicate)["detail"],
        "The body is not valid JSON: duplicate key \"name\" at line 1 column 20."
    );
}

#[test]
fn size_content_type_and_bodies_where_none_belong() {
    let config = config(json!({"body": create_user(), "max_body_bytes": 100}));
    let code = |r: Result<BodyPlan, Refusal>| {
        r.map_err(|e| {
            (
                e.response.status,
                problem(&e)["code"].as_str().unwrap_or("").to_string(),
            )
        })
    };
    assert_eq!(
        code(start(
            &config,
            "POST",
            "/users/1",
            &[JSON, ("content-length", "101")],
            false
        )),
        Err((413, "body_too_large".into()))
    );
    assert_eq!(
        code(start(
            &config,
            "POST",
            "/users/1",
            &[("content-type", "text/plain")],
            false
        )),
        Err((415, "unsupported_media_type".into()))
    );
    assert_eq!(
        code(start(&config, "POST", "/users/1", &[], false)),
        Err((415, "unsupported_media_type".into()))
    );
    assert_eq!(
        code(start(
            &config,
            "POST",
            "/users/1",
            &[("content-type", "application/json; charset=utf-8")],
            false
        )),
        Ok(BodyPlan::Buffer {
            limit: 100,
            required: true
        })
    );
    assert_eq!(
        code(start(
            &config,
            "POST",
            "/users/1",
            &[("content-type", "application/merge-patch+json")],
            false
        )),
        Ok(BodyPlan::Buffer {
            limit: 100,
            required: true
        })
    );
    assert_eq!(
        code(start(
            &config,
            "GET",
            "/users/1",
            &[JSON, ("content-length", "2")],
            false
        )),
        Err((400, "body_not_allowed".into()))
    );
    // Without a length, the body's bytes decide (an HTTP/2 GET may end with an empty DATA
    // frame).
    assert_eq!(
        code(start(&config, "GET", "/users/1", &[JSON], false)),
        Ok(BodyPlan::Forbid)
    );
    assert_eq!(
        code(start(&config, "POST", "/users/1", &[JSON], true)),
        Err((400, "body_required".into()))
    );
    assert_eq!(
        code(start(&config, "GET", "/users/1", &[], true)),
        Ok(BodyPlan::None)
    );
    assert_eq!(
        body(&config, &[b' '; 101]).map_err(|e| e.reason),
        Err(Reason::BodyTooLarge)
    );

    let text_only = config_with(json!({"content_types": ["text/*"], "max_body_bytes": 10}));
    assert_eq!(
        code(start(
            &text_only,
            "PUT",
            "/users/1",
            &[("content-type", "text/csv")],
            false
        )),
        Ok(BodyPlan::Hold { limit: 10 })
    );
    // A declared length within the limit leaves nothing to decide at the end: it streams.
    assert_eq!(
        code(start(
            &text_only,
            "PUT",
            "/users/1",
            &[("content-type", "text/csv"), ("content-length", "10")],
            false
        )),
        Ok(BodyPlan::Count { limit: 10 })
    );
    assert_eq!(
        code(start(&text_only, "PUT", "/users/1", &[JSON], false)),
        Err((415, "unsupported_media_type".into()))
    );
}

fn config_with(validate: Value) -> Config {
    config(validate)
}

#[test]
fn query_headers_and_path_params() {
    let config = config(json!({
        "query": {"type": "object", "properties": {"page": {"type": "integer", "minimum": 1}, "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2}}, "additionalProperties": false},
        "headers": {"type": "object", "required": ["x-api-key"], "properties": {"x-api-key": {"type": "string", "minLength": 8}}},
        "path_params": {"id": {"type": "integer", "minimum": 1}}
    }));
    let key = ("x-api-key", "k-12345678");
    assert_eq!(
        start(
            &config,
            "GET",
            "/users/7?page=2&tags=a&tags=b",
            &[key],
            true
        ),
        Ok(BodyPlan::None)
    );
    let refused = start(
        &config,
        "GET",
        "/users/zero?page=0&tags=a&tags=b&tags=c&debug=1",
        &[("x-api-key", "short")],
        true,
    )
    .expect_err("invalid");
    assert_eq!(refused.response.status, 400);
    let errors: Vec<(String, String)> = problem(&refused)["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["pointer"].as_str().unwrap_or("").to_string(),
                e["keyword"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [
            ("/query/page".into(), "minimum".into()),
            ("/query/tags".into(), "maxItems".into()),
            ("/query".into(), "additionalProperties".into()),
            ("/headers/x-api-key".into(), "minLength".into()),
            ("/path/id".into(), "type".into()),
        ]
    );
    let missing = start(&config, "GET", "/users/7", &[], true).expect_err("no key");
    assert_eq!(problem(&missing)["errors"][0]["pointer"], "/headers");
    assert_eq!(problem(&missing)["errors"][0]["keyword"], "required");
}

#[test]
fn unknown_routes_and_methods_when_strict() {
    let config = Config::from_bytes(
        json!({
            "defaults": {"validate": {"unknown_routes": "reject"}},
            "routes": [
                {"match": {"path": "/users", "methods": ["GET", "POST"]}},
                {"match": {"path": "/users/{id}", "methods": ["GET", "DELETE"]}}
            ]
        })
        .to_string()
        .as_bytes(),
    )
    .expect("valid");
    assert_eq!(config.unknown_routes, UnknownRoutes::Reject);
    let decide = |method: &str, path: &str| {
        let pairs: Vec<(&[u8], &[u8])> =
            vec![(b":method", method.as_bytes()), (b":path", path.as_bytes())];
        let headers = Headers::new(pairs);
        unknown_route(
            config.routes.methods_for_path(path),
            &RequestHead::from_headers(&headers),
        )
    };
    let not_found = decide("GET", "/nope");
    assert_eq!(
        (not_found.response.status, not_found.reason),
        (404, Reason::RouteNotFound)
    );
    let not_allowed = decide("PUT", "/users/3");
    assert_eq!(not_allowed.response.status, 405);
    assert_eq!(
        not_allowed.response.header("allow"),
        Some("DELETE, GET, HEAD")
    );
}

#[test]
fn config_refusals_name_the_route_and_schema() {
    let refusal = |config: Value| {
        Config::from_bytes(config.to_string().as_bytes())
            .expect_err("refused")
            .to_string()
    };
    assert_eq!(
        refusal(
            json!({"routes": [{"match": {"path": "/a"}}, {"match": {"path": "/b"}, "validate": {"body": {"type": "objekt"}}}]})
        ),
        "invalid configuration at `routes[1].validate.body`: the schema does not compile: \"objekt\" is not valid under any of the schemas listed in the 'anyOf' keyword (at /type)"
    );
    assert_eq!(
        refusal(
            json!({"routes": [{"match": {"path": "/a"}, "validate": {"body": {"$ref": "https://example.com/schema.json"}}}]})
        ),
        "invalid configuration at `routes[0].validate.body`: `$ref` to https://example.com/schema.json cannot be resolved: schemas are never fetched over the network or from files; put it under `$defs` and refer to it locally"
    );
    assert_eq!(
        refusal(
            json!({"routes": [{"match": {"path": "/users/{id}"}, "validate": {"path_params": {"uid": {"type": "integer"}}}}]})
        ),
        "invalid configuration at `routes[0].validate.path_params.uid`: the route's path has no `{uid}` segment (it has: id)"
    );
    assert_eq!(
        refusal(json!({"defaults": {"validate": {"body": {"type": "object"}}}})),
        "invalid configuration at `defaults.validate.body`: only on a route (defaults hold size and content-type limits)"
    );
    assert_eq!(
        refusal(
            json!({"routes": [{"match": {"path": "/a"}, "validate": {"unknown_routes": "reject"}}]})
        ),
        "invalid configuration at `routes[0].validate.unknown_routes`: only in defaults.validate (it is about requests no route matches)"
    );
    assert_eq!(
        refusal(
            json!({"routes": [{"match": {"path": "/a"}, "validate": {"content_types": ["application/json; charset=utf-8"]}}]})
        ),
        "invalid configuration at `routes[0].validate.content_types[0]`: `application/json; charset=utf-8`: list the media type without parameters"
    );
    assert_eq!(
        refusal(
            json!({"routes": [{"match": {"path": "/a"}, "validate": {"headers": {"type": "object", "required": ["X-Api-Key"]}}}]})
        ),
        "invalid configuration at `routes[0].validate.headers`: `X-Api-Key`: header names are matched lowercase; write them lowercase"
    );
}

#[test]
fn local_refs_and_other_drafts_work() {
    let config = config(json!({"body": {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": {"positive": {"type": "integer", "minimum": 1}},
        "type": "object", "properties": {"n": {"$ref": "#/definitions/positive"}}
    }}));
    assert_eq!(body(&config, br#"{"n": 3}"#), Ok(()));
    assert!(body(&config, br#"{"n": 0}"#).is_err());
}

/// Each case needs its own draft's semantics: under 2020-12 each would validate differently.
#[test]
fn dollar_schema_selects_the_draft() {
    let draft = |schema: Value| {
        let config = config(json!({ "body": schema }));
        move |bytes: &[u8]| body(&config, bytes).is_ok()
    };
    // Draft 4: `exclusiveMinimum` is a boolean modifying `minimum` (a number in 2020-12, where
    // `true` does not compile).
    let draft4 = draft(json!({
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "object",
        "properties": {"n": {"type": "number", "minimum": 5, "exclusiveMinimum": true}}
    }));
    assert!(draft4(br#"{"n": 6}"#));
    assert!(!draft4(br#"{"n": 5}"#));
    // Draft 7: `items` as an array checks by position (2020-12 uses `prefixItems`, and an
    // array `items` does not compile).
    let draft7 = draft(json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "array",
        "items": [{"type": "string"}, {"type": "integer"}]
    }));
    assert!(draft7(br#"["a", 1, null]"#));
    assert!(!draft7(br#"[1, "a"]"#));
    // Draft 2019-09: `$recursiveRef` (replaced by `$dynamicRef` in 2020-12).
    let draft2019 = draft(json!({
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "$recursiveAnchor": true,
        "type": ["integer", "array"],
        "items": {"$recursiveRef": "#"}
    }));
    assert!(draft2019(b"[1, [2, [3]]]"));
    assert!(!draft2019(br#"[1, ["x"]]"#));
    // Without `$schema`: 2020-12, where an array `items` is an error.
    let refused = Config::from_bytes(
        json!({"routes": [{"match": {"path": "/a"}, "validate": {"body": {"items": [{"type": "string"}]}}}]})
            .to_string()
            .as_bytes(),
    )
    .expect_err("2020-12 by default");
    assert!(
        refused.to_string().starts_with(
            "invalid configuration at `routes[0].validate.body`: the schema does not compile"
        ),
        "{refused}"
    );
}

#[test]
fn an_unknown_dollar_schema_is_refused() {
    let refused = Config::from_bytes(
        json!({"routes": [{"match": {"path": "/a"}, "validate": {"body": {"$schema": "http://json-schema.org/draft-03/schema#", "type": "object"}}}]})
            .to_string()
            .as_bytes(),
    )
    .expect_err("refused");
    assert_eq!(
        refused.to_string(),
        "invalid configuration at `routes[0].validate.body`: `$schema` `http://json-schema.org/draft-03/schema#` is not a draft the filter knows: write one of https://json-schema.org/draft/2020-12/schema, https://json-schema.org/draft/2019-09/schema, http://json-schema.org/draft-07/schema#, http://json-schema.org/draft-06/schema#, http://json-schema.org/draft-04/schema#, or leave it out for 2020-12"
    );
}

#[test]
fn every_known_dollar_schema_compiles_with_or_without_its_hash() {
    for uri in [
        "https://json-schema.org/draft/2020-12/schema",
        "https://json-schema.org/draft/2019-09/schema",
        "http://json-schema.org/draft-07/schema",
        "http://json-schema.org/draft-06/schema",
        "http://json-schema.org/draft-04/schema",
    ] {
        for written in [uri.to_string(), format!("{uri}#")] {
            let config = config(json!({"body": {"$schema": written, "type": "object"}}));
            assert_eq!(body(&config, b"{}"), Ok(()), "{written}");
            assert!(body(&config, b"[]").is_err(), "{written}");
        }
    }
}

/// An HTTP/2 request whose headers did not end the stream, then an empty DATA frame: no body,
/// as if the headers had ended it.
#[test]
fn a_stream_that_ends_empty_has_no_body() {
    let config = config(json!({"body": create_user()}));
    let validation = |route_method: &str| {
        let plan = start(&config, route_method, "/users/1", &[JSON], false).expect("planned");
        let BodyPlan::Buffer { required, .. } = plan else {
            panic!("{route_method}: {plan:?}")
        };
        let route = config.routes.iter().next().expect("route");
        let validate = route.policies.validate.as_ref().expect("validate");
        validate
            .on_body(b"", required, Some("r1"))
            .map_err(|r| (r.response.status, r.reason.code()))
    };
    assert_eq!(validation("POST"), Err((400, "body_required")));
    assert_eq!(validation("PUT"), Err((400, "body_required")));
    // A method that may go without a body passes, as when its headers end the stream.
    let any_method = Config::from_bytes(
        json!({"routes": [{"match": {"path": "/users/{id}"}, "validate": {"body": create_user()}}]})
            .to_string()
            .as_bytes(),
    )
    .expect("valid");
    let plan = start(&any_method, "DELETE", "/users/1", &[JSON], false);
    assert_eq!(
        plan,
        Ok(BodyPlan::Buffer {
            limit: DEFAULT_MAX_BODY_BYTES,
            required: false
        })
    );
    let route = any_method.routes.iter().next().expect("route");
    let validate = route.policies.validate.as_ref().expect("validate");
    assert_eq!(validate.on_body(b"", false, Some("r1")), Ok(()));
    assert!(validate.on_body(b"{}", false, Some("r1")).is_err());
}

/// A WebSocket upgrade's stream is a tunnel, not a body; a POST's `Upgrade` changes nothing.
#[test]
fn an_upgrade_is_not_a_body() {
    let config = config(json!({"body": create_user(), "max_body_bytes": 100}));
    let upgrade = [
        ("upgrade", "websocket"),
        ("connection", "upgrade"),
        ("sec-websocket-version", "13"),
    ];
    assert_eq!(
        start(&config, "GET", "/users/1", &upgrade, false),
        Ok(BodyPlan::None)
    );
    let mut post = upgrade.to_vec();
    post.push(JSON);
    assert_eq!(
        start(&config, "POST", "/users/1", &post, false),
        Ok(BodyPlan::Buffer {
            limit: 100,
            required: true
        })
    );
    assert_eq!(
        start(&config, "POST", "/users/1", &upgrade, true).map_err(|r| r.reason),
        Err(Reason::BodyRequired)
    );
    // A handshake declares no body: one that does, or another upgrade, is an ordinary GET.
    let with = |extra: (&'static str, &'static str)| {
        let mut headers = upgrade.to_vec();
        headers.push(extra);
        start(&config, "GET", "/users/1", &headers, false).map_err(|r| r.reason)
    };
    assert_eq!(with(("content-length", "50")), Err(Reason::BodyNotAllowed));
    assert_eq!(with(("transfer-encoding", "chunked")), Ok(BodyPlan::Forbid));
    assert_eq!(with(("content-length", "0")), Ok(BodyPlan::None));
    let other = [("upgrade", "h2c"), ("connection", "upgrade")];
    assert_eq!(
        start(&config, "GET", "/users/1", &other, false),
        Ok(BodyPlan::Forbid)
    );
}

#[test]
fn path_params_are_percent_decoded_as_a_router_decodes_a_segment() {
    assert_eq!(percent_decode("7"), "7");
    assert_eq!(percent_decode("%41b%2Fc"), "Ab/c");
    assert_eq!(percent_decode("a+b"), "a+b");
    assert_eq!(percent_decode("a%2Bb%20c"), "a+b c");
    assert_eq!(percent_decode("%zz%4"), "%zz%4");
    assert_eq!(percent_decode("%C3%A9%FF"), "é\u{fffd}");
    // A segment is not a query: `&` and `=` are its own bytes.
    assert_eq!(percent_decode("a&b=c"), "a&b=c");
}
