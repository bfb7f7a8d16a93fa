use std::path::{Path, PathBuf};

/// The workspace root (this crate lives in `<root>/xtask`).
pub fn root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Where built artifacts are published: `dist/`.
pub fn dist() -> PathBuf {
    root().join("dist")
}

/// The filter module users load into Envoy.
pub fn filter_wasm() -> PathBuf {
    dist().join("hardening.wasm")
}

/// Scratch space for installs, locks and runtime files (git-ignored).
pub fn work() -> PathBuf {
    root().join(".work")
}
