//! From the raw section (already merged over the defaults) and its preset to the headers to
//! write, rendered once.

use super::presets::{OWASP_REMOVE, PresetHeader, PresetValues};
use super::raw::{CacheControl, Existing, RawPolicy, RawSecurityHeaders};
use super::{SecurityHeaders, csp, permissions};
use crate::syntax::{ConfigError, Section, check_header_name};

pub fn compile(raw: &RawSecurityHeaders) -> Result<SecurityHeaders, ConfigError> {
    let preset: PresetValues = raw.preset.unwrap_or_default().values();
    let set = headers_to_set(raw, &preset)?;
    let remove = headers_to_remove(raw, &preset)?;
    if let Some((name, _)) = set
        .iter()
        .find(|(name, _)| remove.binary_search(name).is_ok())
    {
        return Err(ConfigError::new(
            "remove",
            format!("`{name}` is both set and removed"),
        ));
    }
    let existing = raw.existing.unwrap_or_default();
    let mut dropped = remove.clone();
    if existing == Existing::Override {
        dropped.extend(set.iter().map(|(name, _)| name.clone()));
    }
    dropped.sort();
    dropped.dedup();
    Ok(SecurityHeaders {
        set,
        remove,
        dropped,
        existing,
    })
}

/// Lowercase name and value of each header sent, in helmet's order: CSP, COEP, COOP, CORP,
/// Origin-Agent-Cluster, Referrer-Policy, HSTS, X-Content-Type-Options,
/// X-DNS-Prefetch-Control, X-Download-Options, X-Frame-Options,
/// X-Permitted-Cross-Domain-Policies, X-XSS-Protection; then the OWASP extras.
fn headers_to_set(
    raw: &RawSecurityHeaders,
    preset: &PresetValues,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut set: Vec<(String, String)> = Vec::new();
    let mut add = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            set.push((name.to_string(), value));
        }
    };
    if let Some((name, value)) = content_security_policy(raw, preset)? {
        add(name, Some(value));
    }
    for header in cross_origin_headers(raw, preset) {
        add(header.name, header.value()?);
    }
    let origin_agent_cluster = raw
        .origin_agent_cluster
        .unwrap_or(preset.origin_agent_cluster);
    add(
        "origin-agent-cluster",
        origin_agent_cluster.then(|| "?1".into()),
    );
    add("referrer-policy", referrer_policy(raw, preset)?);
    add(
        "strict-transport-security",
        strict_transport_security(raw, preset)?,
    );
    let nosniff = raw
        .x_content_type_options
        .unwrap_or(preset.x_content_type_options);
    add("x-content-type-options", nosniff.then(|| "nosniff".into()));
    add("x-dns-prefetch-control", dns_prefetch_control(raw, preset));
    let noopen = raw.x_download_options.unwrap_or(preset.x_download_options);
    add("x-download-options", noopen.then(|| "noopen".into()));
    add("x-frame-options", frame_options(raw, preset)?);
    add(
        "x-permitted-cross-domain-policies",
        permitted_cross_domain_policies(raw, preset)?,
    );
    let xss_off = raw.x_xss_protection.unwrap_or(preset.x_xss_protection);
    add("x-xss-protection", xss_off.then(|| "0".into()));
    add("permissions-policy", permissions_policy(raw, preset)?);
    add("cache-control", cache_control(raw, preset)?);
    Ok(set)
}

/// Whether a header is on, and with which options: the config's section if given, else the
/// preset's.
fn resolve<T>(section: &Option<Section<T>>, preset_on: bool) -> Option<Option<&T>> {
    match section {
        None => preset_on.then_some(None),
        Some(Section::Off) => None,
        Some(Section::On(options)) => Some(Some(options)),
    }
}

fn one_of(path: &str, value: &str, allowed: &[&str]) -> Result<String, ConfigError> {
    if allowed.contains(&value) {
        Ok(value.to_string())
    } else {
        Err(ConfigError::new(
            path,
            format!("`{value}` is not one of {}", allowed.join(", ")),
        ))
    }
}

/// The header's name (report-only or not) and its value.
fn content_security_policy(
    raw: &RawSecurityHeaders,
    preset: &PresetValues,
) -> Result<Option<(&'static str, String)>, ConfigError> {
    let Some(options) = resolve(&raw.content_security_policy, preset.csp.is_some()) else {
        return Ok(None);
    };
    let options = options.cloned().unwrap_or_default();
    csp::compile(&options, preset)
        .map(Some)
        .map_err(|e| e.within("content_security_policy"))
}

