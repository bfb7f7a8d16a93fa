//! The health endpoint's report, and its line when unhealthy.

use std::time::Duration;

use super::Engine;
use crate::environment::Environment;
use crate::logging::{Event, Level, Line, PolicyName};
use crate::policy::health::Outcome;
use crate::reply::LocalResponse;

impl Engine {
    /// The health endpoint's answer from the checks' outcomes (in the order of
    /// `health().checks`).
    pub fn health_report(
        &self,
        outcomes: &[Outcome],
        uptime: Duration,
        env: &dyn Environment,
    ) -> Option<LocalResponse> {
        let health = self.config.health.as_ref()?;
        let report = health.report(outcomes, uptime);
        if report.status != 200 {
            let line = Line {
                event: Event::Unhealthy,
                policy: PolicyName::Health,
                code: None,
                status: Some(report.status),
                route: "",
                method: "GET",
                path: &health.path,
                request_id: None,
                headers: None,
                body: None,
                detail: None,
            };
            self.log(env, Level::Warn, &line);
        }
        Some(report)
    }
}
