//! Query strings (and the same bytes as a path parameter and a header) against parameter
//! schemas, with type coercion and bracketed keys (`tag[]`, `id[$ne]`): never a panic; a
//! request is either let through with no body to check or refused with a 400 problem+json
//! whose errors (at most `MAX_ERRORS`) point into `/query`, `/path` or `/headers`.

#![no_main]

use std::sync::LazyLock;

use hardening::config::Config;
use hardening::policy::validate::{BodyPlan, MAX_ERRORS};
use hardening::request::{Headers, RequestHead};
use hardening::syntax::path_only;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

static CONFIG: LazyLock<Config> = LazyLock::new(|| {
    let config = r#"{"routes": [
        {"name": "search", "match": {"path": "/search", "methods": ["GET"]}, "validate": {
            "query": {"type": "object", "properties": {
                "q": {"type": "string", "minLength": 1, "maxLength": 50},
                "limit": {"type": "integer", "minimum": 1, "maximum": 100},
                "ratio": {"type": "number"},
                "exact": {"type": "boolean"},
                "tag": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+$"}, "maxItems": 3},
                "ids": {"type": "array", "items": {"type": "integer"}},
                "sort": {"enum": ["asc", "desc"]},
                "since": {"type": ["string", "null"], "format": "date"}
            }, "required": ["q"], "additionalProperties": false},
            "headers": {"type": "object", "properties": {
                "x-page": {"type": "integer", "minimum": 0},
                "x-flag": {"type": "boolean"}
            }}}},
        {"name": "item", "match": {"path": "/items/{id}/{slug}", "methods": ["GET"]}, "validate": {
            "path_params": {
                "id": {"type": "integer", "minimum": 1},
                "slug": {"type": "string", "pattern": "^[a-z0-9-]+$", "maxLength": 40}
            },
            "query": {"type": "object", "properties": {"expand": {"type": "boolean"}}}}}
    ]}"#;
    Config::from_bytes(config.as_bytes()).expect("the config compiles")
});

fn check(path: &str, headers: &[(&[u8], &[u8])]) {
    let mut pairs: Vec<(&[u8], &[u8])> = vec![(b":method", b"GET"), (b":path", path.as_bytes())];
    pairs.extend_from_slice(headers);
    let headers = Headers::new(pairs);
    let head = RequestHead::from_headers(&headers);
    let Some(route) = CONFIG.routes.find(head.method, head.path) else {
        return;
    };
    let validation = route
        .policies
        .validate
        .as_ref()
        .expect("the route validates");
    match validation.on_request(&head, route.params(path_only(head.path)).as_deref(), true) {
        Ok(plan) => assert_eq!(plan, BodyPlan::None),
        Err(refusal) => {
            let response = &refusal.response;
            hardening_fuzz::assert_own_response(response);
            assert_eq!(response.status, 400);
            let body: Value = serde_json::from_slice(&response.body).expect("JSON");
            assert_eq!(body["code"], "invalid_request", "{body}");
            let errors = body["errors"].as_array().expect("errors");
            assert!(!errors.is_empty() && errors.len() <= MAX_ERRORS, "{body}");
            for error in errors {
                let pointer = error["pointer"].as_str().expect("pointer");
                assert!(
                    ["/query", "/path", "/headers"]
                        .iter()
                        .any(|p| pointer == *p || pointer.starts_with(&format!("{p}/"))),
                    "{pointer}"
                );
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    check(&format!("/search?{text}"), &[]);
    // As a path parameter (a segment: no `/`, `?` or `#`) and as header values.
    let segment: String = text
        .chars()
        .filter(|c| !matches!(c, '/' | '?' | '#'))
        .collect();
    if !segment.is_empty() {
        check(&format!("/items/{segment}/{segment}?expand={segment}"), &[]);
    }
    let value = hardening_fuzz::header_text(data);
    check(
        "/search?q=x",
        &[
            (b"x-page", value.as_bytes()),
            (b"x-flag", value.as_bytes()),
            (b"x-page", b"1"),
        ],
    );
});
