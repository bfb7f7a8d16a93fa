//! Expected values shared by tests, written from the sources they come from (not from what
//! the code happens to do).

/// helmet 8.3.0's `helmet()` response headers, in the order its middleware sets them: one
/// table with the benchmark's, in xtask (the crate both see).
pub use xtask::bench::helmet::HELMET_HEADERS;

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

/// Asserts a problem+json refusal: its status, media type, `code`, and the JSON Pointers of
/// its `errors`, in order.
pub fn assert_problem(
    response: &crate::Response,
    status: u16,
    code: &str,
    pointers: &[&str],
    who: &str,
) {
    assert_eq!(response.status, status, "{who}: {}", response.text());
    assert_eq!(
        response.header_value("content-type"),
        Some("application/problem+json"),
        "{who}"
    );
    let body = response.json_body();
    assert_eq!(body["code"], code, "{who}: {body}");
    let found: Vec<&str> = body["errors"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["pointer"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(found, pointers, "{who}: {body}");
}
