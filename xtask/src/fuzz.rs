//! `cargo xtask fuzz [--seconds N] [--jobs N] [TARGET...]`: the libFuzzer targets in `fuzz/`
//! (cargo-fuzz's layout, a workspace of its own), built by rustup's nightly with
//! `cargo fuzz build`, then each run for a while. cargo-fuzz is installed into `.work/tools`
//! when that exact binary is missing; the builds land in `target/fuzz`, the corpora the runs
//! grow in `target/fuzz/corpus/<target>` (next to the committed seeds in
//! `fuzz/corpus/<target>`, which every run replays first), crashes in
//! `target/fuzz/artifacts/<target>/`, each run's output in `target/fuzz/logs/<target>.log`.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::lock::FileLock;
use crate::paths;
use crate::process::{describe, output, run};

/// The cargo-fuzz release installed (builds with the stable toolchain here, `--locked`).
pub const CARGO_FUZZ_VERSION: &str = "0.13.2";
/// Seconds per target for `cargo xtask fuzz`.
pub const DEFAULT_SECONDS: u64 = 60;
/// Longest a single input may take before libFuzzer reports it as a hang (a crash here).
const UNIT_TIMEOUT_SECONDS: u64 = 10;
/// Build flags, the same for every build so that nothing is rebuilt between commands.
/// No sanitizer: the filter and the code it calls are safe Rust (AddressSanitizer finds
/// memory errors, which safe Rust does not make), and without it the build is cheaper and the
/// targets run faster. 16 codegen units (cargo-fuzz defaults to 1 in release): the build uses
/// both cores.
const BUILD_FLAGS: &[&str] = &["--sanitizer", "none", "--codegen-units", "16"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub seconds: u64,
    /// Targets run side by side.
    pub jobs: usize,
    /// Empty: every target.
    pub targets: Vec<String>,
}

impl Options {
    pub fn parse(args: &[String]) -> crate::Result<Self> {
        let mut options = Options {
            seconds: DEFAULT_SECONDS,
            jobs: 1,
            targets: Vec::new(),
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut number = |name: &str| -> crate::Result<u64> {
                let value = args
                    .next()
                    .ok_or_else(|| format!("{name} needs a number"))?;
                value
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{name} {value}: a whole number above 0"))
            };
            match arg.as_str() {
                "--seconds" => options.seconds = number("--seconds")?,
                "--jobs" => {
                    options.jobs = usize::try_from(number("--jobs")?).unwrap_or(usize::MAX);
                }
                flag if flag.starts_with('-') => {
                    return Err(format!(
                        "unknown option {flag}: cargo xtask fuzz [--seconds N] [--jobs N] [TARGET...]"
                    ));
                }
                target => options.targets.push(target.to_string()),
            }
        }
        Ok(options)
    }
}

/// `cargo xtask fuzz`: build every target, run the chosen ones, print what they did; an error
/// if any crashed (or hung, or ran out of memory), naming the input that did it.
pub fn run_all(options: &Options) -> crate::Result<()> {
    let known = targets()?;
    for target in &options.targets {
        if !known.contains(target) {
            return Err(format!(
                "no fuzz target `{target}`; the targets are {}",
                known.join(", ")
            ));
        }
    }
    let chosen = if options.targets.is_empty() {
        known
    } else {
        options.targets.clone()
    };
    let fuzzer = Fuzzer::build()?;
    let reports = fuzzer.run(&chosen, options.seconds, options.jobs);
    print_table(&reports);
    check(&reports)
}

/// The built targets, ready to run.
pub struct Fuzzer {
    toolchain_bin: PathBuf,
    binaries: PathBuf,
}

