use super::*;
use crate::config::Config;
use crate::request::{Headers, RequestHead};

/// helmet 8.3.0's `helmet()` headers, in its order, as its middleware sets them.
/// The end-to-end tests and the benchmark share another copy (`xtask/src/bench/helmet.rs`):
/// the filter depends on neither crate, and these tests also build for wasm32-wasip1.
const HELMET_DEFAULTS: &[(&str, &str)] = &[
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

fn config(json: serde_json::Value) -> Config {
    Config::from_bytes(json.to_string().as_bytes()).expect("valid config")
}

fn defaults_of(json: serde_json::Value) -> SecurityHeaders {
    config(json)
        .defaults
        .security_headers
        .clone()
        .expect("security headers on")
}

fn set_of(headers: &SecurityHeaders) -> Vec<(&str, &str)> {
    headers
        .set
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

fn error(json: serde_json::Value) -> String {
    Config::from_bytes(json.to_string().as_bytes())
        .expect_err("refused")
        .to_string()
}

/// A config from JSON text, keeping its key order (the `json!` macro sorts keys).
fn config_text(text: &str) -> Config {
    Config::from_bytes(text.as_bytes()).expect("valid config")
}

fn refusal(section: serde_json::Value) -> String {
    error(serde_json::json!({"defaults": {"security_headers": section}}))
}

fn response<'a>(pairs: &[(&'a str, &'a str)]) -> ResponseHeaders<'a> {
    ResponseHeaders::new(
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
            .collect(),
    )
}

fn names_values(headers: &ResponseHeaders<'_>) -> Vec<(String, String)> {
    headers
        .pairs()
        .iter()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect()
}

#[test]
fn absent_or_empty_section_is_exactly_helmet() {
    for json in [
        serde_json::json!({}),
        serde_json::json!({"defaults": {}}),
        serde_json::json!({"defaults": {"security_headers": {}}}),
        serde_json::json!({"defaults": {"security_headers": true}}),
        serde_json::json!({"defaults": {"security_headers": {"preset": "helmet"}}}),
    ] {
        let headers = defaults_of(json.clone());
        assert_eq!(set_of(&headers), HELMET_DEFAULTS, "{json}");
        assert_eq!(headers.remove, ["x-powered-by"], "{json}");
        assert_eq!(headers.existing, Existing::Override);
    }
}

#[test]
fn off_means_no_headers() {
    assert_eq!(
        config(serde_json::json!({"defaults": {"security_headers": false}}))
            .defaults
            .security_headers,
        None
    );
}

#[test]
fn apply_overrides_upstream_values_and_removes_x_powered_by() {
    let headers = defaults_of(serde_json::json!({}));
    let mut out = response(&[
        (":status", "200"),
        ("content-type", "application/json"),
        ("x-powered-by", "Express"),
        ("x-frame-options", "ALLOWALL"),
        ("strict-transport-security", "max-age=0"),
    ]);
    headers.apply(&mut out);
    let mut expected: Vec<(String, String)> = vec![
        (":status".into(), "200".into()),
        ("content-type".into(), "application/json".into()),
    ];
    expected.extend(
        HELMET_DEFAULTS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    assert_eq!(names_values(&out), expected);
    assert!(out.changed());
}

#[test]
fn keep_upstream_fills_only_gaps() {
    let headers = defaults_of(
        serde_json::json!({"defaults": {"security_headers": {"existing": "keep_upstream"}}}),
    );
    let mut out = response(&[(":status", "200"), ("x-frame-options", "DENY")]);
    headers.apply(&mut out);
    assert_eq!(out.get_all("x-frame-options").count(), 1);
    assert_eq!(out.get("x-frame-options"), Some(&b"DENY"[..]));
    assert_eq!(out.get("x-content-type-options"), Some(&b"nosniff"[..]));
}

#[test]
fn csp_overrides_keep_the_default_position_and_new_directives_are_appended() {
    // helmet 8.3.0 for {scriptSrc: ["'self'", "example.com"], imgSrc: null, reportUri: "/r"}.
    let headers = defaults_of(
        serde_json::json!({"defaults": {"security_headers": {"content_security_policy": {
            "directives": {"scriptSrc": ["'self'", "example.com"], "img-src": null, "report-uri": "/r"}
        }}}}),
    );
    assert_eq!(
        headers.set[0],
        (
            "content-security-policy".to_string(),
            "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';object-src 'none';script-src 'self' example.com;script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests;report-uri /r".to_string()
        )
    );
}

#[test]
fn csp_without_defaults_and_report_only() {
    let headers = config_text(
        r#"{"defaults": {"security_headers": {"content_security_policy": {
            "use_defaults": false,
            "report_only": true,
            "directives": {"default-src": ["'none'"], "connect-src": ["'self'", "https://api.example.com"], "sandbox": []}
        }}}}"#,
    )
    .defaults
    .security_headers
    .clone()
    .expect("on");
    assert_eq!(
        headers.set[0],
        (
            "content-security-policy-report-only".to_string(),
            "default-src 'none';connect-src 'self' https://api.example.com;sandbox".to_string()
        )
    );
}

