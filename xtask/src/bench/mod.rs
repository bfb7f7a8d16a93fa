//! `cargo xtask bench`: the filter's cost per request, side by side with no filter, Envoy's
//! native filters, the smallest Wasm filter and the smallest dynamic module, in one run with
//! the variants alternated; then each variant's memory.

pub mod helmet;
pub mod memory;
pub mod report;
pub mod scenarios;
pub mod variants;
mod wrk;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::{apt_install, output, run};
use crate::{envoy, envoy_admin, paths, wasm};

use scenarios::Scenario;
use variants::Variant;

/// How a benchmark run is set up.
#[derive(Debug, Clone)]
pub struct Options {
    pub rounds: usize,
    pub duration: Duration,
    pub connections: u32,
    /// Run only scenarios whose name contains this.
    pub only: Option<String>,
    /// The `filter` variant's configuration from this JSON file instead of
    /// `variants::filter_config()` (to measure one policy at a time).
    pub filter_config: Option<PathBuf>,
    /// Measure each variant's memory at 1 and 4 workers after the rounds.
    pub memory: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            rounds: 3,
            duration: Duration::from_secs(5),
            connections: 32,
            only: None,
            filter_config: None,
            memory: true,
        }
    }
}

impl Options {
    pub fn parse(args: &[String]) -> crate::Result<Self> {
        let mut options = Self::default();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--rounds" => {
                    options.rounds = value()?.parse().map_err(|e| format!("--rounds: {e}"))?
                }
                "--seconds" => {
                    options.duration = Duration::from_secs(
                        value()?.parse().map_err(|e| format!("--seconds: {e}"))?,
                    )
                }
                "--connections" => {
                    options.connections = value()?
                        .parse()
                        .map_err(|e| format!("--connections: {e}"))?
                }
                "--only" => options.only = Some(value()?.clone()),
                "--filter-config" => options.filter_config = Some(PathBuf::from(value()?)),
                "--no-memory" => options.memory = false,
                other => {
                    return Err(format!(
                        "unknown bench option {other} (--rounds N, --seconds N, --connections N, --only NAME, --filter-config FILE, --no-memory)"
                    ));
                }
            }
        }
        Ok(options)
    }

    /// The `filter` variant's configuration.
    pub fn filter_config(&self) -> crate::Result<serde_json::Value> {
        match &self.filter_config {
            None => Ok(variants::filter_config()),
            Some(path) => {
                let text = fs::read_to_string(path)
                    .map_err(|e| format!("--filter-config {}: {e}", path.display()))?;
                serde_json::from_str(&text)
                    .map_err(|e| format!("--filter-config {}: {e}", path.display()))
            }
        }
    }
}

/// The limit the `global` route's service counts (Limitador's format): never reached.
const GLOBAL_LIMITS: &str = "- namespace: bench\n  name: fleet\n  max_value: 1000000000\n  \
seconds: 60\n  conditions: [\"descriptors[0].limit == 'fleet'\"]\n  variables: [\"descriptors[0].route\"]\n";

/// Where results are written.
pub fn results_dir() -> PathBuf {
    paths::root().join("target").join("bench")
}

