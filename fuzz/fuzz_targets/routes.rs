//! Route matching (input: `METHOD ANNOUNCED PATH`) against a fixed table of exact, prefix and
//! template routes with method sets, matched exactly and loosely (the default: ASCII case, one
//! trailing slash, `;params` after literal segments). Exact matching agrees with an independent
//! reading of each pattern; loose matching takes everything exact matching takes, ignores ASCII
//! case and one trailing slash; a template's parameters are its non-empty segments; the route
//! found is the first that matches, and a CORS preflight finds the first route of the method it
//! announces (or one listing OPTIONS).

#![no_main]

use hardening::config::Config;
use hardening::routes::{PathPattern, Route, RouteTable, Segment};
use hardening::syntax::path_only;
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

// `matrix`, `semi` and `semi_prefix` hold `;` in a literal: loosely they must still match their
// own paths (corpus input `loose-semicolon-literal` found that they did not).
const ROUTES: &str = r#""routes": [
    {"name": "health", "match": {"path": "/health"}},
    {"name": "root", "match": {"path": "/", "methods": ["GET"]}},
    {"name": "users", "match": {"path": "/users", "methods": ["GET", "POST"]}},
    {"name": "user", "match": {"path": "/users/{id}", "methods": ["GET", "PUT", "DELETE"]}},
    {"name": "posts", "match": {"path": "/users/{id}/posts/{post}"}},
    {"name": "trailing", "match": {"path": "/users/{id}/"}},
    {"name": "options", "match": {"path": "/cors/{x}", "methods": ["OPTIONS", "PATCH"]}},
    {"name": "static", "match": {"prefix": "/static/"}},
    {"name": "api", "match": {"prefix": "/api", "methods": ["HEAD", "BREW"]}},
    {"name": "encoded", "match": {"path": "/a%2Fb/{rest}"}},
    {"name": "exact_anyway", "match": {"path": "/Exact/{x}", "exact": true}},
    {"name": "matrix", "match": {"path": "/m;v=1/{id}"}},
    {"name": "semi", "match": {"path": "/a;b"}},
    {"name": "semi_prefix", "match": {"prefix": "/p;v=2/"}}
]"#;

fn compile(matching: &str) -> Config {
    let text = format!(r#"{{"route_matching": "{matching}", {ROUTES}}}"#);
    Config::from_bytes(text.as_bytes()).expect("the routes compile")
}

static EXACT: LazyLock<Config> = LazyLock::new(|| compile("exact"));
static LOOSE: LazyLock<Config> = LazyLock::new(|| compile("loose"));

/// The pattern matched byte for byte, read independently of `routes.rs`.
fn exactly(pattern: &PathPattern, path: &str) -> bool {
    #[allow(unreachable_patterns)]
    match pattern {
        PathPattern::Exact(exact) => path == exact,
        PathPattern::Prefix(prefix) => path.starts_with(prefix.as_str()),
        PathPattern::Template(segments) => {
            let Some(rest) = path.strip_prefix('/') else {
                return false;
            };
            let parts: Vec<&str> = rest.split('/').collect();
            parts.len() == segments.len()
                && segments
                    .iter()
                    .zip(&parts)
                    .all(|(segment, part)| match segment {
                        Segment::Literal(literal) => literal == part,
                        Segment::Param(_) => !part.is_empty(),
                        // The table has no mixed segment.
                        Segment::Mixed(_) => false,
                    })
        }
        _ => pattern.matches(path, true),
    }
}

fn method_matches(route: &Route, method: &str) -> bool {
    match &route.methods {
        None => true,
        Some(methods) => methods
            .iter()
            .any(|m| m.as_str() == method || (method == "HEAD" && m == http::Method::GET)),
    }
}

/// The first match and the preflight's route are the first routes that match.
fn check_table(routes: &RouteTable, method: &str, announced: &str, full_path: &str) {
    let path = path_only(full_path);
    let found = routes.find(method, full_path).map(|r| r.index);
    let expected = routes
        .iter()
        .find(|r| method_matches(r, method) && r.matches_path(path))
        .map(|r| r.index);
    assert_eq!(found, expected, "{method} {path:?}");
    let found = routes.find_preflight(announced, full_path).map(|r| r.index);
    let expected = routes
        .iter()
        .find(|r| {
            r.matches_path(path)
                && (method_matches(r, announced)
                    || r.methods
                        .as_ref()
                        .is_some_and(|m| m.contains(&http::Method::OPTIONS)))
        })
        .map(|r| r.index);
    assert_eq!(found, expected, "preflight for {announced} {path:?}");
}

fn check_route(route: &Route, method: &str, path: &str) {
    let matched = route.matches_path(path);
    assert_eq!(
        route.matches(method, path),
        matched && method_matches(route, method)
    );
    assert_eq!(route.matches_method(method), method_matches(route, method));
    match route.params(path) {
        Some(params) => {
            assert!(matched, "{route:?} gave params for {path:?}");
            let names = route.pattern.param_names();
            assert_eq!(params.len(), names.len());
            for ((name, value), expected_name) in params.iter().zip(&names) {
                assert_eq!(name, expected_name);
                assert!(!value.is_empty() && !value.contains('/'), "{value:?}");
            }
        }
        None => assert!(!matched, "{route:?} matched {path:?} without params"),
    }
}

fuzz_target!(|data: &[u8]| {
    // `METHOD ANNOUNCED PATH`: a request line, and the method a CORS preflight announces.
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, ' ');
    let (method, announced) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let full_path = parts.next().unwrap_or("");
    let path = path_only(full_path);
    assert!(full_path.starts_with(path) && !path.contains(['?', '#']));

    for (exact, loose) in EXACT.routes.iter().zip(LOOSE.routes.iter()) {
        assert!(exact.exact, "{exact:?}");
        assert_eq!(loose.exact, loose.name == "exact_anyway", "{loose:?}");
        let by_bytes = exactly(&exact.pattern, path);
        assert_eq!(exact.matches_path(path), by_bytes, "{exact:?} on {path:?}");
        check_route(exact, method, path);
        check_route(loose, method, path);
        if loose.exact {
            continue;
        }
        // Loosely: whatever matches byte for byte, in any ASCII case, with or without one
        // trailing slash.
        let matched = loose.matches_path(path);
        if by_bytes {
            assert!(matched, "{loose:?} takes {path:?} exactly but not loosely");
        }
        for variant in [path.to_ascii_lowercase(), path.to_ascii_uppercase()] {
            assert_eq!(
                loose.matches_path(&variant),
                matched,
                "{loose:?}: {path:?} / {variant:?}"
            );
        }
        if path.starts_with('/') && !path.ends_with('/') {
            let slashed = format!("{path}/");
            assert_eq!(
                loose.matches_path(&slashed),
                matched,
                "{loose:?}: {path:?} / {slashed:?}"
            );
        }
    }
    check_table(&EXACT.routes, method, announced, full_path);
    check_table(&LOOSE.routes, method, announced, full_path);
});
