//! The once-per-VM warning that `client_ip` keys come from headers the client sent: a request
//! without `X-Forwarded-For` reaching the filter means Envoy's connection manager does not
//! append the peer to it (`use_remote_address` is not true).

use std::cell::{Cell, RefCell};

use serde_json::{Value, json};

use super::*;
use crate::config::Config;
use crate::environment::{Environment, MemorySharedData};
use crate::logging::Level;
use crate::request::Headers;

#[derive(Default)]
struct Recorder {
    shared: MemorySharedData,
    now: Cell<u64>,
    client_reads: Cell<usize>,
    lines: RefCell<Vec<(Level, String)>>,
}

impl Environment for Recorder {
    fn now_unix_nanos(&self) -> u64 {
        self.now.set(self.now.get() + 1_000_000);
        self.now.get()
    }
    fn client_address(&self) -> Option<String> {
        self.client_reads.set(self.client_reads.get() + 1);
        Some("192.0.2.7:41000".into())
    }
    fn rate_store(&self) -> &dyn RateStore {
        &self.shared
    }
    fn increment(&self, _metric: usize, _by: u64) {}
    fn log(&self, level: Level, line: &str) {
        self.lines.borrow_mut().push((level, line.to_string()));
    }
}

impl Recorder {
    fn warnings(&self) -> Vec<Value> {
        self.lines
            .borrow()
            .iter()
            .filter_map(|(level, line)| {
                let parsed: Value = serde_json::from_str(line).expect("a JSON line");
                (parsed["event"] == FORGEABLE_CLIENT_ADDRESS_EVENT).then(|| {
                    assert_eq!(*level, Level::Warn);
                    parsed
                })
            })
            .collect()
    }
}

fn load(config: Value, env: &Recorder) -> Engine {
    let config = Config::from_bytes(config.to_string().as_bytes()).expect("valid config");
    let mut engine = Engine::new(config);
    engine.prepare(&env.shared, [7; 16]).expect("prepared");
    engine
}

fn send(engine: &Engine, env: &Recorder, path: &str, forwarded_for: Option<&[u8]>) {
    let mut pairs: Vec<(&[u8], &[u8])> = vec![(b":method", b"GET"), (b":path", path.as_bytes())];
    if let Some(value) = forwarded_for {
        pairs.push((b"x-forwarded-for", value));
    }
    let headers = Headers::new(pairs);
    let (_, decision) = engine.on_request_headers(Some(&headers), true, env);
    assert_eq!(decision, RequestDecision::Continue);
}

fn client_ip_limit() -> Value {
    json!({"defaults": {"rate_limit": {"name": "api", "limit": 100, "window": "1m"}}})
}

#[test]
fn a_request_without_forwarded_for_warns_once_per_vm_and_says_what_to_set() {
    let env = Recorder::default();
    let engine = load(client_ip_limit(), &env);
    send(&engine, &env, "/users", Some(b"192.0.2.7"));
    assert!(env.warnings().is_empty());
    send(&engine, &env, "/users", None);
    send(&engine, &env, "/users", None);
    send(&engine, &env, "/users", Some(b""));
    let warnings = env.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0]["policy"], "rate_limit");
    let detail = warnings[0]["detail"].as_str().expect("detail");
    for needed in [
        "use_remote_address: true",
        "xff_num_trusted_hops: 0",
        "client_ip",
    ] {
        assert!(detail.contains(needed), "{needed} missing from {detail}");
    }
    // Another VM (another engine) says it again, once.
    let other = load(client_ip_limit(), &env);
    send(&other, &env, "/users", None);
    send(&other, &env, "/users", None);
    assert_eq!(env.warnings().len(), 2);
}

#[test]
fn no_warning_without_a_client_ip_key_on_the_route_or_below_the_logging_level() {
    let env = Recorder::default();
    let by_header = json!({
        "defaults": {"rate_limit": {"name": "api", "limit": 100, "window": "1m", "key": "header:x-api-key"}},
        "routes": [
            {"name": "open", "match": {"prefix": "/open"}, "rate_limit": false},
            {"name": "login", "match": {"prefix": "/login"}, "rate_limit": {"name": "login", "limit": 5, "window": "1m", "key": ["client_ip", "route"]}}
        ]
    });
    let engine = load(by_header, &env);
    send(&engine, &env, "/users", None);
    send(&engine, &env, "/open", None);
    assert!(env.warnings().is_empty());
    assert_eq!(env.client_reads.get(), 0, "no client address read either");
    send(&engine, &env, "/login", None);
    assert_eq!(env.warnings().len(), 1);

    let quiet = Recorder::default();
    let mut config = client_ip_limit();
    config["logging"] = json!({"level": "error"});
    let engine = load(config, &quiet);
    send(&engine, &quiet, "/users", None);
    assert!(quiet.warnings().is_empty());
}