pub fn run_all(options: &Options) -> crate::Result<()> {
    wasm::ensure(&wasm::FILTER)?;
    wasm::ensure(&wasm::NOOP)?;
    crate::native::ensure(&crate::native::NOOP_DYNAMIC)?;
    crate::native::ensure(&crate::native::FILTER)?;
    let envoy_bin = envoy::ensure()?;
    let wrk_bin = ensure_wrk()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run(Command::new(&cargo).current_dir(paths::root()).args([
        "build",
        "--quiet",
        "--release",
        "--package",
        "sample-backend",
    ]))?;

    let pinning = Pinning::detect();
    let mut backend = Background::spawn(
        Command::new(paths::root().join("target/release/sample-backend"))
            .args(["--listen", "127.0.0.1:0"]),
    )?;
    let backend_addr = backend.first_line_address()?;
    // The `global` scenario's rate limit service, counting in its own Redis.
    let redis = crate::ratelimit::Redis::start()?;
    let limits = results_dir().join("ratelimit-limits.yaml");
    fs::create_dir_all(results_dir()).map_err(|e| format!("cannot create target/bench: {e}"))?;
    fs::write(&limits, GLOBAL_LIMITS).map_err(|e| format!("{}: {e}", limits.display()))?;
    let service = crate::ratelimit::Service::start_binary(
        crate::ratelimit::build_service(true)?,
        crate::ratelimit::free_address()?,
        &redis.url(),
        &limits,
    )?;

    let dir = results_dir();
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let scenarios: Vec<Scenario> = scenarios::all()
        .into_iter()
        .filter(|s| {
            options
                .only
                .as_ref()
                .is_none_or(|only| s.name.contains(only.as_str()))
        })
        .collect();
    let filter_config = options.filter_config()?;
    let mut envoys = Vec::new();
    for variant in variants::ALL {
        envoys.push(RunningEnvoy::start(
            &envoy_bin,
            variants::bootstrap(*variant, backend_addr, service.address(), &filter_config),
            *variant,
            &pinning,
            &dir,
            1,
        )?);
    }
    for envoy in &envoys {
        for scenario in &scenarios {
            check_scenario(envoy, scenario)?;
        }
    }

    let mut samples = Vec::new();
    for round in 0..options.rounds {
        for scenario in &scenarios {
            // Rotate the order each round so no variant always runs first (or last).
            for i in 0..envoys.len() {
                let envoy = &envoys[(i + round) % envoys.len()];
                eprintln!(
                    "bench: round {} · {} · {}",
                    round + 1,
                    scenario.name,
                    envoy.variant.name()
                );
                let result = wrk::run(&wrk_bin, &pinning, envoy.listener, scenario, options, &dir)?;
                samples.push(report::Sample {
                    variant: envoy.variant,
                    scenario: scenario.name,
                    round,
                    result,
                });
            }
        }
    }
    drop(envoys);
    let memory = if options.memory {
        memory::measure(&memory::Setup {
            envoy_bin: &envoy_bin,
            backend: backend_addr,
            filter_config: &filter_config,
            pinning: &pinning,
            dir: &dir,
            ratelimit: service.address(),
            scenarios: &scenarios,
            wrk_bin: &wrk_bin,
            options,
        })?
    } else {
        Vec::new()
    };
    backend.stop();

    let summary = report::summarise(&samples, &scenarios);
    let meta = report::Meta::collect(options, &pinning);
    println!("{}", report::table(&summary, &memory, &meta));
    report::write_json(&dir.join("bench.json"), &summary, &samples, &memory, &meta)?;
    report::write_svg(&dir.join("bench.svg"), &summary)?;
    eprintln!(
        "bench: results in {} and {}",
        dir.join("bench.json").display(),
        dir.join("bench.svg").display()
    );
    Ok(())
}

fn ensure_wrk() -> crate::Result<PathBuf> {
    if output(Command::new("wrk").arg("--version")).is_some()
        || Command::new("wrk").arg("-v").output().is_ok()
    {
        return Ok(PathBuf::from("wrk"));
    }
    let _lock = crate::lock::FileLock::acquire("apt")?;
    apt_install(&["wrk"])?;
    Ok(PathBuf::from("wrk"))
}

/// Envoy on one core and the load generator on another, when there are two.
#[derive(Debug, Clone)]
pub struct Pinning {
    pub envoy_cpu: Option<usize>,
    pub load_cpu: Option<usize>,
}

impl Pinning {
    fn detect() -> Self {
        let cpus = std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1);
        let taskset = output(Command::new("taskset").arg("--version")).is_some();
        if cpus >= 2 && taskset {
            Self {
                envoy_cpu: Some(0),
                load_cpu: Some(1),
            }
        } else {
            Self {
                envoy_cpu: None,
                load_cpu: None,
            }
        }
    }

    pub fn command(cpu: Option<usize>, program: &std::path::Path) -> Command {
        match cpu {
            Some(cpu) => {
                let mut cmd = Command::new("taskset");
                cmd.arg("-c").arg(cpu.to_string()).arg(program);
                cmd
            }
            None => Command::new(program),
        }
    }
}

/// A child process killed on drop.
struct Background {
    child: Child,
}

impl Background {
    fn spawn(cmd: &mut Command) -> crate::Result<Self> {
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", crate::process::describe(cmd)))?;
        Ok(Self { child })
    }

