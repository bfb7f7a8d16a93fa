//! Content-Security-Policy: directives merged with the preset's, validated and serialised the
//! way helmet 8.3.0 does it (`parseDirectives` in `middlewares/content-security-policy/index.ts`;
//! checked against the published npm package, whose `index.cjs` is the same code):
//!
//! - the header starts from the defaults in their own order (`new Map(Object.entries(defaults))`),
//!   or from nothing with `use_defaults: false`;
//! - the configured directives are then taken in the order written: a directive with sources is
//!   `Map.set`, which keeps the position of a default of the same name (an override stays where
//!   the default was) and appends a new one at the end; `null` is `Map.delete` (a no-op for a
//!   directive that is not there); `default-src: null` is refused;
//! - `dangerously_disable_default_src: true` is helmet's `defaultSrc:
//!   dangerouslyDisableDefaultSrc`: default-src is left out (and may not be set as well);
//! - names are CSP's (`script-src`) or helmet's camelCase (`scriptSrc`, dashified); the same
//!   directive in both spellings is refused (helmet: "duplicate directive");
//! - a directive without sources (`[]`, or helmet's `""`) is its bare name
//!   (`upgrade-insecure-requests`); directives are joined with `;` (helmet) and sources with
//!   spaces.
//!
//! helmet 8.2 and earlier (`normalizeDirectives`) wrote the configured directives first and the
//! remaining defaults after them; 8.3.0 changed to the order above.

use super::presets::PresetValues;
use super::raw::RawCsp;
use crate::syntax::{ConfigError, OneOrMany};

/// Directive names a policy may use (CSP Level 3 and the Trusted Types, Fenced Frames and
/// WebRTC additions, plus deprecated ones browsers still read). Anything else is a typo.
const KNOWN_DIRECTIVES: &[&str] = &[
    "base-uri",
    "block-all-mixed-content",
    "child-src",
    "connect-src",
    "default-src",
    "fenced-frame-src",
    "font-src",
    "form-action",
    "frame-ancestors",
    "frame-src",
    "img-src",
    "manifest-src",
    "media-src",
    "object-src",
    "prefetch-src",
    "report-to",
    "report-uri",
    "require-trusted-types-for",
    "sandbox",
    "script-src",
    "script-src-attr",
    "script-src-elem",
    "style-src",
    "style-src-attr",
    "style-src-elem",
    "trusted-types",
    "upgrade-insecure-requests",
    "webrtc",
    "worker-src",
];

/// CSP keywords that only mean something quoted (`'self'`); helmet refuses them bare.
const MUST_BE_QUOTED: &[&str] = &[
    "none",
    "self",
    "strict-dynamic",
    "report-sample",
    "inline-speculation-rules",
    "unsafe-inline",
    "unsafe-eval",
    "unsafe-hashes",
    "wasm-unsafe-eval",
];
const MUST_BE_QUOTED_PREFIXES: &[&str] = &["nonce-", "sha256-", "sha384-", "sha512-"];

