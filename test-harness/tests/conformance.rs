//! The JSON-Schema-Test-Suite (draft 2020-12: the required tests and optional/format) run
//! through the compiled module in the native host: each test group's schema becomes the body
//! schema of a route, each case's data is POSTed as the body; valid cases must reach the
//! upstream, invalid ones must get 400 (`invalid_body`). Every exclusion is listed with its
//! reason; the counts are printed.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use test_harness::Request;
use test_harness::host::{Harness, HarnessError, StreamOutcome};

/// The suite's draft 2020-12 tests, vendored (with its LICENSE and SOURCE_COMMIT) from the
/// copy in ../shared/conformance, so that a clone anywhere runs them.
fn suite() -> PathBuf {
    xtask::paths::root().join("test-harness/conformance/json-schema-test-suite")
}

/// Files skipped whole, and why.
const EXCLUDED_FILES: &[(&str, &str)] = &[
    (
        "refRemote.json",
        "every group refers to schemas on http://localhost:1234; the filter never fetches schemas (network and file resolution are off by design)",
    ),
    (
        "format.json",
        "these cases check that `format` is only an annotation; the filter asserts formats (as the seed's `.email()` does), which optional/format checks instead",
    ),
    (
        "vocabulary.json",
        "every group's `$schema` is a custom metaschema on http://localhost:1234 (vocabularies turned off or added); the filter never fetches metaschemas and refuses a `$schema` that is not one of the drafts it knows",
    ),
];

/// Groups skipped, and why (file, group description, reason).
const EXCLUDED_GROUPS: &[(&str, &str, &str)] = &[];

#[derive(Default, Debug)]
struct Tally {
    passed: usize,
    failed: Vec<String>,
    excluded: Vec<String>,
}

