//! What the fuzz targets share: an in-memory [`Environment`] that checks what the engine reports
//! through it, and the invariants of the responses the filter makes itself.

use std::cell::{Cell, RefCell};

use std::time::Duration;

use hardening::engine::{BodyStep, Engine, ExchangeState, RequestDecision, ResponseDecision};
use hardening::environment::Environment;
use hardening::logging::Level;
use hardening::policy::health::Outcome as HealthOutcome;
use hardening::environment::MemorySharedData;
use hardening::policy::rate_limit::RateStore;
use hardening::reply::LocalResponse;
use hardening::request::Headers;
use hardening::response::ResponseHeaders;
use serde_json::Value;

/// Time, shared data, counters and the log in memory. Every counter the engine bumps must be
/// one it declared, and every log line must be one JSON object on one line.
pub struct MemoryEnvironment {
    pub shared: MemorySharedData,
    now: Cell<u64>,
    client: Option<String>,
    metric_count: usize,
    pub logs: RefCell<Vec<String>>,
}

impl MemoryEnvironment {
    pub fn new(metric_count: usize, client: Option<String>) -> Self {
        Self {
            shared: MemorySharedData::default(),
            now: Cell::new(1_700_000_000_000_000_000),
            client,
            metric_count,
            logs: RefCell::new(Vec::new()),
        }
    }

    /// Moves the clock (rate limits refill).
    pub fn advance(&self, nanos: u64) {
        self.now.set(self.now.get().saturating_add(nanos));
    }
}

impl Environment for MemoryEnvironment {
    fn now_unix_nanos(&self) -> u64 {
        self.now.get()
    }

    fn client_address(&self) -> Option<String> {
        self.client.clone()
    }

    fn rate_store(&self) -> &dyn RateStore {
        &self.shared
    }

    fn increment(&self, metric: usize, _by: u64) {
        assert!(
            metric < self.metric_count,
            "counter {metric} bumped, but the engine declared {}",
            self.metric_count
        );
    }

    fn log(&self, _level: Level, line: &str) {
        assert!(!line.contains('\n'), "a log line spans lines: {line:?}");
        let parsed: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {line:?}"));
        assert!(parsed.is_object(), "a log line is not an object: {line}");
        self.logs.borrow_mut().push(line.to_string());
    }
}

/// Every header the filter writes must be one a proxy can send: a valid name (lowercase, as
/// proxy-wasm and HTTP/2 want) and a valid value.
pub fn assert_valid_headers<'a>(headers: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) {
    for (name, value) in headers {
        if name.first() == Some(&b':') {
            continue;
        }
        assert!(
            http::HeaderName::from_bytes(name).is_ok_and(|n| n.as_str().as_bytes() == name),
            "invalid header name {:?}",
            String::from_utf8_lossy(name)
        );
        assert!(
            http::HeaderValue::from_bytes(value).is_ok(),
            "invalid value of {}: {:?}",
            String::from_utf8_lossy(name),
            String::from_utf8_lossy(value)
        );
    }
}

/// What the filter answers itself is problem+json (an error, or the HTTPS redirect, which
/// also carries `location`), or a CORS preflight answer (2xx, no body).
pub fn assert_own_response(response: &LocalResponse) {
    assert!(
        (100..600).contains(&response.status),
        "status {}",
        response.status
    );
    assert_valid_headers(
        response
            .headers
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_bytes())),
    );
    match response.header("content-type") {
        Some("application/problem+json") => assert_problem(response),
        _ => {
            assert!(
                (200..300).contains(&response.status) && response.body.is_empty(),
                "an answer that is neither problem+json nor a preflight: {response:?}"
            );
        }
    }
    if (300..400).contains(&response.status) {
        let location = response.header("location").unwrap_or_default();
        assert!(
            location.starts_with("https://"),
            "a redirect to {location:?}"
        );
    }
}

/// An RFC 9457 problem whose `status` is the response's.
pub fn assert_problem(response: &LocalResponse) {
    let body: Value = serde_json::from_slice(&response.body).unwrap_or_else(|e| {
        panic!(
            "a problem+json body that is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&response.body)
        )
    });
    assert_eq!(
        body["status"].as_u64(),
        Some(u64::from(response.status)),
        "{body}"
    );
    assert_eq!(body["type"], "about:blank", "{body}");
    assert!(body["title"].is_string(), "{body}");
    assert!(body["code"].is_string(), "{body}");
    // The replaced upstream error has no `detail`; every other problem has one.
    assert!(body.get("detail").is_none_or(Value::is_string), "{body}");
    if response.status == 429 {
        let retry = response.header("retry-after").unwrap_or_default();
        assert!(
            retry.parse::<u64>().is_ok(),
            "a 429 with retry-after {retry:?}"
        );
    }
}

