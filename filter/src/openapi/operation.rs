//! One operation's parameters and request body as the route's `validate` section: path,
//! query, header and cookie parameters as object schemas (with how the query's are written),
//! the body's media types, whether it is required, and the schema of its JSON.

use serde_json::{Map, Value, json};

use super::document::resolve;
use super::schemas::Schemas;
use crate::policy::validate::{QueryStyle, RawValidate};
use crate::syntax::{ConfigError, OrderedMap};

/// Header parameters OpenAPI says are ignored ("Parameter Object", `in: header`): the filter
/// checks what they describe elsewhere (the body's media type) or not at all.
const IGNORED_HEADERS: &[&str] = &["accept", "content-type", "authorization"];

/// What the compiler needs besides the operation.
pub struct Context<'a> {
    pub document: &'a Value,
    pub schemas: &'a Schemas,
    pub reject_undeclared_query: bool,
    pub max_body_bytes: Option<u64>,
}

/// The parameters of one place (query, headers, cookies): each schema under its name, and
/// the names a request must send.
#[derive(Default)]
struct Place {
    properties: Map<String, Value>,
    required: Vec<Value>,
}

impl Place {
    fn add(&mut self, name: String, schema: Value, required: bool) {
        if required {
            self.required.push(json!(name));
        }
        self.properties.insert(name, schema);
    }

    fn is_empty(&self) -> bool {
        self.properties.is_empty()
    }

    /// The place's object schema, whole; `open`: other names are let through.
    fn schema(self, cx: &Context<'_>, open: bool) -> Value {
        let mut schema = Map::new();
        schema.insert("type".into(), json!("object"));
        schema.insert("properties".into(), Value::Object(self.properties));
        if !self.required.is_empty() {
            schema.insert("required".into(), Value::Array(self.required));
        }
        if !open {
            schema.insert("additionalProperties".into(), Value::Bool(false));
        }
        cx.schemas.whole(Value::Object(schema))
    }
}

/// An operation's parameters, by where they are.
#[derive(Default)]
struct Params {
    query: Place,
    query_styles: Vec<(String, QueryStyle)>,
    headers: Place,
    cookies: Place,
    path: Vec<(String, Value)>,
}

/// The operation's `validate` section. `inherited`: the path item's parameters (found at
/// `item_at`); `at`: the operation's place in the config.
pub fn validate_section(
    cx: &Context<'_>,
    operation: &Value,
    inherited: Option<&Value>,
    item_at: &str,
    at: &str,
    template_names: &[&str],
) -> Result<RawValidate, ConfigError> {
    let params = collect_parameters(cx, operation, inherited, item_at, at, template_names)?;
    let mut raw = RawValidate {
        max_body_bytes: cx.max_body_bytes,
        ..RawValidate::default()
    };
    if !params.query.is_empty() || cx.reject_undeclared_query {
        raw.query = Some(params.query.schema(cx, !cx.reject_undeclared_query));
        if !params.query_styles.is_empty() {
            raw.query_styles = Some(OrderedMap(params.query_styles));
        }
    }
    if !params.headers.is_empty() {
        raw.headers = Some(params.headers.schema(cx, true));
    }
    if !params.cookies.is_empty() {
        raw.cookies = Some(params.cookies.schema(cx, true));
    }
    if !params.path.is_empty() {
        let whole = params
            .path
            .into_iter()
            .map(|(n, s)| (n, cx.schemas.whole(s)));
        raw.path_params = Some(OrderedMap(whole.collect()));
    }
    if let Some(body) = operation.get("requestBody") {
        request_body(cx, body, &format!("{at}.requestBody"), &mut raw)?;
    }
    Ok(raw)
}

