//! YAML (and so JSON) read into JSON values, with the line of every field, so that an error's
//! field path (`routes[0].match.path`, as the filter writes it) can name the line to fix.

use std::collections::HashMap;

use serde_json::{Map, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// One YAML document of a file.
#[derive(Debug, Clone)]
pub struct Document {
    pub value: Value,
    pub lines: Lines,
}

/// The line (1-based) where each field path starts: a map entry's key, a list item.
#[derive(Debug, Clone, Default)]
pub struct Lines(HashMap<String, usize>);

impl Lines {
    /// The line of `path`, or of the nearest field that contains it (an error about a missing
    /// field names the object it is missing from).
    pub fn of(&self, path: &str) -> Option<usize> {
        let mut path = path;
        loop {
            if let Some(line) = self.0.get(path) {
                return Some(*line);
            }
            path = parent(path)?;
        }
    }
}

/// `a.b[2]` → `a.b` → `a` → ``.
fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    path.get(..cut)
}

/// A child's path, as the filter's `ConfigError` joins them.
pub use hardening::syntax::error::join_path as join;

/// Every document of `text`; an error names its line and column.
pub fn parse(text: &str) -> Result<Vec<Document>, String> {
    let mut builder = Builder::default();
    Parser::new_from_str(text)
        .load(&mut builder, true)
        .map_err(|e| {
            format!(
                "line {}, column {}: {}",
                e.marker().line(),
                e.marker().col(),
                e.info()
            )
        })?;
    match builder.error {
        Some(error) => Err(error),
        None => Ok(builder.documents),
    }
}

enum Frame {
    Sequence {
        items: Vec<Value>,
        path: String,
        anchor: usize,
    },
    Mapping {
        entries: Map<String, Value>,
        path: String,
        anchor: usize,
        key: Option<String>,
    },
}

/// Deeper nesting is refused (the filter's JSON reader stops at 128 levels; values this deep
/// would overflow the stack of the code that walks them).
const MAX_DEPTH: usize = 200;
/// Values copied through aliases, at most: a few lines of anchors can otherwise mean billions.
const MAX_ALIASED: usize = 1_000_000;

/// The key of an entry Envoy drops (`!ignore key: ...`, Envoy's YAML loader).
const IGNORED: &str = "\u{0}ignored";

#[derive(Default)]
struct Builder {
    documents: Vec<Document>,
    stack: Vec<Frame>,
    lines: Lines,
    anchors: HashMap<usize, Value>,
    /// Values copied through aliases so far.
    aliased: usize,
    error: Option<String>,
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                if self.expects_key() {
                    let ignored = tag.is_some_and(|t| t.handle == "!" && t.suffix == "ignore");
                    self.key(if ignored { IGNORED.into() } else { text }, mark);
                } else {
                    let plain = style == TScalarStyle::Plain;
                    self.value(scalar(&text, plain), anchor, mark);
                }
            }
            Event::Alias(_) | Event::SequenceStart(..) | Event::MappingStart(..)
                if self.expects_key() =>
            {
                self.error = Some(format!(
                    "line {}: a key must be a plain string (Envoy reads keys as strings)",
                    mark.line()
                ));
            }
            Event::Alias(anchor) => {
                let value = self.anchors.get(&anchor).cloned().unwrap_or(Value::Null);
                self.aliased += size(&value);
                if self.aliased > MAX_ALIASED {
                    self.error = Some(format!(
                        "line {}: aliases copy more than {MAX_ALIASED} values",
                        mark.line()
                    ));
                    return;
                }
                self.value(value, 0, mark);
            }
            Event::SequenceStart(anchor, _) => {
                let path = self.open(mark);
                self.stack.push(Frame::Sequence {
                    items: Vec::new(),
                    path,
                    anchor,
                });
            }
            Event::MappingStart(anchor, _) => {
                let path = self.open(mark);
                self.stack.push(Frame::Mapping {
                    entries: Map::new(),
                    path,
                    anchor,
                    key: None,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => self.close(mark),
            _ => {}
        }
    }
}

