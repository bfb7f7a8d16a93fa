//! The filter core's unit tests compiled to wasm32 and run under Node with
//! wasm-bindgen-test, so that arithmetic, hashing and time handling are checked where usize
//! is 32 bits.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use crate::lock::FileLock;
use crate::paths;
use crate::process::{apt_install, output, run};
use crate::wasm::Toolchain;

const TARGET: &str = "wasm32-unknown-unknown";

pub fn run_on_wasm32() -> crate::Result<()> {
    let toolchain = Toolchain::find_or_install(TARGET)?;
    let runner = ensure_test_runner()?;
    ensure_node()?;
    let mut cmd = toolchain.cargo("test", TARGET);
    cmd.args([
        "--package",
        "hardening-filter",
        "--no-default-features",
        "--lib",
    ])
    .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER", runner);
    eprintln!("xtask: the core's unit tests on {TARGET} under Node");
    run(&mut cmd)
}

/// `wasm-bindgen-test-runner` at exactly the version of the `wasm-bindgen` crate in
/// Cargo.lock (the two must match), installed under `.work/tools`.
fn ensure_test_runner() -> crate::Result<PathBuf> {
    let version = locked_version("wasm-bindgen")?;
    let root = paths::work().join("tools");
    let runner = root.join("bin").join("wasm-bindgen-test-runner");
    let installed = |runner: &PathBuf| {
        output(Command::new(runner).arg("--version")).is_some_and(|v| v.contains(&version))
    };
    if installed(&runner) {
        return Ok(runner);
    }
    let _lock = FileLock::acquire("wasm-bindgen-cli")?;
    if !installed(&runner) {
        eprintln!(
            "xtask: installing wasm-bindgen-cli {version} into {}",
            root.display()
        );
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        run(Command::new(cargo)
            .args([
                "install",
                "wasm-bindgen-cli",
                "--version",
                &version,
                "--root",
            ])
            .arg(&root))?;
    }
    Ok(runner)
}

fn ensure_node() -> crate::Result<()> {
    if output(Command::new("node").arg("--version")).is_some() {
        return Ok(());
    }
    let _lock = FileLock::acquire("apt")?;
    apt_install(&["nodejs"])
}

/// The version Cargo.lock pins for a package.
fn locked_version(package: &str) -> crate::Result<String> {
    let lock = paths::root().join("Cargo.lock");
    let text =
        fs::read_to_string(&lock).map_err(|e| format!("cannot read {}: {e}", lock.display()))?;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line == format!("name = \"{package}\"")
            && let Some(version) = lines.next().and_then(|l| l.strip_prefix("version = \""))
        {
            return Ok(version.trim_end_matches('"').to_string());
        }
    }
    Err(format!("{package} is not in Cargo.lock"))
}
