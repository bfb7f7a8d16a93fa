//! docker-compose.yml cannot run here (no Docker engine); check statically that it runs the
//! same stack as the native demo: same Envoy config, same public port, same backend address,
//! the wasm where the config expects it, and that the config passes `envoy --mode validate`.

use serde_json::Value;
use test_harness::envoy::{for_each_wasm_filter, read_yaml, validate};
use xtask::demo_stack::{BACKEND_ADDR, ENVOY_CONFIG, PUBLIC_PORT};
use xtask::paths;

fn compose() -> Value {
    read_yaml(&paths::root().join("docker-compose.yml")).expect("docker-compose.yml parses")
}

fn envoy_yaml() -> Value {
    read_yaml(&paths::root().join(ENVOY_CONFIG)).expect("envoy.yaml parses")
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn envoy_service_mounts_the_demo_config_and_publishes_the_demo_port() {
    let compose = compose();
    let envoy = &compose["services"]["envoy"];
    assert_eq!(envoy["build"]["target"], "envoy");
    let workdir = envoy["working_dir"].as_str().expect("working_dir");
    let command = strings(&envoy["command"]);
    let config_arg = command
        .windows(2)
        .find(|w| w[0] == "-c")
        .map(|w| w[1])
        .expect("envoy command has -c");
    assert_eq!(
        config_arg, ENVOY_CONFIG,
        "compose runs the demo's Envoy config"
    );
    let mount = format!("./{ENVOY_CONFIG}:{workdir}/{ENVOY_CONFIG}:ro");
    assert_eq!(strings(&envoy["volumes"]), [mount.as_str()]);
    assert_eq!(
        strings(&envoy["ports"]),
        [format!("{PUBLIC_PORT}:{PUBLIC_PORT}").as_str()]
    );

    let listener_port = &envoy_yaml()["static_resources"]["listeners"][0]["address"]["socket_address"]
        ["port_value"];
    assert_eq!(listener_port.as_u64(), Some(u64::from(PUBLIC_PORT)));
}

#[test]
fn the_image_puts_the_wasm_where_the_config_loads_it() {
    let compose = compose();
    let workdir = compose["services"]["envoy"]["working_dir"]
        .as_str()
        .expect("working_dir");
    let mut envoy = envoy_yaml();
    let mut filenames = Vec::new();
    for_each_wasm_filter(&mut envoy, |f| {
        filenames
            .push(f["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"].clone());
    });
    assert_eq!(filenames, [Value::from("dist/hardening.wasm")]);
    let dockerfile = std::fs::read_to_string(paths::root().join("Dockerfile")).expect("Dockerfile");
    let copy = format!("COPY --from=wasm /out/dist/hardening.wasm {workdir}/dist/hardening.wasm");
    assert!(dockerfile.contains(&copy), "Dockerfile lacks `{copy}`");
    assert!(dockerfile.contains("FROM envoyproxy/envoy:v1.40-latest AS envoy"));
    assert!(dockerfile.contains("rustup target add wasm32-wasip1"));
}

#[test]
fn backend_listens_where_the_config_sends_requests() {
    let compose = compose();
    let backend = &compose["services"]["backend"];
    assert_eq!(backend["build"]["target"], "backend");
    assert_eq!(backend["network_mode"], "service:envoy");
    assert_eq!(strings(&backend["command"]), ["--listen", BACKEND_ADDR]);
    // The image builds the sample backend's own crate (no wasm runtime) and runs its binary.
    let dockerfile = std::fs::read_to_string(paths::root().join("Dockerfile")).expect("Dockerfile");
    for line in [
        "RUN cargo build --locked --release --package sample-backend",
        "COPY --from=backend-build /src/target/release/sample-backend /usr/local/bin/sample-backend",
        "ENTRYPOINT [\"/usr/local/bin/sample-backend\"]",
    ] {
        assert!(dockerfile.contains(line), "Dockerfile lacks `{line}`");
    }
    let manifest = std::fs::read_to_string(paths::root().join("sample-backend/Cargo.toml"))
        .expect("the sample-backend crate");
    assert!(manifest.contains("name = \"sample-backend\""));
    assert!(
        !manifest.contains("wasmtime"),
        "the backend builds without a wasm runtime"
    );
    assert!(paths::root().join("sample-backend/src/main.rs").exists());

    let envoy = envoy_yaml();
    let cluster = envoy["static_resources"]["clusters"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "backend"))
        .expect("backend cluster");
    let address = &cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
        ["socket_address"];
    assert_eq!(
        format!(
            "{}:{}",
            address["address"].as_str().unwrap_or(""),
            address["port_value"]
        ),
        BACKEND_ADDR
    );
}

#[test]
fn the_envoy_config_passes_envoy_validate() {
    // Compose runs the same file from a working dir laid out like the repository root.
    xtask::wasm::ensure(&xtask::wasm::FILTER).expect("wasm builds");
    let (passed, output) =
        validate(std::path::Path::new(ENVOY_CONFIG), &paths::root()).expect("envoy runs");
    assert!(passed, "envoy --mode validate failed:\n{output}");
    assert!(
        output.contains(&format!("configuration '{ENVOY_CONFIG}' OK")),
        "{output}"
    );
}

#[test]
fn the_rate_limit_service_listens_where_the_config_asks_with_the_demo_limits() {
    use xtask::demo_stack::{RATELIMIT_ADDR, RATELIMIT_LIMITS, REDIS_ADDR};
    let compose = compose();
    let service = &compose["services"]["ratelimit"];
    assert_eq!(service["build"]["target"], "ratelimit");
    assert_eq!(service["network_mode"], "service:envoy");
    let limits = format!("/srv/hardening/{RATELIMIT_LIMITS}");
    let redis_url = format!("redis://{REDIS_ADDR}");
    assert_eq!(
        strings(&service["command"]),
        [
            "--listen",
            RATELIMIT_ADDR,
            "--redis",
            redis_url.as_str(),
            "--limits",
            limits.as_str()
        ]
    );
    let mount = format!("./{RATELIMIT_LIMITS}:{limits}:ro");
    assert_eq!(strings(&service["volumes"]), [mount.as_str()]);
    let redis = &compose["services"]["redis"];
    assert_eq!(redis["network_mode"], "service:envoy");
    let port = REDIS_ADDR.rsplit(':').next().expect("port");
    assert!(
        strings(&redis["command"])
            .windows(2)
            .any(|w| w == ["--port", port])
    );
    let dockerfile = std::fs::read_to_string(paths::root().join("Dockerfile")).expect("Dockerfile");
    for line in [
        "RUN cargo build --locked --release --package hardening-ratelimit",
        "ENTRYPOINT [\"/usr/local/bin/hardening-ratelimit\"]",
    ] {
        assert!(dockerfile.contains(line), "Dockerfile lacks `{line}`");
    }

    let envoy = envoy_yaml();
    let cluster = envoy["static_resources"]["clusters"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "ratelimit"))
        .expect("ratelimit cluster");
    let address = &cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
        ["socket_address"];
    assert_eq!(
        format!(
            "{}:{}",
            address["address"].as_str().unwrap_or(""),
            address["port_value"]
        ),
        RATELIMIT_ADDR
    );
    // The demo's limits file is one the service accepts, and names the filter's limit.
    let text = std::fs::read_to_string(paths::root().join(RATELIMIT_LIMITS)).expect("limits");
    assert!(text.contains("namespace: hardening") && text.contains("name: fleet"));
}
