//! The per-request decision: which route applies and what each policy says. Pure: the shell
//! gives it a view of the request and carries out the decision.

use crate::config::Config;
use crate::request::RequestHead;
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

    /// The route a request belongs to, if any.
    pub fn route_for(&self, request: &RequestHead<'_>) -> Option<&Route> {
        self.config.routes.find(request.method, request.path)
    }
}
