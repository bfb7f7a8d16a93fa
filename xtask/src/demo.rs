//! `cargo xtask demo`: the sample backend and Envoy with the filter, in the foreground.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use xtask::demo_stack::{
    ADMIN_ADDR, BACKEND_ADDR, ENVOY_CONFIG, PUBLIC_PORT, RATELIMIT_ADDR, RATELIMIT_LIMITS,
};
use xtask::process;
use xtask::ratelimit::{Redis, Service};
use xtask::{envoy, paths, wasm};

pub fn run() -> xtask::Result<()> {
    let started = Instant::now();
    let (envoy_bin, backend_bin) = prepare()?;
    // The global limit's rate limit service and its Redis, stopped when dropped.
    let (_redis, _ratelimit) = start_ratelimit()?;
    let mut backend = spawn(Command::new(backend_bin).args(["--listen", BACKEND_ADDR]))?;
    let mut envoy = match spawn(Command::new(envoy_bin).current_dir(paths::root()).args([
        "-c",
        ENVOY_CONFIG,
        "--log-level",
        "warn",
        "--component-log-level",
        "wasm:info",
    ])) {
        Ok(child) => child,
        Err(e) => {
            stop(&mut backend);
            return Err(e);
        }
    };

    let (tx, rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = tx.send(());
    })
    .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))?;
    let outcome = if wait_until_listening(&mut envoy) {
        print_tour(started.elapsed());
        run_until_stopped(&rx, &mut envoy, &mut backend)
    } else {
        Err(format!(
            "Envoy is not listening on port {PUBLIC_PORT} after 30 s"
        ))
    };
    stop(&mut envoy);
    stop(&mut backend);
    eprintln!("xtask: demo stopped");
    outcome
}

/// Until Ctrl-C, or until either process exits on its own.
fn run_until_stopped(
    ctrl_c: &mpsc::Receiver<()>,
    envoy: &mut Child,
    backend: &mut Child,
) -> xtask::Result<()> {
    loop {
        if ctrl_c.recv_timeout(Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = envoy.try_wait() {
            return Err(format!("envoy exited ({status})"));
        }
        if let Ok(Some(status)) = backend.try_wait() {
            return Err(format!("sample backend exited ({status})"));
        }
    }
}

/// Builds the module and the sample backend and installs Envoy, side by side: the module's
/// final link is single-threaded, and Envoy's install is mostly download.
fn prepare() -> xtask::Result<(PathBuf, PathBuf)> {
    thread::scope(|scope| {
        let module = scope.spawn(|| wasm::ensure(&wasm::FILTER));
        let envoy = scope.spawn(envoy::ensure);
        let backend = build_backend();
        join(module)?;
        let envoy = join(envoy)?;
        Ok((envoy, backend?))
    })
}

fn join<T>(handle: thread::ScopedJoinHandle<'_, xtask::Result<T>>) -> xtask::Result<T> {
    handle
        .join()
        .unwrap_or_else(|_| Err("a build thread panicked".to_string()))
}

/// Redis (on a free port) and the rate limit service where envoy/envoy.yaml's `ratelimit`
/// cluster sends, with the demo's limits.
fn start_ratelimit() -> xtask::Result<(Redis, Service)> {
    let redis = Redis::start()?;
    let address: SocketAddr = RATELIMIT_ADDR
        .parse()
        .map_err(|e| format!("{RATELIMIT_ADDR}: {e}"))?;
    let limits = paths::root().join(RATELIMIT_LIMITS);
    let service = Service::start_on(address, &redis.url(), &limits)?;
    Ok((redis, service))
}

/// The sample backend (a crate of its own: hyper and tokio, nothing of the test harness).
fn build_backend() -> xtask::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    process::run(Command::new(&cargo).current_dir(paths::root()).args([
        "build",
        "--quiet",
        "--locked",
        "--package",
        "sample-backend",
    ]))?;
    Ok(paths::root().join("target/debug/sample-backend"))
}

fn spawn(cmd: &mut Command) -> xtask::Result<Child> {
    cmd.spawn()
        .map_err(|e| format!("cannot start {}: {e}", process::describe(cmd)))
}

/// SIGTERM, then wait: Envoy and the backend both shut down cleanly on it.
fn stop(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    let _ = child.wait();
}

/// Waits until Envoy accepts connections on the public port (its config loads the module
/// first), or exits, or 30 s pass.
fn wait_until_listening(envoy: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = SocketAddr::from(([127, 0, 0, 1], PUBLIC_PORT));
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        if let Ok(Some(_)) = envoy.try_wait() {
            return false;
        }
        thread::sleep(Duration::from_millis(100));
    }
    false
}

fn print_tour(took: Duration) {
    let listener = format!("http://localhost:{PUBLIC_PORT}");
    println!(
        "\n\
Demo running (ready {took:.0?} after `cargo xtask demo` started): Envoy with the hardening filter on {listener}, sample backend on {BACKEND_ADDR},
rate limit service (hardening-ratelimit, over Redis) on {RATELIMIT_ADDR}, Envoy admin on http://{ADMIN_ADDR}. Try:

  curl -i {listener}/users                      # through the filter to the backend
  for i in $(seq 21); do curl -s -o /dev/null -w '%{{http_code}} ' {listener}/users; done   # 20 a minute for the fleet, then 429
  curl -i -X OPTIONS {listener}/users -H 'origin: https://app.example.com' -H 'access-control-request-method: POST'
  curl -i {listener}/users -H 'origin: https://evil.example'   # 403 problem+json
  curl -i {listener}/users -H 'content-type: application/json' -d '{{\"email\":\"nope\",\"password\":\"short\"}}'   # 400
  curl -i {listener}/echo                       # what the backend received
  curl -i {listener}/boom                       # the backend's 500 with a stack trace, replaced
  curl -i {listener}/healthz                    # the filter's health endpoint, checking the backend
  curl -s http://{ADMIN_ADDR}/stats/prometheus | grep hardening

Ctrl-C stops Envoy, the backend, the rate limit service and Redis.
"
    );
}
