//! Request validation: method and route (404/405 for a strict API), body size (413),
//! content type (415), query, headers and path parameters against schemas (400), and the body
//! against a JSON Schema once it has fully arrived (400 with JSON Pointers). A bad request never
//! reaches the upstream's handler.

mod body;
mod compile;
mod media;
mod params;
pub mod raw;
mod schema;

pub use compile::{DEFAULT_MAX_BODY_BYTES, compile};
pub use media::{essence as media_essence, is_json as is_json_media};
pub use params::{Kind, QueryStyle};
pub use raw::{RawValidate, UnknownRoutes};
pub use schema::{MAX_ERRORS, Schema, Violation};

use http::StatusCode;

use crate::problem::Problem;
use crate::reply::LocalResponse;
use crate::request::RequestHead;

/// A schema for name/value parameters, with the types to coerce their values to.
#[derive(Debug)]
pub struct ParamsSchema {
    schema: Schema,
    kinds: Vec<(String, Kind)>,
    /// How the query's parameters are written (empty for other parameters).
    styles: Vec<(String, QueryStyle)>,
}

/// The compiled `validate` section of a route (or of the defaults).
#[derive(Debug)]
pub struct Validation {
    body: Option<Schema>,
    /// `None`: required for POST, PUT and PATCH when there is a body schema.
    body_required: Option<bool>,
    content_types: Option<Vec<media::MediaRange>>,
    pub max_body_bytes: u64,
    query: Option<ParamsSchema>,
    headers: Option<ParamsSchema>,
    cookies: Option<ParamsSchema>,
    path_params: Option<ParamsSchema>,
}

/// Why a request was refused (a metric label and the problem's `code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    RouteNotFound,
    MethodNotAllowed,
    BodyNotAllowed,
    BodyTooLarge,
    UnsupportedMediaType,
    BodyRequired,
    MalformedBody,
    InvalidBody,
    InvalidRequest,
}

impl Reason {
    pub const ALL: &'static [Reason] = &[
        Reason::RouteNotFound,
        Reason::MethodNotAllowed,
        Reason::BodyNotAllowed,
        Reason::BodyTooLarge,
        Reason::UnsupportedMediaType,
        Reason::BodyRequired,
        Reason::MalformedBody,
        Reason::InvalidBody,
        Reason::InvalidRequest,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Reason::RouteNotFound => "route_not_found",
            Reason::MethodNotAllowed => "method_not_allowed",
            Reason::BodyNotAllowed => "body_not_allowed",
            Reason::BodyTooLarge => "body_too_large",
            Reason::UnsupportedMediaType => "unsupported_media_type",
            Reason::BodyRequired => "body_required",
            Reason::MalformedBody => "malformed_body",
            Reason::InvalidBody => "invalid_body",
            Reason::InvalidRequest => "invalid_request",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Reason::RouteNotFound => StatusCode::NOT_FOUND,
            Reason::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Reason::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Reason::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// A refusal: the reason (for metrics) and the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: Reason,
    pub response: LocalResponse,
}

fn refuse(
    reason: Reason,
    detail: impl Into<String>,
    violations: &[Violation],
    request_id: Option<&str>,
) -> Refusal {
    let mut problem = Problem::new(reason.status(), reason.code(), detail);
    if !violations.is_empty() {
        problem = problem.with_extension("errors", &violations);
    }
    Refusal {
        reason,
        response: LocalResponse::problem(&problem, request_id),
    }
}

