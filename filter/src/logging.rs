//! One structured JSON line per decision the filter makes, through Envoy's log, with secrets
//! redacted: never the values of `authorization`, `cookie`, `set-cookie`,
//! `proxy-authorization` or configured headers, never the values of configured JSON body
//! fields (by default password, token, secret, api_key), never a query string.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::syntax::{ConfigError, check_header_name, excerpt};

/// Headers whose values are never logged, whatever the config says.
const ALWAYS_REDACTED: &[&str] = &[
    "authorization",
    "cookie",
    "set-cookie",
    "proxy-authorization",
];
const DEFAULT_REDACTED_FIELDS: &[&str] = &["password", "token", "secret", "api_key"];
const REDACTED: &str = "[REDACTED]";
/// Longest body excerpt in a debug line.
const MAX_BODY_CHARS: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Debug,
    #[default]
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawLogging {
    /// The lowest level written (`debug` in development, `warn` in production).
    pub level: Option<Level>,
    /// Request headers to include in each line (values of redacted ones are replaced).
    pub include_headers: Option<Vec<String>>,
    /// More headers whose values are never logged.
    pub redact_headers: Option<Vec<String>>,
    /// JSON body fields whose values are never logged (replaces the default list).
    pub redact_fields: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct Logging {
    pub level: Level,
    include_headers: Vec<String>,
    redact_headers: Vec<String>,
    redact_fields: Vec<String>,
}

impl Default for Logging {
    fn default() -> Self {
        Self {
            level: Level::Info,
            include_headers: Vec::new(),
            redact_headers: ALWAYS_REDACTED.iter().map(|s| s.to_string()).collect(),
            redact_fields: DEFAULT_REDACTED_FIELDS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

fn header_list(field: &str, names: &[String]) -> Result<Vec<String>, ConfigError> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            check_header_name(name)
                .map(|()| name.to_ascii_lowercase())
                .map_err(|reason| ConfigError::new(format!("{field}[{i}]"), reason))
        })
        .collect()
}

impl Logging {
    pub fn compile(raw: &RawLogging) -> Result<Self, ConfigError> {
        let mut logging = Self::default();
        if let Some(level) = raw.level {
            logging.level = level;
        }
        if let Some(names) = &raw.include_headers {
            logging.include_headers = header_list("include_headers", names)?;
        }
        if let Some(names) = &raw.redact_headers {
            logging
                .redact_headers
                .extend(header_list("redact_headers", names)?);
        }
        if let Some(fields) = &raw.redact_fields {
            logging.redact_fields = fields.iter().map(|f| f.to_ascii_lowercase()).collect();
        }
        Ok(logging)
    }

    pub fn enabled(&self, level: Level) -> bool {
        level >= self.level
    }

    /// The included request headers, redacted where they must be.
    pub fn headers<'a>(
        &self,
        headers: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Option<Value> {
        if self.include_headers.is_empty() {
            return None;
        }
        let mut out = Map::new();
        for (name, value) in headers {
            let name = String::from_utf8_lossy(name).to_ascii_lowercase();
            if !self.include_headers.contains(&name) || out.contains_key(&name) {
                continue;
            }
            let value = if self.redact_headers.contains(&name) {
                REDACTED.to_string()
            } else {
                excerpt(&String::from_utf8_lossy(value), 200)
            };
            out.insert(name, Value::String(value));
        }
        Some(Value::Object(out))
    }

    /// A body for a debug line: JSON with the redacted fields' values replaced (at any depth),
    /// as JSON when it fits in 1024 characters, else as a string cut to that; anything else
    /// only by its size.
    pub fn body(&self, body: &[u8]) -> Value {
        match serde_json::from_slice::<Value>(body) {
            Ok(mut value) => {
                self.redact(&mut value);
                let text = value.to_string();
                if text.chars().count() <= MAX_BODY_CHARS {
                    value
                } else {
                    Value::String(excerpt(&text, MAX_BODY_CHARS))
                }
            }
            Err(_) => Value::String(format!("<{} bytes, not JSON>", body.len())),
        }
    }

    fn redact(&self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, item) in map.iter_mut() {
                    if self.redact_fields.contains(&key.to_ascii_lowercase()) {
                        *item = Value::String(REDACTED.into());
                    } else {
                        self.redact(item);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.redact(item)),
            _ => {}
        }
    }
}

