//! Secrets are required, never read: a stand-in takes each one's place, and a field whose
//! secret the filter checks is set aside (a note says so) rather than refused.

use hardening_check::check::{Checker, Report};

fn check(yaml: &str) -> Report {
    Checker::new().expect("the schema compiles").check(yaml)
}

fn notes_of(report: &Report) -> Vec<(String, String)> {
    report.configs[0]
        .deferred
        .iter()
        .map(|d| (d.path.clone(), d.message.clone()))
        .collect()
}

#[test]
fn a_secret_in_free_text_needs_no_note() {
    let report = check(
        "health:\n  checks:\n    db:\n      cluster: db\n      headers: { authorization: \"Bearer ${TOKEN}\" }\n",
    );
    assert!(report.passed(), "{report:#?}");
    assert!(notes_of(&report).is_empty(), "{report:#?}");
    let secret = &report.configs[0].secrets[0];
    assert_eq!(
        (secret.name.as_str(), secret.line, secret.has_default),
        ("TOKEN", Some(5), false)
    );
}

#[test]
fn a_checked_secret_is_set_aside_and_the_rest_checked() {
    let report = check("logging: { level: \"${LOG_LEVEL}\" }\nroutes:\n  - match: { paht: /x }\n");
    assert!(!report.passed());
    let error = report.configs[0].error.as_ref().expect("an error");
    assert_eq!(
        (error.path.as_str(), error.line),
        ("routes[0].match.paht", Some(3))
    );
    let notes = notes_of(&report);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].0, "logging.level");
    assert!(
        notes[0].1.starts_with("at `logging.level`: a secret, checked when Envoy loads the configuration with its value (with a stand-in: unknown variant `${LOG_LEVEL}`"),
        "{notes:?}"
    );
    // The schema's finding on the same field is the secret's, not a mistake.
    assert!(
        report.configs[0]
            .schema
            .iter()
            .all(|f| f.path != "logging.level"),
        "{report:#?}"
    );
}

#[test]
fn a_required_field_or_a_list_item_stops_the_check_there_without_an_error() {
    // Set aside, `window` would be missing: the check stops, the config is not refused.
    let report = check("defaults:\n  rate_limit: { limit: 5, window: \"${WINDOW}\" }\n");
    assert!(report.passed(), "{report:#?}");
    let notes = notes_of(&report);
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(
        notes[1]
            .1
            .contains("needs a secret set aside above: checking stopped here")
    );
    // An origin in a list: removing it would renumber the others.
    let report =
        check("defaults:\n  cors: { allow_origins: [\"https://a.example\", \"${ORIGIN}\"] }\n");
    assert!(report.passed(), "{report:#?}");
    let notes = notes_of(&report);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0].0, "defaults.cors.allow_origins[1]");
    assert!(notes[0].1.contains("checking stopped here"), "{notes:?}");
}

#[test]
fn secret_names_are_matched_whole() {
    let report = check(
        "health:\n  checks:\n    a: { cluster: a, headers: { x-key: \"${API_KEY}\" } }\n    b: { cluster: b, headers: { x-api: \"${API:-none}\" } }\n",
    );
    let secrets: Vec<_> = report.configs[0]
        .secrets
        .iter()
        .map(|s| (s.name.as_str(), s.line, s.has_default))
        .collect();
    assert_eq!(
        secrets,
        vec![("API_KEY", Some(3), false), ("API", Some(4), true)]
    );
}
