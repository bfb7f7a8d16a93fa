//! The limiter's tables in process memory, for a build whose workers are threads of one
//! process (a native Envoy dynamic module): each table a fixed array of buckets, each bucket
//! its 8 slots as atomic words behind a version, a seqlock. A read copies the bucket without
//! writing anything (readers never contend with each other); a write takes the bucket from the
//! version it read to the next with one compare-and-swap, so a worker that wrote in between
//! makes it fail, as Envoy's CAS does in shared data, and the GCRA's loop retries.
//!
//! Tables live as long as a config holds them: a [`TableRegistry`] (one per process, kept by
//! the shell) hands the same table to every config that names it while one still does, so the
//! state carries over a reload as it does in Wasm shared data, and drops a table no config
//! holds any more.

use std::collections::HashMap;
use std::fmt;
use std::hint::spin_loop;
use std::sync::atomic::{AtomicU64, Ordering, fence};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::thread::yield_now;

use super::gcra::{self, Check};
use super::shared_data::{GetError, SetError};
use super::store::RateStore;
use super::table::BucketCell;
use super::table::{Bucket, SLOTS_PER_BUCKET};
use super::{KeyHasher, Limit};

/// Waits for a write under way that only spin (it takes a few stores to finish).
const SPINS: u32 = 100;
/// Waits that yield the thread after the spins (the writer's thread may have been preempted
/// mid-write); after them the bucket counts as unreachable.
const YIELDS: u32 = 1_000;

/// One bucket: `version` is even when the words are whole, odd while a write is under way;
/// `words` are the slots' (fingerprint, TAT) pairs in order.
#[derive(Default)]
pub(super) struct AtomicBucket {
    version: AtomicU64,
    words: [AtomicU64; 2 * SLOTS_PER_BUCKET],
}

/// Counts one wait for a writer, spinning then yielding; `false` once waited too long.
fn wait(waits: &mut u32) -> bool {
    *waits = waits.saturating_add(1);
    if *waits <= SPINS {
        spin_loop();
    } else if *waits <= SPINS + YIELDS {
        yield_now();
    } else {
        return false;
    }
    true
}

impl AtomicBucket {
    /// A whole bucket and its (even) version: the words read between two loads of the same
    /// even version, or again.
    fn read_whole(&self) -> Result<(Bucket, u64), GetError> {
        let mut waits = 0;
        loop {
            let before = self.version.load(Ordering::Acquire);
            if before.is_multiple_of(2) {
                let bucket = self.load_words();
                // Orders the word loads before the second version load: a word written by a
                // later write means that write's odd version is seen here.
                fence(Ordering::Acquire);
                if self.version.load(Ordering::Relaxed) == before {
                    return Ok((bucket, before));
                }
            }
            if !wait(&mut waits) {
                return Err(GetError);
            }
        }
    }

    fn load_words(&self) -> Bucket {
        let mut bucket = Bucket::default();
        for (slot, pair) in bucket.slots.iter_mut().zip(self.words.chunks_exact(2)) {
            if let [fingerprint, tat] = pair {
                slot.fingerprint = fingerprint.load(Ordering::Relaxed);
                slot.tat = tat.load(Ordering::Relaxed);
            }
        }
        bucket
    }

    /// Takes the bucket from `expected` to the odd version after it; fails if another write
    /// moved it (or is under way).
    fn lock(&self, expected: u64) -> Result<(), SetError> {
        if !expected.is_multiple_of(2) {
            return Err(SetError::CasMismatch);
        }
        self.version
            .compare_exchange(
                expected,
                expected.wrapping_add(1),
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .map(|_| ())
            .map_err(|_| SetError::CasMismatch)
    }

    /// Takes the bucket from whatever even version it has, waiting for a write under way.
    fn lock_any(&self) -> Result<u64, SetError> {
        let mut waits = 0;
        loop {
            let version = self.version.load(Ordering::Relaxed);
            if self.lock(version).is_ok() {
                return Ok(version);
            }
            if !wait(&mut waits) {
                return Err(SetError::Failed);
            }
        }
    }

    /// Writes the words of a bucket locked at `expected` (odd now) and releases it at the
    /// next even version.
    fn store_words(&self, bucket: &Bucket, expected: u64) {
        // Orders the odd version before the word stores: a reader that sees one of them sees
        // the odd version on its second load.
        fence(Ordering::Release);
        for (slot, pair) in bucket.slots.iter().zip(self.words.chunks_exact(2)) {
            if let [fingerprint, tat] = pair {
                fingerprint.store(slot.fingerprint, Ordering::Relaxed);
                tat.store(slot.tat, Ordering::Relaxed);
            }
        }
        self.version
            .store(expected.wrapping_add(2), Ordering::Release);
    }
}

/// A bucket of a table is always there: `read` never says missing, and `write` without a
/// version writes whatever version the bucket is at.
impl BucketCell for AtomicBucket {
    fn read(&self) -> Result<Option<(Bucket, u64)>, GetError> {
        self.read_whole().map(Some)
    }

