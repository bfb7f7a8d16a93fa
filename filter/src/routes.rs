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

use crate::policy::PolicySet;
use crate::syntax::{ConfigError, parse_methods, path_only};

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
                .filter_map(|s| match s {
                    Segment::Param(name) => Some(name.as_str()),
                    Segment::Literal(_) => None,
                })
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
        }
    }
    parts.next().is_none().then_some(params)
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
            let pattern = compile_path(path).map_err(|reason| ConfigError::new("path", reason))?;
            Ok((pattern, path.clone()))
        }
    }
}

fn check_path_text(path: &str) -> Result<(), String> {
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

fn compile_path(path: &str) -> Result<PathPattern, String> {
    if !path.contains('{') && !path.contains('}') {
        return Ok(PathPattern::Exact(path.to_string()));
    }
    let mut segments = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for part in path.strip_prefix('/').unwrap_or(path).split('/') {
        if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            if !is_param_name(name) {
                return Err(format!(
                    "`{{{name}}}` is not a parameter name (letters, digits and `_`, not starting with a digit)"
                ));
            }
            if names.contains(&name) {
                return Err(format!("parameter `{{{name}}}` appears twice"));
            }
            names.push(name);
            segments.push(Segment::Param(name.to_string()));
        } else if part.contains('{') || part.contains('}') {
            return Err(format!(
                "segment `{part}`: a parameter must be a whole segment, like `/{{id}}`"
            ));
        } else {
            segments.push(Segment::Literal(part.to_string()));
        }
    }
    Ok(PathPattern::Template(segments))
}

fn is_param_name(name: &str) -> bool {
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

/// The compiled routes, in config order.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    pub fn new(routes: Vec<Route>) -> Self {
        Self { routes }
    }

    /// The first route that matches; `path` may carry a query string, which is ignored.
    pub fn find(&self, method: &str, path: &str) -> Option<&Route> {
        let path = path_only(path);
        self.routes.iter().find(|r| r.matches(method, path))
    }

    /// The route of a CORS preflight announcing `announced`: the first route that takes the
    /// announced method, or that lists `OPTIONS` itself (to handle preflights its own way).
    pub fn find_preflight(&self, announced: &str, path: &str) -> Option<&Route> {
        let path = path_only(path);
        self.routes.iter().find(|r| {
            r.matches_path(path)
                && (r.matches_method(announced)
                    || r.methods
                        .as_ref()
                        .is_some_and(|m| m.contains(&Method::OPTIONS)))
        })
    }

    /// The methods of the routes whose path matches (`None` when no route's does), for a 405's
    /// `Allow`; a route for every method would have matched, so it adds none.
    pub fn methods_for_path(&self, path: &str) -> Option<Vec<&str>> {
        let path = path_only(path);
        let mut matching = self
            .routes
            .iter()
            .filter(|r| r.matches_path(path))
            .peekable();
        matching.peek()?;
        Some(
            matching
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
