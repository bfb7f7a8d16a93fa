//! Building wasm32 modules on machines where rustup cannot download a wasm32 standard library.
//!
//! Preference order: an installed rustup wasm32 std (the ordinary path on a laptop), then
//! Debian's rustc-web toolchain building std from source (`-Zbuild-std`), installing it with
//! apt-get if needed. `rustup target add` is never called: here it would hang.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::lock::FileLock;
use crate::paths;
use crate::process::{apt_install, output, run};

/// A file the Debian toolchain path runs or reads, and the Debian package that provides it.
#[derive(Debug, Clone, Copy)]
pub struct DebianFile {
    pub path: &'static str,
    pub package: &'static str,
}

const DEBIAN_CARGO: DebianFile = DebianFile {
    path: "/usr/bin/cargo",
    package: "cargo-web",
};
const DEBIAN_RUSTC: DebianFile = DebianFile {
    path: "/usr/bin/rustc",
    package: "rustc-web",
};
const DEBIAN_RUSTDOC: &str = "/usr/bin/rustdoc";
const DEBIAN_STD_SOURCE: DebianFile = DebianFile {
    path: "/usr/lib/rustlib/src/rust/library",
    package: "rust-web-src",
};
/// The wasm linker, named explicitly: rustc's wasm32 targets call `rust-lld` by default, and
/// Debian's rustc-web does not ship one. `wasm-ld` from the LLVM that rustc-web is built on
/// (LLVM 22) links what it emits; rustc infers the wasm linker flavor from the name.
pub const DEBIAN_WASM_LD: DebianFile = DebianFile {
    path: "/usr/bin/wasm-ld-22",
    package: "lld-22",
};
/// The C library Rust's std links against on `wasm32-wasip1` (rustup ships its own copy).
const WASI_LIBC: DebianFile = DebianFile {
    path: "/usr/lib/wasm32-wasi",
    package: "wasi-libc",
};

/// The files the Debian path needs for `target`.
fn debian_files(target: &str) -> Vec<DebianFile> {
    let mut files = vec![
        DEBIAN_CARGO,
        DEBIAN_RUSTC,
        DEBIAN_STD_SOURCE,
        DEBIAN_WASM_LD,
    ];
    if target == FILTER_TARGET {
        files.push(WASI_LIBC);
    }
    files
}

/// Debian packages that give a Rust toolchain able to build std for wasm32 from source.
pub fn debian_packages(target: &str) -> Vec<&'static str> {
    debian_files(target).iter().map(|f| f.package).collect()
}

/// The files of the Debian path that are missing for `target`.
fn debian_missing(target: &str) -> Vec<DebianFile> {
    debian_files(target)
        .into_iter()
        .filter(|f| !Path::new(f.path).exists())
        .collect()
}

/// RUSTFLAGS for the Debian path: the linker by its path (never `rust-lld`), and wasi-libc for
/// the WASI target.
pub fn debian_rustflags(target: &str) -> String {
    let mut flags = format!("-C linker={}", DEBIAN_WASM_LD.path);
    if target == FILTER_TARGET {
        flags.push_str(&format!(" -L {}", WASI_LIBC.path));
    }
    flags
}

/// The wasm32 target the filter is built for; Envoy implements the WASI calls Rust's std uses.
pub const FILTER_TARGET: &str = "wasm32-wasip1";

/// A way to compile for a wasm32 target.
#[derive(Debug, Clone)]
pub enum Toolchain {
    /// A rustup toolchain that has the target's std installed.
    Rustup,
    /// Debian's `/usr/bin/cargo` building std from source.
    DebianBuildStd,
}

impl Toolchain {
    /// Finds a toolchain for `target`, installing Debian's when none is present.
    pub fn find_or_install(target: &str) -> crate::Result<Self> {
        if rustup_has_target(target) {
            return Ok(Self::Rustup);
        }
        if debian_missing(target).is_empty() {
            return Ok(Self::DebianBuildStd);
        }
        let _lock = FileLock::acquire("apt")?;
        let missing = debian_missing(target);
        if !missing.is_empty() {
            let packages: Vec<&str> = missing.iter().map(|f| f.package).collect();
            apt_install(&packages)?;
        }
        let missing = debian_missing(target);
        if missing.is_empty() {
            return Ok(Self::DebianBuildStd);
        }
        let files: Vec<String> = missing
            .iter()
            .map(|f| format!("{} (Debian package {})", f.path, f.package))
            .collect();
        Err(format!(
            "no wasm32 toolchain: rustup has no `{target}` standard library, and Debian's \
             toolchain is incomplete after installing it: missing {}. With internet, \
             `rustup target add {target}` is the other way",
            files.join(", ")
        ))
    }

    /// A `cargo` command set up to build for `target` with this toolchain; `subcommand` is
    /// `build` or `test`.
    pub fn cargo(&self, subcommand: &str, target: &str) -> Command {
        self.cargo_with_rustflags(subcommand, target, "")
    }

