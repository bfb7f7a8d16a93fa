//! `hardening-check FILE...`: checks the hardening filter's configurations offline, with the
//! filter's own code; `hardening-check schema [--output FILE]` writes the config's JSON Schema.

use std::process::ExitCode;

use hardening_check::check::{Checker, ConfigReport, Report};

const HELP: &str = "\
hardening-check FILE...
    Checks each file: a filter configuration, an Envoy config (every Wasm or dynamic-module
    filter that loads hardening, listeners and per-route configs alike) or Kubernetes
    manifests (Istio WasmPlugin, Envoy Gateway EnvoyExtensionPolicy), in YAML or JSON.
    Each configuration is compiled exactly as the filter compiles it when Envoy loads it.
    Prints each error as FILE:LINE with its field path; exit status 1 on any error.
    Secrets (${NAME}) are listed as required, never read.
hardening-check schema [--output FILE]
    Prints (or writes) the configuration's JSON Schema (draft-07).
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        None | Some("-h" | "--help" | "help") => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Some("schema") => write_schema(&args[1..]),
        Some(_) => check_files(&args),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("hardening-check: {message}");
            ExitCode::from(2)
        }
    }
}

fn write_schema(args: &[String]) -> Result<bool, String> {
    let schema = hardening_check::schema::generate();
    let text = serde_json::to_string_pretty(&schema).map_err(|e| e.to_string())? + "\n";
    match args {
        [] => print!("{text}"),
        [flag, path] if flag == "--output" => {
            std::fs::write(path, text).map_err(|e| format!("cannot write {path}: {e}"))?;
        }
        _ => {
            return Err(format!(
                "unexpected arguments: {}\n\n{HELP}",
                args.join(" ")
            ));
        }
    }
    Ok(true)
}

fn check_files(files: &[String]) -> Result<bool, String> {
    let checker = Checker::new()?;
    let mut passed = true;
    for file in files {
        let report = match std::fs::read_to_string(file) {
            Ok(text) => checker.check(&text),
            Err(e) => Report {
                errors: vec![format!("cannot read it: {e}")],
                ..Report::default()
            },
        };
        print!("{}", render(file, &report));
        passed &= report.passed();
    }
    Ok(passed)
}

/// The report as lines an editor can jump to (`FILE:LINE: ...`).
fn render(file: &str, report: &Report) -> String {
    let mut out = String::new();
    for error in &report.errors {
        out.push_str(&format!("{file}: error: {error}\n"));
    }
    for config in &report.configs {
        out.push_str(&render_config(file, config));
    }
    out
}

fn render_config(file: &str, config: &ConfigReport) -> String {
    let at = |line: Option<usize>| match line {
        Some(line) => format!("{file}:{line}"),
        None => file.to_string(),
    };
    let place = if config.path.is_empty() {
        "the configuration".to_string()
    } else {
        format!("the configuration at `{}`", config.path)
    };
    let mut out = match &config.error {
        Some(error) => format!("{}: error: {}: {}\n", at(error.line), place, error.message),
        None => format!("{}: ok: {place}\n", at(config.line)),
    };
    let schema_kind = if config.error.is_some() {
        "error (schema)"
    } else {
        "note: the JSON Schema disagrees, please report it"
    };
    for finding in &config.schema {
        out.push_str(&format!(
            "{}: {schema_kind}: {}\n",
            at(finding.line),
            finding.message
        ));
    }
    for finding in &config.deferred {
        out.push_str(&format!(
            "{}: note: {}\n",
            at(finding.line),
            finding.message
        ));
    }
    for secret in &config.secrets {
        let default = if secret.has_default {
            " (or its default)"
        } else {
            ""
        };
        out.push_str(&format!(
            "{}: requires: the environment variable `{}`{default}, read when the configuration loads\n",
            at(secret.line),
            secret.name
        ));
    }
    out
}
