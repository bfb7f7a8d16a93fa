//! The plugin configuration: typed (serde, unknown fields refused), checked completely and
//! compiled once when Envoy hands it over. Requests only ever see [`Config`].

mod encoding;
mod error;
mod ordered_map;
mod policies;
mod raw;
mod section;

pub use error::ConfigError;
pub use ordered_map::{OneOrMany, OrderedMap};
pub use policies::{PolicySet, RawPolicies, RawRoutePolicies};
pub use raw::{RawConfig, RawMatch, RawRoute};
pub use section::Section;

use std::sync::Arc;

use crate::routes::{Route, RouteTable};

/// The compiled configuration the per-request path works from.
#[derive(Debug)]
pub struct Config {
    pub routes: RouteTable,
    /// The policies of requests no route matches (and of routes that override nothing).
    pub defaults: Arc<PolicySet>,
}

impl Config {
    /// Parses and compiles the plugin configuration Envoy passes to `on_configure`: JSON text
    /// (a `StringValue`) or a protobuf `Struct`; no configuration at all is the same as `{}`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ConfigError> {
        let raw = RawConfig::from_bytes(bytes)?;
        Self::compile(raw)
    }

    pub fn compile(raw: RawConfig) -> Result<Self, ConfigError> {
        let defaults =
            Arc::new(policies::compile_defaults(&raw.defaults).map_err(|e| e.within("defaults"))?);
        let routes = raw
            .routes
            .iter()
            .enumerate()
            .map(|(index, route)| {
                let overrides = RawRoutePolicies {
                    security_headers: route.security_headers.as_ref(),
                    cors: route.cors.as_ref(),
                };
                let policies = policies::compile_route(&raw.defaults, &overrides)
                    .map(|set| set.map_or_else(|| Arc::clone(&defaults), Arc::new))
                    .and_then(|policies| Route::compile(index, route, policies))
                    .map_err(|e| e.within(&format!("routes[{index}]")))?;
                Ok(policies)
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        Ok(Self {
            routes: RouteTable::new(routes),
            defaults,
        })
    }
}

#[cfg(test)]
mod tests;
