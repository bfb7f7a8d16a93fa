//! The document's schemas as the JSON Schemas the filter compiles: each translated once (3.0
//! through `schema30`; 3.1 is 2020-12 already), `format` left as an annotation unless asked
//! for, `readOnly` properties handled for requests; and every schema the filter compiles made
//! whole, by carrying the component schemas it reaches under its own
//! `components.schemas`, where its `#/components/schemas/...` references find them.

use serde_json::{Map, Value};

use super::document::{AT, Version};
use super::schema30::{self, ReadOnly};
use crate::syntax::ConfigError;

/// Where schema references point.
const COMPONENTS: &str = "#/components/schemas/";

/// Keywords whose value is one subschema (2020-12 and 3.0).
const ONE: &[&str] = &[
    "items",
    "not",
    "additionalProperties",
    "contains",
    "propertyNames",
    "if",
    "then",
    "else",
    "unevaluatedItems",
    "unevaluatedProperties",
];
/// Keywords whose value is a list of subschemas.
const LISTS: &[&str] = &["allOf", "anyOf", "oneOf", "prefixItems"];
/// Keywords whose value maps names to subschemas.
const MAPS: &[&str] = &[
    "properties",
    "patternProperties",
    "$defs",
    "dependentSchemas",
];

/// The component schemas, translated, and how schemas are prepared.
#[derive(Debug)]
pub struct Schemas {
    version: Version,
    read_only: ReadOnly,
    formats: bool,
    components: Map<String, Value>,
}

impl Schemas {
    /// Translates `components.schemas` once. `formats`: `format` is checked (else dropped, an
    /// annotation as OpenAPI 3.1's base dialect has it).
    pub fn new(
        document: &Value,
        version: Version,
        read_only: ReadOnly,
        formats: bool,
    ) -> Result<Self, ConfigError> {
        let mut schemas = Self {
            version,
            read_only,
            formats,
            components: Map::new(),
        };
        let Some(found) = document.pointer("/components/schemas") else {
            return Ok(schemas);
        };
        let Value::Object(found) = found else {
            return Err(ConfigError::new(
                format!("{AT}.components.schemas"),
                "must be an object of schemas",
            ));
        };
        for (name, schema) in found {
            let at = format!("{AT}.components.schemas.{name}");
            let prepared = schemas.prepare(schema, &at)?;
            schemas.components.insert(name.clone(), prepared);
        }
        Ok(schemas)
    }

    /// One schema of the document (found at `at`) as 2020-12 for a request.
    pub fn prepare(&self, schema: &Value, at: &str) -> Result<Value, ConfigError> {
        let mut schema = match self.version {
            Version::V30 => schema30::translate(schema, at, self.read_only)?,
            Version::V31 => schema.clone(),
        };
        self.walk(&mut schema);
        Ok(schema)
    }

    /// `schema` with the `$ref` at its top (and at its `items`' and `allOf` members') replaced
    /// by what it names, so that the type of a parameter can be read off it. Keywords next to
    /// a `$ref` (3.1 gives them meaning) are kept, under `allOf`.
    pub fn inline_top(&self, schema: &Value) -> Value {
        self.inline_at(schema, 0)
    }

    fn inline_at(&self, schema: &Value, depth: usize) -> Value {
        /// Deeper than this, schemas stay as they are (a recursive `items` is legal).
        const MAX_DEPTH: usize = 8;
        if depth >= MAX_DEPTH {
            return schema.clone();
        }
        let mut current = match self.follow(schema) {
            Some(target) => with_siblings(target.clone(), schema),
            None => schema.clone(),
        };
        let Value::Object(object) = &mut current else {
            return current;
        };
        if let Some(items) = object.get("items").map(|i| self.inline_at(i, depth + 1)) {
            object.insert("items".into(), items);
        }
        if let Some(Value::Array(members)) = object.get("allOf") {
            let inlined = members
                .iter()
                .map(|m| self.inline_at(m, depth + 1))
                .collect();
            object.insert("allOf".into(), Value::Array(inlined));
        }
        current
    }

