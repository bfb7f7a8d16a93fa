//! The two shapes Envoy delivers the plugin configuration in.
//!
//! Envoy passes the `configuration` field's payload as it is: a `StringValue` arrives as its
//! text (JSON here), but a `google.protobuf.Struct` — what a YAML map in the Envoy config
//! becomes — arrives as the Struct's binary protobuf encoding. Both are turned into the same
//! JSON value so the typed config sees one format.

use prost::Message;
use prost_types::value::Kind;
use serde_json::{Map, Number, Value};

use super::ConfigError;

/// Largest integer a protobuf double carries exactly (2^53).
const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

pub enum Encoded<'a> {
    Json(&'a [u8]),
    Struct(Value),
    Empty,
}

pub fn decode(bytes: &[u8]) -> Result<Encoded<'_>, ConfigError> {
    let first_visible = bytes.iter().find(|b| !b.is_ascii_whitespace());
    // A serialised Struct starts with field 1 (`fields`), length-delimited: byte 0x0a, which is
    // also a newline. Text that parses as JSON is JSON; otherwise such bytes are a Struct.
    if bytes.first() == Some(&0x0a)
        && (first_visible != Some(&b'{')
            || serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_err())
        && let Ok(decoded) = prost_types::Struct::decode(bytes)
    {
        return Ok(Encoded::Struct(struct_to_json(decoded)));
    }
    match first_visible {
        None => Ok(Encoded::Empty),
        Some(b'{') => Ok(Encoded::Json(bytes)),
        Some(_) => Err(ConfigError::new(
            "",
            "the configuration must be a JSON object (or a protobuf Struct), like {\"routes\": [...]}",
        )),
    }
}

fn struct_to_json(s: prost_types::Struct) -> Value {
    Value::Object(
        s.fields
            .into_iter()
            .map(|(k, v)| (k, value_to_json(v)))
            .collect::<Map<_, _>>(),
    )
}

fn value_to_json(v: prost_types::Value) -> Value {
    match v.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(b),
        Some(Kind::StringValue(s)) => Value::String(s),
        Some(Kind::NumberValue(n)) => number_to_json(n),
        Some(Kind::StructValue(s)) => struct_to_json(s),
        Some(Kind::ListValue(list)) => {
            Value::Array(list.values.into_iter().map(value_to_json).collect())
        }
    }
}

/// Struct numbers are doubles; `100` in YAML must still read as the integer 100.
fn number_to_json(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() <= MAX_EXACT_INTEGER {
        // In range and integral, so the conversion is exact.
        Value::Number(Number::from(n as i64))
    } else {
        Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::{ListValue, Struct, Value as PValue};

    fn pv(kind: Kind) -> PValue {
        PValue { kind: Some(kind) }
    }

    #[test]
    fn struct_becomes_the_same_json() {
        let s = Struct {
            fields: [
                ("limit".to_string(), pv(Kind::NumberValue(100.0))),
                ("ratio".to_string(), pv(Kind::NumberValue(0.5))),
                ("on".to_string(), pv(Kind::BoolValue(true))),
                ("none".to_string(), pv(Kind::NullValue(0))),
                (
                    "list".to_string(),
                    pv(Kind::ListValue(ListValue {
                        values: vec![
                            pv(Kind::StringValue("a".into())),
                            pv(Kind::NumberValue(-3.0)),
                        ],
                    })),
                ),
            ]
            .into_iter()
            .collect(),
        };
        let Ok(Encoded::Struct(value)) = decode(&s.encode_to_vec()) else {
            panic!("not decoded as a Struct");
        };
        assert_eq!(
            value,
            serde_json::json!({"limit": 100, "ratio": 0.5, "on": true, "none": null, "list": ["a", -3]})
        );
    }

    #[test]
    fn empty_struct_and_empty_bytes() {
        assert!(matches!(decode(b""), Ok(Encoded::Empty)));
        assert!(matches!(decode(b" \n"), Ok(Encoded::Empty)));
        // An empty Struct encodes to no bytes at all.
        assert!(Struct::default().encode_to_vec().is_empty());
    }

    #[test]
    fn garbage_is_refused() {
        assert!(decode(&[0x0a, 0xff, 0xff]).is_err());
        // JSON text that starts with a newline is still JSON.
        assert!(matches!(
            decode(b"\n{\"routes\": []}"),
            Ok(Encoded::Json(_))
        ));
        assert!(decode(b"routes: []").is_err());
    }
}
