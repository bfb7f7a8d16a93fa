use super::*;
// The same tests run on wasm32 under Node (`cargo xtask test`), where usize is 32 bits.
use crate::config::Config;
#[cfg(not(target_family = "wasm"))]
use proptest::prelude::*;

fn table(json: &str) -> RouteTable {
    Config::from_bytes(json.as_bytes())
        .expect("valid config")
        .routes
}

fn error(json: &str) -> String {
    Config::from_bytes(json.as_bytes())
        .expect_err("invalid config")
        .to_string()
}

#[test]
fn an_exact_route_matches_only_itself() {
    for config in [
        r#"{"routes":[{"match":{"path":"/users","exact":true}}]}"#,
        r#"{"route_matching":"exact","routes":[{"match":{"path":"/users"}}]}"#,
    ] {
        let t = table(config);
        assert!(t.find("GET", "/users").is_some());
        assert!(t.find("GET", "/users?page=2").is_some());
        assert!(t.find("GET", "/users/").is_none());
        assert!(t.find("GET", "/users/1").is_none());
        assert!(t.find("GET", "/Users").is_none());
        assert!(t.find("GET", "/users;x").is_none());
        assert!(t.find("GET", "/user").is_none());
    }
    // A route's own `exact: false` beats the top level.
    let t =
        table(r#"{"route_matching":"exact","routes":[{"match":{"path":"/users","exact":false}}]}"#);
    assert!(t.find("GET", "/USERS/").is_some());
}

#[test]
fn a_path_matches_loosely_by_default_as_frameworks_route() {
    let t = table(r#"{"routes":[{"match":{"path":"/users"}}]}"#);
    // Express's defaults (case-insensitive, non-strict) and servlet `;parameters`.
    for variant in [
        "/users",
        "/users/",
        "/Users",
        "/USERS/",
        "/uSeRs?x=1",
        "/users;jsessionid=1",
    ] {
        assert!(t.find("POST", variant).is_some(), "{variant}");
    }
    for other in [
        "/users//",
        "/users/1",
        "/user",
        "/usersx",
        "//users",
        "users",
        "/users%2F",
    ] {
        assert!(t.find("POST", other).is_none(), "{other}");
    }
    // A pattern written with a trailing slash is the same route.
    let t = table(r#"{"routes":[{"match":{"path":"/users/"}}]}"#);
    assert!(t.find("GET", "/users").is_some());
    assert!(t.find("GET", "/Users/").is_some());
    // The root.
    let t = table(r#"{"routes":[{"match":{"path":"/"}}]}"#);
    assert!(t.find("GET", "/").is_some());
    assert!(t.find("GET", "/x").is_none());
}

#[test]
fn prefix_matches_like_envoy() {
    let t = table(r#"{"routes":[{"match":{"prefix":"/api/","exact":true}}]}"#);
    assert!(t.find("GET", "/api/").is_some());
    assert!(t.find("GET", "/api/v1/things?x=1").is_some());
    assert!(t.find("GET", "/api").is_none());
    assert!(t.find("GET", "/apix/").is_none());
    assert!(t.find("GET", "/API/").is_none());
    // Loosely: case ignored, `/api` is the directory too, `;parameters` ignored.
    let t = table(r#"{"routes":[{"match":{"prefix":"/api/"}}]}"#);
    for variant in [
        "/api/",
        "/API/v1",
        "/api",
        "/Api/",
        "/api;x/v1",
        "/api/v1/things?x=1",
    ] {
        assert!(t.find("GET", variant).is_some(), "{variant}");
    }
    for other in ["/apix/", "/ap", "/", "/v1/api/"] {
        assert!(t.find("GET", other).is_none(), "{other}");
    }
    // Without a trailing slash the last segment is a prefix of the path's, as in Envoy.
    let t = table(r#"{"routes":[{"match":{"prefix":"/admin/pan"}}]}"#);
    assert!(t.find("GET", "/ADMIN/panel").is_some());
    assert!(t.find("GET", "/admin;x/Panel/1").is_some());
    assert!(t.find("GET", "/admin/pa").is_none());
}

/// Found by the `routes` fuzz target (fuzz/corpus/routes/loose-semicolon-literal): a literal
/// holding `;` must match its own path loosely, not only exactly.
#[test]
fn a_literal_holding_a_semicolon_matches_its_own_path_loosely() {
    let t = table(
        r#"{"routes":[
            {"name":"exact","match":{"path":"/a;b"}},
            {"name":"template","match":{"path":"/legacy;v=1/{id}"}},
            {"name":"prefix","match":{"prefix":"/api;v=2/"}},
            {"name":"partial","match":{"prefix":"/old;v"}}
        ]}"#,
    );
    let name = |path: &str| t.find("GET", path).map(|r| r.name.clone());
    assert_eq!(name("/a;b").as_deref(), Some("exact"));
    assert_eq!(name("/A;B/").as_deref(), Some("exact"));
    assert_eq!(name("/a;b;x=1").as_deref(), Some("exact"));
    assert_eq!(name("/a;bc"), None);
    assert_eq!(name("/a"), None);
    assert_eq!(name("/legacy;v=1/7").as_deref(), Some("template"));
    assert_eq!(name("/Legacy;V=1;s=2/7").as_deref(), Some("template"));
    assert_eq!(name("/legacy;v=2/7"), None);
    assert_eq!(name("/legacy/7"), None);
    assert_eq!(name("/api;v=2/users").as_deref(), Some("prefix"));
    assert_eq!(name("/api;v=2").as_deref(), Some("prefix"));
    assert_eq!(name("/api;v=3/users"), None);
    assert_eq!(name("/old;v=9").as_deref(), Some("partial"));
    assert_eq!(name("/old"), None);
}

#[test]
fn template_matches_one_nonempty_segment_per_param() {
    let t = table(r#"{"routes":[{"match":{"path":"/users/{id}/posts/{post_id}"}}]}"#);
    let route = t.find("GET", "/users/42/posts/7?full=1").expect("matches");
    assert_eq!(
        route.params("/users/42/posts/7"),
        Some(vec![("id", "42"), ("post_id", "7")])
    );
    assert!(t.find("GET", "/users//posts/7").is_none());
    assert!(t.find("GET", "/users/42/posts").is_none());
    assert!(t.find("GET", "/users/4/2/posts/7").is_none());
    assert!(t.find("GET", "users/42/posts/7").is_none());
    // Loosely: literals by case and `;parameters`, one trailing slash; a parameter's value is
    // kept whole (its schema sees what the backend may see).
    let route = t
        .find("GET", "/Users/42/POSTS/7/")
        .expect("matches loosely");
    assert_eq!(
        route.params("/Users/42/POSTS/7/"),
        Some(vec![("id", "42"), ("post_id", "7")])
    );
    assert_eq!(
        route.params("/users;x/4;2/posts/Seven"),
        Some(vec![("id", "4;2"), ("post_id", "Seven")])
    );
    assert!(t.find("GET", "/users/42/posts/7//").is_none());
    let exact = table(r#"{"route_matching":"exact","routes":[{"match":{"path":"/users/{id}"}}]}"#);
    assert!(exact.find("GET", "/users/42/").is_none());
    assert!(exact.find("GET", "/Users/42").is_none());
    // A template written with a trailing slash.
    let t = table(r#"{"routes":[{"match":{"path":"/users/{id}/"}}]}"#);
    assert!(t.find("GET", "/users/1").is_some());
    assert!(t.find("GET", "/users/1/").is_some());
}

/// GitHub's `/repos/{owner}/{repo}/compare/{basehead}` is written `{base}...{head}` in older
/// descriptions; a file route `{name}.json`.
#[test]
fn a_segment_can_mix_literal_text_and_parameters() {
    let t = table(
        r#"{"routes":[
            {"name":"compare","match":{"path":"/compare/{base}...{head}"}},
            {"name":"json","match":{"path":"/files/{name}.json"}},
            {"name":"call","match":{"path":"/delta(token='{token}')"}}
        ]}"#,
    );
    let found = |path: &str| -> Option<(String, Vec<(String, String)>)> {
        let route = t.find("GET", path)?;
        let params = route.params(path_only(path))?;
        let owned = params.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Some((route.name.clone(), owned.collect()))
    };
    let expect = |name: &str, params: &[(&str, &str)]| {
        let owned = params.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Some((name.to_string(), owned.collect::<Vec<_>>()))
    };
    assert_eq!(
        found("/compare/main...feature/"),
        expect("compare", &[("base", "main"), ("head", "feature")])
    );
    // The first `...` ends the first parameter; the rest is the second.
    assert_eq!(
        found("/Compare/a...b...c"),
        expect("compare", &[("base", "a"), ("head", "b...c")])
    );
    assert_eq!(found("/compare/...b"), None);
    assert_eq!(found("/compare/a..."), None);
    assert_eq!(found("/compare/ab"), None);
    assert_eq!(
        found("/files/report.v2.JSON"),
        expect("json", &[("name", "report.v2")])
    );
    assert_eq!(found("/files/.json"), None);
    // A literal that ends the segment is found at its end.
    assert_eq!(
        found("/files/a.json.json"),
        expect("json", &[("name", "a.json")])
    );
    assert_eq!(
        found("/delta(token='abc')"),
        expect("call", &[("token", "abc")])
    );
    let exact =
        table(r#"{"route_matching":"exact","routes":[{"match":{"path":"/files/{name}.json"}}]}"#);
    assert!(exact.find("GET", "/files/a.json").is_some());
    assert!(exact.find("GET", "/files/a.JSON").is_none());
}

#[test]
fn methods_restrict_the_route_and_first_match_wins() {
    let t = table(
        r#"{"routes":[
            {"name":"read","match":{"path":"/users/{id}","methods":["GET","HEAD"]}},
            {"name":"write","match":{"path":"/users/{id}","methods":["PUT"]}},
            {"name":"rest","match":{"prefix":"/"}}
        ]}"#,
    );
    let name = |m: &str, p: &str| t.find(m, p).map(|r| r.name.as_str());
    assert_eq!(name("GET", "/users/1"), Some("read"));
    assert_eq!(name("HEAD", "/users/1"), Some("read"));
    assert_eq!(name("PUT", "/users/1"), Some("write"));
    assert_eq!(name("DELETE", "/users/1"), Some("rest"));
    assert_eq!(name("get", "/users/1"), Some("rest"));
}

#[test]
fn a_get_route_takes_head_too() {
    let t = table(
        r#"{"routes":[
            {"name":"read","match":{"path":"/users/{id}","methods":["GET"]}},
            {"name":"create","match":{"path":"/users","methods":["POST"]}}
        ]}"#,
    );
    let name = |m: &str, p: &str| t.find(m, p).map(|r| r.name.as_str());
    assert_eq!(name("HEAD", "/users/1"), Some("read"));
    assert_eq!(name("HEAD", "/users"), None);
    let allowed: Vec<Vec<&str>> = t
        .iter()
        .filter_map(|r| r.allowed_methods().map(Iterator::collect))
        .collect();
    assert_eq!(allowed, [vec!["GET", "HEAD"], vec!["POST"]]);
}

#[test]
fn default_route_name_is_the_pattern() {
    let t =
        table(r#"{"routes":[{"match":{"path":"/users/{id}"}},{"match":{"prefix":"/static/"}}]}"#);
    let names: Vec<_> = t.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["/users/{id}", "/static/*"]);
}

#[test]
fn bad_matches_are_refused_with_the_field() {
    assert_eq!(
        error(r#"{"routes":[{"match":{"path":"users"}}]}"#),
        "invalid configuration at `routes[0].match.path`: `users` must start with `/`"
    );
    assert_eq!(
        error(r#"{"routes":[{"match":{}}]}"#),
        "invalid configuration at `routes[0].match`: needs `path` (exact or a template such as /users/{id}) or `prefix`"
    );
    assert_eq!(
        error(r#"{"routes":[{"match":{"path":"/a","prefix":"/b"}}]}"#),
        "invalid configuration at `routes[0].match`: set either `path` or `prefix`, not both"
    );
    assert_eq!(
        error(r#"{"routes":[{"match":{"path":"/a"}},{"match":{"path":"/users/{id}/x/{id}"}}]}"#),
        "invalid configuration at `routes[1].match.path`: parameter `{id}` appears twice"
    );
    assert_eq!(
        error(r#"{"routes":[{"match":{"path":"/compare/{base}{head}"}}]}"#),
        "invalid configuration at `routes[0].match.path`: segment `{base}{head}`: two parameters need literal text between them"
    );
    assert_eq!(
        error(r#"{"routes":[{"match":{"path":"/files/{name.json"}}]}"#),
        "invalid configuration at `routes[0].match.path`: segment `{name.json`: unbalanced `{` or `}`"
    );
    assert_eq!(
        error(r#"{"routes":[{"match":{"path":"/users/{1d}"}}]}"#),
        "invalid configuration at `routes[0].match.path`: `{1d}` is not a parameter name (letters, digits and `_`, not starting with a digit)"
    );
    assert_eq!(
        error(r#"{"routes":[{"match":{"path":"/a?b=1"}}]}"#),
        "invalid configuration at `routes[0].match.path`: `/a?b=1` contains '?'; a path pattern cannot hold a query, fragment, space or control character"
    );
    assert_eq!(
        error(r#"{"routes":[{"match":{"prefix":"/{x}"}}]}"#),
        "invalid configuration at `routes[0].match.prefix`: a prefix cannot contain `{` or `}`; use `path` for templates"
    );
    assert_eq!(
        error(r#"{"routes":[{"match":{"path":"/é"}}]}"#),
        "invalid configuration at `routes[0].match.path`: `/é` contains non-ASCII characters; write them percent-encoded as they arrive on the wire"
    );
}

#[test]
fn bad_methods_are_refused_with_the_entry() {
    assert_eq!(
        error(r#"{"routes":[{"match":{"path":"/a","methods":["GET","get"]}}]}"#),
        "invalid configuration at `routes[0].match.methods[1]`: `get`: methods are case-sensitive; write `GET`"
    );
    assert_eq!(
        error(r#"{"routes":[{"match":{"path":"/a","methods":["GET","GE T"]}}]}"#),
        "invalid configuration at `routes[0].match.methods[1]`: `GE T` is not a valid HTTP method token"
    );
    assert_eq!(
        error(r#"{"routes":[{"match":{"path":"/a","methods":["GET","GET"]}}]}"#),
        "invalid configuration at `routes[0].match.methods[1]`: `GET` is listed twice"
    );
    assert_eq!(
        error(r#"{"routes":[{"match":{"path":"/a","methods":[]}}]}"#),
        "invalid configuration at `routes[0].match.methods`: an empty list matches nothing; leave `methods` out to match every method"
    );
    // An extension method is a valid token and allowed.
    let t = table(r#"{"routes":[{"match":{"path":"/a","methods":["PURGE"]}}]}"#);
    assert!(t.find("PURGE", "/a").is_some());
}

#[cfg(not(target_family = "wasm"))]
proptest! {
    #[test]
    fn template_params_reassemble_the_path(id in "[A-Za-z0-9._~%-]{1,20}", post in "[A-Za-z0-9._~%-]{1,20}") {
        let t = table(r#"{"routes":[{"match":{"path":"/users/{id}/posts/{post}"}}]}"#);
        let path = format!("/users/{id}/posts/{post}");
        let route = t.find("GET", &path).expect("matches");
        prop_assert_eq!(route.params(&path), Some(vec![("id", id.as_str()), ("post", post.as_str())]));
    }

    /// Every variant a common framework folds into a route gets the route: case changed,
    /// one trailing slash, `;parameters` after a literal segment.
    #[test]
    fn loose_variants_of_a_path_get_its_route(
        path in "(/[a-z0-9_-]{1,8}){1,4}",
        flips in prop::collection::vec(any::<bool>(), 40),
        slash in any::<bool>(),
        params in prop::option::of(";[a-z=0-9]{0,6}"),
    ) {
        let config = format!(r#"{{"routes":[{{"match":{{"path":"{path}"}}}}]}}"#);
        let t = table(&config);
        let mut variant: String = path
            .chars()
            .zip(flips.iter().cycle())
            .map(|(c, flip)| if *flip { c.to_ascii_uppercase() } else { c })
            .collect();
        if let Some(params) = &params {
            variant.push_str(params);
        }
        if slash {
            variant.push('/');
        }
        prop_assert!(t.find("GET", &variant).is_some(), "{} should match {}", variant, path);
        let exact = format!(r#"{{"route_matching":"exact","routes":[{{"match":{{"path":"{path}"}}}}]}}"#);
        let t = table(&exact);
        prop_assert_eq!(t.find("GET", &variant).is_some(), variant == path);
    }

    #[test]
    fn matching_never_panics(path in "\\PC*", method in "\\PC{0,10}") {
        for matching in ["loose", "exact"] {
            let config = format!(r#"{{"route_matching":"{matching}","routes":[{{"match":{{"path":"/users/{{id}}/"}}}},{{"match":{{"prefix":"/a/"}}}},{{"match":{{"prefix":"/"}}}},{{"match":{{"path":"/x"}}}}]}}"#);
            let t = table(&config);
            let _ = t.find(&method, &path);
            let _ = t.find_preflight(&method, &path);
        }
    }
}

#[test]
fn a_preflight_takes_the_route_of_its_announced_method_or_one_listing_options() {
    let t = table(
        r#"{"routes":[
            {"name":"own_preflights","match":{"path":"/a","methods":["OPTIONS"]}},
            {"name":"create_a","match":{"path":"/a","methods":["POST"]}},
            {"name":"create_b","match":{"path":"/b","methods":["POST"]}}
        ]}"#,
    );
    let name = |m: &str, p: &str| t.find_preflight(m, p).map(|r| r.name.as_str());
    assert_eq!(name("POST", "/a"), Some("own_preflights"));
    assert_eq!(name("POST", "/b?x=1"), Some("create_b"));
    assert_eq!(name("GET", "/b"), None);
}

/// The route tree of an API description against a scan of the same routes: whatever it finds
/// matches, and it finds a route whenever one matches (literal segments tried first, then
/// mixed, then parameters, falling back when a branch has no route for the method).
#[cfg(not(target_family = "wasm"))]
mod tree {
    use super::*;
    use std::sync::Arc;

    fn described(templates: &[(String, &str)], exact: bool) -> RouteTable {
        let routes = templates
            .iter()
            .enumerate()
            .map(|(index, (path, method))| Route {
                index,
                name: format!("{method} {path}"),
                pattern: compile_path(path, ParamNames::Any).expect("template"),
                methods: Some(vec![Method::from_bytes(method.as_bytes()).expect("method")]),
                exact,
                policies: Arc::new(PolicySet::default()),
            })
            .collect();
        RouteTable::with_described(Vec::new(), routes, exact)
    }

    fn template() -> impl Strategy<Value = String> {
        let segment = prop::sample::select(vec!["a", "b", "{p}", "x{q}y", "Ab", ""]);
        prop::collection::vec(segment, 1..4).prop_map(|segments| {
            let mut names = 0;
            let segments: Vec<String> = segments
                .iter()
                .map(|s| {
                    names += 1;
                    s.replace("{p}", &format!("{{p{names}}}"))
                        .replace("{q}", &format!("{{q{names}}}"))
                })
                .collect();
            format!("/{}", segments.join("/"))
        })
    }

    proptest! {
        #[test]
        fn the_tree_finds_what_a_scan_finds(
            templates in prop::collection::vec((template(), prop::sample::select(vec!["GET", "POST"])), 1..8),
            path in prop::collection::vec(prop::sample::select(vec!["a", "b", "A", "ab", "xzy", "xy", "c", ""]), 1..5),
            slash in any::<bool>(),
            exact in any::<bool>(),
            method in prop::sample::select(vec!["GET", "POST", "HEAD"]),
        ) {
            let table = described(&templates, exact);
            let mut path = format!("/{}", path.join("/"));
            if slash {
                path.push('/');
            }
            let found = table.find(method, &path);
            let any = table.iter().any(|r| r.matches(method, &path));
            prop_assert_eq!(found.is_some(), any, "{} {}", method, path);
            if let Some(route) = found {
                prop_assert!(route.matches(method, &path), "{} found for {}", route.name, path);
            }
            let allowed = table.methods_for_path(&path).is_some();
            prop_assert_eq!(allowed, table.iter().any(|r| r.matches_path(&path)));
        }
    }

    #[test]
    fn a_literal_beats_a_parameter_at_the_first_segment_they_differ() {
        let templates = [
            ("/users/{id}".to_string(), "GET"),
            ("/users/me".to_string(), "GET"),
            ("/users/{id}/x{n}y".to_string(), "GET"),
            ("/users/{id}/{other}".to_string(), "GET"),
        ];
        let table = described(&templates, false);
        let name = |path: &str| table.find("GET", path).map(|r| r.name.clone());
        assert_eq!(name("/users/me").as_deref(), Some("GET /users/me"));
        assert_eq!(name("/users/7").as_deref(), Some("GET /users/{id}"));
        assert_eq!(
            name("/users/7/xzy").as_deref(),
            Some("GET /users/{id}/x{n}y")
        );
        assert_eq!(
            name("/users/7/zzz").as_deref(),
            Some("GET /users/{id}/{other}")
        );
    }
}
