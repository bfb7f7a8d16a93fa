//! Query parameters, headers, cookies and path parameters turned into a JSON object for their
//! schema: values are text on the wire, so they are coerced to what the schema's `type` says
//! (integers, numbers, booleans); where the schema says array, a repeated query key, or the
//! items of a delimited value (`a,b` in a header or a path segment, or in a query parameter
//! written that way), become its items; a query parameter written as a deep object
//! (`filter[min]=1`) becomes an object.

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
    /// JSON text (an OpenAPI `content` parameter): parsed.
    Json,
    /// A query parameter written as a deep object (`filter[min]=1&filter[max]=9`), with
    /// the kinds of its properties.
    Object(Vec<(String, Kind)>),
}

/// How a query parameter is written (OpenAPI's `style` and `explode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum QueryStyle {
    /// `tag=a&tag=b` (form, exploded): the default.
    #[default]
    Form,
    /// `tag=a,b` (form, not exploded).
    Comma,
    /// `tag=a%20b`.
    SpaceDelimited,
    /// `tag=a|b`.
    PipeDelimited,
    /// `filter[min]=1&filter[max]=9`: an object.
    DeepObject,
}

impl QueryStyle {
    /// What separates an array's items inside one value, if anything.
    fn delimiter(self) -> Option<char> {
        match self {
            QueryStyle::Comma => Some(','),
            QueryStyle::SpaceDelimited => Some(' '),
            QueryStyle::PipeDelimited => Some('|'),
            QueryStyle::Form | QueryStyle::DeepObject => None,
        }
    }
}

