//! The plugin configuration: typed (serde, unknown fields refused), checked completely and
//! compiled once when Envoy hands it over. Requests only ever see [`Config`].

mod encoding;
mod error;
mod raw;

pub use error::ConfigError;
pub use raw::{RawConfig, RawMatch, RawRoute};

use crate::routes::{Route, RouteTable};

/// The compiled configuration the per-request path works from.
#[derive(Debug)]
pub struct Config {
    pub routes: RouteTable,
}

impl Config {
    /// Parses and compiles the plugin configuration Envoy passes to `on_configure`: JSON text
    /// (a `StringValue`) or a protobuf `Struct`; no configuration at all is the same as `{}`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ConfigError> {
        let raw = RawConfig::from_bytes(bytes)?;
        Self::compile(raw)
    }

    pub fn compile(raw: RawConfig) -> Result<Self, ConfigError> {
        let routes = raw
            .routes
            .into_iter()
            .enumerate()
            .map(|(index, route)| {
                Route::compile(index, route).map_err(|e| e.within(&format!("routes[{index}]")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            routes: RouteTable::new(routes),
        })
    }
}

#[cfg(test)]
mod tests;