    /// What a `$ref` chain at the top of `schema` ends at, if it names a component.
    fn follow(&self, schema: &Value) -> Option<&Value> {
        let mut target = None;
        let mut current = schema;
        for _ in 0..8 {
            let Some(found) = current
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| self.component(r))
            else {
                break;
            };
            target = Some(found);
            current = found;
        }
        target
    }

    fn component(&self, reference: &str) -> Option<&Value> {
        let name = reference.strip_prefix(COMPONENTS)?;
        let name = unescape(name.split('/').next().unwrap_or(name));
        let rest = reference.strip_prefix(COMPONENTS)?.split_once('/');
        match rest {
            None => self.components.get(&name),
            Some(_) => None,
        }
    }

    /// `schema` made whole: the component schemas it reaches, carried under its own
    /// `components.schemas` (inside an `allOf` when it is not an object).
    pub fn whole(&self, schema: Value) -> Value {
        let reached = self.reached(&schema);
        if reached.is_empty() {
            return schema;
        }
        let mut carried = Map::new();
        for name in reached {
            if let Some(found) = self.components.get(&name) {
                carried.insert(name, found.clone());
            }
        }
        let mut components = Map::new();
        components.insert("schemas".into(), Value::Object(carried));
        let mut root = match schema {
            Value::Object(object) if !object.contains_key("components") => object,
            other => {
                let mut wrapper = Map::new();
                wrapper.insert("allOf".into(), Value::Array(vec![other]));
                wrapper
            }
        };
        root.insert("components".into(), Value::Object(components));
        Value::Object(root)
    }

    /// The names of the component schemas `schema` reaches, directly or through others.
    fn reached(&self, schema: &Value) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let mut pending = vec![schema];
        while let Some(value) = pending.pop() {
            let mut found = Vec::new();
            references(value, &mut found);
            for name in found {
                if names.contains(&name) {
                    continue;
                }
                if let Some(target) = self.components.get(&name) {
                    pending.push(target);
                    names.push(name);
                }
            }
        }
        names
    }

    /// `format` dropped unless checked; in 3.1, `readOnly` properties left out of `required`
    /// (or refused), as `schema30` does for 3.0.
    fn walk(&self, schema: &mut Value) {
        let Value::Object(object) = schema else {
            return;
        };
        if !self.formats {
            object.remove("format");
        }
        if self.version == Version::V31 {
            read_only_31(object, self.read_only);
        }
        for (keyword, value) in object.iter_mut() {
            let keyword = keyword.as_str();
            if ONE.contains(&keyword) {
                self.walk(value);
            } else if LISTS.contains(&keyword) {
                if let Value::Array(list) = value {
                    list.iter_mut().for_each(|s| self.walk(s));
                }
            } else if MAPS.contains(&keyword)
                && let Value::Object(map) = value
            {
                map.values_mut().for_each(|s| self.walk(s));
            }
        }
    }
}

/// `target` (what a `$ref` names) with the keywords written next to the `$ref`, which also
/// apply, added as an `allOf` member.
fn with_siblings(target: Value, reference: &Value) -> Value {
    let Some(siblings) = reference.as_object().map(|o| {
        o.iter()
            .filter(|(k, _)| k.as_str() != "$ref")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Map<String, Value>>()
    }) else {
        return target;
    };
    if siblings.is_empty() {
        return target;
    }
    match target {
        Value::Object(mut object) => {
            let mut members = match object.remove("allOf") {
                Some(Value::Array(members)) => members,
                _ => Vec::new(),
            };
            members.push(Value::Object(siblings));
            object.insert("allOf".into(), Value::Array(members));
            Value::Object(object)
        }
        other => {
            let mut wrapper = Map::new();
            wrapper.insert(
                "allOf".into(),
                Value::Array(vec![other, Value::Object(siblings)]),
            );
            Value::Object(wrapper)
        }
    }
}

