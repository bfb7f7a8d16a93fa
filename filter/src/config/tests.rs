use super::*;
// The same tests run on wasm32 under Node (`cargo xtask test`), where usize is 32 bits.
#[cfg(target_family = "wasm")]
use wasm_bindgen_test::wasm_bindgen_test as test;

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
        "invalid configuration at `rotues`: unknown field `rotues`, expected one of `defaults`, `routes`, `logging`, `health` at line 1 column 9"
    );
}

#[test]
fn unknown_nested_field_is_named_with_its_path() {
    assert_eq!(
        error(r#"{"routes":[{"match":{"path":"/a"}},{"match":{"paht":"/b"}}]}"#),
        "invalid configuration at `routes[1].match.paht`: unknown field `paht`, expected one of `path`, `prefix`, `methods` at line 1 column 51"
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
