//! The `cors` section as users write it.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::syntax::impl_over;

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawCors {
    /// Serialised origins (`https://app.example.com`), `*`, subdomain patterns
    /// (`https://*.example.com`), `{regex: "^...$"}`, or the literal `"null"`.
    pub allow_origins: Option<Vec<RawOrigin>>,
    pub allow_methods: Option<Vec<String>>,
    /// A list of header names, `"*"`, or `"reflect"` (allow what the preflight asks for).
    pub allow_headers: Option<RawAllowHeaders>,
    pub expose_headers: Option<Vec<String>>,
    pub allow_credentials: Option<bool>,
    /// Seconds browsers may cache a preflight answer.
    pub max_age: Option<u32>,
    pub allow_private_network: Option<bool>,
    #[cfg_attr(feature = "schema", schemars(range(min = 200, max = 299)))]
    pub preflight_status: Option<u16>,
    pub disallowed: Option<Disallowed>,
}

impl_over!(RawCors {
    allow_origins,
    allow_methods,
    allow_headers,
    expose_headers,
    allow_credentials,
    max_age,
    allow_private_network,
    preflight_status,
    disallowed,
});

/// What happens to a request from an origin (or asking for a method or header) the policy
/// does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Disallowed {
    /// 403 problem+json; the request never reaches the upstream.
    #[default]
    Reject,
    /// Pass without CORS headers (the browser then blocks the response), as the `cors` npm
    /// package does.
    Omit,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RawOrigin {
    Text(String),
    Regex(String),
}

impl RawOrigin {
    /// As written, for messages.
    pub fn text(&self) -> &str {
        match self {
            Self::Text(text) | Self::Regex(text) => text,
        }
    }
}

impl<'de> Deserialize<'de> for RawOrigin {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
        #[serde(deny_unknown_fields)]
        struct RegexForm {
            regex: String,
        }

        struct OriginVisitor;

        impl<'de> Visitor<'de> for OriginVisitor {
            type Value = RawOrigin;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an origin string or {regex: \"^...$\"}")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawOrigin::Text(v.to_string()))
            }

            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                RegexForm::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|r| RawOrigin::Regex(r.regex))
            }
        }

        deserializer.deserialize_any(OriginVisitor)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum RawAllowHeaders {
    List(Vec<String>),
    Any,
    Reflect,
}

impl<'de> Deserialize<'de> for RawAllowHeaders {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AllowHeadersVisitor;

        impl<'de> Visitor<'de> for AllowHeadersVisitor {
            type Value = RawAllowHeaders;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of header names, \"*\" or \"reflect\"")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                match v {
                    "*" => Ok(RawAllowHeaders::Any),
                    "reflect" => Ok(RawAllowHeaders::Reflect),
                    other => Err(E::custom(format!(
                        "`{other}`: expected a list of header names, \"*\" or \"reflect\""
                    ))),
                }
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                Ok(RawAllowHeaders::List(names))
            }
        }

        deserializer.deserialize_any(AllowHeadersVisitor)
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for RawOrigin {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RawOrigin".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "anyOf": [
                {"type": "string"},
                {
                    "type": "object",
                    "properties": {"regex": {"type": "string"}},
                    "required": ["regex"],
                    "additionalProperties": false
                }
            ]
        })
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for RawAllowHeaders {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RawAllowHeaders".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "anyOf": [{"enum": ["*", "reflect"]}, {"type": "array", "items": {"type": "string"}}]
        })
    }
}