/// What happens to the request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyPlan {
    /// No body, or nothing to check in it.
    None,
    /// The headers declared a length within the limit (Envoy's codecs hold the body to it), so
    /// nothing is left to decide at the end: the request streams through, its bytes counted
    /// against the limit all the same.
    Count { limit: u64 },
    /// No declared length: the whole request (headers included) is held until the body ends
    /// within the limit, then let go unread.
    Hold { limit: u64 },
    /// The whole request is held until the body's end, then the body's size and schema are
    /// checked. `required`: the method expects a body (POST, PUT, PATCH), so a stream that
    /// ends empty is refused as `body_required`, as when the headers end it; otherwise an
    /// empty body passes.
    Buffer { limit: u64, required: bool },
    /// A `GET` or `HEAD` whose stream did not end with its headers: held, refused (400
    /// `body_not_allowed`) at the first byte of body, let go if the stream ends empty (HTTP/2
    /// clients may send an empty DATA frame to end a request).
    Forbid,
}

impl BodyPlan {
    /// Whether the request must wait, headers included, until its body has been checked: a
    /// request that fails a check must never open an upstream request.
    pub fn holds_request(&self) -> bool {
        matches!(
            self,
            BodyPlan::Hold { .. } | BodyPlan::Buffer { .. } | BodyPlan::Forbid
        )
    }
}

/// Methods whose requests carry no body.
fn is_bodiless(method: &str) -> bool {
    matches!(method, "GET" | "HEAD")
}

/// After a WebSocket handshake (a GET with `Upgrade: websocket`, RFC 6455; Envoy presents
/// HTTP/2's extended CONNECT the same way) or a CONNECT, what follows the headers is a
/// tunnel's stream, not a request body: no body checks, no size limit over the whole session.
/// A handshake declares no body (no `Content-Length` other than 0, no `Transfer-Encoding`):
/// one that does, any other `Upgrade`, or an `Upgrade` on another method is an ordinary
/// request if the upstream does not take the upgrade up, so its body is still checked.
fn is_tunnel(request: &RequestHead<'_, '_>) -> bool {
    if request.method == "CONNECT" {
        return true;
    }
    request.method == "GET"
        && request
            .header("upgrade")
            .is_some_and(|u| u.trim().eq_ignore_ascii_case("websocket"))
        && request
            .header("content-length")
            .is_none_or(|v| v.trim() == "0")
        && request.header("transfer-encoding").is_none()
}

/// Methods whose requests are expected to carry the body a schema describes.
fn expects_body(method: &str) -> bool {
    matches!(method, "POST" | "PUT" | "PATCH")
}

impl Validation {
    /// Whether `on_request` reads the route's path parameters (so they are worth extracting).
    pub fn reads_path_params(&self) -> bool {
        self.path_params.is_some()
    }

    /// Checks everything the request line and headers show. `end_of_stream`: the request has
    /// no body.
    pub fn on_request(
        &self,
        request: &RequestHead<'_, '_>,
        path_params: Option<&[(&str, &str)]>,
        end_of_stream: bool,
    ) -> Result<BodyPlan, Refusal> {
        let id = request.request_id();
        let tunnel = is_tunnel(request);
        let has_body = !end_of_stream && !tunnel;
        let forbid_body = has_body && is_bodiless(request.method);
        let declared_length = self.check_declared_length(request, forbid_body, id)?;
        let essence = request.header("content-type").and_then(media::essence);
        if has_body && !forbid_body {
            self.check_content_type(essence.as_deref(), id)?;
        } else if self.requires_body(request.method) && !tunnel {
            return Err(self.body_required(id));
        }
        self.check_params(request, path_params, id)?;
        // The schema is about JSON: a body of another media type the route takes is only
        // counted against the limit.
        let checked = self.body.is_some() && essence.as_deref().is_some_and(media::is_json);
        Ok(match (has_body, checked) {
            _ if forbid_body => BodyPlan::Forbid,
            (false, _) => BodyPlan::None,
            (true, true) => BodyPlan::Buffer {
                limit: self.max_body_bytes,
                required: self.requires_body(request.method),
            },
            (true, false) if declared_length.is_some() => BodyPlan::Count {
                limit: self.max_body_bytes,
            },
            (true, false) => BodyPlan::Hold {
                limit: self.max_body_bytes,
            },
        })
    }