    /// Like [`Toolchain::cargo`], with `extra` appended to the Debian path's RUSTFLAGS (the
    /// rustup path needs none: its wasm32 std comes with a complete libc).
    pub fn cargo_with_rustflags(&self, subcommand: &str, target: &str, extra: &str) -> Command {
        let mut cmd;
        match self {
            Self::Rustup => {
                cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
                cmd.arg(subcommand).arg("--target").arg(target);
            }
            Self::DebianBuildStd => {
                cmd = Command::new(DEBIAN_CARGO.path);
                // The Debian cargo must run the Debian rustc, not rustup's proxy; every tool
                // is named by its path, so PATH plays no part (no `rust-lld` is looked up).
                for var in ["RUSTC_WRAPPER", "RUSTUP_TOOLCHAIN", "CARGO"] {
                    cmd.env_remove(var);
                }
                cmd.env("RUSTC", DEBIAN_RUSTC.path)
                    .env("RUSTDOC", DEBIAN_RUSTDOC)
                    .env("RUSTC_BOOTSTRAP", "1")
                    .env(
                        "RUSTFLAGS",
                        format!("{} {extra}", debian_rustflags(target)).trim_end(),
                    );
                cmd.arg(subcommand)
                    .arg("--target")
                    .arg(target)
                    .arg("-Zbuild-std=std,panic_abort");
            }
        }
        for var in [
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET",
            "CARGO_ENCODED_RUSTFLAGS",
        ] {
            cmd.env_remove(var);
        }
        if matches!(self, Self::Rustup) {
            cmd.env_remove("RUSTFLAGS");
        }
        cmd.arg("--target-dir").arg(wasm_target_dir());
        cmd.current_dir(paths::root());
        cmd
    }
}

fn rustup_has_target(target: &str) -> bool {
    // Asking for the libdir never downloads anything; the std rlib tells whether it's there.
    let Some(libdir) =
        output(Command::new("rustc").args(["--print", "target-libdir", "--target", target]))
    else {
        return false;
    };
    fs::read_dir(libdir.trim()).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("libstd-"))
    })
}

/// wasm32 builds get their own target directory: their flags differ from native builds, and
/// tests that build the module run while `cargo test` holds the main one.
pub fn wasm_target_dir() -> PathBuf {
    paths::root().join("target").join("wasm")
}

/// A cdylib crate of this workspace built to a module under `dist/`.
#[derive(Debug)]
pub struct Module {
    /// Cargo package name.
    pub package: &'static str,
    /// Library name (the `.wasm` file cargo writes).
    pub lib_name: &'static str,
    /// Published file name under `dist/`.
    pub dist_name: &'static str,
    /// Directories and files whose changes make the module stale, relative to the root.
    pub sources: &'static [&'static str],
    /// Run through binaryen's `wasm-opt -Oz` before it is published (the shipped filter).
    pub optimise: bool,
}

pub const FILTER: Module = Module {
    package: "hardening-filter",
    lib_name: "hardening",
    dist_name: "hardening.wasm",
    sources: &["filter", "Cargo.lock", "Cargo.toml"],
    optimise: true,
};

/// A test fixture that exercises host features on request (`fixtures/probe`).
pub const PROBE: Module = Module {
    package: "probe-module",
    lib_name: "probe",
    dist_name: "probe.wasm",
    sources: &["fixtures/probe", "Cargo.lock", "Cargo.toml"],
    optimise: false,
};

/// The benchmarks' floor: a module that touches each request once (`fixtures/noop`).
pub const NOOP: Module = Module {
    package: "noop-module",
    lib_name: "noop",
    dist_name: "noop.wasm",
    sources: &["fixtures/noop", "Cargo.lock", "Cargo.toml"],
    optimise: false,
};

/// Every module the tests load.
pub const MODULES: &[&Module] = &[&FILTER, &PROBE];

/// Builds the module if its published copy is missing or older than its sources, and returns
/// the published path. Safe to call from parallel test processes.
pub fn ensure(module: &Module) -> crate::Result<PathBuf> {
    let published = paths::dist().join(module.dist_name);
    if is_fresh(module, &published) {
        return Ok(published);
    }
    let _lock = FileLock::acquire(&format!("wasm-{}", module.dist_name))?;
    if is_fresh(module, &published) {
        return Ok(published);
    }
    build(module)
}

/// Builds the module (release, size-optimised, stripped) and publishes it with its sha256.
pub fn build(module: &Module) -> crate::Result<PathBuf> {
    let toolchain = Toolchain::find_or_install(FILTER_TARGET)?;
    let mut cmd = toolchain.cargo("build", FILTER_TARGET);
    cmd.args(["--release", "--lib", "--package", module.package]);
    eprintln!("xtask: building {} ({toolchain:?})", module.dist_name);
    run(&mut cmd)?;
    let built = wasm_target_dir()
        .join(FILTER_TARGET)
        .join("release")
        .join(format!("{}.wasm", module.lib_name));
    if !module.optimise {
        return publish(&built, module.dist_name);
    }
    let optimised = built.with_extension("opt.wasm");
    wasm_opt(&built, &optimised)?;
    publish(&optimised, module.dist_name)
}

/// binaryen's optimiser, from Debian's `binaryen` package (installed when missing).
const WASM_OPT: DebianFile = DebianFile {
    path: "/usr/bin/wasm-opt",
    package: "binaryen",
};

