//! From the raw section (already merged over the defaults) and its preset to the headers to
//! write, rendered once.

use super::presets::{OWASP_REMOVE, PresetValues};
use super::raw::{CacheControl, RawSecurityHeaders};
use super::{SecurityHeaders, csp, permissions};
use crate::syntax::{ConfigError, Section};

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

/// Whether a header is on, and with which options: the config's section if given, else the
/// preset's.
fn resolve<T>(section: &Option<Section<T>>, preset_on: bool) -> Option<Option<&T>> {
    match section {
        None => preset_on.then_some(None),
        Some(Section::Off) => None,
        Some(Section::On(options)) => Some(Some(options)),
    }
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty() && http::HeaderName::from_bytes(name.as_bytes()).is_ok()
}

pub fn compile(raw: &RawSecurityHeaders) -> Result<SecurityHeaders, ConfigError> {
    let preset: PresetValues = raw.preset.unwrap_or_default().values();
    let mut set: Vec<(String, String)> = Vec::new();
    let mut push = |name: &str, value: String| set.push((name.to_string(), value));

    // helmet's order: CSP, COEP, COOP, CORP, Origin-Agent-Cluster, Referrer-Policy, HSTS,
    // X-Content-Type-Options, X-DNS-Prefetch-Control, X-Download-Options, X-Frame-Options,
    // X-Permitted-Cross-Domain-Policies, X-XSS-Protection; then the OWASP extras.
    if let Some(options) = resolve(&raw.content_security_policy, preset.csp.is_some()) {
        let options = options.cloned().unwrap_or_default();
        let (name, value) =
            csp::compile(&options, &preset).map_err(|e| e.within("content_security_policy"))?;
        push(name, value);
    }
    let cross_origin = [
        (
            "cross_origin_embedder_policy",
            "cross-origin-embedder-policy",
            &raw.cross_origin_embedder_policy,
            preset.coep,
            &["require-corp", "credentialless", "unsafe-none"][..],
        ),
        (
            "cross_origin_opener_policy",
            "cross-origin-opener-policy",
            &raw.cross_origin_opener_policy,
            preset.coop,
            &[
                "same-origin",
                "same-origin-allow-popups",
                "noopener-allow-popups",
                "unsafe-none",
            ][..],
        ),
        (
            "cross_origin_resource_policy",
            "cross-origin-resource-policy",
            &raw.cross_origin_resource_policy,
            preset.corp,
            &["same-origin", "same-site", "cross-origin"][..],
        ),
    ];
    for (field, header, section, (on, default), allowed) in cross_origin {
        if let Some(options) = resolve(section, on) {
            let value = options.and_then(|o| o.policy.as_deref()).unwrap_or(default);
            push(header, one_of(&format!("{field}.policy"), value, allowed)?);
        }
    }
    if raw
        .origin_agent_cluster
        .unwrap_or(preset.origin_agent_cluster)
    {
        push("origin-agent-cluster", "?1".into());
    }
    if let Some(options) = resolve(&raw.referrer_policy, preset.referrer_policy.0) {
        let tokens: Vec<String> = match options.and_then(|o| o.policy.as_ref()) {
            Some(list) => list.0.clone(),
            None => preset
                .referrer_policy
                .1
                .iter()
                .map(|t| t.to_string())
                .collect(),
        };
        push("referrer-policy", referrer_policy(&tokens)?);
    }
    if let Some(options) = resolve(&raw.strict_transport_security, preset.hsts.0) {
        let (_, default_age, default_sub, default_preload) = preset.hsts;
        let max_age = options.and_then(|o| o.max_age).unwrap_or(default_age);
        let subdomains = options
            .and_then(|o| o.include_subdomains)
            .unwrap_or(default_sub);
        let preload = options.and_then(|o| o.preload).unwrap_or(default_preload);
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
        push("strict-transport-security", value);
    }
    if raw
        .x_content_type_options
        .unwrap_or(preset.x_content_type_options)
    {
        push("x-content-type-options", "nosniff".into());
    }
    if let Some(options) = resolve(&raw.x_dns_prefetch_control, preset.x_dns_prefetch_control.0) {
        let allow = options
            .and_then(|o| o.allow)
            .unwrap_or(preset.x_dns_prefetch_control.1);
        push(
            "x-dns-prefetch-control",
            if allow { "on" } else { "off" }.into(),
        );
    }
    if raw.x_download_options.unwrap_or(preset.x_download_options) {
        push("x-download-options", "noopen".into());
    }
    if let Some(options) = resolve(&raw.x_frame_options, preset.x_frame_options.0) {
        let value = match options.and_then(|o| o.action.as_deref()) {
            // helmet upper-cases what it is given.
            Some(action) => one_of(
                "x_frame_options.action",
                &action.to_ascii_uppercase().replace("SAME-ORIGIN", "SAMEORIGIN"),
                &["DENY", "SAMEORIGIN"],
            )
            .map_err(|_| {
                ConfigError::new(
                    "x_frame_options.action",
                    format!("`{action}` is not DENY or SAMEORIGIN (ALLOW-FROM is obsolete; use CSP frame-ancestors)"),
                )
            })?,
            None => preset.x_frame_options.1.to_string(),
        };
        push("x-frame-options", value);
    }
    if let Some(options) = resolve(
        &raw.x_permitted_cross_domain_policies,
        preset.x_permitted_cross_domain_policies.0,
    ) {
        let value = options
            .and_then(|o| o.permitted_policies.as_deref())
            .unwrap_or(preset.x_permitted_cross_domain_policies.1);
        push(
            "x-permitted-cross-domain-policies",
            one_of(
                "x_permitted_cross_domain_policies.permitted_policies",
                value,
                &["none", "master-only", "by-content-type", "all"],
            )?,
        );
    }
    if raw.x_xss_protection.unwrap_or(preset.x_xss_protection) {
        push("x-xss-protection", "0".into());
    }
    if let Some(options) = resolve(&raw.permissions_policy, preset.permissions_policy.is_some()) {
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
        }
        .map_err(|e| e.within("permissions_policy"))?;
        push("permissions-policy", value);
    }
    let cache_control = match &raw.cache_control {
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
    if let Some(value) = cache_control {
        if http::HeaderValue::from_str(&value).is_err() || value.trim().is_empty() {
            return Err(ConfigError::new(
                "cache_control",
                format!("`{value}` is not a valid header value"),
            ));
        }
        push("cache-control", value);
    }

    let mut remove: Vec<String> = match &raw.remove {
        Some(list) => {
            let mut names = Vec::with_capacity(list.len());
            for (i, name) in list.iter().enumerate() {
                if !is_header_name(name) {
                    return Err(ConfigError::new(
                        format!("remove[{i}]"),
                        format!("`{name}` is not a header name"),
                    ));
                }
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
    if let Some((name, _)) = set
        .iter()
        .find(|(name, _)| remove.binary_search(name).is_ok())
    {
        return Err(ConfigError::new(
            "remove",
            format!("`{name}` is both set and removed"),
        ));
    }
    Ok(SecurityHeaders {
        set,
        remove,
        existing: raw.existing.unwrap_or_default(),
    })
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

fn referrer_policy(tokens: &[String]) -> Result<String, ConfigError> {
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
