//! Functions longer than [`MAX_LINES`] lines (from `fn` to the closing brace, as a reader sees
//! them, comments and blank lines included) in `filter/src` and `test-harness/src`, test code
//! left out. A few are allowed by name, each with its reason.

use std::fs;
use std::path::{Path, PathBuf};

use syn::spanned::Spanned;
use syn::visit::Visit;

use crate::paths;

pub const MAX_LINES: usize = 80;

/// `(file suffix, function name, why it stays long)`.
const ALLOWED: &[(&str, &str, &str)] = &[];

pub struct LongFunction {
    pub file: PathBuf,
    pub name: String,
    pub lines: usize,
}

/// Fails with every function over the limit that is not allowed.
pub fn check() -> crate::Result<()> {
    let root = paths::root();
    let mut long = Vec::new();
    for dir in ["filter/src", "test-harness/src"] {
        long.extend(find(&root.join(dir))?);
    }
    let (allowed, refused): (Vec<_>, Vec<_>) = long.into_iter().partition(|f| {
        ALLOWED
            .iter()
            .any(|(file, name, _)| f.file.ends_with(file) && f.name == *name)
    });
    for f in &allowed {
        println!(
            "xtask: allowed long function {} in {} ({} lines)",
            f.name,
            f.file.display(),
            f.lines
        );
    }
    if refused.is_empty() {
        println!("xtask: no function over {MAX_LINES} lines in filter/src and test-harness/src");
        return Ok(());
    }
    let mut message = format!("{} function(s) over {MAX_LINES} lines:\n", refused.len());
    for f in refused {
        message.push_str(&format!(
            "  {} in {}: {} lines\n",
            f.name,
            f.file.display(),
            f.lines
        ));
    }
    Err(message)
}

pub fn find(dir: &Path) -> crate::Result<Vec<LongFunction>> {
    let mut files = Vec::new();
    crate::layers::collect_files(dir, &mut files)?;
    let mut long = Vec::new();
    for file in files {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        if name.is_some_and(|n| n == "tests.rs" || n.ends_with("_tests.rs")) {
            continue;
        }
        let text = fs::read_to_string(&file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let ast =
            syn::parse_file(&text).map_err(|e| format!("cannot parse {}: {e}", file.display()))?;
        let mut visitor = Lengths {
            file: &file,
            long: &mut long,
        };
        visitor.visit_file(&ast);
    }
    Ok(long)
}

struct Lengths<'a> {
    file: &'a Path,
    long: &'a mut Vec<LongFunction>,
}

impl Lengths<'_> {
    fn measure(&mut self, name: String, span: proc_macro2::Span) {
        let lines = span.end().line + 1 - span.start().line;
        if lines > MAX_LINES {
            self.long.push(LongFunction {
                file: self.file.to_path_buf(),
                name,
                lines,
            });
        }
    }
}

impl<'ast> Visit<'ast> for Lengths<'_> {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if !crate::layers::is_test_only(&item.attrs) {
            syn::visit::visit_item_mod(self, item);
        }
    }

    fn visit_item_fn(&mut self, item: &'ast syn::ItemFn) {
        if crate::layers::is_test_only(&item.attrs) {
            return;
        }
        // From `fn` (after doc comments and attributes) to the closing brace.
        let start = item.sig.fn_token.span;
        let span = start.join(item.block.span()).unwrap_or(item.block.span());
        self.measure(item.sig.ident.to_string(), span);
        syn::visit::visit_item_fn(self, item);
    }

    fn visit_impl_item_fn(&mut self, item: &'ast syn::ImplItemFn) {
        let start = item.sig.fn_token.span;
        let span = start.join(item.block.span()).unwrap_or(item.block.span());
        self.measure(item.sig.ident.to_string(), span);
        syn::visit::visit_impl_item_fn(self, item);
    }

    fn visit_expr_closure(&mut self, closure: &'ast syn::ExprClosure) {
        self.measure("a closure".to_string(), closure.span());
        syn::visit::visit_expr_closure(self, closure);
    }
}