impl Fuzzer {
    /// Installs cargo-fuzz if needed and builds every target (`cargo fuzz build`).
    pub fn build() -> crate::Result<Self> {
        let toolchain_bin = nightly_bin()?;
        let cargo_fuzz = ensure_cargo_fuzz()?;
        let root = paths::root();
        // cargo-fuzz has no `--locked`: check the committed lock file first.
        let mut locked = nightly(&toolchain_bin, Command::new(toolchain_bin.join("cargo")));
        locked
            .args([
                "metadata",
                "--locked",
                "--format-version",
                "1",
                "--manifest-path",
            ])
            .arg(fuzz_dir().join("Cargo.toml"))
            .stdout(Stdio::null());
        run(&mut locked).map_err(|e| {
            format!("{e}: fuzz/Cargo.lock must list what fuzz/Cargo.toml needs (update it with `cargo +nightly update --manifest-path fuzz/Cargo.toml --workspace`)")
        })?;
        let started = Instant::now();
        let mut build = nightly(&toolchain_bin, Command::new(&cargo_fuzz));
        build
            .current_dir(&root)
            .args(["fuzz", "build", "--fuzz-dir"])
            .arg(fuzz_dir())
            .arg("--target-dir")
            .arg(target_dir())
            .args(BUILD_FLAGS);
        eprintln!("xtask: building the fuzz targets (cargo +nightly fuzz build)");
        run(&mut build)?;
        eprintln!(
            "xtask: fuzz targets built in {:.0} s",
            started.elapsed().as_secs_f64()
        );
        let host = output(Command::new(toolchain_bin.join("rustc")).arg("-vV"))
            .and_then(|v| {
                v.lines()
                    .find_map(|l| l.strip_prefix("host: "))
                    .map(str::to_string)
            })
            .ok_or("cannot read the nightly rustc's host triple (`rustc -vV`)")?;
        Ok(Self {
            toolchain_bin,
            binaries: target_dir().join(host).join("release"),
        })
    }

    /// Runs `targets` for `seconds` each, `jobs` at a time, and reports on each.
    pub fn run(&self, targets: &[String], seconds: u64, jobs: usize) -> Vec<Report> {
        let next = AtomicUsize::new(0);
        let reports = Mutex::new(Vec::new());
        thread::scope(|scope| {
            for _ in 0..jobs.clamp(1, targets.len().max(1)) {
                scope.spawn(|| {
                    while let Some(target) = targets.get(next.fetch_add(1, Ordering::SeqCst)) {
                        let report = self.run_one(target, seconds);
                        eprintln!("xtask: fuzz {}", report.line());
                        if let Ok(mut reports) = reports.lock() {
                            reports.push(report);
                        }
                    }
                });
            }
        });
        let mut reports = reports.into_inner().unwrap_or_default();
        reports.sort_by_key(|r| targets.iter().position(|t| *t == r.target));
        reports
    }

    fn run_one(&self, target: &str, seconds: u64) -> Report {
        let started = Instant::now();
        let mut report = Report {
            target: target.to_string(),
            seconds,
            wall: Duration::ZERO,
            executions: None,
            per_second: None,
            new_units: None,
            corpus: 0,
            failure: None,
        };
        let corpus = target_dir().join("corpus").join(target);
        let artifacts = target_dir().join("artifacts").join(target);
        let logs = target_dir().join("logs");
        let log = logs.join(format!("{target}.log"));
        let prepared = [&corpus, &artifacts, &logs]
            .iter()
            .try_for_each(fs::create_dir_all)
            .and_then(|()| File::create(&log))
            .and_then(|file| Ok((file.try_clone()?, file)));
        let (stdout, stderr) = match prepared {
            Ok(files) => files,
            Err(e) => {
                report.failure = Some(Failure::message(format!(
                    "cannot prepare {}: {e}",
                    target_dir().display()
                )));
                return report;
            }
        };
        // New inputs go to the first corpus directory; the committed seeds are read only.
        let mut cmd = nightly(
            &self.toolchain_bin,
            Command::new(self.binaries.join(target)),
        );
        cmd.current_dir(paths::root()).arg(&corpus);
        let seeds = fuzz_dir().join("corpus").join(target);
        if seeds.is_dir() {
            cmd.arg(seeds);
        }
        cmd.arg(format!("-max_total_time={seconds}"))
            .arg("-print_final_stats=1")
            .arg(format!("-timeout={UNIT_TIMEOUT_SECONDS}"))
            .arg(format!("-artifact_prefix={}/", artifacts.display()));
        let dict = fuzz_dir().join("dicts").join(format!("{target}.dict"));
        if dict.exists() {
            cmd.arg(format!("-dict={}", dict.display()));
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr));
        let status = cmd.status();
        report.wall = started.elapsed();
        let text = fs::read_to_string(&log).unwrap_or_default();
        report.executions = stat(&text, "stat::number_of_executed_units:");
        report.per_second = stat(&text, "stat::average_exec_per_sec:");
        report.new_units = stat(&text, "stat::new_units_added:");
        report.corpus = fs::read_dir(&corpus).map_or(0, |d| d.count());
        report.failure = match status {
            Ok(status) if status.success() => None,
            Ok(status) => Some(Failure::from_log(&text, &log, status.to_string())),
            Err(e) => Some(Failure::message(format!(
                "cannot run {}: {e}",
                describe(&cmd)
            ))),
        };
        report
    }
}

