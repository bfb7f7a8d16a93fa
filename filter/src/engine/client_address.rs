//! The once-per-VM warning that `client_ip` rate-limit keys can be forged.

use std::sync::atomic::Ordering;

use super::Engine;
use crate::environment::Environment;
use crate::logging::{Event, Level, PolicyName};
use crate::request::RequestHead;

/// The event of the line that says `client_ip` keys can be forged (see
/// `warn_if_client_address_forgeable`).
pub const FORGEABLE_CLIENT_ADDRESS_EVENT: &str = Event::ClientAddressFromRequestHeaders.name();

/// What that line says, and what to set.
pub const FORGEABLE_CLIENT_ADDRESS_DETAIL: &str = "a request reached the filter without \
X-Forwarded-For, which Envoy adds to every request when the http_connection_manager has \
use_remote_address: true. Without it, Envoy takes source.address (the client_ip rate-limit key) \
from the X-Forwarded-For the client sends, so a client that sends a new value with each request \
escapes client_ip limits. Set use_remote_address: true on the http_connection_manager, with \
xff_num_trusted_hops: 0 when Envoy is the edge, or N behind N trusted proxies that append to \
X-Forwarded-For. (skip_xff_append: true and the custom_header original IP detection add nothing \
to X-Forwarded-For either: with those, make sure the address cannot come from the client.) Said \
once per worker.";

/// The warning's line: no request fields, the advice instead.
#[derive(serde::Serialize)]
struct Line {
    event: Event,
    policy: PolicyName,
    detail: &'static str,
}

impl Engine {
    /// Says once per VM, at `warn`, that `source.address` (the `client_ip` key) is taken from
    /// headers the client sent. With `use_remote_address: true` Envoy's connection manager
    /// appends the peer's address to `X-Forwarded-For` before any filter runs (HTTP/1.1 and
    /// HTTP/2 alike; an internal redirect keeps the header), so a request that arrives without
    /// one means it does not: with its default settings Envoy takes the client address from
    /// the rightmost `X-Forwarded-For` address the client sent, and a client escapes a
    /// `client_ip` limit by sending a new one each time. Reads only the headers already here.
    /// Envoy appends nothing either with `skip_xff_append: true` or a `custom_header` original
    /// IP detection, which may be safe: the line says so (checked in Envoy 1.40).
    pub(super) fn warn_if_client_address_forgeable(
        &self,
        head: &RequestHead<'_, '_>,
        env: &dyn Environment,
    ) {
        if head.headers.get_bytes("x-forwarded-for").is_some()
            || !self.config.logging.enabled(Level::Warn)
            || self.forgeable_client_warned.swap(true, Ordering::Relaxed)
        {
            return;
        }
        let line = Line {
            event: Event::ClientAddressFromRequestHeaders,
            policy: PolicyName::RateLimit,
            detail: FORGEABLE_CLIENT_ADDRESS_DETAIL,
        };
        env.log(
            Level::Warn,
            &serde_json::to_string(&line).unwrap_or_default(),
        );
    }
}