fn run_file(path: &Path, module: &Path, tally: &mut Tally) {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("?")
        .to_string();
    let groups: Vec<Value> =
        serde_json::from_str(&fs::read_to_string(path).expect("readable")).expect("json");
    if let Some((_, why)) = EXCLUDED_FILES.iter().find(|(file, _)| *file == name) {
        let cases: usize = groups
            .iter()
            .map(|g| g["tests"].as_array().map_or(0, Vec::len))
            .sum();
        tally
            .excluded
            .push(format!("{name} (all {cases} cases): {why}"));
        return;
    }
    for group in &groups {
        let description = group["description"].as_str().unwrap_or("?");
        let cases = group["tests"].as_array().cloned().unwrap_or_default();
        if let Some((_, _, why)) = EXCLUDED_GROUPS
            .iter()
            .find(|(f, d, _)| *f == name && *d == description)
        {
            tally.excluded.push(format!(
                "{name} / {description} ({} cases): {why}",
                cases.len()
            ));
            continue;
        }
        let config = json!({"routes": [{"name": "case", "match": {"path": "/case", "methods": ["POST"]}, "validate": {"body": group["schema"]}}]});
        let proxy = match Harness::load(module).config(config).start() {
            Ok(proxy) => proxy,
            // The filter refuses a schema whose `$ref` needs fetching: listed, not failed.
            Err(HarnessError::ConfigRejected { log, .. })
                if log
                    .iter()
                    .any(|l| l.contains("cannot be resolved: schemas are never fetched")) =>
            {
                tally.excluded.push(format!(
                    "{name} / {description} ({} cases): needs a remote schema; the filter refuses schemas that need fetching (network and file resolution are off by design)",
                    cases.len()
                ));
                continue;
            }
            Err(HarnessError::ConfigRejected { log, .. }) => {
                for case in &cases {
                    tally.failed.push(format!(
                        "{name} / {description} / {}: schema refused: {log:?}",
                        case["description"]
                    ));
                }
                continue;
            }
            Err(e) => panic!("{e}"),
        };
        for case in &cases {
            let body = serde_json::to_vec(&case["data"]).expect("data");
            let request = Request::post("/case")
                .header("content-type", "application/json")
                .body(body);
            let exchange = proxy.request(request).expect("request");
            let valid = case["valid"].as_bool().unwrap_or(false);
            let ok = match exchange.outcome() {
                StreamOutcome::Forwarded => valid,
                StreamOutcome::LocalReply(response) => {
                    !valid
                        && response.status == 400
                        && response.json_body()["code"] == "invalid_body"
                }
                _ => false,
            };
            if ok {
                tally.passed += 1;
            } else {
                tally.failed.push(format!(
                    "{name} / {description} / {} (valid: {valid})",
                    case["description"]
                ));
            }
        }
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("suite dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn json_schema_test_suite_draft2020_12() {
    let module = xtask::wasm::ensure(&xtask::wasm::FILTER).expect("filter builds");
    let base = suite().join("tests/draft2020-12");
    let mut results: BTreeMap<&str, Tally> = BTreeMap::new();
    for (label, dir) in [
        ("required", base.clone()),
        ("optional/format", base.join("optional/format")),
    ] {
        let tally = results.entry(label).or_default();
        for file in files(&dir) {
            run_file(&file, &module, tally);
        }
    }
    for (label, tally) in &results {
        let total = tally.passed + tally.failed.len();
        println!(
            "{label}: {} / {total} passed; excluded: {}",
            tally.passed,
            tally.excluded.len()
        );
        for excluded in &tally.excluded {
            println!("  excluded {excluded}");
        }
        for failed in &tally.failed {
            println!("  FAILED {failed}");
        }
    }
    let failed: Vec<&String> = results.values().flat_map(|t| t.failed.iter()).collect();
    assert!(
        failed.is_empty(),
        "{} cases failed: {failed:#?}",
        failed.len()
    );
    let passed: usize = results.values().map(|t| t.passed).sum();
    assert!(passed >= 1800, "only {passed} cases ran");
}

/// The same suite through the native build (`dist/libhardening.so`) in a real Envoy 1.40: one
/// Envoy whose config has a route per test group (the group's schema as its body schema), every
/// case POSTed to its group's route. A group whose schema the filter refuses (it needs a remote
/// schema) would refuse the whole config: those are found first by compiling each group alone
/// with the same core, and listed as excluded, as above.
#[test]
fn json_schema_test_suite_draft2020_12_through_the_native_build() {
    use hardening::config::Config;
    use test_harness::backend_with_journal;
    use test_harness::envoy::{Bootstrap, Build, Envoy};

    let base = suite().join("tests/draft2020-12");
    let mut routes = Vec::new();
    let mut cases: Vec<(String, Value, bool)> = Vec::new();
    let mut excluded = 0;
    for dir in [base.clone(), base.join("optional/format")] {
        for file in files(&dir) {
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("?");
            if EXCLUDED_FILES.iter().any(|(f, _)| *f == name) {
                continue;
            }
            let groups: Vec<Value> =
                serde_json::from_str(&fs::read_to_string(&file).expect("readable")).expect("json");
            for group in groups {
                let route = json!({"name": format!("g{}", routes.len()), "match": {"path": format!("/case/{}", routes.len()), "methods": ["POST"]}, "validate": {"body": group["schema"]}});
                let alone = json!({"routes": [route]}).to_string();
                if Config::from_bytes(alone.as_bytes()).is_err() {
                    excluded += 1;
                    continue;
                }
                let path = format!("/case/{}", routes.len());
                for case in group["tests"].as_array().cloned().unwrap_or_default() {
                    let valid = case["valid"].as_bool().unwrap_or(false);
                    cases.push((path.clone(), case["data"].clone(), valid));
                }
                routes.push(route);
            }
        }
    }
    let (backend, journal) = backend_with_journal();
    let mut bootstrap = Bootstrap::new(backend, json!({"routes": routes}));
    bootstrap.build = Build::Native;
    let envoy = Envoy::start(&bootstrap).expect("envoy starts with every group's schema");
    let mut failed = Vec::new();
    for (path, data, valid) in &cases {
        let before = journal.arrivals_on(path).len();
        let request = Request::post(path)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(data).expect("data"));
        let response = envoy.send(&request);
        let forwarded = journal.arrivals_on(path).len() > before;
        let ok = if *valid {
            forwarded
        } else {
            !forwarded && response.status == 400 && response.json_body()["code"] == "invalid_body"
        };
        if !ok {
            failed.push(format!(
                "{path} {data} (valid: {valid}): {}",
                response.status
            ));
        }
    }
    println!(
        "native build: {} / {} cases passed; {excluded} groups excluded (remote schemas)",
        cases.len() - failed.len(),
        cases.len()
    );
    assert!(
        failed.is_empty(),
        "{} cases failed: {failed:#?}",
        failed.len()
    );
    assert!(cases.len() >= 1800, "only {} cases ran", cases.len());
}
