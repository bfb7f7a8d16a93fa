//! `cargo xtask demo`: the sample backend and Envoy with the filter, in the foreground.

use std::process::{Child, Command};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use xtask::demo_stack::{ADMIN_ADDR, BACKEND_ADDR, ENVOY_CONFIG, PUBLIC_PORT};
use xtask::process;
use xtask::{envoy, paths, wasm};

pub fn run() -> xtask::Result<()> {
    wasm::ensure(&wasm::FILTER)?;
    let envoy_bin = envoy::ensure()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    process::run(Command::new(&cargo).current_dir(paths::root()).args([
        "build",
        "--quiet",
        "--package",
        "test-harness",
        "--bin",
        "sample-backend",
    ]))?;
    let backend_bin = paths::root().join("target/debug/sample-backend");

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
    thread::sleep(Duration::from_millis(800));
    print_tour();

    // Run until Ctrl-C, or until either process exits on its own.
    let outcome = loop {
        if rx.recv_timeout(Duration::from_millis(200)).is_ok() {
            break Ok(());
        }
        if let Ok(Some(status)) = envoy.try_wait() {
            break Err(format!("envoy exited ({status})"));
        }
        if let Ok(Some(status)) = backend.try_wait() {
            break Err(format!("sample backend exited ({status})"));
        }
    };
    stop(&mut envoy);
    stop(&mut backend);
    eprintln!("xtask: demo stopped");
    outcome
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

fn print_tour() {
    let listener = format!("http://localhost:{PUBLIC_PORT}");
    println!(
        "\n\
Demo running: Envoy with the hardening filter on {listener}, sample backend on {BACKEND_ADDR},
Envoy admin on http://{ADMIN_ADDR}. Try:

  curl -i {listener}/users                      # through the filter to the backend
  curl -i -X OPTIONS {listener}/users -H 'origin: https://app.example.com' -H 'access-control-request-method: POST'
  curl -i {listener}/users -H 'origin: https://evil.example'   # 403 problem+json
  curl -i {listener}/users -H 'content-type: application/json' -d '{{\"email\":\"nope\",\"password\":\"short\"}}'   # 400
  curl -i {listener}/echo                       # what the backend received
  curl -i {listener}/boom                       # the backend's 500 with a stack trace, replaced
  curl -i {listener}/healthz                    # the filter's health endpoint, checking the backend
  curl -s http://{ADMIN_ADDR}/stats/prometheus | grep hardening

Ctrl-C stops Envoy and the backend.
"
    );
}
