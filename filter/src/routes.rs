//! Route matching: which configured route a request belongs to. Compiled once per config;
//! matching a request allocates nothing.
//!
//! Matching is loose by default, because a policy must cover every path the backend routes
//! to the same handler: Express (and many frameworks) ignore ASCII case and one trailing slash,
//! and servlet containers drop `;parameters` from a segment. So `/Users/`, `/USERS` and
//! `/users;x` all get the route of `/users`. A template parameter's value is kept whole
//! (`/users/1;x` gives `id` = `1;x`), so its checks see what the backend may see. Exact matching
//! (byte for byte) is a per-route or global choice.

use std::sync::Arc;

use http::Method;

use serde::Deserialize;

mod tree;

pub use tree::RouteTree;

use crate::policy::PolicySet;
use crate::syntax::{ConfigError, OneOrMany, parse_methods, path_only};

/// How a route's path is matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathPattern {
    /// The whole path, byte for byte.
    Exact(String),
    /// Any path that starts with these bytes (Envoy's `prefix` semantics: `/api` also matches
    /// `/apix`; write `/api/` to mean the directory).
    Prefix(String),
    /// `/`-separated segments where `{name}` matches exactly one non-empty segment.
    Template(Vec<Segment>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Param(String),
    /// Literal text and parameters in one segment (`{base}...{head}`, `{name}.json`): a
    /// parameter takes the shortest non-empty text up to the literal after it, or the rest.
    Mixed(Vec<Piece>),
}

/// A part of a mixed segment; two parameters are never next to each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Literal(String),
    Param(String),
}

/// A configured route, compiled.
#[derive(Debug)]
pub struct Route {
    /// Position in the config; stable identity for per-route state.
    pub index: usize,
    /// For logs and metrics: the configured name, else the path pattern as written.
    pub name: String,
    pub pattern: PathPattern,
    /// `None` means every method.
    pub methods: Option<Vec<Method>>,
    /// Byte-for-byte path matching instead of the loose default.
    pub exact: bool,
    /// The policies of requests on this route.
    pub policies: Arc<PolicySet>,
}

/// How a route's path is compared with a request's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum RouteMatching {
    /// ASCII case ignored, one trailing slash optional, `;parameters` ignored in literal
    /// segments: every variant a common framework routes to the same handler.
    #[default]
    Loose,
    /// Byte for byte.
    Exact,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawMatch {
    /// An exact path (`/users`) or a template with `{name}` segments (`/users/{id}`).
    #[serde(default)]
    pub path: Option<String>,
    /// A path prefix (`/api/`).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Methods this route applies to; absent means every method.
    #[serde(default)]
    pub methods: Option<Vec<String>>,
    /// `true`: the path matches byte for byte; `false`: loosely; absent: the top-level
    /// `route_matching`.
    #[serde(default)]
    pub exact: Option<bool>,
    /// Operations of the `openapi` document this route's policies apply to (`operationId`,
    /// `METHOD /path` or `/path` as the document writes them), instead of a path.
    #[serde(default)]
    pub operations: Option<OneOrMany>,
}

impl Route {
    /// `exact_by_default`: the top-level `route_matching` is `exact`.
    pub fn compile(
        index: usize,
        name: Option<&str>,
        matcher: &RawMatch,
        policies: Arc<PolicySet>,
        exact_by_default: bool,
    ) -> Result<Self, ConfigError> {
        let (pattern, written) = compile_match(matcher).map_err(|e| e.within("match"))?;
        let methods = match &matcher.methods {
            None => None,
            Some(list) => Some(compile_methods(list).map_err(|e| e.within("match"))?),
        };
        let name = match name {
            Some(name) if name.trim().is_empty() => {
                return Err(ConfigError::new("name", "must not be empty"));
            }
            Some(name) => name.to_string(),
            None => written,
        };
        Ok(Self {
            index,
            name,
            pattern,
            methods,
            exact: matcher.exact.unwrap_or(exact_by_default),
            policies,
        })
    }

    /// Whether this route applies to the request's method and path (the path without its
    /// query string).
    pub fn matches(&self, method: &str, path: &str) -> bool {
        self.matches_method(method) && self.matches_path(path)
    }

    /// Whether the path (without its query string) is this route's, loosely or exactly.
    pub fn matches_path(&self, path: &str) -> bool {
        self.pattern.matches(path, self.exact)
    }

