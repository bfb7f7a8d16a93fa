//! The whole engine with every policy on (security headers, CORS with exact, pattern and
//! regex origins, rate limits keyed by client and header, HTTPS redirect, upstream errors,
//! strict validation with body, query, header and path schemas, health, debug logging), driven
//! by sequences of arbitrary requests, bodies in arbitrary chunks, trailers and upstream
//! responses, with the clock moving between them. Every invariant of `hardening_fuzz::drive`
//! holds for every exchange: no panic, the filter's answers are problem+json or a preflight or
//! the health report, never replaced, valid headers, coherent CORS headers, and no secret in a
//! log line.

#![no_main]

use std::sync::LazyLock;

use arbitrary::Arbitrary;
use hardening::config::Config;
use hardening::engine::Engine;
use hardening::policy::rate_limit::RateStore;
use hardening_fuzz::{Exchange, MemoryEnvironment, header_text, unmarked};
use libfuzzer_sys::fuzz_target;

const CONFIG: &str = include_str!("../corpus/config_json/every-policy.json");

static ENGINE: LazyLock<Engine> = LazyLock::new(|| {
    let config = Config::from_bytes(CONFIG.as_bytes()).expect("the config compiles");
    let mut engine = Engine::new(config);
    let shared = hardening::environment::MemorySharedData::default();
    engine.prepare(&shared, SECRET).expect("prepared");
    engine
});

const SECRET: [u8; 16] = [7; 16];

#[derive(Arbitrary, Debug)]
enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Connect,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum PathPiece {
    Users,
    UsersSlash,
    Public,
    Healthz,
    Upload,
    Number(u32),
    Query,
    BracketQuery,
    OperatorQuery,
    SecretQuery,
    Percent,
    BadPercent,
    Fragment,
    Text(String),
}

