//! The sample backend: a small JSON API like the services users put behind Envoy (hyper on
//! tokio, so it keeps up with Envoy's pooled keep-alive connections under load).
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /health` | `{"status":"ok"}` |
//! | `GET /users` | the user list |
//! | `POST /users` | 201 with the created user (the body is trusted: the edge validates) |
//! | `GET /users/{id}` | the user, or 404 |
//! | `GET /boom` | 500 whose body leaks a stack trace, as careless apps do |
//! | `GET /status/{code}` | an empty response with that status |
//! | `GET /cors-upstream` | 200 with the upstream's own `Access-Control-Allow-Origin: *` and `Vary: Accept-Encoding` |
//! | `GET /slow?ms=N` | 200 after N milliseconds |
//! | any `/echo...` | 200 with the method, path, headers and body size it received |
//! | `GET /ws` with `Upgrade: websocket` | 101, then every byte sent back (a tunnel echo) |
//!
//! Every response carries `X-Powered-By: Express`, like a default app server. Every request is
//! written in the backend's [`Journal`] when its headers arrive, and its body when it ends, so
//! tests can tell exactly what reached the upstream, including requests whose stream was reset
//! before their body ended.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub const STACK_TRACE: &str = "Error: connect ECONNREFUSED 10.0.3.7:5432\n    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16)\n    at Database.query (/srv/app/src/db.js:42:11)\n    at UserService.list (/srv/app/src/users.js:17:5)";

type Users = Arc<Mutex<Vec<Value>>>;

/// A request as it reached the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    pub method: String,
    /// Path and query.
    pub target: String,
    /// The whole body, or `None` if the stream ended (was reset) before the body did.
    pub body: Option<Vec<u8>>,
}

/// Every request the backend has received, in order of arrival of their headers.
#[derive(Debug, Clone, Default)]
pub struct Journal(Arc<Mutex<Vec<Arrival>>>);

impl Journal {
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.entries().clone()
    }

    /// The arrivals on this path (the target without its query).
    pub fn arrivals_on(&self, path: &str) -> Vec<Arrival> {
        self.entries()
            .iter()
            .filter(|a| a.target.split('?').next() == Some(path))
            .cloned()
            .collect()
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Vec<Arrival>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn headers_arrived(&self, method: &str, target: &str) -> usize {
        let mut entries = self.entries();
        entries.push(Arrival {
            method: method.to_string(),
            target: target.to_string(),
            body: None,
        });
        entries.len() - 1
    }

    fn body_arrived(&self, index: usize, body: &[u8]) {
        if let Some(arrival) = self.entries().get_mut(index) {
            arrival.body = Some(body.to_vec());
        }
    }
}

/// A bound sample backend, not serving yet.
pub struct Backend {
    listener: std::net::TcpListener,
    addr: SocketAddr,
    journal: Journal,
}

impl Backend {
    pub fn bind(addr: &str) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        Ok(Self {
            listener,
            addr,
            journal: Journal::default(),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What this backend receives, readable while it serves.
    pub fn journal(&self) -> Journal {
        self.journal.clone()
    }

    /// Serves on a background thread for the rest of the process.
    pub fn spawn(self) -> SocketAddr {
        let addr = self.addr;
        std::thread::spawn(move || self.serve_forever());
        addr
    }

    pub fn serve_forever(self) {
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                eprintln!("sample-backend: cannot start a runtime: {e}");
                return;
            }
        };
        runtime.block_on(serve(self.listener, self.journal));
    }
}

async fn serve(listener: std::net::TcpListener, journal: Journal) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        eprintln!("sample-backend: cannot use the listener");
        return;
    };
    let users: Users = Arc::new(Mutex::new(vec![
        json!({"id": 1, "name": "Ada Lovelace", "email": "ada@example.com"}),
        json!({"id": 2, "name": "Alan Turing", "email": "alan@example.com"}),
    ]));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let users = Arc::clone(&users);
        let journal = journal.clone();
        tokio::spawn(async move {
            let service =
                service_fn(move |request| handle(request, Arc::clone(&users), journal.clone()));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

fn reply(status: u16, content_type: Option<&str>, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST))
        .header("x-powered-by", "Express");
    if let Some(content_type) = content_type {
        builder = builder.header("content-type", content_type);
    }
    builder
        .body(Full::new(body.into()))
        .expect("valid response parts")
}

fn json_reply(status: u16, value: &Value) -> Response<Full<Bytes>> {
    reply(status, Some("application/json"), value.to_string())
}

fn lock(users: &Users) -> std::sync::MutexGuard<'_, Vec<Value>> {
    users
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Takes a WebSocket handshake on `/ws` and echoes the tunnel's bytes (no frame parsing: the
/// test checks that bytes cross the proxy both ways).
fn upgrade_to_echo(request: &mut Request<Incoming>) -> Option<Response<Full<Bytes>>> {
    let wants_websocket = request.uri().path() == "/ws"
        && request
            .headers()
            .get("upgrade")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if !wants_websocket {
        return None;
    }
    let upgrade = hyper::upgrade::on(request);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else {
            return;
        };
        let mut io = TokioIo::new(upgraded);
        let mut buffer = [0u8; 4096];
        loop {
            match tokio::io::AsyncReadExt::read(&mut io, &mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let Some(bytes) = buffer.get(..n) else { return };
                    if tokio::io::AsyncWriteExt::write_all(&mut io, bytes)
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("upgrade", "websocket")
        .header("connection", "upgrade")
        .header("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        .body(Full::new(Bytes::new()))
        .ok()
}

async fn handle(
    mut request: Request<Incoming>,
    users: Users,
    journal: Journal,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = request.method().as_str().to_string();
    let target = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let arrival = journal.headers_arrived(&method, &target);
    if let Some(switching) = upgrade_to_echo(&mut request) {
        return Ok(switching);
    }
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    let headers: Vec<Value> = request
        .headers()
        .iter()
        .map(|(k, v)| json!([k.as_str(), String::from_utf8_lossy(v.as_bytes())]))
        .collect();
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        // Reset before its end: nothing to answer.
        Err(_) => return Ok(reply(400, None, Bytes::new())),
    };
    journal.body_arrived(arrival, &body);
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();

    let response = match (method.as_str(), segments.as_slice()) {
        (_, ["echo", ..]) => json_reply(
            200,
            &json!({"method": method, "path": target, "headers": headers, "body_bytes": body.len()}),
        ),
        ("GET", ["health"]) => json_reply(200, &json!({"status": "ok"})),
        ("GET", ["users"]) => json_reply(200, &Value::Array(lock(&users).clone())),
        ("POST", ["users"]) => create_user(&body, &users),
        ("GET", ["users", id]) => {
            let found = lock(&users)
                .iter()
                .find(|u| id.parse::<u64>().is_ok_and(|id| u["id"] == id))
                .cloned();
            match found {
                Some(user) => json_reply(200, &user),
                None => json_reply(404, &json!({"error": "user not found"})),
            }
        }
        ("GET", ["boom"]) => reply(
            500,
            Some("text/plain; charset=utf-8"),
            format!("Internal Server Error\n{STACK_TRACE}\n"),
        ),
        ("GET", ["status", code]) => reply(code.parse().unwrap_or(400), None, Bytes::new()),
        ("GET", ["cors-upstream"]) => {
            let mut response = json_reply(200, &json!({}));
            let headers = response.headers_mut();
            headers.insert("access-control-allow-origin", "*".parse().expect("valid"));
            headers.insert("vary", "Accept-Encoding".parse().expect("valid"));
            response
        }
        ("GET", ["slow"]) => {
            let ms = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("ms="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(1000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            json_reply(200, &json!({"slept_ms": ms}))
        }
        _ => json_reply(404, &json!({"error": "not found"})),
    };
    Ok(response)
}

fn create_user(body: &[u8], users: &Users) -> Response<Full<Bytes>> {
    let Ok(Value::Object(input)) = serde_json::from_slice::<Value>(body) else {
        return json_reply(400, &json!({"error": "expected a JSON object"}));
    };
    let mut users = lock(users);
    let id = users.len() + 1;
    let user = json!({
        "id": id,
        "name": input.get("name").cloned().unwrap_or(Value::Null),
        "email": input.get("email").cloned().unwrap_or(Value::Null),
    });
    users.push(user.clone());
    json_reply(201, &user)
}
