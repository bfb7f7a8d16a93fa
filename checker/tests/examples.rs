//! Every example configuration of the docs and of envoy/ is valid for the JSON Schema and for
//! the filter: the configs users copy are the configs that load.

use std::path::{Path, PathBuf};

use hardening_check::check::Checker;
use hardening_check::yaml;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The ```yaml and ```json blocks of a Markdown file, with the line each starts on.
fn code_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (index, line) in markdown.lines().enumerate() {
        let fence = line.trim_start();
        match &mut current {
            None if fence == "```yaml" || fence == "```json" => {
                current = Some((index + 2, String::new()));
            }
            Some(_) if fence.starts_with("```") => blocks.extend(current.take()),
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
            None => {}
        }
    }
    blocks
}

/// Top-level fields of the filter's configuration.
const CONFIG_FIELDS: &[&str] = &[
    "defaults",
    "routes",
    "logging",
    "health",
    "route_matching",
    "client_address",
    "openapi",
];

/// Whether a block holds the filter's configuration: it is one (it has one of its fields),
/// or it holds the filter in an Envoy config or a manifest.
fn holds_config(text: &str) -> bool {
    let Ok(documents) = yaml::parse(text) else {
        return false;
    };
    documents.iter().any(|d| {
        // Any of the configuration's own fields makes it one, so that a typo next to them is
        // checked, not skipped.
        let is_config = d
            .value
            .as_object()
            .is_some_and(|object| object.keys().any(|k| CONFIG_FIELDS.contains(&k.as_str())));
        is_config
            || matches!(
                hardening_check::instances::find(&d.value),
                hardening_check::instances::Found::Instances(found) if !found.is_empty()
            )
    })
}

/// `value: { ... }`: a placeholder for "your configuration", not one.
fn is_placeholder(text: &str) -> bool {
    text.contains("{ ... }")
}

#[test]
fn every_documented_example_is_valid() {
    let checker = Checker::new().expect("the schema compiles");
    let mut checked = Vec::new();
    let mut failures = Vec::new();
    for file in [
        "README.md",
        "docs/config.md",
        "docs/deploying.md",
        "docs/operations.md",
    ] {
        let markdown = std::fs::read_to_string(root().join(file)).expect("docs are readable");
        for (line, block) in code_blocks(&markdown) {
            if !holds_config(&block) || is_placeholder(&block) {
                continue;
            }
            let report = checker.check(&block);
            if !report.passed() || report.configs.iter().any(|c| !c.schema.is_empty()) {
                failures.push(format!("{file}:{line}: {report:#?}"));
            }
            let paths: Vec<String> = report.configs.iter().map(|c| c.path.clone()).collect();
            checked.push((file.to_string(), paths));
        }
    }
    assert!(
        failures.is_empty(),
        "examples refused:\n{}",
        failures.join("\n")
    );
    // The blocks are found: the reference's section examples, the deployment manifests.
    let count = |file: &str| checked.iter().filter(|(f, _)| f == file).count();
    assert!(count("docs/config.md") >= 7, "checked: {checked:?}");
    assert!(count("docs/operations.md") >= 1, "checked: {checked:?}");
    for manifest in ["spec.pluginConfig", "spec.wasm[0].config"] {
        assert!(
            checked
                .iter()
                .any(|(_, paths)| paths.iter().any(|p| p == manifest)),
            "no {manifest} checked in the docs; checked: {checked:?}"
        );
    }
    eprintln!("{} examples checked: {checked:?}", checked.len());
}

#[test]
fn envoy_configs_are_valid() {
    let checker = Checker::new().expect("the schema compiles");
    let mut configs = 0;
    for entry in std::fs::read_dir(root().join("envoy")).expect("envoy/ is readable") {
        let path = entry.expect("an entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).expect("readable");
            let report = checker.check(&text);
            assert!(report.passed(), "{}: {report:#?}", path.display());
            assert!(
                report.configs.iter().all(|c| c.schema.is_empty()),
                "{}: {report:#?}",
                path.display()
            );
            configs += report.configs.len();
        }
    }
    assert!(configs >= 1, "no configuration of the filter under envoy/");
}
