use super::*;
// The same tests run on wasm32 under Node (`cargo xtask test`), where usize is 32 bits.

#[test]
fn renders_rfc9457_members_in_order() {
    let problem = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "Too many requests, try again later.",
    );
    assert_eq!(
        String::from_utf8(problem.to_json(Some("0f6a2c1e-7b7a-4d7e-9e1a-3b5f8f0c2d11"))).unwrap(),
        r#"{"type":"about:blank","title":"Too Many Requests","status":429,"detail":"Too many requests, try again later.","code":"rate_limited","request_id":"0f6a2c1e-7b7a-4d7e-9e1a-3b5f8f0c2d11"}"#
    );
}

#[test]
fn extensions_follow_the_standard_members() {
    let problem = Problem::new(StatusCode::BAD_REQUEST, "invalid_body", "bad").with_extension(
        "errors",
        &serde_json::json!([{"pointer": "/email", "keyword": "format"}]),
    );
    assert_eq!(
        String::from_utf8(problem.to_json(None)).unwrap(),
        r#"{"type":"about:blank","title":"Bad Request","status":400,"detail":"bad","code":"invalid_body","errors":[{"keyword":"format","pointer":"/email"}]}"#
    );
}

#[test]
fn unsafe_request_ids_are_not_echoed() {
    let problem = Problem::new(StatusCode::FORBIDDEN, "x", "d");
    for id in ["", "a b", "<script>\n", &"x".repeat(129)] {
        let body: serde_json::Value = serde_json::from_slice(&problem.to_json(Some(id))).unwrap();
        assert!(body.get("request_id").is_none(), "{id:?} was echoed");
    }
    let body: serde_json::Value =
        serde_json::from_slice(&problem.to_json(Some(&"x".repeat(128)))).unwrap();
    assert_eq!(body["request_id"], "x".repeat(128));
}

#[test]
fn detail_is_json_escaped() {
    let problem = Problem::new(StatusCode::BAD_REQUEST, "x", "quote \" and \\ and \u{1}");
    let body: serde_json::Value = serde_json::from_slice(&problem.to_json(None)).unwrap();
    assert_eq!(body["detail"], "quote \" and \\ and \u{1}");
}

#[test]
fn nonstandard_status_gets_a_generic_title() {
    let problem = Problem::new(StatusCode::from_u16(599).unwrap(), "x", "d");
    let body: serde_json::Value = serde_json::from_slice(&problem.to_json(None)).unwrap();
    assert_eq!(body["title"], "Error");
}