    /// The backend prints `sample-backend listening on ADDR` first.
    fn first_line_address(&mut self) -> crate::Result<SocketAddr> {
        let stdout = self.child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("backend: {e}"))?;
        line.rsplit(' ')
            .next()
            .and_then(|a| a.trim().parse().ok())
            .ok_or_else(|| format!("backend printed {line:?}"))
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One variant's Envoy, pinned, with `--concurrency` its number of workers.
struct RunningEnvoy {
    variant: Variant,
    process: Background,
    listener: SocketAddr,
    admin: SocketAddr,
    /// From the process start to the listener being up (V8 compiles a Wasm module first).
    started_in: Duration,
}

impl RunningEnvoy {
    fn start(
        envoy_bin: &std::path::Path,
        bootstrap: serde_json::Value,
        variant: Variant,
        pinning: &Pinning,
        dir: &std::path::Path,
        workers: u32,
    ) -> crate::Result<Self> {
        let config_path = dir.join(format!("envoy-{}.json", variant.name()));
        let admin_path = dir.join(format!("admin-{}-{workers}.txt", variant.name()));
        let _ = fs::remove_file(&admin_path);
        fs::write(&config_path, bootstrap.to_string())
            .map_err(|e| format!("cannot write {}: {e}", config_path.display()))?;
        let mut cmd = Pinning::command(pinning.envoy_cpu, envoy_bin);
        cmd.env(crate::native::SEARCH_PATH_VAR, paths::dist())
            .arg("-c")
            .arg(&config_path)
            .args([
                "--concurrency",
                &workers.to_string(),
                "--disable-hot-restart",
                "--log-level",
                "error",
            ])
            .arg("--admin-address-path")
            .arg(&admin_path);
        let process = Background::spawn(&mut cmd)?;
        let spawned = Instant::now();
        // V8 takes seconds to compile a module of a few MB, more with several workers.
        let deadline = spawned + Duration::from_secs(90);
        loop {
            if Instant::now() > deadline {
                return Err(format!("{} Envoy did not start", variant.name()));
            }
            std::thread::sleep(Duration::from_millis(50));
            let Some(admin) = envoy_admin::read_admin_address(&admin_path) else {
                continue;
            };
            if let Some(listener) = listener_address(admin) {
                return Ok(Self {
                    variant,
                    process,
                    listener,
                    admin,
                    started_in: spawned.elapsed(),
                });
            }
        }
    }
}

impl RunningEnvoy {
    /// The process's resident memory (`VmRSS`), which also counts what V8 maps outside
    /// tcmalloc (Wasm memories, compiled code).
    fn resident_bytes(&self) -> Option<u64> {
        let status =
            fs::read_to_string(format!("/proc/{}/status", self.process.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kilobytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kilobytes * 1024)
    }
}

impl Drop for RunningEnvoy {
    fn drop(&mut self) {
        self.process.stop();
    }
}

fn listener_address(admin: SocketAddr) -> Option<SocketAddr> {
    let (status, body) = http_get(admin, envoy_admin::LISTENERS_PATH).ok()?;
    if status != 200 {
        return None;
    }
    envoy_admin::first_listener_address(body.as_bytes())
}

/// A minimal HTTP/1.1 exchange (`Connection: close`), for the admin endpoint and checks.
pub fn http_request(addr: SocketAddr, raw: &str) -> std::io::Result<(u16, String, String)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(raw.as_bytes())?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Ok((status, head.to_string(), body.to_string()))
}

fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let (status, head, body) = http_request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"),
    )?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Ok((status, if chunked { dechunk(&body) } else { body }))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// Each scenario must succeed on each variant before anything is measured: a benchmark of
/// error responses would measure the wrong thing.
fn check_scenario(envoy: &RunningEnvoy, scenario: &Scenario) -> crate::Result<()> {
    let (status, head, _) = http_request(envoy.listener, &scenario.to_http1(envoy.listener))
        .map_err(|e| format!("{} · {}: {e}", scenario.name, envoy.variant.name()))?;
    if !scenario.expected_status.contains(&status) {
        return Err(format!(
            "{} on {} answered {status}, expected {:?}:\n{head}",
            scenario.name,
            envoy.variant.name(),
            scenario.expected_status
        ));
    }
    Ok(())
}