    fn write(&self, bucket: &Bucket, version: Option<u64>) -> Result<(), SetError> {
        let expected = match version {
            Some(expected) => {
                self.lock(expected)?;
                expected
            }
            None => self.lock_any()?,
        };
        self.store_words(bucket, expected);
        Ok(())
    }
}

/// One limit's table: its buckets, all empty to begin with.
pub(super) struct AtomicTable {
    buckets: Box<[AtomicBucket]>,
}

impl AtomicTable {
    pub(super) fn new(buckets: u32) -> Self {
        Self {
            buckets: (0..buckets).map(|_| AtomicBucket::default()).collect(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Bucket `bucket`, if the table has it.
    pub(super) fn cell(&self, bucket: u32) -> Option<&AtomicBucket> {
        self.buckets.get(usize::try_from(bucket).ok()?)
    }
}

impl fmt::Debug for AtomicTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AtomicTable({} buckets)", self.buckets.len())
    }
}

/// The process's tables by name (`Limit::table`, which changes when a limit's counting does)
/// and the key hash secret, shared by every config the process loads. It holds the tables
/// weakly: the configs hold them.
#[derive(Debug, Default)]
pub struct TableRegistry {
    tables: Mutex<HashMap<String, Weak<AtomicTable>>>,
    secret: OnceLock<[u8; 16]>,
}

impl TableRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// The process's secret: the first one offered.
    pub(super) fn secret(&self, fresh_secret: [u8; 16]) -> [u8; 16] {
        *self.secret.get_or_init(|| fresh_secret)
    }

    /// The table named `name`, as a config still holds it, or a new one of `buckets` buckets
    /// (tables no config holds any more are forgotten then).
    pub(super) fn table(&self, name: &str, buckets: u32) -> Arc<AtomicTable> {
        // A thread that panicked holding the lock left the map whole (each change is one call).
        let mut tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        let held = tables.get(name).and_then(Weak::upgrade);
        if let Some(table) = held.filter(|t| usize::try_from(buckets).is_ok_and(|n| t.len() == n)) {
            return table;
        }
        tables.retain(|_, table| table.strong_count() > 0);
        let table = Arc::new(AtomicTable::new(buckets));
        tables.insert(name.to_string(), Arc::downgrade(&table));
        table
    }

    /// How many tables configs hold.
    pub fn live_tables(&self) -> usize {
        let tables = self.tables.lock().unwrap_or_else(PoisonError::into_inner);
        tables.values().filter(|t| t.strong_count() > 0).count()
    }
}

/// One config's store in process memory: the tables of its limits, taken from the registry
/// when the config is prepared and held as long as the config (this value) lives.
#[derive(Debug)]
pub struct AtomicTables {
    registry: Arc<TableRegistry>,
    /// By table name: a config has a few, found by a scan (no hashing per request).
    tables: OnceLock<Vec<(String, Arc<AtomicTable>)>>,
}

impl AtomicTables {
    /// A store for one config, its tables to come from `registry` when prepared.
    pub fn new(registry: Arc<TableRegistry>) -> Self {
        Self {
            registry,
            tables: OnceLock::new(),
        }
    }
}

impl RateStore for AtomicTables {
    /// Prepared once, for one config; preparing again for limits of the same tables is a
    /// no-op, for others an error.
    fn prepare(
        &self,
        limits: &[&Limit],
        fresh_secret: [u8; 16],
    ) -> Result<KeyHasher, &'static str> {
        let held = self.tables.get_or_init(|| {
            limits
                .iter()
                .map(|l| (l.table.clone(), self.registry.table(&l.table, l.buckets)))
                .collect()
        });
        if !limits
            .iter()
            .all(|l| held.iter().any(|(name, _)| *name == l.table))
        {
            return Err("this store's tables were made for another config");
        }
        Ok(KeyHasher::new(self.registry.secret(fresh_secret)))
    }

    fn check(&self, limit: &Limit, bucket: u32, fingerprint: u64, now: u64) -> Check {
        let cell = self
            .tables
            .get()
            .and_then(|tables| tables.iter().find(|(name, _)| *name == limit.table))
            .and_then(|(_, table)| table.cell(bucket));
        match cell {
            Some(cell) => gcra::check(limit.quota, cell, fingerprint, now),
            None => Check::failed(),
        }
    }
}
