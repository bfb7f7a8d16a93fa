//! One exchange through the core with every policy on, in process (`cargo xtask bench`): the
//! module's own share of a request in the native build, without Envoy around it. The host
//! lends its header maps as Envoy's dynamic modules do (a list of borrowed pairs per read),
//! keeps rate limits in the native build's atomic tables, and turns the edited response into
//! single-header writes (`header_writes`), so what is measured is what `libhardening.so` runs
//! per request, minus Envoy's callbacks.

use std::hint::black_box;
use std::rc::Rc;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use hardening::engine::Engine;
use hardening::environment::{Environment, GrpcCall, HeaderMap, Host, HttpCall};
use hardening::exchange::{Exchange, Flow, Plugin};
use hardening::header_writes::writes;
use hardening::logging::Level;
use hardening::policy::rate_limit::{AtomicTables, RateStore, TableRegistry};
use hardening::reply::LocalResponse;
use hardening::response::ResponseHeaders;

/// Every policy on the routes the requests use: the load test's `filter` variant's config.
const CONFIG: &str = include_str!("../../xtask/src/bench/filter-config.json");

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// A map lent for one read, as the native shell's: one list of borrowed pairs.
struct Lent(Rc<Pairs>);

impl HeaderMap for Lent {
    fn pairs(&self) -> Vec<(&[u8], &[u8])> {
        self.0
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
            .collect()
    }
}

struct BenchHost<'s> {
    request: Rc<Pairs>,
    body: Vec<u8>,
    response: Rc<Pairs>,
    store: &'s AtomicTables,
}

impl Environment for BenchHost<'_> {
    fn now_unix_nanos(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }
    fn client_address(&self) -> Option<String> {
        None
    }
    fn rate_store(&self) -> &dyn RateStore {
        self.store
    }
    fn increment(&self, metric: usize, by: u64) {
        black_box((metric, by));
    }
    fn log(&self, level: Level, line: &str) {
        black_box((level, line));
    }
}

impl Host for BenchHost<'_> {
    type Map = Lent;
    fn request_headers(&self) -> Lent {
        Lent(Rc::clone(&self.request))
    }
    fn response_headers(&self) -> Lent {
        Lent(Rc::clone(&self.response))
    }
    fn set_response_headers(&self, edited: &ResponseHeaders<'_>) {
        let read = Lent(Rc::clone(&self.response));
        black_box(writes(&read.pairs(), edited.pairs()));
    }
    fn request_body(&self, size: usize) -> Vec<u8> {
        self.body.get(..size).unwrap_or_default().to_vec()
    }
    fn send_reply(&self, reply: &LocalResponse) {
        black_box(reply);
    }
    fn send_reply_to(&self, exchanges: &[u32], reply: &LocalResponse) {
        black_box((exchanges, reply));
    }
    fn dispatch_http_call(&self, _call: &HttpCall<'_>) -> Option<u32> {
        None
    }
    fn http_call_response_headers(&self) -> Lent {
        Lent(Rc::new(Vec::new()))
    }
    fn http_call_response_body(&self) -> Vec<u8> {
        Vec::new()
    }
    fn dispatch_grpc_call(&self, _call: &GrpcCall<'_>) -> Option<u32> {
        None
    }
    fn resume_request(&self) {}
}

fn pairs(list: &[(&str, &str)]) -> Rc<Pairs> {
    Rc::new(
        list.iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect(),
    )
}

/// The load test's 1 KB JSON body for `POST /users`, valid.
fn json_body_1k() -> Vec<u8> {
    let head = r#"{"email":"ada@example.com","password":"correct horse battery staple","name":"Ada Lovelace","bio":""#;
    let tail = r#""}"#;
    let pad = 1024 - head.len() - tail.len();
    format!("{head}{}{tail}", "x".repeat(pad)).into_bytes()
}

/// The request as the filter sees it behind the load test's connection manager.
fn request(method: &str, path: &str, body: usize) -> Rc<Pairs> {
    let length = body.to_string();
    let mut list = vec![
        (":authority", "127.0.0.1:10000"),
        (":path", path),
        (":method", method),
        (":scheme", "http"),
        ("x-forwarded-for", "127.0.0.1"),
        ("x-forwarded-proto", "http"),
        ("x-request-id", "0f6a2c1e-7b7a-4d7e-9e1a-3b5f8f0c2d11"),
    ];
    if body > 0 {
        list.push(("content-type", "application/json"));
        list.push(("content-length", &length));
    }
    pairs(&list)
}

fn exchange(c: &mut Criterion) {
    let store = AtomicTables::new(Arc::new(TableRegistry::default()));
    let engine = Engine::load(CONFIG.as_bytes(), &|_| None, &store, || Ok([7; 16]))
        .unwrap_or_else(|e| panic!("the benchmark's config: {e}"));
    let plugin = Plugin::new(engine, 0);
    let response = pairs(&[
        (":status", "200"),
        ("content-length", "2"),
        ("content-type", "text/plain"),
    ]);
    let get = BenchHost {
        request: request("GET", "/items", 0),
        body: Vec::new(),
        response: Rc::clone(&response),
        store: &store,
    };
    let body = json_body_1k();
    let post = BenchHost {
        request: request("POST", "/users", body.len()),
        body,
        response,
        store: &store,
    };
    let mut id = 0u32;
    c.bench_function("exchange: GET through every policy", |b| {
        b.iter(|| {
            id = id.wrapping_add(1);
            let mut exchange = Exchange::new(id);
            let request = exchange.on_request_headers(&plugin, &get, true);
            let response = exchange.on_response_headers(&plugin, &get);
            exchange.on_done(&plugin, &get);
            plugin.flush_counters(&get);
            assert!(request == Flow::Continue && response == Flow::Continue);
        })
    });
    c.bench_function("exchange: POST 1 KB JSON, validated", |b| {
        b.iter(|| {
            id = id.wrapping_add(1);
            let mut exchange = Exchange::new(id);
            let headers = exchange.on_request_headers(&plugin, &post, false);
            let body = exchange.on_request_body(&plugin, &post, post.body.len(), true);
            let response = exchange.on_response_headers(&plugin, &post);
            exchange.on_done(&plugin, &post);
            plugin.flush_counters(&post);
            assert!(headers == Flow::HoldHeaders && body == Flow::Continue);
            assert!(response == Flow::Continue);
        })
    });
}

criterion_group!(benches, exchange);
criterion_main!(benches);
