//! The filter core's unit tests compiled to wasm32-wasip1, the target the filter ships for,
//! and run under Node's WASI, so that arithmetic, hashing and time handling are checked where
//! usize is 32 bits. Nothing to install but Node (Debian's `nodejs` when there is no `node`).

use std::process::Command;

use crate::paths;
use crate::process::{ensure_program, run};
use crate::wasm::{FILTER_TARGET, Toolchain};

/// cargo's runner for the test binaries (relative to the root).
const RUNNER: &str = "xtask/wasi/test-runner.mjs";
/// The symbols Debian's wasi-libc lacks and the runner provides (see the runner).
const UNDEFINED_SYMBOLS: &str = "xtask/wasi/undefined-symbols.txt";

/// Builds the core's unit tests for wasm32-wasip1 without running them.
pub fn build_for_wasm32() -> crate::Result<()> {
    let mut cmd = cargo_test()?;
    cmd.arg("--no-run");
    run(&mut cmd)
}

/// Builds (if needed) and runs the core's unit tests on wasm32-wasip1 under Node.
pub fn run_on_wasm32() -> crate::Result<()> {
    let mut cmd = cargo_test()?;
    // A panic aborts the test binary: uncaptured, its message is printed before the abort.
    cmd.args(["--", "--nocapture"]);
    eprintln!("xtask: the core's unit tests on {FILTER_TARGET} under Node");
    run(&mut cmd)
}

fn cargo_test() -> crate::Result<Command> {
    let toolchain = Toolchain::find_or_install(FILTER_TARGET)?;
    let node = ensure_node()?;
    let root = paths::root();
    let link_arg = format!(
        "-C link-arg=--allow-undefined-file={}",
        root.join(UNDEFINED_SYMBOLS).display()
    );
    let mut cmd = toolchain.cargo_with_rustflags("test", FILTER_TARGET, &link_arg);
    cmd.args([
        "--package",
        "hardening-filter",
        "--no-default-features",
        "--lib",
        "--locked",
        "--profile",
        "wasm-test",
        "--config",
    ])
    .arg(format!(
        "target.{FILTER_TARGET}.runner = [{:?}, {:?}]",
        node,
        root.join(RUNNER).display().to_string()
    ));
    Ok(cmd)
}

/// The `node` to run, installing Debian's when there is none.
fn ensure_node() -> crate::Result<String> {
    ensure_program(
        "node",
        "nodejs",
        "the core's wasm32 tests run under Node's WASI",
    )
}