    /// Whether a request of `method` must carry a body.
    fn requires_body(&self, method: &str) -> bool {
        self.body_required
            .unwrap_or(self.body.is_some() && expects_body(method))
    }

    /// The body length `Content-Length` declares, refused when over the limit or when the
    /// method takes no body (`forbid_body`) and one is declared.
    fn check_declared_length(
        &self,
        request: &RequestHead<'_, '_>,
        forbid_body: bool,
        id: Option<&str>,
    ) -> Result<Option<u64>, Refusal> {
        let declared_body = request
            .header("content-length")
            .is_some_and(|v| v.trim() != "0");
        if forbid_body && declared_body {
            return Err(self.body_not_allowed(request.method, id));
        }
        let declared_length = request
            .header("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared_length.is_some_and(|length| length > self.max_body_bytes) {
            return Err(self.too_large(id));
        }
        Ok(declared_length)
    }

    /// The query, headers and path parameters against their schemas; every violation is
    /// reported (up to `MAX_ERRORS`).
    fn check_params(
        &self,
        request: &RequestHead<'_, '_>,
        path_params: Option<&[(&str, &str)]>,
        id: Option<&str>,
    ) -> Result<(), Refusal> {
        let mut violations = Vec::new();
        if let Some(query) = &self.query {
            let text = request
                .path
                .split_once('?')
                .map_or("", |(_, q)| q.split('#').next().unwrap_or(""));
            let mut pairs = params::styled_query_pairs(text, &query.kinds, &query.styles);
            match params::fold_bracketed(&mut pairs, &query.kinds, "/query") {
                Ok(()) => collect(query, pairs, "/query", &mut violations),
                Err(violation) => violations.push(violation),
            }
        }
        if let Some(headers) = &self.headers {
            let pairs = request
                .headers
                .iter()
                .filter(|(k, _)| !k.starts_with(b":"))
                .map(|(k, v)| {
                    (
                        String::from_utf8_lossy(k).into_owned(),
                        String::from_utf8_lossy(v).into_owned(),
                    )
                })
                .collect();
            // An HTTP field's list is comma-separated (RFC 9110 §5.3).
            let pairs = params::split_lists(pairs, &headers.kinds, ',', true);
            collect(headers, pairs, "/headers", &mut violations);
        }
        if let Some(cookies) = &self.cookies {
            collect(cookies, cookie_pairs(request), "/cookies", &mut violations);
        }
        if let (Some(spec), Some(params)) = (&self.path_params, path_params) {
            let pairs = params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            // Items are split before decoding: an encoded `%2C` is data.
            let pairs = params::split_lists(pairs, &spec.kinds, ',', false)
                .into_iter()
                .map(|(k, v)| (k, percent_decode(&v)));
            collect(spec, pairs, "/path", &mut violations);
        }
        if violations.is_empty() {
            return Ok(());
        }
        violations.truncate(MAX_ERRORS);
        Err(refuse(
            Reason::InvalidRequest,
            "The request's parameters are not valid.",
            &violations,
            id,
        ))
    }

    fn check_content_type(&self, essence: Option<&str>, id: Option<&str>) -> Result<(), Refusal> {
        let allowed = match (&self.content_types, &self.body, essence) {
            (Some(ranges), _, Some(essence)) => ranges.iter().any(|r| r.matches(essence)),
            (None, Some(_), Some(essence)) => media::is_json(essence),
            (None, None, _) => true,
            // `*/*` takes a body that does not say what it is.
            (Some(ranges), _, None) => ranges.iter().any(media::MediaRange::is_any),
            (None, Some(_), None) => false,
        };
        if allowed {
            return Ok(());
        }
        let expected = match &self.content_types {
            Some(_) => "one of the media types this endpoint accepts",
            None => "application/json",
        };
        Err(refuse(
            Reason::UnsupportedMediaType,
            format!("The body's Content-Type must be {expected}."),
            &[],
            id,
        ))
    }

