//! The two presets: helmet 8.3's defaults and the OWASP Secure Headers Project's
//! recommendations. Explicit settings override the preset, header by header.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// Exactly what `helmet()` (npm helmet 8.3.0) sets, and `X-Powered-By` removed.
    #[default]
    Helmet,
    /// The OWASP Secure Headers Project's `headers_add.json` values, and its
    /// `headers_remove.json` list stripped.
    Owasp,
}

/// What a preset does for each header when the config says nothing about it; the values also
/// fill in options a config leaves out.
#[derive(Debug, Clone)]
pub struct PresetValues {
    pub csp: Option<&'static [(&'static str, &'static [&'static str])]>,
    /// helmet joins directives with `;`, OWASP writes `; `.
    pub csp_separator: &'static str,
    pub coep: PresetHeader<&'static str>,
    pub coop: PresetHeader<&'static str>,
    pub corp: PresetHeader<&'static str>,
    pub origin_agent_cluster: bool,
    /// The policy tokens.
    pub referrer_policy: PresetHeader<&'static [&'static str]>,
    pub hsts: PresetHsts,
    pub x_content_type_options: bool,
    /// Whether prefetching is allowed (`on`) or not (`off`).
    pub x_dns_prefetch_control: PresetHeader<bool>,
    pub x_download_options: bool,
    /// The action.
    pub x_frame_options: PresetHeader<&'static str>,
    pub x_permitted_cross_domain_policies: PresetHeader<&'static str>,
    pub x_xss_protection: bool,
    pub permissions_policy: Option<&'static [(&'static str, &'static [&'static str])]>,
    pub cache_control: Option<&'static str>,
    pub remove: &'static [&'static str],
    pub remove_leaky: bool,
}

/// A header with one option: whether the preset sends it, and the option's value when the
/// config gives none.
#[derive(Debug, Clone, Copy)]
pub struct PresetHeader<T> {
    pub on: bool,
    pub default: T,
}

/// Strict-Transport-Security: whether the preset sends it, and its options' values when the
/// config gives none.
#[derive(Debug, Clone, Copy)]
pub struct PresetHsts {
    pub on: bool,
    pub max_age: u64,
    pub include_subdomains: bool,
    pub preload: bool,
}

/// helmet 8.3.0's default CSP directives, in its order.
pub const HELMET_CSP: &[(&str, &[&str])] = &[
    ("default-src", &["'self'"]),
    ("base-uri", &["'self'"]),
    ("font-src", &["'self'", "https:", "data:"]),
    ("form-action", &["'self'"]),
    ("frame-ancestors", &["'self'"]),
    ("img-src", &["'self'", "data:"]),
    ("object-src", &["'none'"]),
    ("script-src", &["'self'"]),
    ("script-src-attr", &["'none'"]),
    ("style-src", &["'self'", "https:", "'unsafe-inline'"]),
    ("upgrade-insecure-requests", &[]),
];

/// OWASP headers_add.json (2026-07-19): `default-src 'self'; form-action 'self'; base-uri
/// 'self'; object-src 'none'; frame-ancestors 'none'; upgrade-insecure-requests`.
pub const OWASP_CSP: &[(&str, &[&str])] = &[
    ("default-src", &["'self'"]),
    ("form-action", &["'self'"]),
    ("base-uri", &["'self'"]),
    ("object-src", &["'none'"]),
    ("frame-ancestors", &["'none'"]),
    ("upgrade-insecure-requests", &[]),
];

/// OWASP headers_add.json's Permissions-Policy, feature by feature, in its order.
pub const OWASP_PERMISSIONS: &[(&str, &[&str])] = &[
    ("accelerometer", &[]),
    ("autoplay", &[]),
    ("camera", &[]),
    ("cross-origin-isolated", &[]),
    ("display-capture", &[]),
    ("encrypted-media", &[]),
    ("fullscreen", &[]),
    ("geolocation", &[]),
    ("gyroscope", &[]),
    ("keyboard-map", &[]),
    ("magnetometer", &[]),
    ("microphone", &[]),
    ("midi", &[]),
    ("payment", &[]),
    ("picture-in-picture", &[]),
    ("publickey-credentials-get", &[]),
    ("screen-wake-lock", &[]),
    ("sync-xhr", &["self"]),
    ("usb", &[]),
    ("web-share", &[]),
    ("xr-spatial-tracking", &[]),
    ("clipboard-read", &[]),
    ("clipboard-write", &[]),
    ("gamepad", &[]),
    ("hid", &[]),
    ("idle-detection", &[]),
    ("interest-cohort", &[]),
    ("serial", &[]),
    ("unload", &[]),
];

