//! The policy sections (`defaults` and each route's), merged and compiled into the
//! [`PolicySet`] a request gets.

use serde::Deserialize;

use crate::policy::cors::{self, Cors, RawCors};
use crate::policy::errors::{self, Errors, RawErrors};
use crate::policy::https_redirect::{self, HttpsRedirect, RawHttpsRedirect};
use crate::policy::rate_limit::{self, RateLimits, RawLimits};
use crate::policy::security_headers::{self, RawSecurityHeaders, SecurityHeaders};
use crate::policy::validate::{self, RawValidate, Validation};
use crate::syntax::{ConfigError, Section};

/// The `defaults` section: applies to every request, and is what routes override.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicies {
    /// Absent: on, with helmet's defaults.
    pub security_headers: Option<Section<RawSecurityHeaders>>,
    /// Absent: off (no CORS headers; browsers keep cross-origin responses from pages).
    pub cors: Option<Section<RawCors>>,
    /// Absent: off. One limit or a list; a route's list replaces this one.
    pub rate_limit: Option<Section<RawLimits>>,
    /// Absent: off. Here: size and content-type limits for every request, and what to do
    /// with requests no route describes.
    pub validate: Option<Section<RawValidate>>,
    /// Absent: off.
    pub https_redirect: Option<Section<RawHttpsRedirect>>,
    /// Absent: off.
    pub errors: Option<Section<RawErrors>>,
}

/// What a route may override (a subset of the same sections).
#[derive(Debug, Clone, Default)]
pub struct RawRoutePolicies<'a> {
    pub security_headers: Option<&'a Section<RawSecurityHeaders>>,
    pub cors: Option<&'a Section<RawCors>>,
    pub rate_limit: Option<&'a Section<RawLimits>>,
    pub validate: Option<&'a Section<RawValidate>>,
    pub https_redirect: Option<&'a Section<RawHttpsRedirect>>,
    pub errors: Option<&'a Section<RawErrors>>,
    /// The route template's `{name}` parameters.
    pub params: &'a [&'a str],
}

/// The compiled policies that apply to a request.
#[derive(Debug, Default)]
pub struct PolicySet {
    pub security_headers: Option<SecurityHeaders>,
    pub cors: Option<Cors>,
    pub rate_limit: Option<RateLimits>,
    pub validate: Option<Validation>,
    pub https_redirect: Option<HttpsRedirect>,
    pub errors: Option<Errors>,
}

impl PolicySet {
    /// Whether the response headers need to be read and rewritten at all.
    pub fn edits_response_headers(&self) -> bool {
        self.security_headers.is_some()
            || self.cors.is_some()
            || self.rate_limit.is_some()
            || self.errors.is_some()
    }

    /// Whether deciding needs the request's headers (beyond the route).
    pub fn reads_request_headers(&self) -> bool {
        self.cors.is_some()
            || self.rate_limit.is_some()
            || self.validate.is_some()
            || self.https_redirect.is_some()
            || self.errors.is_some()
    }
}

/// A section as the route resolves it: the route's own (over the defaults' options), or the
/// defaults'. `None`: the policy is off.
fn resolve<R: Clone + Default>(
    defaults: Option<&Section<R>>,
    route: Option<&Section<R>>,
    over: impl Fn(&R, &R) -> R,
) -> Option<R> {
    let base = match defaults {
        Some(Section::On(raw)) => Some(raw.clone()),
        _ => None,
    };
    match route {
        None => base,
        Some(Section::Off) => None,
        Some(Section::On(raw)) => Some(over(raw, &base.unwrap_or_default())),
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
    let cors = resolve(defaults.cors.as_ref(), None, RawCors::over)
        .map(|raw| cors::compile(&raw))
        .transpose()
        .map_err(|e| e.within("cors"))?;
    let rate_limit = compile_rate_limit(defaults.rate_limit.as_ref())?;
    let validate = resolve(defaults.validate.as_ref(), None, RawValidate::over)
        .map(|raw| validate::compile(&raw, None))
        .transpose()
        .map_err(|e| e.within("validate"))?;
    let (https_redirect, errors) = compile_operations(defaults, None, None)?;
    Ok(PolicySet {
        security_headers,
        cors,
        rate_limit,
        validate,
        https_redirect,
        errors,
    })
}

/// The HTTPS redirect and error hygiene sections, a route's over the defaults'.
fn compile_operations(
    defaults: &RawPolicies,
    redirect: Option<&Section<RawHttpsRedirect>>,
    route_errors: Option<&Section<RawErrors>>,
) -> Result<(Option<HttpsRedirect>, Option<Errors>), ConfigError> {
    let https_redirect = resolve(
        defaults.https_redirect.as_ref(),
        redirect,
        RawHttpsRedirect::over,
    )
    .map(|raw| https_redirect::compile(&raw))
    .transpose()
    .map_err(|e| e.within("https_redirect"))?;
    let errors = resolve(defaults.errors.as_ref(), route_errors, RawErrors::over)
        .map(|raw| errors::compile(&raw))
        .transpose()
        .map_err(|e| e.within("errors"))?;
    Ok((https_redirect, errors))
}

fn compile_rate_limit(
    section: Option<&Section<RawLimits>>,
) -> Result<Option<RateLimits>, ConfigError> {
    match section {
        Some(Section::On(raw)) => Ok(Some(
            rate_limit::compile(raw).map_err(|e| e.within("rate_limit"))?,
        )),
        _ => Ok(None),
    }
}

/// A route's policies: each section it sets overrides the defaults' (field by field for
/// security headers and CORS; a route's rate limits replace the defaults'); `false` turns the
/// policy off for the route.
pub fn compile_route(
    defaults: &RawPolicies,
    route: &RawRoutePolicies<'_>,
) -> Result<Option<PolicySet>, ConfigError> {
    if route.security_headers.is_none()
        && route.cors.is_none()
        && route.rate_limit.is_none()
        && route.validate.is_none()
        && route.https_redirect.is_none()
        && route.errors.is_none()
    {
        return Ok(None);
    }
    if let Some(Section::On(raw)) = route.validate
        && raw.unknown_routes.is_some()
    {
        return Err(ConfigError::new(
            "validate.unknown_routes",
            "only in defaults.validate (it is about requests no route matches)",
        ));
    }
    let security_headers = match route.security_headers {
        None => default_security_headers(defaults)
            .map(|raw| security_headers::compile(&raw))
            .transpose()
            .map_err(|e| e.within("security_headers"))?,
        Some(Section::Off) => None,
        Some(Section::On(raw)) => {
            let base = default_security_headers(defaults).unwrap_or_default();
            Some(
                security_headers::compile(&raw.over(&base))
                    .map_err(|e| e.within("security_headers"))?,
            )
        }
    };
    let cors = resolve(defaults.cors.as_ref(), route.cors, RawCors::over)
        .map(|raw| cors::compile(&raw))
        .transpose()
        .map_err(|e| e.within("cors"))?;
    // Restate a limit under the same name and settings to count both against one table.
    let rate_limit = compile_rate_limit(route.rate_limit.or(defaults.rate_limit.as_ref()))?;
    let validate = resolve(
        defaults.validate.as_ref(),
        route.validate,
        RawValidate::over,
    )
    .map(|raw| validate::compile(&raw, Some(route.params)))
    .transpose()
    .map_err(|e| e.within("validate"))?;
    let (https_redirect, errors) =
        compile_operations(defaults, route.https_redirect, route.errors)?;
    Ok(Some(PolicySet {
        security_headers,
        cors,
        rate_limit,
        validate,
        https_redirect,
        errors,
    }))
}
