//! The configuration as the binary protobuf `google.protobuf.Struct` Envoy sends for a YAML
//! map: never a panic; a Struct is accepted exactly when the same value written as JSON text is
//! (numbers read as Envoy's doubles: integral ones as integers); an accepted config serves a
//! few ordinary exchanges with every invariant of `drive`.

#![no_main]

use hardening::config::Config;
use libfuzzer_sys::fuzz_target;
use prost::Message;
use prost_types::value::Kind;
use serde_json::{Map, Number, Value};

/// Largest integer a double carries exactly (2^53).
const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

fn to_json(value: prost_types::Value) -> Value {
    match value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(b),
        Some(Kind::StringValue(s)) => Value::String(s),
        Some(Kind::NumberValue(n)) if n.fract() == 0.0 && n.abs() <= MAX_EXACT_INTEGER => {
            Value::from(n as i64)
        }
        Some(Kind::NumberValue(n)) => Number::from_f64(n).map_or(Value::Null, Value::Number),
        Some(Kind::StructValue(s)) => object(s),
        Some(Kind::ListValue(list)) => Value::Array(list.values.into_iter().map(to_json).collect()),
    }
}

fn object(s: prost_types::Struct) -> Value {
    Value::Object(
        s.fields
            .into_iter()
            .map(|(k, v)| (k, to_json(v)))
            .collect::<Map<_, _>>(),
    )
}

fuzz_target!(|data: &[u8]| {
    let from_struct = Config::from_bytes(data);
    // Bytes that are JSON text are read as JSON; a Struct is what Envoy sends otherwise.
    let is_text = serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok();
    if data.first() == Some(&0x0a)
        && !is_text
        && let Ok(decoded) = prost_types::Struct::decode(data)
    {
        let text = object(decoded).to_string();
        let from_text = Config::from_bytes(text.as_bytes());
        assert_eq!(
            from_struct.as_ref().map(|_| ()).map_err(|_| ()),
            from_text.as_ref().map(|_| ()).map_err(|_| ()),
            "the Struct and its JSON text disagree: {:?} / {:?} for {text}",
            from_struct.as_ref().err().map(ToString::to_string),
            from_text.as_ref().err().map(ToString::to_string),
        );
    }
    if let Ok(config) = from_struct
        && let Some((engine, env)) = hardening_fuzz::prepared(config)
    {
        hardening_fuzz::smoke(&engine, &env);
    }
});