/// Bytes as the text a header value can be: what Envoy hands the filter never holds control
/// characters (other than tab) and is UTF-8 only when the filter reads it as text.
pub fn header_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .filter(|c| *c == '\t' || !c.is_control())
        .collect()
}

/// Marks the values no log line may show (an `authorization` header, a password field, a
/// query string): inputs the fuzzer makes up have it replaced, so only the fixed secret values
/// carry it.
pub const MARKER: &str = "Sekr1t";

/// `bytes` with any [`MARKER`] made harmless.
pub fn unmarked(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let marker = MARKER.as_bytes();
    let mut at = 0;
    while let Some(found) = out
        .get(at..)
        .and_then(|rest| rest.windows(marker.len()).position(|w| w == marker))
    {
        out[at + found] = b'_';
        at += found + 1;
    }
    out
}

/// One request and its response, as the shell would drive them through the engine.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    pub method: String,
    /// `:path`, query included.
    pub path: String,
    /// Besides `:method`, `:path` and `:scheme: http`.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// The headers end the stream (no body).
    pub end_of_stream: bool,
    pub body: Vec<u8>,
    /// The body's chunks, as sizes (the rest in one chunk).
    pub chunks: Vec<usize>,
    /// The stream ends with trailers instead of a last body chunk.
    pub trailers: bool,
    /// The upstream's status and headers (besides `:status`).
    pub status: u16,
    pub response_headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// The health checks' statuses, if the health endpoint runs them.
    pub health: Vec<Option<u16>>,
}

/// Where an exchange ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The filter answered with this status.
    Answered(u16),
    /// The upstream answered; the response went out with this status.
    Forwarded(u16),
}

/// Drives one exchange through the engine, checking every invariant on the way: the filter's
/// own answers are problem+json (or a preflight, or the health report) echoing the request's
/// id, its own answer is never replaced as an upstream error, every header it writes is valid,
/// a body is checked with no more bytes than Envoy holds, and the CORS headers it adds are
/// coherent.
pub fn drive(engine: &Engine, env: &MemoryEnvironment, exchange: &Exchange) -> Outcome {
    let mut pairs: Vec<(&[u8], &[u8])> = vec![
        (b":method", exchange.method.as_bytes()),
        (b":path", exchange.path.as_bytes()),
        (b":scheme", b"http"),
    ];
    pairs.extend(
        exchange
            .headers
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice())),
    );
    let request = Headers::new(pairs);
    let request_id = request.get("x-request-id");
    let headers = engine.reads_request_headers().then_some(&request);
    let (mut state, decision) = engine.on_request_headers(headers, exchange.end_of_stream, env);
    let mut answer = decided(engine, env, exchange, decision);

    if answer.is_none() && !exchange.end_of_stream {
        answer = send_body(engine, env, exchange, &mut state);
    }

    let outcome = match &answer {
        Some(response) => {
            assert_echoes_request_id(response, request_id);
            // Envoy passes the filter's own answer through its response callbacks: it is
            // edited like any response, never replaced as an upstream error.
            let status = response.status.to_string();
            let mut pairs: Vec<(&[u8], &[u8])> = vec![(b":status", status.as_bytes())];
            pairs.extend(
                response
                    .headers
                    .iter()
                    .map(|(k, v)| (k.as_bytes(), v.as_bytes())),
            );
            let mut headers = ResponseHeaders::new(pairs);
            let decision = engine.on_response_headers(&state, &mut headers, env);
            assert!(
                matches!(decision, ResponseDecision::Continue),
                "the filter's own answer was replaced: {decision:?}"
            );
            assert_response_edits(&headers, request.get("origin"));
            Outcome::Answered(response.status)
        }
        None => {
            let status = exchange.status.to_string();
            let mut pairs: Vec<(&[u8], &[u8])> = vec![(b":status", status.as_bytes())];
            pairs.extend(
                exchange
                    .response_headers
                    .iter()
                    .map(|(k, v)| (k.as_slice(), v.as_slice())),
            );
            let mut headers = ResponseHeaders::new(pairs);
            #[allow(unreachable_patterns)]
            match engine.on_response_headers(&state, &mut headers, env) {
                ResponseDecision::Replace(replacement) => {
                    assert_own_response(&replacement);
                    assert_eq!(replacement.status, exchange.status, "{replacement:?}");
                    assert_echoes_request_id(&replacement, request_id);
                    Outcome::Answered(replacement.status)
                }
                _ => {
                    assert_response_edits(&headers, request.get("origin"));
                    Outcome::Forwarded(exchange.status)
                }
            }
        }
    };
    assert_no_secret_logged(env);
    outcome
}

