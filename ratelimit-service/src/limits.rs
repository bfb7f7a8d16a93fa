//! The limits file: Limitador's own YAML format (a list of `{namespace, max_value, seconds,
//! name, conditions, variables}`), so one file serves this service and `limitador-server`
//! alike, checked harder than Limitador does, and the guard that keeps a CEL condition from
//! panicking inside Limitador.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use limitador::limit::{Context, Expression, Limit, Namespace, Predicate};
use serde_yaml_ng::Value;

/// The variable each request binds: the list of one descriptor's entries (`descriptors[0]`).
pub const DESCRIPTORS: &str = "descriptors";
/// The variable Limitador itself binds while testing a limit's conditions (`limit.name`).
const LIMIT: &str = "limit";

/// The keys Limitador's `Limit` reads; any other is a typo that Limitador would ignore.
const KNOWN_KEYS: [&str; 7] = [
    "namespace",
    "max_value",
    "seconds",
    "name",
    "conditions",
    "variables",
    "id",
];

/// Why a limits file was refused, with the entry it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsError(String);

impl fmt::Display for LimitsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LimitsError {}

/// The limits of a file, and per namespace the conditions to try before Limitador does.
pub struct Limits {
    limits: Vec<Limit>,
    guards: HashMap<Namespace, Vec<Guard>>,
}

/// One condition of one limit, compiled again for [`Limits::check_conditions`].
struct Guard {
    limit: String,
    source: String,
    predicate: Predicate,
    /// Set once the failure has been logged: a broken condition would otherwise log a line
    /// per request.
    reported: AtomicBool,
}

/// A condition that fails to evaluate on a request: Limitador would panic on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionError {
    pub limit: String,
    pub condition: String,
    pub error: String,
    /// Whether this is the first failure of this condition (the one worth a log line).
    pub first: bool,
}

impl fmt::Display for ConditionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "limit {}: condition `{}` cannot be evaluated: {}",
            self.limit, self.condition, self.error
        )
    }
}

