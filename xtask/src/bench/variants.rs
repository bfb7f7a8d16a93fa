//! The Envoy configurations compared. All answer from a `direct_response` route (so the
//! upstream does not dominate), except `/backend/...`, which goes to the sample backend. Every
//! variant has Envoy's buffer filter, enabled only for `/users` (see `bootstrap`).

use std::net::SocketAddr;

use serde_json::{Value, json};

use super::helmet::HELMET_HEADERS;
use super::scenarios::ORIGIN;
use crate::paths;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// No HTTP filter besides the router.
    Bare,
    /// Envoy's own cors + local_ratelimit + header_mutation, doing what the filter does.
    Native,
    /// The smallest Wasm filter (fixtures/noop): the floor for any Wasm filter.
    NoopWasm,
    /// The smallest Envoy dynamic module (fixtures/noop-dynamic, one response header): the
    /// floor for a native build of the filter.
    NoopDynamic,
    /// The same module adding the response headers the filter writes on a GET (helmet's,
    /// `Vary`, the two RateLimit fields), computing nothing: what writing them through the
    /// dynamic-module ABI costs, against `native`, which writes helmet's with
    /// header_mutation.
    HeadersDynamic,
    /// This filter with every policy that exists turned on.
    Filter,
    /// The same filter and configuration as `Filter`, as the native dynamic module
    /// (`dist/libhardening.so`).
    Dynamic,
}

pub const ALL: &[Variant] = &[
    Variant::Bare,
    Variant::Native,
    Variant::NoopWasm,
    Variant::NoopDynamic,
    Variant::HeadersDynamic,
    Variant::Filter,
    Variant::Dynamic,
];

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Self::Bare => "bare",
            Self::Native => "native",
            Self::NoopWasm => "noop-wasm",
            Self::NoopDynamic => "noop-dynamic",
            Self::HeadersDynamic => "headers-dynamic",
            Self::Filter => "filter",
            Self::Dynamic => "dynamic",
        }
    }
}

/// The filter's configuration in the `filter` and `dynamic` variants: every policy that
/// exists, on the routes the scenarios use. One file, read by the per-request cost report and
/// the core's in-process benchmark (`filter/benches/exchange.rs`) too. In it:
/// - `client_address` from `x_forwarded_for`: the connection manager has `use_remote_address`,
///   so the rate limit's client address is the one it appended, no property read;
/// - a rate limit high enough never to refuse, like the native variant's token bucket;
/// - `errors` reads every response's status and replaces none here (the upstreams answer
///   200); `https_redirect` is off, as the benchmark speaks plain HTTP.
pub const FILTER_CONFIG: &str = include_str!("filter-config.json");

pub fn filter_config() -> Value {
    // A file of this crate, read by the test below: it cannot fail at a user's.
    serde_json::from_str(FILTER_CONFIG).expect("xtask/src/bench/filter-config.json is JSON")
}

fn wasm_filter(module_file: &str, configuration: Value) -> Value {
    json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "hardening",
                "root_id": "hardening",
                "vm_config": {
                    "vm_id": "bench",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": paths::dist().join(module_file).display().to_string()}},
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": configuration.to_string(),
                },
            },
        },
    })
}

/// A dynamic module's filter; Envoy loads `lib<module>.so` from `ENVOY_DYNAMIC_MODULES_SEARCH_PATH`.
/// `configuration`: the filter config's bytes, as the module reads them.
pub fn dynamic_module_filter(module: &str, filter_name: &str, configuration: &str) -> Value {
    json!({
        "name": "envoy.filters.http.dynamic_modules",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
            "dynamic_module_config": {"name": module},
            "filter_name": filter_name,
            "filter_config": {
                "@type": "type.googleapis.com/google.protobuf.StringValue",
                "value": configuration,
            },
        },
    })
}

/// The `headers-dynamic` module's config: the headers `dynamic` writes on the `get` scenario's
/// response, one `name: value` line each.
fn filter_get_headers() -> String {
    let rate_limit = [
        ("vary", "Origin"),
        ("ratelimit-policy", "\"bench\";q=1000000000;w=1"),
        ("ratelimit", "\"bench\";r=999999999;t=1"),
    ];
    rate_limit
        .iter()
        .chain(HELMET_HEADERS)
        .map(|(name, value)| format!("{name}: {value}\n"))
        .collect()
}