/// The OWASP Secure Headers Project's list of response headers that leak information about
/// the stack (headers_remove.json, 2026-07-19, plus `TeamCity-Node-Id` from the project's
/// current best-practices page), lowercased.
pub const OWASP_REMOVE: &[&str] = &[
    "$wsep",
    "host-header",
    "k-proxy-request",
    "liferay-portal",
    "oraclecommercecloud-version",
    "pega-host",
    "powered-by",
    "product",
    "server",
    "sourcemap",
    "teamcity-node-id",
    "x-aspnet-version",
    "x-aspnetmvc-version",
    "x-atmosphere-error",
    "x-atmosphere-first-request",
    "x-atmosphere-tracking-id",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-spanid",
    "x-b3-traceid",
    "x-beserver",
    "x-backside-transport",
    "x-cf-powered-by",
    "x-cms",
    "x-calculatedbetarget",
    "x-cocoon-version",
    "x-content-encoded-by",
    "x-datadog-origin",
    "x-datadog-parent-id",
    "x-datadog-sampling-priority",
    "x-datadog-tags",
    "x-datadog-trace-id",
    "x-diaginfo",
    "x-envoy-attempt-count",
    "x-envoy-external-address",
    "x-envoy-internal",
    "x-envoy-original-dst-host",
    "x-envoy-upstream-service-time",
    "x-feserver",
    "x-framework",
    "x-generated-by",
    "x-generator",
    "x-gitlab-meta",
    "x-jitsi-release",
    "x-joomla-version",
    "x-kong-admin-latency",
    "x-kong-client-latency",
    "x-kong-proxy-latency",
    "x-kong-request-id",
    "x-kong-response-latency",
    "x-kong-third-party-latency",
    "x-kong-total-latency",
    "x-kong-upstream-latency",
    "x-kong-upstream-status",
    "x-kubernetes-pf-flowschema-ui",
    "x-kubernetes-pf-prioritylevel-uid",
    "x-litespeed-cache",
    "x-litespeed-purge",
    "x-litespeed-tag",
    "x-litespeed-vary",
    "x-litespeed-cache-control",
    "x-mod-pagespeed",
    "x-nextjs-cache",
    "x-nextjs-matched-path",
    "x-nextjs-page",
    "x-nextjs-redirect",
    "x-owa-version",
    "x-old-content-length",
    "x-oneagent-js-injection",
    "x-page-speed",
    "x-php-version",
    "x-powered-by",
    "x-powered-by-plesk",
    "x-powered-cms",
    "x-redirect-by",
    "x-server-powered-by",
    "x-sourcefiles",
    "x-sourcemap",
    "x-turbo-charged-by",
    "x-tyk-trace-id",
    "x-umbraco-version",
    "x-varnish-backend",
    "x-varnish-server",
    "x-woodpecker-version",
    "x-dtagentid",
    "x-dthealthcheck",
    "x-dtinjectedservlet",
    "x-ruxit-js-agent",
];

/// helmet 8.3.0's defaults.
const HELMET: PresetValues = PresetValues {
    csp: Some(HELMET_CSP),
    csp_separator: ";",
    coep: PresetHeader {
        on: false,
        default: "require-corp",
    },
    coop: PresetHeader {
        on: true,
        default: "same-origin",
    },
    corp: PresetHeader {
        on: true,
        default: "same-origin",
    },
    origin_agent_cluster: true,
    referrer_policy: PresetHeader {
        on: true,
        default: &["no-referrer"],
    },
    hsts: PresetHsts {
        on: true,
        max_age: 31_536_000,
        include_subdomains: true,
        preload: false,
    },
    x_content_type_options: true,
    x_dns_prefetch_control: PresetHeader {
        on: true,
        default: false,
    },
    x_download_options: true,
    x_frame_options: PresetHeader {
        on: true,
        default: "SAMEORIGIN",
    },
    x_permitted_cross_domain_policies: PresetHeader {
        on: true,
        default: "none",
    },
    x_xss_protection: true,
    permissions_policy: None,
    cache_control: None,
    remove: &["x-powered-by"],
    remove_leaky: false,
};

/// The OWASP Secure Headers Project's values.
const OWASP: PresetValues = PresetValues {
    csp: Some(OWASP_CSP),
    csp_separator: "; ",
    coep: PresetHeader {
        on: true,
        default: "require-corp",
    },
    coop: PresetHeader {
        on: true,
        default: "same-origin",
    },
    corp: PresetHeader {
        on: true,
        default: "same-origin",
    },
    origin_agent_cluster: false,
    referrer_policy: PresetHeader {
        on: true,
        default: &["no-referrer"],
    },
    hsts: PresetHsts {
        on: true,
        max_age: 63_072_000,
        include_subdomains: true,
        preload: false,
    },
    x_content_type_options: true,
    x_dns_prefetch_control: PresetHeader {
        on: true,
        default: false,
    },
    x_download_options: false,
    x_frame_options: PresetHeader {
        on: true,
        default: "deny",
    },
    x_permitted_cross_domain_policies: PresetHeader {
        on: true,
        default: "none",
    },
    x_xss_protection: false,
    permissions_policy: Some(OWASP_PERMISSIONS),
    cache_control: Some("no-store, max-age=0"),
    remove: &["x-powered-by"],
    remove_leaky: true,
};

impl Preset {
    pub fn values(self) -> PresetValues {
        match self {
            Self::Helmet => HELMET,
            Self::Owasp => OWASP,
        }
    }
}