#[test]
fn csp_refusals_name_the_directive() {
    let csp = |directives: serde_json::Value| {
        refusal(serde_json::json!({"content_security_policy": {"directives": directives}}))
    };
    assert_eq!(
        csp(serde_json::json!({"script-src": ["self"]})),
        "invalid configuration at `defaults.security_headers.content_security_policy.directives.script-src`: `self` should be quoted: write 'self' (with single quotes) in the list"
    );
    assert_eq!(
        csp(serde_json::json!({"script-src": ["nonce-abc"]})),
        "invalid configuration at `defaults.security_headers.content_security_policy.directives.script-src`: `nonce-abc` should be quoted: write 'nonce-abc' (with single quotes) in the list"
    );
    assert_eq!(
        csp(serde_json::json!({"img-src": ["'self'; script-src *"]})),
        "invalid configuration at `defaults.security_headers.content_security_policy.directives.img-src`: `'self'; script-src *` contains `;` or `,`, which would end the directive or the header"
    );
    assert_eq!(
        csp(serde_json::json!({"img-src": ["a.com,b.com"]})),
        "invalid configuration at `defaults.security_headers.content_security_policy.directives.img-src`: `a.com,b.com` contains `;` or `,`, which would end the directive or the header"
    );
    assert!(csp(serde_json::json!({"scirpt-src": ["'self'"]})).starts_with(
        "invalid configuration at `defaults.security_headers.content_security_policy.directives.scirpt-src`: `scirpt-src` is not a CSP directive (known: base-uri, "
    ));
    assert_eq!(
        csp(serde_json::json!({"default-src": null})),
        "invalid configuration at `defaults.security_headers.content_security_policy.directives.default-src`: default-src cannot be null: the policy needs one (set `dangerously_disable_default_src: true`, without listing default-src, if you really mean to leave it out)"
    );
    assert_eq!(
        Config::from_bytes(
            br#"{"defaults": {"security_headers": {"content_security_policy": {"directives": {"scriptSrc": ["'self'"], "script-src": ["'none'"]}}}}}"#
        )
        .expect_err("refused")
        .to_string(),
        "invalid configuration at `defaults.security_headers.content_security_policy.directives.script-src`: directive `script-src` is given twice (as script-src and in another spelling)"
    );
    assert_eq!(
        Config::from_bytes(
            br#"{"defaults": {"security_headers": {"content_security_policy": {"directives": {"img-src": [], "img-src": []}}}}}"#
        )
        .expect_err("refused")
        .to_string(),
        "invalid configuration at `defaults.security_headers.content_security_policy.directives`: `img-src` is given twice at line 1 column 102"
    );
    assert_eq!(
        csp(serde_json::json!({"img-src": ["a\u{7}"]})),
        "invalid configuration at `defaults.security_headers.content_security_policy.directives.img-src`: `a\u{7}` contains '\\u{7}'; CSP sources are visible ASCII (percent-encode the rest)"
    );
    assert_eq!(
        refusal(serde_json::json!({"content_security_policy": {"use_defaults": false}})),
        "invalid configuration at `defaults.security_headers.content_security_policy.directives`: the policy has no directives; set some, or turn the header off with `content_security_policy: false`"
    );
}

