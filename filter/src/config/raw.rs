//! The configuration as written by users. Every struct refuses unknown fields so that a typo
//! is an error naming the field, never a policy silently left out.

use serde::Deserialize;

use super::encoding::{self, Encoded};
use super::{ConfigError, RawPolicies, Section};
use crate::policy::cors::RawCors;
use crate::policy::rate_limit::RawLimits;
use crate::policy::security_headers::RawSecurityHeaders;
use crate::policy::validate::RawValidate;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Policies for every request; routes override them.
    #[serde(default)]
    pub defaults: RawPolicies,
    /// Routes in order; the first that matches a request applies.
    #[serde(default)]
    pub routes: Vec<RawRoute>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// A name for logs and metrics; defaults to the path pattern.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(rename = "match")]
    pub matcher: RawMatch,
    /// Overrides `defaults.security_headers` field by field; `false` turns them off.
    #[serde(default)]
    pub security_headers: Option<Section<RawSecurityHeaders>>,
    /// Overrides `defaults.cors` field by field; `false` turns CORS off.
    #[serde(default)]
    pub cors: Option<Section<RawCors>>,
    /// Replaces `defaults.rate_limit`; `false` turns rate limiting off.
    #[serde(default)]
    pub rate_limit: Option<Section<RawLimits>>,
    /// Overrides `defaults.validate` field by field; `false` turns validation off.
    #[serde(default)]
    pub validate: Option<Section<RawValidate>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMatch {
    /// An exact path (`/users`) or a template with `{name}` segments (`/users/{id}`).
    #[serde(default)]
    pub path: Option<String>,
    /// A path prefix (`/api/`).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Methods this route applies to; absent means every method.
    #[serde(default)]
    pub methods: Option<Vec<String>>,
}

impl RawConfig {
    /// Parses the configuration as Envoy delivers it (JSON text or a protobuf Struct).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ConfigError> {
        match encoding::decode(bytes)? {
            Encoded::Empty => Ok(Self::default()),
            Encoded::Json(text) => {
                let mut de = serde_json::Deserializer::from_slice(text);
                let raw = serde_path_to_error::deserialize(&mut de).map_err(path_error)?;
                de.end().map_err(|e| ConfigError::new("", e.to_string()))?;
                Ok(raw)
            }
            Encoded::Struct(value) => serde_path_to_error::deserialize(value).map_err(path_error),
        }
    }
}

fn path_error<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> ConfigError {
    let path = e.path().to_string();
    let path = if path == "." { String::new() } else { path };
    ConfigError::new(path, e.into_inner().to_string())
}
