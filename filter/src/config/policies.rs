//! The policy sections (`defaults` and each route's), merged and compiled into the
//! [`PolicySet`] a request gets.

use serde::Deserialize;

use super::{ConfigError, Section};
use crate::policy::security_headers::{self, RawSecurityHeaders, SecurityHeaders};

/// The `defaults` section: applies to every request, and is what routes override.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicies {
    /// Absent: on, with helmet's defaults.
    pub security_headers: Option<Section<RawSecurityHeaders>>,
}

/// What a route may override (a subset of the same sections).
#[derive(Debug, Clone, Default)]
pub struct RawRoutePolicies<'a> {
    pub security_headers: Option<&'a Section<RawSecurityHeaders>>,
}

/// The compiled policies that apply to a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicySet {
    pub security_headers: Option<SecurityHeaders>,
}

impl PolicySet {
    /// Whether the response headers need to be read and rewritten at all.
    pub fn edits_response_headers(&self) -> bool {
        self.security_headers.is_some()
    }
}

/// The defaults section's security headers as raw options: absent means on with the preset.
fn default_security_headers(defaults: &RawPolicies) -> Option<RawSecurityHeaders> {
    match &defaults.security_headers {
        None => Some(RawSecurityHeaders::default()),
        Some(Section::Off) => None,
        Some(Section::On(raw)) => Some(raw.clone()),
    }
}

pub fn compile_defaults(defaults: &RawPolicies) -> Result<PolicySet, ConfigError> {
    let security_headers = default_security_headers(defaults)
        .map(|raw| security_headers::compile(&raw))
        .transpose()
        .map_err(|e| e.within("security_headers"))?;
    Ok(PolicySet { security_headers })
}

/// A route's policies: each section it sets overrides the defaults' (field by field for
/// security headers); `false` turns the policy off for the route.
pub fn compile_route(
    defaults: &RawPolicies,
    route: &RawRoutePolicies<'_>,
) -> Result<Option<PolicySet>, ConfigError> {
    let Some(section) = route.security_headers else {
        return Ok(None);
    };
    let security_headers = match section {
        Section::Off => None,
        Section::On(raw) => {
            let base = default_security_headers(defaults).unwrap_or_default();
            Some(
                security_headers::compile(&raw.over(&base))
                    .map_err(|e| e.within("security_headers"))?,
            )
        }
    };
    Ok(Some(PolicySet { security_headers }))
}