#[derive(Arbitrary, Debug)]
enum Name {
    Origin,
    RequestMethod,
    RequestHeaders,
    PrivateNetwork,
    ForwardedProto,
    Authority,
    Host,
    ContentLength,
    ContentType,
    TransferEncoding,
    Upgrade,
    ApiKey,
    RequestId,
    Authorization,
    Cookie,
    UserAgent,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum HeaderValue {
    AppOrigin,
    PatternOrigin,
    RegexOrigin,
    EvilOrigin,
    Null,
    Post,
    Delete,
    Http,
    Https,
    ProtoList,
    ApiHost,
    OtherHost,
    Json,
    JsonCharset,
    TextPlain,
    Websocket,
    Huge,
    Zero,
    Length(u16),
    Bearer,
    RequestId(u8),
    Bytes(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Body {
    Valid,
    WithPassword,
    Duplicate,
    Deep,
    Huge,
    Fields {
        email: String,
        password: Option<String>,
        extra: Vec<(String, i64)>,
    },
    Bytes(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum ResponseName {
    ContentType,
    Vary,
    AllowOrigin,
    AllowCredentials,
    RateLimit,
    PoweredBy,
    ContentLength,
    CacheControl,
    Server,
    Other(String),
}

#[derive(Arbitrary, Debug)]
struct Request {
    method: Method,
    path: Vec<PathPiece>,
    headers: Vec<(Name, HeaderValue)>,
    end_of_stream: bool,
    body: Body,
    chunks: Vec<u8>,
    trailers: bool,
    status: u16,
    response_headers: Vec<(ResponseName, Vec<u8>)>,
    health: Vec<Option<u16>>,
    /// Milliseconds the clock moves before the request.
    wait: u16,
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// The client's address (`None`: Envoy gave none).
    client: Option<u8>,
    requests: Vec<Request>,
}

fn method(m: &Method) -> String {
    match m {
        Method::Get => "GET".into(),
        Method::Head => "HEAD".into(),
        Method::Post => "POST".into(),
        Method::Put => "PUT".into(),
        Method::Delete => "DELETE".into(),
        Method::Options => "OPTIONS".into(),
        Method::Connect => "CONNECT".into(),
        Method::Other(text) => header_text(&unmarked(text.as_bytes())),
    }
}

fn path(pieces: &[PathPiece]) -> String {
    let mut path = String::new();
    for piece in pieces {
        match piece {
            PathPiece::Users => path.push_str("/users"),
            PathPiece::UsersSlash => path.push_str("/users/"),
            PathPiece::Public => path.push_str("/public/"),
            PathPiece::Healthz => path.push_str("/healthz"),
            PathPiece::Upload => path.push_str("/upload"),
            PathPiece::Number(n) => path.push_str(&n.to_string()),
            PathPiece::Query => path.push_str("?limit=5&tag=a&tag=b"),
            PathPiece::BracketQuery => path.push_str("?limit[]=9&tag[0]=a"),
            PathPiece::OperatorQuery => path.push_str("&id[$ne]=x"),
            PathPiece::SecretQuery => path.push_str("?token=Sekr1tQuery"),
            PathPiece::Percent => path.push_str("%2F"),
            PathPiece::BadPercent => path.push_str("%ZZ%"),
            PathPiece::Fragment => path.push_str("#frag"),
            PathPiece::Text(text) => path.push_str(&header_text(&unmarked(text.as_bytes()))),
        }
    }
    path
}

fn name(n: &Name) -> Vec<u8> {
    let known = match n {
        Name::Origin => "origin",
        Name::RequestMethod => "access-control-request-method",
        Name::RequestHeaders => "access-control-request-headers",
        Name::PrivateNetwork => "access-control-request-private-network",
        Name::ForwardedProto => "x-forwarded-proto",
        Name::Authority => ":authority",
        Name::Host => "host",
        Name::ContentLength => "content-length",
        Name::ContentType => "content-type",
        Name::TransferEncoding => "transfer-encoding",
        Name::Upgrade => "upgrade",
        Name::ApiKey => "x-api-key",
        Name::RequestId => "x-request-id",
        Name::Authorization => "authorization",
        Name::Cookie => "cookie",
        Name::UserAgent => "user-agent",
        Name::Other(text) => return token(text),
    };
    known.as_bytes().to_vec()
}

/// A header name as Envoy hands it over: lowercase token characters.
fn token(text: &str) -> Vec<u8> {
    let name: Vec<u8> = unmarked(text.as_bytes())
        .into_iter()
        .map(|b| b.to_ascii_lowercase())
        .filter(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b))
        .collect();
    if name.is_empty() {
        b"x-empty".to_vec()
    } else {
        name
    }
}

fn value(v: &HeaderValue) -> Vec<u8> {
    let known = match v {
        HeaderValue::AppOrigin => "https://app.example.com",
        HeaderValue::PatternOrigin => "https://a.b.example.org",
        HeaderValue::RegexOrigin => "https://pr-12.example.net",
        HeaderValue::EvilOrigin => "https://evil.example",
        HeaderValue::Null => "null",
        HeaderValue::Post => "POST",
        HeaderValue::Delete => "DELETE",
        HeaderValue::Http => "http",
        HeaderValue::Https => "https",
        HeaderValue::ProtoList => "https, http",
        HeaderValue::ApiHost => "api.example.com:80",
        HeaderValue::OtherHost => "[::1]:8080",
        HeaderValue::Json => "application/json",
        HeaderValue::JsonCharset => "application/json; charset=utf-8",
        HeaderValue::TextPlain => "text/plain",
        HeaderValue::Websocket => "websocket",
        HeaderValue::Huge => "18446744073709551616",
        HeaderValue::Zero => "0",
        HeaderValue::Length(n) => return n.to_string().into_bytes(),
        HeaderValue::Bearer => "Bearer Sekr1tTok3n",
        HeaderValue::RequestId(n) => return format!("rid-{n}").into_bytes(),
        HeaderValue::Bytes(bytes) => return header_text(&unmarked(bytes)).into_bytes(),
    };
    known.as_bytes().to_vec()
}

/// Only the headers never logged may carry the secret marker.
fn header(n: &Name, v: &HeaderValue) -> (Vec<u8>, Vec<u8>) {
    let (name, value) = (name(n), value(v));
    let secret = [&b"authorization"[..], b"cookie", b"x-api-key"].contains(&name.as_slice());
    let value = if secret { value } else { unmarked(&value) };
    (name, value)
}

fn body(b: &Body) -> Vec<u8> {
    match b {
        Body::Valid => br#"{"email":"ada@example.com"}"#.to_vec(),
        Body::WithPassword => {
            br#"{"email":"ada@example.com","password":"Sekr1tPassw0rd"}"#.to_vec()
        }
        Body::Duplicate => br#"{"email":"ada@example.com","email":"x"}"#.to_vec(),
        Body::Deep => b"[".repeat(200),
        Body::Huge => vec![b' '; 300],
        Body::Fields {
            email,
            password,
            extra,
        } => {
            let mut object = serde_json::Map::new();
            object.insert(
                "email".into(),
                String::from_utf8_lossy(&unmarked(email.as_bytes())).into(),
            );
            if let Some(password) = password {
                // The password is the secret no log line may show.
                let password = format!(
                    "{MARKER}{}",
                    String::from_utf8_lossy(&unmarked(password.as_bytes()))
                );
                object.insert("password".into(), password.into());
            }
            for (key, number) in extra {
                let key = String::from_utf8_lossy(&unmarked(key.as_bytes())).into_owned();
                object.entry(key).or_insert((*number).into());
            }
            serde_json::to_vec(&object).unwrap_or_default()
        }
        Body::Bytes(bytes) => unmarked(bytes),
    }
}

use hardening_fuzz::MARKER;

fn response_name(n: &ResponseName) -> Vec<u8> {
    let known = match n {
        ResponseName::ContentType => "content-type",
        ResponseName::Vary => "vary",
        ResponseName::AllowOrigin => "access-control-allow-origin",
        ResponseName::AllowCredentials => "access-control-allow-credentials",
        ResponseName::RateLimit => "ratelimit",
        ResponseName::PoweredBy => "x-powered-by",
        ResponseName::ContentLength => "content-length",
        ResponseName::CacheControl => "cache-control",
        ResponseName::Server => "server",
        ResponseName::Other(text) => return token(text),
    };
    known.as_bytes().to_vec()
}

fuzz_target!(|input: Input| {
    let engine = &*ENGINE;
    let client = input.client.map(|n| format!("192.0.2.{n}:40000"));
    let env = MemoryEnvironment::new(engine.metric_names().len(), client);
    let limits: Vec<_> = engine.config().limits.iter().map(|l| l.as_ref()).collect();
    env.shared.prepare(&limits, SECRET).expect("tables");
    for request in input.requests.iter().take(8) {
        env.advance(u64::from(request.wait) * 1_000_000);
        let exchange = Exchange {
            method: method(&request.method),
            path: path(&request.path),
            headers: request.headers.iter().map(|(n, v)| header(n, v)).collect(),
            end_of_stream: request.end_of_stream,
            body: body(&request.body),
            chunks: request.chunks.iter().map(|c| usize::from(*c)).collect(),
            trailers: request.trailers,
            status: 100 + request.status % 500,
            response_headers: request
                .response_headers
                .iter()
                .map(|(n, v)| (response_name(n), header_text(&unmarked(v)).into_bytes()))
                .collect(),
            health: request.health.clone(),
        };
        hardening_fuzz::drive(engine, &env, &exchange);
    }
    // The VM's counts go to the host (every counter one the engine declared).
    engine.flush_counters(&env);
});
