//! Each 3.0 keyword that differs from 2020-12, translated and then used: the instances the 3.0
//! specification accepts pass the translated schema, the others fail.

use serde_json::{Value, json};

use super::{ReadOnly, translate};

fn schema(openapi_30: Value) -> Value {
    translate(
        &openapi_30,
        "openapi.components.schemas.S",
        ReadOnly::Ignore,
    )
    .unwrap_or_else(|e| panic!("translates: {e}"))
}

/// Whether `instance` passes the translated schema (JSON Schema 2020-12).
fn passes(openapi_30: Value, instance: Value) -> bool {
    let translated = schema(openapi_30);
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&translated)
        .unwrap_or_else(|e| panic!("{translated} compiles: {e}"))
        .is_valid(&instance)
}

/// The refusal's field path and reason.
fn refused(openapi_30: Value) -> (String, String) {
    match translate(
        &openapi_30,
        "openapi.components.schemas.S",
        ReadOnly::Ignore,
    ) {
        Ok(translated) => panic!("refused, not {translated}"),
        Err(e) => (e.path, e.reason),
    }
}

#[test]
fn nullable_adds_null_to_an_explicit_type() {
    let nullable_string = json!({"type": "string", "nullable": true});
    assert!(passes(nullable_string.clone(), json!(null)));
    assert!(passes(nullable_string.clone(), json!("a")));
    assert!(!passes(nullable_string, json!(1)));
    assert!(!passes(json!({"type": "string"}), json!(null)));
    assert!(!passes(
        json!({"type": "string", "nullable": false}),
        json!(null)
    ));
    assert_eq!(
        schema(json!({"type": "integer", "nullable": true})),
        json!({"type": ["integer", "null"]})
    );
}

#[test]
fn nullable_without_a_type_changes_nothing_and_other_constraints_still_hold() {
    assert_eq!(schema(json!({"nullable": true})), json!({}));
    // "Other Schema Object constraints retain their defined behavior": an enum without null
    // still refuses null.
    let enumerated = json!({"type": "string", "nullable": true, "enum": ["a", "b"]});
    assert!(!passes(enumerated.clone(), json!(null)));
    assert!(passes(enumerated, json!("a")));
    assert_eq!(
        refused(json!({"type": "string", "nullable": "yes"})).0,
        "openapi.components.schemas.S.nullable"
    );
}

#[test]
fn boolean_exclusive_bounds_make_the_bound_exclusive() {
    let above_zero = json!({"type": "number", "minimum": 0, "exclusiveMinimum": true});
    assert!(!passes(above_zero.clone(), json!(0)));
    assert!(passes(above_zero.clone(), json!(0.5)));
    assert_eq!(
        schema(above_zero),
        json!({"type": "number", "exclusiveMinimum": 0})
    );
    let below_ten = json!({"type": "number", "maximum": 10, "exclusiveMaximum": true});
    assert!(!passes(below_ten.clone(), json!(10)));
    assert!(passes(below_ten, json!(9.9)));
    let inclusive =
        json!({"type": "number", "minimum": 0, "exclusiveMinimum": false, "maximum": 10});
    assert!(passes(inclusive.clone(), json!(0)));
    assert!(passes(inclusive.clone(), json!(10)));
    assert!(!passes(inclusive, json!(10.5)));
    // Without its bound an exclusive flag constrains nothing.
    assert_eq!(schema(json!({"exclusiveMaximum": true})), json!({}));
}

#[test]
fn numeric_exclusive_bounds_are_not_openapi_3_0() {
    let (path, reason) = refused(json!({"type": "number", "exclusiveMinimum": 5}));
    assert_eq!(path, "openapi.components.schemas.S.exclusiveMinimum");
    assert!(reason.contains("true or false"), "{reason}");
    assert_eq!(
        refused(json!({"minimum": "0"})).0,
        "openapi.components.schemas.S.minimum"
    );
}

#[test]
fn a_type_is_one_name() {
    let (path, reason) = refused(json!({"type": ["string", "null"]}));
    assert_eq!(path, "openapi.components.schemas.S.type");
    assert!(reason.contains("not a list"), "{reason}");
    assert!(
        refused(json!({"type": "file"}))
            .1
            .contains("format: binary")
    );
}

#[test]
fn a_reference_is_its_ref_alone_and_stays_in_the_document() {
    // "any properties added SHALL be ignored": the sibling `type` does not apply.
    assert_eq!(
        schema(json!({"$ref": "#/components/schemas/User", "type": "string", "nullable": true})),
        json!({"$ref": "#/components/schemas/User"})
    );
    let (path, reason) = refused(json!({"properties": {"a": {"$ref": "other.yaml#/User"}}}));
    assert_eq!(path, "openapi.components.schemas.S.properties.a.$ref");
    assert!(reason.contains("other.yaml#/User"), "{reason}");
}

#[test]
fn subschemas_are_translated_where_schemas_are_and_data_is_left_alone() {
    let translated = schema(json!({
        "type": "object",
        "properties": {"age": {"type": "integer", "nullable": true}},
        "additionalProperties": {"type": "number", "minimum": 1, "exclusiveMinimum": true},
        "items": {"type": "string", "nullable": true},
        "allOf": [{"type": "object", "nullable": true}],
        "not": {"type": "boolean", "nullable": true},
        "enum": [{"nullable": true}],
        "default": {"exclusiveMinimum": true},
    }));
    assert_eq!(
        translated["properties"]["age"]["type"],
        json!(["integer", "null"])
    );
    assert_eq!(
        translated["additionalProperties"],
        json!({"type": "number", "exclusiveMinimum": 1})
    );
    assert_eq!(translated["items"]["type"], json!(["string", "null"]));
    assert_eq!(translated["allOf"][0]["type"], json!(["object", "null"]));
    assert_eq!(translated["not"]["type"], json!(["boolean", "null"]));
    assert_eq!(translated["enum"], json!([{"nullable": true}]));
    assert_eq!(translated["default"], json!({"exclusiveMinimum": true}));
    assert_eq!(
        refused(json!({"oneOf": [{"type": "string"}, {"type": ["a"]}]})).0,
        "openapi.components.schemas.S.oneOf[1].type"
    );
}

#[test]
fn annotations_are_dropped() {
    assert_eq!(
        schema(json!({
            "type": "object",
            "example": {"a": 1},
            "xml": {"name": "pet"},
            "externalDocs": {"url": "https://example.com"},
            "discriminator": {"propertyName": "kind"},
            "x-internal": true,
            "description": "kept: 2020-12 has it",
        })),
        json!({"type": "object", "description": "kept: 2020-12 has it"})
    );
}

#[test]
fn read_only_properties_are_not_required_in_requests() {
    let user = json!({
        "type": "object",
        "required": ["id", "name"],
        "properties": {"id": {"type": "integer", "readOnly": true}, "name": {"type": "string"}},
    });
    assert!(passes(user.clone(), json!({"name": "Ada"})));
    assert!(passes(user.clone(), json!({"id": 1, "name": "Ada"})));
    assert!(!passes(user.clone(), json!({"id": 1})));
    let refusing = translate(&user, "s", ReadOnly::Refuse).unwrap_or_else(|e| panic!("{e}"));
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&refusing)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(validator.is_valid(&json!({"name": "Ada"})));
    assert!(!validator.is_valid(&json!({"id": 1, "name": "Ada"})));
}
