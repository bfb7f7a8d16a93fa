//! `cargo xtask layers`: the modules of `filter/src` depend on each other one way.
//!
//! Every file is parsed with `syn`; each path that starts with `crate`, `super` or `self` (in
//! `use` items, types and expressions, test code left out) is resolved to the module it names.
//! A reference from module A to module B counts between the two children of their deepest
//! common ancestor that hold them (`crate::config::raw` naming `crate::policy::cors::Raw`
//! is an edge `config -> policy`; `policy::cors::compile` naming `policy::cors::origin` is
//! `compile -> origin` inside `policy::cors`). A module and its own submodules are one unit, so
//! references between them do not count. Any cycle among the children of one module fails.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use syn::visit::Visit;

use crate::paths;

/// A module's path below the crate root, e.g. `["policy", "cors"]`.
type ModulePath = Vec<String>;

/// One reference that makes an edge, kept to explain a cycle.
#[derive(Clone, Debug)]
struct Reference {
    file: PathBuf,
    path: String,
}

#[derive(Default)]
pub struct Graph {
    modules: BTreeSet<ModulePath>,
    /// parent module -> (from child, to child) -> the references behind the edge
    edges: BTreeMap<ModulePath, BTreeMap<(String, String), Vec<Reference>>>,
}

/// Checks `filter/src`; the error lists every cycle with a reference of each edge.
pub fn check() -> crate::Result<()> {
    let src = paths::root().join("filter").join("src");
    let graph = Graph::read(&src)?;
    let cycles = graph.cycles();
    if cycles.is_empty() {
        println!(
            "xtask: layers: {} modules of filter/src, no cycle; top level in dependency order: {}",
            graph.modules.len(),
            graph.order(&[]).join(" <- ")
        );
        return Ok(());
    }
    let mut message = format!("{} import cycle(s) in filter/src:\n", cycles.len());
    for text in cycles {
        message.push_str(&text);
    }
    Err(message)
}

impl Graph {
    pub fn read(src: &Path) -> crate::Result<Graph> {
        let mut files = Vec::new();
        collect_files(src, &mut files)?;
        let mut graph = Graph::default();
        let mut parsed = Vec::new();
        for file in files {
            let Some(module) = module_of(src, &file) else {
                continue;
            };
            let text = fs::read_to_string(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let ast = syn::parse_file(&text)
                .map_err(|e| format!("cannot parse {}: {e}", file.display()))?;
            graph.modules.insert(module.clone());
            parsed.push((file, module, ast));
        }
        for (file, module, ast) in parsed {
            let mut visitor = References {
                module: module.clone(),
                found: Vec::new(),
            };
            visitor.visit_file(&ast);
            for (target, text) in visitor.found {
                graph.add(
                    &module,
                    &target,
                    Reference {
                        file: file.clone(),
                        path: text,
                    },
                );
            }
        }
        Ok(graph)
    }

    fn add(&mut self, from: &ModulePath, target: &[String], reference: Reference) {
        // The module named is the longest prefix of the path that is a module.
        let Some(to) = (0..=target.len())
            .rev()
            .map(|n| target[..n].to_vec())
            .find(|prefix| self.modules.contains(prefix))
        else {
            return;
        };
        let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
        let (Some(a), Some(b)) = (from.get(common), to.get(common)) else {
            return; // one holds the other
        };
        self.edges
            .entry(from[..common].to_vec())
            .or_default()
            .entry((a.clone(), b.clone()))
            .or_default()
            .push(reference);
    }

    /// Each cycle among the children of one module, described with one reference per edge.
    fn cycles(&self) -> Vec<String> {
        let mut found = Vec::new();
        for (parent, edges) in &self.edges {
            for component in strongly_connected(edges) {
                let at = if parent.is_empty() {
                    "crate".to_string()
                } else {
                    parent.join("::")
                };
                let mut text = format!("  in {at}: {}\n", component.join(", "));
                for ((a, b), references) in edges {
                    if component.contains(a) && component.contains(b) {
                        let first = &references[0];
                        text.push_str(&format!(
                            "    {a} -> {b}: {} names {} ({} reference(s))\n",
                            first.file.display(),
                            first.path.trim_end_matches("::self"),
                            references.len()
                        ));
                    }
                }
                found.push(text);
            }
        }
        found
    }

    /// The children of `parent`, each after the ones it depends on (acyclic graphs only).
    fn order(&self, parent: &[String]) -> Vec<String> {
        let children: BTreeSet<String> = self
            .modules
            .iter()
            .filter(|m| m.len() == parent.len() + 1 && m.starts_with(parent))
            .filter_map(|m| m.last().cloned())
            .collect();
        let empty = BTreeMap::new();
        let edges = self.edges.get(parent).unwrap_or(&empty);
        let mut placed: Vec<String> = Vec::new();
        while placed.len() < children.len() {
            let next = children.iter().find(|c| {
                !placed.contains(c)
                    && edges
                        .keys()
                        .filter(|(a, _)| a == *c)
                        .all(|(_, b)| placed.contains(b) || !children.contains(b))
            });
            match next {
                Some(c) => placed.push(c.clone()),
                None => break,
            }
        }
        placed
    }
}

pub(crate) fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) -> crate::Result<()> {
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            collect_files(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    Ok(())
}

/// `lib.rs` is the root, `a/mod.rs` and `a.rs` are `a`, `a/b.rs` is `a::b`; test files
/// (`tests.rs`, `*_tests.rs`) are left out.
fn module_of(src: &Path, file: &Path) -> Option<ModulePath> {
    let relative = file.strip_prefix(src).ok()?;
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    let last = parts.last()?.clone();
    if last == "tests" || last.ends_with("_tests") {
        return None;
    }
    if last == "mod" || (parts.len() == 1 && (last == "lib" || last == "main")) {
        parts.pop();
    }
    Some(parts)
}

struct References {
    module: ModulePath,
    found: Vec<(ModulePath, String)>,
}

impl References {
    fn resolve(&mut self, segments: &[String]) {
        let mut at: ModulePath = Vec::new();
        let mut rest = segments;
        match segments.first().map(String::as_str) {
            Some("crate") => rest = &segments[1..],
            Some("self") => {
                at = self.module.clone();
                rest = &segments[1..];
            }
            Some("super") => {
                at = self.module.clone();
                while rest.first().is_some_and(|s| s == "super") {
                    at.pop();
                    rest = &rest[1..];
                }
            }
            _ => return,
        }
        at.extend(rest.iter().cloned());
        self.found.push((at, segments.join("::")));
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(path) => {
                prefix.push(path.ident.to_string());
                self.use_tree(prefix, &path.tree);
                prefix.pop();
            }
            syn::UseTree::Name(name) => {
                prefix.push(name.ident.to_string());
                self.resolve(prefix);
                prefix.pop();
            }
            syn::UseTree::Rename(rename) => {
                prefix.push(rename.ident.to_string());
                self.resolve(prefix);
                prefix.pop();
            }
            syn::UseTree::Glob(_) => self.resolve(prefix),
            syn::UseTree::Group(group) => {
                for tree in &group.items {
                    self.use_tree(prefix, tree);
                }
            }
        }
    }
}

