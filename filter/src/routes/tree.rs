//! The routes of an API description (thousands of operations) as a tree of path segments,
//! so that finding one costs a walk down the path, not a scan of every route.
//!
//! OpenAPI says a concrete path is matched before a templated one ("Paths Object": `/pets/mine`
//! before `/pets/{petId}`): at each segment the literal child is tried first, then the mixed
//! segments (`{name}.json`), then the whole-segment parameter, and a branch that ends without
//! a route for the method falls back to the next one. Each node sits at one depth and is
//! reached by one path from the root, so a lookup visits every node at most once.

use super::{Piece, Segment, literal_segment_matches, mixed_params};

#[derive(Debug, Default)]
struct Node {
    /// Literal segments, sorted by their ASCII-lowercase bytes (exact comparison when exact).
    literals: Vec<(String, Node)>,
    mixed: Vec<(Vec<Piece>, Node)>,
    param: Option<Box<Node>>,
    /// The routes whose pattern ends here, by position in the table.
    routes: Vec<usize>,
}

/// Template and exact routes by path segment; every route in it matches one way (loosely, or
/// byte for byte when `exact`).
#[derive(Debug, Default)]
pub struct RouteTree {
    root: Node,
    exact: bool,
}

impl RouteTree {
    pub fn new(exact: bool) -> Self {
        Self {
            root: Node::default(),
            exact,
        }
    }

    /// Adds the route at `index` with these segments (a template written with a trailing
    /// slash matches loosely like one without, as `RouteTable`'s routes do).
    pub fn insert(&mut self, segments: &[Segment], index: usize) {
        let segments = match segments.split_last() {
            Some((Segment::Literal(last), rest))
                if !self.exact && last.is_empty() && !rest.is_empty() =>
            {
                rest
            }
            _ => segments,
        };
        let exact = self.exact;
        let mut node = &mut self.root;
        for segment in segments {
            node = match segment {
                Segment::Literal(text) => {
                    let key = if exact {
                        text.clone()
                    } else {
                        text.to_ascii_lowercase()
                    };
                    let at = match node
                        .literals
                        .binary_search_by(|(k, _)| k.as_str().cmp(&key))
                    {
                        Ok(at) => at,
                        Err(at) => {
                            node.literals.insert(at, (key, Node::default()));
                            at
                        }
                    };
                    match node.literals.get_mut(at) {
                        Some((_, child)) => child,
                        None => return,
                    }
                }
                Segment::Param(_) => node.param.get_or_insert_with(Box::default),
                Segment::Mixed(pieces) => {
                    let at = match node.mixed.iter().position(|(p, _)| same_shape(p, pieces)) {
                        Some(at) => at,
                        None => {
                            node.mixed.push((pieces.clone(), Node::default()));
                            node.mixed.len() - 1
                        }
                    };
                    match node.mixed.get_mut(at) {
                        Some((_, child)) => child,
                        None => return,
                    }
                }
            };
        }
        node.routes.push(index);
    }

    /// Calls `visit` with the routes of each pattern that matches `path` (without its query),
    /// most specific first, until it returns true.
    pub fn walk(&self, path: &str, visit: &mut dyn FnMut(&[usize]) -> bool) -> bool {
        let rest = match path.strip_prefix('/') {
            // The same segments loose matching compares: one trailing slash dropped.
            Some(rest) if !self.exact => Some(rest.strip_suffix('/').unwrap_or(rest)),
            rest => rest,
        };
        match rest {
            Some(rest) => self.walk_node(&self.root, Some(rest), visit),
            None => false,
        }
    }

    fn walk_node(
        &self,
        node: &Node,
        rest: Option<&str>,
        visit: &mut dyn FnMut(&[usize]) -> bool,
    ) -> bool {
        let Some(rest) = rest else {
            return !node.routes.is_empty() && visit(&node.routes);
        };
        let (segment, next) = match rest.split_once('/') {
            Some((segment, next)) => (segment, Some(next)),
            None => (rest, None),
        };
        if let Some(child) = self.literal_child(node, segment)
            && self.walk_node(child, next, visit)
        {
            return true;
        }
        let mut params = Vec::new();
        for (pieces, child) in &node.mixed {
            params.clear();
            if mixed_params(pieces, segment, self.exact, &mut params)
                && self.walk_node(child, next, visit)
            {
                return true;
            }
        }
        match &node.param {
            Some(child) if !segment.is_empty() => self.walk_node(child, next, visit),
            _ => false,
        }
    }

    /// The literal child a segment takes: itself, or loosely also what comes before one of
    /// its `;` (servlet `;parameters`).
    fn literal_child<'n>(&self, node: &'n Node, segment: &str) -> Option<&'n Node> {
        if node.literals.is_empty() {
            return None;
        }
        if self.exact {
            let at = node
                .literals
                .binary_search_by(|(k, _)| k.as_str().cmp(segment))
                .ok()?;
            return node.literals.get(at).map(|(_, child)| child);
        }
        let cuts =
            std::iter::once(segment.len()).chain(segment.match_indices(';').map(|(at, _)| at));
        cuts.filter_map(|cut| segment.get(..cut))
            .find_map(|key| {
                let at = node
                    .literals
                    .binary_search_by(|(k, _)| cmp_ignore_ascii_case(k, key))
                    .ok()?;
                node.literals
                    .get(at)
                    .filter(|(k, _)| literal_segment_matches(k, segment))
            })
            .map(|(_, child)| child)
    }
}

/// Two mixed segments that match the same text (their parameter names may differ).
fn same_shape(a: &[Piece], b: &[Piece]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|pair| match pair {
            (Piece::Literal(x), Piece::Literal(y)) => x == y,
            (Piece::Param(_), Piece::Param(_)) => true,
            _ => false,
        })
}

/// `lower` (already ASCII-lowercase) against `text` in any ASCII case.
fn cmp_ignore_ascii_case(lower: &str, text: &str) -> std::cmp::Ordering {
    lower
        .bytes()
        .cmp(text.bytes().map(|b| b.to_ascii_lowercase()))
}