impl Limits {
    /// Reads and checks a limits file.
    pub fn load(path: &Path) -> Result<Self, LimitsError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| LimitsError(format!("cannot read {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|LimitsError(e)| LimitsError(format!("{}: {e}", path.display())))
    }

    /// Parses and checks the text of a limits file.
    pub fn parse(text: &str) -> Result<Self, LimitsError> {
        let document: Value =
            serde_yaml_ng::from_str(text).map_err(|e| LimitsError(format!("not YAML: {e}")))?;
        let entries = match document {
            Value::Sequence(entries) => entries,
            // An empty file: no limits, every descriptor answered OK.
            Value::Null => Vec::new(),
            _ => {
                return Err(LimitsError(
                    "expected a list of limits ({namespace, max_value, seconds, name, \
                     conditions, variables})"
                        .to_string(),
                ));
            }
        };
        let mut limits = Vec::with_capacity(entries.len());
        let mut seen = HashSet::new();
        for (index, entry) in entries.into_iter().enumerate() {
            let limit = parse_limit(entry)
                .map_err(|e| LimitsError(format!("limit #{}: {e}", index + 1)))?;
            // Limitador keys a limit by namespace, window, conditions and variables: a second
            // one differing only in max_value or name would silently replace the first.
            if !seen.insert(limit.clone()) {
                return Err(LimitsError(format!(
                    "limit #{} ({}): same namespace, seconds, conditions and variables as an \
                     earlier limit; Limitador would keep only one of them",
                    index + 1,
                    display_name(&limit)
                )));
            }
            limits.push(limit);
        }
        let guards = compile_guards(&limits)?;
        Ok(Self { limits, guards })
    }

    /// The limits, to hand to Limitador.
    pub fn limits(&self) -> &[Limit] {
        &self.limits
    }

    /// Evaluates every condition of the namespace's limits as Limitador will: Limitador
    /// `unwrap`s a condition's evaluation error (a panic, or with `panic = "abort"` the end
    /// of the process), e.g. `descriptors[1]` out of range or `int(descriptors[0].n)` on a
    /// value a client chose. An error here lets the request be refused instead.
    pub fn check_conditions(
        &self,
        namespace: &Namespace,
        ctx: &Context<'_>,
    ) -> Result<(), ConditionError> {
        let Some(guards) = self.guards.get(namespace) else {
            return Ok(());
        };
        for guard in guards {
            if let Err(error) = guard.predicate.test(ctx) {
                return Err(ConditionError {
                    limit: guard.limit.clone(),
                    condition: guard.source.clone(),
                    error: error.to_string(),
                    first: !guard.reported.swap(true, Ordering::Relaxed),
                });
            }
        }
        Ok(())
    }
}

/// One entry of the list: known keys only, `max_value` present (Limitador would read a
/// missing one as 0, refusing everything), a window of at least a second.
fn parse_limit(entry: Value) -> Result<Limit, String> {
    let Value::Mapping(map) = &entry else {
        return Err("expected a mapping {namespace, max_value, seconds, ...}".to_string());
    };
    for (key, value) in map {
        check_field(key, value)?;
    }
    if !map.contains_key("max_value") {
        return Err("max_value is missing".to_string());
    }
    // What is left to fail here: a missing field, a CEL expression that does not parse.
    let limit: Limit = serde_yaml_ng::from_value(entry).map_err(|e| e.to_string())?;
    if limit.namespace().as_ref().is_empty() {
        return Err("namespace is empty (a request's domain never is)".to_string());
    }
    if limit.seconds() == 0 {
        return Err("seconds must be at least 1".to_string());
    }
    check_references(&limit)?;
    Ok(limit)
}

/// One key and its value, checked for the type Limitador reads: serde's own message would
/// not name the field.
fn check_field(key: &Value, value: &Value) -> Result<(), String> {
    let Some(name) = key.as_str().filter(|k| KNOWN_KEYS.contains(k)) else {
        return Err(format!(
            "unknown key {}; expected {}",
            excerpt(key),
            KNOWN_KEYS.join(", ")
        ));
    };
    let fits = match name {
        "max_value" | "seconds" => value.as_u64().is_some(),
        "conditions" | "variables" => value
            .as_sequence()
            .is_some_and(|list| list.iter().all(Value::is_string)),
        _ => value.is_string(),
    };
    if fits {
        return Ok(());
    }
    let expected = match name {
        "max_value" | "seconds" => "a whole number",
        "conditions" | "variables" => "a list of CEL expressions (strings)",
        _ => "a string",
    };
    Err(format!("{name} must be {expected}, not {}", excerpt(value)))
}

/// A condition or variable naming anything but `descriptors` (or `limit` in a condition) can
/// never apply, as nothing else is bound: most likely a typo (`descriptor[0]`).
fn check_references(limit: &Limit) -> Result<(), String> {
    let conditions = sorted(limit.conditions());
    let variables = sorted(limit.variables());
    for (kind, sources, allowed) in [
        ("condition", &conditions, &[DESCRIPTORS, LIMIT][..]),
        ("variable", &variables, &[DESCRIPTORS][..]),
    ] {
        for source in sources {
            let expression =
                Expression::parse(source).map_err(|e| format!("{kind} `{source}`: {e}"))?;
            if let Some(unknown) = expression
                .variables()
                .into_iter()
                .find(|v| !allowed.contains(&v.as_str()))
            {
                return Err(format!(
                    "{kind} `{source}` names `{unknown}`, which is never bound; \
                     a descriptor's entries are `descriptors[0].KEY` (or `descriptors[0]['KEY']`)"
                ));
            }
        }
    }
    Ok(())
}

/// The conditions of each namespace's limits, compiled once. Those naming `limit` are left
/// out: they evaluate only under the binding Limitador adds itself.
fn compile_guards(limits: &[Limit]) -> Result<HashMap<Namespace, Vec<Guard>>, LimitsError> {
    let mut guards: HashMap<Namespace, Vec<Guard>> = HashMap::new();
    for limit in limits {
        for source in sorted(limit.conditions()) {
            let expression = Expression::parse(&source)
                .map_err(|e| LimitsError(format!("condition `{source}`: {e}")))?;
            if expression.variables().iter().any(|v| v == LIMIT) {
                continue;
            }
            let predicate = Predicate::parse(&source)
                .map_err(|e| LimitsError(format!("condition `{source}`: {e}")))?;
            guards
                .entry(limit.namespace().clone())
                .or_default()
                .push(Guard {
                    limit: display_name(limit),
                    source,
                    predicate,
                    reported: AtomicBool::new(false),
                });
        }
    }
    Ok(guards)
}

/// A limit as logs and messages name it: its name, or its namespace and window.
pub fn display_name(limit: &Limit) -> String {
    match limit.name() {
        Some(name) => format!("'{name}'"),
        None => format!(
            "(unnamed, namespace '{}', {} s)",
            limit.namespace().as_ref(),
            limit.seconds()
        ),
    }
}

fn sorted(set: HashSet<String>) -> Vec<String> {
    let mut list: Vec<String> = set.into_iter().collect();
    list.sort();
    list
}

/// A YAML value, short, for an error message.
fn excerpt(value: &Value) -> String {
    let text = serde_yaml_ng::to_string(value).unwrap_or_default();
    let text = text.trim();
    match text.char_indices().nth(40) {
        Some((end, _)) => format!("`{}...`", &text[..end]),
        None => format!("`{text}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap as Map;

    fn context(entries: &[(&str, &str)]) -> Context<'static> {
        let mut ctx = Context::default();
        let map: Map<String, String> = entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ctx.list_binding(DESCRIPTORS.to_string(), vec![map]);
        ctx
    }

    const GOOD: &str = "
- namespace: hardening
  max_value: 100
  seconds: 60
  name: api
  conditions: [\"descriptors[0].limit == 'api'\"]
  variables: [\"descriptors[0].client_ip\"]
- namespace: other
  max_value: 5
  seconds: 1
  conditions: []
  variables: []
";

    #[test]
    fn limitador_format_loads() {
        let limits = Limits::parse(GOOD).unwrap();
        assert_eq!(limits.limits().len(), 2);
        assert_eq!(limits.limits()[0].name(), Some("api"));
        assert_eq!(limits.limits()[0].max_value(), 100);
    }

    #[test]
    fn empty_file_means_no_limits() {
        assert!(Limits::parse("").unwrap().limits().is_empty());
    }

    #[test]
    fn refusals_name_the_problem() {
        for (text, expected) in [
            ("namespace: x", "expected a list"),
            ("- [1]", "limit #1: expected a mapping"),
            (
                "- {namespace: a, max_value: 1, seconds: 1, condition: []}",
                "unknown key `condition`",
            ),
            (
                "- {namespace: a, max_value: 1, seconds: 1, variables: []}",
                "missing field `conditions`",
            ),
            (
                "- {namespace: a, seconds: 1, conditions: [], variables: []}",
                "max_value is missing",
            ),
            (
                "- {namespace: a, max_value: 1, seconds: 0, conditions: [], variables: []}",
                "seconds must be at least 1",
            ),
            (
                "- {namespace: '', max_value: 1, seconds: 1, conditions: [], variables: []}",
                "namespace is empty",
            ),
            (
                "- {namespace: a, max_value: 1, conditions: [], variables: []}",
                "missing field `seconds`",
            ),
            (
                "- {namespace: a, max_value: x, seconds: 1, conditions: [], variables: []}",
                "max_value must be a whole number, not `x`",
            ),
            (
                "- {namespace: a, max_value: -1, seconds: 1, conditions: [], variables: []}",
                "max_value must be",
            ),
            (
                "- {namespace: a, max_value: 1, seconds: 1, conditions: \"x == 'y'\", variables: []}",
                "conditions must be a list",
            ),
            (
                "- {namespace: [a], max_value: 1, seconds: 1, conditions: [], variables: []}",
                "namespace must be a string",
            ),
            (
                "- {namespace: a, max_value: 1, seconds: 1, conditions: ['descriptors[0].a =='], variables: []}",
                "limit #1",
            ),
            (
                "- {namespace: a, max_value: 1, seconds: 1, conditions: [\"descriptor[0].a == 'b'\"], variables: []}",
                "names `descriptor`",
            ),
            (
                "- {namespace: a, max_value: 1, seconds: 1, conditions: [], variables: ['limit.name']}",
                "names `limit`",
            ),
            (
                "- {namespace: a, max_value: 1, seconds: 1, name: x, conditions: [], variables: []}\n- {namespace: a, max_value: 2, seconds: 1, name: y, conditions: [], variables: []}",
                "limit #2 ('y'): same namespace",
            ),
        ] {
            let error = Limits::parse(text)
                .err()
                .unwrap_or_else(|| panic!("accepted: {text}"));
            assert!(error.to_string().contains(expected), "{text}: {error}");
        }
    }

    /// What the guard is for: Limitador's own matching panics on these.
    #[test]
    fn limitador_panics_on_conditions_it_cannot_evaluate() {
        let text = "- {namespace: a, max_value: 1, seconds: 1, conditions: [\"descriptors[1].k == 'v'\"], variables: []}";
        let limit = Limits::parse(text).unwrap().limits()[0].clone();
        let ctx = context(&[("k", "v")]);
        let applied =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| limit.applies(&ctx)));
        assert!(applied.is_err());
    }

    #[test]
    fn conditions_that_would_panic_in_limitador_are_caught() {
        let text = "
- {namespace: a, max_value: 1, seconds: 1, name: second, conditions: [\"descriptors[1].k == 'v'\"], variables: []}
- {namespace: b, max_value: 1, seconds: 1, name: number, conditions: ['int(descriptors[0].n) > 5'], variables: []}
- {namespace: c, max_value: 1, seconds: 1, name: fine, conditions: [\"descriptors[0].k == 'v'\"], variables: []}
- {namespace: d, max_value: 1, seconds: 1, name: own, conditions: [\"limit.name == 'own'\"], variables: []}
";
        let limits = Limits::parse(text).unwrap();
        let ctx = context(&[("k", "v"), ("n", "abc")]);
        let error = limits.check_conditions(&"a".into(), &ctx).unwrap_err();
        assert_eq!((error.limit.as_str(), error.first), ("'second'", true));
        assert!(
            !limits
                .check_conditions(&"a".into(), &ctx)
                .unwrap_err()
                .first
        );
        assert!(limits.check_conditions(&"b".into(), &ctx).is_err());
        assert!(
            limits
                .check_conditions(&"b".into(), &context(&[("n", "7")]))
                .is_ok()
        );
        // A missing key inside a function's argument is an error too, not a mere `false`.
        assert!(limits.check_conditions(&"b".into(), &context(&[])).is_err());
        // A missing key is no error: the limit just does not apply.
        assert!(limits.check_conditions(&"c".into(), &context(&[])).is_ok());
        assert!(limits.check_conditions(&"d".into(), &ctx).is_ok());
        assert!(limits.check_conditions(&"unknown".into(), &ctx).is_ok());
    }
}
