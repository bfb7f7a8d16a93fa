//! Reading a request body as JSON, strictly: duplicate object keys are refused (parsers
//! disagree on which one wins, a classic way around validation), nesting is capped by the
//! parser's recursion limit (128), numbers beyond a double are refused, and every error says
//! where (line and column) without quoting the body.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::syntax::excerpt;

/// A JSON value parsed with duplicate keys refused.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = StrictValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<StrictValue, E> {
        serde_json::Number::from_f64(v)
            .map(|n| StrictValue(Value::Number(n)))
            .ok_or_else(|| E::custom("a number that is not finite"))
    }

    fn visit_str<E>(self, v: &str) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::String(v.to_string())))
    }

    fn visit_string<E>(self, v: String) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::String(v)))
    }

    fn visit_unit<E>(self) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Null))
    }

    fn visit_none<E>(self) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrictValue, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(StrictValue(Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StrictValue, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "duplicate key \"{}\"",
                    excerpt(&key, 40)
                )));
            }
            let StrictValue(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(StrictValue(Value::Object(object)))
    }
}

/// Why a body is not acceptable JSON, for a 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    pub line: usize,
    pub column: usize,
}

pub fn parse(body: &[u8]) -> Result<Value, ParseError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = StrictValue::deserialize(&mut de).and_then(|StrictValue(v)| de.end().map(|()| v));
    value.map_err(|e| {
        // serde_json says where; the classification avoids echoing anything of the body.
        let what = match e.classify() {
            serde_json::error::Category::Eof => "the body ends before the JSON does".to_string(),
            _ => {
                let text = e.to_string();
                let cut = text.find(" at line ").unwrap_or(text.len());
                text.get(..cut).unwrap_or("invalid JSON").to_string()
            }
        };
        ParseError {
            message: what,
            line: e.line(),
            column: e.column(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(body: &[u8]) -> (String, usize, usize) {
        let e = parse(body).expect_err("refused");
        (e.message, e.line, e.column)
    }

    #[test]
    fn valid_json_parses() {
        assert_eq!(
            parse(br#"{"a": [1, 2.5, "x", null, true]}"#),
            Ok(serde_json::json!({"a": [1, 2.5, "x", null, true]}))
        );
        assert_eq!(parse(b" 42 "), Ok(serde_json::json!(42)));
    }

    #[test]
    fn hostile_bodies_are_refused_with_where() {
        assert_eq!(
            error(br#"{"role": "user", "role": "admin"}"#),
            ("duplicate key \"role\"".into(), 1, 23)
        );
        assert_eq!(
            error(b"{\"a\": 1,\n  \"b\": }"),
            ("expected value".into(), 2, 8)
        );
        assert_eq!(
            error(br#"{"a": 1"#),
            ("the body ends before the JSON does".into(), 1, 7)
        );
        assert_eq!(
            error(b"{\"a\": \"\xff\"}"),
            ("invalid unicode code point".into(), 1, 8)
        );
        assert_eq!(error(b"[1e400]"), ("number out of range".into(), 1, 6));
        assert_eq!(error(b"{} x"), ("trailing characters".into(), 1, 4));
        let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        assert_eq!(
            error(deep.as_bytes()),
            ("recursion limit exceeded".into(), 1, 128)
        );
        let (message, _, _) =
            error(format!("{{\"{}\": 1, \"{}\": 2}}", "k".repeat(500), "k".repeat(500)).as_bytes());
        assert!(message.len() < 60, "{message}");
    }
}
