//! The demo's global limit against real components: envoy/envoy.yaml as users run it (the
//! Wasm build), the sample backend, `hardening-ratelimit` with the demo's limits
//! (ratelimit-service/demo-limits.yaml) and Redis. Not among the end-to-end targets run again
//! for the native build: the demo config loads the Wasm module.

use serde_json::json;
use test_harness::Request;
use test_harness::envoy::Envoy;
use xtask::ratelimit::{Redis, Service};

/// The demo's own config (envoy/envoy.yaml, Wasm) and limits (ratelimit-service/demo-limits.yaml):
/// `GET /users` is 20 a minute per client for the fleet, counted by the service.
#[test]
fn the_demo_limits_the_listing_for_the_fleet() {
    let redis = Redis::start().expect("redis starts");
    let limits = xtask::paths::root().join(xtask::demo_stack::RATELIMIT_LIMITS);
    let service = Service::start(&redis.url(), &limits).expect("service starts");
    let mut config = test_harness::envoy::demo_config(test_harness::backend()).expect("demo");
    let clusters = config["static_resources"]["clusters"]
        .as_array_mut()
        .expect("clusters");
    let ratelimit = clusters
        .iter_mut()
        .find(|c| c["name"] == "ratelimit")
        .expect("the demo's ratelimit cluster");
    let address = service.address();
    ratelimit["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"] =
        json!({"address": address.ip().to_string(), "port_value": address.port()});
    let envoy = Envoy::start_config(&config, 2).expect("envoy starts");
    let statuses: Vec<u16> = (0..22)
        .map(|_| envoy.send(&Request::get("/users")).status)
        .collect();
    assert_eq!(statuses[..20], [200; 20]);
    assert_eq!(statuses[20..], [429, 429]);
    let last = envoy.send(&Request::get("/users"));
    assert_eq!(
        last.header_value("ratelimit-policy"),
        Some("\"api\";q=100;w=900, \"fleet\";q=20;w=60")
    );
}
