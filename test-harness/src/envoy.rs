//! Runs a real Envoy (1.40, from `xtask::envoy`) with the built filter, on free ports, for
//! end-to-end tests. Each instance gets its own directory under `.work/e2e/`.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use xtask::bench::variants::{grpc_cluster, static_cluster};
use xtask::envoy_admin::{LISTENERS_PATH, first_listener_address, read_admin_address};

use crate::message::{Request, Response};

/// The name and root id the filter runs under in every test config.
pub const PLUGIN_NAME: &str = "hardening";

/// How the plugin configuration is handed to Envoy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigEncoding {
    /// `google.protobuf.StringValue` holding JSON text.
    StringValue,
    /// `google.protobuf.Struct` written as YAML/JSON in the Envoy config.
    Struct,
}

/// Which build of the filter a test's Envoy loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// `dist/hardening.wasm` in Envoy's Wasm filter (V8).
    Wasm,
    /// `dist/libhardening.so` in Envoy's dynamic-modules filter.
    Native,
}

/// The environment variable that picks the build the end-to-end tests run against:
/// `HARDENING_BUILD=native`, or `wasm` (the default). `cargo xtask test` runs them for both.
pub const BUILD_VAR: &str = "HARDENING_BUILD";

impl Build {
    pub fn from_env() -> Self {
        match std::env::var(BUILD_VAR).as_deref() {
            Ok("native") => Self::Native,
            Ok("wasm") | Err(_) => Self::Wasm,
            Ok(other) => panic!("{BUILD_VAR}={other}: expected `wasm` or `native`"),
        }
    }
}

/// An Envoy bootstrap for tests: one listener on a free port routing everything to one
/// upstream, with the filter in front of the router.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub upstream: SocketAddr,
    pub plugin_config: Value,
    pub encoding: ConfigEncoding,
    pub concurrency: u32,
    /// The build of the filter ([`Build::from_env`]); a test fixture is always Wasm.
    pub build: Build,
    /// The module to load (the filter, or a test fixture).
    pub module: &'static xtask::wasm::Module,
    /// Extra clusters (name, address) for HTTP calls.
    pub extra_clusters: Vec<(String, SocketAddr)>,
    /// Extra clusters speaking HTTP/2 (gRPC: the rate limit service).
    pub grpc_clusters: Vec<(String, SocketAddr)>,
    /// `vm_config.environment_variables.key_values` (Wasm), or Envoy's process environment
    /// (native: the module reads the process's).
    pub env: Vec<(String, String)>,
    /// Whether to put the Wasm filter in the chain at all (false: Envoy alone).
    pub with_filter: bool,
    /// Whether HTTP/1.1 request trailers reach the filters (`enable_trailers`; HTTP/2 and
    /// HTTP/3 always deliver them).
    pub http1_trailers: bool,
    /// Whether the connection manager accepts WebSocket upgrades (`upgrade_configs`).
    pub websockets: bool,
    /// Whether Envoy's buffer filter follows the Wasm filter, as docs/config.md requires for
    /// validated bodies: it holds each request from the router until its body has ended (and
    /// passed the filter's checks). proxy-wasm cannot hold the headers itself while it reads
    /// the body.
    pub buffer_filter: bool,
    /// Whether Envoy's buffer filter also runs before the filter: the filter then gets the
    /// whole body at once, as Envoy's buffer (an ext_authz or Lua filter that reads bodies does
    /// the same).
    pub buffer_filter_first: bool,
    /// The connection manager's `use_remote_address`. Unset (false) is Envoy's default: the
    /// client address (`source.address`) is then the rightmost `X-Forwarded-For` address the
    /// client sent, if any, and Envoy appends nothing to that header.
    pub use_remote_address: bool,
    /// The connection manager's `xff_num_trusted_hops` (unset: 0).
    pub xff_num_trusted_hops: u32,
}

/// Envoy's buffer filter's limit in the test configs: above every test's `max_body_bytes`
/// (the filter's 413 comes first) and above the default 1 MiB.
pub const BUFFER_FILTER_BYTES: u64 = 2 * 1024 * 1024;

