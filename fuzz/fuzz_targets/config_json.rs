//! The configuration as JSON text (a `StringValue`), with `${NAME}` secrets from an
//! environment: never a panic, never a secret's value in an error, and an accepted config
//! serves a few ordinary exchanges with every invariant of `drive`.

#![no_main]

use hardening::config::Config;
use libfuzzer_sys::fuzz_target;

/// What `${NAME}` reads: names starting with `MISSING` are not set, those starting with `Q`
/// get a value that JSON escapes, the others a plain one. Two sets of values, so that a value
/// the config itself spells out (the error may quote the config) is told from one the error
/// took from the environment.
fn lookup(name: &str, which: usize) -> Option<String> {
    const PLAIN: [&str; 2] = ["Zq9xHunter2Value", "Wk4vTiger7Secret"];
    const QUOTED: [&str; 2] = ["Zq9x\"Hunter\\2", "Wk4v\"Tiger\\7"];
    if name.starts_with("MISSING") {
        None
    } else if name.starts_with('Q') {
        Some(QUOTED[which].to_string())
    } else {
        Some(PLAIN[which].to_string())
    }
}

fuzz_target!(|data: &[u8]| {
    match Config::from_bytes_with_env(data, &|name| lookup(name, 0)) {
        Ok(config) => {
            if let Some((engine, env)) = hardening_fuzz::prepared(config) {
                hardening_fuzz::smoke(&engine, &env);
            }
        }
        Err(error) => {
            let text = error.to_string();
            assert!(text.starts_with("invalid configuration"), "{text}");
            let shown = |text: &str| {
                ["Zq9xHunter2Value", "Zq9x\"Hunter\\2", "Zq9x\\\"Hunter\\\\2"]
                    .into_iter()
                    .filter(|secret| text.contains(secret))
                    .collect::<Vec<_>>()
            };
            let leaked = shown(&text);
            if !leaked.is_empty() {
                // With other values in the environment, the same text means it came from the
                // config itself.
                let other = Config::from_bytes_with_env(data, &|name| lookup(name, 1));
                let other = other.err().map(|e| e.to_string()).unwrap_or_default();
                assert_eq!(
                    shown(&other),
                    leaked,
                    "an error shows a secret's value: {text}"
                );
            }
        }
    }
});
