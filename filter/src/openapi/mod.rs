//! An OpenAPI 3.0 or 3.1 document as the filter's routes and validation: one route per
//! operation (its path under the servers' base path, its method), each with the `validate`
//! section its parameters and request body mean. The routes then compile like the config's
//! own (`config::Config::compile`), so everything the filter checks for a listed route it
//! checks for an operation.
//!
//! Read: paths and their operations, path-level parameters, `$ref`s to anything under
//! `#/components` (parameters, request bodies, path items, schemas, cycles included), the
//! parameter styles the wire uses (path and header `simple`, query `form` exploded or not,
//! `spaceDelimited`, `pipeDelimited`, `deepObject`, cookie `form`), `content` parameters of
//! JSON, request bodies with their media types. Not read (docs/config.md says why):
//! responses, security schemes, callbacks, webhooks, links.

mod document;
mod operation;
pub mod schema30;
mod schemas;

use http::Method;
use serde::Deserialize;
use serde_json::Value;

use crate::policy::validate::{RawValidate, UnknownRoutes};
use crate::routes::{ParamNames, PathPattern, check_path_text, compile_path};
use crate::syntax::ConfigError;
use document::AT;
pub use schema30::ReadOnly;

/// The `openapi` section as users write it.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawOpenApi {
    /// The OpenAPI 3.0.x or 3.1.x document: an object (YAML in Envoy's config), or its JSON
    /// text.
    pub document: Value,
    /// The path every operation's path is under; default: the path of the `servers` URLs.
    #[serde(default)]
    pub base_path: Option<String>,
    /// Requests no operation describes: `reject` (404, or 405 with `Allow`; the default) or
    /// `allow`.
    #[serde(default)]
    pub unknown_routes: Option<UnknownRoutes>,
    /// Refuse query parameters an operation does not declare (default false).
    #[serde(default)]
    pub reject_undeclared_query: Option<bool>,
    /// Largest request body (default: `defaults.validate.max_body_bytes`, else 1 MiB).
    #[serde(default)]
    pub max_body_bytes: Option<u64>,
    /// `readOnly` properties in a request body: `ignore` (default: not required, let through)
    /// or `refuse`.
    #[serde(default)]
    pub read_only: Option<ReadOnlyChoice>,
    /// Check `format` (`email`, `date-time`, `uuid`...) as assertions (default false: an
    /// annotation, as OpenAPI 3.1's base dialect has it).
    #[serde(default)]
    pub check_formats: Option<bool>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReadOnlyChoice {
    Ignore,
    Refuse,
}

/// An operation as a route to compile.
#[derive(Debug)]
pub struct Operation {
    /// `operationId`, else `METHOD /path` as the document writes it.
    pub name: String,
    pub operation_id: Option<String>,
    /// The path as the document writes it (without the base path).
    pub path: String,
    pub method: Method,
    pub pattern: PathPattern,
    pub validate: RawValidate,
}

/// The methods a Path Item Object may hold, in its order.
const METHODS: &[(&str, Method)] = &[
    ("get", Method::GET),
    ("put", Method::PUT),
    ("post", Method::POST),
    ("delete", Method::DELETE),
    ("options", Method::OPTIONS),
    ("head", Method::HEAD),
    ("patch", Method::PATCH),
    ("trace", Method::TRACE),
];

/// The document's operations, in document order. `default_max_body`: the defaults'.
pub fn compile(raw: &RawOpenApi) -> Result<Vec<Operation>, ConfigError> {
    let parsed;
    let document = match &raw.document {
        Value::String(text) => {
            parsed = serde_json::from_str::<Value>(text).map_err(|e| {
                ConfigError::new(
                    AT,
                    format!("as text it must be JSON ({e}); give YAML as an object in the config"),
                )
            })?;
            &parsed
        }
        Value::Object(_) => &raw.document,
        _ => {
            return Err(ConfigError::new(
                AT,
                "an OpenAPI document: an object, or its JSON text",
            ));
        }
    };
    let version = document::version(document)?;
    let read_only = match raw.read_only {
        Some(ReadOnlyChoice::Refuse) => ReadOnly::Refuse,
        _ => ReadOnly::Ignore,
    };
    let schemas = schemas::Schemas::new(
        document,
        version,
        read_only,
        raw.check_formats.unwrap_or(false),
    )?;
    let base = match &raw.base_path {
        Some(base) => base.trim_end_matches('/').to_string(),
        None => document::base_path(document)?,
    };
    let cx = operation::Context {
        document,
        schemas: &schemas,
        reject_undeclared_query: raw.reject_undeclared_query.unwrap_or(false),
        max_body_bytes: raw.max_body_bytes,
    };
    let Some(paths) = document.get("paths") else {
        return Ok(Vec::new()); // 3.1 allows a document of webhooks or components only
    };
    let Value::Object(paths) = paths else {
        return Err(ConfigError::new(format!("{AT}.paths"), "must be an object"));
    };
    let mut operations = Vec::new();
    for (path, item) in paths {
        path_operations(&cx, &base, path, item, &mut operations)?;
    }
    Ok(operations)
}

fn path_operations(
    cx: &operation::Context<'_>,
    base: &str,
    path: &str,
    item: &Value,
    out: &mut Vec<Operation>,
) -> Result<(), ConfigError> {
    let item_at = format!("{AT}.paths.{path}");
    let (item, _) = document::resolve(cx.document, item, &item_at)?;
    if !path.starts_with('/') {
        return Err(ConfigError::new(item_at, "a path starts with `/`"));
    }
    let full = format!("{base}{path}");
    let pattern = check_path_text(&full)
        .and_then(|()| compile_path(&full, ParamNames::Any))
        .map_err(|reason| ConfigError::new(item_at.clone(), reason))?;
    let names = pattern.param_names();
    for (key, method) in METHODS {
        let Some(operation) = item.get(*key) else {
            continue;
        };
        let at = format!("{item_at}.{key}");
        let validate = operation::validate_section(
            cx,
            operation,
            item.get("parameters"),
            &item_at,
            &at,
            &names,
        )?;
        let operation_id = operation
            .get("operationId")
            .and_then(Value::as_str)
            .map(str::to_string);
        out.push(Operation {
            name: operation_id
                .clone()
                .unwrap_or_else(|| format!("{} {path}", method.as_str())),
            operation_id,
            path: path.to_string(),
            method: method.clone(),
            pattern: pattern.clone(),
            validate,
        });
    }
    Ok(())
}

impl Operation {
    /// Whether a `match.operations` entry names this operation: its `operationId`, its
    /// `METHOD /path`, or its `/path` (every method).
    pub fn is_named(&self, entry: &str) -> bool {
        if entry.starts_with('/') {
            return entry == self.path;
        }
        match entry.split_once(' ') {
            Some((method, path)) => method == self.method.as_str() && path == self.path,
            None => self.operation_id.as_deref() == Some(entry),
        }
    }
}

#[cfg(test)]
mod tests;