/// The operation's parameters and the path item's, sorted by where they are; every `{name}`
/// of the path must be one.
fn collect_parameters(
    cx: &Context<'_>,
    operation: &Value,
    inherited: Option<&Value>,
    item_at: &str,
    at: &str,
    template_names: &[&str],
) -> Result<Params, ConfigError> {
    let mut params = Params::default();
    let mut seen: Vec<(String, &str)> = Vec::new();
    // The operation's own parameters override the path item's of the same name and place.
    let own = parameter_list(cx, operation.get("parameters"), &format!("{at}.parameters"))?;
    let shared = parameter_list(cx, inherited, &format!("{item_at}.parameters"))?;
    for (parameter, place) in own.into_iter().chain(shared) {
        let text = |field: &str| parameter.get(field).and_then(Value::as_str).unwrap_or("");
        // Header names are matched without case: `X-Id` overrides `x-id`.
        let name = match text("in") {
            "header" => text("name").to_ascii_lowercase(),
            _ => text("name").to_string(),
        };
        let key = (name, text("in"));
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let parameter = Parameter::read(cx, parameter, &place)?;
        parameter.add_to(&mut params, template_names)?;
    }
    for name in template_names {
        if !params.path.iter().any(|(n, _)| n == name) {
            return Err(ConfigError::new(
                format!("{at}.parameters"),
                format!("the path's `{{{name}}}` has no `in: path` parameter"),
            ));
        }
    }
    Ok(params)
}

/// The parameter objects of a list, `$ref`s followed, each with its place.
fn parameter_list<'d>(
    cx: &Context<'d>,
    list: Option<&'d Value>,
    at: &str,
) -> Result<Vec<(&'d Value, String)>, ConfigError> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    let Value::Array(list) = list else {
        return Err(ConfigError::new(at, "must be a list of parameters"));
    };
    list.iter()
        .enumerate()
        .map(|(i, p)| resolve(cx.document, p, &format!("{at}[{i}]")))
        .collect()
}

/// A Parameter Object, read.
struct Parameter<'p> {
    at: &'p str,
    name: &'p str,
    place: &'p str,
    required: bool,
    style: Option<&'p str>,
    explode: Option<bool>,
    allow_empty: bool,
    content: bool,
    /// The schema to check (its top `$ref` inlined, so its type shows).
    schema: Value,
}

impl<'p> Parameter<'p> {
    fn read(cx: &Context<'_>, parameter: &'p Value, at: &'p str) -> Result<Self, ConfigError> {
        let text = |field: &str| parameter.get(field).and_then(Value::as_str);
        let Some(name) = text("name") else {
            return Err(ConfigError::new(
                format!("{at}.name"),
                "missing: a parameter needs a `name`",
            ));
        };
        Ok(Self {
            at,
            name,
            place: text("in").unwrap_or(""),
            required: parameter.get("required") == Some(&Value::Bool(true)),
            style: text("style"),
            explode: parameter.get("explode").and_then(Value::as_bool),
            allow_empty: parameter.get("allowEmptyValue") == Some(&Value::Bool(true)),
            content: parameter.get("content").is_some(),
            schema: parameter_schema(cx, parameter, at)?,
        })
    }

    /// Refuses a style the filter does not read for this place.
    fn check_style(&self, allowed: &str) -> Result<(), ConfigError> {
        if self.style.is_none_or(|s| s == allowed) {
            return Ok(());
        }
        Err(self.wrong_style(&format!("`{allowed}`")))
    }

    fn wrong_style(&self, allowed: &str) -> ConfigError {
        ConfigError::new(
            format!("{}.style", self.at),
            format!(
                "`{}` is not read for `in: {}` (the filter reads {allowed})",
                self.style.unwrap_or(""),
                self.place
            ),
        )
    }

    fn add_to(self, params: &mut Params, template_names: &[&str]) -> Result<(), ConfigError> {
        let name = self.name.to_string();
        match self.place {
            "path" => {
                self.check_style("simple")?;
                if !template_names.contains(&self.name) {
                    return Err(ConfigError::new(
                        format!("{}.name", self.at),
                        format!("`{name}`: the path has no `{{{name}}}`"),
                    ));
                }
                params.path.push((name, self.schema));
            }
            "query" => self.add_to_query(params)?,
            "header" => {
                self.check_style("simple")?;
                let lower = name.to_ascii_lowercase();
                if !IGNORED_HEADERS.contains(&lower.as_str()) {
                    params.headers.add(lower, self.schema, self.required);
                }
            }
            "cookie" => {
                self.check_style("form")?;
                params.cookies.add(name, self.schema, self.required);
            }
            other => {
                return Err(ConfigError::new(
                    format!("{}.in", self.at),
                    format!("`{other}`: a parameter is `in` path, query, header or cookie"),
                ));
            }
        }
        Ok(())
    }

