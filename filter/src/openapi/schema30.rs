//! An OpenAPI 3.0 Schema Object as the JSON Schema 2020-12 schema that means the same for a
//! request (OAS 3.0.3, "Schema Object" and its `nullable` clarification; the rules, with the
//! sections they come from, are in docs/research/openapi.md §5):
//!
//! - a Reference Object is its `$ref` alone (3.0: "any properties added SHALL be ignored");
//!   one that leaves the document is refused;
//! - `nullable: true` adds `"null"` to an explicit `type`, and does nothing else;
//! - boolean `exclusiveMinimum`/`exclusiveMaximum` (JSON Schema draft Wright-00) become the
//!   numeric bounds of 2020-12;
//! - `type` is one name, never a list, and `file` (a Swagger 2 leftover) is no JSON type:
//!   both refused;
//! - a `readOnly` property is not required in a request (3.0: "the required will take effect
//!   on the response only"), and is let through or refused as [`ReadOnly`] says;
//! - `example`, `xml`, `externalDocs`, `discriminator` and `x-` extensions are annotations and
//!   dropped. Data (`enum`, `default`, `example`) is never rewritten.

use serde_json::{Map, Value};

use crate::syntax::ConfigError;

/// What a request may do with a property its schema marks `readOnly`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadOnly {
    /// Sent or not, it is not checked against being read-only (not required either).
    #[default]
    Ignore,
    /// Sending it is refused.
    Refuse,
}

/// Keywords that only annotate (or extend) a schema: no effect on validation, dropped.
const ANNOTATIONS: &[&str] = &["example", "xml", "externalDocs", "discriminator"];

/// Keywords whose value is one subschema.
const ONE_SCHEMA: &[&str] = &["items", "not", "additionalProperties"];

/// Keywords whose value is a list of subschemas.
const SCHEMA_LISTS: &[&str] = &["allOf", "anyOf", "oneOf"];

/// The 2020-12 schema of `schema` (a 3.0 Schema or Reference Object found at `at`, the
/// config path errors name).
pub fn translate(schema: &Value, at: &str, read_only: ReadOnly) -> Result<Value, ConfigError> {
    match schema {
        Value::Object(object) => translate_object(object, at, read_only).map(Value::Object),
        // 3.0 has no boolean schemas; a document that uses them means what 2020-12 does.
        Value::Bool(_) => Ok(schema.clone()),
        _ => Err(ConfigError::new(at, "a schema must be an object")),
    }
}

fn translate_object(
    object: &Map<String, Value>,
    at: &str,
    read_only: ReadOnly,
) -> Result<Map<String, Value>, ConfigError> {
    if let Some(reference) = object.get("$ref") {
        return reference_alone(reference, at);
    }
    let mut out = Map::new();
    for (keyword, value) in object {
        let inner = format!("{at}.{keyword}");
        let translated = match keyword.as_str() {
            "nullable" | "exclusiveMinimum" | "exclusiveMaximum" | "minimum" | "maximum" => {
                continue; // below, as they act on each other
            }
            k if ANNOTATIONS.contains(&k) || k.starts_with("x-") => continue,
            "type" => one_type(value, &inner)?,
            "properties" => properties(value, &inner, read_only)?,
            k if ONE_SCHEMA.contains(&k) => match value {
                Value::Bool(_) => value.clone(),
                _ => translate(value, &inner, read_only)?,
            },
            k if SCHEMA_LISTS.contains(&k) => schema_list(value, &inner, read_only)?,
            _ => value.clone(),
        };
        out.insert(keyword.clone(), translated);
    }
    nullable(object, &mut out, at)?;
    bound(object, &mut out, at, "minimum", "exclusiveMinimum")?;
    bound(object, &mut out, at, "maximum", "exclusiveMaximum")?;
    required_in_requests(object, &mut out);
    Ok(out)
}

/// A Reference Object: its `$ref` alone, if it stays in the document.
fn reference_alone(reference: &Value, at: &str) -> Result<Map<String, Value>, ConfigError> {
    let Some(target) = reference.as_str() else {
        return Err(ConfigError::new(
            format!("{at}.$ref"),
            "a reference must be a string",
        ));
    };
    if !target.starts_with('#') {
        return Err(ConfigError::new(
            format!("{at}.$ref"),
            format!("`{target}` points outside the document: external references are not followed"),
        ));
    }
    let mut out = Map::new();
    out.insert("$ref".into(), reference.clone());
    Ok(out)
}

