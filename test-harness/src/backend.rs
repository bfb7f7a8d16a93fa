//! The sample backend: a small JSON API like the services users put behind Envoy.
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
//! | any `/echo...` | 200 with the method, path, headers and body size it received |
//!
//! Every response carries `X-Powered-By: Express`, like a default app server.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread;

use serde_json::{Value, json};
use tiny_http::{Header, Request, Response, Server};

/// A running sample backend.
pub struct Backend {
    server: Arc<Server>,
    addr: SocketAddr,
    users: Arc<Mutex<Vec<Value>>>,
}

const WORKER_THREADS: usize = 8;

pub const STACK_TRACE: &str = "Error: connect ECONNREFUSED 10.0.3.7:5432\n    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16)\n    at Database.query (/srv/app/src/db.js:42:11)\n    at UserService.list (/srv/app/src/users.js:17:5)";

impl Backend {
    pub fn bind(addr: &str) -> std::io::Result<Self> {
        let server = Server::http(addr).map_err(std::io::Error::other)?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| std::io::Error::other("not an IP listener"))?;
        let users = vec![
            json!({"id": 1, "name": "Ada Lovelace", "email": "ada@example.com"}),
            json!({"id": 2, "name": "Alan Turing", "email": "alan@example.com"}),
        ];
        Ok(Self {
            server: Arc::new(server),
            addr,
            users: Arc::new(Mutex::new(users)),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves on background threads; the backend lives as long as the process.
    pub fn spawn(self) -> SocketAddr {
        let addr = self.addr;
        thread::spawn(move || self.serve_forever());
        addr
    }

    pub fn serve_forever(self) {
        let workers: Vec<_> = (0..WORKER_THREADS)
            .map(|_| {
                let server = Arc::clone(&self.server);
                let users = Arc::clone(&self.users);
                thread::spawn(move || {
                    while let Ok(request) = server.recv() {
                        handle(request, &users);
                    }
                })
            })
            .collect();
        for worker in workers {
            let _ = worker.join();
        }
    }
}

fn handle(mut request: Request, users: &Mutex<Vec<Value>>) {
    let mut body = Vec::new();
    let _ = request.as_reader().read_to_end(&mut body);
    let method = request.method().as_str().to_string();
    let url = request.url().to_string();
    let path = url.split('?').next().unwrap_or("").to_string();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();

    let (status, payload) = match (method.as_str(), segments.as_slice()) {
        (_, ["echo", ..]) => (200, Some(echo(&request, &method, &url, &body))),
        ("GET", ["health"]) => (200, Some(json!({"status": "ok"}))),
        ("GET", ["users"]) => (200, Some(Value::Array(lock(users).clone()))),
        ("POST", ["users"]) => create_user(&body, users),
        ("GET", ["users", id]) => {
            let found = lock(users)
                .iter()
                .find(|u| id.parse::<u64>().is_ok_and(|id| u["id"] == id))
                .cloned();
            match found {
                Some(user) => (200, Some(user)),
                None => (404, Some(json!({"error": "user not found"}))),
            }
        }
        ("GET", ["boom"]) => {
            let response = Response::from_string(format!("Internal Server Error\n{STACK_TRACE}\n"))
                .with_status_code(500)
                .with_header(header("content-type", "text/plain; charset=utf-8"))
                .with_header(header("x-powered-by", "Express"));
            let _ = request.respond(response);
            return;
        }
        ("GET", ["status", code]) => (code.parse().unwrap_or(400), None),
        ("GET", ["cors-upstream"]) => {
            let response = Response::from_string("{}")
                .with_header(header("content-type", "application/json"))
                .with_header(header("access-control-allow-origin", "*"))
                .with_header(header("vary", "Accept-Encoding"))
                .with_header(header("x-powered-by", "Express"));
            let _ = request.respond(response);
            return;
        }
        _ => (404, Some(json!({"error": "not found"}))),
    };
    let response = match payload {
        Some(value) => Response::from_data(value.to_string().into_bytes())
            .with_header(header("content-type", "application/json")),
        None => Response::from_data(Vec::new()),
    };
    let _ = request.respond(
        response
            .with_status_code(status)
            .with_header(header("x-powered-by", "Express")),
    );
}

fn create_user(body: &[u8], users: &Mutex<Vec<Value>>) -> (u16, Option<Value>) {
    let Ok(Value::Object(input)) = serde_json::from_slice::<Value>(body) else {
        return (400, Some(json!({"error": "expected a JSON object"})));
    };
    let mut users = lock(users);
    let id = users.len() + 1;
    let user = json!({
        "id": id,
        "name": input.get("name").cloned().unwrap_or(Value::Null),
        "email": input.get("email").cloned().unwrap_or(Value::Null),
    });
    users.push(user.clone());
    (201, Some(user))
}

fn echo(request: &Request, method: &str, url: &str, body: &[u8]) -> Value {
    let headers: Vec<Value> = request
        .headers()
        .iter()
        .map(|h| {
            json!([
                h.field.as_str().as_str().to_ascii_lowercase(),
                h.value.as_str()
            ])
        })
        .collect();
    json!({
        "method": method,
        "path": url,
        "headers": headers,
        "body_bytes": body.len(),
    })
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("constant header is valid")
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
