//! Which origins a policy allows, compiled once: exact serialised origins, subdomain patterns
//! and anchored regexes. A request's `Origin` is compared byte for byte, as the Fetch
//! standard's CORS check does.

use regex::Regex;
use url::Url;

use super::raw::RawOrigin;
use crate::syntax::ConfigError;

#[derive(Debug, Clone)]
pub enum AllowOrigins {
    /// `*`: any origin (never with credentials).
    Any,
    Listed(Listed),
}

#[derive(Debug, Clone, Default)]
pub struct Listed {
    /// Sorted, for binary search.
    exact: Vec<String>,
    subdomains: Vec<SubdomainPattern>,
    regexes: Vec<Regex>,
}

/// `scheme://*.example.com[:port]`: one or more labels before the domain, never the domain
/// itself, never a look-alike (`evil-example.com`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct SubdomainPattern {
    scheme: String,
    /// `.example.com`
    suffix: String,
    port: Option<String>,
}

impl AllowOrigins {
    pub fn allows(&self, origin: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Listed(listed) => listed.allows(origin),
        }
    }

    pub fn is_any(&self) -> bool {
        matches!(self, Self::Any)
    }
}

impl Listed {
    fn allows(&self, origin: &str) -> bool {
        self.exact
            .binary_search_by(|o| o.as_str().cmp(origin))
            .is_ok()
            || self.subdomains.iter().any(|p| p.matches(origin))
            || self.regexes.iter().any(|r| r.is_match(origin))
    }
}

impl SubdomainPattern {
    fn matches(&self, origin: &str) -> bool {
        let Some(rest) = origin
            .strip_prefix(self.scheme.as_str())
            .and_then(|r| r.strip_prefix("://"))
        else {
            return false;
        };
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
                (host, Some(port))
            }
            _ => (rest, None),
        };
        if port != self.port.as_deref() {
            return false;
        }
        let Some(labels) = host.strip_suffix(self.suffix.as_str()) else {
            return false;
        };
        !labels.is_empty()
            && !labels.starts_with('.')
            && !labels.ends_with('.')
            && !labels.contains("..")
            && labels
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    }
}

pub fn compile(raw: &[RawOrigin]) -> Result<AllowOrigins, ConfigError> {
    if raw.is_empty() {
        return Err(ConfigError::new(
            "",
            "no origins: list at least one, or `*`",
        ));
    }
    let mut listed = Listed::default();
    let mut any = false;
    let mut written: Vec<&RawOrigin> = Vec::with_capacity(raw.len());
    for (i, entry) in raw.iter().enumerate() {
        let at = |reason: String| ConfigError::new(format!("[{i}]"), reason);
        if written.contains(&entry) {
            return Err(at(format!("`{}` is listed twice", entry.text())));
        }
        written.push(entry);
        match entry {
            RawOrigin::Text(text) if text == "*" => any = true,
            RawOrigin::Text(text) if text == "null" => listed.exact.push(text.clone()),
            RawOrigin::Text(text) if text.contains('*') => {
                listed.subdomains.push(subdomain_pattern(text).map_err(at)?)
            }
            RawOrigin::Text(text) => {
                check_serialized_origin(text).map_err(at)?;
                listed.exact.push(text.clone());
            }
            RawOrigin::Regex(pattern) => listed.regexes.push(anchored_regex(pattern).map_err(at)?),
        }
    }
    if any {
        return if raw.len() == 1 {
            Ok(AllowOrigins::Any)
        } else {
            Err(ConfigError::new(
                "",
                "`*` allows every origin; list it alone",
            ))
        };
    }
    listed.exact.sort();
    Ok(AllowOrigins::Listed(listed))
}

/// A serialised origin exactly as browsers send it in `Origin`: lowercase
/// `scheme://host[:port]`, no path, no trailing slash, no default port, IDN in punycode.
pub fn check_serialized_origin(text: &str) -> Result<(), String> {
    let url = Url::parse(text).map_err(|e| format!("`{text}` is not an origin ({e})"))?;
    let serialized = url.origin().ascii_serialization();
    if serialized == "null" {
        return Err(format!(
            "`{text}` has no origin (only schemes such as http and https do); to allow the `null` origin, list the literal \"null\""
        ));
    }
    if serialized == text {
        return Ok(());
    }
    let after_authority = text
        .split_once("://")
        .map(|(_, rest)| {
            rest.find(['/', '?', '#'])
                .map_or("", |at| rest.get(at..).unwrap_or(""))
        })
        .unwrap_or("");
    let reason = if after_authority == "/" {
        "has a trailing slash"
    } else if !after_authority.is_empty() {
        "has a path, query or fragment; an origin is scheme://host[:port]"
    } else if text.chars().any(|c| c.is_ascii_uppercase()) {
        "is not lowercase"
    } else if !text.is_ascii() {
        "has a non-ASCII host; browsers send it in punycode"
    } else if url.port().is_none()
        && text
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
    {
        "writes out the scheme's default port, which browsers leave out"
    } else {
        "is not a serialized origin"
    };
    Err(format!("`{text}` {reason}: write `{serialized}`"))
}

fn subdomain_pattern(text: &str) -> Result<SubdomainPattern, String> {
    let (scheme, rest) = text
        .split_once("://*.")
        .ok_or_else(|| format!("`{text}`: a wildcard is only allowed as a whole first label, like https://*.example.com"))?;
    if rest.contains('*') {
        return Err(format!("`{text}`: only one wildcard, as the first label"));
    }
    // Check the rest as an origin by putting a label in the wildcard's place.
    let sample = format!("{scheme}://x.{rest}");
    check_serialized_origin(&sample).map_err(|reason| {
        format!("`{text}` is not a valid pattern (with a label for the *: {reason})")
    })?;
    let (domain, port) = match rest.rsplit_once(':') {
        Some((domain, port)) => (domain, Some(port.to_string())),
        None => (rest, None),
    };
    if !domain.contains('.') {
        return Err(format!(
            "`{text}` would allow every site under a top-level domain; name a registrable domain"
        ));
    }
    Ok(SubdomainPattern {
        scheme: scheme.to_string(),
        suffix: format!(".{domain}"),
        port,
    })
}

/// The pattern must be written anchored, so that what it allows is plain to a reader; it is
/// compiled wrapped in `^(?:…)$` as well, because anchors written at both ends do not anchor
/// every alternative: `^https://a\.example\.com|^https://b\.example\.com$` would otherwise
/// allow `https://a.example.com.evil.net`.
fn anchored_regex(pattern: &str) -> Result<Regex, String> {
    if !pattern.starts_with('^') || !pattern.ends_with('$') {
        return Err(format!(
            "regex `{pattern}` must be anchored with ^ and $ (an unanchored pattern matches origins that merely contain it)"
        ));
    }
    Regex::new(pattern).map_err(|e| format!("regex `{pattern}` does not compile: {e}"))?;
    Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| format!("regex `{pattern}` does not compile: {e}"))
}