    /// The values of the template's `{name}` segments in `path`, in template order; empty for
    /// exact and prefix patterns, `None` when the path is not this route's.
    pub fn params<'p>(&'p self, path: &'p str) -> Option<Vec<(&'p str, &'p str)>> {
        self.pattern.params(path, self.exact)
    }

    /// A route listing `GET` also takes `HEAD`: servers answer HEAD as GET without its body
    /// (RFC 9110 §9.3.2; Express, Flask and most frameworks do it for every GET handler), so
    /// a HEAD must meet the GET route's limits and checks, not slip past them.
    pub fn matches_method(&self, method: &str) -> bool {
        match &self.methods {
            None => true,
            Some(methods) => methods
                .iter()
                .any(|m| m.as_str() == method || (method == "HEAD" && *m == Method::GET)),
        }
    }

    /// The methods a route takes, as `Allow` lists them (`HEAD` with `GET`); `None`: any.
    pub fn allowed_methods(&self) -> Option<impl Iterator<Item = &str>> {
        let methods = self.methods.as_ref()?;
        let head =
            (methods.contains(&Method::GET) && !methods.contains(&Method::HEAD)).then_some("HEAD");
        Some(methods.iter().map(Method::as_str).chain(head))
    }
}

impl PathPattern {
    /// The names of a template's `{name}` segments, in order (none for exact and prefix).
    pub fn param_names(&self) -> Vec<&str> {
        match self {
            Self::Template(segments) => segments
                .iter()
                .flat_map(|s| match s {
                    Segment::Param(name) => std::slice::from_ref(name).iter().collect(),
                    Segment::Literal(_) => Vec::new(),
                    Segment::Mixed(pieces) => pieces
                        .iter()
                        .filter_map(|p| match p {
                            Piece::Param(name) => Some(name),
                            Piece::Literal(_) => None,
                        })
                        .collect(),
                })
                .map(String::as_str)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Whether `path` matches: byte for byte when `exact`, else loosely (see the module).
    pub fn matches(&self, path: &str, exact: bool) -> bool {
        match self {
            Self::Exact(pattern) if exact => path == pattern,
            Self::Exact(pattern) => literal_path_matches(pattern, path),
            Self::Prefix(prefix) if exact => path.starts_with(prefix.as_str()),
            Self::Prefix(prefix) => loose_prefix_matches(prefix, path),
            Self::Template(segments) => template_params(segments, path, exact).is_some(),
        }
    }

    /// The values of the template's `{name}` segments in `path`, in template order; empty
    /// for exact and prefix patterns, `None` when the path does not match.
    pub fn params<'p>(&'p self, path: &'p str, exact: bool) -> Option<Vec<(&'p str, &'p str)>> {
        match self {
            Self::Template(segments) => template_params(segments, path, exact),
            _ => self.matches(path, exact).then(Vec::new),
        }
    }
}

/// The path's segments as loose matching compares them: one trailing slash dropped (the
/// root `/` is one empty segment).
fn loose_segments(path: &str) -> Option<std::str::Split<'_, char>> {
    let rest = path.strip_prefix('/')?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    Some(rest.split('/'))
}

/// A path segment against a literal one, loosely: ASCII case ignored, and a `;parameters`
/// suffix of the path's segment ignored.
/// The segment is the literal, or the literal followed by `;params`. Comparing the literal
/// against the whole segment's start (not against the segment cut at its first `;`) keeps a
/// literal that itself holds `;` (`/legacy;v=1`) matching its own path.
fn literal_segment_matches(literal: &str, segment: &str) -> bool {
    let split = literal.len();
    let (Some(start), Some(rest)) = (segment.get(..split), segment.get(split..)) else {
        return false;
    };
    start.eq_ignore_ascii_case(literal) && (rest.is_empty() || rest.starts_with(';'))
}

fn literal_path_matches(pattern: &str, path: &str) -> bool {
    let (Some(mut wanted), Some(mut parts)) = (loose_segments(pattern), loose_segments(path))
    else {
        return false;
    };
    loop {
        match (wanted.next(), parts.next()) {
            (None, None) => return true,
            (Some(literal), Some(part)) if literal_segment_matches(literal, part) => {}
            _ => return false,
        }
    }
}