    fn add_to_query(self, params: &mut Params) -> Result<(), ConfigError> {
        let style = query_style(self.style, self.explode, &self.schema).ok_or_else(|| {
            self.wrong_style("`form` (exploded or not), `spaceDelimited` and `pipeDelimited` for arrays, `deepObject` for objects")
        })?;
        let object = is_object(&self.schema);
        if style == QueryStyle::Form && object && !self.content {
            // Exploded form: the object's properties are the query's own keys.
            spread(params, &self.schema, self.required);
            return Ok(());
        }
        if style != QueryStyle::Form {
            params.query_styles.push((self.name.to_string(), style));
        }
        let schema = if self.allow_empty {
            self.schema
        } else {
            not_empty(self.schema)
        };
        params
            .query
            .add(self.name.to_string(), schema, self.required);
        Ok(())
    }
}

/// The parameter's schema, its top `$ref` inlined so that its type shows. A `content`
/// parameter (JSON text in the value) is marked to be parsed as JSON.
fn parameter_schema(cx: &Context<'_>, parameter: &Value, at: &str) -> Result<Value, ConfigError> {
    if let Some(content) = parameter.get("content") {
        let Some((media, entry)) = content.as_object().and_then(|c| c.iter().next()) else {
            return Err(ConfigError::new(
                format!("{at}.content"),
                "must hold one media type",
            ));
        };
        let essence = crate::policy::validate::media_essence(media).unwrap_or_default();
        if !crate::policy::validate::is_json_media(&essence) {
            return Err(ConfigError::new(
                format!("{at}.content.{media}"),
                "only JSON content is read in a parameter",
            ));
        }
        let schema = entry.get("schema").cloned().unwrap_or(Value::Bool(true));
        let prepared = cx
            .schemas
            .prepare(&schema, &format!("{at}.content.{media}.schema"))?;
        let mut marked = cx.schemas.inline_top(&prepared);
        if let Value::Object(object) = &mut marked {
            object.insert("x-hardening-json".into(), Value::Bool(true));
        }
        return Ok(marked);
    }
    let Some(schema) = parameter.get("schema") else {
        return Err(ConfigError::new(
            at,
            "a parameter needs a `schema` (or `content`)",
        ));
    };
    let prepared = cx.schemas.prepare(schema, &format!("{at}.schema"))?;
    Ok(cx.schemas.inline_top(&prepared))
}

/// How a query parameter is written, if the filter reads that style for its type.
fn query_style(style: Option<&str>, explode: Option<bool>, schema: &Value) -> Option<QueryStyle> {
    let is = |t: &str| match t {
        "object" => is_object(schema),
        _ => has_type(schema, t),
    };
    match (style.unwrap_or("form"), explode) {
        ("form", None | Some(true)) => Some(QueryStyle::Form),
        ("form", Some(false)) if is("object") => None,
        // Not exploded, a primitive is written as it is exploded: `limit=5`.
        ("form", Some(false)) if is("array") => Some(QueryStyle::Comma),
        ("form", Some(false)) => Some(QueryStyle::Form),
        ("spaceDelimited", None | Some(false)) if is("array") => Some(QueryStyle::SpaceDelimited),
        ("pipeDelimited", None | Some(false)) if is("array") => Some(QueryStyle::PipeDelimited),
        ("deepObject", None | Some(true)) if is("object") => Some(QueryStyle::DeepObject),
        _ => None,
    }
}

/// Whether `type` is `name`, or a list holding it (`[object, "null"]`).
fn has_type(schema: &Value, name: &str) -> bool {
    match schema.get("type") {
        Some(Value::String(t)) => t == name,
        Some(Value::Array(types)) => types.iter().any(|t| t == name),
        _ => false,
    }
}