/// What one target did.
#[derive(Debug, Clone)]
pub struct Report {
    pub target: String,
    pub seconds: u64,
    pub wall: Duration,
    pub executions: Option<u64>,
    pub per_second: Option<u64>,
    pub new_units: Option<u64>,
    /// Inputs in its grown corpus after the run.
    pub corpus: usize,
    pub failure: Option<Failure>,
}

impl Report {
    fn line(&self) -> String {
        let executions = self.executions.map_or("?".into(), thousands);
        let per_second = self.per_second.map_or("?".into(), thousands);
        let verdict = match &self.failure {
            None => "ok".to_string(),
            Some(failure) => format!("FAILED: {}", failure.headline),
        };
        format!(
            "{}: {executions} executions in {:.0} s ({per_second}/s): {verdict}",
            self.target,
            self.wall.as_secs_f64()
        )
    }
}

/// A crash, hang or out-of-memory: what libFuzzer said, and the input that did it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub headline: String,
    /// The panic message and libFuzzer's summary, from the log.
    pub details: Vec<String>,
    pub artifact: Option<PathBuf>,
    pub log: Option<PathBuf>,
}

impl Failure {
    fn message(text: String) -> Self {
        Self {
            headline: text,
            details: Vec::new(),
            artifact: None,
            log: None,
        }
    }

    fn from_log(text: &str, log: &Path, status: String) -> Self {
        let lines: Vec<&str> = text.lines().collect();
        let mut details = Vec::new();
        // The panic: where, and its message (up to the backtrace or libFuzzer's report).
        if let Some(at) = lines.iter().position(|l| l.contains("panicked at")) {
            details.extend(
                lines
                    .iter()
                    .skip(at)
                    .take(12)
                    .take_while(|l| {
                        !(l.starts_with("stack backtrace")
                            || l.starts_with("note:")
                            || l.starts_with("=="))
                    })
                    .map(|l| l.to_string()),
            );
        }
        details.extend(
            lines
                .iter()
                .filter(|l| l.starts_with("SUMMARY:") || l.starts_with("==") && l.contains("ERROR"))
                .map(|l| l.to_string()),
        );
        let artifact = lines
            .iter()
            .find_map(|l| l.split_once("Test unit written to ").map(|(_, p)| p.trim()))
            .map(PathBuf::from);
        let headline = lines
            .iter()
            .find_map(|l| l.strip_prefix("SUMMARY: libFuzzer: "))
            .map_or_else(|| format!("exited with {status}"), str::to_string);
        Self {
            headline,
            details,
            artifact,
            log: Some(log.to_path_buf()),
        }
    }
}

