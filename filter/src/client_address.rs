//! Where the `client_ip` rate-limit key comes from: Envoy's `source.address` (a property read
//! per request, the default), or `X-Forwarded-For` in the request headers the filter has
//! already read, with Envoy's own rule. The second is for a connection manager with
//! `use_remote_address: true`: Envoy then appends the connection's peer (its own local address
//! for a loopback peer) to `X-Forwarded-For` before any filter runs, and its `source.address`
//! is the entry `xff_num_trusted_hops` from the right of the header the filter sees, exactly
//! what this reads; it saves one host call that returns data. Where that entry is missing or not an address, Envoy used the peer, and
//! so does the filter (the property read).

use std::net::IpAddr;

use serde::Deserialize;

use crate::request::Headers;
use crate::syntax::ConfigError;

/// The `client_address` section as users write it.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RawClientAddress {
    /// `envoy` (`source.address`) or `x_forwarded_for`.
    pub from: Option<Source>,
    /// The connection manager's `xff_num_trusted_hops` (with `x_forwarded_for`; default 0).
    pub xff_num_trusted_hops: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", schemars(rename = "ClientAddressSource"))]
pub enum Source {
    #[default]
    Envoy,
    XForwardedFor,
}

/// Where the filter reads the client's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAddress {
    /// Envoy's `source.address`.
    #[default]
    Envoy,
    /// The `X-Forwarded-For` entry that many entries from the right (Envoy's
    /// `xff_num_trusted_hops`), falling back to `source.address`.
    XForwardedFor { trusted_hops: u32 },
}

impl ClientAddress {
    pub fn compile(raw: &RawClientAddress) -> Result<Self, ConfigError> {
        match (raw.from.unwrap_or_default(), raw.xff_num_trusted_hops) {
            (Source::Envoy, None) => Ok(Self::Envoy),
            (Source::Envoy, Some(_)) => Err(ConfigError::new(
                "xff_num_trusted_hops",
                "applies only with `from: x_forwarded_for` (with `from: envoy`, Envoy's own setting decides)",
            )),
            (Source::XForwardedFor, hops) => Ok(Self::XForwardedFor {
                trusted_hops: hops.unwrap_or(0),
            }),
        }
    }

    /// The client's address from the request's headers, if this reads it there and they hold
    /// one; `None`: ask the host for `source.address`.
    pub fn address_in(self, headers: &Headers<'_>) -> Option<IpAddr> {
        let Self::XForwardedFor { trusted_hops } = self else {
            return None;
        };
        let mut entries = headers.get_all("x-forwarded-for");
        let first = entries.next()?;
        match entries.next() {
            None => last_address(first, trusted_hops),
            // Envoy keeps one X-Forwarded-For, its values joined by commas.
            Some(second) => {
                let all: Vec<&str> = [first, second].into_iter().chain(entries).collect();
                last_address(&all.join(","), trusted_hops)
            }
        }
    }
}

/// Envoy's `Utility::getLastAddressFromXFF`: drop `skip` entries from the right, take the text
/// after the last remaining comma, trimmed, if it is an IP address (no port, no brackets).
fn last_address(list: &str, skip: u32) -> Option<IpAddr> {
    let mut rest = list;
    for _ in 0..skip {
        let (left, _) = rest.rsplit_once(',')?;
        rest = left;
    }
    let last = match rest.rsplit_once(',') {
        // Envoy keeps the whole text when the comma ends it.
        Some((_, after)) if !after.is_empty() => after,
        _ => rest,
    };
    // Envoy's `StringUtil` whitespace.
    last.trim_matches([' ', '\t', '\x0c', '\x0b', '\n', '\r'])
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(values: &[&str], hops: u32) -> Option<String> {
        let pairs = values
            .iter()
            .map(|v| (b"x-forwarded-for".as_slice(), v.as_bytes()))
            .collect();
        let headers = Headers::new(pairs);
        ClientAddress::XForwardedFor { trusted_hops: hops }
            .address_in(&headers)
            .map(|ip| ip.to_string())
    }

    #[test]
    fn envoys_examples_of_trusted_hops() {
        // Envoy's docs: XFF "203.0.113.128, 203.0.113.10, 203.0.113.1" as the filter sees it.
        let xff = ["203.0.113.128, 203.0.113.10, 203.0.113.1"];
        assert_eq!(read(&xff, 0).as_deref(), Some("203.0.113.1"));
        assert_eq!(read(&xff, 1).as_deref(), Some("203.0.113.10"));
        assert_eq!(read(&xff, 2).as_deref(), Some("203.0.113.128"));
        assert_eq!(read(&xff, 3), None, "fewer entries than hops: the peer");
    }

    #[test]
    fn what_envoy_would_not_take_falls_back_to_source_address() {
        assert_eq!(read(&[], 0), None);
        assert_eq!(read(&["unknown"], 0), None);
        assert_eq!(read(&["192.0.2.1:8080"], 0), None, "no ports");
        assert_eq!(read(&["[2001:db8::1]"], 0), None, "no brackets");
        assert_eq!(
            read(&["192.0.2.1,"], 0),
            None,
            "a trailing comma keeps it all"
        );
        assert_eq!(read(&["192.0.2.1, "], 0), None, "an empty last entry");
        assert_eq!(
            read(&["192.0.2.9,\t2001:db8::1 "], 0).as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(read(&[" 192.0.2.1"], 0).as_deref(), Some("192.0.2.1"));
    }

    #[test]
    fn several_header_lines_are_one_list() {
        let lines = ["198.51.100.1, 198.51.100.2", "192.0.2.7"];
        assert_eq!(read(&lines, 0).as_deref(), Some("192.0.2.7"));
        assert_eq!(read(&lines, 1).as_deref(), Some("198.51.100.2"));
    }

    #[test]
    fn the_default_reads_nothing_from_headers() {
        let headers = Headers::new(vec![(
            b"x-forwarded-for".as_slice(),
            b"192.0.2.1".as_slice(),
        )]);
        assert_eq!(ClientAddress::Envoy.address_in(&headers), None);
    }

    #[test]
    fn hops_need_the_header_source() {
        let raw = RawClientAddress {
            from: None,
            xff_num_trusted_hops: Some(1),
        };
        let error = ClientAddress::compile(&raw).expect_err("refused");
        assert!(
            error.to_string().contains("xff_num_trusted_hops"),
            "{error}"
        );
        let raw = RawClientAddress {
            from: Some(Source::XForwardedFor),
            xff_num_trusted_hops: None,
        };
        assert_eq!(
            ClientAddress::compile(&raw),
            Ok(ClientAddress::XForwardedFor { trusted_hops: 0 })
        );
    }
}