impl Kind {
    /// From a property schema's `type` (the first one that is not `null`); JSON text where
    /// the schema is marked `x-hardening-json` (what an OpenAPI `content` parameter becomes).
    pub fn of(schema: &Value) -> Kind {
        if schema.get("x-hardening-json") == Some(&Value::Bool(true)) {
            return Kind::Json;
        }
        let ty = match schema.get("type") {
            Some(Value::String(t)) => Some(t.as_str()),
            Some(Value::Array(types)) => types
                .iter()
                .filter_map(Value::as_str)
                .find(|t| *t != "null"),
            // `allOf: [{type: integer}, {minimum: 1}]`: the type of the member that has one.
            _ => {
                let members = schema.get("allOf").and_then(Value::as_array);
                let typed = members
                    .into_iter()
                    .flatten()
                    .find(|m| m.get("type").is_some());
                return typed.map_or(Kind::Text, Kind::of);
            }
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
            Kind::Json => serde_json::from_str(text).unwrap_or_else(|_| text.into()),
            Kind::Text | Kind::Object(_) => text.into(),
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
    // Grouped through a map: a query of thousands of keys must not cost their square.
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    let mut positions: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (name, value) in pairs {
        match positions.get(&name).and_then(|at| grouped.get_mut(*at)) {
            Some((_, values)) => values.push(value),
            None => {
                positions.insert(name.clone(), grouped.len());
                grouped.push((name, vec![value]));
            }
        }
    }
    let mut object = Map::new();
    for (name, values) in grouped {
        if let Some((base, Kind::Object(properties))) = deep_base(&name, kinds) {
            deep_property(&mut object, base, &name, properties, &values, prefix)?;
            continue;
        }
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

/// The declared deep-object parameter a bracketed name (`filter[min]`) belongs to.
fn deep_base<'k>(name: &str, kinds: &'k [(String, Kind)]) -> Option<(&'k str, &'k Kind)> {
    let (base, _) = name.split_once('[')?;
    kinds
        .iter()
        .find(|(k, kind)| k == base && matches!(kind, Kind::Object(_)))
        .map(|(k, kind)| (k.as_str(), kind))
}

/// One `base[key]=value` of a deep object into `object[base][key]`, coerced by the
/// property's kind.
fn deep_property(
    object: &mut Map<String, Value>,
    base: &str,
    name: &str,
    properties: &[(String, Kind)],
    values: &[String],
    prefix: &str,
) -> Result<(), Violation> {
    let key = name
        .get(base.len()..)
        .and_then(|rest| rest.strip_prefix('['))
        .and_then(|rest| rest.strip_suffix(']'))
        .filter(|key| !key.contains(['[', ']']));
    let at = || format!("{prefix}/{}", escape_pointer(base));
    let Some(key) = key else {
        return Err(Violation {
            pointer: at(),
            keyword: "type".into(),
            message: "a deep object is written `name[property]=value`, one level deep".into(),
        });
    };
    let entry = object
        .entry(base.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    let (Value::Object(fields), [single]) = (entry, values) else {
        return Err(Violation {
            pointer: format!("{}/{}", at(), escape_pointer(key)),
            keyword: "type".into(),
            message: format!("given {} times; one value is expected", values.len()),
        });
    };
    let value = kind(properties, key).unwrap_or(&Kind::Text).coerce(single);
    fields.insert(key.to_string(), value);
    Ok(())
}

/// Name/value pairs whose kind is an array, with each value split into the array's items at
/// `delimiter` (items trimmed of spaces and tabs when `trim`, as HTTP field lists are).
pub fn split_lists(
    pairs: Vec<(String, String)>,
    kinds: &[(String, Kind)],
    delimiter: char,
    trim: bool,
) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(pairs.len());
    for (name, value) in pairs {
        if !matches!(kind(kinds, &name), Some(Kind::Array(_))) {
            out.push((name, value));
            continue;
        }
        for item in value.split(delimiter) {
            let item = if trim {
                item.trim_matches([' ', '\t'])
            } else {
                item
            };
            out.push((name.clone(), item.to_string()));
        }
    }
    out
}

/// JSON Pointer escaping of one reference token (RFC 6901).
pub fn escape_pointer(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Bracketed keys whose base is a declared property (`limit[]`, `tag[0]`, `id[$ne]`), read as
/// frameworks such as Express (`qs`), Rails and PHP read them: `tag[]` and `tag[0]` are items
/// of the list `tag`, `id[$ne]` is an object `id`. Left as keys of their own, they would slip
/// past the property's schema (unless `additionalProperties: false`) and reach the handler as
/// a list or an object where the schema promised one value, the shape of operator injection
/// (`?id[$ne]=x`). So list items of a declared list are folded into it, and any other
/// bracketed form of a declared property is refused. Keys whose base is not declared stay as
/// they are.
pub fn fold_bracketed(
    pairs: &mut [(String, String)],
    kinds: &[(String, Kind)],
    prefix: &str,
) -> Result<(), Violation> {
    for (name, _) in pairs.iter_mut() {
        let Some((base, rest)) = name.split_once('[') else {
            continue;
        };
        let Some(kind) = kind(kinds, base) else {
            continue;
        };
        if matches!(kind, Kind::Object(_)) {
            continue; // a deep object's property, assembled by `to_object`
        }
        let list_item = rest
            .strip_suffix(']')
            .is_some_and(|index| index.bytes().all(|b| b.is_ascii_digit()));
        if list_item && matches!(kind, Kind::Array(_)) {
            name.truncate(base.len());
            continue;
        }
        let message = if list_item {
            format!("given as a list (`{base}[]`); one value is expected")
        } else {
            format!("given as an object (`{base}[...]`), which this parameter is not")
        };
        return Err(Violation {
            pointer: format!("{prefix}/{}", escape_pointer(base)),
            keyword: "type".into(),
            message: crate::syntax::excerpt(&message, super::schema::MAX_MESSAGE_CHARS),
        });
    }
    Ok(())
}

/// The decoded pairs of a query string (`+` is a space, `%xx` decoded, as forms do).
#[cfg(test)]
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    styled_query_pairs(query, &[], &[])
}

/// A query string's name or value as forms encode it: `+` is a space, `%xx` a byte (invalid
/// UTF-8 replaced).
fn decode(text: &str) -> String {
    let decoded = |text: &str| {
        percent_encoding::percent_decode_str(text)
            .decode_utf8_lossy()
            .into_owned()
    };
    if text.contains('+') {
        decoded(&text.replace('+', " "))
    } else {
        decoded(text)
    }
}

/// The decoded pairs of a query string, an array parameter written with a delimiter split
/// into one pair per item *before* decoding (an encoded `%2C` is data, not a separator).
pub fn styled_query_pairs(
    query: &str,
    kinds: &[(String, Kind)],
    styles: &[(String, QueryStyle)],
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for piece in query.split('&').filter(|p| !p.is_empty()) {
        let (raw_name, raw_value) = piece.split_once('=').unwrap_or((piece, ""));
        let name = decode(raw_name);
        let style = styles
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(QueryStyle::Form, |(_, s)| *s);
        let delimiter = style
            .delimiter()
            .filter(|_| matches!(kind(kinds, &name), Some(Kind::Array(_))));
        match delimiter {
            Some(' ') => {
                let value = decode(raw_value);
                out.extend(
                    value
                        .split(' ')
                        .map(|item| (name.clone(), item.to_string())),
                );
            }
            Some(delimiter) => out.extend(
                raw_value
                    .split(delimiter)
                    .map(|item| (name.clone(), decode(item))),
            ),
            None => out.push((name, decode(raw_value))),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
            fold_bracketed(&mut pairs, &kinds, "/query")?;
            to_object(pairs, &kinds, "/query")
        };
        assert_eq!(
            folded("tag[]=1&tag[1]=2&tag=3&other[]=x&other[a]=y&[]=z"),
            Ok(json!({"tag": [1, 2, 3], "other[]": "x", "other[a]": "y", "[]": "z"}))
        );
        let refused = |query: &str| folded(query).map_err(|v| (v.pointer, v.message));
        assert_eq!(
            refused("page[]=9"),
            Err((
                "/query/page".to_string(),
                "given as a list (`page[]`); one value is expected".to_string()
            ))
        );
        assert_eq!(
            refused("q%5B%24ne%5D=x"),
            Err((
                "/query/q".to_string(),
                "given as an object (`q[...]`), which this parameter is not".to_string()
            ))
        );
        assert_eq!(
            refused("tag[a]=1").map_err(|(_, m)| m),
            Err("given as an object (`tag[...]`), which this parameter is not".to_string())
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
