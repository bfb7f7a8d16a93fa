//! The plugin configuration: typed (serde, unknown fields refused), checked completely and
//! compiled once when Envoy hands it over. Requests only ever see [`Config`].

mod described;
mod encoding;
mod raw;
mod secrets;

pub use raw::{RawConfig, RawRoute};

use crate::policy::PolicySet;
use crate::policy::set as policies;
use crate::routes::RouteMatching;
use crate::syntax::{ConfigError, Section};

use std::sync::Arc;

use crate::client_address::ClientAddress;
use crate::logging::Logging;
use crate::policy::health::{self, Health};
use crate::policy::rate_limit::Limit;
use crate::policy::validate::UnknownRoutes;
use crate::routes::{Route, RouteTable};

/// The compiled configuration the per-request path works from.
#[derive(Debug)]
pub struct Config {
    pub routes: RouteTable,
    /// The policies of requests no route matches (and of routes that override nothing).
    pub defaults: Arc<PolicySet>,
    /// Every distinct rate limit (one state table each), defaults' and routes'.
    pub limits: Vec<Arc<Limit>>,
    /// What happens to requests no route describes (`defaults.validate.unknown_routes`).
    pub unknown_routes: UnknownRoutes,
    pub logging: Logging,
    pub health: Option<Health>,
    pub client_address: ClientAddress,
}

