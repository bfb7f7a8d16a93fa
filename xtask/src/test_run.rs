//! `cargo xtask test`: every test layer. The builds run side by side (the native tests, then
//! the fuzz targets; the wasm32 modules and the core's wasm32 unit tests; Envoy's install, then
//! cargo-fuzz's): on two cores, the module's single-threaded LTO link and Envoy's download
//! leave a core free that the native build takes. Then the tests run one layer after the other,
//! and last a short fuzzing run of every target. First of all, the module graph of filter/src is
//! checked for cycles (layers.rs).

use std::process::Command;
use std::thread;

use crate::fuzz::{self, Fuzzer};
use crate::process::run;
use crate::{core_tests, envoy, layers, native, paths, wasm};

/// Seconds each fuzz target runs in `cargo xtask test`, two at a time (the whole run: about
/// `FUZZ_SECONDS * targets / 2`).
pub const FUZZ_SECONDS: u64 = 10;
const FUZZ_JOBS: usize = 2;

/// Runs every test. `extra` goes to the native `cargo test` (e.g. a test name); with it, the
/// core's wasm32 unit tests and the fuzzing run are left out.
pub fn run_all(extra: &[String]) -> crate::Result<()> {
    let complete = extra.is_empty();
    // A second: the module graph of filter/src, before anything builds.
    layers::check()?;
    let fuzzer = thread::scope(|scope| {
        let wasm = scope.spawn(|| build_wasm(complete));
        // Envoy's install takes seconds; cargo-fuzz's (a minute) then goes off the native line.
        let envoy = scope.spawn(|| {
            let bin = envoy::ensure()?;
            if complete {
                fuzz::ensure_cargo_fuzz()?;
            }
            Ok::<_, String>(bin)
        });
        // The native build finishes before the wasm line: the fuzz build takes its place.
        let native = run(native_tests().arg("--no-run"))
            .and_then(|()| complete.then(Fuzzer::build).transpose());
        join(wasm)?;
        join(envoy)?;
        native
    })?;
    run(native_tests().args(extra))?;
    // The end-to-end tests again, against the native build of the filter.
    run(native_e2e_tests().args(extra))?;
    if complete {
        core_tests::run_on_wasm32()?;
    }
    if let Some(fuzzer) = fuzzer {
        let targets = fuzz::targets()?;
        eprintln!(
            "xtask: fuzzing {} targets for {FUZZ_SECONDS} s each, {FUZZ_JOBS} at a time",
            targets.len()
        );
        let reports = fuzzer.run(&targets, FUZZ_SECONDS, FUZZ_JOBS);
        fuzz::print_table(&reports);
        fuzz::check(&reports)?;
    }
    Ok(())
}

/// Every module the tests load, published under `dist/` before the tests start (so parallel
/// test binaries find them ready), then the core's wasm32 unit tests, compiled only.
fn build_wasm(with_wasm32_units: bool) -> crate::Result<()> {
    for module in wasm::MODULES {
        wasm::ensure(module)?;
    }
    for module in native::MODULES {
        native::ensure(module)?;
    }
    if with_wasm32_units {
        core_tests::build_for_wasm32()?;
    }
    Ok(())
}

fn native_tests() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    // The Wasm build, whatever the caller's environment says (the native pass sets it).
    cmd.current_dir(paths::root())
        .env("HARDENING_BUILD", "wasm")
        .args(["test", "--workspace", "--locked"]);
    cmd
}

/// The test targets that drive a real Envoy with the filter; run a second time with
/// `HARDENING_BUILD=native` (the same scenarios against `dist/libhardening.so`).
pub const E2E_TARGETS: &[&str] = &[
    "e2e_foundation",
    "cors",
    "global_limits_envoy",
    "openapi",
    "operations",
    "rate_limit",
    "security_headers",
    "validation",
];

fn native_e2e_tests() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    // `--workspace` with the targets named: the features of every dependency resolve as for
    // the first pass (`--package test-harness` resolves them for that package alone, which
    // rebuilt wasmtime and most of the tree: minutes).
    cmd.current_dir(paths::root())
        .env("HARDENING_BUILD", "native")
        .args(["test", "--locked", "--workspace"]);
    for target in E2E_TARGETS {
        cmd.args(["--test", target]);
    }
    cmd
}

fn join<T>(handle: thread::ScopedJoinHandle<'_, crate::Result<T>>) -> crate::Result<T> {
    handle
        .join()
        .unwrap_or_else(|_| Err("a build thread panicked".to_string()))
}