    pub fn body_not_allowed(&self, method: &str, request_id: Option<&str>) -> Refusal {
        refuse(
            Reason::BodyNotAllowed,
            format!("A {method} request cannot have a body."),
            &[],
            request_id,
        )
    }

    pub fn too_large(&self, request_id: Option<&str>) -> Refusal {
        refuse(
            Reason::BodyTooLarge,
            format!("The body is larger than {} bytes.", self.max_body_bytes),
            &[],
            request_id,
        )
    }

    fn body_required(&self, request_id: Option<&str>) -> Refusal {
        refuse(
            Reason::BodyRequired,
            "This request needs a body.",
            &[],
            request_id,
        )
    }

    /// Checks a whole body (after `BodyPlan::Buffer`; `required` as planned there).
    pub fn on_body(
        &self,
        body: &[u8],
        required: bool,
        request_id: Option<&str>,
    ) -> Result<(), Refusal> {
        if body.len() as u64 > self.max_body_bytes {
            return Err(self.too_large(request_id));
        }
        let Some(schema) = &self.body else {
            return Ok(());
        };
        // A stream that ended without a byte (an HTTP/2 client ending its request with an
        // empty DATA frame) is no body, as if the headers had ended it.
        if body.is_empty() {
            return if required {
                Err(self.body_required(request_id))
            } else {
                Ok(())
            };
        }
        let value = body::parse(body).map_err(|e| {
            let message = format!("{} at line {} column {}", e.message, e.line, e.column);
            let violation = Violation {
                pointer: String::new(),
                keyword: "json".into(),
                message: message.clone(),
            };
            refuse(
                Reason::MalformedBody,
                format!("The body is not valid JSON: {message}."),
                &[violation],
                request_id,
            )
        })?;
        let violations = schema.violations(&value, "");
        if violations.is_empty() {
            Ok(())
        } else {
            Err(refuse(
                Reason::InvalidBody,
                "The request body does not match the schema.",
                &violations,
                request_id,
            ))
        }
    }
}

fn collect(
    schema: &ParamsSchema,
    pairs: impl IntoIterator<Item = (String, String)>,
    prefix: &str,
    out: &mut Vec<Violation>,
) {
    match params::to_object(pairs, &schema.kinds, prefix) {
        Ok(object) => out.extend(schema.schema.violations(&object, prefix)),
        Err(violation) => out.push(violation),
    }
}

/// The `name=value` pairs of the request's `Cookie` headers (RFC 6265 §5.4; values as sent).
fn cookie_pairs(request: &RequestHead<'_, '_>) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for (_, value) in request
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(b"cookie"))
    {
        for pair in String::from_utf8_lossy(value).split(';') {
            if let Some((name, value)) = pair.split_once('=') {
                pairs.push((name.trim().to_string(), value.trim().to_string()));
            }
        }
    }
    pairs
}

/// A path segment as the backend's router sees it: `%XX` decoded (invalid UTF-8 replaced), `+`
/// and every other byte as they are.
fn percent_decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// The decision for requests no route matches, when the API is strict: 404, or 405 with
/// `Allow` when routes exist for the path with other methods. `allowed`: the methods of the
/// routes that match the path (`RouteTable::methods_for_path`), `None` when none does.
pub fn unknown_route(allowed: Option<Vec<&str>>, request: &RequestHead<'_, '_>) -> Refusal {
    let id = request.request_id();
    let Some(mut allowed) = allowed else {
        return refuse(
            Reason::RouteNotFound,
            "No route matches this path.",
            &[],
            id,
        );
    };
    allowed.sort_unstable();
    allowed.dedup();
    let mut refusal = refuse(
        Reason::MethodNotAllowed,
        format!(
            "{} is not allowed here.",
            crate::syntax::excerpt(request.method, 20)
        ),
        &[],
        id,
    );
    refusal
        .response
        .headers
        .push(("allow".into(), allowed.join(", ")));
    refusal
}

#[cfg(test)]
mod tests;
