//! The RateLimit header fields on the response: the upstream's own are dropped wherever limits
//! apply, and the decision's are added (draft-ietf-httpapi-ratelimit-headers-11, and the
//! legacy `X-RateLimit-*` ones when a limit asks for them).

use super::{RateHeaders, RateLimits};
use crate::response::ResponseHeaders;

/// Response headers the rate limiter owns when it applies (the upstream's are dropped).
const OWNED: &[&str] = &[
    "ratelimit",
    "ratelimit-policy",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
];

impl RateLimits {
    /// Edits the response of a request these limits applied to; `decided`: the fields its
    /// decision calls for (`None` when no limit's state is known).
    pub fn on_response<'a>(
        &self,
        decided: Option<&'a RateHeaders>,
        headers: &mut ResponseHeaders<'a>,
    ) {
        headers.retain(|name| !OWNED.iter().any(|h| h.as_bytes() == name));
        let Some(rate) = decided else {
            return;
        };
        headers.push("ratelimit-policy", rate.policy.as_bytes());
        headers.push("ratelimit", rate.state.as_bytes());
        if let Some((limit, remaining, reset)) = &rate.legacy {
            headers.push("x-ratelimit-limit", limit.as_bytes());
            headers.push("x-ratelimit-remaining", remaining.as_bytes());
            headers.push("x-ratelimit-reset", reset.as_bytes());
        }
    }
}
