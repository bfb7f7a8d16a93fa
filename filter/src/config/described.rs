//! The routes of the `openapi` document: one per operation, with the `validate` section the
//! document gives it, and the policies of the config route that names it (`match.operations`)
//! over the defaults'.

use std::sync::Arc;

use super::raw::{RawConfig, RawRoute};
use crate::openapi::{self, Operation, RawOpenApi};
use crate::policy::PolicySet;
use crate::policy::set as policies;
use crate::routes::Route;
use crate::syntax::{ConfigError, Section, label};

/// The operations as routes. `overlays`: the config routes (with their index) that name
/// operations; `listed`: the config's own routes, whose metric labels operations avoid.
pub fn routes(
    raw: &RawConfig,
    openapi: &RawOpenApi,
    overlays: &[(usize, &RawRoute)],
    listed: &[Route],
    defaults: &Arc<PolicySet>,
    exact: bool,
) -> Result<Vec<Route>, ConfigError> {
    if openapi.max_body_bytes == Some(0) {
        return Err(ConfigError::new(
            "openapi.max_body_bytes",
            "0 refuses every body; use 1 or more",
        ));
    }
    let operations = openapi::compile(openapi)?;
    let chosen = overlay_of_each(&operations, overlays)?;
    let mut labels: Vec<String> = std::iter::once("unmatched".to_string())
        .chain(listed.iter().map(|r| label(&r.name)))
        .collect();
    let mut routes = Vec::with_capacity(operations.len());
    for (mut operation, overlay) in operations.into_iter().zip(chosen) {
        let overlay = overlay.and_then(|i| raw.routes.get(i).map(|r| (i, r)));
        let policies = operation_policies(raw, &mut operation, overlay)?;
        let name = unique_name(&operation.name, &mut labels);
        routes.push(Route {
            index: 0, // the table numbers them
            name,
            pattern: operation.pattern,
            methods: Some(vec![operation.method]),
            exact,
            policies: policies.map_or_else(|| Arc::clone(defaults), Arc::new),
        });
    }
    Ok(routes)
}

/// For each operation, the config route that names it, if any (at most one may).
fn overlay_of_each(
    operations: &[Operation],
    overlays: &[(usize, &RawRoute)],
) -> Result<Vec<Option<usize>>, ConfigError> {
    let mut chosen: Vec<Option<usize>> = vec![None; operations.len()];
    for (index, route) in overlays {
        let at = |field: &str| format!("routes[{index}].match.{field}");
        let matcher = &route.matcher;
        for (field, given) in [
            ("path", matcher.path.is_some()),
            ("prefix", matcher.prefix.is_some()),
            ("methods", matcher.methods.is_some()),
            ("exact", matcher.exact.is_some()),
        ] {
            if given {
                return Err(ConfigError::new(
                    at(field),
                    "a route that names `operations` takes their paths and methods",
                ));
            }
        }
        let entries = matcher.operations.as_ref().map_or(&[][..], |o| &o.0[..]);
        for (j, entry) in entries.iter().enumerate() {
            let mut named = false;
            for (operation, slot) in operations.iter().zip(chosen.iter_mut()) {
                if !operation.is_named(entry) {
                    continue;
                }
                named = true;
                match slot {
                    Some(other) if other != index => {
                        return Err(ConfigError::new(
                            format!("routes[{index}].match.operations[{j}]"),
                            format!(
                                "operation `{}` is already named by routes[{other}]; one route adds to an operation",
                                operation.name
                            ),
                        ));
                    }
                    _ => *slot = Some(*index),
                }
            }
            if !named {
                return Err(ConfigError::new(
                    format!("routes[{index}].match.operations[{j}]"),
                    format!(
                        "`{}` names no operation of the document (write an operationId, `METHOD /path` or `/path` as the document does)",
                        crate::syntax::excerpt(entry, 120)
                    ),
                ));
            }
        }
    }
    Ok(chosen)
}

/// The operation's policies: the overlay's sections (if any) over the defaults', its
/// `validate` over the document's (taken: it is not needed once compiled).
fn operation_policies(
    raw: &RawConfig,
    operation: &mut Operation,
    overlay: Option<(usize, &RawRoute)>,
) -> Result<Option<PolicySet>, ConfigError> {
    let validate = match overlay.and_then(|(_, r)| r.validate.as_ref()) {
        None => Section::On(std::mem::take(&mut operation.validate)),
        Some(Section::Off) => Section::Off,
        Some(Section::On(own)) => Section::On(own.over(&operation.validate)),
    };
    let mut sections = overlay.map(|(_, r)| r.sections()).unwrap_or_default();
    sections.validate = Some(&validate);
    let names = operation.pattern.param_names();
    policies::compile_route(&raw.defaults, &sections, &names).map_err(|e| {
        // The document's part is named by its place in the document; the rest by the route.
        match overlay {
            Some((index, _)) if !e.path.starts_with("validate") => {
                e.within(&format!("routes[{index}]"))
            }
            _ => e.within(&format!(
                "openapi.document.paths.{}.{}",
                operation.path,
                operation.method.as_str().to_ascii_lowercase()
            )),
        }
    })
}

/// The operation's name, made distinct from every metric label so far (a `_2`... suffix).
fn unique_name(name: &str, labels: &mut Vec<String>) -> String {
    let mut candidate = name.to_string();
    let mut n = 2;
    while labels.contains(&label(&candidate)) {
        candidate = format!("{name}_{n}");
        n += 1;
    }
    labels.push(label(&candidate));
    candidate
}