impl Builder {
    fn expects_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Mapping { key: None, .. }))
    }

    fn key(&mut self, text: String, mark: Marker) {
        if let Some(Frame::Mapping {
            entries, path, key, ..
        }) = self.stack.last_mut()
        {
            if text != IGNORED && entries.contains_key(&text) {
                self.error = Some(format!("line {}: `{text}` is given twice", mark.line()));
                return;
            }
            self.lines.0.entry(join(path, &text)).or_insert(mark.line());
            *key = Some(text);
        }
    }

    /// The path of a node starting here (and its line, if it is a list item).
    fn open(&mut self, mark: Marker) -> String {
        if self.stack.len() >= MAX_DEPTH {
            self.error = Some(format!(
                "line {}: nested deeper than {MAX_DEPTH} levels",
                mark.line()
            ));
        }
        let path = match self.stack.last() {
            None => String::new(),
            Some(Frame::Sequence { items, path, .. }) => format!("{path}[{}]", items.len()),
            Some(Frame::Mapping { path, key, .. }) => join(path, key.as_deref().unwrap_or("?")),
        };
        self.lines.0.entry(path.clone()).or_insert(mark.line());
        path
    }

    fn close(&mut self, mark: Marker) {
        let (value, anchor) = match self.stack.pop() {
            Some(Frame::Sequence { items, anchor, .. }) => (Value::Array(items), anchor),
            Some(Frame::Mapping {
                entries, anchor, ..
            }) => (Value::Object(entries), anchor),
            None => return,
        };
        self.value(value, anchor, mark);
    }

    /// A finished node: into its parent, or the document when it is the root.
    fn value(&mut self, value: Value, anchor: usize, mark: Marker) {
        if anchor > 0 {
            self.anchors.insert(anchor, value.clone());
        }
        match self.stack.last_mut() {
            None => {
                self.documents.push(Document {
                    value,
                    lines: std::mem::take(&mut self.lines),
                });
            }
            Some(Frame::Sequence { items, path, .. }) => {
                let item = format!("{path}[{}]", items.len());
                self.lines.0.entry(item).or_insert(mark.line());
                items.push(value);
            }
            Some(Frame::Mapping { entries, key, .. }) => {
                if let Some(key) = key.take().filter(|k| k != IGNORED) {
                    entries.insert(key, value);
                }
            }
        }
    }
}

/// How many values `value` is made of.
fn size(value: &Value) -> usize {
    let mut count = 0;
    let mut pending = vec![value];
    while let Some(value) = pending.pop() {
        count += 1;
        match value {
            Value::Array(items) => pending.extend(items),
            Value::Object(entries) => pending.extend(entries.values()),
            _ => {}
        }
    }
    count
}

/// A scalar's value as Envoy's YAML loader reads it (`parseYamlNode` in Envoy's
/// `source/common/protobuf/yaml_utility.cc`, over yaml-cpp): a quoted or block scalar is a
/// string; a plain one is null (`~`, `null`, nothing), else a boolean as yaml-cpp decodes one
/// (`true`, `yes`, `on`, `y` and their opposites, in lower, upper or capitalised case), else an
/// integer (one beyond 32 bits becomes its decimal string), else a string. Envoy 1.40 gives
/// the filter `600.0`, `6e2` and `.inf` as strings (checked with `envoy --mode validate`).
fn scalar(text: &str, plain: bool) -> Value {
    if !plain {
        return Value::String(text.to_string());
    }
    if matches!(text, "" | "~" | "null" | "Null" | "NULL") {
        return Value::Null;
    }
    if let Some(b) = yaml_cpp_bool(text) {
        return Value::Bool(b);
    }
    match integer(text) {
        Some(i) => match i32::try_from(i) {
            Ok(small) => Value::Number(small.into()),
            Err(_) => Value::String(i.to_string()),
        },
        None => Value::String(text.to_string()),
    }
}