/// `type`: one JSON type name.
fn one_type(value: &Value, at: &str) -> Result<Value, ConfigError> {
    match value.as_str() {
        Some("file") => Err(ConfigError::new(
            at,
            "`file` is not a type in OpenAPI 3.0 (a Swagger 2 leftover): use `type: string, format: binary`",
        )),
        Some(name) => Ok(Value::String(name.to_string())),
        None => Err(ConfigError::new(
            at,
            "in OpenAPI 3.0 `type` is one type name, not a list (write `nullable`, or use 3.1)",
        )),
    }
}

/// `properties`: each value a schema.
fn properties(value: &Value, at: &str, read_only: ReadOnly) -> Result<Value, ConfigError> {
    let Value::Object(entries) = value else {
        return Err(ConfigError::new(at, "`properties` must be an object"));
    };
    let mut out = Map::new();
    for (name, schema) in entries {
        let translated = translate(schema, &format!("{at}.{name}"), read_only)?;
        let refused = read_only == ReadOnly::Refuse && is_read_only(schema);
        out.insert(
            name.clone(),
            if refused {
                Value::Bool(false)
            } else {
                translated
            },
        );
    }
    Ok(Value::Object(out))
}

fn schema_list(value: &Value, at: &str, read_only: ReadOnly) -> Result<Value, ConfigError> {
    let Value::Array(list) = value else {
        return Err(ConfigError::new(at, "must be a list of schemas"));
    };
    list.iter()
        .enumerate()
        .map(|(i, schema)| translate(schema, &format!("{at}[{i}]"), read_only))
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

/// `nullable: true` adds `"null"` to an explicit `type`; without one it changes nothing.
fn nullable(
    object: &Map<String, Value>,
    out: &mut Map<String, Value>,
    at: &str,
) -> Result<(), ConfigError> {
    match object.get("nullable") {
        None | Some(Value::Bool(false)) => Ok(()),
        Some(Value::Bool(true)) => {
            if let Some(Value::String(name)) = out.get("type") {
                let types = vec![Value::String(name.clone()), Value::String("null".into())];
                out.insert("type".into(), Value::Array(types));
            }
            Ok(())
        }
        Some(_) => Err(ConfigError::new(
            format!("{at}.nullable"),
            "`nullable` must be true or false",
        )),
    }
}

/// `minimum` with a boolean `exclusiveMinimum` (and the same for maximum): an exclusive bound
/// becomes 2020-12's numeric `exclusiveMinimum`.
fn bound(
    object: &Map<String, Value>,
    out: &mut Map<String, Value>,
    at: &str,
    inclusive: &str,
    exclusive: &str,
) -> Result<(), ConfigError> {
    let limit = object.get(inclusive);
    if let Some(limit) = limit
        && !limit.is_number()
    {
        return Err(ConfigError::new(
            format!("{at}.{inclusive}"),
            "must be a number",
        ));
    }
    let is_exclusive = match object.get(exclusive) {
        None | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) => true,
        Some(_) => {
            return Err(ConfigError::new(
                format!("{at}.{exclusive}"),
                format!(
                    "in OpenAPI 3.0 `{exclusive}` is true or false, and makes `{inclusive}` exclusive"
                ),
            ));
        }
    };
    if let Some(limit) = limit {
        let keyword = if is_exclusive { exclusive } else { inclusive };
        out.insert(keyword.to_string(), limit.clone());
    }
    Ok(())
}

/// `required` less the properties marked `readOnly` (required in responses only).
fn required_in_requests(object: &Map<String, Value>, out: &mut Map<String, Value>) {
    let (Some(Value::Array(required)), Some(Value::Object(properties))) =
        (object.get("required"), object.get("properties"))
    else {
        return;
    };
    let kept: Vec<Value> = required
        .iter()
        .filter(|name| {
            name.as_str()
                .and_then(|name| properties.get(name))
                .is_none_or(|schema| !is_read_only(schema))
        })
        .cloned()
        .collect();
    out.insert("required".into(), Value::Array(kept));
}

/// Whether a property's own schema says `readOnly: true` (one behind a `$ref` is not
/// looked up: it stays as required as the document says).
fn is_read_only(schema: &Value) -> bool {
    schema.get("readOnly") == Some(&Value::Bool(true)) && schema.get("$ref").is_none()
}

#[cfg(test)]
mod tests;
