//! The `validate` section as users write it.

use serde::Deserialize;
use serde_json::Value;

use super::params::QueryStyle;
use crate::syntax::{OrderedMap, impl_over};

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawValidate {
    /// A JSON Schema for the request body (draft 2020-12 unless `$schema` says otherwise),
    /// checked on bodies whose media type is JSON.
    pub body: Option<Value>,
    /// Whether a request must have a body: default true for POST, PUT and PATCH on a route
    /// with a `body` schema, else false.
    pub body_required: Option<bool>,
    /// Allowed media types (`application/json`, `text/*`); parameters such as `charset` are
    /// ignored when comparing.
    pub content_types: Option<Vec<String>>,
    /// Largest body accepted (default 1 MiB).
    pub max_body_bytes: Option<u64>,
    /// A JSON Schema for the query parameters, as an object.
    pub query: Option<Value>,
    /// How array and object query parameters are written, by name (default `form`:
    /// `tag=a&tag=b`).
    pub query_styles: Option<OrderedMap<QueryStyle>>,
    /// A JSON Schema for the request headers, as an object of lowercase names to values.
    pub headers: Option<Value>,
    /// A JSON Schema for the request's cookies (`Cookie: a=1; b=2`), as an object.
    pub cookies: Option<Value>,
    /// Schemas for the route template's `{name}` segments.
    pub path_params: Option<OrderedMap<Value>>,
    /// `allow` (default) or `reject` requests no route describes (404), and methods a path's
    /// routes do not list (405). Only in `defaults`.
    pub unknown_routes: Option<UnknownRoutes>,
}

impl_over!(RawValidate {
    body,
    body_required,
    content_types,
    max_body_bytes,
    query,
    query_styles,
    headers,
    cookies,
    path_params,
    unknown_routes,
});

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum UnknownRoutes {
    #[default]
    Allow,
    Reject,
}