/// yaml-cpp's `convert<bool>`: the YAML 1.1 words, all lower, all upper or capitalised.
fn yaml_cpp_bool(text: &str) -> Option<bool> {
    const WORDS: &[(&str, bool)] = &[
        ("y", true),
        ("yes", true),
        ("true", true),
        ("on", true),
        ("n", false),
        ("no", false),
        ("false", false),
        ("off", false),
    ];
    let lower = text.to_ascii_lowercase();
    let (_, value) = WORDS.iter().find(|(word, _)| *word == lower)?;
    let capitalised = text.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && text.chars().skip(1).all(|c| c.is_ascii_lowercase());
    let one_case = text == lower || text == text.to_ascii_uppercase();
    (one_case || capitalised).then_some(*value)
}

/// An integer as yaml-cpp reads one (a C++ stream with the base detected): an optional sign,
/// then `0x` hex, `0` octal or decimal digits.
fn integer(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if digits.starts_with(['+', '-']) {
        return None;
    }
    let magnitude = if let Some(hex) = digits.strip_prefix("0x").or(digits.strip_prefix("0X")) {
        i64::from_str_radix(hex, 16).ok()?
    } else if let Some(octal) = digits.strip_prefix('0').filter(|o| !o.is_empty()) {
        i64::from_str_radix(octal, 8).ok()?
    } else {
        digits.parse::<i64>().ok()?
    };
    Some(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_and_lines() {
        let text = "a: 1\nb:\n  - x\n  - {c: true, d: \"7\"}\n  -\n    e: ~\nf: |\n  {\"g\": 1}\n";
        let documents = parse(text).expect("parses");
        let document = &documents[0];
        assert_eq!(
            document.value,
            json!({"a": 1, "b": ["x", {"c": true, "d": "7"}, {"e": null}], "f": "{\"g\": 1}\n"})
        );
        let lines = &document.lines;
        assert_eq!(lines.of("a"), Some(1));
        assert_eq!(lines.of("b"), Some(2));
        assert_eq!(lines.of("b[0]"), Some(3));
        assert_eq!(lines.of("b[1].d"), Some(4));
        assert_eq!(lines.of("b[2].e"), Some(6));
        assert_eq!(lines.of("b[2].missing"), Some(6));
        assert_eq!(lines.of("f"), Some(7));
    }

    #[test]
    fn scalars_as_envoy_reads_them() {
        let text = "a: [yes, Off, Y, TRUE, tRue, 7, +7, -7, 0x10, 010, 4294967296, 1e2, 2.5, ~, '8', \"on\", x]\n";
        let documents = parse(text).expect("parses");
        assert_eq!(
            documents[0].value,
            json!({"a": [true, false, true, true, "tRue", 7, 7, -7, 16, 8, "4294967296", "1e2", "2.5", null, "8", "on", "x"]})
        );
        let ignored = parse("a: 1\n!ignore b: {c: 2}\nd: 3\n").expect("parses");
        assert_eq!(ignored[0].value, json!({"a": 1, "d": 3}));
        assert!(parse("? [a]\n: 1\n").is_err_and(|e| e.contains("a key must be a plain string")));
    }

    #[test]
    fn documents_anchors_and_errors() {
        let documents = parse("a: &x [1, 2]\nb: *x\n---\nc: 3.5\n").expect("parses");
        assert_eq!(documents[0].value, json!({"a": [1, 2], "b": [1, 2]}));
        assert_eq!(documents[1].value, json!({"c": "3.5"}));
        assert_eq!(documents[1].lines.of("c"), Some(4));
        assert_eq!(
            parse("a: 1\na: 2\n").map(|_| ()),
            Err("line 2: `a` is given twice".into())
        );
        assert!(parse("a: [1\n").is_err());
        let deep = format!("{}{}", "[".repeat(210), "]".repeat(210));
        assert_eq!(
            parse(&deep).map(|_| ()),
            Err("line 1: nested deeper than 200 levels".into())
        );
        // Each alias doubles the previous: 2^30 values from 30 lines.
        let mut laughs = String::from("a0: &a0 [x, x]\n");
        for i in 1..30 {
            laughs.push_str(&format!("a{i}: &a{i} [*a{}, *a{}]\n", i - 1, i - 1));
        }
        assert!(parse(&laughs).is_err_and(|e| e.contains("aliases copy more than")));
    }
}
