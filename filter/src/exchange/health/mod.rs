//! The health endpoint's runs: answered from the VM's cache, or by checking every configured
//! cluster with HTTP calls in parallel (each under the host's timeout), one run per VM at a
//! time: exchanges that ask meanwhile wait for its answer, so the endpoint never multiplies
//! the load on dependencies.

mod run;

use std::cell::RefCell;
use std::time::Duration;

use super::{Exchange, Flow, Plugin};
use crate::environment::{HeaderMap, Host, HttpCall};
use crate::reply::LocalResponse;
pub(super) use run::HealthRun;
use run::{HealthCache, InFlight};

/// What a VM keeps of its health endpoint between exchanges.
#[derive(Default)]
pub(super) struct HealthRuns {
    cache: RefCell<HealthCache>,
    /// The run under way in this VM, if any.
    under_way: RefCell<Option<InFlight>>,
}

impl Exchange {
    /// Answers from the cache, waits for the run under way, or dispatches the checks (in
    /// parallel) and waits.
    pub(super) fn start_health(&mut self, plugin: &Plugin, host: &impl Host) -> Flow {
        let now = host.now_unix_nanos();
        let Some(health) = plugin.engine.health() else {
            return Flow::Continue;
        };
        if let Some(cached) = plugin.health.cache.borrow().fresh(now, health.cache_for) {
            host.send_reply(cached);
            return Flow::Pause;
        }
        let waiters = {
            let mut under_way = plugin.health.under_way.borrow_mut();
            if let Some(run) = under_way.as_mut()
                && !run.is_overdue(now, health.timeout)
            {
                run.waiters.push(self.id);
                return Flow::Pause;
            }
            // A run that should have ended (never, unless the host lost its calls): this one
            // takes over its waiters.
            under_way.take().map(|run| run.waiters).unwrap_or_default()
        };
        *plugin.health.under_way.borrow_mut() = Some(InFlight::new(self.id, now, waiters));
        let mut run = HealthRun::new(health.checks.len(), now);
        for (index, check) in health.checks.iter().enumerate() {
            let call = HttpCall {
                cluster: &check.cluster,
                headers: &check.headers,
                timeout: health.timeout,
            };
            match host.dispatch_http_call(&call) {
                Some(token) => run.dispatched(token, index),
                // An unknown cluster, or the host could not start the call: that check fails.
                None => run.failed(index, now),
            }
        }
        let done = run.is_done();
        self.health = Some(run);
        if done {
            self.finish_health(plugin, host);
        }
        Flow::Pause
    }

    /// An answer to one of this exchange's HTTP calls (`has_headers` false: the call was
    /// reset; a timeout arrives as the host's own 504): a health check's, or the rate limit
    /// service's carried over HTTP/2.
    pub fn on_http_call_response(
        &mut self,
        plugin: &Plugin,
        host: &impl Host,
        token: u32,
        has_headers: bool,
    ) {
        if self.is_service_call(token) {
            return self.on_service_http_answer(plugin, host, token, has_headers);
        }
        let Some(run) = self.health.as_mut() else {
            return;
        };
        let status = has_headers
            .then(|| host.http_call_response_headers())
            .and_then(|map| status_of(&map));
        run.record(token, status, host.now_unix_nanos());
        if run.is_done() {
            self.finish_health(plugin, host);
        }
    }

    /// The exchange ends. If its health run was under way (the client left: the host cancels
    /// its calls), those who wait for it get what is known, the missing checks unhealthy.
    pub fn on_done(&mut self, plugin: &Plugin, host: &impl Host) {
        if let Some(run) = self.health.take() {
            let now = host.now_unix_nanos();
            let uptime = Duration::from_nanos(now.saturating_sub(plugin.started_at));
            if let Some(report) = plugin.engine.health_report(&run.outcomes(), uptime, host) {
                self.answer_waiters(plugin, host, &report);
            }
        }
    }

    /// Every check is back: answers, caches the answer, and answers those who waited.
    fn finish_health(&mut self, plugin: &Plugin, host: &impl Host) {
        let Some(run) = self.health.take() else {
            return;
        };
        let now = host.now_unix_nanos();
        let uptime = Duration::from_nanos(now.saturating_sub(plugin.started_at));
        if let Some(report) = plugin.engine.health_report(&run.outcomes(), uptime, host) {
            plugin.health.cache.borrow_mut().store(now, report.clone());
            host.send_reply(&report);
            self.answer_waiters(plugin, host, &report);
        }
    }

    /// Sends the answer of this exchange's run to every exchange that waited for it.
    fn answer_waiters(&self, plugin: &Plugin, host: &impl Host, report: &LocalResponse) {
        let waiters = plugin
            .health
            .under_way
            .borrow_mut()
            .take_if(|run| run.owner == self.id)
            .map(|run| run.waiters)
            .unwrap_or_default();
        if !waiters.is_empty() {
            host.send_reply_to(&waiters, report);
        }
    }
}

/// The `:status` of an HTTP call's answer.
fn status_of(map: &impl HeaderMap) -> Option<u16> {
    let pairs = map.pairs();
    let (_, value) = pairs.into_iter().find(|(k, _)| *k == b":status")?;
    std::str::from_utf8(value).ok()?.parse().ok()
}
