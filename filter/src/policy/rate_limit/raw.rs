//! The `rate_limit` section as users write it: one limit, or a list of limits that must all
//! pass.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawLimit {
    /// Names the limit in headers, logs and metrics.
    #[cfg_attr(
        feature = "schema",
        schemars(regex(pattern = r"^[A-Za-z0-9_.-]{1,64}$"))
    )]
    pub name: Option<String>,
    /// Requests allowed per `window`.
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub limit: Option<u32>,
    /// `500ms`, `10s`, `15m`, `1h`, `1d`.
    #[cfg_attr(
        feature = "schema",
        schemars(regex(pattern = r"^\s*[0-9]+(ms|s|m|h|d)\s*$"))
    )]
    pub window: Option<String>,
    /// Requests allowed at once (default: `limit`).
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub burst: Option<u32>,
    /// `client_ip`, `header:<name>`, `path`, `route`, or a list of them.
    pub key: Option<RawKey>,
    /// For `header:` keys: `shared` (requests without the header share one bucket) or
    /// `reject` (400).
    pub missing_key: Option<MissingKey>,
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 32)))]
    pub ipv4_prefix: Option<u8>,
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 128)))]
    pub ipv6_prefix: Option<u8>,
    pub mode: Option<Mode>,
    /// The 429's detail.
    pub message: Option<String>,
    /// When shared data fails: `allow` or `deny`.
    pub on_error: Option<OnError>,
    /// Size of the state table (keys tracked at once).
    #[cfg_attr(feature = "schema", schemars(range(min = 8, max = 16_777_216)))]
    pub slots: Option<u32>,
    /// Also send `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset`.
    pub legacy_headers: Option<bool>,
    /// `local` (this Envoy's workers) or `global` (every replica, through a rate limit
    /// service).
    pub scope: Option<Scope>,
    /// The rate limit service a `global` limit asks.
    pub service: Option<RawService>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Counted in this Envoy, across its workers.
    #[default]
    Local,
    /// Counted by a rate limit service (Envoy's RLS protocol) for every replica.
    Global,
}

/// The rate limit service of a `global` limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawService {
    /// The Envoy cluster (HTTP/2) of the service.
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 255)))]
    pub cluster: Option<String>,
    /// The RLS `domain` (Limitador's namespace).
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 255)))]
    pub domain: Option<String>,
    /// How long a request waits for the answer: `1ms` to `10s`.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^\s*[0-9]+(ms|s)\s*$")))]
    pub timeout: Option<String>,
    /// When the service fails or times out: `allow` or `deny`.
    pub failure_mode: Option<OnError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Enforce,
    /// Count, log and send headers, never reject.
    DryRun,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Let requests through when the state cannot be read or written (availability first).
    #[default]
    Allow,
    /// Refuse them (protection first).
    Deny,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum MissingKey {
    #[default]
    Shared,
    Reject,
}

/// One key part, or a list combined.
#[derive(Debug, Clone, PartialEq)]
pub struct RawKey(pub Vec<String>);

impl<'de> Deserialize<'de> for RawKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;

        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = RawKey;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("client_ip, header:<name>, path, route, or a list of them")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawKey(vec![v.to_string()]))
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut parts = Vec::new();
                while let Some(part) = seq.next_element::<String>()? {
                    parts.push(part);
                }
                Ok(RawKey(parts))
            }
        }

        deserializer.deserialize_any(KeyVisitor)
    }
}

/// `rate_limit:` is one limit or a list of limits.
#[derive(Debug, Clone, Default)]
pub struct RawLimits(pub Vec<RawLimit>);

impl<'de> Deserialize<'de> for RawLimits {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LimitsVisitor;

        impl<'de> Visitor<'de> for LimitsVisitor {
            type Value = RawLimits;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a limit (an object) or a list of limits")
            }

            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                RawLimit::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|l| RawLimits(vec![l]))
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut limits = Vec::new();
                while let Some(limit) = seq.next_element::<RawLimit>()? {
                    limits.push(limit);
                }
                Ok(RawLimits(limits))
            }
        }

        deserializer.deserialize_any(LimitsVisitor)
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for RawKey {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RawKey".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let part = schemars::json_schema!({
            "type": "string",
            "pattern": "^(client_ip|path|route|header:.+)$"
        });
        schemars::json_schema!({
            "anyOf": [part, {"type": "array", "items": part, "minItems": 1}]
        })
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for RawLimits {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RawLimits".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let limit = generator.subschema_for::<RawLimit>();
        schemars::json_schema!({
            "anyOf": [limit, {"type": "array", "items": limit}]
        })
    }
}
