//! The native build's first step: a Rust Envoy dynamic module (`fixtures/noop-dynamic`, one
//! response header, or the headers its config lists) loads in the real Envoy 1.40 and serves.

use serde_json::json;
use test_harness::envoy::{Bootstrap, Envoy};
use test_harness::{Request, backend};
use xtask::bench::variants::dynamic_module_filter;
use xtask::native::{self, NOOP_DYNAMIC};

/// A real Envoy with only the no-op module (given `module_config`) before the router.
fn envoy_with_noop(module_config: &str) -> Envoy {
    native::ensure(&NOOP_DYNAMIC).expect("the module builds");
    let mut config = Bootstrap::new(backend(), json!({})).to_json();
    let manager = &mut config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"];
    manager["http_filters"] = json!([
        dynamic_module_filter(NOOP_DYNAMIC.lib_name, "noop", module_config),
        {
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
        },
    ]);
    Envoy::start_config(&config, 2).expect("envoy starts")
}

#[test]
fn the_noop_dynamic_module_adds_the_headers_its_config_lists() {
    let envoy = envoy_with_noop("x-frame-options: DENY\nignored line\nvary: Origin\n");
    let response = envoy.send(&Request::get("/users"));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header_value("x-frame-options"), Some("DENY"));
    assert_eq!(response.header_value("vary"), Some("Origin"));
    assert_eq!(response.header_value("x-noop-dynamic"), None);
}

#[test]
fn the_noop_dynamic_module_loads_in_envoy_and_sets_its_header() {
    let envoy = envoy_with_noop("");
    for _ in 0..3 {
        let response = envoy.send(&Request::get("/users"));
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.header_value("x-noop-dynamic"), Some("1"));
        assert_eq!(
            response.json_body()[0]["name"],
            json!("Ada Lovelace"),
            "the backend's answer"
        );
    }
    let log = envoy.log();
    assert!(
        log.contains("Dynamic module ABI version v0.2.0 matched."),
        "Envoy checked the module's ABI version:\n{log}"
    );
}