/// Envoy's prefix semantics, loosely: the prefix's last segment may be a partial one (`/api`
/// takes `/apix`), the others are whole segments compared loosely; a prefix ending in `/`
/// also takes the path without it (`/api/` takes `/api`).
fn loose_prefix_matches(prefix: &str, path: &str) -> bool {
    let (Some(wanted), Some(rest)) = (prefix.strip_prefix('/'), path.strip_prefix('/')) else {
        return false;
    };
    let mut wanted = wanted.split('/').peekable();
    let mut parts = rest.split('/');
    while let Some(literal) = wanted.next() {
        let last = wanted.peek().is_none();
        let Some(part) = parts.next() else {
            // The path ended where the prefix has only its trailing slash left.
            return last && literal.is_empty();
        };
        if last {
            // A partial segment: `/api` takes `/apix` and `/api;v=2`, and a prefix whose last
            // segment holds `;` takes its own path.
            return part
                .get(..literal.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(literal));
        }
        if !literal_segment_matches(literal, part) {
            return false;
        }
    }
    true
}

fn template_params<'p>(
    segments: &'p [Segment],
    path: &'p str,
    exact: bool,
) -> Option<Vec<(&'p str, &'p str)>> {
    let (segments, mut parts) = if exact {
        (segments, path.strip_prefix('/')?.split('/'))
    } else {
        // A template written with a trailing slash matches loosely like one without.
        let segments = match segments.split_last() {
            Some((Segment::Literal(last), rest)) if last.is_empty() && !rest.is_empty() => rest,
            _ => segments,
        };
        (segments, loose_segments(path)?)
    };
    let mut params = Vec::new();
    for segment in segments {
        let part = parts.next()?;
        match segment {
            Segment::Literal(literal) if exact => {
                if part != literal {
                    return None;
                }
            }
            Segment::Literal(literal) => {
                if !literal_segment_matches(literal, part) {
                    return None;
                }
            }
            Segment::Param(name) => {
                if part.is_empty() {
                    return None;
                }
                params.push((name.as_str(), part));
            }
            Segment::Mixed(pieces) => {
                if !mixed_params(pieces, part, exact, &mut params) {
                    return None;
                }
            }
        }
    }
    parts.next().is_none().then_some(params)
}

/// A mixed segment against a path segment; its parameters' values go to `params`. A literal
/// that ends the segment is found at its end (`{name}.json` takes `a.json.json` as
/// `a.json`); one between parameters at its first place after a non-empty value.
pub(crate) fn mixed_params<'p>(
    pieces: &'p [Piece],
    segment: &'p str,
    exact: bool,
    params: &mut Vec<(&'p str, &'p str)>,
) -> bool {
    let mut rest = segment;
    for (at, piece) in pieces.iter().enumerate() {
        match piece {
            Piece::Literal(literal) => match strip_literal(rest, literal, exact) {
                Some(after) => rest = after,
                None => return false,
            },
            Piece::Param(name) => {
                let end = match (pieces.get(at + 1), at + 2 == pieces.len()) {
                    (Some(Piece::Literal(last)), true) => {
                        rest.len().checked_sub(last.len()).filter(|e| {
                            rest.get(*e..).and_then(|t| strip_literal(t, last, exact)) == Some("")
                        })
                    }
                    (Some(Piece::Literal(next)), false) => find_literal(rest, next, exact),
                    _ => Some(rest.len()),
                };
                let Some((value, after)) = end
                    .filter(|e| *e > 0)
                    .and_then(|e| rest.split_at_checked(e))
                else {
                    return false;
                };
                params.push((name.as_str(), value));
                rest = after;
            }
        }
    }
    rest.is_empty()
}

/// `text` after `literal` at its start (ASCII case ignored unless `exact`).
fn strip_literal<'t>(text: &'t str, literal: &str, exact: bool) -> Option<&'t str> {
    let start = text.get(..literal.len())?;
    let same = if exact {
        start == literal
    } else {
        start.eq_ignore_ascii_case(literal)
    };
    same.then(|| text.get(literal.len()..)).flatten()
}

/// Where `literal` first appears in `text` after at least one byte.
fn find_literal(text: &str, literal: &str, exact: bool) -> Option<usize> {
    (1..text.len()).find(|at| {
        text.get(*at..)
            .and_then(|rest| strip_literal(rest, literal, exact))
            .is_some()
    })
}

