//! Content-Security-Policy against helmet 8.3.0, case by case.
//!
//! Every expected header below was printed by the real helmet 8.3.0 from npm
//! (`contentSecurityPolicy(options)` on a stub response, Node 20), with the same directives
//! written in the same order, and pasted here as a literal; the tests do not need Node or npm.
//! The helmet options of each case are in its comment (`D` is
//! `contentSecurityPolicy.dangerouslyDisableDefaultSrc`, our `dangerously_disable_default_src:
//! true`).

use prost_types::value::Kind;

use crate::config::Config;

/// The CSP header (name, value) of a config given as JSON text, which keeps its key order
/// (`serde_json::json!` would sort the keys).
fn csp_of_text(section: &str) -> (String, String) {
    let text = format!(
        r#"{{"defaults": {{"security_headers": {{"content_security_policy": {section}}}}}}}"#
    );
    let config = Config::from_bytes(text.as_bytes()).expect("valid config");
    let headers = config
        .defaults
        .security_headers
        .clone()
        .expect("security headers on");
    headers
        .set
        .into_iter()
        .find(|(name, _)| name.starts_with("content-security-policy"))
        .expect("a CSP header")
}

fn csp_value(section: &str) -> String {
    let (name, value) = csp_of_text(section);
    assert_eq!(name, "content-security-policy", "{section}");
    value
}

fn csp_error(section: &str) -> String {
    let text = format!(
        r#"{{"defaults": {{"security_headers": {{"content_security_policy": {section}}}}}}}"#
    );
    Config::from_bytes(text.as_bytes())
        .expect_err("refused")
        .to_string()
}

#[test]
fn seed_example_with_defaults() {
    // {useDefaults: true, directives: {defaultSrc: ["'self'"], styleSrc: ["'self'",
    // "https://fonts.googleapis.com"], scriptSrc: ["'self'"], imgSrc: ["'self'", "data:",
    // "https:"]}}: every directive is a default, so each override stays where helmet's default is.
    assert_eq!(
        csp_value(
            r#"{"use_defaults": true, "directives": {"defaultSrc": ["'self'"], "styleSrc": ["'self'", "https://fonts.googleapis.com"], "scriptSrc": ["'self'"], "imgSrc": ["'self'", "data:", "https:"]}}"#
        ),
        "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data: https:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https://fonts.googleapis.com;upgrade-insecure-requests"
    );
}

#[test]
fn seed_example_without_defaults_keeps_the_written_order() {
    // The same directives with useDefaults: false.
    assert_eq!(
        csp_value(
            r#"{"use_defaults": false, "directives": {"defaultSrc": ["'self'"], "styleSrc": ["'self'", "https://fonts.googleapis.com"], "scriptSrc": ["'self'"], "imgSrc": ["'self'", "data:", "https:"]}}"#
        ),
        "default-src 'self';style-src 'self' https://fonts.googleapis.com;script-src 'self';img-src 'self' data: https:"
    );
}

#[test]
fn overrides_stay_in_the_defaults_order_whatever_the_written_order() {
    // {directives: {"style-src": ["'self'"], "default-src": ["'none'"], fontSrc:
    // "https://fonts.gstatic.com"}}: a single string is a list of one.
    assert_eq!(
        csp_value(
            r#"{"directives": {"style-src": ["'self'"], "default-src": ["'none'"], "fontSrc": "https://fonts.gstatic.com"}}"#
        ),
        "default-src 'none';base-uri 'self';font-src https://fonts.gstatic.com;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self';upgrade-insecure-requests"
    );
}

