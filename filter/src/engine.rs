//! The per-request decisions: which policies apply to a request, and what they do to its
//! response. Pure: the shell gives it views of the request and response and carries out what
//! it decides.

use std::sync::Arc;

use crate::config::{Config, PolicySet};
use crate::request::RequestHead;
use crate::response::ResponseHeaders;
use crate::routes::Route;

/// The compiled config plus the decisions made from it.
#[derive(Debug)]
pub struct Engine {
    config: Config,
}

impl Engine {
    pub fn new(config: Config) -> Self {
        Self { config }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether deciding anything needs the request's method and path (only when routes are
    /// configured); otherwise the defaults apply without reading the request.
    pub fn needs_request_line(&self) -> bool {
        !self.config.routes.is_empty()
    }

    /// The route a request belongs to, if any.
    pub fn route_for(&self, request: &RequestHead<'_, '_>) -> Option<&Route> {
        self.config.routes.find(request.method, request.path)
    }

    /// The policies for a request: its route's, or the defaults.
    pub fn policies_for(&self, request: &RequestHead<'_, '_>) -> Arc<PolicySet> {
        self.route_for(request).map_or_else(
            || Arc::clone(&self.config.defaults),
            |route| Arc::clone(&route.policies),
        )
    }

    pub fn default_policies(&self) -> Arc<PolicySet> {
        Arc::clone(&self.config.defaults)
    }

    /// Edits a response (from the upstream, from Envoy, or the filter's own) on its way out.
    pub fn on_response_headers<'a>(
        &self,
        policies: &'a PolicySet,
        headers: &mut ResponseHeaders<'a>,
    ) {
        if let Some(security_headers) = &policies.security_headers {
            security_headers.apply(headers);
        }
    }
}
