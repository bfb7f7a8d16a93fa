//! From the raw `cors` section to a [`Cors`] policy, refusing what browsers would refuse or
//! what is a mistake waiting to happen (credentials with `*`).

use super::origin;
use super::raw::{RawAllowHeaders, RawCors};
use super::{AllowHeaders, AllowMethods, Cors};
use crate::syntax::ConfigError;
use crate::syntax::parse_method;

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
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(ConfigError::new(
                format!("{field}[{i}]"),
                format!("`{name}` is not a header name"),
            ));
        }
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
    let origins = match &raw.allow_origins {
        None => {
            return Err(ConfigError::new(
                "allow_origins",
                "required: list the origins allowed (write [\"*\"] to allow every origin)",
            ));
        }
        Some(list) => origin::compile(list).map_err(|e| e.within("allow_origins"))?,
    };
    if credentials && origins.is_any() {
        return Err(ConfigError::new(
            "allow_origins",
            "`*` with allow_credentials: true is refused by browsers; list the origins",
        ));
    }

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
        let mut list = Vec::with_capacity(methods_written.len());
        for (i, text) in methods_written.iter().enumerate() {
            let method = parse_method(text)
                .map_err(|reason| ConfigError::new(format!("allow_methods[{i}]"), reason))?;
            if list.contains(&method.to_string()) {
                return Err(ConfigError::new(
                    format!("allow_methods[{i}]"),
                    format!("`{text}` is listed twice"),
                ));
            }
            list.push(method.to_string());
        }
        AllowMethods::List(list)
    };
    let methods_value = methods_written.join(",");

    let (headers, headers_value) = match raw
        .allow_headers
        .clone()
        .unwrap_or(RawAllowHeaders::Reflect)
    {
        RawAllowHeaders::Any if credentials => {
            return Err(ConfigError::new(
                "allow_headers",
                "`*` is not a wildcard for requests with credentials; list the headers or use \"reflect\"",
            ));
        }
        RawAllowHeaders::Any => (AllowHeaders::Any, "*".to_string()),
        RawAllowHeaders::Reflect => (AllowHeaders::Reflect, String::new()),
        RawAllowHeaders::List(names) => {
            let names = header_names("allow_headers", &names)?;
            let value = names.join(",");
            (AllowHeaders::List(names), value)
        }
    };

    let expose_value = match &raw.expose_headers {
        None => None,
        Some(list) if list.len() == 1 && list.first().is_some_and(|n| n == "*") => {
            if credentials {
                return Err(ConfigError::new(
                    "expose_headers",
                    "`*` is not a wildcard for requests with credentials; list the headers",
                ));
            }
            Some("*".to_string())
        }
        Some(list) => {
            let names = header_names("expose_headers", list)?;
            (!names.is_empty()).then(|| names.join(","))
        }
    };

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
