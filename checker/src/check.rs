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
        // An empty document (a trailing `---`, only comments) holds nothing.
        for document in documents.iter().filter(|d| !d.value.is_null()) {
            let instances = match instances::find(&document.value) {
                // A JSON file is what a StringValue would hold: its text, numbers as written.
                Found::FilterConfig if is_json(text) => vec![Instance {
                    path: String::new(),
                    config: Config::Text(text.to_string()),
                }],
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
        let Prepared {
            value,
            bytes,
            encoding,
            locate,
        } = match prepare(instance, file, lines, line) {
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
        let (result, names, deferred) = compile(value.clone(), bytes, encoding);
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
        let errors: Vec<SchemaError> = evaluation
            .iter_errors()
            .filter(|e| {
                !e.schema_location.ends_with("/anyOf") && !e.schema_location.ends_with("/oneOf")
            })
            .map(|e| SchemaError {
                path: field_path(e.instance_location.segments()),
                alternative: e.schema_location.ends_with("/type")
                    || e.schema_location.ends_with("/const"),
                message: e.error.to_string(),
            })
            .collect();
        // A value that fails every alternative (a section is `false`, `true` or options) fails
        // each one's `type`: those say least where another error says more, at the same field
        // (an object refused for what it holds) or inside it.
        let telling: Vec<&SchemaError> = errors
            .iter()
            .filter(|e| {
                !e.alternative
                    || !errors.iter().any(|other| {
                        is_inside(&other.path, &e.path)
                            || (other.path == e.path && !other.alternative)
                    })
            })
            .collect();
        let mut findings: Vec<Finding> = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for error in &telling {
            if seen.contains(&error.path.as_str()) {
                continue;
            }
            seen.push(&error.path);
            let at_path = || telling.iter().filter(|e| e.path == error.path);
            for e in at_path().filter(|e| !e.alternative) {
                let path = unexpected_field(&e.path, &e.message);
                findings.push(Finding {
                    line: None,
                    message: format!("at `{path}`: {}", excerpt(&e.message)),
                    path,
                });
            }
            if !at_path().any(|e| !e.alternative) {
                let message = merged_alternatives(at_path().map(|e| e.message.as_str()));
                findings.push(Finding {
                    line: None,
                    message: format!("at `{}`: {}", error.path, excerpt(&message)),
                    path: error.path.clone(),
                });
            }
        }
        findings
    }
}

/// One error of the schema's evaluation.
struct SchemaError {
    path: String,
    /// From a `type` or `const`: one alternative of several not taken.
    alternative: bool,
    message: String,
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

/// The alternatives a value failed as one message: `5 is not of type "boolean"` and `5 is not
/// of type "null"` as `5 is not of type "boolean", nor "null"`; `"loose" was expected` and
/// `"exact" was expected` (an enumeration's values) as `expected one of "loose", "exact"`.
fn merged_alternatives<'m>(messages: impl Iterator<Item = &'m str>) -> String {
    let mut types = String::new();
    let mut expected: Vec<&str> = Vec::new();
    for message in messages {
        if let Some((value, _)) = message.split_once(" was expected") {
            expected.push(value.trim());
        } else if types.is_empty() {
            types.push_str(message);
        } else if let Some((_, more)) = message.split_once(" is not of type") {
            types.push_str(", nor ");
            types.push_str(more.trim_start_matches('s').trim());
        }
    }
    match (types.is_empty(), expected.is_empty()) {
        (_, true) => types,
        (true, false) => format!("expected one of {}", expected.join(", ")),
        (false, false) => format!("{types}; or one of {}", expected.join(", ")),
    }
}

/// A message cut short: it may quote a large value (a whole OpenAPI document).
fn excerpt(message: &str) -> String {
    const MAX: usize = 240;
    match message.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &message[..cut]),
        None => message.to_string(),
    }
}