/// What the engine's decision about a request means here: `Some` answer, or go on.
fn decided(
    engine: &Engine,
    env: &MemoryEnvironment,
    exchange: &Exchange,
    decision: RequestDecision,
) -> Option<LocalResponse> {
    #[allow(unreachable_patterns)]
    match decision {
        RequestDecision::Continue => None,
        RequestDecision::Respond(response) => {
            assert_own_response(&response);
            Some(response)
        }
        RequestDecision::CheckHealth => {
            let checks = engine.health().map_or(0, |h| h.checks.len());
            let outcomes: Vec<_> = (0..checks)
                .map(|i| HealthOutcome {
                    status: exchange.health.get(i).copied().flatten(),
                    duration: Duration::from_millis(3),
                })
                .collect();
            let report = engine.health_report(&outcomes, Duration::from_secs(60), env);
            let report =
                report.unwrap_or_else(|| panic!("a health request without a health endpoint"));
            assert!(matches!(report.status, 200 | 503), "{report:?}");
            assert_eq!(report.header("content-type"), Some("application/json"));
            assert!(
                serde_json::from_slice::<Value>(&report.body).is_ok(),
                "{report:?}"
            );
            Some(report)
        }
        // Anything newer (a request held until its body is checked): the body decides.
        _ => None,
    }
}

/// The body in the exchange's chunks (then its trailers, if it has them), as Envoy delivers
/// it: `body_size` is the chunk, or everything held since the filter paused.
fn send_body(
    engine: &Engine,
    env: &MemoryEnvironment,
    exchange: &Exchange,
    state: &mut ExchangeState,
) -> Option<LocalResponse> {
    let body = exchange.body.as_slice();
    let mut held_from = 0usize;
    let mut arrived = 0usize;
    let mut sizes = exchange.chunks.iter().copied();
    loop {
        let rest = body.len() - arrived;
        let size = sizes.next().map_or(rest, |s| s.min(rest));
        arrived += size;
        let end = arrived == body.len() && !exchange.trailers;
        let step = engine.on_request_body(state, arrived - held_from, end, env);
        match after_body_step(engine, env, state, step, body, &mut held_from, arrived) {
            Step::Answered(response) => return Some(response),
            Step::Checked => return None,
            Step::Next => {}
        }
        if end || arrived == body.len() {
            break;
        }
    }
    if exchange.trailers {
        let step = engine.on_request_trailers(state, env);
        if let Step::Answered(response) =
            after_body_step(engine, env, state, step, body, &mut held_from, arrived)
        {
            return Some(response);
        }
    }
    None
}

enum Step {
    Next,
    Checked,
    Answered(LocalResponse),
}

fn after_body_step(
    engine: &Engine,
    env: &MemoryEnvironment,
    state: &mut ExchangeState,
    step: BodyStep,
    body: &[u8],
    held_from: &mut usize,
    arrived: usize,
) -> Step {
    #[allow(unreachable_patterns)]
    match step {
        BodyStep::Continue => {
            *held_from = arrived;
            Step::Next
        }
        BodyStep::Pause => Step::Next,
        BodyStep::Respond(response) => {
            assert_own_response(&response);
            Step::Answered(response)
        }
        BodyStep::Check { size } => {
            let held = body.get(*held_from..arrived).unwrap_or_default();
            assert!(
                size <= held.len(),
                "asked to check {size} bytes, {} held",
                held.len()
            );
            let decision = engine.on_request_body_complete(state, &held[..size], env);
            #[allow(unreachable_patterns)]
            match decision {
                RequestDecision::Respond(response) => {
                    assert_own_response(&response);
                    Step::Answered(response)
                }
                RequestDecision::Continue => Step::Checked,
                other => panic!("after the body: {other:?}"),
            }
        }
        _ => Step::Next,
    }
}

