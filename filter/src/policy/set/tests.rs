use std::sync::Arc;

use super::*;
use crate::config::Config;

fn config(json: &str) -> Config {
    Config::from_bytes(json.as_bytes()).expect("valid config")
}

#[test]
fn only_security_headers_are_on_without_a_word() {
    let config = config("{}");
    let set = &config.defaults;
    assert!(set.security_headers.is_some());
    assert!(set.cors.is_none() && set.rate_limit.is_none() && set.validate.is_none());
    assert!(set.https_redirect.is_none() && set.errors.is_none());
    assert!(set.edits_response_headers());
    assert!(!set.reads_request_headers());
    let off = self::config(r#"{"defaults":{"security_headers":false}}"#);
    assert!(!off.defaults.edits_response_headers());
}

#[test]
fn each_policy_says_what_it_reads_and_edits() {
    let with = |section: &str| {
        let set = config(&format!(
            r#"{{"defaults":{{"security_headers":false,{section}}}}}"#
        ))
        .defaults;
        (set.reads_request_headers(), set.edits_response_headers())
    };
    assert_eq!(with(r#""cors":{"allow_origins":["*"]}"#), (true, true));
    assert_eq!(
        with(r#""rate_limit":{"limit":1,"window":"1s"}"#),
        (true, true)
    );
    assert_eq!(with(r#""validate":true"#), (true, false));
    assert_eq!(with(r#""https_redirect":{"hosts":["*"]}"#), (true, false));
    assert_eq!(with(r#""errors":true"#), (true, true));
}

#[test]
fn a_route_that_sets_no_section_shares_the_defaults() {
    let config = config(
        r#"{"routes":[{"match":{"path":"/a"}},{"match":{"path":"/b"},"cors":{"allow_origins":["*"]}}]}"#,
    );
    let routes: Vec<_> = config.routes.iter().collect();
    let [plain, with_cors] = routes.as_slice() else {
        panic!("two routes");
    };
    assert!(Arc::ptr_eq(&plain.policies, &config.defaults));
    assert!(!Arc::ptr_eq(&with_cors.policies, &config.defaults));
    assert!(with_cors.policies.cors.is_some());
    assert!(with_cors.policies.security_headers.is_some());
}

#[test]
fn a_route_overrides_field_by_field_replaces_limits_and_turns_off() {
    let config = config(
        r#"{
            "defaults": {
                "validate": {"max_body_bytes": 9, "content_types": ["application/json"]},
                "rate_limit": {"name": "global", "limit": 10, "window": "1m"},
                "errors": true
            },
            "routes": [
                {"match": {"path": "/a"}, "validate": {"query": {"type": "object"}}},
                {"match": {"path": "/b"}, "validate": {"max_body_bytes": 5}},
                {
                    "match": {"path": "/c"},
                    "rate_limit": {"name": "route", "limit": 1, "window": "1s"},
                    "errors": false
                }
            ]
        }"#,
    );
    let sets: Vec<&PolicySet> = config.routes.iter().map(|r| r.policies.as_ref()).collect();
    let [a, b, c] = sets.as_slice() else {
        panic!("three routes");
    };
    let max_body = |set: &PolicySet| set.validate.as_ref().map(|v| v.max_body_bytes);
    assert_eq!(max_body(a), Some(9), "from the defaults");
    assert_eq!(max_body(b), Some(5), "the route's own");
    let limits = |set: &PolicySet| -> Vec<String> {
        set.rate_limit
            .iter()
            .flat_map(|r| r.limits.iter().map(|l| l.name.clone()))
            .collect()
    };
    assert_eq!(limits(a), ["global"]);
    assert_eq!(limits(c), ["route"]);
    assert!(c.errors.is_none());
    assert!(a.errors.is_some());
}

#[test]
fn an_empty_route_compiles_as_the_defaults() {
    let raw: RawPolicies =
        serde_json::from_str(r#"{"validate":{"max_body_bytes":9}}"#).expect("raw");
    let defaults = compile_defaults(&raw).expect("defaults");
    assert!(
        compile_route(&raw, &RawSections::default(), &[])
            .expect("route")
            .is_none()
    );
    let restated = compile_route(&raw, &raw.sections(), &[])
        .expect("route")
        .expect("sets sections");
    let max_body = |set: &PolicySet| set.validate.as_ref().map(|v| v.max_body_bytes);
    assert_eq!(max_body(&restated), Some(9));
    assert_eq!(max_body(&restated), max_body(&defaults));
    assert_eq!(restated.security_headers, defaults.security_headers);
}
