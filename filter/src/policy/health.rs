//! The health endpoint: `GET /healthz` answered by the filter, with checks of dependencies
//! (HTTP calls to Envoy clusters, in parallel, under a timeout) and a short cache so the
//! endpoint cannot amplify load.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::reply::LocalResponse;
use crate::syntax::{ConfigError, OrderedMap, check_header_name, parse_duration};

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawHealth {
    /// Default `/healthz`.
    pub path: Option<String>,
    /// Reported as `version` (default: the filter's version).
    pub version: Option<String>,
    /// Per check (default `5s`, as the seed).
    pub timeout: Option<String>,
    /// How long a result is reused (default `2s`); `0s` is refused: an uncached endpoint lets
    /// anyone multiply the load on every dependency.
    pub cache_for: Option<String>,
    /// Named checks.
    pub checks: Option<OrderedMap<RawCheck>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    /// The Envoy cluster to call.
    pub cluster: String,
    /// Default `/health`.
    pub path: Option<String>,
    /// Default 200.
    #[cfg_attr(feature = "schema", schemars(range(min = 100, max = 599)))]
    pub expected_status: Option<u16>,
    /// `:authority` of the call (default: the cluster's name).
    pub authority: Option<String>,
    /// Extra request headers (e.g. `authorization: "Bearer ${HEALTH_TOKEN}"`).
    pub headers: Option<OrderedMap<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub cluster: String,
    /// Pseudo-headers first, then the configured ones.
    pub headers: Vec<(String, String)>,
    pub expected_status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub path: String,
    version: String,
    pub timeout: Duration,
    pub cache_for: Duration,
    pub checks: Vec<Check>,
}

pub fn compile(raw: &RawHealth) -> Result<Health, ConfigError> {
    let path = raw.path.clone().unwrap_or_else(|| "/healthz".into());
    if !path.starts_with('/') || path.contains('?') {
        return Err(ConfigError::new(
            "path",
            format!("`{path}`: a path such as /healthz"),
        ));
    }
    let duration = |field: &str, text: Option<&String>, default: &str| {
        parse_duration(text.map_or(default, String::as_str))
            .map_err(|reason| ConfigError::new(field, reason))
    };
    let timeout = duration("timeout", raw.timeout.as_ref(), "5s")?;
    if timeout > Duration::from_secs(60) {
        return Err(ConfigError::new(
            "timeout",
            "at most 60s (a health check that needs longer is not one)",
        ));
    }
    let cache_for = duration("cache_for", raw.cache_for.as_ref(), "2s")?;
    let checks = raw
        .checks
        .iter()
        .flat_map(|c| c.0.iter())
        .map(|(name, check)| {
            compile_check(name, check).map_err(|e| e.within(&format!("checks.{name}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Health {
        path,
        version: raw
            .version
            .clone()
            .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_string()),
        timeout,
        cache_for,
        checks,
    })
}

/// One check: its call's headers (pseudo-headers, the user agent, then the configured ones).
fn compile_check(name: &str, check: &RawCheck) -> Result<Check, ConfigError> {
    if check.cluster.trim().is_empty() {
        return Err(ConfigError::new("cluster", "the Envoy cluster to call"));
    }
    let check_path = check.path.clone().unwrap_or_else(|| "/health".into());
    if !check_path.starts_with('/') {
        return Err(ConfigError::new(
            "path",
            format!("`{check_path}` must start with `/`"),
        ));
    }
    let expected_status = check.expected_status.unwrap_or(200);
    if !(100..=599).contains(&expected_status) {
        return Err(ConfigError::new(
            "expected_status",
            format!("{expected_status} is not an HTTP status"),
        ));
    }
    let authority = check
        .authority
        .clone()
        .unwrap_or_else(|| check.cluster.clone());
    let mut headers = vec![
        (":method".to_string(), "GET".to_string()),
        (":path".to_string(), check_path),
        (":authority".to_string(), authority),
        (
            "user-agent".to_string(),
            "envoy-hardening-health".to_string(),
        ),
    ];
    for (header, value) in check.headers.iter().flat_map(|h| h.0.iter()) {
        check_header_name(header).map_err(|reason| ConfigError::new("headers", reason))?;
        // The value may hold a secret: never quoted.
        if http::HeaderValue::from_str(value).is_err() {
            return Err(ConfigError::new(
                format!("headers.{header}"),
                "not a valid header value (control characters or non-ASCII)",
            ));
        }
        headers.push((header.to_ascii_lowercase(), value.clone()));
    }
    Ok(Check {
        name: name.to_string(),
        cluster: check.cluster.clone(),
        headers,
        expected_status,
    })
}

/// A check's outcome: the status it got (`None`: reset or never answered) and how long it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: Option<u16>,
    pub duration: Duration,
}

#[derive(Serialize)]
struct CheckReport {
    status: &'static str,
    duration_ms: u64,
}

#[derive(Serialize)]
struct Report<'a> {
    status: &'static str,
    uptime_seconds: u64,
    version: &'a str,
    checks: serde_json::Map<String, serde_json::Value>,
}

impl Health {
    pub fn is_health_request(&self, method: &str, path: &str) -> bool {
        matches!(method, "GET" | "HEAD") && crate::syntax::path_only(path) == self.path
    }

    /// The answer: 200 if every check got its expected status, else 503.
    pub fn report(&self, outcomes: &[Outcome], uptime: Duration) -> LocalResponse {
        let mut checks = serde_json::Map::new();
        let mut healthy = true;
        for (check, outcome) in self.checks.iter().zip(outcomes) {
            let ok = outcome.status == Some(check.expected_status);
            healthy &= ok;
            let report = CheckReport {
                status: if ok { "healthy" } else { "unhealthy" },
                duration_ms: u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX),
            };
            checks.insert(
                check.name.clone(),
                serde_json::to_value(report).unwrap_or_default(),
            );
        }
        healthy &= outcomes.len() == self.checks.len();
        let report = Report {
            status: if healthy { "healthy" } else { "unhealthy" },
            uptime_seconds: uptime.as_secs(),
            version: &self.version,
            checks,
        };
        LocalResponse {
            status: if healthy { 200 } else { 503 },
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("cache-control".into(), "no-store".into()),
            ],
            body: serde_json::to_vec(&report).unwrap_or_default(),
        }
    }
}