impl Bootstrap {
    pub fn new(upstream: SocketAddr, plugin_config: Value) -> Self {
        let build = Build::from_env();
        Self {
            upstream,
            plugin_config,
            encoding: ConfigEncoding::StringValue,
            concurrency: 1,
            build,
            module: &xtask::wasm::FILTER,
            extra_clusters: Vec::new(),
            grpc_clusters: Vec::new(),
            env: Vec::new(),
            with_filter: true,
            http1_trailers: false,
            websockets: false,
            // The native build holds a request itself until its body has passed: its tests run
            // without Envoy's buffer filter, so that they test the module's own hold.
            buffer_filter: build == Build::Wasm,
            buffer_filter_first: false,
            use_remote_address: false,
            xff_num_trusted_hops: 0,
        }
    }

    /// `use_remote_address: true` with `xff_num_trusted_hops`: the client address is the
    /// connection's peer (0 hops), or the address that many places from the right of the
    /// `X-Forwarded-For` it sent; Envoy appends the peer to that header.
    pub fn use_remote_address(mut self, xff_num_trusted_hops: u32) -> Self {
        self.use_remote_address = true;
        self.xff_num_trusted_hops = xff_num_trusted_hops;
        self
    }

    /// The Wasm filter alone before the router (what happens without the buffer filter).
    pub fn without_buffer_filter(mut self) -> Self {
        self.buffer_filter = false;
        self
    }

    /// Envoy's buffer filter before the filter too.
    pub fn buffer_filter_first(mut self) -> Self {
        self.buffer_filter_first = true;
        self
    }

    pub fn http1_trailers(mut self) -> Self {
        self.http1_trailers = true;
        self
    }

    pub fn websockets(mut self) -> Self {
        self.websockets = true;
        self
    }

    pub fn concurrency(mut self, workers: u32) -> Self {
        self.concurrency = workers;
        self
    }

    /// Whether the filter runs as the native dynamic module (never for a test fixture).
    pub fn native(&self) -> bool {
        self.build == Build::Native && self.module.dist_name == xtask::wasm::FILTER.dist_name
    }

