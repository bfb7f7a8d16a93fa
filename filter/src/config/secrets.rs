//! Secrets from the environment: a config string `${NAME}` is the value of `NAME` in the VM's
//! environment (Envoy's `vm_config.environment_variables`), refused if it is missing;
//! `${NAME:-default}` falls back to the default; `$${` writes a literal `${`. A missing secret
//! is named in the error, its value never is.

use serde_json::Value;

use super::ConfigError;

/// Replaces every `${...}` in the strings of `value` (keys too), walking it in place.
pub fn substitute(
    value: &mut Value,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    substitute_at(value, lookup, "")
}

fn substitute_at(
    value: &mut Value,
    lookup: &dyn Fn(&str) -> Option<String>,
    path: &str,
) -> Result<(), ConfigError> {
    match value {
        Value::String(text) if text.contains('$') => {
            *text = expand(text, lookup).map_err(|reason| ConfigError::new(path, reason))?;
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                substitute_at(item, lookup, &format!("{path}[{i}]"))?;
            }
        }
        Value::Object(map) => {
            let entries = std::mem::take(map);
            for (key, mut item) in entries {
                let child = super::error::join_path(path, &key);
                let key = if key.contains('$') {
                    expand(&key, lookup).map_err(|reason| ConfigError::new(&child, reason))?
                } else {
                    key
                };
                substitute_at(&mut item, lookup, &child)?;
                map.insert(key, item);
            }
        }
        _ => {}
    }
    Ok(())
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One string with its `${...}` expanded.
pub fn expand(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(rest.get(..at).unwrap_or(""));
        let after = rest.get(at..).unwrap_or("");
        if let Some(literal) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = literal;
            continue;
        }
        let Some(inner_and_rest) = after.strip_prefix("${") else {
            out.push('$');
            rest = after.get(1..).unwrap_or("");
            continue;
        };
        let Some((inner, remaining)) = inner_and_rest.split_once('}') else {
            return Err("an unclosed `${` (write `$${` for a literal one)".into());
        };
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        if !is_name(name) {
            return Err(format!(
                "`${{{}}}`: not an environment variable name",
                crate::problem::excerpt(name, 40)
            ));
        }
        match (lookup(name), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => {
                return Err(format!(
                    "the required secret {name} is not set (add it to vm_config.environment_variables, or write ${{{name}:-default}})"
                ));
            }
        }
        rest = remaining;
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    #[cfg(target_family = "wasm")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn env(name: &str) -> Option<String> {
        match name {
            "API_TOKEN" => Some("s3cr3t-value".into()),
            "ORIGIN" => Some("https://app.example.com".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_required_defaults_and_literals() {
        assert_eq!(
            expand("Bearer ${API_TOKEN}", &env),
            Ok("Bearer s3cr3t-value".into())
        );
        assert_eq!(
            expand("${MISSING:-fallback}/x", &env),
            Ok("fallback/x".into())
        );
        assert_eq!(expand("${MISSING:-}", &env), Ok(String::new()));
        assert_eq!(
            expand("cost: $5, $${NOT_A_VAR}", &env),
            Ok("cost: $5, ${NOT_A_VAR}".into())
        );
        assert_eq!(expand("no secrets", &env), Ok("no secrets".into()));
    }

    #[test]
    fn a_missing_secret_is_named_never_shown() {
        let mut config =
            json!({"defaults": {"cors": {"allow_origins": ["${ORIGIN}", "${OTHER_ORIGIN}"]}}});
        let error = substitute(&mut config, &env).expect_err("missing");
        assert_eq!(
            error.to_string(),
            "invalid configuration at `defaults.cors.allow_origins[1]`: the required secret OTHER_ORIGIN is not set (add it to vm_config.environment_variables, or write ${OTHER_ORIGIN:-default})"
        );
        let mut config = json!({"health": {"checks": {"db": {"headers": {"authorization": "Bearer ${API_TOKEN}"}}}}});
        substitute(&mut config, &env).expect("substituted");
        assert_eq!(
            config["health"]["checks"]["db"]["headers"]["authorization"],
            "Bearer s3cr3t-value"
        );
        assert_eq!(
            expand("${bad-name}", &env),
            Err("`${bad-name}`: not an environment variable name".into())
        );
        assert_eq!(
            expand("${API_TOKEN", &env),
            Err("an unclosed `${` (write `$${` for a literal one)".into())
        );
    }
}
