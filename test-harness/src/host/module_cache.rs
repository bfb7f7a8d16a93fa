//! Compiling a module once: in memory per process, and on disk across test processes
//! (Cranelift takes seconds; deserialising takes milliseconds).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use wasmtime::{Config, Engine, Module};

use super::error::{HarnessError, Result};

fn engine() -> Result<&'static Engine> {
    static ENGINE: OnceLock<std::result::Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let mut config = Config::new();
            config.consume_fuel(true);
            Engine::new(&config).map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| HarnessError::Load(e.clone()))
}

/// The engine and the compiled module for a `.wasm` file.
pub fn load(path: &Path) -> Result<(Engine, Module)> {
    type ByPathAndDigest = HashMap<(PathBuf, Vec<u8>), Module>;
    static MODULES: OnceLock<Mutex<ByPathAndDigest>> = OnceLock::new();
    let engine = engine()?;
    let bytes =
        fs::read(path).map_err(|e| HarnessError::Load(format!("{}: {e}", path.display())))?;
    let key = (path.to_path_buf(), digest(&bytes));
    let modules = MODULES.get_or_init(Default::default);
    let mut modules = modules.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(module) = modules.get(&key) {
        return Ok((engine.clone(), module.clone()));
    }
    let module = compile_cached(engine, &bytes, &key.1)?;
    modules.insert(key, module.clone());
    Ok((engine.clone(), module))
}

fn digest(bytes: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).to_vec()
}

fn compile_cached(engine: &Engine, bytes: &[u8], digest: &[u8]) -> Result<Module> {
    let name: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let dir = xtask::paths::root().join("target").join("harness-cache");
    let file = dir.join(format!("{name}-wasmtime{}.cwasm", wasmtime_version()));
    if file.exists() {
        // SAFETY: the file was written by `Module::serialize` of this same wasmtime build (the
        // name carries the version and the module's digest) into the project's target dir.
        if let Ok(module) = unsafe { Module::deserialize_file(engine, &file) } {
            return Ok(module);
        }
    }
    let module = Module::new(engine, bytes).map_err(|e| HarnessError::Load(format!("{e:#}")))?;
    if let Ok(serialized) = module.serialize() {
        let _ = fs::create_dir_all(&dir);
        let tmp = file.with_extension(format!("tmp{}", std::process::id()));
        if fs::write(&tmp, serialized).is_ok() {
            let _ = fs::rename(&tmp, &file);
        }
    }
    Ok(module)
}

fn wasmtime_version() -> &'static str {
    // Bumped with the wasmtime dependency: serialized modules are only valid for one version.
    "48"
}