/// Returns the pattern and the text it was written as (the route's default name).
fn compile_match(raw: &RawMatch) -> Result<(PathPattern, String), ConfigError> {
    match (&raw.path, &raw.prefix) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            "",
            "set either `path` or `prefix`, not both",
        )),
        (None, None) => Err(ConfigError::new(
            "",
            "needs `path` (exact or a template such as /users/{id}) or `prefix`",
        )),
        (None, Some(prefix)) => {
            check_path_text(prefix).map_err(|reason| ConfigError::new("prefix", reason))?;
            if prefix.contains('{') || prefix.contains('}') {
                return Err(ConfigError::new(
                    "prefix",
                    "a prefix cannot contain `{` or `}`; use `path` for templates",
                ));
            }
            Ok((PathPattern::Prefix(prefix.clone()), format!("{prefix}*")))
        }
        (Some(path), None) => {
            check_path_text(path).map_err(|reason| ConfigError::new("path", reason))?;
            let pattern = compile_path(path, ParamNames::Identifiers)
                .map_err(|reason| ConfigError::new("path", reason))?;
            Ok((pattern, path.clone()))
        }
    }
}

pub(crate) fn check_path_text(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("`{path}` must start with `/`"));
    }
    if let Some(c) = path
        .chars()
        .find(|c| *c == '?' || *c == '#' || c.is_ascii_whitespace() || c.is_ascii_control())
    {
        return Err(format!(
            "`{path}` contains {c:?}; a path pattern cannot hold a query, fragment, space or control character"
        ));
    }
    if !path.is_ascii() {
        return Err(format!(
            "`{path}` contains non-ASCII characters; write them percent-encoded as they arrive on the wire"
        ));
    }
    Ok(())
}

/// Which parameter names a template may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamNames {
    /// Letters, digits and `_`, not starting with a digit (the config's own routes).
    Identifiers,
    /// Any text without `{`, `}` or `/` (OpenAPI allows any name: `{serviceHealth-id}`).
    Any,
}

/// A path as a pattern: exact without `{`, else a template.
pub fn compile_path(path: &str, rule: ParamNames) -> Result<PathPattern, String> {
    if !path.contains('{') && !path.contains('}') {
        return Ok(PathPattern::Exact(path.to_string()));
    }
    let mut segments = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for part in path.strip_prefix('/').unwrap_or(path).split('/') {
        let pieces = pieces(part, rule)?;
        for piece in &pieces {
            if let Piece::Param(name) = piece {
                if names.contains(name) {
                    return Err(format!("parameter `{{{name}}}` appears twice"));
                }
                names.push(name.clone());
            }
        }
        segments.push(match <[Piece; 1]>::try_from(pieces) {
            Ok([Piece::Literal(text)]) => Segment::Literal(text),
            Ok([Piece::Param(name)]) => Segment::Param(name),
            Err(pieces) if pieces.is_empty() => Segment::Literal(String::new()),
            Err(pieces) => Segment::Mixed(pieces),
        });
    }
    Ok(PathPattern::Template(segments))
}

/// One segment's literal text and `{name}` parameters, in order.
fn pieces(part: &str, rule: ParamNames) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut rest = part;
    while !rest.is_empty() {
        let Some(open) = rest.find(['{', '}']) else {
            pieces.push(Piece::Literal(rest.to_string()));
            break;
        };
        let (literal, from_brace) = rest.split_at(open);
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal.to_string()));
        }
        let Some((name, after)) = from_brace
            .strip_prefix('{')
            .and_then(|inner| inner.split_once('}'))
        else {
            return Err(format!("segment `{part}`: unbalanced `{{` or `}}`"));
        };
        if !is_param_name(name, rule) {
            return Err(match rule {
                ParamNames::Identifiers => format!(
                    "`{{{name}}}` is not a parameter name (letters, digits and `_`, not starting with a digit)"
                ),
                ParamNames::Any => format!("`{{{name}}}` is not a parameter name"),
            });
        }
        if matches!(pieces.last(), Some(Piece::Param(_))) {
            return Err(format!(
                "segment `{part}`: two parameters need literal text between them"
            ));
        }
        pieces.push(Piece::Param(name.to_string()));
        rest = after;
    }
    Ok(pieces)
}

fn is_param_name(name: &str, rule: ParamNames) -> bool {
    if rule == ParamNames::Any {
        return !name.is_empty() && !name.contains(['{', '}', '/']);
    }
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn compile_methods(list: &[String]) -> Result<Vec<Method>, ConfigError> {
    if list.is_empty() {
        return Err(ConfigError::new(
            "methods",
            "an empty list matches nothing; leave `methods` out to match every method",
        ));
    }
    parse_methods(list).map_err(|e| e.within("methods"))
}

/// The compiled routes: the config's own, tried first in config order, then those of an API
/// description, found through a [`RouteTree`] by specificity. `Route::index` is the position.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
    /// How many of `routes` are the config's own (the rest are in `tree`).
    listed: usize,
    tree: Option<RouteTree>,
}