#[test]
fn hsts_options_and_the_preload_rules() {
    let hsts = |options: serde_json::Value| {
        defaults_of(serde_json::json!({"defaults": {"security_headers": {"strict_transport_security": options}}}))
            .set
            .into_iter()
            .find(|(k, _)| k == "strict-transport-security")
            .map(|(_, v)| v)
    };
    assert_eq!(
        hsts(serde_json::json!({"max_age": 63072000, "preload": true})).as_deref(),
        Some("max-age=63072000; includeSubDomains; preload")
    );
    assert_eq!(
        hsts(serde_json::json!({"max_age": 300, "include_subdomains": false})).as_deref(),
        Some("max-age=300")
    );
    assert_eq!(hsts(serde_json::json!(false)), None);
    let refused = "invalid configuration at `defaults.security_headers.strict_transport_security.preload`: the HSTS preload list requires max_age of at least 31536000 (one year) and include_subdomains: true";
    assert_eq!(
        refusal(
            serde_json::json!({"strict_transport_security": {"max_age": 86400, "preload": true}})
        ),
        refused
    );
    assert_eq!(
        refusal(
            serde_json::json!({"strict_transport_security": {"include_subdomains": false, "preload": true}})
        ),
        refused
    );
    assert_eq!(
        refusal(serde_json::json!({"strict_transport_security": {"max_age": -1}})),
        "invalid configuration at `defaults.security_headers.strict_transport_security.max_age`: invalid value: integer `-1`, expected u64 at line 1 column 74"
    );
}

#[test]
fn token_headers_are_validated() {
    assert_eq!(
        refusal(serde_json::json!({"referrer_policy": {"policy": ["origin", "nope"]}})),
        "invalid configuration at `defaults.security_headers.referrer_policy.policy`: `nope` is not a referrer policy (one of no-referrer, no-referrer-when-downgrade, same-origin, origin, strict-origin, origin-when-cross-origin, strict-origin-when-cross-origin, unsafe-url)"
    );
    assert_eq!(
        refusal(serde_json::json!({"referrer_policy": {"policy": ["origin", "origin"]}})),
        "invalid configuration at `defaults.security_headers.referrer_policy.policy`: `origin` is listed twice"
    );
    assert_eq!(
        refusal(serde_json::json!({"referrer_policy": {"policy": []}})),
        "invalid configuration at `defaults.security_headers.referrer_policy.policy`: no policy tokens; give one (e.g. no-referrer) or turn the header off"
    );
    assert_eq!(
        refusal(serde_json::json!({"x_frame_options": {"action": "ALLOW-FROM https://a.com"}})),
        "invalid configuration at `defaults.security_headers.x_frame_options.action`: `ALLOW-FROM https://a.com` is not DENY or SAMEORIGIN (ALLOW-FROM is obsolete; use CSP frame-ancestors)"
    );
    assert_eq!(
        refusal(serde_json::json!({"cross_origin_opener_policy": {"policy": "same-site"}})),
        "invalid configuration at `defaults.security_headers.cross_origin_opener_policy.policy`: `same-site` is not one of same-origin, same-origin-allow-popups, noopener-allow-popups, unsafe-none"
    );
    assert_eq!(
        refusal(serde_json::json!({"cross_origin_resource_policy": {"policy": "none"}})),
        "invalid configuration at `defaults.security_headers.cross_origin_resource_policy.policy`: `none` is not one of same-origin, same-site, cross-origin"
    );
    assert_eq!(
        refusal(serde_json::json!({"cross_origin_embedder_policy": {"policy": "require"}})),
        "invalid configuration at `defaults.security_headers.cross_origin_embedder_policy.policy`: `require` is not one of require-corp, credentialless, unsafe-none"
    );
    assert_eq!(
        refusal(
            serde_json::json!({"x_permitted_cross_domain_policies": {"permitted_policies": "by-ftp-filename"}})
        ),
        "invalid configuration at `defaults.security_headers.x_permitted_cross_domain_policies.permitted_policies`: `by-ftp-filename` is not one of none, master-only, by-content-type, all"
    );
    assert_eq!(
        refusal(serde_json::json!({"x_frame_optoins": {"action": "DENY"}})),
        "invalid configuration at `defaults.security_headers.x_frame_optoins`: unknown field `x_frame_optoins`, expected one of `preset`, `content_security_policy`, `cross_origin_embedder_policy`, `cross_origin_opener_policy`, `cross_origin_resource_policy`, `origin_agent_cluster`, `referrer_policy`, `strict_transport_security`, `x_content_type_options`, `x_dns_prefetch_control`, `x_download_options`, `x_frame_options`, `x_permitted_cross_domain_policies`, `x_xss_protection`, `permissions_policy`, `cache_control`, `remove`, `remove_owasp_leaky_headers`, `existing` at line 1 column 50"
    );
}