    /// What starts each line the filter logs in Envoy's log.
    pub fn filter_log_prefix(&self) -> &'static str {
        if self.native() {
            "[dynamic_modules] [:] "
        } else {
            "wasm log hardening hardening: "
        }
    }

    pub fn module(mut self, module: &'static xtask::wasm::Module) -> Self {
        self.module = module;
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn cluster(mut self, name: &str, address: SocketAddr) -> Self {
        self.extra_clusters.push((name.to_string(), address));
        self
    }

    /// A cluster for gRPC calls (HTTP/2 to its one endpoint), such as a rate limit service.
    pub fn grpc_cluster(mut self, name: &str, address: SocketAddr) -> Self {
        self.grpc_clusters.push((name.to_string(), address));
        self
    }

    pub fn encoding(mut self, encoding: ConfigEncoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// The whole bootstrap: admin and the listener on port 0, the clusters.
    pub fn to_json(&self) -> Value {
        json!({
            "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
            "static_resources": {
                "listeners": [{
                    "name": "main",
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                    "filter_chains": [{"filters": [self.connection_manager()]}],
                }],
                "clusters": self.clusters(),
            },
        })
    }

    /// The listener's HTTP connection manager: one route to `backend`, the HTTP filters.
    fn connection_manager(&self) -> Value {
        let (http_filters, upgrade_filters) = self.http_filters();
        let mut config = json!({
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "ingress",
            "normalize_path": true,
            "merge_slashes": true,
            "path_with_escaped_slashes_action": "UNESCAPE_AND_REDIRECT",
            "route_config": {"virtual_hosts": [{
                "name": "all",
                "domains": ["*"],
                "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "backend"}}],
            }]},
            "http_filters": http_filters,
            "http_protocol_options": {"enable_trailers": self.http1_trailers},
            "upgrade_configs": if self.websockets {
                json!([{"upgrade_type": "websocket", "filters": upgrade_filters}])
            } else {
                json!([])
            },
        });
        // Set only when asked, so that every other config stays exactly as it was.
        if self.use_remote_address {
            config["use_remote_address"] = json!(true);
        }
        if self.xff_num_trusted_hops > 0 {
            config["xff_num_trusted_hops"] = json!(self.xff_num_trusted_hops);
        }
        json!({
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": config,
        })
    }

    /// The HTTP filters of a request, and those of a WebSocket upgrade.
    fn http_filters(&self) -> (Vec<Value>, Vec<Value>) {
        let wasm_filter = self.with_filter.then(|| {
            if self.native() {
                self.dynamic_module_filter()
            } else {
                self.wasm_filter()
            }
        });
        let router = json!({
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
        });
        let buffer = json!({
            "name": "envoy.filters.http.buffer",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
                "max_request_bytes": BUFFER_FILTER_BYTES,
            },
        });
        let mut http_filters: Vec<Value> = Vec::new();
        if self.buffer_filter_first {
            http_filters.push(buffer.clone());
        }
        http_filters.extend(wasm_filter.iter().cloned());
        if self.with_filter && self.buffer_filter {
            http_filters.push(buffer);
        }
        http_filters.push(router.clone());
        // A WebSocket's stream is a tunnel that never ends: it gets the chain without the
        // buffer filter.
        let upgrade_filters = wasm_filter.into_iter().chain([router]).collect();
        (http_filters, upgrade_filters)
    }

    /// The filter's configuration as Envoy hands it over.
    fn configuration(&self) -> Value {
        match self.encoding {
            ConfigEncoding::StringValue => json!({
                "@type": "type.googleapis.com/google.protobuf.StringValue",
                "value": self.plugin_config.to_string(),
            }),
            ConfigEncoding::Struct => json!({
                "@type": "type.googleapis.com/google.protobuf.Struct",
                "value": self.plugin_config,
            }),
        }
    }

    /// The native build in Envoy's dynamic-modules filter, with the same configuration.
    fn dynamic_module_filter(&self) -> Value {
        json!({
            "name": "envoy.filters.http.dynamic_modules",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter",
                "dynamic_module_config": {"name": xtask::native::FILTER.lib_name},
                "filter_name": PLUGIN_NAME,
                "filter_config": self.configuration(),
            },
        })
    }

    fn wasm_filter(&self) -> Value {
        let configuration = self.configuration();
        let module = xtask::paths::dist().join(self.module.dist_name);
        let env: std::collections::BTreeMap<String, String> = self.env.iter().cloned().collect();
        json!({
            "name": "envoy.filters.http.wasm",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "config": {
                    "name": PLUGIN_NAME,
                    "root_id": PLUGIN_NAME,
                    "vm_config": {
                        "vm_id": PLUGIN_NAME,
                        "runtime": "envoy.wasm.runtime.v8",
                        "code": {"local": {"filename": module.display().to_string()}},
                        "environment_variables": {"key_values": env},
                    },
                    "configuration": configuration,
                },
            },
        })
    }

    /// `backend` (the upstream), then the extra clusters for HTTP calls, then the HTTP/2
    /// ones.
    fn clusters(&self) -> Vec<Value> {
        let grpc = self
            .grpc_clusters
            .iter()
            .map(|(name, address)| grpc_cluster(name, *address));
        std::iter::once(("backend".to_string(), self.upstream))
            .chain(self.extra_clusters.iter().cloned())
            .map(|(name, address)| static_cluster(&name, address))
            .chain(grpc)
            .collect()
    }
}

/// What Envoy puts before the name of a counter the native build defines, in Prometheus.
pub const NATIVE_STATS_PREFIX: &str = "envoy_dynamicmodulescustom_";

/// A running Envoy; killed when dropped.
pub struct Envoy {
    child: Child,
    dir: PathBuf,
    pub admin: SocketAddr,
    pub listener: SocketAddr,
}

static INSTANCES: AtomicUsize = AtomicUsize::new(0);

const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

