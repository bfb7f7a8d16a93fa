//! The `validate` section as users write it.

use serde::Deserialize;
use serde_json::Value;

use crate::syntax::{OrderedMap, impl_over};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawValidate {
    /// A JSON Schema for the request body (draft 2020-12 unless `$schema` says otherwise).
    pub body: Option<Value>,
    /// Allowed media types (`application/json`, `text/*`); parameters such as `charset` are
    /// ignored when comparing.
    pub content_types: Option<Vec<String>>,
    /// Largest body accepted (default 1 MiB).
    pub max_body_bytes: Option<u64>,
    /// A JSON Schema for the query parameters, as an object.
    pub query: Option<Value>,
    /// A JSON Schema for the request headers, as an object of lowercase names to values.
    pub headers: Option<Value>,
    /// Schemas for the route template's `{name}` segments.
    pub path_params: Option<OrderedMap<Value>>,
    /// `allow` (default) or `reject` requests no route describes (404), and methods a path's
    /// routes do not list (405). Only in `defaults`.
    pub unknown_routes: Option<UnknownRoutes>,
}

impl_over!(RawValidate {
    body,
    content_types,
    max_body_bytes,
    query,
    headers,
    path_params,
    unknown_routes,
});

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownRoutes {
    #[default]
    Allow,
    Reject,
}
