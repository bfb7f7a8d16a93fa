//! Error hygiene: an upstream 5xx has its body replaced by a generic problem+json (with the
//! request id, never the upstream's stack trace), answered as a fresh reply so the original body
//! is never forwarded.

use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::policy::validate::media_essence;
use crate::problem;
use crate::reply::LocalResponse;
use crate::response::ResponseHeaders;
use crate::syntax::ConfigError;

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawErrors {
    /// Statuses to replace (default: every 5xx).
    #[cfg_attr(feature = "schema", schemars(inner(range(min = 500, max = 599))))]
    pub statuses: Option<Vec<u16>>,
    /// Upstream content types passed through untouched (e.g. an API's own problem+json).
    pub keep_content_types: Option<Vec<String>>,
}

impl RawErrors {
    pub fn over(&self, base: &Self) -> Self {
        Self {
            statuses: self.statuses.clone().or_else(|| base.statuses.clone()),
            keep_content_types: self
                .keep_content_types
                .clone()
                .or_else(|| base.keep_content_types.clone()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Errors {
    /// The 5xx statuses replaced: bit `n` is status 500 + n (a response's check is one test).
    statuses: u128,
    keep: Vec<String>,
}

/// Upstream headers that describe the body being replaced, or its framing.
const BODY_HEADERS: &[&str] = &[
    "content-length",
    "content-type",
    "content-encoding",
    "content-language",
    "content-location",
    "content-disposition",
    "content-range",
    "content-md5",
    "digest",
    "etag",
    "last-modified",
    "transfer-encoding",
];

pub fn compile(raw: &RawErrors) -> Result<Errors, ConfigError> {
    let statuses: Vec<u16> = match &raw.statuses {
        None => (500..=599).collect(),
        Some(list) => {
            for (i, status) in list.iter().enumerate() {
                if !(500..=599).contains(status) {
                    return Err(ConfigError::new(
                        format!("statuses[{i}]"),
                        format!("{status}: only 5xx statuses are replaced"),
                    ));
                }
            }
            list.clone()
        }
    };
    let keep = raw
        .keep_content_types
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, text)| {
            media_essence(text).ok_or_else(|| {
                ConfigError::new(
                    format!("keep_content_types[{i}]"),
                    format!("`{text}` is not a media type"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let statuses = statuses
        .iter()
        .filter_map(|status| status.checked_sub(500))
        .filter(|n| *n < 100)
        .fold(0u128, |set, n| set | 1u128 << n);
    Ok(Errors { statuses, keep })
}

/// The replacement body, as the seed's error handler shapes it.
#[derive(Serialize)]
struct Replacement<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'a str,
    status: u16,
    code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    timestamp: &'a str,
}

impl Errors {
    /// Whether a response with this status and content type is replaced.
    pub fn replaces(&self, status: u16, content_type: Option<&str>) -> bool {
        let replaced = status
            .checked_sub(500)
            .is_some_and(|n| n < 100 && self.statuses & 1u128 << n != 0);
        replaced
            && !content_type
                .and_then(media_essence)
                .is_some_and(|essence| self.keep.contains(&essence))
    }

    /// The status of a response this policy replaces (`None`: it goes out as it is).
    pub fn replaced_status(&self, headers: &ResponseHeaders<'_>) -> Option<u16> {
        let status = headers.status()?;
        let content_type = headers
            .get("content-type")
            .and_then(|v| std::str::from_utf8(v).ok());
        self.replaces(status, content_type).then_some(status)
    }

    /// Whether an upstream header goes with the replaced body.
    pub fn describes_body(name: &[u8]) -> bool {
        BODY_HEADERS.iter().any(|h| h.as_bytes() == name)
    }

    /// Drops the upstream headers that describe the body being replaced, before the response
    /// policies edit what is left.
    pub fn drop_body_headers(headers: &mut ResponseHeaders<'_>) {
        headers.retain(|name| !Self::describes_body(name));
    }

    /// The reply that replaces an upstream error: the same status, the edited headers (less
    /// pseudo-headers) and a generic problem+json with the request id.
    pub fn replacement(
        status: u16,
        headers: &ResponseHeaders<'_>,
        request_id: Option<&str>,
        timestamp: &str,
    ) -> LocalResponse {
        let mut reply_headers: Vec<(String, String)> = headers
            .pairs()
            .iter()
            .filter(|(k, _)| k.first() != Some(&b':'))
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(k).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect();
        reply_headers.push(("content-type".into(), problem::CONTENT_TYPE.into()));
        LocalResponse {
            status,
            headers: reply_headers,
            body: Self::body(status, request_id, timestamp),
        }
    }

    pub fn body(status: u16, request_id: Option<&str>, timestamp: &str) -> Vec<u8> {
        let title = StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Server Error");
        let replacement = Replacement {
            kind: "about:blank",
            title,
            status,
            code: "upstream_error",
            request_id: request_id
                .filter(|id| id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())),
            timestamp,
        };
        serde_json::to_vec(&replacement).unwrap_or_default()
    }
}