/// The features the module uses; binaryen refuses instructions of features it was not told of
/// (the stripped module has no `target_features` section to detect them from).
const WASM_OPT_FEATURES: &[&str] = &[
    "--enable-bulk-memory",
    "--enable-sign-ext",
    "--enable-nontrapping-float-to-int",
    "--enable-mutable-globals",
    "--enable-simd",
    "--enable-multivalue",
    "--enable-reference-types",
];

/// `wasm-opt -Oz`: about 14% smaller (3.93 MB to 3.38 MB measured 2026-12-04) and about 3%
/// less fuel per request, for about 30 s. `-Oz` rather than `-O3`: smaller and no slower here.
fn wasm_opt(input: &Path, output_path: &Path) -> crate::Result<()> {
    if !Path::new(WASM_OPT.path).exists() {
        let _lock = FileLock::acquire("apt")?;
        if !Path::new(WASM_OPT.path).exists() {
            apt_install(&[WASM_OPT.package])?;
        }
    }
    if !Path::new(WASM_OPT.path).exists() {
        return Err(format!(
            "{} is missing after installing Debian's {}",
            WASM_OPT.path, WASM_OPT.package
        ));
    }
    eprintln!("xtask: wasm-opt -Oz {}", input.display());
    let mut cmd = Command::new(WASM_OPT.path);
    cmd.arg("-Oz")
        .args(WASM_OPT_FEATURES)
        .args(["--strip-debug", "--strip-producers"])
        .arg(input)
        .arg("-o")
        .arg(output_path);
    run(&mut cmd)
}

/// Copies a built module to `dist/` atomically and writes `<name>.sha256` beside it.
pub(crate) fn publish(built: &Path, dist_name: &str) -> crate::Result<PathBuf> {
    let bytes = fs::read(built).map_err(|e| format!("cannot read {}: {e}", built.display()))?;
    let dist = paths::dist();
    fs::create_dir_all(&dist).map_err(|e| format!("cannot create {}: {e}", dist.display()))?;
    let published = dist.join(dist_name);
    let digest = hex(&Sha256::digest(&bytes));
    write_atomically(
        &dist.join(format!("{dist_name}.sha256")),
        format!("{digest}  {dist_name}\n").as_bytes(),
    )?;
    write_atomically(&published, &bytes)?;
    eprintln!(
        "xtask: {} ({} bytes, sha256 {digest})",
        published.display(),
        bytes.len()
    );
    Ok(published)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> crate::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, bytes).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_fresh(module: &Module, published: &Path) -> bool {
    sources_older_than(module.sources, published)
}

/// Whether `published` exists and nothing under `sources` (relative to the root) changed
/// after it was written.
pub(crate) fn sources_older_than(sources: &[&str], published: &Path) -> bool {
    let Some(built_at) = modified(published) else {
        return false;
    };
    let root = paths::root();
    sources
        .iter()
        .all(|source| newest(&root.join(source)).is_none_or(|t| t <= built_at))
}

fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The newest modification time of a file or of anything under a directory.
fn newest(path: &Path) -> Option<SystemTime> {
    let meta = fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    fs::read_dir(path)
        .ok()?
        .flatten()
        .filter_map(|entry| newest(&entry.path()))
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(cmd: &Command, name: &str) -> Option<String> {
        cmd.get_envs()
            .find(|(key, _)| *key == name)
            .and_then(|(_, value)| value.map(|v| v.to_string_lossy().into_owned()))
    }

    #[test]
    fn debian_builds_name_their_linker_and_never_rust_lld() {
        for (target, flags) in [
            (
                "wasm32-wasip1",
                "-C linker=/usr/bin/wasm-ld-22 -L /usr/lib/wasm32-wasi",
            ),
            ("wasm32-unknown-unknown", "-C linker=/usr/bin/wasm-ld-22"),
        ] {
            let cmd = Toolchain::DebianBuildStd.cargo("build", target);
            assert_eq!(cmd.get_program(), "/usr/bin/cargo");
            assert_eq!(env_of(&cmd, "RUSTFLAGS").as_deref(), Some(flags));
            assert_eq!(env_of(&cmd, "RUSTC").as_deref(), Some("/usr/bin/rustc"));
            assert_eq!(env_of(&cmd, "RUSTC_BOOTSTRAP").as_deref(), Some("1"));
            assert_eq!(env_of(&cmd, "PATH"), None, "PATH is left as it is");
            let args: Vec<String> = cmd
                .get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            assert_eq!(
                args[..4],
                ["build", "--target", target, "-Zbuild-std=std,panic_abort"]
            );
        }
    }

    #[test]
    fn each_debian_file_names_the_package_that_provides_it() {
        let packages = debian_packages(FILTER_TARGET);
        assert_eq!(
            packages,
            [
                "cargo-web",
                "rustc-web",
                "rust-web-src",
                "lld-22",
                "wasi-libc"
            ]
        );
        assert_eq!(
            debian_packages("wasm32-unknown-unknown"),
            ["cargo-web", "rustc-web", "rust-web-src", "lld-22"]
        );
    }
}