/// What a log line is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A policy refused the request (or its body).
    Rejected,
    /// A limit in `dry_run` mode would have refused the request.
    DryRunLimited,
    /// Sent to HTTPS.
    Redirected,
    /// An upstream error's body replaced by a generic problem+json.
    ReplacedUpstreamError,
    /// The health endpoint answered 503.
    Unhealthy,
    /// The rate limit service failed, timed out or could not be asked; `code` says which,
    /// `status` is the 503 when `failure_mode` is `deny`.
    RateLimitServiceFailed,
    /// `client_ip` keys can be forged: Envoy takes the client address from headers the
    /// client sent (said once per VM).
    ClientAddressFromRequestHeaders,
}

impl Event {
    /// The name in the line's `event` field.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Rejected => "rejected",
            Self::DryRunLimited => "dry_run_limited",
            Self::Redirected => "redirected",
            Self::ReplacedUpstreamError => "replaced_upstream_error",
            Self::Unhealthy => "unhealthy",
            Self::RateLimitServiceFailed => "rate_limit_service_failed",
            Self::ClientAddressFromRequestHeaders => "client_address_from_request_headers",
        }
    }
}

/// The policy a log line is about, named as in the config's sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyName {
    Cors,
    RateLimit,
    Validate,
    HttpsRedirect,
    Errors,
    Health,
}

/// One line about a decision.
#[derive(Debug, Clone, Serialize)]
pub struct Line<'a> {
    pub event: Event,
    pub policy: PolicyName,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub route: &'a str,
    pub method: &'a str,
    /// Without its query string (queries carry tokens).
    pub path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<&'a str>,
    /// What went wrong, in the words of whatever failed (a rate limit service's status
    /// message).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

impl Line<'_> {
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_lose_their_secrets_at_any_depth() {
        let logging = Logging::default();
        let body = br#"{"email":"a@example.com","Password":"hunter22","nested":[{"token":"t0k3n","ok":1}],"api_key":"k"}"#;
        assert_eq!(
            logging.body(body),
            json!({"Password": "[REDACTED]", "api_key": "[REDACTED]", "email": "a@example.com", "nested": [{"ok": 1, "token": "[REDACTED]"}]})
        );
        let long = format!(r#"{{"password":"p","filler":"{}"}}"#, "x".repeat(2000));
        let cut = logging.body(long.as_bytes());
        let cut = cut.as_str().expect("a long body is cut to a string");
        assert!(
            cut.starts_with(r#"{"filler":"xxx"#) && cut.chars().count() <= 1025,
            "{cut}"
        );
        assert!(!cut.contains("\"p\""));
        assert_eq!(
            logging.body(b"password=hunter22"),
            json!("<17 bytes, not JSON>")
        );
    }

    #[test]
    fn events_are_written_by_their_names() {
        for event in [
            Event::Rejected,
            Event::DryRunLimited,
            Event::Redirected,
            Event::ReplacedUpstreamError,
            Event::Unhealthy,
            Event::ClientAddressFromRequestHeaders,
        ] {
            assert_eq!(
                serde_json::to_value(event).expect("serialises"),
                json!(event.name())
            );
        }
        assert_eq!(
            serde_json::to_value(PolicyName::HttpsRedirect).expect("serialises"),
            json!("https_redirect")
        );
    }

    #[test]
    fn sensitive_headers_are_always_redacted() {
        let logging = Logging::compile(&RawLogging {
            include_headers: Some(vec![
                "user-agent".into(),
                "Authorization".into(),
                "x-api-key".into(),
                "cookie".into(),
            ]),
            redact_headers: Some(vec!["X-Api-Key".into()]),
            ..RawLogging::default()
        })
        .expect("valid");
        let headers: Vec<(&[u8], &[u8])> = vec![
            (b"user-agent", b"curl/8"),
            (b"authorization", b"Bearer abc"),
            (b"x-api-key", b"k_123"),
            (b"cookie", b"sid=1"),
            (b"x-other", b"x"),
        ];
        assert_eq!(
            logging.headers(headers.into_iter()),
            Some(
                json!({"user-agent": "curl/8", "authorization": "[REDACTED]", "x-api-key": "[REDACTED]", "cookie": "[REDACTED]"})
            )
        );
    }
}
