//! The one format for every response the filter makes itself: `application/problem+json`
//! (RFC 9457), carrying the request id so an operator can find the request in the logs.
//!
//! A problem never echoes internals, and carries at most a short excerpt of the input.

use http::StatusCode;
use serde::Serialize;

pub const CONTENT_TYPE: &str = "application/problem+json";

/// Longest request id echoed back; ids longer than this (or with characters outside visible
/// ASCII) are left out rather than reflected.
const MAX_REQUEST_ID_LEN: usize = 128;

/// A problem detail. `type` is always `about:blank`, so `title` is the status's reason phrase
/// as RFC 9457 §4.2.1 asks; what went wrong is `detail`, and `code` is a stable,
/// machine-readable name for it (documented in the config reference).
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    /// Extension members (RFC 9457 §3.2), e.g. `errors` for validation failures, serialised.
    pub extensions: Vec<(&'static str, String)>,
}

#[derive(Serialize)]
struct Wire<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            extensions: Vec::new(),
        }
    }

    /// Adds an extension member; its fields keep their declared order.
    pub fn with_extension(mut self, name: &'static str, value: &impl Serialize) -> Self {
        // Serialising plain data (strings, numbers, lists) cannot fail; skip it if it does.
        if let Ok(json) = serde_json::to_string(value) {
            self.extensions.push((name, json));
        }
        self
    }

    /// The JSON body. `request_id` is the request's `x-request-id`, if it is safe to echo.
    pub fn to_json(&self, request_id: Option<&str>) -> Vec<u8> {
        let wire = Wire {
            kind: "about:blank",
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            detail: &self.detail,
            code: self.code,
            request_id: request_id.filter(|id| is_echoable_request_id(id)),
        };
        // Serialising strings and numbers cannot fail; an empty body would still be a response.
        let mut body = serde_json::to_vec(&wire).unwrap_or_default();
        // Extension members go after the standard ones, in the order they were added.
        for (name, value) in &self.extensions {
            if body.last() == Some(&b'}') {
                body.pop();
                body.push(b',');
                let _ = serde_json::to_writer(&mut body, name);
                body.push(b':');
                body.extend_from_slice(value.as_bytes());
                body.push(b'}');
            }
        }
        body
    }
}

fn is_echoable_request_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_REQUEST_ID_LEN && id.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests;
