//! CORS at the edge, as the Fetch standard's CORS check judges it: preflights answered by the
//! filter (never forwarded), actual requests from allowed origins forwarded with the CORS
//! response headers added, disallowed origins refused (403 problem+json) or passed without
//! CORS headers. Everything that can be is rendered when the config loads.

mod compile;
mod origin;
pub mod raw;

pub use compile::compile;
pub use raw::{Disallowed, RawCors};

use http::StatusCode;

use crate::problem::Problem;
use crate::reply::LocalResponse;
use crate::request::RequestHead;
use crate::response::ResponseHeaders;
use crate::syntax::is_header_name;
use origin::AllowOrigins;

/// Longest `Origin` the filter considers (and echoes): serialised origins are far shorter.
const MAX_ORIGIN_LEN: usize = 512;
/// Most header names a preflight may ask for, and their total length.
const MAX_REQUESTED_HEADERS: usize = 64;
const MAX_REQUESTED_HEADERS_LEN: usize = 2048;

/// The `Vary` a preflight answer carries.
pub const PREFLIGHT_VARY: &str =
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";

/// Response headers the CORS protocol defines; the filter owns them on routes where CORS is
/// on, so the upstream's are dropped (never two `Access-Control-Allow-Origin`).
const CORS_RESPONSE_HEADERS: &[&str] = &[
    "access-control-allow-credentials",
    "access-control-allow-headers",
    "access-control-allow-methods",
    "access-control-allow-origin",
    "access-control-allow-private-network",
    "access-control-expose-headers",
    "access-control-max-age",
];

#[derive(Debug, Clone)]
pub enum AllowMethods {
    Any,
    /// Exact method tokens.
    List(Vec<String>),
}

#[derive(Debug, Clone)]
pub enum AllowHeaders {
    Any,
    Reflect,
    /// Lowercase names.
    List(Vec<String>),
}

/// A compiled CORS policy.
#[derive(Debug, Clone)]
pub struct Cors {
    origins: AllowOrigins,
    methods: AllowMethods,
    /// `Access-Control-Allow-Methods` as sent.
    methods_value: String,
    headers: AllowHeaders,
    /// `Access-Control-Allow-Headers` as sent for a list policy.
    headers_value: String,
    expose_value: Option<String>,
    credentials: bool,
    max_age_value: Option<String>,
    private_network: bool,
    preflight_status: u16,
    disallowed: Disallowed,
}

/// What the CORS policy made of a request, kept for its response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No `Origin`: not a CORS request.
    NoOrigin,
    /// An actual request from an allowed origin (the `Origin` value, to echo).
    Allowed(Box<str>),
    /// From an origin the policy does not allow (passed on with `disallowed: omit`).
    NotAllowed,
    /// A preflight the filter answered.
    Preflight,
}

/// Why a request is refused: the problem's `code` and `detail`.
#[derive(Debug, Clone, Copy)]
struct Refused {
    code: &'static str,
    detail: &'static str,
}

const ORIGIN_NOT_ALLOWED: Refused = Refused {
    code: "cors_origin_not_allowed",
    detail: "This origin is not allowed to make cross-origin requests.",
};
const METHOD_NOT_ALLOWED: Refused = Refused {
    code: "cors_method_not_allowed",
    detail: "This method is not allowed for cross-origin requests.",
};
const HEADER_NOT_ALLOWED: Refused = Refused {
    code: "cors_header_not_allowed",
    detail: "The requested headers are not allowed for cross-origin requests.",
};
const PRIVATE_NETWORK_NOT_ALLOWED: Refused = Refused {
    code: "cors_private_network_not_allowed",
    detail: "Private network access is not allowed.",
};

/// What a preflight asks for and the policy grants.
struct PreflightGrant {
    /// The requested header names, lowercased.
    headers: Vec<String>,
    /// The preflight asks for private network access.
    private_network: bool,
}

/// The request's next step after CORS: on to the next policy and the upstream, or this answer
/// now (a preflight's, or a refusal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextStep {
    Continue,
    Respond(LocalResponse),
}

