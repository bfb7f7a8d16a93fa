//! Wrong configurations (typos, wrong types, values out of range) are refused by the JSON
//! Schema and by the filter alike, both naming the same field.

use hardening_check::check::Checker;
use serde_json::{Value, json};

/// Each wrong configuration and the field both must name.
fn wrong_configs() -> Vec<(Value, &'static str)> {
    vec![
        // Typos.
        (json!({"default": {}}), "default"),
        (
            json!({"routes": [{"match": {"paht": "/x"}}]}),
            "routes[0].match.paht",
        ),
        (
            json!({"defaults": {"cors": {"allow_origin": ["https://a.example"]}}}),
            "defaults.cors.allow_origin",
        ),
        (
            json!({"defaults": {"rate_limit": {"limit": 5, "window": "1m", "brust": 2}}}),
            "defaults.rate_limit.brust",
        ),
        (
            json!({"defaults": {"security_headers": {"strict_transport_security": {"max_age": 1, "includeSubDomains": true}}}}),
            "defaults.security_headers.strict_transport_security.includeSubDomains",
        ),
        (json!({"logging": {"level": "verbose"}}), "logging.level"),
        (json!({"route_matching": "fuzzy"}), "route_matching"),
        (
            json!({"defaults": {"rate_limit": {"limit": 5, "window": "1m", "mode": "dry-run"}}}),
            "defaults.rate_limit.mode",
        ),
        // Wrong types.
        (json!({"routes": {}}), "routes"),
        (
            json!({"defaults": {"rate_limit": {"limit": "100", "window": "15m"}}}),
            "defaults.rate_limit.limit",
        ),
        (
            json!({"defaults": {"security_headers": {"x_content_type_options": "yes"}}}),
            "defaults.security_headers.x_content_type_options",
        ),
        (
            json!({"health": {"checks": {"db": {"cluster": 5}}}}),
            "health.checks.db.cluster",
        ),
        (json!({"defaults": {"cors": 5}}), "defaults.cors"),
        (
            json!({"routes": [{"match": {"path": "/x", "methods": "GET"}}]}),
            "routes[0].match.methods",
        ),
        // Values out of range.
        (
            json!({"defaults": {"rate_limit": {"limit": 0, "window": "1m"}}}),
            "defaults.rate_limit.limit",
        ),
        (
            json!({"defaults": {"rate_limit": {"limit": 5, "window": "15"}}}),
            "defaults.rate_limit.window",
        ),
        (
            json!({"defaults": {"rate_limit": {"limit": 5, "window": "1m", "ipv4_prefix": 33}}}),
            "defaults.rate_limit.ipv4_prefix",
        ),
        (
            json!({"defaults": {"rate_limit": {"limit": 5, "window": "1m", "slots": 4}}}),
            "defaults.rate_limit.slots",
        ),
        (
            json!({"defaults": {"rate_limit": {"limit": 5, "window": "1m", "key": "cookie"}}}),
            "defaults.rate_limit.key",
        ),
        (
            json!({"defaults": {"cors": {"allow_origins": ["https://a.example"], "preflight_status": 500}}}),
            "defaults.cors.preflight_status",
        ),
        (
            json!({"defaults": {"cors": {"max_age": -1}}}),
            "defaults.cors.max_age",
        ),
        (
            json!({"defaults": {"https_redirect": {"hosts": ["a.example"], "status": 302}}}),
            "defaults.https_redirect.status",
        ),
        (
            json!({"defaults": {"https_redirect": {"hosts": ["a.example"], "https_port": 0}}}),
            "defaults.https_redirect.https_port",
        ),
        (
            json!({"health": {"checks": {"db": {"cluster": "db", "expected_status": 700}}}}),
            "health.checks.db.expected_status",
        ),
        (
            json!({"defaults": {"validate": {"max_body_bytes": -1}}}),
            "defaults.validate.max_body_bytes",
        ),
        (
            json!({"defaults": {"errors": {"statuses": [502, 404]}}}),
            "defaults.errors.statuses[1]",
        ),
        (
            json!({"defaults": {"rate_limit": {"name": "api limit", "limit": 5, "window": "1m"}}}),
            "defaults.rate_limit.name",
        ),
    ]
}

#[test]
fn refused_by_the_schema_and_the_filter_alike() {
    let checker = Checker::new().expect("the schema compiles");
    let mut mismatches = Vec::new();
    for (config, field) in wrong_configs() {
        let text = config.to_string();
        let report = checker.check(&text);
        let filter = report.configs.first().and_then(|c| c.error.as_ref());
        let schema = checker.schema_errors(&config);
        let filter_names_it = filter.is_some_and(|e| e.path == field);
        let schema_names_it = schema.iter().any(|f| f.path == field);
        if !filter_names_it || !schema_names_it {
            mismatches.push(format!(
                "{text}: expected `{field}` from both; filter: {filter:?}; schema: {schema:?}"
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn a_valid_config_passes_both() {
    let checker = Checker::new().expect("the schema compiles");
    let config = json!({
        "defaults": {
            "cors": {"allow_origins": ["https://a.example", {"regex": "^https://[a-z]+\\.b\\.example$"}], "allow_headers": "reflect"},
            "rate_limit": [{"name": "a", "limit": 5, "window": "1m", "key": ["client_ip", "header:x-api-key"]}],
            "security_headers": {"cache_control": true, "content_security_policy": {"directives": {"img-src": null}}},
            "errors": true,
            "validate": false,
        },
        "routes": [{"match": {"path": "/users/{id}"}, "rate_limit": false, "validate": {"path_params": {"id": {"type": "integer"}}}}],
        "health": true,
        "logging": {"level": "warn"},
    });
    assert_eq!(checker.schema_errors(&config), vec![]);
    let report = checker.check(&config.to_string());
    assert!(report.passed(), "{report:#?}");
}
