//! The document as JSON: its version, `$ref`s to objects under `#/components` (parameters,
//! request bodies, path items) followed with their cycles caught, the base path its `servers`
//! give, and config paths that name a place in it.

use serde_json::Value;

use crate::syntax::ConfigError;

/// The two dialects the filter reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// 3.0.x: schemas are OpenAPI's own subset of JSON Schema, translated (`schema30`).
    V30,
    /// 3.1.x: schemas are JSON Schema 2020-12.
    V31,
}

/// Where errors about the document point (`openapi.document`).
pub const AT: &str = "openapi.document";

/// More `$ref` hops than this is a cycle (or a chain no document needs).
const MAX_HOPS: usize = 32;

pub fn version(document: &Value) -> Result<Version, ConfigError> {
    let at = format!("{AT}.openapi");
    match document.get("openapi").and_then(Value::as_str) {
        Some(v) if v.starts_with("3.0.") => Ok(Version::V30),
        Some(v) if v.starts_with("3.1.") => Ok(Version::V31),
        Some(v) => Err(ConfigError::new(
            at,
            format!("version `{v}` is not read: the filter reads OpenAPI 3.0.x and 3.1.x"),
        )),
        None if document.get("swagger").is_some() => Err(ConfigError::new(
            format!("{AT}.swagger"),
            "Swagger 2.0 is not read: convert the document to OpenAPI 3 (e.g. with swagger2openapi)",
        )),
        None => Err(ConfigError::new(
            at,
            "missing: an OpenAPI document starts with `openapi: 3.0.x` or `3.1.x`",
        )),
    }
}

/// The value a JSON Pointer fragment (`#/components/parameters/Limit`) names, its tokens
/// percent-decoded (URI fragment) and `~1`/`~0` unescaped.
pub fn pointer<'d>(document: &'d Value, reference: &str) -> Option<&'d Value> {
    let fragment = reference.strip_prefix('#')?;
    let decoded = percent_encoding::percent_decode_str(fragment)
        .decode_utf8()
        .ok()?;
    document.pointer(&decoded)
}

/// `value`, or what its `$ref` chain ends at, with the config path of where it was found.
pub fn resolve<'d>(
    document: &'d Value,
    value: &'d Value,
    at: &str,
) -> Result<(&'d Value, String), ConfigError> {
    let mut current = value;
    let mut place = at.to_string();
    for _ in 0..MAX_HOPS {
        let Some(reference) = current.get("$ref") else {
            return Ok((current, place));
        };
        let Some(text) = reference.as_str() else {
            return Err(ConfigError::new(
                format!("{place}.$ref"),
                "must be a string",
            ));
        };
        if !text.starts_with("#/") {
            return Err(ConfigError::new(
                format!("{place}.$ref"),
                format!(
                    "`{}` points outside the document: external references are not followed; bundle the document first",
                    crate::syntax::excerpt(text, 120)
                ),
            ));
        }
        current = pointer(document, text).ok_or_else(|| {
            ConfigError::new(
                format!("{place}.$ref"),
                format!(
                    "`{}` names nothing in the document",
                    crate::syntax::excerpt(text, 120)
                ),
            )
        })?;
        place = format!("{AT}.{}", text.trim_start_matches("#/").replace('/', "."));
    }
    Err(ConfigError::new(
        at,
        "its `$ref`s form a cycle (or a chain of more than 32)",
    ))
}

/// The base path the `servers` give (`https://api.example.com/v1` → `/v1`; variables take
/// their defaults); empty without servers. Servers with different paths need `base_path`.
pub fn base_path(document: &Value) -> Result<String, ConfigError> {
    let servers = match document.get("servers") {
        None => return Ok(String::new()),
        Some(Value::Array(servers)) => servers,
        Some(_) => return Err(ConfigError::new(format!("{AT}.servers"), "must be a list")),
    };
    let mut paths: Vec<String> = Vec::new();
    for (i, server) in servers.iter().enumerate() {
        let Some(url) = server.get("url").and_then(Value::as_str) else {
            return Err(ConfigError::new(
                format!("{AT}.servers[{i}].url"),
                "missing: a server needs a `url`",
            ));
        };
        let path = server_path(&with_defaults(url, server.get("variables")));
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    match paths.as_slice() {
        [] => Ok(String::new()),
        [one] => Ok(one.clone()),
        several => Err(ConfigError::new(
            format!("{AT}.servers"),
            format!(
                "the servers' base paths differ ({}): set `openapi.base_path` to the one requests arrive with",
                several.join(", ")
            ),
        )),
    }
}

/// A server URL's `{name}` variables replaced by their `default`s.
fn with_defaults(url: &str, variables: Option<&Value>) -> String {
    let mut url = url.to_string();
    if let Some(Value::Object(variables)) = variables {
        for (name, variable) in variables {
            if let Some(default) = variable.get("default").and_then(Value::as_str) {
                url = url.replace(&format!("{{{name}}}"), default);
            }
        }
    }
    url
}

/// The path of a server URL, without a trailing slash (`/` alone is empty).
fn server_path(url: &str) -> String {
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.find('/').and_then(|at| rest.get(at..)).unwrap_or(""),
        None if url.starts_with('/') => url,
        None => return format!("/{}", url.trim_end_matches('/')),
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    path.trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_servers_give_the_base_path() {
        let base = |servers: Value| base_path(&json!({"servers": servers}));
        assert_eq!(
            base(json!([{"url": "https://api.example.com/v1/"}])),
            Ok("/v1".into())
        );
        assert_eq!(
            base(json!([{"url": "https://api.example.com"}])),
            Ok(String::new())
        );
        assert_eq!(
            base(json!([{"url": "/api"}, {"url": "http://x/api"}])),
            Ok("/api".into())
        );
        assert_eq!(
            base(
                json!([{"url": "https://{host}/{v}", "variables": {"host": {"default": "a"}, "v": {"default": "v2"}}}])
            ),
            Ok("/v2".into())
        );
        assert_eq!(
            base(json!([{"url": "/v1"}, {"url": "/v2"}])).map_err(|e| e.to_string()),
            Err("invalid configuration at `openapi.document.servers`: the servers' base paths differ (/v1, /v2): set `openapi.base_path` to the one requests arrive with".into())
        );
        assert_eq!(base_path(&json!({})), Ok(String::new()));
    }

    #[test]
    fn references_are_followed_and_cycles_caught() {
        let doc = json!({"components": {"parameters": {
            "A": {"$ref": "#/components/parameters/B"},
            "B": {"name": "b", "in": "query"},
            "C": {"$ref": "#/components/parameters/D"},
            "D": {"$ref": "#/components/parameters/C"},
            "a/b": {"name": "slash", "in": "query"}
        }}});
        let start = json!({"$ref": "#/components/parameters/A"});
        let (found, at) = resolve(&doc, &start, "here").expect("resolves");
        assert_eq!(found["name"], "b");
        assert_eq!(at, "openapi.document.components.parameters.B");
        let slash = json!({"$ref": "#/components/parameters/a~1b"});
        assert_eq!(
            resolve(&doc, &slash, "here").expect("resolves").0["name"],
            "slash"
        );
        let cycle = json!({"$ref": "#/components/parameters/C"});
        assert!(resolve(&doc, &cycle, "here").is_err());
        let external = json!({"$ref": "other.yaml#/X"});
        assert_eq!(
            resolve(&doc, &external, "here").map_err(|e| e.to_string()).err(),
            Some("invalid configuration at `here.$ref`: `other.yaml#/X` points outside the document: external references are not followed; bundle the document first".into())
        );
    }
}
