//! The check of a file: each configuration of the filter in it compiled exactly as the filter
//! compiles what Envoy hands over (`hardening::config::Config::from_bytes_with_env`), its
//! error named with its field path and line; the JSON Schema's findings next to it (it lists
//! every structural mistake at once, where the filter stops at the first); the secrets each
//! configuration reads, reported as required rather than expanded.

use std::cell::RefCell;

use hardening::config::Config as FilterConfig;
use hardening::syntax::ConfigError;
use jsonschema::Validator;
use jsonschema::paths::LocationSegment;
use serde_json::Value;

use crate::instances::{self, Config, Found, Instance};
use crate::yaml::{self, Lines, join};

/// What the check found in one file.
#[derive(Debug, Default)]
pub struct Report {
    /// Each configuration of the filter, in file order.
    pub configs: Vec<ConfigReport>,
    /// Errors about the file itself (it does not parse, it holds no configuration).
    pub errors: Vec<String>,
}

/// One configuration of the filter.
#[derive(Debug)]
pub struct ConfigReport {
    /// Where it is in the file (`""`: the file is the configuration).
    pub path: String,
    pub line: Option<usize>,
    /// The filter's refusal: Envoy would refuse this configuration.
    pub error: Option<Finding>,
    /// What the JSON Schema refuses besides (when the filter accepts the configuration, the
    /// schema is wrong: reported, never an error).
    pub schema: Vec<Finding>,
    pub secrets: Vec<Secret>,
    /// Fields whose value is a secret the filter checks (a log level, an origin): checked
    /// only when Envoy loads the configuration with the variable's value.
    pub deferred: Vec<Finding>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The field, as the filter names it (`routes[0].match.path`).
    pub path: String,
    pub line: Option<usize>,
    pub message: String,
}

/// A `${NAME}` the configuration reads from the environment when it loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    pub name: String,
    pub line: Option<usize>,
    /// `${NAME:-default}`: the default applies when the variable is missing.
    pub has_default: bool,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.errors.is_empty() && self.configs.iter().all(|c| c.error.is_none())
    }
}

/// The schema, compiled once for every configuration checked.
pub struct Checker {
    schema: Validator,
}

impl Checker {
    pub fn new() -> Result<Self, String> {
        let schema = jsonschema::validator_for(&crate::schema::generate())
            .map_err(|e| format!("the generated schema does not compile: {e}"))?;
        Ok(Self { schema })
    }

    /// Checks a file's text: a filter configuration, an Envoy config or manifests, in YAML
    /// or JSON.
    pub fn check(&self, text: &str) -> Report {
        let mut report = Report::default();
        let documents = match yaml::parse(text) {
            Ok(documents) => documents,
            Err(error) => {
                report.errors.push(format!("not YAML or JSON: {error}"));
                return report;
            }
        };
        let mut any = false;
        for document in &documents {
            let instances = match instances::find(&document.value) {
                Found::FilterConfig => vec![Instance {
                    path: String::new(),
                    config: Config::Object(document.value.clone()),
                }],
                Found::Instances(found) => found,
            };
            for instance in instances {
                any = true;
                report
                    .configs
                    .push(self.check_instance(text, &document.lines, instance));
            }
        }
        if !any {
            report.errors.push(format!(
                "no configuration of the `{}` filter found (an Envoy config's Wasm filters are \
                 recognised by a root_id, name or module that says `{0}`)",
                instances::FILTER
            ));
        }
        report
    }

    fn check_instance(&self, file: &str, lines: &Lines, instance: Instance) -> ConfigReport {
        let line = lines.of(&instance.path);
        let mut report = ConfigReport {
            path: instance.path.clone(),
            line,
            error: None,
            schema: Vec::new(),
            secrets: Vec::new(),
            deferred: Vec::new(),
        };
        let (bytes, value, locate) = match prepare(instance, file, lines, line) {
            Ok(prepared) => prepared,
            Err(reason) => {
                report.error = Some(Finding {
                    path: String::new(),
                    line,
                    message: reason,
                });
                return report;
            }
        };
        let (result, names, deferred) = compile(bytes, value.clone());
        report.secrets = secrets(file, &names);
        report.deferred = deferred
            .into_iter()
            .map(|finding| Finding {
                line: locate.line(&finding.path),
                ..finding
            })
            .collect();
        if let Err(error) = result {
            let mut message = error.to_string();
            // The filter read the object as JSON text made here: its position says nothing.
            if let Locator::File(..) = locate {
                message = without_position(message);
            }
            report.error = Some(Finding {
                line: locate.line(&error.path).or(line),
                path: error.path.clone(),
                message,
            });
        }
        if let Some(value) = value {
            report.schema = self
                .schema_findings(&value, &locate, report.error.as_ref())
                .into_iter()
                .filter(|f| !report.deferred.iter().any(|d| d.path == f.path))
                .collect();
        }
        report
    }