#[test]
fn null_removes_a_default_and_is_a_no_op_otherwise() {
    // {directives: {objectSrc: null, "img-src": null, "upgrade-insecure-requests": null}}
    assert_eq!(
        csp_value(
            r#"{"directives": {"objectSrc": null, "img-src": null, "upgrade-insecure-requests": null}}"#
        ),
        "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline'"
    );
    // {directives: {workerSrc: null}}: not a default, nothing to remove.
    assert_eq!(
        csp_value(r#"{"directives": {"workerSrc": null}}"#),
        "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests"
    );
}

#[test]
fn new_directives_are_appended_in_the_written_order() {
    // {directives: {workerSrc: ["'self'", "blob:"], "connect-src": ["'self'",
    // "https://api.example.com"], reportUri: "/csp-reports"}}
    assert_eq!(
        csp_value(
            r#"{"directives": {"workerSrc": ["'self'", "blob:"], "connect-src": ["'self'", "https://api.example.com"], "reportUri": "/csp-reports"}}"#
        ),
        "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests;worker-src 'self' blob:;connect-src 'self' https://api.example.com;report-uri /csp-reports"
    );
}

#[test]
fn mixed_new_overridden_removed_in_both_spellings() {
    // {directives: {reportTo: "csp-endpoint", "script-src": ["'self'", "'nonce-abc'"],
    // frameAncestors: null, connectSrc: ["'self'"], upgradeInsecureRequests: [], "base-uri":
    // ["'none'"]}}
    assert_eq!(
        csp_value(
            r#"{"directives": {"reportTo": "csp-endpoint", "script-src": ["'self'", "'nonce-abc'"], "frameAncestors": null, "connectSrc": ["'self'"], "upgradeInsecureRequests": [], "base-uri": ["'none'"]}}"#
        ),
        "default-src 'self';base-uri 'none';font-src 'self' https: data:;form-action 'self';img-src 'self' data:;object-src 'none';script-src 'self' 'nonce-abc';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests;report-to csp-endpoint;connect-src 'self'"
    );
}

#[test]
fn without_defaults_mixed_spellings_keep_the_written_order() {
    // {useDefaults: false, directives: {scriptSrc: ["'self'"], "default-src": ["'none'"],
    // upgradeInsecureRequests: [], "img-src": ["'self'", "data:"], frameAncestors: ["'none'"]}}
    assert_eq!(
        csp_value(
            r#"{"use_defaults": false, "directives": {"scriptSrc": ["'self'"], "default-src": ["'none'"], "upgradeInsecureRequests": [], "img-src": ["'self'", "data:"], "frameAncestors": ["'none'"]}}"#
        ),
        "script-src 'self';default-src 'none';upgrade-insecure-requests;img-src 'self' data:;frame-ancestors 'none'"
    );
}

#[test]
fn dangerously_disable_default_src_leaves_it_out() {
    // {directives: {defaultSrc: D}}
    assert_eq!(
        csp_value(r#"{"dangerously_disable_default_src": true}"#),
        "base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests"
    );
    // {directives: {scriptSrc: ["'self'"], defaultSrc: D, reportUri: "/r"}}
    assert_eq!(
        csp_value(
            r#"{"dangerously_disable_default_src": true, "directives": {"scriptSrc": ["'self'"], "reportUri": "/r"}}"#
        ),
        "base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests;report-uri /r"
    );
    // {useDefaults: false, directives: {scriptSrc: ["'self'"], defaultSrc: D, "object-src":
    // ["'none'"]}}
    assert_eq!(
        csp_value(
            r#"{"use_defaults": false, "dangerously_disable_default_src": true, "directives": {"scriptSrc": ["'self'"], "object-src": ["'none'"]}}"#
        ),
        "script-src 'self';object-src 'none'"
    );
}

#[test]
fn an_empty_string_is_a_directive_without_sources() {
    // {directives: {upgradeInsecureRequests: ""}} and {directives: {upgradeInsecureRequests:
    // [""]}}: helmet 8.3 prints the bare name, as for [].
    let helmet = "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests";
    for value in [r#""""#, r#"[""]"#, "[]"] {
        assert_eq!(
            csp_value(&format!(
                r#"{{"directives": {{"upgradeInsecureRequests": {value}}}}}"#
            )),
            helmet,
            "{value}"
        );
    }
    // helmet would print `upgrade-insecure-requests  ` or `img-src 'self' ` here; refused.
    for value in [r#"["", ""]"#, r#"["'self'", ""]"#, r#"" ""#] {
        assert!(
            csp_error(&format!(r#"{{"directives": {{"img-src": {value}}}}}"#))
                .ends_with("an empty source; use [] for a directive without sources"),
            "{value}"
        );
    }
}

#[test]
fn report_only() {
    // {reportOnly: true, directives: {reportUri: "/csp-reports"}}
    assert_eq!(
        csp_of_text(r#"{"report_only": true, "directives": {"reportUri": "/csp-reports"}}"#),
        (
            "content-security-policy-report-only".to_string(),
            "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests;report-uri /csp-reports".to_string()
        )
    );
}

#[test]
fn refusals_where_helmet_throws() {
    let at = "invalid configuration at `defaults.security_headers.content_security_policy.";
    // helmet: "needs a default-src but it was set to `null`".
    assert_eq!(
        csp_error(r#"{"directives": {"defaultSrc": null}}"#),
        format!(
            "{at}directives.defaultSrc`: default-src cannot be null: the policy needs one (set `dangerously_disable_default_src: true`, without listing default-src, if you really mean to leave it out)"
        )
    );
    // helmet: `received a duplicate directive "script-src"`.
    assert_eq!(
        csp_error(r#"{"directives": {"scriptSrc": ["'self'"], "script-src": ["'none'"]}}"#),
        format!(
            "{at}directives.script-src`: directive `script-src` is given twice (as script-src and in another spelling)"
        )
    );
    // helmet: "needs a default-src but none was provided".
    assert_eq!(
        csp_error(r#"{"use_defaults": false, "directives": {"scriptSrc": ["'self'"]}}"#),
        format!(
            "{at}directives`: the policy needs a default-src (set `dangerously_disable_default_src: true` if you really mean to leave it out)"
        )
    );
    // helmet: "has no directives", with none written or with default-src disabled only.
    let none = format!(
        "{at}directives`: the policy has no directives; set some, or turn the header off with `content_security_policy: false`"
    );
    assert_eq!(
        csp_error(r#"{"use_defaults": false, "directives": {}}"#),
        none
    );
    assert_eq!(
        csp_error(r#"{"use_defaults": false, "dangerously_disable_default_src": true}"#),
        none
    );
    // helmet: `true` is "not iterable", `false` "an invalid directive value".
    for value in ["true", "false", "1"] {
        assert!(
            csp_error(&format!(
                r#"{{"directives": {{"upgradeInsecureRequests": {value}}}}}"#
            ))
            .contains("expected a string or a list of strings"),
            "{value}"
        );
    }
    // helmet cannot say both (one key); we refuse the contradiction.
    assert_eq!(
        csp_error(
            r#"{"dangerously_disable_default_src": true, "directives": {"defaultSrc": ["'self'"]}}"#
        ),
        format!(
            "{at}directives.defaultSrc`: default-src is set, but `dangerously_disable_default_src: true` leaves it out; keep one of the two"
        )
    );
}

/// Protobuf wire encoding, by hand, so a `Struct`'s entries go on the wire in the order given
/// (prost would encode its `BTreeMap` sorted).
mod wire {
    use prost::Message;
    use prost_types::value::Kind;

    fn varint(mut n: usize, out: &mut Vec<u8>) {
        while n >= 0x80 {
            out.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }

    fn field(tag: u8, bytes: &[u8], out: &mut Vec<u8>) {
        out.push(tag);
        varint(bytes.len(), out);
        out.extend_from_slice(bytes);
    }

    /// A `Struct` with its map entries in this order.
    pub fn structure(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (key, value) in entries {
            let mut entry = Vec::new();
            field(0x0a, key.as_bytes(), &mut entry); // key = 1
            field(0x12, value, &mut entry); // value = 2
            field(0x0a, &entry, &mut out); // fields = 1
        }
        out
    }

    /// A `Value` holding a `Struct` with its entries in this order.
    pub fn object(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        field(0x2a, &structure(entries), &mut out); // struct_value = 5
        out
    }

    pub fn value(kind: Kind) -> Vec<u8> {
        prost_types::Value { kind: Some(kind) }.encode_to_vec()
    }

    pub fn string(s: &str) -> Vec<u8> {
        value(Kind::StringValue(s.to_string()))
    }

    pub fn list(items: &[&str]) -> Vec<u8> {
        value(Kind::ListValue(prost_types::ListValue {
            values: items
                .iter()
                .map(|s| prost_types::Value {
                    kind: Some(Kind::StringValue(s.to_string())),
                })
                .collect(),
        }))
    }
}

/// The CSP header of a config sent as a protobuf `Struct` (what a YAML map in the Envoy config
/// reaches the filter as), the section's entries on the wire in the order given.
fn csp_of_struct(section: &[(&str, Vec<u8>)]) -> String {
    let bytes = wire::structure(&[(
        "defaults",
        wire::object(&[(
            "security_headers",
            wire::object(&[("content_security_policy", wire::object(section))]),
        )]),
    )]);
    let config = Config::from_bytes(&bytes).expect("valid config");
    let headers = config.defaults.security_headers.clone().expect("on");
    headers
        .set
        .into_iter()
        .find(|(name, _)| name == "content-security-policy")
        .expect("a CSP header")
        .1
}

#[test]
fn a_struct_has_no_order_so_its_keys_are_read_sorted() {
    // A Struct's fields are a protobuf map, which has no order: the filter reads them sorted by
    // the name as written (byte order), whatever order they are on the wire. helmet 8.3.0 with
    // the directives written in that order: {directives: {"connect-src": ["'self'"], reportUri:
    // "/r", workerSrc: ["'self'", "blob:"]}}.
    let directives = wire::object(&[
        ("workerSrc", wire::list(&["'self'", "blob:"])),
        ("reportUri", wire::string("/r")),
        ("connect-src", wire::list(&["'self'"])),
    ]);
    assert_eq!(
        csp_of_struct(&[("directives", directives)]),
        "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests;connect-src 'self';report-uri /r;worker-src 'self' blob:"
    );
    // Byte order of the written names, not of the CSP names: `-` sorts before letters, so
    // `script-src-attr` comes before `scriptSrc`. helmet 8.3.0: {useDefaults: false, directives:
    // {defaultSrc: ["'self'"], "script-src-attr": ["'none'"], scriptSrc: ["'self'"]}}.
    let directives = wire::object(&[
        ("scriptSrc", wire::list(&["'self'"])),
        ("script-src-attr", wire::list(&["'none'"])),
        ("defaultSrc", wire::list(&["'self'"])),
    ]);
    assert_eq!(
        csp_of_struct(&[
            ("directives", directives),
            ("use_defaults", wire::value(Kind::BoolValue(false))),
        ]),
        "default-src 'self';script-src-attr 'none';script-src 'self'"
    );
}
