//! Expected headers are written from the Fetch standard's CORS check and CORS-preflight fetch
//! (fetch.spec.whatwg.org), not from what the code does.

use serde_json::{Value, json};

use super::*;
use crate::config::Config;
use crate::request::Headers;

const APP: &str = "https://app.example.com";

fn cors(section: Value) -> Cors {
    let config = Config::from_bytes(
        json!({"defaults": {"cors": section}})
            .to_string()
            .as_bytes(),
    )
    .expect("valid");
    config.defaults.cors.clone().expect("cors on")
}

fn refusal(section: Value) -> String {
    Config::from_bytes(
        json!({"defaults": {"cors": section}})
            .to_string()
            .as_bytes(),
    )
    .expect_err("refused")
    .to_string()
}

/// Runs a request through the policy.
fn decide(policy: &Cors, method: &str, headers: &[(&str, &str)]) -> (Verdict, NextStep) {
    let mut pairs: Vec<(&[u8], &[u8])> =
        vec![(b":method", method.as_bytes()), (b":path", b"/users")];
    pairs.extend(headers.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())));
    let headers = Headers::new(pairs);
    policy.on_request(&RequestHead::from_headers(&headers))
}

/// Whether an actual GET from `origin` is allowed.
fn allows(policy: &Cors, origin: &str) -> bool {
    matches!(
        decide(policy, "GET", &[("origin", origin)]).0,
        Verdict::Allowed(_)
    )
}

fn preflight(
    policy: &Cors,
    origin: &str,
    method: &str,
    requested_headers: Option<&str>,
) -> LocalResponse {
    let mut headers = vec![
        ("origin", origin),
        ("access-control-request-method", method),
        ("x-request-id", "rid-1"),
    ];
    if let Some(h) = requested_headers {
        headers.push(("access-control-request-headers", h));
    }
    match decide(policy, "OPTIONS", &headers) {
        (Verdict::Preflight, NextStep::Respond(answer)) => answer,
        other => panic!("not answered as a preflight: {other:?}"),
    }
}