fn native_filters() -> Vec<Value> {
    // helmet's defaults, what the filter sets by default.
    let mutations: Vec<Value> = HELMET_HEADERS
        .iter()
        .map(|(k, v)| json!({"append": {"header": {"key": k, "value": v}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}}))
        .chain(std::iter::once(json!({"remove": "x-powered-by"})))
        .collect();
    vec![
        json!({
            "name": "envoy.filters.http.cors",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"},
        }),
        json!({
            "name": "envoy.filters.http.local_ratelimit",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
                "stat_prefix": "bench",
                "token_bucket": {"max_tokens": 1_000_000_000u64, "tokens_per_fill": 1_000_000_000u64, "fill_interval": "1s"},
                "filter_enabled": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
                "filter_enforced": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
            },
        }),
        json!({
            "name": "envoy.filters.http.header_mutation",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
                "mutations": {"response_mutations": mutations},
            },
        }),
    ]
}

fn no_buffer() -> Value {
    json!({"envoy.filters.http.buffer": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute",
        "disabled": true,
    }})
}

/// The Envoy of one variant: the backend, and the rate limit service (`ratelimit`, HTTP/2)
/// that the filter's `global` route asks.
pub fn bootstrap(
    variant: Variant,
    backend: SocketAddr,
    ratelimit: SocketAddr,
    filter_config: &Value,
) -> Value {
    let mut http_filters = match variant {
        Variant::Bare => vec![],
        Variant::Native => native_filters(),
        Variant::NoopWasm => vec![wasm_filter("noop.wasm", json!({}))],
        Variant::NoopDynamic => vec![dynamic_module_filter(
            crate::native::NOOP_DYNAMIC.lib_name,
            "noop",
            "",
        )],
        Variant::HeadersDynamic => vec![dynamic_module_filter(
            crate::native::NOOP_DYNAMIC.lib_name,
            "noop",
            &filter_get_headers(),
        )],
        Variant::Filter => vec![wasm_filter("hardening.wasm", filter_config.clone())],
        Variant::Dynamic => vec![dynamic_module_filter(
            crate::native::FILTER.lib_name,
            "hardening",
            &filter_config.to_string(),
        )],
    };
    // Every variant buffers POST /users before answering it: a direct response sent before
    // the request body has arrived makes Envoy close the connection, which would measure
    // reconnects instead of the filter. Disabled on every other route.
    http_filters.push(json!({
        "name": "envoy.filters.http.buffer",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
            "max_request_bytes": 65536,
        },
    }));
    http_filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
    }));
    let mut virtual_host = json!({
        "name": "bench",
        "domains": ["*"],
        "routes": [
            {
                "match": {"prefix": "/backend/"},
                "route": {"cluster": "backend", "prefix_rewrite": "/"},
                "typed_per_filter_config": no_buffer(),
            },
            {"match": {"prefix": "/users"}, "direct_response": {"status": 201, "body": {"inline_string": "{\"id\":3}"}}},
            {
                "match": {"prefix": "/"},
                "direct_response": {"status": 200, "body": {"inline_string": "ok"}},
                "typed_per_filter_config": no_buffer(),
            },
        ],
    });
    if variant == Variant::Native {
        virtual_host["typed_per_filter_config"] = json!({
            "envoy.filters.http.cors": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy",
                "allow_origin_string_match": [{"exact": ORIGIN}],
                "allow_methods": "GET,POST,PUT,DELETE",
                "allow_headers": "content-type,authorization",
                "max_age": "600",
            },
        });
    }
    json!({
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [{
                "name": "bench",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "bench",
                        // An edge Envoy, as envoy/envoy.yaml: the client address is the
                        // connection's, appended to X-Forwarded-For for every filter.
                        "use_remote_address": true,
                        "route_config": {"virtual_hosts": [virtual_host]},
                        "http_filters": http_filters,
                    },
                }]}],
            }],
            "clusters": [
                static_cluster("backend", backend),
                grpc_cluster("ratelimit", ratelimit),
            ],
        },
    })
}

/// A cluster of one static endpoint (also the test harness's Envoys').
pub fn static_cluster(name: &str, address: SocketAddr) -> Value {
    json!({
        "name": name,
        "connect_timeout": "1s",
        "type": "STATIC",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                "address": address.ip().to_string(),
                "port_value": address.port(),
            }}}}]}],
        },
    })
}

/// A cluster speaking HTTP/2, for gRPC.
pub fn grpc_cluster(name: &str, address: SocketAddr) -> Value {
    let mut cluster = static_cluster(name, address);
    cluster["typed_extension_protocol_options"] = json!({
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http2_protocol_options": {}},
        }
    });
    cluster
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_config_allows_the_scenarios_origin() {
        let config = filter_config();
        assert_eq!(config["defaults"]["cors"]["allow_origins"], json!([ORIGIN]));
    }
}