impl RouteTable {
    pub fn new(routes: Vec<Route>) -> Self {
        Self {
            listed: routes.len(),
            routes,
            tree: None,
        }
    }

    /// `listed` routes tried in order, then `described` ones (template or exact patterns)
    /// by specificity, matched loosely or byte for byte as `exact` says. Indexes are
    /// renumbered to positions.
    pub fn with_described(listed: Vec<Route>, described: Vec<Route>, exact: bool) -> Self {
        let mut tree = RouteTree::new(exact);
        let count = listed.len();
        let mut routes = listed;
        for (offset, mut route) in described.into_iter().enumerate() {
            route.index = count + offset;
            route.exact = exact;
            match &route.pattern {
                PathPattern::Template(segments) => tree.insert(segments, route.index),
                PathPattern::Exact(path) => {
                    let segments: Vec<Segment> = path
                        .strip_prefix('/')
                        .unwrap_or(path)
                        .split('/')
                        .map(|s| Segment::Literal(s.to_string()))
                        .collect();
                    tree.insert(&segments, route.index);
                }
                // Described routes are never prefixes; one would still match, listed.
                PathPattern::Prefix(_) => {}
            }
            routes.push(route);
        }
        Self {
            routes,
            listed: count,
            tree: Some(tree),
        }
    }

    /// The route at `index` (its position).
    pub fn get(&self, index: usize) -> Option<&Route> {
        self.routes.get(index)
    }

    fn listed(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter().take(self.listed)
    }

    /// The first described route (by specificity) whose path matches and that `takes`; among
    /// the routes of one path, one that lists `method` itself first (a document's `head`
    /// operation before the `get` that also takes HEAD).
    fn described(
        &self,
        path: &str,
        method: &str,
        takes: impl Fn(&Route) -> bool,
    ) -> Option<&Route> {
        let tree = self.tree.as_ref()?;
        let mut found = None;
        tree.walk(path, &mut |indexes| {
            let routes = || indexes.iter().filter_map(|i| self.routes.get(*i));
            let lists = |r: &&Route| {
                r.methods
                    .as_ref()
                    .is_some_and(|m| m.iter().any(|m| m.as_str() == method))
            };
            found = routes().find(lists).or_else(|| routes().find(|r| takes(r)));
            found.is_some()
        });
        found
    }

    /// The first route that matches; `path` may carry a query string, which is ignored.
    pub fn find(&self, method: &str, path: &str) -> Option<&Route> {
        let path = path_only(path);
        self.listed()
            .find(|r| r.matches(method, path))
            .or_else(|| self.described(path, method, |r| r.matches_method(method)))
    }

    /// The route of a CORS preflight announcing `announced`: the first route that takes the
    /// announced method, or that lists `OPTIONS` itself (to handle preflights its own way).
    pub fn find_preflight(&self, announced: &str, path: &str) -> Option<&Route> {
        let path = path_only(path);
        let takes = |r: &Route| {
            r.matches_method(announced)
                || r.methods
                    .as_ref()
                    .is_some_and(|m| m.contains(&Method::OPTIONS))
        };
        self.listed()
            .find(|r| r.matches_path(path) && takes(r))
            .or_else(|| self.described(path, announced, takes))
    }

    /// The methods of the routes whose path matches (`None` when no route's does), for a 405's
    /// `Allow`; a route for every method would have matched, so it adds none.
    pub fn methods_for_path(&self, path: &str) -> Option<Vec<&str>> {
        let path = path_only(path);
        let mut matching: Vec<&Route> = self.listed().filter(|r| r.matches_path(path)).collect();
        if let Some(tree) = &self.tree {
            tree.walk(path, &mut |indexes| {
                matching.extend(indexes.iter().filter_map(|i| self.routes.get(*i)));
                false
            });
        }
        if matching.is_empty() {
            return None;
        }
        Some(
            matching
                .into_iter()
                .filter_map(Route::allowed_methods)
                .flatten()
                .collect(),
        )
    }

    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

#[cfg(test)]
mod tests;