impl Config {
    /// Parses and compiles the plugin configuration Envoy passes to `on_configure`: JSON text
    /// (a `StringValue`) or a protobuf `Struct`; no configuration at all is the same as `{}`.
    /// A config with `${NAME}` secrets needs `from_bytes_with_env`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ConfigError> {
        Self::from_bytes_with_env(bytes, &|_| None)
    }

    /// As `from_bytes`, with `${NAME}` secrets read through `env` (the VM's environment).
    pub fn from_bytes_with_env(
        bytes: &[u8],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let (raw, secrets) = RawConfig::from_bytes(bytes, env)?;
        Self::compile(raw).map_err(|e| secrets.scrub(e))
    }

    pub fn compile(raw: RawConfig) -> Result<Self, ConfigError> {
        let defaults =
            Arc::new(policies::compile_defaults(&raw.defaults).map_err(|e| e.within("defaults"))?);
        let exact = raw.route_matching == RouteMatching::Exact;
        // Routes that name operations of the `openapi` document add to them; the others are
        // routes of their own, tried first.
        let (listed_raw, overlays): (Vec<_>, Vec<_>) = raw
            .routes
            .iter()
            .enumerate()
            .partition(|(_, r)| r.matcher.operations.is_none());
        let listed = listed_raw
            .iter()
            .enumerate()
            .map(|(position, (index, raw_route))| {
                compile_listed(&raw, position, raw_route, &defaults, exact)
                    .map_err(|e| e.within(&format!("routes[{index}]")))
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        check_metric_labels(&listed_raw, &listed)?;
        let described = match &raw.openapi {
            Some(openapi) => {
                described::routes(&raw, openapi, &overlays, &listed, &defaults, exact)?
            }
            None => {
                if let Some((index, _)) = overlays.first() {
                    return Err(ConfigError::new(
                        format!("routes[{index}].match.operations"),
                        "names operations of an `openapi` document, which the config does not have",
                    ));
                }
                Vec::new()
            }
        };
        let sets = listed_raw
            .iter()
            .zip(&listed)
            .map(|((index, _), r)| (format!("routes[{index}]"), r.policies.as_ref()))
            .chain(described.iter().map(|r| {
                (
                    format!("openapi operation `{}`", r.name),
                    r.policies.as_ref(),
                )
            }));
        let limits = distinct_limits(&defaults, sets)?;
        let routes = match raw.openapi {
            Some(_) => RouteTable::with_described(listed, described, exact),
            None => RouteTable::new(listed),
        };
        let unknown_routes = unknown_routes(&raw);
        let logging = match &raw.logging {
            Some(raw) => Logging::compile(raw).map_err(|e| e.within("logging"))?,
            None => Logging::default(),
        };
        let health = match &raw.health {
            Some(Section::On(raw)) => Some(health::compile(raw).map_err(|e| e.within("health"))?),
            _ => None,
        };
        let client_address = match &raw.client_address {
            Some(raw) => ClientAddress::compile(raw).map_err(|e| e.within("client_address"))?,
            None => ClientAddress::default(),
        };
        Ok(Self {
            client_address,
            routes,
            defaults,
            limits,
            unknown_routes,
            logging,
            health,
        })
    }
}

/// What requests no route describes get: an API description says which routes exist, so
/// with one the rest are refused unless asked (`openapi.unknown_routes` first).
fn unknown_routes(raw: &RawConfig) -> UnknownRoutes {
    let defaults = match &raw.defaults.validate {
        Some(Section::On(v)) => v.unknown_routes,
        _ => None,
    };
    match &raw.openapi {
        Some(openapi) => openapi
            .unknown_routes
            .or(defaults)
            .unwrap_or(UnknownRoutes::Reject),
        None => defaults.unwrap_or_default(),
    }
}

/// One of the config's own routes, at `position` in the table.
fn compile_listed(
    raw: &RawConfig,
    position: usize,
    raw_route: &RawRoute,
    defaults: &Arc<PolicySet>,
    exact: bool,
) -> Result<Route, ConfigError> {
    let mut route = Route::compile(
        position,
        raw_route.name.as_deref(),
        &raw_route.matcher,
        Arc::clone(defaults),
        exact,
    )?;
    let params = route.pattern.param_names();
    if let Some(policies) = policies::compile_route(&raw.defaults, &raw_route.sections(), &params)?
    {
        route.policies = Arc::new(policies);
    }
    Ok(route)
}

/// The limits of all policy sets, one per table; a name must mean the same limit everywhere
/// (it names the limit's headers and metrics).
fn distinct_limits<'s>(
    defaults: &'s PolicySet,
    routes: impl Iterator<Item = (String, &'s PolicySet)>,
) -> Result<Vec<Arc<Limit>>, ConfigError> {
    let mut distinct: Vec<Arc<Limit>> = Vec::new();
    let sets = std::iter::once(("defaults".to_string(), defaults)).chain(routes);
    for (path, set) in sets {
        for limit in set.rate_limit.iter().flat_map(|r| r.limits.iter()) {
            match distinct.iter().find(|l| l.name == limit.name) {
                Some(known) if known.table == limit.table => {}
                Some(_) => {
                    return Err(ConfigError::new(
                        format!("{path}.rate_limit"),
                        format!(
                            "limit `{}` is defined elsewhere with other settings; give this one another name",
                            limit.name
                        ),
                    ));
                }
                None => distinct.push(Arc::clone(limit)),
            }
        }
    }
    Ok(distinct)
}

#[cfg(test)]
mod tests;

/// Named routes count under their own metric label (`hardening.requests.<label>...`): two named
/// routes with the same label, or one labelled `unmatched`, would merge their counts silently.
/// Unnamed routes are labelled by their path pattern and may share it (`GET /users` and
/// `POST /users`); naming them separates their counts.
fn check_metric_labels(
    raw: &[(usize, &raw::RawRoute)],
    routes: &[Route],
) -> Result<(), ConfigError> {
    let mut seen: Vec<(String, usize)> = Vec::new();
    for ((index, route), compiled) in raw.iter().zip(routes) {
        let index = *index;
        let Some(name) = &route.name else {
            if crate::syntax::label(&compiled.name) == "unmatched" {
                return Err(ConfigError::new(
                    format!("routes[{index}]"),
                    format!(
                        "its path `{}` gives the metric name `unmatched`, which counts the requests no route matches; give the route a `name`",
                        compiled.name
                    ),
                ));
            }
            continue;
        };
        let label = crate::syntax::label(name);
        let at = |reason: String| ConfigError::new(format!("routes[{index}].name"), reason);
        if label == "unmatched" {
            return Err(at(format!(
                "`{name}`: `unmatched` counts the requests no route matches; choose another name"
            )));
        }
        if let Some((_, first)) = seen.iter().find(|(l, _)| *l == label) {
            return Err(at(format!(
                "`{name}` counts under the same metric name as routes[{first}] (`{label}`); names must differ in more than case and punctuation"
            )));
        }
        seen.push((label, index));
    }
    Ok(())
}