fn header_list(response: &LocalResponse) -> Vec<(&str, &str)> {
    response
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// Response-phase edit of an upstream response.
fn respond(policy: &Cors, verdict: &Verdict, upstream: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut headers = ResponseHeaders::new(
        upstream
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
            .collect(),
    );
    policy.on_response(verdict, &mut headers);
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

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

// ---- origin matching ----

#[test]
fn exact_origins_match_byte_for_byte() {
    let policy = cors(json!({"allow_origins": [APP, "http://localhost:3000"]}));
    let allowed = |origin: &str| allows(&policy, origin);
    assert!(allowed(APP));
    assert!(allowed("http://localhost:3000"));
    assert!(!allowed("https://app.example.com/"));
    assert!(!allowed("HTTPS://APP.EXAMPLE.COM"));
    assert!(!allowed("https://app.example.com:443"));
    assert!(!allowed("http://app.example.com"));
    assert!(!allowed("http://localhost:3001"));
    assert!(!allowed("https://app.example.com.evil.com"));
    assert!(!allowed("null"));
    assert!(!allowed(""));
}

#[test]
fn subdomain_patterns_never_match_the_bare_domain_or_look_alikes() {
    let policy = cors(json!({"allow_origins": ["https://*.example.com"]}));
    let allowed = |origin: &str| allows(&policy, origin);
    assert!(allowed("https://app.example.com"));
    assert!(allowed("https://a.b.example.com"));
    assert!(allowed("https://xn--bcher-kva.example.com"));
    assert!(!allowed("https://example.com"));
    assert!(!allowed("https://evil-example.com"));
    assert!(!allowed("https://evilexample.com"));
    assert!(!allowed("https://.example.com"));
    assert!(!allowed("https://a..example.com"));
    assert!(!allowed("http://app.example.com"));
    assert!(!allowed("https://app.example.com:8443"));
    assert!(!allowed("https://app.example.com.evil.com"));
    assert!(!allowed("https://APP.example.com"));
    let with_port = cors(json!({"allow_origins": ["https://*.example.com:8443"]}));
    let allowed = |origin: &str| allows(&with_port, origin);
    assert!(allowed("https://app.example.com:8443"));
    assert!(!allowed("https://app.example.com"));
}

#[test]
fn regexes_and_the_null_origin() {
    let policy = cors(
        json!({"allow_origins": [{"regex": "^https://pr-[0-9]+\\.preview\\.example\\.com$"}, "null"]}),
    );
    let allowed = |origin: &str| allows(&policy, origin);
    assert!(allowed("https://pr-42.preview.example.com"));
    assert!(!allowed("https://pr-42.preview.example.com.evil.com"));
    assert!(!allowed("https://pr-x.preview.example.com"));
    assert!(allowed("null"));
}

#[test]
fn every_alternative_of_a_regex_is_anchored() {
    // Written with ^ and $ at the ends, but `|` binds looser than the anchors: as written the
    // first alternative has no `$` and the second no `^`.
    let policy = cors(
        json!({"allow_origins": [{"regex": "^https://a\\.example\\.com|https://b\\.example\\.com$"}]}),
    );
    let allowed = |origin: &str| allows(&policy, origin);
    assert!(allowed("https://a.example.com"));
    assert!(allowed("https://b.example.com"));
    assert!(!allowed("https://a.example.com.evil.net"));
    assert!(!allowed("https://evil.net/https://b.example.com"));
    assert!(!allowed("http://xhttps://b.example.com"));
}

#[test]
fn an_overlong_origin_is_never_allowed() {
    let policy = cors(json!({"allow_origins": [{"regex": "^https://.*$"}]}));
    let long = format!("https://{}.com", "a".repeat(600));
    assert_eq!(
        decide(&policy, "GET", &[("origin", &long)]).0,
        Verdict::NotAllowed
    );
}

// ---- config refusals ----

#[test]
fn origins_that_are_not_serialized_origins_are_refused() {
    let at = |origin: Value| refusal(json!({"allow_origins": [APP, origin]}));
    assert_eq!(
        at(json!("https://app.example.com/")),
        "invalid configuration at `defaults.cors.allow_origins[1]`: `https://app.example.com/` has a trailing slash: write `https://app.example.com`"
    );
    assert_eq!(
        at(json!("https://app.example.com/api")),
        "invalid configuration at `defaults.cors.allow_origins[1]`: `https://app.example.com/api` has a path, query or fragment; an origin is scheme://host[:port]: write `https://app.example.com`"
    );
    assert_eq!(
        at(json!("HTTPS://app.example.com")),
        "invalid configuration at `defaults.cors.allow_origins[1]`: `HTTPS://app.example.com` is not lowercase: write `https://app.example.com`"
    );
    assert_eq!(
        at(json!("https://app.example.com:443")),
        "invalid configuration at `defaults.cors.allow_origins[1]`: `https://app.example.com:443` writes out the scheme's default port, which browsers leave out: write `https://app.example.com`"
    );
    assert_eq!(
        at(json!("https://bücher.example")),
        "invalid configuration at `defaults.cors.allow_origins[1]`: `https://bücher.example` has a non-ASCII host; browsers send it in punycode: write `https://xn--bcher-kva.example`"
    );
    assert_eq!(
        at(json!("app.example.com")),
        "invalid configuration at `defaults.cors.allow_origins[1]`: `app.example.com` is not an origin (relative URL without a base)"
    );
    assert_eq!(
        at(json!("data:text/plain,hi")),
        "invalid configuration at `defaults.cors.allow_origins[1]`: `data:text/plain,hi` has no origin (only schemes such as http and https do); to allow the `null` origin, list the literal \"null\""
    );
    assert_eq!(
        at(json!("https://*.com")),
        "invalid configuration at `defaults.cors.allow_origins[1]`: `https://*.com` would allow every site under a top-level domain; name a registrable domain"
    );
    assert_eq!(
        at(json!("https://app*.example.com")),
        "invalid configuration at `defaults.cors.allow_origins[1]`: `https://app*.example.com`: a wildcard is only allowed as a whole first label, like https://*.example.com"
    );
    assert_eq!(
        at(json!({"regex": "https://.*\\.example\\.com"})),
        "invalid configuration at `defaults.cors.allow_origins[1]`: regex `https://.*\\.example\\.com` must be anchored with ^ and $ (an unanchored pattern matches origins that merely contain it)"
    );
    assert_eq!(
        at(json!(APP)),
        "invalid configuration at `defaults.cors.allow_origins[1]`: `https://app.example.com` is listed twice"
    );
    let twice = |origin: Value| refusal(json!({"allow_origins": [origin, origin]}));
    assert_eq!(
        twice(json!("https://*.example.com")),
        "invalid configuration at `defaults.cors.allow_origins[1]`: `https://*.example.com` is listed twice"
    );
    assert_eq!(
        twice(json!({"regex": "^https://a\\.example\\.com$"})),
        "invalid configuration at `defaults.cors.allow_origins[1]`: `^https://a\\.example\\.com$` is listed twice"
    );
    assert_eq!(
        at(json!("*")),
        "invalid configuration at `defaults.cors.allow_origins`: `*` allows every origin; list it alone"
    );
}

#[test]
fn credentials_with_wildcards_are_refused() {
    assert_eq!(
        refusal(json!({"allow_origins": ["*"], "allow_credentials": true})),
        "invalid configuration at `defaults.cors.allow_origins`: `*` with allow_credentials: true is refused by browsers; list the origins"
    );
    assert_eq!(
        refusal(json!({"allow_origins": [APP], "allow_credentials": true, "allow_methods": ["*"]})),
        "invalid configuration at `defaults.cors.allow_methods`: `*` is not a wildcard for requests with credentials; list the methods"
    );
    assert_eq!(
        refusal(json!({"allow_origins": [APP], "allow_credentials": true, "allow_headers": "*"})),
        "invalid configuration at `defaults.cors.allow_headers`: `*` is not a wildcard for requests with credentials; list the headers or use \"reflect\""
    );
    assert_eq!(
        refusal(
            json!({"allow_origins": [APP], "allow_credentials": true, "expose_headers": ["*"]})
        ),
        "invalid configuration at `defaults.cors.expose_headers`: `*` is not a wildcard for requests with credentials; list the headers"
    );
}

#[test]
fn methods_headers_and_status_are_validated() {
    assert_eq!(
        refusal(json!({"allow_origins": [APP], "allow_methods": ["GET", "post"]})),
        "invalid configuration at `defaults.cors.allow_methods[1]`: `post`: methods are case-sensitive; write `POST`"
    );
    assert_eq!(
        refusal(json!({"allow_origins": [APP], "allow_methods": ["GE T"]})),
        "invalid configuration at `defaults.cors.allow_methods[0]`: `GE T` is not a valid HTTP method token"
    );
    assert_eq!(
        refusal(json!({"allow_origins": [APP], "allow_headers": ["content-type", "x bad"]})),
        "invalid configuration at `defaults.cors.allow_headers[1]`: `x bad` is not a header name"
    );
    assert_eq!(
        refusal(json!({"allow_origins": [APP], "expose_headers": ["x-ok", "x:bad"]})),
        "invalid configuration at `defaults.cors.expose_headers[1]`: `x:bad` is not a header name"
    );
    assert_eq!(
        refusal(json!({"allow_origins": [APP], "allow_headers": "everything"})),
        "invalid configuration at `defaults.cors.allow_headers`: `everything`: expected a list of header names, \"*\" or \"reflect\" at line 1 column 49"
    );
    assert_eq!(
        refusal(json!({"allow_origins": [APP], "preflight_status": 302})),
        "invalid configuration at `defaults.cors.preflight_status`: 302: browsers accept a preflight only with a 2xx status (200 or 204)"
    );
    assert_eq!(
        refusal(json!(true)),
        "invalid configuration at `defaults.cors.allow_origins`: required: list the origins allowed (write [\"*\"] to allow every origin)"
    );
}

// ---- preflights ----

#[test]
fn an_allowed_preflight_is_answered_with_the_fetch_headers() {
    let policy = cors(json!({
        "allow_origins": [APP], "allow_methods": ["GET", "POST", "PUT"], "allow_headers": ["Content-Type", "Authorization"],
        "allow_credentials": true, "max_age": 600
    }));
    let answer = preflight(&policy, APP, "PUT", Some("content-type,authorization"));
    assert_eq!(answer.status, 204);
    assert!(answer.body.is_empty());
    assert_eq!(
        header_list(&answer),
        [
            ("access-control-allow-origin", APP),
            ("access-control-allow-credentials", "true"),
            ("access-control-allow-methods", "GET,POST,PUT"),
            ("access-control-allow-headers", "content-type,authorization"),
            ("access-control-max-age", "600"),
            (
                "vary",
                "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
            ),
        ]
    );
    // Header names compare case-insensitively (Fetch), in any order.
    let answer = preflight(&policy, APP, "POST", Some("Authorization, CONTENT-TYPE"));
    assert_eq!(answer.status, 204);
}

#[test]
fn a_200_preflight_says_content_length_0() {
    let policy = cors(json!({"allow_origins": [APP], "preflight_status": 200}));
    let answer = preflight(&policy, APP, "DELETE", None);
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-length"), Some("0"));
    assert_eq!(
        answer.header("access-control-allow-methods"),
        Some("GET,HEAD,PUT,PATCH,POST,DELETE")
    );
    assert_eq!(answer.header("access-control-allow-headers"), None);
}

#[test]
fn reflect_and_wildcard_headers() {
    let reflect = cors(json!({"allow_origins": [APP]}));
    assert_eq!(
        preflight(&reflect, APP, "POST", Some("X-Custom, content-type"))
            .header("access-control-allow-headers"),
        Some("x-custom,content-type")
    );
    let any = cors(json!({"allow_origins": ["*"], "allow_headers": "*"}));
    let answer = preflight(&any, APP, "POST", Some("x-custom"));
    assert_eq!(answer.header("access-control-allow-origin"), Some("*"));
    assert_eq!(answer.header("access-control-allow-headers"), Some("*"));
    // `*` never covers Authorization: it is named.
    assert_eq!(
        preflight(&any, APP, "POST", Some("authorization,x-custom"))
            .header("access-control-allow-headers"),
        Some("*,authorization")
    );
}

#[test]
fn a_preflight_asking_for_too_much_is_refused() {
    let policy = cors(
        json!({"allow_origins": [APP], "allow_methods": ["GET", "POST"], "allow_headers": ["content-type"]}),
    );
    let code = |answer: &LocalResponse| {
        let body: Value = serde_json::from_slice(&answer.body).expect("problem json");
        (
            answer.status,
            body["code"].as_str().unwrap_or("").to_string(),
            answer.header("content-type").map(str::to_string),
        )
    };
    let problem = Some("application/problem+json".to_string());
    assert_eq!(
        code(&preflight(
            &policy,
            "https://evil.example.net",
            "POST",
            None
        )),
        (403, "cors_origin_not_allowed".into(), problem.clone())
    );
    assert_eq!(
        code(&preflight(&policy, APP, "DELETE", None)),
        (403, "cors_method_not_allowed".into(), problem.clone())
    );
    assert_eq!(
        code(&preflight(
            &policy,
            APP,
            "POST",
            Some("content-type,x-secret")
        )),
        (403, "cors_header_not_allowed".into(), problem.clone())
    );
    assert_eq!(
        code(&preflight(
            &policy,
            APP,
            "POST",
            Some("content-type,bad header")
        )),
        (403, "cors_header_not_allowed".into(), problem)
    );
    let refused = preflight(&policy, APP, "DELETE", None);
    assert_eq!(refused.header("access-control-allow-origin"), None);
    let body: Value = serde_json::from_slice(&refused.body).expect("json");
    assert_eq!(body["request_id"], "rid-1");
}

#[test]
fn omit_answers_refused_preflights_without_cors_headers() {
    let policy =
        cors(json!({"allow_origins": [APP], "allow_methods": ["GET"], "disallowed": "omit"}));
    let answer = preflight(&policy, APP, "DELETE", None);
    assert_eq!(answer.status, 204);
    assert_eq!(header_list(&answer), [("vary", PREFLIGHT_VARY)]);
}

#[test]
fn private_network_access_only_when_asked_and_allowed() {
    let allowed = cors(json!({"allow_origins": [APP], "allow_private_network": true}));
    let headers = [
        ("origin", APP),
        ("access-control-request-method", "GET"),
        ("access-control-request-private-network", "true"),
    ];
    let (_, NextStep::Respond(answer)) = decide(&allowed, "OPTIONS", &headers) else {
        panic!("answered")
    };
    assert_eq!(
        answer.header("access-control-allow-private-network"),
        Some("true")
    );
    assert_eq!(
        preflight(&allowed, APP, "GET", None).header("access-control-allow-private-network"),
        None
    );
    let refused = cors(json!({"allow_origins": [APP]}));
    let (_, NextStep::Respond(answer)) = decide(&refused, "OPTIONS", &headers) else {
        panic!("answered")
    };
    assert_eq!(answer.status, 403);
}

#[test]
fn options_without_a_requested_method_is_not_a_preflight() {
    let policy = cors(json!({"allow_origins": [APP]}));
    assert_eq!(
        decide(&policy, "OPTIONS", &[("origin", APP)]),
        (Verdict::Allowed(APP.into()), NextStep::Continue)
    );
}

// ---- actual requests ----

#[test]
fn an_allowed_actual_request_gets_the_cors_headers_on_its_response() {
    let policy = cors(
        json!({"allow_origins": [APP], "allow_credentials": true, "expose_headers": ["X-Request-Id", "ETag"]}),
    );
    let (verdict, action) = decide(&policy, "POST", &[("origin", APP)]);
    assert_eq!(action, NextStep::Continue);
    assert_eq!(
        respond(
            &policy,
            &verdict,
            &[
                (":status", "201"),
                ("content-type", "application/json"),
                ("vary", "Accept-Encoding")
            ]
        ),
        owned(&[
            (":status", "201"),
            ("content-type", "application/json"),
            ("access-control-allow-origin", APP),
            ("access-control-allow-credentials", "true"),
            ("access-control-expose-headers", "x-request-id,etag"),
            ("vary", "Accept-Encoding, Origin"),
        ])
    );
}

#[test]
fn upstream_cors_headers_are_replaced_never_doubled() {
    let policy = cors(json!({"allow_origins": [APP]}));
    let verdict = Verdict::Allowed(APP.into());
    let out = respond(
        &policy,
        &verdict,
        &[
            (":status", "200"),
            ("access-control-allow-origin", "*"),
            ("access-control-allow-credentials", "true"),
            ("vary", "origin"),
        ],
    );
    assert_eq!(
        out,
        owned(&[
            (":status", "200"),
            ("vary", "origin"),
            ("access-control-allow-origin", APP)
        ])
    );
}

#[test]
fn vary_is_merged_once_across_lines() {
    let policy = cors(json!({"allow_origins": [APP]}));
    let verdict = Verdict::Allowed(APP.into());
    let out = respond(
        &policy,
        &verdict,
        &[
            (":status", "200"),
            ("vary", "Accept"),
            ("vary", "Accept-Language"),
        ],
    );
    assert_eq!(
        out,
        owned(&[
            (":status", "200"),
            ("access-control-allow-origin", APP),
            ("vary", "Accept, Accept-Language, Origin")
        ])
    );
    let out = respond(&policy, &verdict, &[(":status", "200"), ("vary", "*")]);
    assert_eq!(
        out,
        owned(&[
            (":status", "200"),
            ("vary", "*"),
            ("access-control-allow-origin", APP)
        ])
    );
}

#[test]
fn a_disallowed_actual_request_is_refused_or_passed_bare() {
    let reject = cors(json!({"allow_origins": [APP]}));
    let (verdict, action) = decide(
        &reject,
        "GET",
        &[
            ("origin", "https://evil.example.net"),
            ("x-request-id", "r-9"),
        ],
    );
    assert_eq!(verdict, Verdict::NotAllowed);
    let NextStep::Respond(answer) = action else {
        panic!("refused")
    };
    assert_eq!(answer.status, 403);
    assert_eq!(
        String::from_utf8(answer.body).expect("utf8"),
        r#"{"type":"about:blank","title":"Forbidden","status":403,"detail":"This origin is not allowed to make cross-origin requests.","code":"cors_origin_not_allowed","request_id":"r-9"}"#
    );
    let omit = cors(json!({"allow_origins": [APP], "disallowed": "omit"}));
    let (verdict, action) = decide(&omit, "GET", &[("origin", "https://evil.example.net")]);
    assert_eq!(
        (verdict.clone(), action),
        (Verdict::NotAllowed, NextStep::Continue)
    );
    assert_eq!(
        respond(
            &omit,
            &verdict,
            &[(":status", "200"), ("access-control-allow-origin", "*")]
        ),
        owned(&[(":status", "200"), ("vary", "Origin")])
    );
}

#[test]
fn a_wildcard_policy_sends_star_and_no_vary() {
    let policy = cors(json!({"allow_origins": ["*"]}));
    let (verdict, _) = decide(&policy, "GET", &[("origin", "https://anyone.example.org")]);
    assert_eq!(
        respond(&policy, &verdict, &[(":status", "200")]),
        owned(&[(":status", "200"), ("access-control-allow-origin", "*")])
    );
}

#[test]
fn a_request_without_origin_gets_no_cors_headers_but_vary() {
    let policy = cors(json!({"allow_origins": [APP]}));
    let (verdict, action) = decide(&policy, "GET", &[]);
    assert_eq!(
        (verdict.clone(), action),
        (Verdict::NoOrigin, NextStep::Continue)
    );
    assert_eq!(
        respond(&policy, &verdict, &[(":status", "200")]),
        owned(&[(":status", "200"), ("vary", "Origin")])
    );
}

#[test]
fn routes_override_cors_field_by_field() {
    let config = Config::from_bytes(
        json!({
            "defaults": {"cors": {"allow_origins": [APP], "allow_methods": ["GET"]}},
            "routes": [
                {"match": {"prefix": "/public/"}, "cors": {"allow_origins": ["*"]}},
                {"match": {"prefix": "/internal/"}, "cors": false}
            ]
        })
        .to_string()
        .as_bytes(),
    )
    .expect("valid");
    let route = |path: &str| {
        config
            .routes
            .find("GET", path)
            .map(|r| r.policies.cors.clone())
    };
    let public = route("/public/x").flatten().expect("cors on");
    assert_eq!(
        preflight(&public, "https://anyone.example.org", "GET", None)
            .header("access-control-allow-origin"),
        Some("*")
    );
    assert_eq!(preflight(&public, APP, "POST", None).status, 403);
    assert!(route("/internal/x").flatten().is_none());
}
