//! Expected values shared by tests, written from the sources they come from (not from what
//! the code happens to do).

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

/// Asserts that a response carries exactly helmet's headers (each once, byte for byte) and
/// no `x-powered-by`.
pub fn assert_helmet_headers(response: &crate::Response, context: &str) {
    for (name, value) in HELMET_HEADERS {
        assert_eq!(
            response.header_all(name),
            [*value],
            "{context}: header {name}"
        );
    }
    assert!(
        response.header_all("x-powered-by").is_empty(),
        "{context}: x-powered-by was not removed"
    );
    assert!(
        response
            .header_all("cross-origin-embedder-policy")
            .is_empty(),
        "{context}: helmet does not set COEP by default"
    );
}
