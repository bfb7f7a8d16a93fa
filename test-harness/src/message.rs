//! Requests and responses as tests write and read them, the same types for the native wasm
//! host and for a real Envoy over sockets, so one scenario can run on both.

use std::net::SocketAddr;

/// A request from a client. Header names keep the case the test wrote; hosts lowercase them.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: String,
    /// The request target: path and query.
    pub target: String,
    pub headers: Vec<(String, String)>,
    /// Headers whose values are not text (HTTP allows bytes 0x80-0xFF), sent after `headers`.
    pub byte_headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// For the native host: deliver the body in chunks of this size (Envoy delivers bodies as
    /// they arrive). `None`: one chunk.
    pub chunk_size: Option<usize>,
    /// Trailers after the body: the stream ends with them, not with the last body chunk.
    /// Sent over HTTP/1.1 with chunked encoding (Envoy passes them on only with
    /// `enable_trailers`).
    pub trailers: Vec<(String, String)>,
    /// For the native host: the client's address (`source.address`).
    pub source: SocketAddr,
}

/// Where requests come from by default in the native host.
pub const DEFAULT_SOURCE: &str = "192.0.2.10:40000";

impl Request {
    pub fn new(method: &str, target: &str) -> Self {
        Self {
            method: method.to_string(),
            target: target.to_string(),
            headers: Vec::new(),
            byte_headers: Vec::new(),
            body: Vec::new(),
            chunk_size: None,
            trailers: Vec::new(),
            source: DEFAULT_SOURCE.parse().expect("constant address"),
        }
    }

    pub fn get(target: &str) -> Self {
        Self::new("GET", target)
    }

    pub fn post(target: &str) -> Self {
        Self::new("POST", target)
    }

    pub fn put(target: &str) -> Self {
        Self::new("PUT", target)
    }

    pub fn options(target: &str) -> Self {
        Self::new("OPTIONS", target)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub fn json(self, value: &serde_json::Value) -> Self {
        self.header("content-type", "application/json")
            .body(value.to_string())
    }

    /// A header whose value is raw bytes (e.g. obs-text that is not UTF-8).
    pub fn header_bytes(mut self, name: &str, value: &[u8]) -> Self {
        self.byte_headers.push((name.to_string(), value.to_vec()));
        self
    }

    pub fn chunked(mut self, chunk_size: usize) -> Self {
        self.chunk_size = Some(chunk_size.max(1));
        self
    }

    pub fn trailer(mut self, name: &str, value: &str) -> Self {
        self.trailers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn from_source(mut self, source: &str) -> Self {
        self.source = source
            .parse()
            .expect("a socket address such as 203.0.113.5:5555");
        self
    }

    pub fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    }

    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The bytes of an HTTP/1.1 request. `Host`, `Content-Length` (for a body, or POST/PUT/PATCH)
    /// and `Connection: close` are added unless the test set them.
    pub fn to_http1(&self, host: &str) -> Vec<u8> {
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.target).into_bytes();
        if !self.has_header("host") {
            out.extend_from_slice(format!("host: {host}\r\n").as_bytes());
        }
        for (name, value) in &self.headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        for (name, value) in &self.byte_headers {
            out.extend_from_slice(format!("{name}: ").as_bytes());
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        let chunked = !self.trailers.is_empty();
        let wants_length =
            !self.body.is_empty() || matches!(self.method.as_str(), "POST" | "PUT" | "PATCH");
        if chunked {
            out.extend_from_slice(b"transfer-encoding: chunked\r\n");
        } else if wants_length
            && !self.has_header("content-length")
            && !self.has_header("transfer-encoding")
        {
            out.extend_from_slice(format!("content-length: {}\r\n", self.body.len()).as_bytes());
        }
        if !self.has_header("connection") {
            out.extend_from_slice(b"connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if !chunked {
            out.extend_from_slice(&self.body);
            return out;
        }
        if !self.body.is_empty() {
            out.extend_from_slice(format!("{:x}\r\n", self.body.len()).as_bytes());
            out.extend_from_slice(&self.body);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n");
        for (name, value) in &self.trailers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    /// Sends the request to a real server on a new connection and reads the whole response.
    pub fn send(&self, addr: SocketAddr) -> std::io::Result<Response> {
        crate::http1::send_raw(addr, &self.to_http1(&addr.to_string()), &self.method)
    }
}

/// A response: what an upstream answers (in the native host), or what a client received.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Response {
    pub status: u16,
    /// Header lines in order, names lowercase, duplicates kept.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn with_status(status: u16) -> Self {
        Self {
            status,
            ..Self::default()
        }
    }

    pub fn ok() -> Self {
        Self::with_status(200)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub fn json(self, value: &serde_json::Value) -> Self {
        self.header("content-type", "application/json")
            .body(value.to_string())
    }

    /// The value of a header that must appear at most once; fails the test if it appears
    /// several times.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        let all = self.header_all(name);
        assert!(
            all.len() <= 1,
            "header {name} appears {} times: {all:?}",
            all.len()
        );
        all.first().copied()
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json_body(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }
}