#[test]
fn each_header_takes_options_like_helmet() {
    let headers = defaults_of(serde_json::json!({"defaults": {"security_headers": {
        "cross_origin_embedder_policy": true,
        "cross_origin_opener_policy": {"policy": "same-origin-allow-popups"},
        "cross_origin_resource_policy": {"policy": "cross-origin"},
        "origin_agent_cluster": false,
        "referrer_policy": {"policy": ["no-referrer", "strict-origin-when-cross-origin"]},
        "x_dns_prefetch_control": {"allow": true},
        "x_download_options": false,
        "x_frame_options": {"action": "deny"},
        "x_permitted_cross_domain_policies": {"permitted_policies": "by-content-type"},
        "x_xss_protection": false,
        "content_security_policy": false
    }}}));
    assert_eq!(
        set_of(&headers),
        [
            ("cross-origin-embedder-policy", "require-corp"),
            ("cross-origin-opener-policy", "same-origin-allow-popups"),
            ("cross-origin-resource-policy", "cross-origin"),
            (
                "referrer-policy",
                "no-referrer,strict-origin-when-cross-origin"
            ),
            (
                "strict-transport-security",
                "max-age=31536000; includeSubDomains"
            ),
            ("x-content-type-options", "nosniff"),
            ("x-dns-prefetch-control", "on"),
            ("x-frame-options", "DENY"),
            ("x-permitted-cross-domain-policies", "by-content-type"),
        ]
    );
}

#[test]
fn permissions_policy_is_a_structured_dictionary() {
    let headers = config_text(
        r#"{"defaults": {"security_headers": {"permissions_policy": {"features": {
            "camera": [], "geolocation": ["self", "https://maps.example.com"], "fullscreen": ["*"]
        }}}}}"#,
    )
    .defaults
    .security_headers
    .clone()
    .expect("on");
    assert_eq!(
        headers.set.last(),
        Some(&(
            "permissions-policy".to_string(),
            "camera=(), geolocation=(self \"https://maps.example.com\"), fullscreen=*".to_string()
        ))
    );
    let pp = |features: serde_json::Value| {
        refusal(serde_json::json!({"permissions_policy": {"features": features}}))
    };
    assert_eq!(
        pp(serde_json::json!({"camera": ["'self'"]})),
        "invalid configuration at `defaults.security_headers.permissions_policy.features.camera`: `'self'` is iframe-attribute syntax; in the header write `self`, an origin, `*`, or [] for nobody"
    );
    assert_eq!(
        pp(serde_json::json!({"Camera": []})),
        "invalid configuration at `defaults.security_headers.permissions_policy.features.Camera`: `Camera` is not a feature name (lowercase letters, digits and `-`, such as `camera`)"
    );
    assert_eq!(
        pp(serde_json::json!({"camera": ["*", "self"]})),
        "invalid configuration at `defaults.security_headers.permissions_policy.features.camera`: `*` allows every origin; it cannot be combined with others"
    );
    assert_eq!(
        pp(serde_json::json!({"camera": ["maps.example.com"]})),
        "invalid configuration at `defaults.security_headers.permissions_policy.features.camera`: `maps.example.com` is not `self`, `*` or an origin such as https://example.com"
    );
}

