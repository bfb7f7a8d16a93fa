//! HTTPS only: a request that arrived over plain HTTP gets a permanent redirect to the same
//! host, path and query over HTTPS. The host is checked, so the redirect cannot be aimed at
//! another site.

use serde::Deserialize;

use crate::reply::LocalResponse;
use crate::request::RequestHead;
use crate::syntax::{ConfigError, impl_over};

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawHttpsRedirect {
    /// 308 (default, keeps the method and body) or 301.
    #[cfg_attr(feature = "schema", schemars(extend("enum" = [301, 308, null])))]
    pub status: Option<u16>,
    /// How the scheme is known: `x_forwarded_proto` (default; Envoy sets it at the edge) or
    /// `scheme` (the connection's, `:scheme`).
    pub source: Option<Source>,
    /// Paths never redirected: exact, or a prefix ending in `*` (`/healthz`, `/.well-known/*`).
    pub exempt_paths: Option<Vec<String>>,
    /// Hosts a redirect may point to (`api.example.com`), or `["*"]`: any well-formed host
    /// (when Envoy's virtual hosts already restrict `Host`). Required: without it a forged
    /// `Host` would choose where the redirect points.
    pub hosts: Option<Vec<String>>,
    /// The HTTPS port, when not 443.
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub https_port: Option<u16>,
}

impl_over!(RawHttpsRedirect {
    status,
    source,
    exempt_paths,
    hosts,
    https_port,
});

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", schemars(rename = "SchemeSource"))]
pub enum Source {
    #[default]
    XForwardedProto,
    Scheme,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsRedirect {
    status: u16,
    source: Source,
    exempt_exact: Vec<String>,
    exempt_prefixes: Vec<String>,
    hosts: Option<Vec<String>>,
    https_port: Option<u16>,
}

/// A host as `Host` carries it: a DNS name or an IP literal, optionally with a port; nothing
/// that could smuggle a path, credentials or another URL.
fn split_host(authority: &str) -> Option<(&str, Option<&str>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        v6.parse::<std::net::Ipv6Addr>().ok()?;
        let host = authority.get(..v6.len() + 2)?;
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return None,
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let valid_name = !host.is_empty()
        && host.len() <= 253
        && (host.starts_with('[')
            || host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }));
    valid_name.then_some((host, port))
}