    /// The schema's errors, the most precise of them: where a value fails every branch of an
    /// `anyOf` (a section is `false`, `true` or options), the errors inside the branch that
    /// goes deepest, not "none of the schemas".
    fn schema_findings(
        &self,
        value: &Value,
        locate: &Locator<'_>,
        error: Option<&Finding>,
    ) -> Vec<Finding> {
        self.schema_errors(value)
            .into_iter()
            .filter(|finding| error.is_none_or(|e| e.path != finding.path))
            .map(|finding| Finding {
                line: locate.line(&finding.path),
                ..finding
            })
            .collect()
    }

    /// What the JSON Schema refuses in a configuration, one finding per field, lines unknown.
    pub fn schema_errors(&self, value: &Value) -> Vec<Finding> {
        let evaluation = self.schema.evaluate(value);
        let errors: Vec<(String, bool, String)> = evaluation
            .iter_errors()
            .filter(|e| !e.schema_location.ends_with("/anyOf"))
            .map(|e| {
                let path = field_path(e.instance_location.segments());
                let is_type = e.schema_location.ends_with("/type");
                (path, is_type, e.error.to_string())
            })
            .collect();
        let deepest: Vec<&(String, bool, String)> = errors
            .iter()
            .filter(|(path, ..)| !errors.iter().any(|(other, ..)| is_inside(other, path)))
            .collect();
        let mut findings: Vec<Finding> = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for (path, _, _) in &deepest {
            if seen.contains(&path.as_str()) {
                continue;
            }
            seen.push(path);
            let at_path = || deepest.iter().filter(|(p, ..)| p == path);
            // An object refused for what it holds says more than "not a boolean" from the
            // `false`/`true` branch next to it.
            let message = match at_path().find(|(_, is_type, _)| !is_type) {
                Some((_, _, message)) => message.clone(),
                None => merged_types(at_path().map(|(_, _, message)| message.as_str())),
            };
            let path = unexpected_field(path, &message);
            findings.push(Finding {
                line: None,
                message: format!("at `{path}`: {}", excerpt(&message)),
                path,
            });
        }
        findings
    }
}

/// An unknown field's own path (the schema names the object it is in).
fn unexpected_field(path: &str, message: &str) -> String {
    let name = message
        .strip_prefix("Additional properties are not allowed ('")
        .and_then(|rest| rest.split_once('\''))
        .map(|(name, _)| name);
    match name {
        Some(name) => join(path, name),
        None => path.to_string(),
    }
}

/// Whether `inner` is a field inside `outer`.
fn is_inside(inner: &str, outer: &str) -> bool {
    inner.len() > outer.len()
        && inner.starts_with(outer)
        && (outer.is_empty() || inner[outer.len()..].starts_with(['.', '[']))
}

/// `5 is not of type "boolean"` and `5 is not of type "null"` as one message.
fn merged_types<'m>(messages: impl Iterator<Item = &'m str>) -> String {
    let mut merged = String::new();
    for message in messages {
        match message.split_once(" is not of type") {
            Some((_, types)) if !merged.is_empty() => {
                merged.push_str(", nor ");
                merged.push_str(types.trim_start_matches('s').trim());
            }
            _ if merged.is_empty() => merged.push_str(message),
            _ => {}
        }
    }
    merged
}

/// A message cut short: it may quote a large value (a whole OpenAPI document).
fn excerpt(message: &str) -> String {
    const MAX: usize = 240;
    match message.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &message[..cut]),
        None => message.to_string(),
    }
}

/// A configuration as the bytes the filter is handed, its value for the schema (JSON text
/// that does not parse has none), and where its fields are.
fn prepare<'l>(
    instance: Instance,
    file: &str,
    lines: &'l Lines,
    line: Option<usize>,
) -> Result<(Vec<u8>, Option<Value>, Locator<'l>), String> {
    match instance.config {
        Config::Object(value) => Ok((
            serde_json::to_vec(&value).unwrap_or_default(),
            Some(value),
            Locator::File(lines, instance.path),
        )),
        Config::Text(text) => {
            let parsed = yaml::parse(&text).ok().and_then(|d| d.into_iter().next());
            let value = parsed.as_ref().map(|d| d.value.clone());
            let text_lines = parsed.map(|d| d.lines).unwrap_or_default();
            let locate = Locator::Text(text_lines, text_start(file, line));
            Ok((text.into_bytes(), value, locate))
        }
        Config::Unusable(reason) => Err(reason),
    }
}

/// Where a configuration's fields are in the file.
enum Locator<'l> {
    /// An object of the file, at this path.
    File(&'l Lines, String),
    /// JSON text, whose first line is this line of the file.
    Text(Lines, Option<usize>),
}

impl Locator<'_> {
    fn line(&self, path: &str) -> Option<usize> {
        match self {
            Self::File(lines, at) => lines.of(&join(at, path)),
            Self::Text(lines, base) => Some(base.unwrap_or(1) + lines.of(path)? - 1),
        }
    }
}