impl Envoy {
    /// Starts Envoy and waits until its listener is ready. Builds the wasm and installs Envoy
    /// first if needed.
    pub fn start(bootstrap: &Bootstrap) -> Result<Self, String> {
        if bootstrap.native() {
            xtask::native::ensure(&xtask::native::FILTER)?;
            Self::start_with_env(&bootstrap.to_json(), bootstrap.concurrency, &bootstrap.env)
        } else {
            xtask::wasm::ensure(bootstrap.module)?;
            Self::start_config(&bootstrap.to_json(), bootstrap.concurrency)
        }
    }

    /// Starts Envoy with a complete bootstrap (JSON) whose admin and first listener may use
    /// port 0.
    pub fn start_config(config: &Value, concurrency: u32) -> Result<Self, String> {
        Self::start_with_env(config, concurrency, &[])
    }

    /// [`Envoy::start_config`] with variables added to Envoy's environment.
    pub fn start_with_env(
        config: &Value,
        concurrency: u32,
        env: &[(String, String)],
    ) -> Result<Self, String> {
        let (mut child, dir) = launch(config, concurrency, env)?;
        let admin_path = dir.join("admin-address");
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let mut envoy = loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "Envoy exited during startup ({status}):\n{}",
                    read_log(&dir)
                ));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(format!(
                    "Envoy did not start in {STARTUP_TIMEOUT:?}:\n{}",
                    read_log(&dir)
                ));
            }
            if let Some(admin) = read_admin_address(&admin_path) {
                break Envoy {
                    child,
                    dir,
                    admin,
                    listener: admin,
                };
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        loop {
            if let Some(listener) = envoy.ready_listener() {
                envoy.listener = listener;
                return Ok(envoy);
            }
            if let Ok(Some(status)) = envoy.child.try_wait() {
                return Err(format!(
                    "Envoy exited during startup ({status}):\n{}",
                    envoy.log()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "Envoy's listener was not ready in {STARTUP_TIMEOUT:?}:\n{}",
                    envoy.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Envoy's resident memory now (`VmRSS`), in bytes.
    pub fn resident_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// Runs Envoy with a bootstrap that must be refused; returns its log.
    pub fn start_expecting_failure(bootstrap: &Bootstrap) -> Result<String, String> {
        match Self::start(bootstrap) {
            Ok(envoy) => Err(format!(
                "Envoy started although it should have refused the config:\n{}",
                envoy.log()
            )),
            Err(log) => Ok(log),
        }
    }

    fn ready_listener(&self) -> Option<SocketAddr> {
        let ready = self.admin_get("/ready").ok()?;
        if ready.status != 200 {
            return None;
        }
        let listeners = self.admin_get(LISTENERS_PATH).ok()?;
        first_listener_address(&listeners.body)
    }

    pub fn admin_get(&self, path: &str) -> std::io::Result<Response> {
        Request::get(path).send(self.admin)
    }

    /// `/stats/prometheus` once the filter has handed Envoy its counts of what happened so
    /// far: its VMs keep counts and flush them on a 1 s tick (`exchange::FLUSH_PERIOD`), so
    /// this waits a tick and a half first.
    ///
    /// The native build's counters come out of Envoy's dynamic-modules namespace
    /// (`envoy_dynamicmodulescustom_hardening_...`); they are given the Wasm build's names
    /// (`hardening_...`) here, so that one assertion holds for both builds.
    pub fn prometheus(&self) -> String {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        self.admin_get("/stats/prometheus")
            .unwrap_or_else(|e| panic!("Envoy's stats: {e}\n{}", self.log()))
            .text()
            .replace(NATIVE_STATS_PREFIX, "")
    }

    /// Sends a request to the listener.
    pub fn send(&self, request: &Request) -> Response {
        request
            .send(self.listener)
            .unwrap_or_else(|e| panic!("request to Envoy failed: {e}\n{}", self.log()))
    }

    /// Everything Envoy has logged so far.
    pub fn log(&self) -> String {
        read_log(&self.dir)
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn launch(
    bootstrap: &Value,
    concurrency: u32,
    env: &[(String, String)],
) -> Result<(Child, PathBuf), String> {
    // The demo config and most tests load the filter (both builds when the native one is
    // under test: configs made by hand may load either).
    xtask::wasm::ensure(&xtask::wasm::FILTER)?;
    if Build::from_env() == Build::Native {
        xtask::native::ensure(&xtask::native::FILTER)?;
    }
    let envoy_bin = xtask::envoy::ensure()?;
    let dir = xtask::paths::work().join("e2e").join(format!(
        "{}-{}",
        std::process::id(),
        INSTANCES.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let config = dir.join("envoy.json");
    fs::write(&config, bootstrap.to_string()).map_err(|e| format!("cannot write config: {e}"))?;
    let log =
        fs::File::create(dir.join("envoy.log")).map_err(|e| format!("cannot create log: {e}"))?;
    let child = Command::new(&envoy_bin)
        // Where `dynamic_module_config.name` finds its `lib<name>.so`.
        .env(xtask::native::SEARCH_PATH_VAR, xtask::paths::dist())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .arg("-c")
        .arg(&config)
        .arg("--admin-address-path")
        .arg(dir.join("admin-address"))
        .args([
            "--disable-hot-restart",
            "--log-level",
            "info",
            "--component-log-level",
            "wasm:debug,dynamic_modules:debug",
        ])
        .arg("--concurrency")
        .arg(concurrency.to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", envoy_bin.display()))?;
    Ok((child, dir))
}

fn read_log(dir: &Path) -> String {
    fs::read_to_string(dir.join("envoy.log")).unwrap_or_default()
}

/// `envoy --mode validate -c <config>` run from `cwd`; returns (passed, output).
pub fn validate(config: &Path, cwd: &Path) -> Result<(bool, String), String> {
    let envoy_bin = xtask::envoy::ensure()?;
    let out = Command::new(&envoy_bin)
        .current_dir(cwd)
        .args(["--mode", "validate", "--disable-hot-restart", "-c"])
        .arg(config)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", envoy_bin.display()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

/// The demo's `envoy/envoy.yaml` as JSON, moved to free ports and pointed at `upstream`, so a
/// test runs exactly the config users see.
pub fn demo_config(upstream: SocketAddr) -> Result<Value, String> {
    let path = xtask::paths::root().join(xtask::demo_stack::ENVOY_CONFIG);
    let mut config = read_yaml(&path)?;
    config["admin"]["address"]["socket_address"]["port_value"] = json!(0);
    let listener = &mut config["static_resources"]["listeners"][0]["address"]["socket_address"];
    listener["address"] = json!("127.0.0.1");
    listener["port_value"] = json!(0);
    let clusters = config["static_resources"]["clusters"]
        .as_array_mut()
        .ok_or("envoy.yaml has no clusters")?;
    for cluster in clusters {
        if cluster["name"] == "backend" {
            cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
                ["socket_address"] =
                json!({"address": upstream.ip().to_string(), "port_value": upstream.port()});
        }
    }
    let wasm = xtask::paths::filter_wasm().display().to_string();
    for_each_wasm_filter(&mut config, |filter| {
        filter["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"] =
            json!(wasm.clone());
    });
    Ok(config)
}

/// Calls `f` on every `envoy.filters.http.wasm` entry of every listener.
pub fn for_each_wasm_filter(config: &mut Value, mut f: impl FnMut(&mut Value)) {
    let Some(listeners) = config["static_resources"]["listeners"].as_array_mut() else {
        return;
    };
    for listener in listeners {
        let Some(chains) = listener["filter_chains"].as_array_mut() else {
            continue;
        };
        for chain in chains {
            let Some(filters) = chain["filters"].as_array_mut() else {
                continue;
            };
            for network_filter in filters {
                let Some(http_filters) =
                    network_filter["typed_config"]["http_filters"].as_array_mut()
                else {
                    continue;
                };
                for filter in http_filters
                    .iter_mut()
                    .filter(|f| f["name"] == "envoy.filters.http.wasm")
                {
                    f(filter);
                }
            }
        }
    }
}

/// A YAML file as JSON.
pub fn read_yaml(path: &Path) -> Result<Value, String> {
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_yaml_ng::from_str(&text).map_err(|e| format!("{} is not valid YAML: {e}", path.display()))
}
