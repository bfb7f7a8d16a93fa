//! From the raw `rate_limit` section to compiled limits, refusing anything ambiguous.

use std::hash::Hasher;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::Quota;
use siphasher::sip::SipHasher13;

use std::sync::Arc;

use super::global::{Scope, Service};
use super::key::{KeyPart, KeySpec};
use super::raw::{RawLimit, RawLimits, Scope as RawScope};
use super::{Limit, RateLimits};
use crate::syntax::{ConfigError, check_header_name, parse_duration};

pub const DEFAULT_MESSAGE: &str = "Too many requests, please try again later.";
/// About 100k keys tracked at once per limit (8 slots per bucket).
pub const DEFAULT_SLOTS: u32 = 131_072;
const MAX_SLOTS: u32 = 1 << 24;

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
    {
        return Err(format!(
            "`{name}`: names are 1-64 letters, digits, `_`, `-` or `.`"
        ));
    }
    Ok(())
}

fn key_spec(raw: &RawLimit) -> Result<KeySpec, ConfigError> {
    let written: Vec<String> = raw
        .key
        .as_ref()
        .map_or_else(|| vec!["client_ip".to_string()], |k| k.0.clone());
    if written.is_empty() {
        return Err(ConfigError::new(
            "key",
            "an empty list; give at least one of client_ip, header:<name>, path, route",
        ));
    }
    let mut parts = Vec::with_capacity(written.len());
    for (i, text) in written.iter().enumerate() {
        let at = |reason: String| {
            ConfigError::new(
                if written.len() > 1 {
                    format!("key[{i}]")
                } else {
                    "key".into()
                },
                reason,
            )
        };
        let part = match text.as_str() {
            "client_ip" => KeyPart::ClientIp,
            "path" => KeyPart::Path,
            "route" => KeyPart::Route,
            other => match other.strip_prefix("header:") {
                Some(name) => {
                    check_header_name(name).map_err(at)?;
                    KeyPart::Header(name.to_ascii_lowercase())
                }
                None => {
                    return Err(at(format!(
                        "`{other}`: expected client_ip, header:<name>, path or route"
                    )));
                }
            },
        };
        if parts.contains(&part) {
            return Err(at(format!("`{text}` is listed twice")));
        }
        parts.push(part);
    }
    let prefix = |value: Option<u8>, default: u8, max: u8, field: &str| match value {
        None => Ok(default),
        Some(p) if (1..=max).contains(&p) => Ok(p),
        Some(p) => Err(ConfigError::new(
            field,
            format!("{p}: a prefix length from 1 to {max}"),
        )),
    };
    Ok(KeySpec {
        parts,
        ipv4_prefix: prefix(raw.ipv4_prefix, 32, 32, "ipv4_prefix")?,
        ipv6_prefix: prefix(raw.ipv6_prefix, 56, 128, "ipv6_prefix")?,
    })
}

fn compile_one(raw: &RawLimit, name: String) -> Result<Limit, ConfigError> {
    check_name(&name).map_err(|reason| ConfigError::new("name", reason))?;
    let limit = match raw.limit {
        None => {
            return Err(ConfigError::new(
                "limit",
                "required: requests allowed per window",
            ));
        }
        Some(0) => return Err(ConfigError::new("limit", "must be at least 1")),
        Some(n) => n,
    };
    let window_text = raw
        .window
        .as_deref()
        .ok_or_else(|| ConfigError::new("window", "required: 500ms, 10s, 15m, 1h, 1d..."))?;
    let window =
        parse_duration(window_text).map_err(|reason| ConfigError::new("window", reason))?;
    let burst = raw.burst.unwrap_or(limit);
    let quota = quota(limit, window, window_text, burst)?;
    let key = key_spec(raw)?;
    let has_header = key.parts.iter().any(|p| matches!(p, KeyPart::Header(_)));
    if raw.missing_key.is_some() && !has_header {
        return Err(ConfigError::new(
            "missing_key",
            "only applies to header: keys",
        ));
    }
    let message = message(raw)?;
    let scope = scope(raw)?;
    let slots = slots(raw)?;
    let table = table(&name, limit, window, burst, &key, slots, &scope);
    let window_secs = window.as_secs() + u64::from(window.subsec_nanos() > 0);
    Ok(Limit {
        policy_item: format!("\"{name}\";q={limit};w={window_secs}"),
        state_prefix: format!("\"{name}\";r="),
        name,
        limit,
        window,
        burst,
        quota,
        key,
        missing_key: raw.missing_key.unwrap_or_default(),
        mode: raw.mode.unwrap_or_default(),
        message,
        on_error: raw.on_error.unwrap_or_default(),
        buckets: slots / 8,
        table,
        legacy_headers: raw.legacy_headers.unwrap_or(false),
        scope,
    })
}

