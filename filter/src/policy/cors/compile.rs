//! From the raw `cors` section to a [`Cors`] policy, refusing what browsers would refuse or
//! what is a mistake waiting to happen (credentials with `*`).

use http::Method;

use super::origin::{self, AllowOrigins};
use super::raw::{RawAllowHeaders, RawCors};
use super::{AllowHeaders, AllowMethods, Cors};
use crate::syntax::{ConfigError, check_header_name, parse_methods};

/// The `cors` npm package's default methods.
const DEFAULT_METHODS: &[&str] = &["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"];

fn header_names(field: &str, names: &[String]) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        if name == "*" {
            return Err(ConfigError::new(
                format!("{field}[{i}]"),
                "`*` goes alone, as the whole value (\"*\"), not in a list",
            ));
        }
        check_header_name(name)
            .map_err(|reason| ConfigError::new(format!("{field}[{i}]"), reason))?;
        let lower = name.to_ascii_lowercase();
        if out.contains(&lower) {
            return Err(ConfigError::new(
                format!("{field}[{i}]"),
                format!("`{name}` is listed twice"),
            ));
        }
        out.push(lower);
    }
    Ok(out)
}

pub fn compile(raw: &RawCors) -> Result<Cors, ConfigError> {
    let credentials = raw.allow_credentials.unwrap_or(false);
    let origins = allowed_origins(raw, credentials)?;
    let (methods, methods_value) = allowed_methods(raw, credentials)?;
    let (headers, headers_value) = allowed_headers(raw, credentials)?;
    let expose_value = exposed_headers(raw, credentials)?;
    let preflight_status = raw.preflight_status.unwrap_or(204);
    if !(200..=299).contains(&preflight_status) {
        return Err(ConfigError::new(
            "preflight_status",
            format!(
                "{preflight_status}: browsers accept a preflight only with a 2xx status (200 or 204)"
            ),
        ));
    }
    Ok(Cors {
        origins,
        methods,
        methods_value,
        headers,
        headers_value,
        expose_value,
        credentials,
        max_age_value: raw.max_age.map(|s| s.to_string()),
        private_network: raw.allow_private_network.unwrap_or(false),
        preflight_status,
        disallowed: raw.disallowed.unwrap_or_default(),
    })
}

fn allowed_origins(raw: &RawCors, credentials: bool) -> Result<AllowOrigins, ConfigError> {
    let Some(list) = &raw.allow_origins else {
        return Err(ConfigError::new(
            "allow_origins",
            "required: list the origins allowed (write [\"*\"] to allow every origin)",
        ));
    };
    let origins = origin::compile(list).map_err(|e| e.within("allow_origins"))?;
    if credentials && origins.is_any() {
        return Err(ConfigError::new(
            "allow_origins",
            "`*` with allow_credentials: true is refused by browsers; list the origins",
        ));
    }
    Ok(origins)
}

/// The methods allowed, and `Access-Control-Allow-Methods` as written.
fn allowed_methods(
    raw: &RawCors,
    credentials: bool,
) -> Result<(AllowMethods, String), ConfigError> {
    let methods_written: Vec<String> = match &raw.allow_methods {
        Some(list) => list.clone(),
        None => DEFAULT_METHODS.iter().map(|m| m.to_string()).collect(),
    };
    let methods = if methods_written == ["*"] {
        if credentials {
            return Err(ConfigError::new(
                "allow_methods",
                "`*` is not a wildcard for requests with credentials; list the methods",
            ));
        }
        AllowMethods::Any
    } else {
        if methods_written.is_empty() {
            return Err(ConfigError::new(
                "allow_methods",
                "no methods: list at least one",
            ));
        }
        let list = parse_methods(&methods_written).map_err(|e| e.within("allow_methods"))?;
        AllowMethods::List(list.iter().map(Method::to_string).collect())
    };
    Ok((methods, methods_written.join(",")))
}

/// The request headers allowed, and `Access-Control-Allow-Headers` for a list.
fn allowed_headers(
    raw: &RawCors,
    credentials: bool,
) -> Result<(AllowHeaders, String), ConfigError> {
    match raw
        .allow_headers
        .clone()
        .unwrap_or(RawAllowHeaders::Reflect)
    {
        RawAllowHeaders::Any if credentials => Err(ConfigError::new(
            "allow_headers",
            "`*` is not a wildcard for requests with credentials; list the headers or use \"reflect\"",
        )),
        RawAllowHeaders::Any => Ok((AllowHeaders::Any, "*".to_string())),
        RawAllowHeaders::Reflect => Ok((AllowHeaders::Reflect, String::new())),
        RawAllowHeaders::List(names) => {
            let names = header_names("allow_headers", &names)?;
            let value = names.join(",");
            Ok((AllowHeaders::List(names), value))
        }
    }
}

/// `Access-Control-Expose-Headers`, if any.
fn exposed_headers(raw: &RawCors, credentials: bool) -> Result<Option<String>, ConfigError> {
    match &raw.expose_headers {
        None => Ok(None),
        Some(list) if list.len() == 1 && list.first().is_some_and(|n| n == "*") => {
            if credentials {
                return Err(ConfigError::new(
                    "expose_headers",
                    "`*` is not a wildcard for requests with credentials; list the headers",
                ));
            }
            Ok(Some("*".to_string()))
        }
        Some(list) => {
            let names = header_names("expose_headers", list)?;
            Ok((!names.is_empty()).then(|| names.join(",")))
        }
    }
}