/// Whether a parameter's schema describes an object: by its type, or by properties without a
/// type (`allOf` members included), so that an object is never taken for one value.
fn is_object(schema: &Value) -> bool {
    has_type(schema, "object")
        || (schema.get("type").is_none() && schema.get("properties").is_some())
        || schema
            .get("allOf")
            .and_then(Value::as_array)
            .is_some_and(|members| members.iter().any(is_object))
}

/// An exploded form object's properties as top-level query parameters.
fn spread(params: &mut Params, schema: &Value, required: bool) {
    if let Some(Value::Object(properties)) = schema.get("properties") {
        for (name, property) in properties {
            params
                .query
                .properties
                .insert(name.clone(), property.clone());
        }
    }
    if required && let Some(Value::Array(names)) = schema.get("required") {
        params.query.required.extend(names.iter().cloned());
    }
    for member in schema
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        spread(params, member, required);
    }
}

/// An empty value is refused unless `allowEmptyValue` (OpenAPI 3.0's default is false); one
/// of another type than text is refused as not of its type already.
fn not_empty(mut schema: Value) -> Value {
    let text = match schema.get("type") {
        None => true,
        Some(Value::String(t)) => t == "string",
        Some(Value::Array(types)) => types.contains(&json!("string")),
        Some(_) => false,
    };
    if let Value::Object(object) = &mut schema
        && text
        && !object.contains_key("not")
    {
        object.insert("not".into(), json!({"const": ""}));
    }
    schema
}

/// The request body: its media types (any other is a 415), whether it is required, and the
/// schema of its JSON.
fn request_body(
    cx: &Context<'_>,
    body: &Value,
    at: &str,
    raw: &mut RawValidate,
) -> Result<(), ConfigError> {
    let (body, at) = resolve(cx.document, body, at)?;
    raw.body_required = Some(body.get("required") == Some(&Value::Bool(true)));
    let Some(Value::Object(content)) = body.get("content") else {
        return Err(ConfigError::new(
            format!("{at}.content"),
            "missing: a request body lists its media types",
        ));
    };
    let mut types = Vec::new();
    let mut json_schema: Option<(Value, String)> = None;
    let mut range_schema: Option<(Value, String)> = None;
    for (media, entry) in content {
        let range = media
            .split(';')
            .next()
            .unwrap_or(media)
            .trim()
            .to_ascii_lowercase();
        let essence = crate::policy::validate::media_essence(&range).unwrap_or_default();
        // A range that covers JSON (`*/*`, `application/*`) gives JSON bodies its schema
        // unless a JSON media type has one of its own (the more specific wins).
        let covers_json = matches!(range.as_str(), "*/*" | "application/*");
        if let Some(schema) = entry.get("schema").filter(|_| covers_json)
            && range_schema.is_none()
        {
            let place = format!("{at}.content.{media}.schema");
            range_schema = Some((cx.schemas.prepare(schema, &place)?, place));
        }
        if crate::policy::validate::is_json_media(&essence) {
            let place = format!("{at}.content.{media}.schema");
            let schema = match entry.get("schema") {
                Some(schema) => cx.schemas.prepare(schema, &place)?,
                None => Value::Bool(true),
            };
            match &json_schema {
                Some((known, first)) if *known != schema => {
                    return Err(ConfigError::new(
                        place,
                        format!(
                            "JSON media types with different schemas are not read (see {first})"
                        ),
                    ));
                }
                Some(_) => {}
                None => json_schema = Some((schema, place)),
            }
        }
        if !types.contains(&range) {
            types.push(range);
        }
    }
    if types.is_empty() {
        return Err(ConfigError::new(
            format!("{at}.content"),
            "lists no media type",
        ));
    }
    raw.content_types = Some(types);
    raw.body = json_schema
        .or(range_schema)
        .map(|(schema, _)| cx.schemas.whole(schema));
    Ok(())
}
