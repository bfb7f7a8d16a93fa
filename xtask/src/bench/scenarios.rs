//! The requests the benchmark sends, the same for every variant (and for the per-request cost
//! report in the native host).

use std::net::SocketAddr;

/// The CORS origin every variant allows.
pub const ORIGIN: &str = "https://app.example.com";

#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: &'static str,
    pub method: &'static str,
    pub path: &'static str,
    pub headers: Vec<(&'static str, &'static str)>,
    pub body: String,
    /// Statuses that count as success (a preflight is 200 from Envoy's filter, 204 from ours).
    pub expected_status: &'static [u16],
}

impl Scenario {
    pub fn to_http1(&self, host: SocketAddr) -> String {
        let mut text = format!("{} {} HTTP/1.1\r\nhost: {host}\r\n", self.method, self.path);
        for (k, v) in &self.headers {
            text.push_str(&format!("{k}: {v}\r\n"));
        }
        if !self.body.is_empty() {
            text.push_str(&format!("content-length: {}\r\n", self.body.len()));
        }
        text.push_str("connection: close\r\n\r\n");
        text.push_str(&self.body);
        text
    }
}

/// A create-user body of exactly 1 KiB that passes the demo's schema.
pub fn json_body_1k() -> String {
    let head = r#"{"email":"ada@example.com","password":"correct horse battery staple","name":"Ada Lovelace","bio":""#;
    let tail = r#""}"#;
    let pad = 1024 - head.len() - tail.len();
    format!("{head}{}{tail}", "x".repeat(pad))
}

pub fn all() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "get",
            method: "GET",
            path: "/items",
            headers: vec![],
            body: String::new(),
            expected_status: &[200],
        },
        Scenario {
            name: "cors-get",
            method: "GET",
            path: "/items",
            headers: vec![("origin", ORIGIN)],
            body: String::new(),
            expected_status: &[200],
        },
        Scenario {
            name: "preflight",
            method: "OPTIONS",
            path: "/items",
            headers: vec![
                ("origin", ORIGIN),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type"),
            ],
            body: String::new(),
            expected_status: &[200, 204],
        },
        Scenario {
            name: "post-json-1k",
            method: "POST",
            path: "/users",
            headers: vec![("content-type", "application/json"), ("origin", ORIGIN)],
            body: json_body_1k(),
            expected_status: &[200, 201],
        },
        // The same GET on a route whose limit is global: the cost of asking the rate limit
        // service (hardening-ratelimit over Redis, on this machine) against `get`'s local
        // limit. Variants without the filter answer it as they answer `get`.
        Scenario {
            name: "global",
            method: "GET",
            path: "/global/items",
            headers: vec![],
            body: String::new(),
            expected_status: &[200],
        },
        Scenario {
            name: "backend-get",
            method: "GET",
            path: "/backend/users",
            headers: vec![],
            body: String::new(),
            expected_status: &[200],
        },
    ]
}