/// serde_json's ` at line 1 column 290`, dropped.
fn without_position(message: String) -> String {
    match message.rsplit_once(" at line ") {
        Some((before, position)) if position.contains(" column ") => before.to_string(),
        _ => message,
    }
}

/// The line a string value's text starts on: the next one for a block scalar (`value: |`).
fn text_start(file: &str, line: Option<usize>) -> Option<usize> {
    let line = line?;
    let text = file.lines().nth(line.checked_sub(1)?)?.trim_end();
    let block = text
        .trim_end_matches(['-', '+', '1', '2', '3', '4', '5', '6', '7', '8', '9'])
        .ends_with(['|', '>']);
    Some(if block { line + 1 } else { line })
}

/// The configuration compiled as the filter compiles it, every secret it reads given a
/// stand-in value (so that a config is judged without them), and the names it read. A field
/// whose secret the filter refuses as a stand-in (it checks the value: a log level, an
/// origin) is set aside, as if not given, and the rest compiled again: its findings say so.
fn compile(
    bytes: Vec<u8>,
    mut value: Option<Value>,
) -> (Result<(), ConfigError>, Vec<String>, Vec<Finding>) {
    let names = RefCell::new(Vec::<String>::new());
    let env = |name: &str| {
        let mut names = names.borrow_mut();
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
        Some(format!("secret-{name}"))
    };
    let mut deferred = Vec::new();
    let mut bytes = bytes;
    let result = loop {
        let Err(error) = FilterConfig::from_bytes_with_env(&bytes, &env) else {
            break Ok(());
        };
        let holds_secret = value
            .as_mut()
            .is_some_and(|v| remove_secret_field(v, &error.path));
        if !holds_secret || deferred.len() >= 32 {
            break Err(error);
        }
        deferred.push(Finding {
            path: error.path.clone(),
            line: None,
            message: format!(
                "at `{}`: a secret, checked when Envoy loads the configuration with its value \
                 (with a stand-in: {})",
                error.path,
                without_position(error.reason.clone())
            ),
        });
        bytes = value
            .as_ref()
            .and_then(|v| serde_json::to_vec(v).ok())
            .unwrap_or_default();
    };
    (result, names.into_inner(), deferred)
}

/// Removes the field at `path` when its value is a string that reads a secret.
fn remove_secret_field(value: &mut Value, path: &str) -> bool {
    let Some((parent, last)) = split_last(path) else {
        return false;
    };
    let Some(container) = at_path(value, parent) else {
        return false;
    };
    let reads_secret = |v: &Value| v.as_str().is_some_and(|s| s.contains("${"));
    match (container, last) {
        (Value::Object(map), Segment::Key(key)) if map.get(key).is_some_and(reads_secret) => {
            map.remove(key);
            true
        }
        (Value::Array(items), Segment::Index(i)) if items.get(i).is_some_and(reads_secret) => {
            items.remove(i);
            true
        }
        _ => false,
    }
}

enum Segment<'p> {
    Key(&'p str),
    Index(usize),
}

/// `a.b[2]` as `a.b` and `[2]`; `a.b` as `a` and `b`.
fn split_last(path: &str) -> Option<(&str, Segment<'_>)> {
    if let Some(open) = path.strip_suffix(']').and_then(|p| p.rfind('['))
        && let Ok(index) = path[open + 1..path.len() - 1].parse()
    {
        return Some((&path[..open], Segment::Index(index)));
    }
    match path.rsplit_once('.') {
        Some((parent, key)) => Some((parent, Segment::Key(key))),
        None if !path.is_empty() => Some(("", Segment::Key(path))),
        None => None,
    }
}

fn at_path<'v>(value: &'v mut Value, path: &str) -> Option<&'v mut Value> {
    let Some((parent, last)) = split_last(path) else {
        return Some(value);
    };
    match last {
        Segment::Key(key) => at_path(value, parent)?.get_mut(key),
        Segment::Index(i) => at_path(value, parent)?.get_mut(i),
    }
}

fn secrets(file: &str, names: &[String]) -> Vec<Secret> {
    names
        .iter()
        .map(|name| {
            let reference = format!("${{{name}");
            let line = file.lines().position(|l| l.contains(&reference));
            Secret {
                name: name.clone(),
                line: line.map(|l| l + 1),
                has_default: file.contains(&format!("{reference}:-")),
            }
        })
        .collect()
}

/// A JSON pointer's segments as the filter writes a field path.
fn field_path<'a>(segments: impl Iterator<Item = LocationSegment<'a>>) -> String {
    segments.fold(String::new(), |path, segment| match segment {
        LocationSegment::Index(i) => format!("{path}[{i}]"),
        LocationSegment::Property(key) => join(&path, &key),
    })
}
