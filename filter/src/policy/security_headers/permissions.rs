//! Permissions-Policy: a structured-field dictionary (RFC 9651) of feature to allowlist, e.g.
//! `camera=(), geolocation=(self "https://maps.example")`.

use crate::syntax::ConfigError;

fn is_feature_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// An origin as the header wants it: `scheme://host[:port]`, nothing after.
fn is_origin(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once("://") else {
        return false;
    };
    !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
        && !rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
}

fn allowlist(feature: &str, items: &[String]) -> Result<String, ConfigError> {
    let path = format!("features.{feature}");
    if items.iter().any(|i| i == "*") {
        return if items.len() == 1 {
            Ok("*".to_string())
        } else {
            Err(ConfigError::new(
                path,
                "`*` allows every origin; it cannot be combined with others",
            ))
        };
    }
    let mut members = Vec::with_capacity(items.len());
    for item in items {
        match item.as_str() {
            "self" => members.push("self".to_string()),
            "'self'" | "'none'" | "'src'" | "src" | "none" => {
                return Err(ConfigError::new(
                    path,
                    format!(
                        "`{item}` is iframe-attribute syntax; in the header write `self`, an origin, `*`, or [] for nobody"
                    ),
                ));
            }
            origin if is_origin(origin) => members.push(format!("\"{origin}\"")),
            other => {
                return Err(ConfigError::new(
                    path,
                    format!(
                        "`{other}` is not `self`, `*` or an origin such as https://example.com"
                    ),
                ));
            }
        }
    }
    Ok(format!("({})", members.join(" ")))
}

pub fn compile<'a>(
    features: impl IntoIterator<Item = (&'a str, &'a [String])>,
) -> Result<String, ConfigError> {
    let mut parts = Vec::new();
    for (name, items) in features {
        if !is_feature_name(name) {
            return Err(ConfigError::new(
                format!("features.{name}"),
                format!(
                    "`{name}` is not a feature name (lowercase letters, digits and `-`, such as `camera`)"
                ),
            ));
        }
        parts.push(format!("{name}={}", allowlist(name, items)?));
    }
    if parts.is_empty() {
        return Err(ConfigError::new(
            "features",
            "no features; list some, or turn the header off with `permissions_policy: false`",
        ));
    }
    Ok(parts.join(", "))
}
