//! A JSON body against compiled schemas (the demo's `create_user`, and one with `$ref`s,
//! combinators, formats, patterns and conditionals): never a panic; the body's verdict is the
//! schema's (`on_body` passes exactly the bodies that parse strictly and are valid); a
//! schema's quick check agrees with its error list; refusals are 400 problem+json with at most
//! `MAX_ERRORS` errors, each with a JSON Pointer, a keyword and a message that never quotes the
//! body's string values.

#![no_main]

use std::sync::LazyLock;

use hardening::config::Config;
use hardening::policy::validate::{MAX_ERRORS, Schema, Validation};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

fn schemas() -> Vec<Value> {
    vec![
        json!({
            "type": "object",
            "properties": {
                "email": {"type": "string", "format": "email"},
                "password": {"type": "string", "minLength": 8, "maxLength": 128},
                "name": {"type": "string", "minLength": 1, "maxLength": 100}
            },
            "required": ["email", "password", "name"],
            "additionalProperties": false
        }),
        json!({
            "$defs": {
                "tag": {"type": "string", "pattern": "^[a-z][a-z0-9-]{0,15}$"},
                "item": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer", "minimum": 1, "maximum": 1000000},
                        "price": {"type": "number", "exclusiveMinimum": 0, "multipleOf": 0.01},
                        "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}, "uniqueItems": true, "maxItems": 5},
                        "kind": {"enum": ["book", "film", null]},
                        "child": {"$ref": "#/$defs/item"}
                    },
                    "required": ["id"],
                    "dependentRequired": {"price": ["kind"]},
                    "if": {"properties": {"kind": {"const": "film"}}},
                    "then": {"required": ["minutes"], "properties": {"minutes": {"type": "integer"}}}
                }
            },
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": {"$ref": "#/$defs/item"}, "minItems": 1},
                "at": {"type": "string", "format": "date-time"},
                "site": {"type": "string", "format": "uri"},
                "ip": {"oneOf": [{"format": "ipv4"}, {"format": "ipv6"}], "type": "string"},
                "uuid": {"type": "string", "format": "uuid"},
                "host": {"type": "string", "format": "hostname"},
                "note": {"anyOf": [{"type": "string", "maxLength": 20}, {"type": "null"}]},
                "meta": {"type": "object", "propertyNames": {"pattern": "^x-"}, "maxProperties": 4},
                "not_zero": {"not": {"const": 0}}
            },
            "patternProperties": {"^ext_": {"type": "boolean"}},
            "unevaluatedProperties": false
        }),
    ]
}

static CHECKS: LazyLock<Vec<(Schema, &'static Validation)>> = LazyLock::new(|| {
    let schemas = schemas();
    let routes: Vec<Value> = schemas
        .iter()
        .enumerate()
        .map(|(i, schema)| {
            json!({"match": {"path": format!("/{i}"), "methods": ["POST"]},
                   "validate": {"body": schema, "max_body_bytes": 100000}})
        })
        .collect();
    let config = json!({ "routes": routes }).to_string();
    let config: &'static Config = Box::leak(Box::new(
        Config::from_bytes(config.as_bytes()).expect("compiles"),
    ));
    schemas
        .iter()
        .zip(config.routes.iter())
        .map(|(schema, route)| {
            let schema = Schema::compile(schema).expect("compiles");
            let validation = route.policies.validate.as_ref().expect("validates");
            (schema, validation)
        })
        .collect()
});

/// Every string value in the body (for the check that messages never quote them), and every
/// key (messages may name those).
fn strings(value: &Value, values: &mut Vec<String>, keys: &mut Vec<String>) {
    match value {
        Value::String(s) => values.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, values, keys)),
        Value::Object(map) => {
            keys.extend(map.keys().cloned());
            map.values().for_each(|v| strings(v, values, keys));
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let value = serde_json::from_slice::<Value>(data).ok();
    for (schema, validation) in CHECKS.iter() {
        let outcome = validation.on_body(data, true, None);
        let Some(value) = &value else {
            assert!(outcome.is_err(), "accepted a body serde_json refuses");
            continue;
        };
        let violations = schema.violations(value, "");
        assert_eq!(
            schema.is_valid(value),
            violations.is_empty(),
            "is_valid and the error list disagree: {violations:?}"
        );
        assert!(violations.len() <= MAX_ERRORS);
        match outcome {
            Ok(()) => assert!(violations.is_empty(), "passed, but {violations:?}"),
            Err(refusal) => {
                hardening_fuzz::assert_own_response(&refusal.response);
                assert_eq!(refusal.response.status, 400);
                let body: Value = serde_json::from_slice(&refusal.response.body).expect("JSON");
                let code = body["code"].as_str().unwrap_or_default();
                if code == "malformed_body" {
                    // Only a duplicate key makes the strict parser refuse what serde_json reads.
                    continue;
                }
                assert_eq!(code, "invalid_body", "{body}");
                assert!(!violations.is_empty(), "refused, but valid: {body}");
                let errors = body["errors"].as_array().expect("errors");
                assert_eq!(errors.len(), violations.len());
                let (mut quoted, mut keys) = (Vec::new(), Vec::new());
                strings(value, &mut quoted, &mut keys);
                quoted.retain(|s| !keys.iter().any(|k| k.contains(s.as_str())));
                for error in errors {
                    let pointer = error["pointer"].as_str().expect("pointer");
                    assert!(pointer.is_empty() || pointer.starts_with('/'), "{pointer}");
                    assert!(error["keyword"].is_string());
                    let message = error["message"].as_str().expect("message");
                    assert!(message.chars().count() <= 201, "{message}");
                    // The seeds' string values carry the marker, so mutations keep some.
                    for text in quoted.iter().filter(|s| s.contains(hardening_fuzz::MARKER)) {
                        assert!(
                            !message.contains(text.as_str()),
                            "{message} quotes {text:?}"
                        );
                    }
                }
            }
        }
    }
});