/// helmet's name conversion: `scriptSrc` is `script-src`.
fn dashify(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('-');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn check_source(directive: &str, source: &str) -> Result<(), ConfigError> {
    let path = format!("directives.{directive}");
    if source.contains(';') || source.contains(',') {
        return Err(ConfigError::new(
            path,
            format!("`{source}` contains `;` or `,`, which would end the directive or the header"),
        ));
    }
    if let Some(c) = source
        .chars()
        .find(|c| !(c.is_ascii_graphic() || *c == ' '))
    {
        return Err(ConfigError::new(
            path,
            format!(
                "`{source}` contains {c:?}; CSP sources are visible ASCII (percent-encode the rest)"
            ),
        ));
    }
    if source.trim().is_empty() {
        return Err(ConfigError::new(
            path,
            "an empty source; use [] for a directive without sources",
        ));
    }
    if MUST_BE_QUOTED.contains(&source)
        || MUST_BE_QUOTED_PREFIXES
            .iter()
            .any(|p| source.starts_with(p))
    {
        return Err(ConfigError::new(
            path,
            format!(
                "`{source}` should be quoted: write '{source}' (with single quotes) in the list"
            ),
        ));
    }
    Ok(())
}

fn directive_name(written: &str) -> Result<String, ConfigError> {
    let name = dashify(written);
    if KNOWN_DIRECTIVES.contains(&name.as_str()) {
        Ok(name)
    } else {
        Err(ConfigError::new(
            format!("directives.{written}"),
            format!(
                "`{written}` is not a CSP directive (known: {})",
                KNOWN_DIRECTIVES.join(", ")
            ),
        ))
    }
}

/// The sources of a directive as written. helmet 8.3 prints a directive whose sources join to
/// the empty string as its bare name, so `""` (or `[""]`) is the same as `[]`.
fn sources_of(directive: &str, written: &[String]) -> Result<Vec<String>, ConfigError> {
    if matches!(written, [only] if only.is_empty()) {
        return Ok(Vec::new());
    }
    for source in written {
        check_source(directive, source)?;
    }
    Ok(written.to_vec())
}

/// A directive's name and sources, in the header's order.
type Directives = Vec<(String, Vec<String>)>;

/// The header name (report-only or not) and its value. A policy that resolves to nothing is a
/// config error, not a missing header.
pub fn compile(raw: &RawCsp, preset: &PresetValues) -> Result<(&'static str, String), ConfigError> {
    let disable_default_src = raw.dangerously_disable_default_src.unwrap_or(false);
    let mut directives = starting_directives(raw, preset, disable_default_src);
    apply_configured(&mut directives, raw, disable_default_src)?;
    check_complete(&directives, disable_default_src)?;
    let value = directives
        .iter()
        .map(|(name, sources)| {
            if sources.is_empty() {
                name.clone()
            } else {
                format!("{name} {}", sources.join(" "))
            }
        })
        .collect::<Vec<_>>()
        .join(preset.csp_separator);
    let header = if raw.report_only.unwrap_or(false) {
        "content-security-policy-report-only"
    } else {
        "content-security-policy"
    };
    Ok((header, value))
}

/// helmet: `new Map(useDefaults ? Object.entries(getDefaultDirectives()) : [])`, without
/// default-src when it is disabled.
fn starting_directives(
    raw: &RawCsp,
    preset: &PresetValues,
    disable_default_src: bool,
) -> Directives {
    let mut directives: Directives = match (raw.use_defaults.unwrap_or(true), preset.csp) {
        (true, Some(defaults)) => defaults
            .iter()
            .map(|(name, sources)| {
                (
                    name.to_string(),
                    sources.iter().map(|s| s.to_string()).collect(),
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    if disable_default_src {
        directives.retain(|(n, _)| n != "default-src");
    }
    directives
}

/// The configured directives in the order written: `Map.set` for one with sources, `Map.delete`
/// for `null`.
fn apply_configured(
    directives: &mut Directives,
    raw: &RawCsp,
    disable_default_src: bool,
) -> Result<(), ConfigError> {
    let mut seen: Vec<String> = Vec::new();
    for (written, value) in raw
        .directives
        .as_ref()
        .map(|d| d.0.as_slice())
        .unwrap_or_default()
    {
        let name = directive_name(written)?;
        if seen.contains(&name) {
            return Err(ConfigError::new(
                format!("directives.{written}"),
                format!("directive `{name}` is given twice (as {written} and in another spelling)"),
            ));
        }
        seen.push(name.clone());
        match value {
            None if name == "default-src" => {
                return Err(ConfigError::new(
                    format!("directives.{written}"),
                    "default-src cannot be null: the policy needs one (set `dangerously_disable_default_src: true`, without listing default-src, if you really mean to leave it out)",
                ));
            }
            // `Map.delete`: gone, wherever it was; nothing happens if it was not there.
            None => directives.retain(|(n, _)| *n != name),
            Some(_) if name == "default-src" && disable_default_src => {
                return Err(ConfigError::new(
                    format!("directives.{written}"),
                    "default-src is set, but `dangerously_disable_default_src: true` leaves it out; keep one of the two",
                ));
            }
            Some(OneOrMany(written_sources)) => {
                let sources = sources_of(written, written_sources)?;
                // `Map.set`: an existing directive keeps its position, a new one goes last.
                match directives.iter_mut().find(|(n, _)| *n == name) {
                    Some(existing) => existing.1 = sources,
                    None => directives.push((name, sources)),
                }
            }
        }
    }
    Ok(())
}

/// A policy needs directives, and a default-src unless it is disabled.
fn check_complete(directives: &Directives, disable_default_src: bool) -> Result<(), ConfigError> {
    if directives.is_empty() {
        return Err(ConfigError::new(
            "directives",
            "the policy has no directives; set some, or turn the header off with `content_security_policy: false`",
        ));
    }
    if !disable_default_src && !directives.iter().any(|(n, _)| n == "default-src") {
        return Err(ConfigError::new(
            "directives",
            "the policy needs a default-src (set `dangerously_disable_default_src: true` if you really mean to leave it out)",
        ));
    }
    Ok(())
}
