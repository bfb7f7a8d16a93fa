//! What the core sees of a request: plain borrowed strings, filled in by the shell (or by a
//! test) from whatever the host provides.

/// Header name/value pairs as the host delivers them: names lowercase (Envoy lowercases
/// them), values as received, repeated names as repeated pairs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Headers {
    pairs: Vec<(String, String)>,
}

impl Headers {
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Self { pairs }
    }

    /// The first value of a header; `name` must be lowercase.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, in order; `name` must be lowercase.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// The request line and headers of a request (HTTP/2 style pseudo-headers, as Envoy
/// presents every request).
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    pub method: &'a str,
    /// `:path`, query string included.
    pub path: &'a str,
    pub headers: &'a Headers,
}

impl<'a> RequestHead<'a> {
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers.get(name)
    }

    /// The request id Envoy assigned (`x-request-id`).
    pub fn request_id(&self) -> Option<&'a str> {
        self.headers.get("x-request-id")
    }
}