fn assert_echoes_request_id(response: &LocalResponse, request_id: Option<&str>) {
    if response.header("content-type") != Some("application/problem+json") {
        return;
    }
    let body: Value = serde_json::from_slice(&response.body).unwrap_or_default();
    if let Some(echoed) = body.get("request_id") {
        assert_eq!(echoed.as_str(), request_id, "{body}");
    }
    let text = String::from_utf8_lossy(&response.body);
    assert!(!text.contains(MARKER), "an answer shows a secret: {text}");
}

/// A response on its way out: valid headers, and
/// CORS headers only for the request's origin, never `*` with credentials.
fn assert_response_edits(headers: &ResponseHeaders<'_>, origin: Option<&str>) {
    assert_valid_headers(
        headers
            .pairs()
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_ref())),
    );
    let allowed: Vec<&[u8]> = headers.get_all("access-control-allow-origin").collect();
    assert!(allowed.len() <= 1, "{headers:?}");
    if let Some(allowed) = allowed.first() {
        assert!(
            *allowed == b"*" || Some(*allowed) == origin.map(str::as_bytes),
            "allows {:?} for origin {origin:?}",
            String::from_utf8_lossy(allowed)
        );
        if *allowed == b"*" {
            assert!(
                headers.get("access-control-allow-credentials").is_none(),
                "credentials with *: {headers:?}"
            );
        }
    }
}

fn assert_no_secret_logged(env: &MemoryEnvironment) {
    for line in env.logs.borrow().iter() {
        assert!(!line.contains(MARKER), "a log line shows a secret: {line}");
    }
}

/// Most rate-limit buckets a fuzzed config may create (each is an entry in shared data).
const MAX_BUCKETS: u64 = 20_000;

/// An engine for a config, its rate-limit tables created in a fresh environment; `None` when
/// the config's tables are too large to create for every input.
pub fn prepared(config: hardening::config::Config) -> Option<(Engine, MemoryEnvironment)> {
    let buckets: u64 = config.limits.iter().map(|l| u64::from(l.buckets)).sum();
    if buckets > MAX_BUCKETS {
        return None;
    }
    let mut engine = Engine::new(config);
    let env = MemoryEnvironment::new(engine.metric_names().len(), Some("192.0.2.7:41000".into()));
    engine
        .prepare(&env.shared, [7; 16])
        .unwrap_or_else(|e| panic!("an accepted config cannot prepare its tables: {e}"));
    Some((engine, env))
}

/// A few ordinary exchanges through any accepted config: a GET, a CORS preflight, a JSON POST
/// in two chunks, a POST ending with trailers, and upstream errors.
pub fn smoke(engine: &Engine, env: &MemoryEnvironment) {
    let header = |k: &str, v: &str| (k.as_bytes().to_vec(), v.as_bytes().to_vec());
    let get = Exchange {
        method: "GET".into(),
        path: "/users/12?limit=5".into(),
        headers: vec![
            header("origin", "https://app.example.com"),
            header("x-request-id", "rid-1"),
            header(":authority", "api.example.com"),
            header("authorization", "Bearer Sekr1tTok3n"),
        ],
        end_of_stream: true,
        status: 200,
        response_headers: vec![header("x-powered-by", "Express"), header("vary", "accept")],
        ..Exchange::default()
    };
    drive(engine, env, &get);
    let preflight = Exchange {
        method: "OPTIONS".into(),
        path: "/users".into(),
        headers: vec![
            header("origin", "https://app.example.com"),
            header("access-control-request-method", "POST"),
            header("access-control-request-headers", "content-type"),
        ],
        end_of_stream: true,
        status: 204,
        ..Exchange::default()
    };
    drive(engine, env, &preflight);
    let body = br#"{"email":"ada@example.com","password":"Sekr1tPassw0rd","name":"Ada"}"#;
    let post = Exchange {
        method: "POST".into(),
        path: "/users".into(),
        headers: vec![
            header("content-type", "application/json"),
            header("content-length", &body.len().to_string()),
            header("x-request-id", "rid-2"),
        ],
        body: body.to_vec(),
        chunks: vec![10],
        status: 500,
        response_headers: vec![header("content-type", "text/html")],
        ..Exchange::default()
    };
    drive(engine, env, &post);
    let trailers = Exchange {
        trailers: true,
        body: b"{\"email\": 1}".to_vec(),
        status: 503,
        ..post
    };
    drive(engine, env, &trailers);
    let health = Exchange {
        method: "GET".into(),
        path: "/healthz".into(),
        end_of_stream: true,
        health: vec![Some(200), None],
        status: 404,
        ..Exchange::default()
    };
    drive(engine, env, &health);
}
