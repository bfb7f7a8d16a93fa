//! The bookkeeping of a health check run (which calls are out, what came back, how long it
//! took), of the run under way in a VM (who started it, who waits for it), and the short cache
//! of the last answer.

use std::time::Duration;

use crate::policy::health::Outcome;
use crate::reply::LocalResponse;

/// The last answer, reused for `cache_for`.
#[derive(Default)]
pub struct HealthCache {
    last: Option<(u64, LocalResponse)>,
}

impl HealthCache {
    pub fn fresh(&self, now: u64, cache_for: Duration) -> Option<&LocalResponse> {
        let (at, response) = self.last.as_ref()?;
        let age = now.saturating_sub(*at);
        (u128::from(age) < cache_for.as_nanos()).then_some(response)
    }

    pub fn store(&mut self, now: u64, response: LocalResponse) {
        self.last = Some((now, response));
    }
}

/// A run under way in a VM: the exchange that dispatched its calls, and those waiting.
pub struct InFlight {
    pub owner: u32,
    started_at: u64,
    pub waiters: Vec<u32>,
}

impl InFlight {
    pub fn new(owner: u32, now: u64, waiters: Vec<u32>) -> Self {
        Self {
            owner,
            started_at: now,
            waiters,
        }
    }

    /// Past its checks' timeout by more than a second: its answer is not coming.
    pub fn is_overdue(&self, now: u64, timeout: Duration) -> bool {
        let limit = timeout.saturating_add(Duration::from_secs(1));
        u128::from(now.saturating_sub(self.started_at)) > limit.as_nanos()
    }
}

pub struct HealthRun {
    started_at: u64,
    outcomes: Vec<Option<Outcome>>,
    /// Calls out: token and check index.
    pending: Vec<(u32, usize)>,
}

impl HealthRun {
    pub fn new(checks: usize, now: u64) -> Self {
        Self {
            started_at: now,
            outcomes: vec![None; checks],
            pending: Vec::new(),
        }
    }

    pub fn dispatched(&mut self, token: u32, index: usize) {
        self.pending.push((token, index));
    }

    pub fn failed(&mut self, index: usize, now: u64) {
        self.set(index, None, now);
    }

    pub fn record(&mut self, token: u32, status: Option<u16>, now: u64) {
        if let Some(position) = self.pending.iter().position(|(t, _)| *t == token) {
            let (_, index) = self.pending.swap_remove(position);
            self.set(index, status, now);
        }
    }

    fn set(&mut self, index: usize, status: Option<u16>, now: u64) {
        if let Some(slot) = self.outcomes.get_mut(index) {
            *slot = Some(Outcome {
                status,
                duration: Duration::from_nanos(now.saturating_sub(self.started_at)),
            });
        }
    }

    pub fn is_done(&self) -> bool {
        self.pending.is_empty()
    }

    pub fn outcomes(&self) -> Vec<Outcome> {
        self.outcomes
            .iter()
            .map(|o| {
                o.clone().unwrap_or(Outcome {
                    status: None,
                    duration: Duration::ZERO,
                })
            })
            .collect()
    }
}
