//! Native builds: Envoy dynamic modules, shared libraries Envoy loads in-process through its C
//! ABI. Built with the host's cargo for the host's target in the `native` profile (release at
//! opt-level 3, panics unwind so that a hook can catch them before they reach Envoy), and
//! published under `dist/` as `lib<name>.so` with its sha256. Envoy finds them through
//! `ENVOY_DYNAMIC_MODULES_SEARCH_PATH` ([`SEARCH_PATH_VAR`]).

use std::path::PathBuf;
use std::process::Command;

use crate::lock::FileLock;
use crate::process::run;
use crate::{paths, wasm};

/// The environment variable that tells Envoy where `dynamic_module_config.name` is looked up.
pub const SEARCH_PATH_VAR: &str = "ENVOY_DYNAMIC_MODULES_SEARCH_PATH";

#[derive(Debug, Clone, Copy)]
pub struct NativeModule {
    /// Cargo package name.
    pub package: &'static str,
    /// Library name: Envoy's `dynamic_module_config.name`, the file `lib<name>.so`.
    pub lib_name: &'static str,
    /// Cargo features to build it with (its default features stay on).
    pub features: &'static [&'static str],
    /// Directories and files whose changes make the module stale, relative to the root.
    pub sources: &'static [&'static str],
}

/// The floor of the benchmark's native variants: one response header (`fixtures/noop-dynamic`).
pub const NOOP_DYNAMIC: NativeModule = NativeModule {
    package: "noop-dynamic",
    lib_name: "noop_dynamic",
    features: &[],
    sources: &["fixtures/noop-dynamic", "Cargo.lock", "Cargo.toml"],
};

/// The filter's native build (`filter/src/native/`): `dist/libhardening.so`.
pub const FILTER: NativeModule = NativeModule {
    package: "hardening-filter",
    lib_name: "hardening",
    features: &["native"],
    sources: &[
        "filter/src",
        "filter/Cargo.toml",
        "Cargo.lock",
        "Cargo.toml",
    ],
};

/// Every native module the tests load.
pub const MODULES: &[&NativeModule] = &[&NOOP_DYNAMIC, &FILTER];

impl NativeModule {
    pub fn file_name(&self) -> String {
        format!("lib{}.so", self.lib_name)
    }
}

/// Builds the module if its published copy is missing or older than its sources, and returns
/// the published path. Safe to call from parallel test processes.
pub fn ensure(module: &NativeModule) -> crate::Result<PathBuf> {
    let published = paths::dist().join(module.file_name());
    if wasm::sources_older_than(module.sources, &published) {
        return Ok(published);
    }
    let _lock = FileLock::acquire(&format!("native-{}", module.lib_name))?;
    if wasm::sources_older_than(module.sources, &published) {
        return Ok(published);
    }
    build(module)
}

/// Builds the module with the host's cargo and publishes it.
pub fn build(module: &NativeModule) -> crate::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = paths::root().join("target");
    eprintln!("xtask: building {}", module.file_name());
    // The host's own build: no target or flags meant for another (wasm.rs sets them), in the
    // main target directory, whose native dependencies it shares with the tests.
    run(Command::new(&cargo)
        .current_dir(paths::root())
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .args(["build", "--quiet", "--profile", "native", "--package"])
        .arg(module.package)
        .args(module.features.iter().flat_map(|f| ["--features", f])))?;
    let built = target_dir.join("native").join(module.file_name());
    wasm::publish(&built, &module.file_name())
}