/// A request need not send a `readOnly` property, and may not when `Refuse`.
fn read_only_31(object: &mut Map<String, Value>, read_only: ReadOnly) {
    let Some(Value::Object(properties)) = object.get_mut("properties") else {
        return;
    };
    let marked: Vec<String> = properties
        .iter()
        .filter(|(_, s)| s.get("readOnly") == Some(&Value::Bool(true)))
        .map(|(name, _)| name.clone())
        .collect();
    if marked.is_empty() {
        return;
    }
    if read_only == ReadOnly::Refuse {
        for name in &marked {
            properties.insert(name.clone(), Value::Bool(false));
        }
    }
    if let Some(Value::Array(required)) = object.get_mut("required") {
        required.retain(|n| n.as_str().is_none_or(|n| !marked.iter().any(|m| m == n)));
    }
}

/// The component names of the `#/components/schemas/...` references anywhere in `value`.
fn references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            if let Some(name) = object
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix(COMPONENTS))
            {
                out.push(unescape(name.split('/').next().unwrap_or(name)));
            }
            object.values().for_each(|v| references(v, out));
        }
        Value::Array(list) => list.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

/// A reference token as the name it stands for (URI fragment decoding, then JSON Pointer's).
fn unescape(token: &str) -> String {
    let decoded = percent_encoding::percent_decode_str(token).decode_utf8_lossy();
    decoded.replace("~1", "/").replace("~0", "~")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schemas(document: &Value, version: Version) -> Schemas {
        Schemas::new(document, version, ReadOnly::Ignore, false).expect("translates")
    }

    #[test]
    fn a_schema_carries_the_components_it_reaches() {
        let doc = json!({"components": {"schemas": {
            "Pet": {"type": "object", "properties": {"tag": {"$ref": "#/components/schemas/Tag"}}},
            "Tag": {"type": "string", "nullable": true, "format": "uuid"},
            "Node": {"type": "object", "properties": {"next": {"$ref": "#/components/schemas/Node"}}},
            "Unused": {"type": "integer"}
        }}});
        let s = schemas(&doc, Version::V30);
        let whole =
            s.whole(json!({"type": "array", "items": {"$ref": "#/components/schemas/Pet"}}));
        assert_eq!(
            whole,
            json!({"type": "array", "items": {"$ref": "#/components/schemas/Pet"}, "components": {"schemas": {
                "Pet": {"type": "object", "properties": {"tag": {"$ref": "#/components/schemas/Tag"}}},
                "Tag": {"type": ["string", "null"]}
            }}})
        );
        // A cycle is carried once.
        let node = s.whole(json!({"$ref": "#/components/schemas/Node"}));
        assert_eq!(
            node["components"]["schemas"].as_object().map(Map::len),
            Some(1)
        );
        // A boolean schema is wrapped.
        assert_eq!(s.whole(json!(true)), json!(true));
        assert_eq!(
            s.inline_top(&json!({"$ref": "#/components/schemas/Tag"})),
            json!({"type": ["string", "null"]})
        );
    }

    #[test]
    fn read_only_properties_are_not_required_in_3_1() {
        let doc = json!({"components": {"schemas": {"Pet": {
            "type": "object", "required": ["id", "name"],
            "properties": {"id": {"type": "integer", "readOnly": true}, "name": {"type": "string", "format": "email"}}
        }}}});
        let ignore = schemas(&doc, Version::V31);
        assert_eq!(
            ignore.components["Pet"],
            json!({"type": "object", "required": ["name"], "properties": {"id": {"type": "integer", "readOnly": true}, "name": {"type": "string"}}})
        );
        let refuse = Schemas::new(&doc, Version::V31, ReadOnly::Refuse, true).expect("translates");
        assert_eq!(
            refuse.components["Pet"],
            json!({"type": "object", "required": ["name"], "properties": {"id": false, "name": {"type": "string", "format": "email"}}})
        );
    }
}