/// Where the limit is counted. A global limit's counting is its service's: the fields of the
/// local table (`burst`, `slots`, `on_error`) are refused rather than ignored.
fn scope(raw: &RawLimit) -> Result<Scope, ConfigError> {
    if raw.scope.unwrap_or_default() == RawScope::Local {
        if raw.service.is_some() {
            return Err(ConfigError::new(
                "service",
                "only for scope: global (a local limit is counted in this Envoy)",
            ));
        }
        return Ok(Scope::Local);
    }
    let local_only = [
        (
            "burst",
            raw.burst.is_some(),
            "the service's engine decides bursts",
        ),
        (
            "slots",
            raw.slots.is_some(),
            "the service keeps the counters",
        ),
        (
            "on_error",
            raw.on_error.is_some(),
            "use service.failure_mode",
        ),
    ];
    if let Some((field, _, why)) = local_only.iter().find(|(_, set, _)| *set) {
        return Err(ConfigError::new(
            *field,
            format!("only for local limits; with scope: global, {why}"),
        ));
    }
    Ok(Scope::Global(Arc::new(Service::compile(
        raw.service.as_ref(),
    )?)))
}

/// governor's quota: `limit` requests per `window` (GCRA emits one per window/limit), `burst`
/// at once.
fn quota(
    limit: u32,
    window: Duration,
    window_text: &str,
    burst: u32,
) -> Result<Quota, ConfigError> {
    let burst =
        NonZeroU32::new(burst).ok_or_else(|| ConfigError::new("burst", "must be at least 1"))?;
    let interval_ns = window.as_nanos() / u128::from(limit);
    let interval = Duration::from_nanos(u64::try_from(interval_ns).unwrap_or(u64::MAX));
    let quota = Quota::with_period(interval).ok_or_else(|| {
        ConfigError::new(
            "limit",
            format!("{limit} per {window_text} is more than one per nanosecond"),
        )
    })?;
    Ok(quota.allow_burst(burst))
}

/// The 429's detail.
fn message(raw: &RawLimit) -> Result<String, ConfigError> {
    let message = raw
        .message
        .clone()
        .unwrap_or_else(|| DEFAULT_MESSAGE.to_string());
    if message.chars().count() > 300 || message.chars().any(char::is_control) {
        return Err(ConfigError::new(
            "message",
            "at most 300 characters, no control characters",
        ));
    }
    Ok(message)
}

/// The state table's size in slots, a whole number of buckets.
fn slots(raw: &RawLimit) -> Result<u32, ConfigError> {
    match raw.slots {
        None => Ok(DEFAULT_SLOTS),
        Some(s) if (8..=MAX_SLOTS).contains(&s) => Ok(s.div_ceil(8) * 8),
        Some(s) => Err(ConfigError::new(
            "slots",
            format!("{s}: from 8 to {MAX_SLOTS}"),
        )),
    }
}

/// The table's shared-data key prefix, from everything that counts: a limit whose counting
/// changes gets a fresh table.
fn table(
    name: &str,
    limit: u32,
    window: Duration,
    burst: u32,
    key: &KeySpec,
    slots: u32,
    scope: &Scope,
) -> String {
    let mut hasher = SipHasher13::new();
    hasher.write(
        format!(
            "{name}|{limit}|{}|{burst}|{:?}|{slots}",
            window.as_nanos(),
            key
        )
        .as_bytes(),
    );
    // A global limit has no table; its service is part of what it means, so that one name
    // cannot stand for two limits.
    if let Scope::Global(service) = scope {
        hasher.write(format!("|{service:?}").as_bytes());
    }
    format!("hardening.rl.{:016x}.", hasher.finish())
}

/// A request asks one service one question: the global limits of a list share their service.
fn one_service(limits: &[Limit]) -> Result<(), ConfigError> {
    let mut services = limits
        .iter()
        .enumerate()
        .filter_map(|(i, l)| match &l.scope {
            Scope::Global(service) => Some((i, service)),
            Scope::Local => None,
        });
    let Some((_, first)) = services.next() else {
        return Ok(());
    };
    match services.find(|(_, service)| service != &first) {
        Some((i, _)) => Err(ConfigError::new(
            format!("[{i}].service"),
            "the global limits of one list must name the same service (one call per request)",
        )),
        None => Ok(()),
    }
}

pub fn compile(raw: &RawLimits) -> Result<RateLimits, ConfigError> {
    if raw.0.is_empty() {
        return Err(ConfigError::new(
            "",
            "no limits: give one (limit, window) or turn rate limiting off with false",
        ));
    }
    let mut limits: Vec<Limit> = Vec::with_capacity(raw.0.len());
    for (i, limit) in raw.0.iter().enumerate() {
        let name = match (&limit.name, raw.0.len()) {
            (Some(name), _) => name.clone(),
            (None, 1) => "default".to_string(),
            (None, _) => {
                return Err(ConfigError::new(
                    format!("[{i}].name"),
                    "name each limit when there are several",
                ));
            }
        };
        let compiled = compile_one(limit, name).map_err(|e| {
            if raw.0.len() > 1 {
                e.within(&format!("[{i}]"))
            } else {
                e
            }
        })?;
        if limits.iter().any(|l| l.name == compiled.name) {
            return Err(ConfigError::new(
                format!("[{i}].name"),
                format!("`{}` is used twice", compiled.name),
            ));
        }
        limits.push(compiled);
    }
    one_service(&limits)?;
    Ok(RateLimits {
        limits: limits.into_iter().map(std::sync::Arc::new).collect(),
    })
}
