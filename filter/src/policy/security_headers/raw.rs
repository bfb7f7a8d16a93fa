//! The `security_headers` section as users write it.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::presets::Preset;
use crate::syntax::{OneOrMany, OrderedMap, Section, impl_over};

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawSecurityHeaders {
    pub preset: Option<Preset>,
    pub content_security_policy: Option<Section<RawCsp>>,
    pub cross_origin_embedder_policy: Option<Section<RawPolicy>>,
    pub cross_origin_opener_policy: Option<Section<RawPolicy>>,
    pub cross_origin_resource_policy: Option<Section<RawPolicy>>,
    pub origin_agent_cluster: Option<bool>,
    pub referrer_policy: Option<Section<RawReferrerPolicy>>,
    pub strict_transport_security: Option<Section<RawHsts>>,
    pub x_content_type_options: Option<bool>,
    pub x_dns_prefetch_control: Option<Section<RawDnsPrefetchControl>>,
    pub x_download_options: Option<bool>,
    pub x_frame_options: Option<Section<RawFrameOptions>>,
    pub x_permitted_cross_domain_policies: Option<Section<RawPermittedPolicies>>,
    pub x_xss_protection: Option<bool>,
    pub permissions_policy: Option<Section<RawPermissionsPolicy>>,
    pub cache_control: Option<CacheControl>,
    /// Response headers to strip (default: `x-powered-by`).
    pub remove: Option<Vec<String>>,
    /// Also strip the OWASP list of headers that leak the stack (`Server`, `X-AspNet-Version`...).
    pub remove_owasp_leaky_headers: Option<bool>,
    /// What to do when the upstream already set one of these headers.
    pub existing: Option<Existing>,
}

impl_over!(RawSecurityHeaders {
    preset,
    content_security_policy,
    cross_origin_embedder_policy,
    cross_origin_opener_policy,
    cross_origin_resource_policy,
    origin_agent_cluster,
    referrer_policy,
    strict_transport_security,
    x_content_type_options,
    x_dns_prefetch_control,
    x_download_options,
    x_frame_options,
    x_permitted_cross_domain_policies,
    x_xss_protection,
    permissions_policy,
    cache_control,
    remove,
    remove_owasp_leaky_headers,
    existing,
});

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Existing {
    /// Replace the upstream's value (never two of the same header).
    #[default]
    Override,
    /// Keep the upstream's value; add the header only where the upstream did not.
    KeepUpstream,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawCsp {
    /// Directive name (`script-src`, or helmet's `scriptSrc`) to sources; `null` removes a
    /// default directive.
    pub directives: Option<OrderedMap<Option<OneOrMany>>>,
    /// Merge with the preset's directives (default) or replace them.
    pub use_defaults: Option<bool>,
    /// Send `Content-Security-Policy-Report-Only` instead.
    pub report_only: Option<bool>,
    /// Leave `default-src` out, default or not (helmet's `defaultSrc:
    /// dangerouslyDisableDefaultSrc`); the policy is then allowed without one.
    pub dangerously_disable_default_src: Option<bool>,
}

/// `{policy: "..."}` for the Cross-Origin-*-Policy headers.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub policy: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawReferrerPolicy {
    /// One token or a list (joined with `,`).
    pub policy: Option<OneOrMany>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawHsts {
    pub max_age: Option<u64>,
    pub include_subdomains: Option<bool>,
    pub preload: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawDnsPrefetchControl {
    pub allow: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawFrameOptions {
    pub action: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawPermittedPolicies {
    pub permitted_policies: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawPermissionsPolicy {
    /// Feature name to allowlist: `[]` (nobody), `["self"]`, `["*"]`, origins.
    pub features: Option<OrderedMap<Vec<String>>>,
}

/// `cache_control: false`, `true` (the preset's value, else `no-store, max-age=0`) or a value.
#[derive(Debug, Clone, PartialEq)]
pub enum CacheControl {
    Off,
    PresetValue,
    Value(String),
}

impl<'de> Deserialize<'de> for CacheControl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CacheControlVisitor;

        impl Visitor<'_> for CacheControlVisitor {
            type Value = CacheControl;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("false, true or a Cache-Control value")
            }

            fn visit_bool<E: de::Error>(self, on: bool) -> Result<Self::Value, E> {
                Ok(if on {
                    CacheControl::PresetValue
                } else {
                    CacheControl::Off
                })
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CacheControl::Value(v.to_string()))
            }
        }

        deserializer.deserialize_any(CacheControlVisitor)
    }
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for CacheControl {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "CacheControl".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": ["boolean", "string"]})
    }
}
