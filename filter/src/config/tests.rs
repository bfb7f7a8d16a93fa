use super::*;
// The same tests run on wasm32 under Node (`cargo xtask test`), where usize is 32 bits.

fn error(json: &str) -> String {
    Config::from_bytes(json.as_bytes())
        .expect_err("invalid config")
        .to_string()
}

#[test]
fn empty_config_is_valid() {
    for text in ["", "  \n", "{}"] {
        let config = Config::from_bytes(text.as_bytes()).expect("valid");
        assert!(config.routes.is_empty());
    }
}

#[test]
fn unknown_top_level_field_is_named() {
    assert_eq!(
        error(r#"{"rotues":[]}"#),
        "invalid configuration at `rotues`: unknown field `rotues`, expected one of `defaults`, `routes`, `logging`, `health`, `route_matching`, `client_address`, `openapi` at line 1 column 9"
    );
}

#[test]
fn unknown_nested_field_is_named_with_its_path() {
    assert_eq!(
        error(r#"{"routes":[{"match":{"path":"/a"}},{"match":{"paht":"/b"}}]}"#),
        "invalid configuration at `routes[1].match.paht`: unknown field `paht`, expected one of `path`, `prefix`, `methods`, `exact`, `operations` at line 1 column 51"
    );
}

#[test]
fn wrong_type_is_named_with_its_path() {
    assert_eq!(
        error(r#"{"routes":[{"match":{"path":7}}]}"#),
        "invalid configuration at `routes[0].match.path`: invalid type: integer `7`, expected a string at line 1 column 29"
    );
}

#[test]
fn syntax_errors_say_where() {
    assert_eq!(
        error(r#"{"routes":[}"#),
        "invalid configuration at `routes[0]`: expected value at line 1 column 12"
    );
    assert_eq!(
        error(r#"{} {}"#),
        "invalid configuration: trailing characters at line 1 column 4"
    );
    assert_eq!(
        error("[1]"),
        "invalid configuration: the configuration must be a JSON object (or a protobuf Struct), like {\"routes\": [...]}"
    );
}

#[test]
fn secrets_in_json_text_keep_order_and_duplicate_checks_and_never_show_in_errors() {
    let env = |name: &str| (name == "WINDOW").then(|| "hunter2-window".to_string());
    let bad = br#"{"defaults":{"rate_limit":{"limit":10,"window":"${WINDOW}"}}}"#;
    let error = Config::from_bytes_with_env(bad, &env).expect_err("not a duration");
    let message = error.to_string();
    assert!(!message.contains("hunter2"), "{message}");
    assert!(message.contains("${WINDOW}"), "{message}");
    let duplicate = br#"{"defaults":{"security_headers":{"content_security_policy":{"directives":{"img-src":["'self'"],"img-src":["${IMG:-'none'}"]}}}}}"#;
    let error = Config::from_bytes_with_env(duplicate, &env).expect_err("duplicate key");
    assert!(error.to_string().contains("img-src"), "{error}");
}

#[test]
fn route_names_that_would_merge_counters_are_refused() {
    let config = |json: &str| Config::from_bytes(json.as_bytes());
    let error = config(r#"{"routes":[{"name":"Users API","match":{"path":"/a"}},{"name":"users_api","match":{"path":"/b"}}]}"#)
        .expect_err("same label");
    assert_eq!(error.path, "routes[1].name");
    let error =
        config(r#"{"routes":[{"name":"Unmatched","match":{"path":"/a"}}]}"#).expect_err("reserved");
    assert_eq!(error.path, "routes[0].name");
    config(r#"{"routes":[{"match":{"path":"/users","methods":["GET"]}},{"match":{"path":"/users","methods":["POST"]}}]}"#)
        .expect("unnamed routes may share their pattern");
    assert_eq!(
        config(r#"{"routes":[{"match":{"prefix":"/unmatched/"}}]}"#)
            .expect_err("reserved label")
            .to_string(),
        "invalid configuration at `routes[0]`: its path `/unmatched/*` gives the metric name `unmatched`, which counts the requests no route matches; give the route a `name`"
    );
}

/// The policy sections of `defaults` and of a route are declared once for both
/// (`policy::set`): the messages name the same fields, in the same order, as when each struct
/// listed them.
#[test]
fn policy_sections_keep_their_field_names_and_order_in_errors() {
    for (json, message) in [
        (
            r#"{"defaults":{"corz":true}}"#,
            "invalid configuration at `defaults.corz`: unknown field `corz`, expected one of `security_headers`, `cors`, `rate_limit`, `validate`, `https_redirect`, `errors` at line 1 column 19",
        ),
        (
            r#"{"routes":[{"match":{"path":"/a"},"corz":true}]}"#,
            "invalid configuration at `routes[0].corz`: unknown field `corz`, expected one of `name`, `match`, `security_headers`, `cors`, `rate_limit`, `validate`, `https_redirect`, `errors` at line 1 column 40",
        ),
        (
            r#"{"routes":[{"name":"a"}]}"#,
            "invalid configuration at `routes[0]`: missing field `match` at line 1 column 23",
        ),
        (
            r#"{"routes":[{"match":{"path":"/a"},"cors":false,"cors":true}]}"#,
            "invalid configuration at `routes[0]`: duplicate field `cors` at line 1 column 53",
        ),
        (
            r#"{"defaults":{"errors":false,"errors":true}}"#,
            "invalid configuration at `defaults`: duplicate field `errors` at line 1 column 36",
        ),
        // What a route may not set is refused before any of its sections compiles.
        (
            r#"{"routes":[{"match":{"path":"/a"},"validate":{"unknown_routes":"reject"},"cors":{}}]}"#,
            "invalid configuration at `routes[0].validate.unknown_routes`: only in defaults.validate (it is about requests no route matches)",
        ),
    ] {
        assert_eq!(error(json), message, "{json}");
    }
}

#[test]
fn a_struct_config_error_names_the_field_without_a_text_position() {
    use prost::Message;
    use prost_types::{ListValue, Struct, Value as PValue, value::Kind};
    let text = |s: &str| PValue {
        kind: Some(Kind::StringValue(s.into())),
    };
    let object = |fields: Vec<(&str, PValue)>| PValue {
        kind: Some(Kind::StructValue(Struct {
            fields: fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        })),
    };
    let route = object(vec![("match", object(vec![("paht", text("/x"))]))]);
    let config = Struct {
        fields: [(
            "routes".to_string(),
            PValue {
                kind: Some(Kind::ListValue(ListValue {
                    values: vec![route],
                })),
            },
        )]
        .into_iter()
        .collect(),
    };
    let error = Config::from_bytes(&config.encode_to_vec()).expect_err("refused");
    assert_eq!(
        error.to_string(),
        "invalid configuration at `routes[0].match.paht`: unknown field `paht`, expected one of `path`, `prefix`, `methods`, `exact`, `operations`"
    );
}
