//! Query parameters, headers and path parameters turned into a JSON object for their schema:
//! values are text on the wire, so they are coerced to what the schema's `type` says
//! (integers, numbers, booleans), and a repeated query key becomes an array where the schema
//! says array.

use serde_json::{Map, Number, Value};

use super::schema::Violation;

/// What a property's schema wants, as far as coercion goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Text,
    Integer,
    Number,
    Boolean,
    Array(Box<Kind>),
}

impl Kind {
    /// From a property schema's `type` (the first one that is not `null`).
    pub fn of(schema: &Value) -> Kind {
        let ty = match schema.get("type") {
            Some(Value::String(t)) => Some(t.as_str()),
            Some(Value::Array(types)) => types
                .iter()
                .filter_map(Value::as_str)
                .find(|t| *t != "null"),
            _ => None,
        };
        match ty {
            Some("integer") => Kind::Integer,
            Some("number") => Kind::Number,
            Some("boolean") => Kind::Boolean,
            Some("array") => {
                Kind::Array(Box::new(schema.get("items").map_or(Kind::Text, Kind::of)))
            }
            _ => Kind::Text,
        }
    }

    /// The kinds of an object schema's `properties`.
    pub fn of_properties(schema: &Value) -> Vec<(String, Kind)> {
        schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|props| {
                props
                    .iter()
                    .map(|(k, v)| (k.clone(), Kind::of(v)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The value, coerced when it reads as what the schema wants; otherwise left as text, for
    /// the schema to report.
    pub fn coerce(&self, text: &str) -> Value {
        match self {
            Kind::Integer => text
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| text.into()),
            Kind::Number => text
                .parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .filter(|_| !text.trim().is_empty())
                .map_or_else(|| text.into(), Value::Number),
            Kind::Boolean => match text {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                other => other.into(),
            },
            Kind::Array(item) => Value::Array(vec![item.coerce(text)]),
            Kind::Text => text.into(),
        }
    }
}

fn kind<'k>(kinds: &'k [(String, Kind)], name: &str) -> Option<&'k Kind> {
    kinds.iter().find(|(k, _)| k == name).map(|(_, kind)| kind)
}

/// Name/value pairs (in order, names possibly repeated) as an object for a schema.
pub fn to_object(
    pairs: impl IntoIterator<Item = (String, String)>,
    kinds: &[(String, Kind)],
    prefix: &str,
) -> Result<Value, Violation> {
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    for (name, value) in pairs {
        match grouped.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value),
            None => grouped.push((name, vec![value])),
        }
    }
    let mut object = Map::new();
    for (name, values) in grouped {
        let value = match (kind(kinds, &name), values.as_slice()) {
            (Some(Kind::Array(item)), values) => {
                Value::Array(values.iter().map(|v| item.coerce(v)).collect())
            }
            (kind, [single]) => kind.unwrap_or(&Kind::Text).coerce(single),
            (None, values) => {
                Value::Array(values.iter().map(|v| Value::from(v.as_str())).collect())
            }
            (Some(_), values) => {
                return Err(Violation {
                    pointer: format!("{prefix}/{}", escape_pointer(&name)),
                    keyword: "type".into(),
                    message: format!("given {} times; one value is expected", values.len()),
                });
            }
        };
        object.insert(name, value);
    }
    Ok(Value::Object(object))
}

/// JSON Pointer escaping of one reference token (RFC 6901).
pub fn escape_pointer(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Folds bracketed keys (`limit[]`, `limit[0]`, `limit[max]`) into the declared property they
/// start with (`limit`), so they are checked against its schema. Frameworks such as Express
/// (`qs`), Rails and PHP read `limit[]=1000` as `limit`; left as its own key, it would pass a
/// schema without `additionalProperties: false` unchecked and reach the handler as `limit`.
/// Keys whose base is not declared stay as they are.
pub fn fold_bracketed(pairs: &mut [(String, String)], kinds: &[(String, Kind)]) {
    for (name, _) in pairs.iter_mut() {
        if let Some((base, _)) = name.split_once('[')
            && !base.is_empty()
            && kind(kinds, base).is_some()
        {
            name.truncate(base.len());
        }
    }
}

/// The decoded pairs of a query string (`+` is a space, `%xx` decoded, as forms do).
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    #[cfg(target_family = "wasm")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn query_values_are_coerced_by_the_schema() {
        let schema = json!({"properties": {
            "page": {"type": "integer"}, "ratio": {"type": "number"}, "full": {"type": "boolean"},
            "tag": {"type": "array", "items": {"type": "integer"}}, "q": {"type": ["string", "null"]}
        }});
        let kinds = Kind::of_properties(&schema);
        let object = to_object(
            query_pairs("page=2&ratio=0.5&full=true&tag=1&tag=2&q=a+b%2Fc&other=x&other=y"),
            &kinds,
            "/query",
        );
        assert_eq!(
            object,
            Ok(
                json!({"page": 2, "ratio": 0.5, "full": true, "tag": [1, 2], "q": "a b/c", "other": ["x", "y"]})
            )
        );
        // What does not read as the type stays text, for the schema to refuse.
        assert_eq!(
            to_object(query_pairs("page=two&full=yes"), &kinds, "/query"),
            Ok(json!({"page": "two", "full": "yes"}))
        );
        let folded = |query: &str| {
            let mut pairs = query_pairs(query);
            fold_bracketed(&mut pairs, &kinds);
            to_object(pairs, &kinds, "/query")
        };
        assert_eq!(
            folded("page[]=9&tag[]=1&tag[1]=2&other[]=x&q%5B%5D=c"),
            Ok(json!({"page": 9, "tag": [1, 2], "other[]": "x", "q": "c"}))
        );
        assert_eq!(
            folded("page=1&page[]=2").map_err(|v| v.message),
            Err("given 2 times; one value is expected".to_string())
        );
        assert_eq!(
            to_object(query_pairs("page=1&page=2"), &kinds, "/query"),
            Err(Violation {
                pointer: "/query/page".into(),
                keyword: "type".into(),
                message: "given 2 times; one value is expected".into()
            })
        );
    }
}
