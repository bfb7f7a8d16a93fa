//! helmet 8.3.0's default response headers, written from helmet's own source (not from what
//! the filter does, so that the tests comparing the filter with it can fail). The one copy for
//! the benchmark (the `native` variant sets them with Envoy's header_mutation) and the
//! end-to-end tests (`test_harness::expect`): xtask is the crate both depend on. The filter's
//! unit tests keep their own copy, as the filter depends on neither.

/// helmet 8.3.0's `helmet()` response headers, in the order its middleware sets them.
pub const HELMET_HEADERS: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests",
    ),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("origin-agent-cluster", "?1"),
    ("referrer-policy", "no-referrer"),
    (
        "strict-transport-security",
        "max-age=31536000; includeSubDomains",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-dns-prefetch-control", "off"),
    ("x-download-options", "noopen"),
    ("x-frame-options", "SAMEORIGIN"),
    ("x-permitted-cross-domain-policies", "none"),
    ("x-xss-protection", "0"),
];
