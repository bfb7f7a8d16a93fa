//! Envoy's memory per variant, at 1 and at 4 workers, after a warm-up: admin `/memory`
//! (tcmalloc's `allocated` and `heap_size`) and the process's resident memory, which also
//! counts what V8 maps outside tcmalloc (each worker VM's Wasm memory, compiled code).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::scenarios::Scenario;
use super::variants::{self, ALL, Variant};
use super::{Options, Pinning, RunningEnvoy, check_scenario, http_get, wrk};

/// The numbers of workers memory is measured at.
pub const WORKERS: [u32; 2] = [1, 4];
/// How long wrk sends each scenario before memory is read (its connections reach every
/// worker).
const WARM_UP: Duration = Duration::from_secs(2);

/// One variant's Envoy after its warm-up.
#[derive(Debug, Clone)]
pub struct Memory {
    pub variant: Variant,
    pub workers: u32,
    /// Bytes the application holds (tcmalloc `allocated`).
    pub allocated: u64,
    /// Bytes tcmalloc got from the system (`heap_size`).
    pub heap_size: u64,
    /// The process's resident memory (`VmRSS`), if it could be read.
    pub resident: Option<u64>,
    /// From the process start to the listener being up.
    pub start_seconds: f64,
}

/// What the measurement starts Envoys with.
pub struct Setup<'a> {
    pub envoy_bin: &'a Path,
    pub backend: SocketAddr,
    pub filter_config: &'a serde_json::Value,
    pub pinning: &'a Pinning,
    pub dir: &'a Path,
    /// The rate limit service the `global` route asks.
    pub ratelimit: SocketAddr,
    pub scenarios: &'a [Scenario],
    pub wrk_bin: &'a Path,
    pub options: &'a Options,
}

pub fn measure(setup: &Setup<'_>) -> crate::Result<Vec<Memory>> {
    let mut rows = Vec::new();
    for workers in WORKERS {
        for variant in ALL {
            eprintln!("bench: memory · {} · {workers} workers", variant.name());
            rows.push(one(setup, *variant, workers)?);
        }
    }
    Ok(rows)
}

fn one(setup: &Setup<'_>, variant: Variant, workers: u32) -> crate::Result<Memory> {
    let bootstrap =
        variants::bootstrap(variant, setup.backend, setup.ratelimit, setup.filter_config);
    let envoy = RunningEnvoy::start(
        setup.envoy_bin,
        bootstrap,
        variant,
        setup.pinning,
        setup.dir,
        workers,
    )?;
    let warm_up = Options {
        duration: WARM_UP,
        ..setup.options.clone()
    };
    for scenario in setup.scenarios {
        check_scenario(&envoy, scenario)?;
        wrk::run(
            setup.wrk_bin,
            setup.pinning,
            envoy.listener,
            scenario,
            &warm_up,
            setup.dir,
        )?;
    }
    let (status, body) =
        http_get(envoy.admin, "/memory").map_err(|e| format!("admin /memory: {e}"))?;
    if status != 200 {
        return Err(format!("admin /memory answered {status}"));
    }
    let (allocated, heap_size) =
        parse_memory(&body).ok_or_else(|| format!("admin /memory said something else: {body}"))?;
    Ok(Memory {
        variant,
        workers,
        allocated,
        heap_size,
        resident: envoy.resident_bytes(),
        start_seconds: envoy.started_in.as_secs_f64(),
    })
}

/// `allocated` and `heap_size` from admin `/memory` (numbers as JSON strings).
fn parse_memory(body: &str) -> Option<(u64, u64)> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let field = |name: &str| value[name].as_str()?.parse().ok();
    Some((field("allocated")?, field("heap_size")?))
}

#[cfg(test)]
mod tests {
    use super::parse_memory;

    #[test]
    fn reads_envoys_memory_page() {
        let body = r#"{"allocated": "44562320", "heap_size": "88080384", "pageheap_unmapped": "0", "pageheap_free": "0", "total_thread_cache": "1"}"#;
        assert_eq!(parse_memory(body), Some((44_562_320, 88_080_384)));
        assert_eq!(parse_memory("{}"), None);
    }
}
