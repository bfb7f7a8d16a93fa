//! Per-request cost inside the module, from the native host: host calls per exchange (by
//! name) and wasmtime fuel (about one unit per Wasm instruction), for each benchmark scenario,
//! for the filter (with the benchmark's config) and for the no-op module. Deterministic, so a
//! regression shows without a load test. Run by `cargo xtask bench`.

use std::fmt::Write as _;

use serde_json::json;
use test_harness::host::{Cost, GrpcOutcome, Harness, Proxy, StreamOutcome};
use test_harness::{Request, Response};
use xtask::bench::scenarios::{self, Scenario};
use xtask::bench::variants::filter_config;
use xtask::wasm;

/// The scenario's request as the filter sees it behind the benchmark's connection manager,
/// which has `use_remote_address: true` and so appends an address to X-Forwarded-For (the
/// peer's; Envoy's own for a loopback peer like the benchmark's).
fn request(scenario: &Scenario) -> Request {
    let mut request =
        Request::new(scenario.method, scenario.path).header("x-forwarded-for", "127.0.0.1");
    for (k, v) in &scenario.headers {
        request = request.header(k, v);
    }
    request.body(scenario.body.clone().into_bytes())
}

/// The cost of the second exchange of a scenario (the first warms up the VM's allocator).
fn cost(proxy: &Proxy, scenario: &Scenario) -> Result<Cost, String> {
    let mut last = Cost::default();
    for _ in 0..2 {
        let exchange = proxy
            .request(request(scenario))
            .map_err(|e| e.to_string())?;
        if exchange.outcome() == StreamOutcome::Forwarded {
            exchange
                .respond(
                    Response::ok()
                        .header("content-type", "application/json")
                        .body("{}"),
                )
                .map_err(|e| e.to_string())?;
        }
        last = exchange.cost();
    }
    Ok(last)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("filter-cost: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    // The benchmark's config, or the one `cargo xtask bench --filter-config FILE` names.
    let config = match std::env::args_os().nth(1) {
        None => filter_config(),
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("{}: {e}", path.to_string_lossy()))?;
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.to_string_lossy()))?
        }
    };
    // The `global` route's rate limit service says OK at once: a `RateLimitResponse` with
    // `overall_code` OK (field 1, varint 1), so the cost is the filter's own.
    let filter = Harness::load(wasm::ensure(&wasm::FILTER)?)
        .config(config)
        .cluster("ratelimit")
        .on_grpc_call(|_| GrpcOutcome::reply(vec![0x08, 0x01]))
        .start()
        .map_err(|e| e.to_string())?;
    let noop = Harness::load(wasm::ensure(&wasm::NOOP)?)
        .start()
        .map_err(|e| e.to_string())?;
    let mut table = String::from(
        "\nPer-request cost inside the module (native host, second exchange of each scenario)\n\n\
         | scenario | module | host calls | fuel | host calls by name |\n| --- | --- | ---: | ---: | --- |\n",
    );
    let mut rows = Vec::new();
    for scenario in scenarios::all() {
        for (module, proxy) in [("filter", &filter), ("noop-wasm", &noop)] {
            let cost = cost(proxy, &scenario)?;
            let by_name: Vec<String> = cost
                .host_calls
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            let _ = writeln!(
                table,
                "| {} | {module} | {} | {} | {} |",
                scenario.name,
                cost.total_host_calls(),
                cost.fuel,
                by_name.join(", ")
            );
            rows.push(json!({
                "scenario": scenario.name,
                "module": module,
                "host_calls": cost.total_host_calls(),
                "fuel": cost.fuel,
                "host_calls_by_name": cost.host_calls,
            }));
        }
    }
    println!("{table}");
    let dir = xtask::bench::results_dir();
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join("cost.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    eprintln!("filter-cost: {}", path.display());
    Ok(())
}