/// A configuration as its value (JSON text that does not parse has none), the bytes the
/// filter is handed and how, and where its fields are.
struct Prepared<'l> {
    value: Option<Value>,
    bytes: Vec<u8>,
    encoding: Encoding,
    locate: Locator<'l>,
}

fn prepare<'l>(
    instance: Instance,
    file: &str,
    lines: &'l Lines,
    line: Option<usize>,
) -> Result<Prepared<'l>, String> {
    match instance.config {
        Config::Object(value) => Ok(Prepared {
            bytes: encode(&value, Encoding::Struct),
            value: Some(value),
            encoding: Encoding::Struct,
            locate: Locator::File(lines, instance.path),
        }),
        Config::Text(text) => {
            let parsed = yaml::parse(&text).ok().and_then(|d| d.into_iter().next());
            let value = parsed.as_ref().map(|d| d.value.clone());
            let text_lines = parsed.map(|d| d.lines).unwrap_or_default();
            Ok(Prepared {
                value,
                bytes: text.into_bytes(),
                encoding: Encoding::Json,
                locate: Locator::Text(text_lines, text_at(file, &instance.path, line)),
            })
        }
        Config::Unusable(reason) => Err(reason),
    }
}

fn is_json(text: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

/// Where a configuration's fields are in the file.
enum Locator<'l> {
    /// An object of the file, at this path.
    File(&'l Lines, String),
    /// JSON text, and where it is in the file.
    Text(Lines, TextAt),
}

impl Locator<'_> {
    fn line(&self, path: &str) -> Option<usize> {
        match self {
            Self::File(lines, at) => lines.of(&join(at, path)),
            Self::Text(lines, TextAt::Block(first)) => Some(first + lines.of(path)? - 1),
            Self::Text(_, TextAt::Key(line)) => *line,
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

/// Where JSON text is: the whole file, or a string value of it.
fn text_at(file: &str, path: &str, line: Option<usize>) -> TextAt {
    if path.is_empty() {
        TextAt::Block(1)
    } else {
        text_start(file, line)
    }
}

/// Where a string value's text is: a block scalar (`value: |`) starts on the next line and
/// keeps its lines; any other string (quoted, with `\n` escapes) is placed at its key's line.
fn text_start(file: &str, line: Option<usize>) -> TextAt {
    let Some(line) = line else {
        return TextAt::Key(None);
    };
    let text = file.lines().nth(line.saturating_sub(1)).unwrap_or("");
    let text = text.split(" #").next().unwrap_or(text).trim_end();
    let block = text
        .trim_end_matches(['-', '+', '1', '2', '3', '4', '5', '6', '7', '8', '9'])
        .ends_with('|');
    if block {
        TextAt::Block(line + 1)
    } else {
        TextAt::Key(Some(line))
    }
}

#[derive(Debug, Clone, Copy)]
enum TextAt {
    /// A literal block scalar whose first line is this line of the file.
    Block(usize),
    /// Any other string: its key's line.
    Key(Option<usize>),
}

/// How a configuration reaches the filter: a YAML object of the Envoy config (or a manifest)
/// arrives as a `google.protobuf.Struct`, JSON text in a `StringValue` as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Struct,
    Json,
}

/// The bytes the filter is handed for `value`.
fn encode(value: &Value, encoding: Encoding) -> Vec<u8> {
    match (encoding, value) {
        (Encoding::Struct, Value::Object(fields)) => {
            prost::Message::encode_to_vec(&to_struct(fields))
        }
        _ => serde_json::to_vec(value).unwrap_or_default(),
    }
}

fn to_struct(fields: &serde_json::Map<String, Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: fields
            .iter()
            .map(|(k, v)| (k.clone(), to_proto(v)))
            .collect(),
    }
}

/// A JSON value as a protobuf `Value` (numbers are doubles, as in every Struct).
fn to_proto(value: &Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(text) => Kind::StringValue(text.clone()),
        Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.iter().map(to_proto).collect(),
        }),
        Value::Object(fields) => Kind::StructValue(to_struct(fields)),
    };
    prost_types::Value { kind: Some(kind) }
}

