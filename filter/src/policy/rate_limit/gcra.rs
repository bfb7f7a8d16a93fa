//! GCRA decisions by the `governor` crate over a slot of a table's bucket, whatever the store
//! ([`BucketCell`]): governor does the arithmetic; its state store here reads the bucket with
//! its version, lets governor decide, and writes back if that version still holds, retrying
//! (bounded) when another worker wrote in between.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::StateInformationMiddleware;
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::{Quota, RateLimiter};

use super::shared_data::SetError;
use super::table::BucketCell;
use super::table::{Bucket, Placement};

/// How many times a write that lost a CAS race is retried before the store counts as failed.
pub const MAX_CAS_RETRIES: u32 = 8;

/// The clock governor reads: the host's wall clock, read once per request. It reads 0 while
/// the limiter is built, so governor's reference point is the Unix epoch and the TATs it hands
/// the store are absolute, the same for every worker.
struct HostClock<'a>(&'a Cell<u64>);

impl Clock for HostClock<'_> {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.0.get())
    }
}

/// governor's keys; the store already knows its slot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ThisSlot;

#[derive(Debug, Default)]
struct Record {
    conflicts: u32,
    failed: bool,
    previous_tat: Option<u64>,
    written_tat: Option<u64>,
    shared: bool,
}

struct SlotStore<'a> {
    cell: &'a dyn BucketCell,
    fingerprint: u64,
    now: u64,
    /// `t + tau`: a TAT further than this ahead of now can only come from a clock that went
    /// backwards; it is clamped (to "fully used") instead of blocking the key for as long.
    capacity: u64,
    record: &'a RefCell<Record>,
}

impl StateStore for SlotStore<'_> {
    type Key = ThisSlot;

    fn measure_and_replace<T, F, E>(&self, _key: &ThisSlot, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut record = self.record.borrow_mut();
        for _ in 0..=MAX_CAS_RETRIES {
            let (mut bucket, version) = match self.cell.read() {
                Ok(Some((bucket, version))) => (bucket, Some(version)),
                // Buckets are created when the config loads; a missing one is created here.
                Ok(None) => (Bucket::default(), None),
                Err(_) => {
                    record.failed = true;
                    break;
                }
            };
            let placement = bucket.place(self.fingerprint, self.now);
            let ceiling = self.now.saturating_add(self.capacity);
            let stored = match placement {
                Placement::Own(i) | Placement::Shared(i) => bucket.slot(i).map(|s| s.tat),
                Placement::Free(_) => None,
            };
            let previous = stored.map(|tat| tat.min(ceiling));
            record.previous_tat = previous;
            record.shared = matches!(placement, Placement::Shared(_));
            let (value, new_tat) = match f(previous.map(Nanos::from)) {
                Ok(decided) => decided,
                Err(refused) => {
                    if stored > previous {
                        // Persist the clamp, so the key waits one window, not the clock's step.
                        if let (Some(slot), Some(tat)) =
                            (bucket.slot_mut(placement.index()), previous)
                        {
                            slot.tat = tat;
                            let _ = self.cell.write(&bucket, version);
                        }
                    }
                    return Err(refused);
                }
            };
            if let Some(slot) = bucket.slot_mut(placement.index()) {
                if let Placement::Free(_) = placement {
                    slot.fingerprint = self.fingerprint;
                }
                slot.tat = new_tat.into();
            }
            match self.cell.write(&bucket, version) {
                Ok(()) => {
                    record.written_tat = Some(new_tat.into());
                    return Ok(value);
                }
                Err(SetError::CasMismatch) => record.conflicts += 1,
                Err(SetError::Failed) => {
                    record.failed = true;
                    break;
                }
            }
        }
        record.failed = true;
        drop(record);
        // The state could not be updated; the caller applies `on_error` and ignores this.
        f(None).map(|(value, _)| value)
    }
}

/// One decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub allowed: bool,
    /// Requests that could be made right now.
    pub remaining: u32,
    /// Until the key is back to its full burst.
    pub reset_after: Duration,
    /// For a refusal: until the next request would be allowed.
    pub retry_after: Duration,
    /// CAS races lost (and retried).
    pub conflicts: u32,
    /// The store failed (or every retry lost its race): the decision is not valid.
    pub store_failed: bool,
    /// The key shared a slot with another key (its bucket was full of live keys).
    pub shared_slot: bool,
}

impl Check {
    /// No decision: the key's bucket could not be reached (the caller applies `on_error`).
    pub fn failed() -> Self {
        Self {
            allowed: true,
            remaining: 0,
            reset_after: Duration::ZERO,
            retry_after: Duration::ZERO,
            conflicts: 0,
            store_failed: true,
            shared_slot: false,
        }
    }
}

/// Runs governor's GCRA for one key (its bucket's cell and its fingerprint there) at `now`
/// (ns since the Unix epoch).
pub fn check(quota: Quota, cell: &dyn BucketCell, fingerprint: u64, now: u64) -> Check {
    let clock = Cell::new(0);
    let record = RefCell::new(Record::default());
    let t = u64::try_from(quota.replenish_interval().as_nanos()).unwrap_or(u64::MAX);
    let tau = t.saturating_mul(u64::from(quota.burst_size().get()).saturating_sub(1));
    let store = SlotStore {
        cell,
        fingerprint,
        now,
        capacity: t.saturating_add(tau),
        record: &record,
    };
    let limiter: RateLimiter<ThisSlot, SlotStore<'_>, HostClock<'_>, StateInformationMiddleware> =
        RateLimiter::new(quota, store, HostClock(&clock));
    clock.set(now);
    let outcome = limiter.check_key(&ThisSlot);
    let record = record.into_inner();
    let since_now = |tat: Option<u64>| Duration::from_nanos(tat.unwrap_or(now).saturating_sub(now));
    match outcome {
        Ok(snapshot) => Check {
            allowed: true,
            remaining: snapshot.remaining_burst_capacity(),
            reset_after: since_now(record.written_tat),
            retry_after: Duration::ZERO,
            conflicts: record.conflicts,
            store_failed: record.failed,
            shared_slot: record.shared,
        },
        Err(not_until) => Check {
            allowed: false,
            remaining: 0,
            reset_after: since_now(record.previous_tat),
            retry_after: not_until.wait_time_from(Nanos::from(now)),
            conflicts: record.conflicts,
            store_failed: record.failed,
            shared_slot: record.shared,
        },
    }
}
