//! From the raw `validate` section (merged over the defaults') to a [`Validation`], each schema
//! compiled once.

use serde_json::{Value, json};

use super::media::MediaRange;
use super::params::Kind;
use super::raw::RawValidate;
use super::schema::Schema;
use super::{ParamsSchema, Validation};
use crate::syntax::ConfigError;

/// Applies to every validated route unless it says otherwise.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1024 * 1024;

fn params_schema(field: &str, schema: &Value) -> Result<ParamsSchema, ConfigError> {
    if !schema.is_object() {
        return Err(ConfigError::new(
            field,
            "a JSON Schema object (type: object, properties...)",
        ));
    }
    let compiled = Schema::compile(schema).map_err(|reason| ConfigError::new(field, reason))?;
    Ok(ParamsSchema {
        schema: compiled,
        kinds: Kind::of_properties(schema),
    })
}

/// `params`: the route template's parameter names (`None` for the defaults section).
pub fn compile(raw: &RawValidate, params: Option<&[&str]>) -> Result<Validation, ConfigError> {
    let in_defaults = params.is_none();
    if in_defaults {
        for (field, given) in [
            ("body", raw.body.is_some()),
            ("query", raw.query.is_some()),
            ("headers", raw.headers.is_some()),
            ("path_params", raw.path_params.is_some()),
        ] {
            if given {
                return Err(ConfigError::new(
                    field,
                    "only on a route (defaults hold size and content-type limits)",
                ));
            }
        }
    }
    let body = match &raw.body {
        None => None,
        Some(schema) => {
            Some(Schema::compile(schema).map_err(|reason| ConfigError::new("body", reason))?)
        }
    };
    let content_types = match &raw.content_types {
        None => None,
        Some(list) if list.is_empty() => {
            return Err(ConfigError::new(
                "content_types",
                "an empty list refuses every body; leave it out to allow any",
            ));
        }
        Some(list) => Some(
            list.iter()
                .enumerate()
                .map(|(i, text)| {
                    MediaRange::parse(text)
                        .map_err(|reason| ConfigError::new(format!("content_types[{i}]"), reason))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let max_body_bytes = match raw.max_body_bytes {
        Some(0) => {
            return Err(ConfigError::new(
                "max_body_bytes",
                "0 refuses every body; use 1 or more",
            ));
        }
        Some(n) => n,
        None => DEFAULT_MAX_BODY_BYTES,
    };
    let query = raw
        .query
        .as_ref()
        .map(|s| params_schema("query", s))
        .transpose()?;
    let headers = match &raw.headers {
        None => None,
        Some(schema) => {
            let names = schema
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(k, _)| k.as_str());
            let required = schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str);
            if let Some(name) = names
                .chain(required)
                .find(|n| n.bytes().any(|b| b.is_ascii_uppercase()))
            {
                return Err(ConfigError::new(
                    "headers",
                    format!("`{name}`: header names are matched lowercase; write them lowercase"),
                ));
            }
            Some(params_schema("headers", schema)?)
        }
    };
    let path_params = match (&raw.path_params, params) {
        (None, _) => None,
        (Some(_), None) => None,
        (Some(map), Some(names)) => {
            let mut properties = serde_json::Map::new();
            for (name, schema) in &map.0 {
                if !names.contains(&name.as_str()) {
                    return Err(ConfigError::new(
                        format!("path_params.{name}"),
                        format!(
                            "the route's path has no `{{{name}}}` segment (it has: {})",
                            names.join(", ")
                        ),
                    ));
                }
                properties.insert(name.clone(), schema.clone());
            }
            let schema = json!({"type": "object", "properties": properties, "required": names});
            Some(params_schema("path_params", &schema)?)
        }
    };
    Ok(Validation {
        body,
        content_types,
        max_body_bytes,
        query,
        headers,
        path_params,
    })
}