#[test]
fn owasp_preset_is_the_projects_list() {
    let headers =
        defaults_of(serde_json::json!({"defaults": {"security_headers": {"preset": "owasp"}}}));
    assert_eq!(
        set_of(&headers),
        [
            (
                "content-security-policy",
                "default-src 'self'; form-action 'self'; base-uri 'self'; object-src 'none'; frame-ancestors 'none'; upgrade-insecure-requests"
            ),
            ("cross-origin-embedder-policy", "require-corp"),
            ("cross-origin-opener-policy", "same-origin"),
            ("cross-origin-resource-policy", "same-origin"),
            ("referrer-policy", "no-referrer"),
            (
                "strict-transport-security",
                "max-age=63072000; includeSubDomains"
            ),
            ("x-content-type-options", "nosniff"),
            ("x-dns-prefetch-control", "off"),
            ("x-frame-options", "deny"),
            ("x-permitted-cross-domain-policies", "none"),
            (
                "permissions-policy",
                "accelerometer=(), autoplay=(), camera=(), cross-origin-isolated=(), display-capture=(), encrypted-media=(), fullscreen=(), geolocation=(), gyroscope=(), keyboard-map=(), magnetometer=(), microphone=(), midi=(), payment=(), picture-in-picture=(), publickey-credentials-get=(), screen-wake-lock=(), sync-xhr=(self), usb=(), web-share=(), xr-spatial-tracking=(), clipboard-read=(), clipboard-write=(), gamepad=(), hid=(), idle-detection=(), interest-cohort=(), serial=(), unload=()"
            ),
            ("cache-control", "no-store, max-age=0"),
        ]
    );
    assert_eq!(headers.remove.len(), presets::OWASP_REMOVE.len());
    let mut out = response(&[
        (":status", "200"),
        ("server", "Apache/2.4.1"),
        ("x-aspnet-version", "4.0"),
        ("x-request-id", "abc"),
    ]);
    headers.apply(&mut out);
    assert!(!out.contains("server") && !out.contains("x-aspnet-version"));
    assert!(out.contains("x-request-id"));
}

#[test]
fn explicit_settings_override_the_preset() {
    let headers = defaults_of(serde_json::json!({"defaults": {"security_headers": {
        "preset": "owasp", "cache_control": false, "x_frame_options": {"action": "SAMEORIGIN"},
        "strict_transport_security": {"preload": true}, "remove_owasp_leaky_headers": false
    }}}));
    let set = set_of(&headers);
    assert!(set.contains(&("x-frame-options", "SAMEORIGIN")));
    assert!(set.contains(&(
        "strict-transport-security",
        "max-age=63072000; includeSubDomains; preload"
    )));
    assert!(!set.iter().any(|(k, _)| *k == "cache-control"));
    assert_eq!(headers.remove, ["x-powered-by"]);
}

#[test]
fn remove_list_is_validated() {
    assert_eq!(
        refusal(serde_json::json!({"remove": ["server", "bad name"]})),
        "invalid configuration at `defaults.security_headers.remove[1]`: `bad name` is not a header name"
    );
    assert_eq!(
        refusal(serde_json::json!({"remove": ["X-Frame-Options"]})),
        "invalid configuration at `defaults.security_headers.remove`: `x-frame-options` is both set and removed"
    );
    let headers = defaults_of(
        serde_json::json!({"defaults": {"security_headers": {"remove": ["Server", "X-Powered-By"]}}}),
    );
    assert_eq!(headers.remove, ["server", "x-powered-by"]);
}

#[test]
fn routes_override_field_by_field_or_turn_headers_off() {
    let config = config(serde_json::json!({
        "defaults": {"security_headers": {"x_frame_options": {"action": "DENY"}}},
        "routes": [
            {"name": "embed", "match": {"prefix": "/embed/"}, "security_headers": {"content_security_policy": {"directives": {"frame-ancestors": ["https://partner.example.com"]}}}},
            {"name": "raw", "match": {"prefix": "/raw/"}, "security_headers": false},
            {"name": "plain", "match": {"prefix": "/"}}
        ]
    }));
    let headers = Headers::default();
    let policies = |path: &str| {
        let head = RequestHead {
            method: "GET",
            path,
            headers: &headers,
        };
        let route = config.routes.find(head.method, head.path).expect("a route");
        route.policies.security_headers.clone()
    };
    let embed = policies("/embed/x").expect("on");
    assert!(
        embed
            .set
            .contains(&("x-frame-options".to_string(), "DENY".to_string()))
    );
    assert!(
        embed.set[0]
            .1
            .contains("frame-ancestors https://partner.example.com;")
    );
    assert_eq!(policies("/raw/x"), None);
    assert_eq!(policies("/other"), config.defaults.security_headers);
}

#[test]
fn a_routes_bad_section_is_refused_with_the_route() {
    assert_eq!(
        error(
            serde_json::json!({"routes": [{"match": {"prefix": "/"}, "security_headers": {"x_frame_options": {"action": "nope"}}}]})
        ),
        "invalid configuration at `routes[0].security_headers.x_frame_options.action`: `nope` is not DENY or SAMEORIGIN (ALLOW-FROM is obsolete; use CSP frame-ancestors)"
    );
}
