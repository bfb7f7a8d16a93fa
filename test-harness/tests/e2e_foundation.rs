//! End to end, real Envoy 1.40 + the built filter + the sample backend: the foundation.

use serde_json::json;
use test_harness::envoy::{Bootstrap, ConfigEncoding, Envoy};
use test_harness::{Request, backend};

#[test]
fn request_passes_through_the_filter_to_the_backend() {
    let envoy = Envoy::start(&Bootstrap::new(backend(), json!({}))).expect("envoy starts");
    let response = envoy.send(&Request::get("/users"));
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header_value("content-type"),
        Some("application/json")
    );
    assert_eq!(
        response.json_body(),
        json!([
            {"id": 1, "name": "Ada Lovelace", "email": "ada@example.com"},
            {"id": 2, "name": "Alan Turing", "email": "alan@example.com"}
        ])
    );
}

#[test]
fn config_given_as_a_struct_is_read_as_json() {
    let config = json!({"routes": [{"name": "users", "match": {"path": "/users/{id}", "methods": ["GET"]}}]});
    let bootstrap = Bootstrap::new(backend(), config).encoding(ConfigEncoding::Struct);
    let envoy = Envoy::start(&bootstrap).expect("envoy starts");
    assert_eq!(envoy.send(&Request::get("/users/1")).status, 200);
}

#[test]
fn misspelled_key_makes_envoy_refuse_the_filter() {
    for encoding in [ConfigEncoding::StringValue, ConfigEncoding::Struct] {
        let config = json!({"routes": [{"match": {"path": "/users", "methds": ["GET"]}}]});
        let bootstrap = Bootstrap::new(backend(), config).encoding(encoding);
        let log = Envoy::start_expecting_failure(&bootstrap).expect("envoy refuses the config");
        assert!(
            log.contains(&format!(
                "{}invalid configuration at `routes[0].match.methds`: unknown field `methds`, expected one of `path`, `prefix`, `methods`",
                bootstrap.filter_log_prefix()
            )),
            "{encoding:?}: the refusal does not name the field:\n{log}"
        );
    }
}

#[test]
fn the_demo_config_serves_the_backend() {
    let config = test_harness::envoy::demo_config(backend()).expect("demo config loads");
    let envoy = Envoy::start_config(&config, 1).expect("envoy starts with the demo config");
    let response = envoy.send(&Request::get("/users/2"));
    assert_eq!(response.status, 200);
    assert_eq!(
        response.json_body(),
        json!({"id": 2, "name": "Alan Turing", "email": "alan@example.com"})
    );
    // The operational parts of the demo config: health with the backend checked, Envoy's
    // readiness endpoint, the backend's stack trace replaced.
    let health = envoy.send(&Request::get("/healthz"));
    assert_eq!(health.status, 200, "{}", health.text());
    assert_eq!(health.json_body()["checks"]["backend"]["status"], "healthy");
    assert_eq!(envoy.send(&Request::get("/ready")).status, 200);
    let boom = envoy.send(&Request::get("/boom"));
    assert_eq!(boom.status, 500);
    assert_eq!(boom.json_body()["title"], "Internal Server Error");
    assert!(!boom.text().contains("ECONNREFUSED"), "{}", boom.text());
}
