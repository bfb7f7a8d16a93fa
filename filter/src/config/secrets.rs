//! Secrets from the environment: a config string `${NAME}` is the value of `NAME` in the VM's
//! environment (Envoy's `vm_config.environment_variables`), refused if it is missing;
//! `${NAME:-default}` falls back to the default; `$${` writes a literal `${`. A missing secret
//! is named in the error, its value never is: error messages about a config that read secrets
//! have every secret value replaced by its `${NAME}`.

use serde_json::Value;

use super::ConfigError;

/// The environment, as the shell hands it over.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The secrets a config read (name and value), so that errors never show a value.
#[derive(Debug, Default)]
pub struct Used(Vec<(String, String)>);

impl Used {
    /// The error with every secret value (of 3 characters or more; shorter ones are not
    /// secrets, and replacing them would garble the message) written as `${NAME}`.
    pub fn scrub(&self, mut error: ConfigError) -> ConfigError {
        for (name, value) in &self.0 {
            if value.chars().count() >= 3 {
                let placeholder = format!("${{{name}}}");
                error.reason = error.reason.replace(value.as_str(), &placeholder);
                error.path = error.path.replace(value.as_str(), &placeholder);
                // As JSON text shows it, escaped.
                if let Some(escaped) = json_escaped(value).filter(|e| e != value) {
                    error.reason = error.reason.replace(&escaped, &placeholder);
                }
            }
        }
        error
    }
}

fn json_escaped(value: &str) -> Option<String> {
    let quoted = serde_json::to_string(value).ok()?;
    Some(quoted.get(1..quoted.len().saturating_sub(1))?.to_string())
}

/// JSON text with its `${...}` expanded in place (values JSON-escaped), so that the text keeps
/// its key order, duplicate keys (refused later) and line numbers. `Err` only for a missing
/// or malformed reference; `substitute` on the parsed value then names the field.
pub fn expand_json_text(text: &str, lookup: Lookup<'_>, used: &mut Used) -> Result<String, String> {
    expand_with(
        text,
        lookup,
        &|value| json_escaped(value).unwrap_or_default(),
        used,
    )
}

/// Replaces every `${...}` in the strings of `value` (keys too), walking it in place.
pub fn substitute(
    value: &mut Value,
    lookup: Lookup<'_>,
    used: &mut Used,
) -> Result<(), ConfigError> {
    substitute_at(value, lookup, "", used)
}

fn substitute_at(
    value: &mut Value,
    lookup: Lookup<'_>,
    path: &str,
    used: &mut Used,
) -> Result<(), ConfigError> {
    match value {
        Value::String(text) if text.contains('$') => {
            *text = expand(text, lookup, used).map_err(|reason| ConfigError::new(path, reason))?;
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                substitute_at(item, lookup, &format!("{path}[{i}]"), used)?;
            }
        }
        Value::Object(map) => {
            let entries = std::mem::take(map);
            for (key, mut item) in entries {
                let child = crate::syntax::error::join_path(path, &key);
                let key = if key.contains('$') {
                    expand(&key, lookup, used).map_err(|reason| ConfigError::new(&child, reason))?
                } else {
                    key
                };
                substitute_at(&mut item, lookup, &child, used)?;
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
pub fn expand(text: &str, lookup: Lookup<'_>, used: &mut Used) -> Result<String, String> {
    expand_with(text, lookup, &|value| value.to_string(), used)
}

fn expand_with(
    text: &str,
    lookup: Lookup<'_>,
    escape: &dyn Fn(&str) -> String,
    used: &mut Used,
) -> Result<String, String> {
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
                crate::syntax::excerpt(name, 40)
            ));
        }
        match (lookup(name), default) {
            (Some(value), _) => {
                out.push_str(&escape(&value));
                used.0.push((name.to_string(), value));
            }
            // A default is written in the config itself: no escaping, not a secret.
            (None, Some(default)) => out.push_str(default),
            (None, None) => {
                return Err(format!(
                    "the required secret {name} is not set (add it to vm_config.environment_variables, or Envoy's environment for the native build, or write ${{{name}:-default}})"
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

    fn env(name: &str) -> Option<String> {
        match name {
            "API_TOKEN" => Some("s3cr3t-value".into()),
            "ORIGIN" => Some("https://app.example.com".into()),
            "QUOTED" => Some("a\"b".into()),
            _ => None,
        }
    }

    fn expand_env(text: &str) -> Result<String, String> {
        expand(text, &env, &mut Used::default())
    }

    #[test]
    fn expands_required_defaults_and_literals() {
        assert_eq!(
            expand_env("Bearer ${API_TOKEN}"),
            Ok("Bearer s3cr3t-value".into())
        );
        assert_eq!(
            expand_env("${MISSING:-fallback}/x"),
            Ok("fallback/x".into())
        );
        assert_eq!(expand_env("${MISSING:-}"), Ok(String::new()));
        assert_eq!(
            expand_env("cost: $5, $${NOT_A_VAR}"),
            Ok("cost: $5, ${NOT_A_VAR}".into())
        );
        assert_eq!(expand_env("no secrets"), Ok("no secrets".into()));
    }

    #[test]
    fn json_text_keeps_its_order_and_escapes_values() {
        let mut used = Used::default();
        let text = r#"{"b": "${QUOTED}", "a": "${API_TOKEN}"}"#;
        let expanded = expand_json_text(text, &env, &mut used).expect("expanded");
        assert_eq!(expanded, r#"{"b": "a\"b", "a": "s3cr3t-value"}"#);
        let parsed: Value = serde_json::from_str(&expanded).expect("still JSON");
        assert_eq!(parsed["b"], "a\"b");
    }

    #[test]
    fn a_missing_secret_is_named_never_shown() {
        let mut config =
            json!({"defaults": {"cors": {"allow_origins": ["${ORIGIN}", "${OTHER_ORIGIN}"]}}});
        let error = substitute(&mut config, &env, &mut Used::default()).expect_err("missing");
        assert_eq!(
            error.to_string(),
            "invalid configuration at `defaults.cors.allow_origins[1]`: the required secret OTHER_ORIGIN is not set (add it to vm_config.environment_variables, or Envoy's environment for the native build, or write ${OTHER_ORIGIN:-default})"
        );
        let mut config = json!({"health": {"checks": {"db": {"headers": {"authorization": "Bearer ${API_TOKEN}"}}}}});
        substitute(&mut config, &env, &mut Used::default()).expect("substituted");
        assert_eq!(
            config["health"]["checks"]["db"]["headers"]["authorization"],
            "Bearer s3cr3t-value"
        );
        assert_eq!(
            expand_env("${bad-name}"),
            Err("`${bad-name}`: not an environment variable name".into())
        );
        assert_eq!(
            expand_env("${API_TOKEN"),
            Err("an unclosed `${` (write `$${` for a literal one)".into())
        );
    }

    #[test]
    fn errors_show_the_name_of_a_secret_instead_of_its_value() {
        let mut used = Used::default();
        expand("${API_TOKEN}", &env, &mut used).expect("expanded");
        let error = ConfigError::new("window", "`s3cr3t-value` is not a duration");
        assert_eq!(used.scrub(error).reason, "`${API_TOKEN}` is not a duration");
    }
}
