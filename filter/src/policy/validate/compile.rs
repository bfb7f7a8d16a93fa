//! From the raw `validate` section (merged over the defaults') to a [`Validation`], each schema
//! compiled once.

use serde_json::{Value, json};

use super::media::MediaRange;
use super::params::{Kind, QueryStyle, escape_pointer};
use super::raw::RawValidate;
use super::schema::Schema;
use super::{ParamsSchema, Validation};
use crate::syntax::{ConfigError, OrderedMap};

/// Applies to every validated route unless it says otherwise.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1024 * 1024;

fn params_schema(field: &str, schema: &Value) -> Result<ParamsSchema, ConfigError> {
    params_schema_styled(field, schema, None)
}

/// `styles`: the query's, each naming a declared property; a deep object's kind is its
/// properties'.
fn params_schema_styled(
    field: &str,
    schema: &Value,
    styles: Option<&OrderedMap<QueryStyle>>,
) -> Result<ParamsSchema, ConfigError> {
    if !schema.is_object() {
        return Err(ConfigError::new(
            field,
            "a JSON Schema object (type: object, properties...)",
        ));
    }
    let compiled = Schema::compile(schema).map_err(|reason| ConfigError::new(field, reason))?;
    let mut kinds = Kind::of_properties(schema);
    let styles = styles.map(|s| s.0.clone()).unwrap_or_default();
    for (name, style) in &styles {
        let at = || format!("query_styles.{name}");
        let Some((_, kind)) = kinds.iter_mut().find(|(k, _)| k == name) else {
            return Err(ConfigError::new(at(), "names no property of `query`"));
        };
        match (style, &*kind) {
            (QueryStyle::DeepObject, _) => {
                let property = schema.pointer(&format!("/properties/{}", escape_pointer(name)));
                let properties = property.map(Kind::of_properties).unwrap_or_default();
                if property.and_then(|p| p.get("type")) != Some(&json!("object")) {
                    return Err(ConfigError::new(
                        at(),
                        "`deep_object` is for `type: object`",
                    ));
                }
                *kind = Kind::Object(properties);
            }
            (QueryStyle::Form, _) | (_, Kind::Array(_)) => {}
            _ => {
                return Err(ConfigError::new(
                    at(),
                    "a delimited style is for `type: array`",
                ));
            }
        }
    }
    Ok(ParamsSchema {
        schema: compiled,
        kinds,
        styles,
    })
}

/// `params`: the route template's parameter names (`None` for the defaults section).
pub fn compile(raw: &RawValidate, params: Option<&[&str]>) -> Result<Validation, ConfigError> {
    if params.is_none() {
        refuse_route_fields(raw)?;
    }
    let body = match &raw.body {
        None => None,
        Some(schema) => {
            Some(Schema::compile(schema).map_err(|reason| ConfigError::new("body", reason))?)
        }
    };
    let content_types = content_types(raw)?;
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
    let query = match (&raw.query, &raw.query_styles) {
        (Some(s), styles) => Some(params_schema_styled("query", s, styles.as_ref())?),
        (None, Some(_)) => {
            return Err(ConfigError::new(
                "query_styles",
                "styles name properties of `query`, which is not given",
            ));
        }
        (None, None) => None,
    };
    let headers = raw.headers.as_ref().map(headers_schema).transpose()?;
    let cookies = raw
        .cookies
        .as_ref()
        .map(|s| params_schema("cookies", s))
        .transpose()?;
    let path_params = match (&raw.path_params, params) {
        (Some(map), Some(names)) => Some(path_params_schema(map, names)?),
        (None, _) | (Some(_), None) => None,
    };
    Ok(Validation {
        body,
        body_required: raw.body_required,
        content_types,
        max_body_bytes,
        query,
        headers,
        cookies,
        path_params,
    })
}

/// The defaults section holds size and content-type limits; schemas describe a route.
fn refuse_route_fields(raw: &RawValidate) -> Result<(), ConfigError> {
    for (field, given) in [
        ("body", raw.body.is_some()),
        ("body_required", raw.body_required.is_some()),
        ("query", raw.query.is_some()),
        ("query_styles", raw.query_styles.is_some()),
        ("headers", raw.headers.is_some()),
        ("cookies", raw.cookies.is_some()),
        ("path_params", raw.path_params.is_some()),
    ] {
        if given {
            return Err(ConfigError::new(
                field,
                "only on a route (defaults hold size and content-type limits)",
            ));
        }
    }
    Ok(())
}

fn content_types(raw: &RawValidate) -> Result<Option<Vec<MediaRange>>, ConfigError> {
    let Some(list) = &raw.content_types else {
        return Ok(None);
    };
    if list.is_empty() {
        return Err(ConfigError::new(
            "content_types",
            "an empty list refuses every body; leave it out to allow any",
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, text)| {
            MediaRange::parse(text)
                .map_err(|reason| ConfigError::new(format!("content_types[{i}]"), reason))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// The headers' schema; its names must be lowercase, as requests' header names are matched.
fn headers_schema(schema: &Value) -> Result<ParamsSchema, ConfigError> {
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
    params_schema("headers", schema)
}

/// One object schema of the route template's parameters (`names`), all required, each with
/// the schema given for it.
fn path_params_schema(
    map: &OrderedMap<Value>,
    names: &[&str],
) -> Result<ParamsSchema, ConfigError> {
    let mut properties = serde_json::Map::new();
    // A parameter's schema may carry the components it refers to (an OpenAPI document's);
    // `#/components/...` resolves from the root, so they move there.
    let mut components = serde_json::Map::new();
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
        let mut schema = schema.clone();
        if let Some(Value::Object(carried)) = schema
            .as_object_mut()
            .and_then(|o| o.remove("components"))
            .as_ref()
            .and_then(|c| c.get("schemas"))
        {
            components.extend(carried.clone());
        }
        properties.insert(name.clone(), schema);
    }
    let mut schema = json!({"type": "object", "properties": properties, "required": names});
    if !components.is_empty()
        && let Some(root) = schema.as_object_mut()
    {
        root.insert("components".into(), json!({ "schemas": components }));
    }
    params_schema("path_params", &schema)
}
