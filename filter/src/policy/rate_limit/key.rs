//! What a limit counts by: the client's address (Envoy's view of it, never `X-Forwarded-For`
//! on its own), a header such as an API key, the path, the route, or several of these.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::rls::Entry;
use crate::request::RequestHead;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyPart {
    /// `source.address`, grouped by prefix (IPv4 /32, IPv6 /56 by default).
    ClientIp,
    /// A request header's value (name lowercase).
    Header(String),
    /// The path without its query.
    Path,
    /// The matched route's name.
    Route,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeySpec {
    pub parts: Vec<KeyPart>,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
}

/// A request lacks what the key needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingHeader(pub String);

impl KeySpec {
    pub fn needs_client_address(&self) -> bool {
        self.parts.contains(&KeyPart::ClientIp)
    }

    /// The key's bytes: each part tagged and length-prefixed, so that different parts never
    /// collide. `client` is the client's address (see [`crate::client_address`]).
    pub fn derive(
        &self,
        request: &RequestHead<'_, '_>,
        client: Option<IpAddr>,
        route: &str,
        out: &mut Vec<u8>,
    ) -> Result<(), MissingHeader> {
        for part in &self.parts {
            match part {
                KeyPart::ClientIp => {
                    match client {
                        Some(ip) => {
                            let (network, len) = self.network(ip);
                            push(out, b'i', network.get(..len).unwrap_or_default());
                        }
                        // Envoy always knows the peer; should it not, all such requests share.
                        None => push(out, b'i', b"unknown"),
                    }
                }
                KeyPart::Header(name) => match request.headers.get_bytes(name) {
                    Some(value) => push(out, b'h', value),
                    None => return Err(MissingHeader(name.clone())),
                },
                KeyPart::Path => push(out, b'p', crate::syntax::path_only(request.path).as_bytes()),
                KeyPart::Route => push(out, b'r', route.as_bytes()),
            }
        }
        Ok(())
    }

    /// The key as a rate limit service's descriptor entries (appended to `out`), one per part,
    /// named as the config writes it (`client_ip`, `header:<name>`, `path`, `route`): the
    /// client's network as text (`192.0.2.1`, `2001:db8:aa::/56`), a header's value, the path
    /// without its query, the route's name.
    pub fn entries(
        &self,
        request: &RequestHead<'_, '_>,
        client: Option<IpAddr>,
        route: &str,
        out: &mut Vec<Entry>,
    ) -> Result<(), MissingHeader> {
        for part in &self.parts {
            let (key, value) = match part {
                KeyPart::ClientIp => (
                    "client_ip".to_string(),
                    client.map_or_else(|| "unknown".to_string(), |ip| self.network_text(ip)),
                ),
                KeyPart::Header(name) => match request.headers.get_bytes(name) {
                    Some(value) => (
                        format!("header:{name}"),
                        String::from_utf8_lossy(value).into_owned(),
                    ),
                    None => return Err(MissingHeader(name.clone())),
                },
                KeyPart::Path => (
                    "path".to_string(),
                    crate::syntax::path_only(request.path).to_string(),
                ),
                KeyPart::Route => ("route".to_string(), route.to_string()),
            };
            out.push(Entry { key, value });
        }
        Ok(())
    }

    /// The client's network as text: the address alone at a full prefix, else
    /// `network/prefix`.
    fn network_text(&self, ip: IpAddr) -> String {
        let v4 = match ip {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(v6) => v6.to_ipv4_mapped(),
        };
        match (v4, ip) {
            (Some(v4), _) => {
                let network = Ipv4Addr::from(u32::from(v4) & prefix_mask_32(self.ipv4_prefix));
                with_prefix(IpAddr::V4(network), self.ipv4_prefix, 32)
            }
            (None, IpAddr::V6(v6)) => {
                let network = Ipv6Addr::from(u128::from(v6) & prefix_mask_128(self.ipv6_prefix));
                with_prefix(IpAddr::V6(network), self.ipv6_prefix, 128)
            }
            (None, IpAddr::V4(v4)) => v4.to_string(),
        }
    }

    /// The client's network: the address masked to the configured prefix, with the prefix
    /// (on the stack: 5 bytes for IPv4, 17 for IPv6, and how many are used).
    fn network(&self, ip: IpAddr) -> ([u8; 17], usize) {
        let mut out = [0u8; 17];
        let v4 = match ip {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(v6) => v6.to_ipv4_mapped(),
        };
        match (v4, ip) {
            (Some(v4), _) => {
                let mask = prefix_mask_32(self.ipv4_prefix);
                out[..4].copy_from_slice(&(u32::from(v4) & mask).to_be_bytes());
                out[4] = self.ipv4_prefix;
                (out, 5)
            }
            (None, IpAddr::V6(v6)) => {
                let mask = prefix_mask_128(self.ipv6_prefix);
                out[..16].copy_from_slice(&(u128::from(v6) & mask).to_be_bytes());
                out[16] = self.ipv6_prefix;
                (out, 17)
            }
            // An IPv4 address always has its `v4`.
            (None, IpAddr::V4(_)) => (out, 0),
        }
    }
}

fn with_prefix(network: IpAddr, prefix: u8, full: u8) -> String {
    if prefix >= full {
        network.to_string()
    } else {
        format!("{network}/{prefix}")
    }
}

fn push(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push(tag);
    out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// `source.address` as Envoy reports it: `1.2.3.4:5678` or `[2001:db8::1]:5678`.
pub fn parse_ip(address: &str) -> Option<IpAddr> {
    address
        .parse::<SocketAddr>()
        .map(|s| s.ip())
        .or_else(|_| address.parse::<IpAddr>())
        .ok()
}

fn prefix_mask_32(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p if p >= 32 => u32::MAX,
        p => u32::MAX << (32 - u32::from(p)),
    }
}

fn prefix_mask_128(prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        p if p >= 128 => u128::MAX,
        p => u128::MAX << (128 - u32::from(p)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Headers;

    fn spec(parts: Vec<KeyPart>) -> KeySpec {
        KeySpec {
            parts,
            ipv4_prefix: 32,
            ipv6_prefix: 56,
        }
    }

    fn key(
        spec: &KeySpec,
        client: &str,
        headers: &[(&str, &str)],
    ) -> Result<Vec<u8>, MissingHeader> {
        let mut pairs: Vec<(&[u8], &[u8])> =
            vec![(b":method", b"GET"), (b":path", b"/users/1?x=2")];
        pairs.extend(headers.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())));
        let headers = Headers::new(pairs);
        let mut out = Vec::new();
        spec.derive(
            &RequestHead::from_headers(&headers),
            parse_ip(client),
            "user",
            &mut out,
        )
        .map(|()| out)
    }

    #[test]
    fn ipv6_clients_are_grouped_by_prefix_ipv4_by_address() {
        let s = spec(vec![KeyPart::ClientIp]);
        assert_eq!(
            key(&s, "[2001:db8:aa:bb01::1]:40000", &[]),
            key(&s, "[2001:db8:aa:bbff:ffff::9]:1", &[])
        );
        assert_ne!(
            key(&s, "[2001:db8:aa:bb01::1]:40000", &[]),
            key(&s, "[2001:db8:aa:cc01::1]:40000", &[])
        );
        assert_eq!(
            key(&s, "192.0.2.1:1000", &[]),
            key(&s, "192.0.2.1:2000", &[])
        );
        assert_ne!(
            key(&s, "192.0.2.1:1000", &[]),
            key(&s, "192.0.2.2:1000", &[])
        );
        // An IPv4-mapped IPv6 address is the IPv4 client.
        assert_eq!(
            key(&s, "[::ffff:192.0.2.1]:1000", &[]),
            key(&s, "192.0.2.1:1000", &[])
        );
        let wide = KeySpec {
            ipv4_prefix: 24,
            ..s
        };
        assert_eq!(
            key(&wide, "192.0.2.1:1", &[]),
            key(&wide, "192.0.2.200:1", &[])
        );
    }

    #[test]
    fn header_path_route_and_combinations() {
        let api = spec(vec![KeyPart::Header("x-api-key".into())]);
        assert_ne!(
            key(&api, "192.0.2.1:1", &[("x-api-key", "a")]),
            key(&api, "192.0.2.1:1", &[("x-api-key", "b")])
        );
        assert_eq!(
            key(&api, "192.0.2.1:1", &[]),
            Err(MissingHeader("x-api-key".into()))
        );
        let both = spec(vec![KeyPart::ClientIp, KeyPart::Path, KeyPart::Route]);
        assert_eq!(
            key(&both, "192.0.2.1:1", &[]).expect("key"),
            [
                &b"i\x05\x00\x00\x00\xc0\x00\x02\x01\x20"[..],
                b"p\x08\x00\x00\x00/users/1",
                b"r\x04\x00\x00\x00user"
            ]
            .concat()
        );
    }
}