/// Prints the summary table.
pub fn print_table(reports: &[Report]) {
    println!();
    println!(
        "{:<16} {:>7} {:>12} {:>9} {:>9} {:>7}  result",
        "target", "seconds", "executions", "exec/s", "new units", "corpus"
    );
    for r in reports {
        let result = match &r.failure {
            None => "ok".to_string(),
            Some(f) => format!("FAILED ({})", f.headline),
        };
        println!(
            "{:<16} {:>7} {:>12} {:>9} {:>9} {:>7}  {result}",
            r.target,
            r.seconds,
            r.executions.map_or("?".into(), thousands),
            r.per_second.map_or("?".into(), thousands),
            r.new_units.map_or("?".into(), |n| n.to_string()),
            r.corpus,
        );
    }
    let total: u64 = reports.iter().filter_map(|r| r.executions).sum();
    println!("{:<16} {:>7} {:>12}", "total", "", thousands(total));
}

/// An error naming each failure: its message, the crashing input and how to replay it.
pub fn check(reports: &[Report]) -> crate::Result<()> {
    let failed: Vec<&Report> = reports.iter().filter(|r| r.failure.is_some()).collect();
    if failed.is_empty() {
        return Ok(());
    }
    let mut message = format!("{} fuzz target(s) failed", failed.len());
    for report in failed {
        let Some(failure) = &report.failure else {
            continue;
        };
        message.push_str(&format!("\n\n{}: {}", report.target, failure.headline));
        for line in &failure.details {
            message.push_str(&format!("\n    {line}"));
        }
        if let Some(artifact) = &failure.artifact {
            message.push_str(&format!(
                "\n  input: {}\n  replay: cargo +nightly fuzz run --fuzz-dir fuzz --target-dir target/fuzz {} {} {}",
                artifact.display(),
                BUILD_FLAGS.join(" "),
                report.target,
                artifact.display()
            ));
        }
        if let Some(log) = &failure.log {
            message.push_str(&format!("\n  log: {}", log.display()));
        }
    }
    Err(message)
}

/// The targets, from `fuzz/Cargo.toml`'s `[[bin]]` names, in order.
pub fn targets() -> crate::Result<Vec<String>> {
    let manifest = fuzz_dir().join("Cargo.toml");
    let text = fs::read_to_string(&manifest)
        .map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
    let mut in_bin = false;
    let mut names = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if in_bin
            && let Some(name) = line
                .strip_prefix("name")
                .map(str::trim_start)
                .and_then(|l| l.strip_prefix('='))
        {
            names.push(name.trim().trim_matches('"').to_string());
        }
    }
    if names.is_empty() {
        return Err(format!("no [[bin]] targets in {}", manifest.display()));
    }
    Ok(names)
}

fn fuzz_dir() -> PathBuf {
    paths::root().join("fuzz")
}

fn target_dir() -> PathBuf {
    paths::root().join("target").join("fuzz")
}

/// The directory of rustup's nightly `cargo` and `rustc`.
fn nightly_bin() -> crate::Result<PathBuf> {
    let cargo = output(Command::new("rustup").args(["which", "--toolchain", "nightly", "cargo"]))
        .map(|p| PathBuf::from(p.trim()))
        .filter(|p| p.is_file());
    cargo
        .as_deref()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            "fuzzing needs rustup's nightly toolchain (libFuzzer's instrumentation is unstable): `rustup toolchain install nightly`".to_string()
        })
}

