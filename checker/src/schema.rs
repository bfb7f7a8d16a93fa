//! The configuration's JSON Schema (draft-07, the draft editors' YAML language server
//! implements; draft 2020-12 it does not fully): its shape generated from the filter's own
//! config types (`hardening::config::RawConfig`, the types serde reads, so the two cannot
//! drift), its descriptions and defaults from the field tables of docs/config.md.

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::docs::{self, Table};

/// The reference the descriptions come from, as built into the binary.
pub const CONFIG_DOCS: &str = include_str!("../../docs/config.md");

/// Which schema definition each field table of docs/config.md describes: the definition
/// (`""`: the top level), the heading the table is under, and which of that heading's field
/// tables it is.
pub const DOCUMENTED: &[(&str, &str, usize)] = &[
    ("", "Top level", 0),
    ("RawPolicies", "Policies", 0),
    ("RawRoute", "Route", 0),
    ("RawMatch", "Match", 0),
    ("RawSecurityHeaders", "Security headers", 0),
    ("RawCors", "CORS", 0),
    ("RawLimit", "Rate limits", 0),
    ("RawService", "Global limits (every replica)", 0),
    ("RawClientAddress", "The client's address", 0),
    ("RawValidate", "Request validation", 0),
    ("RawOpenApi", "Validation from an OpenAPI document", 0),
    ("RawHttpsRedirect", "HTTPS redirect", 0),
    ("RawErrors", "Upstream errors", 0),
    ("RawHealth", "Health endpoint", 0),
    ("RawCheck", "Health endpoint", 1),
    ("RawLogging", "Logging", 0),
];

/// Where draft-07 keeps the named schemas (`$ref: #/definitions/RawCors`).
const DEFINITIONS: &str = "definitions";

/// The schema, as `dist/hardening.schema.json` publishes it.
pub fn generate() -> Value {
    let generator = SchemaSettings::draft07().into_generator();
    let mut schema = generator
        .into_root_schema_for::<hardening::config::RawConfig>()
        .to_value();
    if let Some(root) = schema.as_object_mut() {
        root.insert(
            "title".into(),
            json!("Configuration of the hardening Envoy filter"),
        );
        root.insert(
            "description".into(),
            json!(format!(
                "The `configuration` of the hardening filter {} (Wasm or dynamic module): docs/config.md. \
                 A free-text string may read a secret, `${{NAME}}` or `${{NAME:-default}}` (the \
                 filter reads the variable first; this schema checks the text as written).",
                env!("CARGO_PKG_VERSION")
            )),
        );
    }
    describe(&mut schema, &docs::field_tables(CONFIG_DOCS));
    schema
}

/// Gives each documented property its row's description and default (where the default is a
/// value the property takes).
fn describe(schema: &mut Value, tables: &[Table]) {
    let definitions = schema.get(DEFINITIONS).cloned().unwrap_or(Value::Null);
    for (definition, heading, index) in DOCUMENTED {
        let Some(table) = tables.iter().filter(|t| t.heading == *heading).nth(*index) else {
            continue;
        };
        let Some(properties) = properties_mut(schema, definition) else {
            continue;
        };
        for row in &table.rows {
            for field in &row.fields {
                if let Some(Value::Object(property)) = properties.get_mut(field) {
                    annotate(property, row, &definitions);
                }
            }
        }
    }
}

fn annotate(property: &mut Map<String, Value>, row: &docs::Row, definitions: &Value) {
    let mut description = sentence(&row.description);
    if let Some(default) = &row.default {
        match default.as_str() {
            "required" => description.push_str(" Required."),
            "none" | "" => {}
            _ => description.push_str(&format!(" Default: {default}.")),
        }
        if let Some(value) = default_value(default).filter(|v| takes(property, definitions, v)) {
            property.insert("default".into(), value);
        }
    }
    property.insert("description".into(), Value::String(description));
}

/// A table cell as a sentence: capitalised, ending with a full stop.
fn sentence(cell: &str) -> String {
    let mut chars = cell.chars();
    let mut text: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    };
    if !text.ends_with('.') {
        text.push('.');
    }
    text
}

/// Whether `value` is valid for the property (whose `$ref`s point into the definitions).
fn takes(property: &Map<String, Value>, definitions: &Value, value: &Value) -> bool {
    let mut schema = property.clone();
    schema.insert(DEFINITIONS.into(), definitions.clone());
    jsonschema::validator_for(&Value::Object(schema)).is_ok_and(|v| v.is_valid(value))
}

/// The default cell as a JSON value when it is one: a code span or a number, alone or before
/// a parenthesis (`` `loose` ``, `1048576 (1 MiB)`, `` `[]` ``).
fn default_value(cell: &str) -> Option<Value> {
    let head = cell.split(" (").next().unwrap_or(cell).trim();
    let text = match head.strip_prefix('`').and_then(|h| h.strip_suffix('`')) {
        Some(code) if !code.contains('`') => code,
        Some(_) => return None,
        None if head.parse::<f64>().is_ok() => head,
        None => return None,
    };
    serde_json::from_str(text)
        .ok()
        .or_else(|| Some(Value::String(text.to_string())))
}

/// The `properties` of a definition (`""`: the root).
pub fn properties_mut<'s>(
    schema: &'s mut Value,
    definition: &str,
) -> Option<&'s mut Map<String, Value>> {
    let node = if definition.is_empty() {
        schema
    } else {
        schema.get_mut(DEFINITIONS)?.get_mut(definition)?
    };
    node.get_mut("properties")?.as_object_mut()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_read_from_cells() {
        assert_eq!(default_value("`loose`"), Some(json!("loose")));
        assert_eq!(default_value("1048576 (1 MiB)"), Some(json!(1048576)));
        assert_eq!(default_value("`[]`"), Some(json!([])));
        assert_eq!(default_value("`32`, `56`"), None);
        assert_eq!(default_value("off"), None);
        assert_eq!(default_value("`true` (`nosniff`)"), Some(json!(true)));
    }
}