/// One of the Cross-Origin-*-Policy headers, each a `{policy}` from a fixed list.
struct CrossOrigin<'a> {
    field: &'static str,
    name: &'static str,
    section: &'a Option<Section<RawPolicy>>,
    preset: PresetHeader<&'static str>,
    allowed: &'static [&'static str],
}

impl CrossOrigin<'_> {
    fn value(&self) -> Result<Option<String>, ConfigError> {
        let Some(options) = resolve(self.section, self.preset.on) else {
            return Ok(None);
        };
        let value = options
            .and_then(|o| o.policy.as_deref())
            .unwrap_or(self.preset.default);
        one_of(&format!("{}.policy", self.field), value, self.allowed).map(Some)
    }
}

fn cross_origin_headers<'a>(
    raw: &'a RawSecurityHeaders,
    preset: &PresetValues,
) -> [CrossOrigin<'a>; 3] {
    [
        CrossOrigin {
            field: "cross_origin_embedder_policy",
            name: "cross-origin-embedder-policy",
            section: &raw.cross_origin_embedder_policy,
            preset: preset.coep,
            allowed: &["require-corp", "credentialless", "unsafe-none"],
        },
        CrossOrigin {
            field: "cross_origin_opener_policy",
            name: "cross-origin-opener-policy",
            section: &raw.cross_origin_opener_policy,
            preset: preset.coop,
            allowed: &[
                "same-origin",
                "same-origin-allow-popups",
                "noopener-allow-popups",
                "unsafe-none",
            ],
        },
        CrossOrigin {
            field: "cross_origin_resource_policy",
            name: "cross-origin-resource-policy",
            section: &raw.cross_origin_resource_policy,
            preset: preset.corp,
            allowed: &["same-origin", "same-site", "cross-origin"],
        },
    ]
}

const REFERRER_TOKENS: &[&str] = &[
    "no-referrer",
    "no-referrer-when-downgrade",
    "same-origin",
    "origin",
    "strict-origin",
    "origin-when-cross-origin",
    "strict-origin-when-cross-origin",
    "unsafe-url",
];

fn referrer_policy(
    raw: &RawSecurityHeaders,
    preset: &PresetValues,
) -> Result<Option<String>, ConfigError> {
    let Some(options) = resolve(&raw.referrer_policy, preset.referrer_policy.on) else {
        return Ok(None);
    };
    let tokens: Vec<String> = match options.and_then(|o| o.policy.as_ref()) {
        Some(list) => list.0.clone(),
        None => preset
            .referrer_policy
            .default
            .iter()
            .map(|t| t.to_string())
            .collect(),
    };
    referrer_tokens(&tokens).map(Some)
}

fn referrer_tokens(tokens: &[String]) -> Result<String, ConfigError> {
    let path = "referrer_policy.policy";
    if tokens.is_empty() {
        return Err(ConfigError::new(
            path,
            "no policy tokens; give one (e.g. no-referrer) or turn the header off",
        ));
    }
    for (i, token) in tokens.iter().enumerate() {
        if !REFERRER_TOKENS.contains(&token.as_str()) {
            return Err(ConfigError::new(
                path,
                format!(
                    "`{token}` is not a referrer policy (one of {})",
                    REFERRER_TOKENS.join(", ")
                ),
            ));
        }
        if tokens.iter().take(i).any(|t| t == token) {
            return Err(ConfigError::new(path, format!("`{token}` is listed twice")));
        }
    }
    Ok(tokens.join(","))
}

fn strict_transport_security(
    raw: &RawSecurityHeaders,
    preset: &PresetValues,
) -> Result<Option<String>, ConfigError> {
    let Some(options) = resolve(&raw.strict_transport_security, preset.hsts.on) else {
        return Ok(None);
    };
    let max_age = options
        .and_then(|o| o.max_age)
        .unwrap_or(preset.hsts.max_age);
    let subdomains = options
        .and_then(|o| o.include_subdomains)
        .unwrap_or(preset.hsts.include_subdomains);
    let preload = options
        .and_then(|o| o.preload)
        .unwrap_or(preset.hsts.preload);
    if preload && (max_age < 31_536_000 || !subdomains) {
        return Err(ConfigError::new(
            "strict_transport_security.preload",
            "the HSTS preload list requires max_age of at least 31536000 (one year) and include_subdomains: true",
        ));
    }
    let mut value = format!("max-age={max_age}");
    if subdomains {
        value.push_str("; includeSubDomains");
    }
    if preload {
        value.push_str("; preload");
    }
    Ok(Some(value))
}

