//! JSON Schemas compiled once with the `jsonschema` crate: draft 2020-12 unless `$schema`
//! says otherwise, `format` asserted, no network or file resolution (only the schema's own
//! `$defs` / local `$ref`s resolve).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use jsonschema::{Draft, Validator};
use serde_json::Value;

use crate::syntax::excerpt;

/// At most this many errors are reported per request.
pub const MAX_ERRORS: usize = 10;
/// Messages are cut to this many characters.
pub const MAX_MESSAGE_CHARS: usize = 200;
/// The `$schema` values that select a draft (each also without the `#`, or with it).
const KNOWN_DRAFTS: &[&str] = &[
    "https://json-schema.org/draft/2020-12/schema",
    "https://json-schema.org/draft/2019-09/schema",
    "http://json-schema.org/draft-07/schema#",
    "http://json-schema.org/draft-06/schema#",
    "http://json-schema.org/draft-04/schema#",
];

/// One reported violation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// JSON Pointer into the checked document, prefixed with where it came from (`/query`,
    /// `/headers`, `/path`; the body's pointers have no prefix).
    pub pointer: String,
    pub keyword: String,
    pub message: String,
}

#[derive(Debug)]
pub struct Schema {
    validator: Arc<Validator>,
}

/// Validators compiled so far, by schema text: an API description repeats the same schemas
/// (GitHub's has 1,223 operations, most with `owner` and `repo` path parameters), and one
/// compiled validator serves them all. Held weakly: a config dropped frees its validators.
static COMPILED: Mutex<Option<HashMap<String, Weak<Validator>>>> = Mutex::new(None);

/// The validator compiled for the same schema text, if one is still alive.
fn compiled(key: &str) -> Option<Arc<Validator>> {
    let cache = COMPILED.lock().unwrap_or_else(PoisonError::into_inner);
    cache.as_ref()?.get(key)?.upgrade()
}

fn remember(key: String, validator: &Arc<Validator>) {
    let mut cache = COMPILED.lock().unwrap_or_else(PoisonError::into_inner);
    let cache = cache.get_or_insert_with(HashMap::new);
    if cache.len().is_power_of_two() {
        cache.retain(|_, v| v.strong_count() > 0);
    }
    cache.insert(key, Arc::downgrade(validator));
}

impl Schema {
    /// Compiles a schema; the error says what is wrong and where in the schema.
    pub fn compile(schema: &Value) -> Result<Self, String> {
        // Without `$schema` the crate's default applies (2020-12); a `$schema` naming a draft
        // selects it. Any other `$schema` would be a custom metaschema, which would need a
        // fetch: refused here with the list of what works.
        if let Some(uri) = schema.get("$schema").and_then(Value::as_str)
            && Draft::from_schema_uri(uri) == Draft::Unknown
        {
            return Err(format!(
                "`$schema` `{}` is not a draft the filter knows: write one of {}, or leave it out for 2020-12",
                excerpt(uri, MAX_MESSAGE_CHARS),
                KNOWN_DRAFTS.join(", ")
            ));
        }
        let key = schema.to_string();
        if let Some(validator) = compiled(&key) {
            return Ok(Self { validator });
        }
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(schema)
            .map_err(|e| {
                let text = e.to_string();
                if let Some(resource) = text
                    .strip_prefix("Resource '")
                    .and_then(|rest| rest.split_once("' is not present in a registry"))
                    .map(|(resource, _)| resource)
                {
                    return format!(
                        "`$ref` to {resource} cannot be resolved: schemas are never fetched over the network or from files; put it under `$defs` and refer to it locally"
                    );
                }
                // The schema is config, not user input: its values may be quoted.
                let at = e.instance_path().to_string();
                let at = if at.is_empty() { String::new() } else { format!(" (at {at})") };
                format!("the schema does not compile: {}{at}", excerpt(&text, MAX_MESSAGE_CHARS))
            })?;
        let validator = Arc::new(validator);
        remember(key, &validator);
        Ok(Self { validator })
    }

    /// The first violations (at most `MAX_ERRORS`), with `prefix` before each pointer. Messages
    /// never quote the instance's values.
    pub fn violations(&self, instance: &Value, prefix: &str) -> Vec<Violation> {
        self.validator
            .iter_errors(instance)
            .take(MAX_ERRORS)
            .map(|error| Violation {
                pointer: format!("{prefix}{}", error.instance_path()),
                keyword: error.kind().keyword().to_string(),
                message: excerpt(&error.masked().to_string(), MAX_MESSAGE_CHARS),
            })
            .collect()
    }

    pub fn is_valid(&self, instance: &Value) -> bool {
        self.validator.is_valid(instance)
    }
}
