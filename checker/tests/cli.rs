//! The `hardening-check` binary on the demo's Envoy config (it passes) and on broken copies
//! (it fails, naming the field and the line).

use std::path::{Path, PathBuf};
use std::process::Command;

fn envoy_yaml() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../envoy/envoy.yaml")
}

/// Runs the checker on `text` written to a file; its exit code, stdout and the file's path.
fn check(name: &str, text: &str) -> (Option<i32>, String, String) {
    let dir = std::env::temp_dir().join(format!("hardening-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("written");
    let output = Command::new(env!("CARGO_BIN_EXE_hardening-check"))
        .arg(&path)
        .output()
        .expect("the checker runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output.status.code(), stdout, path.display().to_string())
}

/// The 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("`{needle}` not in the text"))
}

const FILTER_AT: &str = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[1].typed_config.config.configuration.value";

#[test]
fn the_demo_config_passes() {
    let text = std::fs::read_to_string(envoy_yaml()).expect("envoy/envoy.yaml");
    let (code, stdout, file) = check("envoy.yaml", &text);
    assert_eq!(code, Some(0), "{stdout}");
    let config_line = line_of(
        &text,
        "\"@type\": type.googleapis.com/google.protobuf.Struct",
    ) + 1;
    let secret_line = line_of(&text, "${HEALTH_TOKEN");
    assert_eq!(
        stdout,
        format!(
            "{file}:{config_line}: ok: the configuration at `{FILTER_AT}`\n\
             {file}:{secret_line}: requires: the environment variable `HEALTH_TOKEN` (or its default), read when the configuration loads\n"
        )
    );
}

#[test]
fn a_broken_copy_fails_naming_the_field_and_line() {
    let text = std::fs::read_to_string(envoy_yaml()).expect("envoy/envoy.yaml");
    let good = "match: { path: /users, methods: [POST] }";
    assert!(
        text.contains(good),
        "envoy/envoy.yaml changed: update this test"
    );
    let broken = text.replacen(good, "match: { paht: /users, methods: [POST] }", 1);
    let (code, stdout, file) = check("broken.yaml", &broken);
    assert_eq!(code, Some(1), "{stdout}");
    let line = line_of(&broken, "paht: /users");
    let first = stdout.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        format!(
            "{file}:{line}: error: the configuration at `{FILTER_AT}`: invalid configuration at \
             `routes[0].match.paht`: unknown field `paht`, expected one of `path`, `prefix`, \
             `methods`, `exact`, `operations`"
        )
    );
}

#[test]
fn json_text_errors_point_into_the_text() {
    let text = "\
static_resources:
  listeners:
    - filter_chains:
        - filters:
            - typed_config:
                http_filters:
                  - name: envoy.filters.http.wasm
                    typed_config:
                      \"@type\": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
                      config:
                        root_id: hardening
                        configuration:
                          \"@type\": type.googleapis.com/google.protobuf.StringValue
                          value: |
                            {
                              \"defaults\": {
                                \"rate_limit\": {\"limit\": 0, \"window\": \"1m\"}
                              }
                            }
";
    let (code, stdout, file) = check("text.yaml", text);
    assert_eq!(code, Some(1), "{stdout}");
    let line = line_of(text, "\"rate_limit\"");
    let first = stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("{file}:{line}: error: "))
            && first.ends_with(
                "invalid configuration at `defaults.rate_limit.limit`: must be at least 1"
            ),
        "{stdout}"
    );
}

#[test]
fn manifests_are_checked_and_unknown_files_refused() {
    let plugin = "\
apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: { name: hardening }
spec:
  url: oci://registry.example.com/hardening:0.1.0
  pluginConfig:
    logging: { level: loud }
---
# An empty document (a trailing separator) holds nothing, and is no error.
";
    let (code, stdout, file) = check("plugin.yaml", plugin);
    assert_eq!(code, Some(1), "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.starts_with(&format!(
            "{file}:7: error: the configuration at `spec.pluginConfig`: invalid configuration at `logging.level`: unknown variant `loud`"
        )),
        "{stdout}"
    );
    let (code, stdout, file) = check("other.yaml", "apiVersion: v1\nkind: ConfigMap\n");
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.starts_with(&format!(
            "{file}: error: no configuration of the `hardening` filter found"
        )),
        "{stdout}"
    );
}

#[test]
fn a_json_file_is_read_as_json_text_with_its_lines() {
    // As a StringValue holds it: numbers as written (a decimal bound is a number).
    let text = "{\"routes\": [{\"match\": {\"path\": \"/x\"},\n  \"validate\": {\"body\": {\"type\": \"number\", \"minimum\": 0.5}}}],\n \"logging\": {\"level\": \"loud\"}}\n";
    let (code, stdout, file) = check("config.json", text);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.starts_with(&format!(
            "{file}:3: error: the configuration: invalid configuration at `logging.level`: unknown variant `loud`"
        )),
        "{stdout}"
    );
}