fn dns_prefetch_control(raw: &RawSecurityHeaders, preset: &PresetValues) -> Option<String> {
    let options = resolve(
        &raw.x_dns_prefetch_control,
        preset.x_dns_prefetch_control.on,
    )?;
    let allow = options
        .and_then(|o| o.allow)
        .unwrap_or(preset.x_dns_prefetch_control.default);
    Some(if allow { "on" } else { "off" }.into())
}

fn frame_options(
    raw: &RawSecurityHeaders,
    preset: &PresetValues,
) -> Result<Option<String>, ConfigError> {
    let Some(options) = resolve(&raw.x_frame_options, preset.x_frame_options.on) else {
        return Ok(None);
    };
    let Some(action) = options.and_then(|o| o.action.as_deref()) else {
        return Ok(Some(preset.x_frame_options.default.to_string()));
    };
    // helmet upper-cases what it is given.
    one_of(
        "x_frame_options.action",
        &action.to_ascii_uppercase().replace("SAME-ORIGIN", "SAMEORIGIN"),
        &["DENY", "SAMEORIGIN"],
    )
    .map(Some)
    .map_err(|_| {
        ConfigError::new(
            "x_frame_options.action",
            format!("`{action}` is not DENY or SAMEORIGIN (ALLOW-FROM is obsolete; use CSP frame-ancestors)"),
        )
    })
}

fn permitted_cross_domain_policies(
    raw: &RawSecurityHeaders,
    preset: &PresetValues,
) -> Result<Option<String>, ConfigError> {
    let preset = preset.x_permitted_cross_domain_policies;
    let Some(options) = resolve(&raw.x_permitted_cross_domain_policies, preset.on) else {
        return Ok(None);
    };
    let value = options
        .and_then(|o| o.permitted_policies.as_deref())
        .unwrap_or(preset.default);
    one_of(
        "x_permitted_cross_domain_policies.permitted_policies",
        value,
        &["none", "master-only", "by-content-type", "all"],
    )
    .map(Some)
}

fn permissions_policy(
    raw: &RawSecurityHeaders,
    preset: &PresetValues,
) -> Result<Option<String>, ConfigError> {
    let on_in_preset = preset.permissions_policy.is_some();
    let Some(options) = resolve(&raw.permissions_policy, on_in_preset) else {
        return Ok(None);
    };
    let value = match options.and_then(|o| o.features.as_ref()) {
        Some(features) => {
            permissions::compile(features.0.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
        }
        None => {
            let owned: Vec<(&str, Vec<String>)> = preset
                .permissions_policy
                .unwrap_or_default()
                .iter()
                .map(|(k, v)| (*k, v.iter().map(|s| s.to_string()).collect()))
                .collect();
            permissions::compile(owned.iter().map(|(k, v)| (*k, v.as_slice())))
        }
    };
    value.map(Some).map_err(|e| e.within("permissions_policy"))
}

fn cache_control(
    raw: &RawSecurityHeaders,
    preset: &PresetValues,
) -> Result<Option<String>, ConfigError> {
    let value = match &raw.cache_control {
        None => preset.cache_control.map(str::to_string),
        Some(CacheControl::Off) => None,
        Some(CacheControl::PresetValue) => Some(
            preset
                .cache_control
                .unwrap_or("no-store, max-age=0")
                .to_string(),
        ),
        Some(CacheControl::Value(value)) => Some(value.clone()),
    };
    if let Some(value) = &value
        && (http::HeaderValue::from_str(value).is_err() || value.trim().is_empty())
    {
        return Err(ConfigError::new(
            "cache_control",
            format!("`{value}` is not a valid header value"),
        ));
    }
    Ok(value)
}

/// Lowercase names, sorted: the config's list (else the preset's), and the OWASP list of
/// leaky headers when asked for.
fn headers_to_remove(
    raw: &RawSecurityHeaders,
    preset: &PresetValues,
) -> Result<Vec<String>, ConfigError> {
    let mut remove: Vec<String> = match &raw.remove {
        Some(list) => {
            let mut names = Vec::with_capacity(list.len());
            for (i, name) in list.iter().enumerate() {
                check_header_name(name)
                    .map_err(|reason| ConfigError::new(format!("remove[{i}]"), reason))?;
                names.push(name.to_ascii_lowercase());
            }
            names
        }
        None => preset.remove.iter().map(|s| s.to_string()).collect(),
    };
    if raw
        .remove_owasp_leaky_headers
        .unwrap_or(preset.remove_leaky)
    {
        remove.extend(OWASP_REMOVE.iter().map(|s| s.to_string()));
    }
    remove.sort();
    remove.dedup();
    Ok(remove)
}
