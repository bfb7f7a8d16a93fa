//! What the core sees of a request: header pairs borrowed from the host's buffer (names
//! lowercase, as Envoy gives them; values as bytes, read as text where a policy needs text).

/// Request header pairs, in order, repeated names as repeated pairs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Headers<'a> {
    pairs: Vec<(&'a [u8], &'a [u8])>,
}

impl<'a> Headers<'a> {
    pub fn new(pairs: Vec<(&'a [u8], &'a [u8])>) -> Self {
        Self { pairs }
    }

    /// The first value of a header (`name` lowercase) as text. A value that is not UTF-8
    /// (HTTP allows obs-text) reads as absent: no policy matches such bytes.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.get_bytes(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    pub fn get_bytes(&self, name: &str) -> Option<&'a [u8]> {
        self.pairs
            .iter()
            .find(|(k, _)| *k == name.as_bytes())
            .map(|(_, v)| *v)
    }

    /// Every value of a header, as text (values that are not UTF-8 are skipped).
    pub fn get_all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a str> + 's {
        self.pairs
            .iter()
            .filter(move |(k, _)| *k == name.as_bytes())
            .filter_map(|(_, v)| std::str::from_utf8(v).ok())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + '_ {
        self.pairs.iter().copied()
    }
}

/// The request line and headers of a request (HTTP/2 style pseudo-headers, as Envoy
/// presents every request).
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'h, 'a> {
    pub method: &'a str,
    /// `:path`, query string included.
    pub path: &'a str,
    pub headers: &'h Headers<'a>,
}

impl<'h, 'a> RequestHead<'h, 'a> {
    /// Reads the request line from the pseudo-headers.
    pub fn from_headers(headers: &'h Headers<'a>) -> Self {
        Self {
            method: headers.get(":method").unwrap_or_default(),
            path: headers.get(":path").unwrap_or_default(),
            headers,
        }
    }

    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers.get(name)
    }

    /// The request id Envoy assigned (`x-request-id`).
    pub fn request_id(&self) -> Option<&'a str> {
        self.headers.get("x-request-id")
    }
}
