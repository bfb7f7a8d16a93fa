//! What fleet-wide (global) rate limits run against: Redis (Debian's `redis-server`, installed
//! when missing) and the rate limit service of this repository (`hardening-ratelimit`,
//! ratelimit-service/), each a child process on a free local port, stopped when dropped. The
//! end-to-end tests, `cargo xtask demo` and the benchmark start them the same way.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::lock::FileLock;
use crate::paths;
use crate::process::{ensure_program, run};

/// How long a process may take to be ready.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// `target/debug/hardening-ratelimit`, built now (cargo decides whether anything is stale).
/// Safe to call from parallel test processes.
pub fn ensure_service() -> crate::Result<PathBuf> {
    build_service(false)
}

/// The service built in debug (tests, the demo) or release (the benchmark, where its own
/// latency is part of what a global limit costs).
pub fn build_service(release: bool) -> crate::Result<PathBuf> {
    let _lock = FileLock::acquire("ratelimit-service")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    // `--workspace` with the binary named: its dependencies get the features the test run's
    // workspace build gave them, and are reused rather than built again for this package.
    build.current_dir(paths::root()).args([
        "build",
        "--quiet",
        "--locked",
        "--workspace",
        "--bin",
        "hardening-ratelimit",
    ]);
    if release {
        build.arg("--release");
    }
    run(&mut build)?;
    let profile = if release { "release" } else { "debug" };
    let binary = paths::root()
        .join("target")
        .join(profile)
        .join("hardening-ratelimit");
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(format!("no {} after building it", binary.display()))
    }
}

/// A port free now on 127.0.0.1 (taken again by the child; tests run on one machine).
fn free_port() -> crate::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// A free address on 127.0.0.1.
pub fn free_address() -> crate::Result<SocketAddr> {
    Ok(SocketAddr::from(([127, 0, 0, 1], free_port()?)))
}

/// A Redis server of its own, without persistence, on a port of its own.
pub struct Redis {
    program: String,
    port: u16,
    child: Option<Child>,
}

impl Redis {
    pub fn start() -> crate::Result<Self> {
        let program = ensure_program(
            "redis-server",
            "redis-server",
            "Redis is the store of the rate limit service (global limits)",
        )?;
        let mut redis = Self {
            program,
            port: free_port()?,
            child: None,
        };
        redis.restart()?;
        Ok(redis)
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops it (its data is gone).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it (again) on the same port, empty; returns once it answers PING.
    pub fn restart(&mut self) -> crate::Result<()> {
        self.stop();
        let port = self.port.to_string();
        let child = Command::new(&self.program)
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.program))?;
        self.child = Some(child);
        let deadline = Instant::now() + READY_WITHIN;
        while Instant::now() < deadline {
            if self.pong() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!("redis-server on port {port} did not answer PING"))
    }

    fn pong(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        let mut answer = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut answer).is_ok()
            && &answer == b"+PONG\r\n"
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `hardening-ratelimit` serving the RLS protocol over gRPC, counting in a Redis.
pub struct Service {
    binary: PathBuf,
    redis_url: String,
    limits: PathBuf,
    address: SocketAddr,
    child: Option<Child>,
}

impl Service {
    /// Starts the service with the limits file (Limitador's format) against `redis_url`, on
    /// a free port.
    pub fn start(redis_url: &str, limits: &Path) -> crate::Result<Self> {
        Self::start_on(free_address()?, redis_url, limits)
    }

    /// [`Service::start`] on a given address (the demo's, where its Envoy config sends).
    pub fn start_on(address: SocketAddr, redis_url: &str, limits: &Path) -> crate::Result<Self> {
        Self::start_binary(ensure_service()?, address, redis_url, limits)
    }

    /// [`Service::start_on`] with a given build of the service ([`build_service`]).
    pub fn start_binary(
        binary: PathBuf,
        address: SocketAddr,
        redis_url: &str,
        limits: &Path,
    ) -> crate::Result<Self> {
        let mut service = Self {
            binary,
            redis_url: redis_url.to_string(),
            limits: limits.to_path_buf(),
            address,
            child: None,
        };
        service.restart()?;
        Ok(service)
    }

    /// Where it serves gRPC.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it (again) on the same address; returns once it listens and has reached Redis
    /// (until then it answers UNAVAILABLE).
    pub fn restart(&mut self) -> crate::Result<()> {
        self.stop();
        let mut child = Command::new(&self.binary)
            .args(["--listen", &self.address.to_string()])
            .args(["--redis", &self.redis_url])
            .arg("--limits")
            .arg(&self.limits)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.binary.display()))?;
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        self.child = Some(child);
        let (Some(stdout), Some(stderr)) = (stdout, stderr) else {
            return Err("the service's output is gone".into());
        };
        let listening = watch(stdout, "listening on ", false);
        let connected = watch(stderr, "connected to Redis", true);
        let deadline = Instant::now() + READY_WITHIN;
        for (what, signal) in [("listen", listening), ("reach Redis", connected)] {
            let left = deadline.saturating_duration_since(Instant::now());
            if signal.recv_timeout(left).is_err() {
                return Err(format!(
                    "hardening-ratelimit on {} did not {what} within {READY_WITHIN:?}",
                    self.address
                ));
            }
        }
        Ok(())
    }
}

/// Reads a child's output on a thread (forwarded to this process's stderr when `echo`),
/// signalling the first line that contains `marker`.
fn watch(
    output: impl Read + Send + 'static,
    marker: &'static str,
    echo: bool,
) -> std::sync::mpsc::Receiver<()> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            if echo {
                eprintln!("{line}");
            }
            if line.contains(marker) {
                let _ = sender.send(());
            }
        }
    });
    receiver
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}
