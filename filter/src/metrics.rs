//! The counters the filter reports, all under one naming scheme,
//! `hardening.<what>.<subject>.<event>` (in `/stats/prometheus`, dots become underscores):
//!
//! - `hardening.requests.<route>.<decision>`: forwarded, rejected, redirected, preflight,
//!   health, upstream_error_replaced;
//! - `hardening.rate_limit.<limit>.<event>`: allowed, limited, dry_run_limited, and
//!   store_conflicts, store_errors for a local limit, service_requests, service_errors,
//!   service_timeouts for a global one;
//! - `hardening.validate.<route>.passed` and `hardening.validate.<route>.rejected.<code>`.
//!
//! `<route>` is the route's name lowercased with other characters as `_`, or `unmatched`.
//! The shell defines every name once per VM.
//!
//! Counts are kept in the VM ([`Metrics::add`]) and handed to the host in one batch
//! ([`Metrics::drain`]) on the shell's tick, once a second (`exchange::FLUSH_PERIOD`): a host
//! call per counter per request would be one to three calls per request, and a counter read a
//! second late costs an operator nothing (Prometheus scrapes every 15 s or more).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::Config;
use crate::policy::rate_limit::Event;
use crate::policy::validate::Reason;
use crate::syntax::label;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Forwarded,
    Rejected,
    Redirected,
    Preflight,
    Health,
    UpstreamErrorReplaced,
}

const DECISIONS: &[(Decision, &str)] = &[
    (Decision::Forwarded, "forwarded"),
    (Decision::Rejected, "rejected"),
    (Decision::Redirected, "redirected"),
    (Decision::Preflight, "preflight"),
    (Decision::Health, "health"),
    (Decision::UpstreamErrorReplaced, "upstream_error_replaced"),
];

/// A local limit's counters, in the order of [`local_offset`].
const LOCAL_LIMIT_EVENTS: &[&str] = &[
    "allowed",
    "limited",
    "dry_run_limited",
    "store_conflicts",
    "store_errors",
];

/// A global limit's counters, in the order of [`global_offset`].
const GLOBAL_LIMIT_EVENTS: &[&str] = &[
    "allowed",
    "limited",
    "dry_run_limited",
    "service_requests",
    "service_errors",
    "service_timeouts",
];

/// A local limit's counter for the event, and by how much it moves.
fn local_offset(event: Event) -> Option<(usize, u64)> {
    match event {
        Event::Allowed => Some((0, 1)),
        Event::Limited => Some((1, 1)),
        Event::DryRunLimited => Some((2, 1)),
        Event::StoreConflicts(n) => Some((3, u64::from(n))),
        Event::StoreError => Some((4, 1)),
        Event::ServiceRequest | Event::ServiceError | Event::ServiceTimeout => None,
    }
}

fn global_offset(event: Event) -> Option<(usize, u64)> {
    match event {
        Event::Allowed => Some((0, 1)),
        Event::Limited => Some((1, 1)),
        Event::DryRunLimited => Some((2, 1)),
        Event::ServiceRequest => Some((3, 1)),
        Event::ServiceError => Some((4, 1)),
        Event::ServiceTimeout => Some((5, 1)),
        Event::StoreConflicts(_) | Event::StoreError => None,
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    names: Vec<String>,
    /// Route index (`None`: unmatched) and where its decision counters start.
    decisions: Vec<(Option<usize>, usize)>,
    /// Limit name, where its counters start, and whether it is global.
    limits: Vec<(String, usize, bool)>,
    /// Validated route and where its counters start.
    validations: Vec<(Option<usize>, usize)>,
    /// What each counter gained since the last [`Metrics::drain`], by index: atomic so that
    /// counting needs only `&self` (a VM is single-threaded, so `Relaxed` is enough).
    pending: Vec<AtomicU64>,
    /// Which counters moved since the last drain, one bit each, and which words of those
    /// bits have one set: a drain reads what moved, not every counter (an API description
    /// brings thousands, and the native build drains at every stream's end).
    moved: Vec<AtomicU64>,
    moved_words: Vec<AtomicU64>,
}

/// Sets bit `index` of a bitmap of words (read first: once set, it stays set until a drain,
/// and a read keeps the line shared between workers).
fn mark(bitmap: &[AtomicU64], index: usize) {
    let bit = 1u64 << (index % 64);
    if let Some(word) = bitmap.get(index / 64)
        && word.load(Ordering::Relaxed) & bit == 0
    {
        word.fetch_or(bit, Ordering::Release);
    }
}

/// The positions of the set bits of `word`, lowest first.
fn bits(mut word: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        if word == 0 {
            return None;
        }
        let bit = word.trailing_zeros() as usize;
        word &= word - 1;
        Some(bit)
    })
}

