//! The configuration as written by users. Every struct refuses unknown fields so that a typo
//! is an error naming the field, never a policy silently left out.

use serde::Deserialize;

use super::encoding::{self, Encoded};
use super::secrets;
use crate::client_address::RawClientAddress;
use crate::logging::RawLogging;
use crate::openapi::RawOpenApi;
use crate::policy::RawPolicies;
use crate::policy::health::RawHealth;
use crate::policy::set::with_policy_sections;
use crate::routes::{RawMatch, RouteMatching};
use crate::syntax::{ConfigError, Section};

#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Policies for every request; routes override them.
    #[serde(default)]
    pub defaults: RawPolicies,
    /// Routes in order; the first that matches a request applies.
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    /// The filter's own log lines.
    #[serde(default)]
    pub logging: Option<RawLogging>,
    /// The health endpoint (off unless given).
    #[serde(default)]
    pub health: Option<Section<RawHealth>>,
    /// How routes' paths match by default: `loose` (case and one trailing slash ignored, as
    /// common frameworks route) or `exact`.
    #[serde(default)]
    pub route_matching: RouteMatching,
    /// Where the `client_ip` rate-limit key comes from (default: Envoy's `source.address`).
    #[serde(default)]
    pub client_address: Option<RawClientAddress>,
    /// An OpenAPI document whose operations become routes with their validation.
    #[serde(default)]
    pub openapi: Option<RawOpenApi>,
}

with_policy_sections! {
    /// One route: what it matches, then its policy sections, each overriding the same section
    /// of `defaults` (see `policy::set::Policy`); `false` turns a policy off for the route.
    #[derive(Debug, Deserialize)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    #[serde(deny_unknown_fields)]
    pub struct RawRoute {
        /// A name for logs and metrics; defaults to the path pattern.
        #[serde(default)]
        pub name: Option<String>,
        #[serde(rename = "match")]
        pub matcher: RawMatch,
    }
}

impl RawConfig {
    /// Parses the configuration as Envoy delivers it (JSON text or a protobuf Struct),
    /// replacing `${NAME}` secrets through `env`; also returns which secrets it read, so that
    /// later errors can hide their values.
    pub fn from_bytes(
        bytes: &[u8],
        env: secrets::Lookup<'_>,
    ) -> Result<(Self, secrets::Used), ConfigError> {
        let mut used = secrets::Used::default();
        let raw = match encoding::decode(bytes)? {
            Encoded::Empty => Self::default(),
            // Text is read as text (secrets expanded in place), so that syntax errors keep their
            // line and column, maps their order, and duplicate keys are refused.
            Encoded::Json(text) if !holds_reference(text) => Self::from_json(text)?,
            Encoded::Json(text) if !secrets_outside_document(text) => Self::from_json(text)?,
            Encoded::Json(text) => {
                let text =
                    std::str::from_utf8(text).map_err(|e| ConfigError::new("", e.to_string()))?;
                match secrets::expand_json_text(text, env, &mut used) {
                    Ok(expanded) if !has_document(text) => {
                        Self::from_json(expanded.as_bytes()).map_err(|e| used.scrub(e))?
                    }
                    // Walk the parsed value to name the field of the missing secret (or to
                    // leave the OpenAPI document's text alone).
                    _ => {
                        let mut value: serde_json::Value = serde_json::from_slice(text.as_bytes())
                            .map_err(|e| ConfigError::new("", e.to_string()))?;
                        used = secrets::Used::default();
                        substitute_outside_document(&mut value, env, &mut used)?;
                        let text = serde_json::to_vec(&value)
                            .map_err(|e| ConfigError::new("", e.to_string()))?;
                        Self::from_json(&text).map_err(|e| used.scrub(without_position(e)))?
                    }
                }
            }
            // A Struct is read as the JSON text it maps to: one deserialiser for both shapes
            // keeps the module smaller (the typed config's code exists once), and a Struct
            // config is read once per VM.
            Encoded::Struct(mut value) => {
                substitute_outside_document(&mut value, env, &mut used)
                    .map_err(|e| used.scrub(e))?;
                let text =
                    serde_json::to_vec(&value).map_err(|e| ConfigError::new("", e.to_string()))?;
                Self::from_json(&text).map_err(|e| used.scrub(without_position(e)))?
            }
        };
        Ok((raw, used))
    }

    fn from_json(text: &[u8]) -> Result<Self, ConfigError> {
        let mut de = serde_json::Deserializer::from_slice(text);
        let raw = serde_path_to_error::deserialize(&mut de).map_err(path_error)?;
        de.end().map_err(|e| ConfigError::new("", e.to_string()))?;
        Ok(raw)
    }
}

fn holds_reference(text: &[u8]) -> bool {
    text.windows(2).any(|w| w == b"${")
}

fn has_document(text: &str) -> bool {
    text.contains("\"openapi\"")
}

/// Where an OpenAPI document sits in the config: it is data (an API description), so `${` in
/// its text is text (GitHub's descriptions hold some), never a secret.
const DOCUMENT: &str = "/openapi/document";

/// Whether `${` appears outside the OpenAPI document (a config that does not parse says yes,
/// so that its error comes from the usual path).
fn secrets_outside_document(text: &[u8]) -> bool {
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(text) else {
        return true;
    };
    let Some(document) = value.pointer_mut(DOCUMENT) else {
        return true;
    };
    *document = serde_json::Value::Null;
    serde_json::to_vec(&value).map_or(true, |rest| holds_reference(&rest))
}

/// Expands the secrets of every string but the OpenAPI document's.
fn substitute_outside_document(
    value: &mut serde_json::Value,
    env: secrets::Lookup<'_>,
    used: &mut secrets::Used,
) -> Result<(), ConfigError> {
    let document = value.pointer_mut(DOCUMENT).map(std::mem::take);
    secrets::substitute(value, env, used)?;
    if let (Some(document), Some(slot)) = (document, value.pointer_mut(DOCUMENT)) {
        *slot = document;
    }
    Ok(())
}

/// A Struct has no lines: where serde_json stopped in the text made from it says nothing.
fn without_position(mut error: ConfigError) -> ConfigError {
    if let Some((reason, position)) = error.reason.rsplit_once(" at line ")
        && position.contains(" column ")
    {
        error.reason = reason.to_string();
    }
    error
}

fn path_error<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> ConfigError {
    let path = e.path().to_string();
    let path = if path == "." { String::new() } else { path };
    ConfigError::new(path, e.into_inner().to_string())
}