/// The method a CORS preflight announces (`OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`), or `None` when the request is not a preflight.
pub fn announced_method<'a>(request: &RequestHead<'_, 'a>) -> Option<&'a str> {
    if request.method != "OPTIONS" || request.header("origin").is_none() {
        return None;
    }
    request.header("access-control-request-method")
}

impl Cors {
    pub fn on_request(&self, request: &RequestHead<'_, '_>) -> (Verdict, NextStep) {
        let Some(origin) = request.header("origin") else {
            return (Verdict::NoOrigin, NextStep::Continue);
        };
        let allowed = origin.len() <= MAX_ORIGIN_LEN && self.origins.allows(origin);
        if let Some(requested_method) = announced_method(request) {
            let answer = self.preflight(request, origin, allowed, requested_method);
            return (Verdict::Preflight, NextStep::Respond(answer));
        }
        if allowed {
            return (Verdict::Allowed(origin.into()), NextStep::Continue);
        }
        match self.disallowed {
            Disallowed::Omit => (Verdict::NotAllowed, NextStep::Continue),
            Disallowed::Reject => (
                Verdict::NotAllowed,
                NextStep::Respond(self.refusal(request, ORIGIN_NOT_ALLOWED)),
            ),
        }
    }

    fn refusal(&self, request: &RequestHead<'_, '_>, why: Refused) -> LocalResponse {
        LocalResponse::problem(
            &Problem::new(StatusCode::FORBIDDEN, why.code, why.detail),
            request.request_id(),
        )
    }

    /// The answer to a preflight: the CORS headers when the policy grants everything it asks
    /// for, else a refusal.
    fn preflight(
        &self,
        request: &RequestHead<'_, '_>,
        origin: &str,
        allowed: bool,
        method: &str,
    ) -> LocalResponse {
        match self.preflight_grant(request, allowed, method) {
            Ok(grant) => self.preflight_answer(origin, &grant),
            Err(why) => self.preflight_refusal(request, why),
        }
    }

    /// What the policy grants a preflight, or the refusal's code and detail: the origin, the
    /// method, the headers and private network access must all be allowed.
    fn preflight_grant(
        &self,
        request: &RequestHead<'_, '_>,
        allowed: bool,
        method: &str,
    ) -> Result<PreflightGrant, Refused> {
        if !allowed {
            return Err(ORIGIN_NOT_ALLOWED);
        }
        if !self.allows_method(method) {
            return Err(METHOD_NOT_ALLOWED);
        }
        let headers = requested_header_names(request.header("access-control-request-headers"))
            .ok_or(HEADER_NOT_ALLOWED)?;
        if !headers.iter().all(|name| self.allows_header(name)) {
            return Err(HEADER_NOT_ALLOWED);
        }
        let private_network = request
            .header("access-control-request-private-network")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if private_network && !self.private_network {
            return Err(PRIVATE_NETWORK_NOT_ALLOWED);
        }
        Ok(PreflightGrant {
            headers,
            private_network,
        })
    }

    /// A refused preflight: 403 problem+json, or with `disallowed: omit` an answer without
    /// CORS headers (the browser then fails the preflight).
    fn preflight_refusal(&self, request: &RequestHead<'_, '_>, why: Refused) -> LocalResponse {
        match self.disallowed {
            Disallowed::Reject => {
                let mut refusal = self.refusal(request, why);
                refusal.headers.push(("vary".into(), PREFLIGHT_VARY.into()));
                refusal
            }
            Disallowed::Omit => LocalResponse {
                status: self.preflight_status,
                headers: vec![("vary".into(), PREFLIGHT_VARY.into())],
                body: Vec::new(),
            },
        }
    }

