//! Real processes for the tests: Debian's redis-server (installed if missing, as xtask installs
//! Debian packages) and the service binary, each killed when dropped.

#![allow(dead_code)] // each test file uses part of this

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3::rate_limit_descriptor::Entry;
use envoy_types::pb::envoy::service::ratelimit::v3::RateLimitRequest;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_client::RateLimitServiceClient;
use tonic::transport::Channel;

const REDIS_SERVER: &str = "/usr/bin/redis-server";
const REDIS_PACKAGE: &str = "redis-server";

/// The workspace's root (this crate's parent directory).
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// `/usr/bin/redis-server`, installing Debian's package first if it does not run. Under
/// `.work/locks/apt`, the lock xtask's installs take: concurrent test binaries and xtask
/// never run apt-get at the same time.
pub fn redis_server() -> &'static str {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    let checked = CHECKED.get_or_init(|| {
        if runs(REDIS_SERVER) {
            return Ok(());
        }
        let _lock = apt_lock()?;
        if !runs(REDIS_SERVER) {
            apt_install(REDIS_PACKAGE)?;
        }
        if runs(REDIS_SERVER) {
            Ok(())
        } else {
            Err(format!(
                "no runnable {REDIS_SERVER} after installing Debian's {REDIS_PACKAGE}"
            ))
        }
    });
    if let Err(e) = checked {
        panic!("these tests need Redis: {e}");
    }
    REDIS_SERVER
}

fn runs(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// An exclusive lock on `.work/locks/apt`, released when the file is dropped.
fn apt_lock() -> Result<File, String> {
    let dir = workspace().join(".work").join("locks");
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join("apt");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    file.lock()
        .map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
    Ok(file)
}

/// `apt-get update && apt-get install -y PACKAGE`, as root or through passwordless sudo.
fn apt_install(package: &str) -> Result<(), String> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let apt = |args: &[&str]| {
        let mut cmd = if root {
            Command::new("apt-get")
        } else {
            let mut sudo = Command::new("sudo");
            sudo.args(["-n", "apt-get"]);
            sudo
        };
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    eprintln!("installing Debian's {package}");
    for args in [
        &["update", "-qq"][..],
        &["install", "-y", "-qq", "--no-install-recommends", package][..],
    ] {
        let status = apt(args).status().map_err(|e| {
            format!("cannot run apt-get: {e}; install it by hand: apt-get install -y {package}")
        })?;
        if !status.success() {
            return Err(format!(
                "apt-get {} failed ({status}); install it by hand: apt-get install -y {package}",
                args.join(" ")
            ));
        }
    }
    Ok(())
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A redis-server on a loopback port, without persistence; killed when dropped.
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
}

impl Redis {
    /// Starts one on a free port and waits for it to answer PING.
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    /// Starts one on `port` (e.g. the port of one stopped before: it comes back empty).
    pub fn start_on(port: u16) -> Self {
        let child = Command::new(redis_server())
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let redis = Self {
            child: Some(child),
            port,
        };
        redis.wait_for_pong();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn wait_for_pong(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.command("PING").is_some_and(|r| r.starts_with("+PONG")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not answer PING", self.port);
    }

    /// Sends one inline command; the first line of the reply.
    pub fn command(&self, command: &str) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        stream.write_all(format!("{command}\r\n").as_bytes()).ok()?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).ok()?;
        Some(line)
    }

    /// Sends a signal (`STOP` freezes it: connections stay open, nothing answers).
    pub fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let status = Command::new("kill")
                .args([&format!("-{signal}"), &child.id().to_string()])
                .status();
            assert!(
                status.is_ok_and(|s| s.success()),
                "kill -{signal} redis-server"
            );
        }
    }

    /// Kills it and waits for it to be gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        // A frozen one would not die of SIGKILL any later, but would keep its port a while.
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.stop();
    }
}

/// A limits file under the test target's temp dir, unique per call; removed when dropped.
pub struct LimitsFile(PathBuf);

impl LimitsFile {
    pub fn new(yaml: &str) -> Self {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("ratelimit-limits-{}-{n}.yaml", std::process::id()));
        fs::write(&path, yaml).expect("write the limits file");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for LimitsFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// The service binary, serving; killed when dropped. Its stderr is collected.
pub struct Service {
    child: Child,
    pub port: u16,
    stderr: Arc<Mutex<String>>,
    _limits: LimitsFile,
}

impl Service {
    /// Starts `hardening-ratelimit` with `limits` against `redis_url`, and reads its port
    /// from the `listening on` line.
    pub fn start(redis_url: &str, limits: &str) -> Self {
        let limits = LimitsFile::new(limits);
        let mut child = Command::new(env!("CARGO_BIN_EXE_hardening-ratelimit"))
            .args(["--listen", "127.0.0.1:0", "--redis", redis_url, "--limits"])
            .arg(limits.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hardening-ratelimit");
        let stderr = collect(child.stderr.take().expect("piped stderr"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = sender.send(lines.next());
            // Keep reading so that the service never blocks on a full pipe.
            for _ in lines {}
        });
        let line = receiver.recv_timeout(Duration::from_secs(30));
        let port = match line {
            Ok(Some(Ok(line))) => parse_port(&line),
            other => {
                let _ = child.kill();
                panic!(
                    "no `listening on` line ({other:?}); stderr: {}",
                    text(&stderr)
                );
            }
        };
        Self {
            child,
            port,
            stderr,
            _limits: limits,
        }
    }

    pub async fn client(&self) -> RateLimitServiceClient<Channel> {
        RateLimitServiceClient::connect(format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("connect to the service")
    }

    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        text(&self.stderr)
    }

    /// Waits (at most 5 s) for its stderr to contain `text`, which the service may have
    /// written just before an answer the test already holds: the pipe is read by a thread.
    pub fn wait_for_stderr(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log = self.stderr();
            if log.contains(text) || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends SIGTERM and waits (at most `limit`) for it to exit.
    pub fn terminate(&mut self, limit: Duration) -> Option<ExitStatus> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse_port(line: &str) -> u16 {
    line.strip_prefix("listening on 127.0.0.1:")
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
}

fn collect(mut pipe: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&text);
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buffer) {
            if n == 0 {
                break;
            }
            if let Ok(mut text) = sink.lock() {
                text.push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        }
    });
    text
}

fn text(shared: &Mutex<String>) -> String {
    shared.lock().map(|t| t.clone()).unwrap_or_default()
}

/// A request for `domain` with descriptors given as entry lists.
pub fn request(domain: &str, descriptors: &[&[(&str, &str)]]) -> RateLimitRequest {
    RateLimitRequest {
        domain: domain.to_string(),
        descriptors: descriptors
            .iter()
            .map(|entries| descriptor(entries))
            .collect(),
        hits_addend: 0,
    }
}

pub fn descriptor(entries: &[(&str, &str)]) -> RateLimitDescriptor {
    RateLimitDescriptor {
        entries: entries
            .iter()
            .map(|(key, value)| Entry {
                key: key.to_string(),
                value: value.to_string(),
            })
            .collect(),
        ..RateLimitDescriptor::default()
    }
}
