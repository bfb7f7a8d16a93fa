//! Loading a VM's engine from the plugin configuration: secrets looked up, errors said in one
//! line, shared state created only when rate limits need it, and once for all VMs.

use serde_json::json;

use super::Engine;
use crate::environment::MemorySharedData;

fn load(config: &serde_json::Value, shared: &MemorySharedData) -> Result<Engine, String> {
    let lookup = |name: &str| (name == "HEALTH_TOKEN").then(|| "s3cret".to_string());
    Engine::load(config.to_string().as_bytes(), &lookup, shared, || {
        Ok([7; 16])
    })
}

#[test]
fn secrets_are_looked_up_and_shared_state_created_only_for_rate_limits() {
    let shared = MemorySharedData::default();
    let config = json!({"health": {"checks": {"db": {"cluster": "db",
        "headers": {"authorization": "Bearer ${HEALTH_TOKEN}"}}}}});
    let engine = load(&config, &shared).expect("loads");
    let check = &engine.health().expect("health").checks[0];
    assert!(
        check
            .headers
            .contains(&("authorization".into(), "Bearer s3cret".into()))
    );
    assert!(shared.is_empty(), "no rate limits, no shared state");

    let limited = json!({"defaults": {"rate_limit": {"limit": 1, "window": "1s", "slots": 8}}});
    load(&limited, &shared).expect("loads");
    let created = shared.len();
    assert!(created > 0, "the secret and the table");
    // Another VM finds them made.
    load(&limited, &shared).expect("loads");
    assert_eq!(shared.len(), created);
}

#[test]
fn a_refused_config_says_why_in_one_line() {
    let shared = MemorySharedData::default();
    let error = load(&json!({"rotues": []}), &shared).expect_err("refused");
    assert!(
        error.starts_with("invalid configuration at `rotues`"),
        "{error}"
    );
    let missing = json!({"health": {"checks": {"db": {"cluster": "db",
        "headers": {"authorization": "${OTHER_TOKEN}"}}}}});
    let error = load(&missing, &shared).expect_err("refused");
    assert!(error.contains("OTHER_TOKEN"), "{error}");
    assert!(!error.contains('\n'), "{error}");
}