    fn preflight_answer(&self, origin: &str, grant: &PreflightGrant) -> LocalResponse {
        let mut headers: Vec<(String, String)> = Vec::with_capacity(8);
        headers.push((
            "access-control-allow-origin".into(),
            self.allow_origin_value(origin).into(),
        ));
        if self.credentials {
            headers.push(("access-control-allow-credentials".into(), "true".into()));
        }
        headers.push((
            "access-control-allow-methods".into(),
            self.methods_value.clone(),
        ));
        if let Some(value) = self.allow_headers_value(&grant.headers) {
            headers.push(("access-control-allow-headers".into(), value));
        }
        if let Some(max_age) = &self.max_age_value {
            headers.push(("access-control-max-age".into(), max_age.clone()));
        }
        if grant.private_network {
            headers.push(("access-control-allow-private-network".into(), "true".into()));
        }
        headers.push(("vary".into(), PREFLIGHT_VARY.into()));
        // A 204 carries no Content-Length (RFC 9110 §8.6); any other status says 0.
        if self.preflight_status != 204 {
            headers.push(("content-length".into(), "0".into()));
        }
        LocalResponse {
            status: self.preflight_status,
            headers,
            body: Vec::new(),
        }
    }

    fn allows_method(&self, method: &str) -> bool {
        match &self.methods {
            AllowMethods::Any => true,
            AllowMethods::List(methods) => methods.iter().any(|m| m == method),
        }
    }

    fn allows_header(&self, name: &str) -> bool {
        match &self.headers {
            AllowHeaders::Any | AllowHeaders::Reflect => true,
            AllowHeaders::List(names) => names.iter().any(|n| n == name),
        }
    }

    fn allow_origin_value<'o>(&self, origin: &'o str) -> &'o str {
        if self.origins.is_any() && !self.credentials {
            "*"
        } else {
            origin
        }
    }

    fn allow_headers_value(&self, requested: &[String]) -> Option<String> {
        match &self.headers {
            AllowHeaders::List(_) => {
                (!self.headers_value.is_empty()).then(|| self.headers_value.clone())
            }
            AllowHeaders::Reflect => (!requested.is_empty()).then(|| requested.join(",")),
            // `*` never covers Authorization (Fetch): name it when it is asked for.
            AllowHeaders::Any => Some(if requested.iter().any(|n| n == "authorization") {
                "*,authorization".to_string()
            } else {
                "*".to_string()
            }),
        }
    }

    /// Whether responses depend on the request's `Origin` (then caches must know: `Vary`).
    fn varies_by_origin(&self) -> bool {
        !self.origins.is_any() || self.credentials
    }

    /// Edits the response of a request this policy saw: the upstream's CORS headers are
    /// dropped, an allowed origin gets the CORS headers, and `Vary` gains `Origin` where the
    /// answer depends on it.
    pub fn on_response<'a>(&'a self, verdict: &'a Verdict, headers: &mut ResponseHeaders<'a>) {
        if *verdict == Verdict::Preflight {
            return; // answered by the filter, complete already
        }
        headers.retain(|name| !CORS_RESPONSE_HEADERS.iter().any(|h| h.as_bytes() == name));
        if let Verdict::Allowed(origin) = verdict {
            headers.push(
                "access-control-allow-origin",
                self.allow_origin_value(origin).as_bytes(),
            );
            if self.credentials {
                headers.push("access-control-allow-credentials", b"true");
            }
            if let Some(expose) = &self.expose_value {
                headers.push("access-control-expose-headers", expose.as_bytes());
            }
        }
        if self.varies_by_origin() {
            headers.merge_vary("Origin");
        }
    }
}

/// The names in `Access-Control-Request-Headers`, lowercased; `None` if the list is malformed
/// or unreasonably long (it is never echoed then).
fn requested_header_names(value: Option<&str>) -> Option<Vec<String>> {
    let Some(value) = value else {
        return Some(Vec::new());
    };
    if value.len() > MAX_REQUESTED_HEADERS_LEN {
        return None;
    }
    let mut names = Vec::new();
    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if names.len() == MAX_REQUESTED_HEADERS || !is_header_name(name) {
            return None;
        }
        names.push(name.to_ascii_lowercase());
    }
    Some(names)
}

#[cfg(test)]
mod tests;