pub(crate) fn is_test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("cfg")
            && attr
                .parse_args::<syn::Meta>()
                .is_ok_and(|meta| meta.path().is_ident("test"))
    })
}

impl<'ast> Visit<'ast> for References {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs = match item {
            syn::Item::Mod(m) => &m.attrs,
            syn::Item::Fn(f) => &f.attrs,
            syn::Item::Use(u) => &u.attrs,
            syn::Item::Impl(i) => &i.attrs,
            _ => return syn::visit::visit_item(self, item),
        };
        if !is_test_only(attrs) {
            syn::visit::visit_item(self, item);
        }
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &item.tree);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        self.resolve(&segments);
        syn::visit::visit_path(self, path);
    }
}

/// The strongly connected components of more than one node (by mutual reachability).
fn strongly_connected(edges: &BTreeMap<(String, String), Vec<Reference>>) -> Vec<Vec<String>> {
    let nodes: BTreeSet<&String> = edges.keys().flat_map(|(a, b)| [a, b]).collect();
    let next = |n: &String| -> Vec<&String> {
        edges
            .keys()
            .filter(|(a, _)| a == n)
            .map(|(_, b)| b)
            .collect()
    };
    // Reachability is small here (tens of modules), so a plain closure test is enough.
    let reaches = |from: &String, to: &String| -> bool {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from];
        while let Some(n) = stack.pop() {
            for m in next(n) {
                if m == to {
                    return true;
                }
                if seen.insert(m) {
                    stack.push(m);
                }
            }
        }
        false
    };
    let mut components: Vec<Vec<String>> = Vec::new();
    for node in &nodes {
        if components.iter().any(|c| c.contains(node)) {
            continue;
        }
        let component: Vec<String> = nodes
            .iter()
            .filter(|other| *other == node || (reaches(node, other) && reaches(other, node)))
            .map(|n| (*n).clone())
            .collect();
        if component.len() > 1 {
            components.push(component);
        }
    }
    components
}
