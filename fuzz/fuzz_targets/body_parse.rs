//! The strict JSON body parser (through a route whose body schema accepts any JSON, so the
//! parse alone decides): never a panic; what it accepts serde_json accepts and has no duplicate
//! key; what it refuses is malformed for serde_json or has a duplicate key, and the refusal is a
//! 400 problem+json saying where.

#![no_main]

use std::collections::HashSet;
use std::fmt;
use std::sync::LazyLock;

use hardening::config::Config;
use hardening::policy::validate::Validation;
use libfuzzer_sys::fuzz_target;
use serde::Deserializer;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

static CONFIG: LazyLock<Config> = LazyLock::new(|| {
    let config = r#"{"routes": [{"match": {"path": "/any", "methods": ["POST"]},
        "validate": {"body": {}, "max_body_bytes": 1000000}}]}"#;
    Config::from_bytes(config.as_bytes()).expect("the config compiles")
});

fn validation() -> &'static Validation {
    CONFIG
        .routes
        .iter()
        .next()
        .and_then(|r| r.policies.validate.as_ref())
        .expect("the route validates")
}

/// Whether any object in the document repeats a key (serde_json keeps the last one).
struct Duplicates(bool);

impl<'de> de::Deserialize<'de> for Duplicates {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DuplicateVisitor)
    }
}

struct DuplicateVisitor;

impl<'de> Visitor<'de> for DuplicateVisitor {
    type Value = Duplicates;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Duplicates, E> {
        Ok(Duplicates(false))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Duplicates, E> {
        Ok(Duplicates(false))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Duplicates, E> {
        Ok(Duplicates(false))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Duplicates, E> {
        Ok(Duplicates(false))
    }
    fn visit_str<E>(self, _: &str) -> Result<Duplicates, E> {
        Ok(Duplicates(false))
    }
    fn visit_unit<E>(self) -> Result<Duplicates, E> {
        Ok(Duplicates(false))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Duplicates, A::Error> {
        let mut any = false;
        while let Some(Duplicates(d)) = seq.next_element()? {
            any |= d;
        }
        Ok(Duplicates(any))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Duplicates, A::Error> {
        let mut keys = HashSet::new();
        let mut any = false;
        while let Some(key) = map.next_key::<String>()? {
            any |= !keys.insert(key);
            let Duplicates(d) = map.next_value()?;
            any |= d;
        }
        Ok(Duplicates(any))
    }
}

fuzz_target!(|data: &[u8]| {
    let outcome = validation().on_body(data, true, Some("rid-1"));
    let lenient = serde_json::from_slice::<IgnoredAny>(data).is_ok();
    match outcome {
        Ok(()) => {
            assert!(lenient, "accepted what serde_json refuses");
            assert!(serde_json::from_slice::<Value>(data).is_ok());
            let duplicates = serde_json::from_slice::<Duplicates>(data).map(|d| d.0);
            assert_eq!(duplicates.ok(), Some(false), "accepted a duplicate key");
        }
        Err(refusal) => {
            let response = &refusal.response;
            hardening_fuzz::assert_own_response(response);
            assert_eq!(response.status, 400);
            let body: Value = serde_json::from_slice(&response.body).expect("JSON");
            if data.is_empty() {
                assert_eq!(body["code"], "body_required");
                return;
            }
            assert_eq!(body["code"], "malformed_body", "{body}");
            assert_eq!(body["request_id"], "rid-1");
            let message = body["errors"][0]["message"].as_str().unwrap_or_default();
            assert!(message.contains(" at line "), "{message}");
            if serde_json::from_slice::<Value>(data).is_ok() {
                let duplicates = serde_json::from_slice::<Duplicates>(data).map(|d| d.0);
                assert_eq!(duplicates.ok(), Some(true), "refused valid JSON: {body}");
                assert!(message.starts_with("duplicate key"), "{message}");
            }
        }
    }
});