/// The configuration compiled as the filter compiles it, every secret it reads given a
/// stand-in value (so that a config is judged without them), and the names it read. A field
/// whose secret the filter refuses as a stand-in (it checks the value: a log level, an
/// origin) is set aside, as if not given, and the rest compiled again; where that is not
/// possible (a list item, a field the rest depends on), checking stops there. Findings say
/// which fields wait for their secrets.
fn compile(
    mut value: Option<Value>,
    bytes: Vec<u8>,
    encoding: Encoding,
) -> (Result<(), ConfigError>, Vec<String>, Vec<Finding>) {
    let names = RefCell::new(Vec::<String>::new());
    let env = |name: &str| {
        let mut names = names.borrow_mut();
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
        Some(format!("secret-{name}"))
    };
    let mut deferred: Vec<Finding> = Vec::new();
    let mut bytes = bytes;
    let result = loop {
        let Err(error) = FilterConfig::from_bytes_with_env(&bytes, &env) else {
            break Ok(());
        };
        let reason = without_position(error.reason.clone());
        let note = |text: &str| Finding {
            path: error.path.clone(),
            line: None,
            message: format!("at `{}`: {text} (with a stand-in: {reason})", error.path),
        };
        if deferred
            .iter()
            .any(|d| d.path == error.path || is_inside(&d.path, &error.path))
        {
            deferred.push(note(
                "needs a secret set aside above: checking stopped here",
            ));
            break Ok(());
        }
        let set_aside = match value.as_mut() {
            Some(v) => set_aside_secret(v, &error.path),
            None => SetAside::No,
        };
        match set_aside {
            SetAside::No => break Err(error),
            SetAside::Stop => {
                deferred.push(note("a secret, checked when Envoy loads the configuration with its value; checking stopped here"));
                break Ok(());
            }
            SetAside::Removed => {
                deferred.push(note(
                    "a secret, checked when Envoy loads the configuration with its value",
                ));
            }
        }
        if deferred.len() >= 32 {
            break Err(error);
        }
        bytes = value
            .as_ref()
            .map(|v| encode(v, encoding))
            .unwrap_or_default();
    };
    (result, names.into_inner(), deferred)
}

enum SetAside {
    /// The field does not read a secret: the error is the configuration's.
    No,
    /// The field reads a secret and is removed.
    Removed,
    /// A list item reads it: removing it would renumber the items after it.
    Stop,
}

/// Removes the field at `path` when its value is a string that reads a secret.
fn set_aside_secret(value: &mut Value, path: &str) -> SetAside {
    let Some((parent, last)) = split_last(path) else {
        return SetAside::No;
    };
    let Some(container) = at_path(value, parent) else {
        return SetAside::No;
    };
    let reads_secret = |v: &Value| v.as_str().is_some_and(|s| s.contains("${"));
    match (container, last) {
        (Value::Object(map), Segment::Key(key)) if map.get(key).is_some_and(reads_secret) => {
            map.remove(key);
            SetAside::Removed
        }
        (Value::Array(items), Segment::Index(i)) if items.get(i).is_some_and(reads_secret) => {
            SetAside::Stop
        }
        _ => SetAside::No,
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

/// Each secret read, with the first line that names it (`${NAME}` or `${NAME:-default}`).
fn secrets(file: &str, names: &[String]) -> Vec<Secret> {
    names
        .iter()
        .map(|name| {
            let plain = format!("${{{name}}}");
            let with_default = format!("${{{name}:-");
            let line = file
                .lines()
                .position(|l| l.contains(&plain) || l.contains(&with_default));
            Secret {
                name: name.clone(),
                line: line.map(|l| l + 1),
                has_default: file.contains(&with_default),
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