/// A command that runs with the nightly toolchain: its `cargo` and `rustc` first in PATH
/// (cargo-fuzz runs `cargo`, `rustc` by name), whatever toolchain ran xtask.
fn nightly(toolchain_bin: &Path, mut cmd: Command) -> Command {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![toolchain_bin.to_path_buf()];
    dirs.extend(std::env::split_paths(&path));
    if let Ok(path) = std::env::join_paths(dirs) {
        cmd.env("PATH", path);
    }
    for var in [
        "CARGO",
        "RUSTC",
        "RUSTDOC",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("RUSTUP_TOOLCHAIN", "nightly");
    cmd
}

/// `.work/tools/bin/cargo-fuzz`, installed with `cargo install --locked` unless that exact
/// binary already runs as the pinned version.
pub fn ensure_cargo_fuzz() -> crate::Result<PathBuf> {
    let root = paths::work().join("tools");
    let bin = root.join("bin").join("cargo-fuzz");
    let expected = format!("cargo-fuzz {CARGO_FUZZ_VERSION}");
    let installed =
        || output(Command::new(&bin).arg("--version")).is_some_and(|v| v.trim() == expected);
    if installed() {
        return Ok(bin);
    }
    let _lock = FileLock::acquire("cargo-fuzz")?;
    if !installed() {
        eprintln!("xtask: installing {expected} into {}", root.display());
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        run(Command::new(cargo)
            .args(["install", "cargo-fuzz", "--version", CARGO_FUZZ_VERSION])
            .args(["--locked", "--force", "--root"])
            .arg(&root))?;
    }
    if installed() {
        Ok(bin)
    } else {
        Err(format!(
            "{} does not run as {expected} after `cargo install`",
            bin.display()
        ))
    }
}

fn stat(log: &str, name: &str) -> Option<u64> {
    log.lines()
        .rev()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().parse().ok())
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn options_parse() {
        assert_eq!(
            Options::parse(&args("--seconds 75 engine routes")),
            Ok(Options {
                seconds: 75,
                jobs: 1,
                targets: vec!["engine".into(), "routes".into()]
            })
        );
        assert_eq!(Options::parse(&[]).map(|o| o.seconds), Ok(DEFAULT_SECONDS));
        assert_eq!(Options::parse(&args("--jobs 2")).map(|o| o.jobs), Ok(2));
        assert!(Options::parse(&args("--seconds")).is_err());
        assert!(Options::parse(&args("--seconds 0")).is_err());
        assert!(Options::parse(&args("--fast")).is_err());
    }

    #[test]
    fn the_manifest_lists_every_target_with_its_source() {
        let targets = targets().expect("targets");
        assert!(targets.len() >= 8, "{targets:?}");
        for target in &targets {
            let source = fuzz_dir().join("fuzz_targets").join(format!("{target}.rs"));
            assert!(source.is_file(), "{}", source.display());
            let seeds = fuzz_dir().join("corpus").join(target);
            assert!(
                fs::read_dir(&seeds).is_ok_and(|d| d.count() > 0),
                "no seeds in {}",
                seeds.display()
            );
        }
    }

    #[test]
    fn a_crash_is_read_from_the_log() {
        let log = "\
INFO: Running with entropic power schedule (0xFF, 100).
thread '<unnamed>' (826) panicked at fuzz_targets/query.rs:40:43:
the config compiles: ConfigError
stack backtrace:
==826== ERROR: libFuzzer: deadly signal
SUMMARY: libFuzzer: deadly signal
MS: 2 ChangeBit-CopyPart-; base unit: 0000
artifact_prefix='t/'; Test unit written to t/crash-da39a3ee
Base64: 
stat::number_of_executed_units: 4431
stat::average_exec_per_sec:     0
";
        let failure = Failure::from_log(log, Path::new("x.log"), "exit status: 1".into());
        assert_eq!(failure.headline, "deadly signal");
        assert_eq!(failure.artifact, Some(PathBuf::from("t/crash-da39a3ee")));
        assert_eq!(
            failure.details.first().map(String::as_str),
            Some("thread '<unnamed>' (826) panicked at fuzz_targets/query.rs:40:43:")
        );
        assert_eq!(
            failure.details.get(1).map(String::as_str),
            Some("the config compiles: ConfigError")
        );
        assert_eq!(stat(log, "stat::number_of_executed_units:"), Some(4431));
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(12), "12");
    }
}