pub fn compile(raw: &RawHttpsRedirect) -> Result<HttpsRedirect, ConfigError> {
    let status = raw.status.unwrap_or(308);
    if !matches!(status, 301 | 308) {
        return Err(ConfigError::new(
            "status",
            format!("{status}: use 308 (keeps the method) or 301"),
        ));
    }
    let mut exempt_exact = Vec::new();
    let mut exempt_prefixes = Vec::new();
    for (i, path) in raw.exempt_paths.iter().flatten().enumerate() {
        if !path.starts_with('/') {
            return Err(ConfigError::new(
                format!("exempt_paths[{i}]"),
                format!("`{path}` must start with `/`"),
            ));
        }
        match path.strip_suffix('*') {
            Some(prefix) => exempt_prefixes.push(prefix.to_string()),
            None => exempt_exact.push(path.clone()),
        }
    }
    let hosts = match raw.hosts.as_deref() {
        None | Some([]) => {
            return Err(ConfigError::new(
                "hosts",
                "list the hosts the redirect may point to (`[api.example.com]`), or `[\"*\"]` for any host Envoy's virtual hosts accept",
            ));
        }
        Some([any]) if any == "*" => None,
        Some(list) => Some(
            list.iter()
                .enumerate()
                .map(|(i, host)| match split_host(host) {
                    Some((_, None)) => Ok(host.to_ascii_lowercase()),
                    _ => Err(ConfigError::new(
                        format!("hosts[{i}]"),
                        format!("`{host}` is not a host name (no scheme, port or path; `*` alone for any host)"),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    if raw.https_port == Some(0) {
        return Err(ConfigError::new("https_port", "0 is not a port"));
    }
    Ok(HttpsRedirect {
        status,
        source: raw.source.unwrap_or_default(),
        exempt_exact,
        exempt_prefixes,
        hosts,
        https_port: raw.https_port.filter(|p| *p != 443),
    })
}

/// What the redirect policy says about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Already HTTPS, or exempt.
    Pass,
    /// The redirect to send.
    Redirect(LocalResponse),
    /// The host is not one a redirect may point to: 400.
    BadHost(LocalResponse),
}

impl HttpsRedirect {
    pub fn on_request(&self, request: &RequestHead<'_, '_>) -> Verdict {
        let scheme = match self.source {
            // A list (`https,http`) is several proxies' appends: the last is the nearest
            // proxy's, the one a trusted-hops setup vouches for. An empty element (`http,`)
            // is no one's word.
            Source::XForwardedProto => request
                .header("x-forwarded-proto")
                .and_then(|v| v.rsplit(',').map(str::trim).find(|proto| !proto.is_empty())),
            Source::Scheme => request.header(":scheme"),
        };
        if !scheme.is_some_and(|s| s.eq_ignore_ascii_case("http")) {
            return Verdict::Pass;
        }
        let path = crate::syntax::path_only(request.path);
        if self.exempt_exact.iter().any(|p| p == path)
            || self
                .exempt_prefixes
                .iter()
                .any(|p| path.starts_with(p.as_str()))
        {
            return Verdict::Pass;
        }
        let authority = request
            .header(":authority")
            .or_else(|| request.header("host"))
            .unwrap_or("");
        let host = split_host(authority)
            .map(|(host, _)| host.to_ascii_lowercase())
            .filter(|host| {
                self.hosts
                    .as_ref()
                    .is_none_or(|allowed| allowed.contains(host))
            });
        let Some(host) = host else {
            let problem = crate::problem::Problem::new(
                http::StatusCode::BAD_REQUEST,
                "invalid_host",
                "This API is only served over HTTPS, and the request's host is not one it serves.",
            );
            return Verdict::BadHost(LocalResponse::problem(&problem, request.request_id()));
        };
        let port = self.https_port.map(|p| format!(":{p}")).unwrap_or_default();
        // The path and query as received (already normalised by Envoy); never a fragment.
        let target = request.path.split('#').next().unwrap_or("/");
        let location = format!("https://{host}{port}{target}");
        let status =
            http::StatusCode::from_u16(self.status).unwrap_or(http::StatusCode::PERMANENT_REDIRECT);
        let problem = crate::problem::Problem::new(
            status,
            "https_required",
            "This API is only served over HTTPS.",
        );
        let mut response = LocalResponse::problem(&problem, request.request_id());
        response.headers.push(("location".into(), location));
        Verdict::Redirect(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Headers;

    fn verdict(redirect: &HttpsRedirect, path: &str, host: &str, proto: &str) -> Verdict {
        let pairs: Vec<(&[u8], &[u8])> = vec![
            (b":method", b"POST"),
            (b":path", path.as_bytes()),
            (b":authority", host.as_bytes()),
            (b"x-forwarded-proto", proto.as_bytes()),
        ];
        let headers = Headers::new(pairs);
        redirect.on_request(&RequestHead::from_headers(&headers))
    }

    fn location(v: Verdict) -> Option<(u16, String)> {
        match v {
            Verdict::Redirect(r) => {
                Some((r.status, r.header("location").unwrap_or("").to_string()))
            }
            _ => None,
        }
    }

    #[test]
    fn redirects_keep_host_path_and_query() {
        let r = compile(&RawHttpsRedirect {
            exempt_paths: Some(vec!["/healthz".into(), "/.well-known/*".into()]),
            hosts: Some(vec!["*".into()]),
            ..Default::default()
        })
        .expect("valid");
        assert_eq!(
            location(verdict(
                &r,
                "/users?page=2&q=a%20b",
                "api.example.com",
                "http"
            )),
            Some((308, "https://api.example.com/users?page=2&q=a%20b".into()))
        );
        assert_eq!(
            location(verdict(&r, "/x", "api.example.com:8080", "http")),
            Some((308, "https://api.example.com/x".into()))
        );
        assert_eq!(verdict(&r, "/x", "api.example.com", "https"), Verdict::Pass);
        // Several proxies' appends: the nearest (last) one says how the request arrived.
        assert_eq!(
            location(verdict(&r, "/x", "api.example.com", "https, http")),
            Some((308, "https://api.example.com/x".into()))
        );
        assert_eq!(
            verdict(&r, "/x", "api.example.com", "http,https"),
            Verdict::Pass
        );
        assert_eq!(
            location(verdict(&r, "/x", "api.example.com", "http, ")),
            Some((308, "https://api.example.com/x".into()))
        );
        assert_eq!(
            verdict(&r, "/healthz", "api.example.com", "http"),
            Verdict::Pass
        );
        assert_eq!(
            verdict(
                &r,
                "/.well-known/acme-challenge/t",
                "api.example.com",
                "http"
            ),
            Verdict::Pass
        );
        let moved = compile(&RawHttpsRedirect {
            status: Some(301),
            https_port: Some(8443),
            hosts: Some(vec!["*".into()]),
            ..Default::default()
        })
        .expect("valid");
        assert_eq!(
            location(verdict(&moved, "/", "[::1]:8080", "http")),
            Some((301, "https://[::1]:8443/".into()))
        );
    }

    #[test]
    fn a_config_without_a_host_list_is_refused() {
        for hosts in [None, Some(vec![])] {
            let error = compile(&RawHttpsRedirect {
                hosts,
                ..Default::default()
            })
            .expect_err("no hosts");
            assert_eq!(error.path, "hosts");
        }
        let port = compile(&RawHttpsRedirect {
            hosts: Some(vec!["*".into()]),
            https_port: Some(0),
            ..Default::default()
        });
        assert_eq!(port.expect_err("port 0").path, "https_port");
        let scheme = compile(&RawHttpsRedirect {
            hosts: Some(vec!["https://api.example.com".into()]),
            ..Default::default()
        });
        assert_eq!(scheme.expect_err("scheme").path, "hosts[0]");
    }

    #[test]
    fn hosts_that_could_point_elsewhere_are_refused() {
        let r = compile(&RawHttpsRedirect {
            hosts: Some(vec!["*".into()]),
            ..Default::default()
        })
        .expect("valid");
        for host in [
            "evil.com/path",
            "user@evil.com",
            "evil.com:80:80",
            "",
            "exa mple.com",
            "http://x",
        ] {
            assert!(
                matches!(verdict(&r, "/", host, "http"), Verdict::BadHost(_)),
                "{host}"
            );
        }
        let pinned = compile(&RawHttpsRedirect {
            hosts: Some(vec!["api.example.com".into()]),
            ..Default::default()
        })
        .expect("valid");
        assert!(matches!(
            verdict(&pinned, "/", "evil.example.net", "http"),
            Verdict::BadHost(_)
        ));
        assert!(matches!(
            verdict(&pinned, "/", "API.example.com", "http"),
            Verdict::Redirect(_)
        ));
    }
}