impl Metrics {
    pub fn new(config: &Config) -> Self {
        let mut metrics = Self::default();
        let routes: Vec<(Option<usize>, String, bool)> = std::iter::once((
            None,
            "unmatched".to_string(),
            config.defaults.validate.is_some()
                || config.unknown_routes == crate::policy::validate::UnknownRoutes::Reject,
        ))
        .chain(
            config
                .routes
                .iter()
                .map(|r| (Some(r.index), label(&r.name), r.policies.validate.is_some())),
        )
        .collect();
        for (route, label, _) in &routes {
            metrics.decisions.push((*route, metrics.names.len()));
            for (_, decision) in DECISIONS {
                metrics
                    .names
                    .push(format!("hardening.requests.{label}.{decision}"));
            }
        }
        for limit in &config.limits {
            let global = limit.is_global();
            metrics
                .limits
                .push((limit.name.clone(), metrics.names.len(), global));
            let events = if global {
                GLOBAL_LIMIT_EVENTS
            } else {
                LOCAL_LIMIT_EVENTS
            };
            for event in events {
                metrics
                    .names
                    .push(format!("hardening.rate_limit.{}.{event}", limit.name));
            }
        }
        for (route, label, validated) in &routes {
            if !validated {
                continue;
            }
            metrics.validations.push((*route, metrics.names.len()));
            metrics
                .names
                .push(format!("hardening.validate.{label}.passed"));
            for reason in Reason::ALL {
                metrics.names.push(format!(
                    "hardening.validate.{label}.rejected.{}",
                    reason.code()
                ));
            }
        }
        metrics.pending = metrics.names.iter().map(|_| AtomicU64::new(0)).collect();
        let words = metrics.names.len().div_ceil(64);
        metrics.moved = (0..words).map(|_| AtomicU64::new(0)).collect();
        metrics.moved_words = (0..words.div_ceil(64)).map(|_| AtomicU64::new(0)).collect();
        metrics
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Adds to the counter at `index` (by [`Metrics::decision`] and its siblings), in the VM.
    pub fn add(&self, index: usize, by: u64) {
        let Some(count) = self.pending.get(index) else {
            return;
        };
        count.fetch_add(by, Ordering::Relaxed);
        mark(&self.moved, index);
        mark(&self.moved_words, index / 64);
    }

    /// Hands every counter that moved since the last drain to `increment` (index, amount),
    /// and starts them again from 0.
    pub fn drain(&self, mut increment: impl FnMut(usize, u64)) {
        for (summary_at, summary) in self.moved_words.iter().enumerate() {
            // A load first: most of the time nothing moved, and a read leaves the cache line
            // shared (the native build drains at the end of every stream, on every worker).
            if summary.load(Ordering::Relaxed) == 0 {
                continue;
            }
            let words = summary.swap(0, Ordering::Acquire);
            for word_at in bits(words).map(|bit| summary_at * 64 + bit) {
                let Some(word) = self.moved.get(word_at) else {
                    continue;
                };
                for index in bits(word.swap(0, Ordering::Acquire)).map(|bit| word_at * 64 + bit) {
                    let by = self
                        .pending
                        .get(index)
                        .map_or(0, |count| count.swap(0, Ordering::Relaxed));
                    if by > 0 {
                        increment(index, by);
                    }
                }
            }
        }
    }

    pub fn decision(&self, route: Option<usize>, decision: Decision) -> Option<usize> {
        // Listed in route order after `unmatched`: found by position, not by a scan (an API
        // description brings thousands of routes).
        let (_, base) = self
            .decisions
            .get(route.map_or(0, |i| i + 1))
            .filter(|(r, _)| *r == route)?;
        Some(base + DECISIONS.iter().position(|(d, _)| *d == decision)?)
    }

    pub fn rate_limit(&self, limit: &str, event: Event) -> Option<(usize, u64)> {
        let (_, base, global) = self.limits.iter().find(|(name, _, _)| name == limit)?;
        let (offset, by) = if *global {
            global_offset(event)?
        } else {
            local_offset(event)?
        };
        Some((base + offset, by))
    }

    /// `reason` `None`: passed.
    pub fn validation(&self, route: Option<usize>, reason: Option<Reason>) -> Option<usize> {
        let at = self
            .validations
            .binary_search_by(|(r, _)| r.cmp(&route))
            .ok()?;
        let (_, base) = self.validations.get(at)?;
        let offset = match reason {
            None => 0,
            Some(reason) => 1 + Reason::ALL.iter().position(|r| *r == reason)?,
        };
        Some(base + offset)
    }
}
