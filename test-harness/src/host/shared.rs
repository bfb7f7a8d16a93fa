//! State every VM of one plugin shares, as in one Envoy process: shared data (with Envoy's CAS
//! rules), metrics, the clock and the captured log.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::abi::{LogLevel, Status};

/// 2026-01-01T00:00:00Z: where the controllable wall clock starts.
pub const CLOCK_START_NANOS: u64 = 1_767_225_600_000_000_000;

/// A clock the test moves. Wall time may be set backwards; monotonic time only advances.
#[derive(Debug)]
pub struct Clock {
    wall_nanos: AtomicU64,
    monotonic_nanos: AtomicU64,
}

impl Default for Clock {
    fn default() -> Self {
        Self {
            wall_nanos: AtomicU64::new(CLOCK_START_NANOS),
            monotonic_nanos: AtomicU64::new(1_000_000_000),
        }
    }
}

impl Clock {
    pub fn wall_nanos(&self) -> u64 {
        self.wall_nanos.load(Ordering::SeqCst)
    }

    pub fn monotonic_nanos(&self) -> u64 {
        self.monotonic_nanos.load(Ordering::SeqCst)
    }

    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.wall_nanos.fetch_add(nanos, Ordering::SeqCst);
        self.monotonic_nanos.fetch_add(nanos, Ordering::SeqCst);
    }

    /// Moves only the wall clock backwards (an NTP step); monotonic time is unaffected.
    pub fn step_wall_back(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.wall_nanos.fetch_sub(nanos, Ordering::SeqCst);
    }
}

/// One captured log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub vm: VmLabel,
    pub level: LogLevel,
    pub message: String,
}

/// Which VM a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmLabel {
    /// The configuration canary Envoy runs once on the main thread.
    Canary,
    /// The main thread's long-lived VM.
    Main,
    Worker(usize),
}

/// A hook the test installs to interfere with shared data: it runs after every successful
/// `get` with the key, and may write (bumping the CAS) so that the VM's next CAS write fails.
pub type Interference = Box<dyn FnMut(&[u8], &mut SharedDataMap) + Send>;

/// Shared data of one vm_id, with Envoy's semantics (proxy-wasm-cpp-host shared_data.cc):
/// one process-wide CAS counter starting at 1 (0 skipped); `set` on a missing key succeeds
/// whatever the CAS; on an existing key, a non-zero CAS must equal the stored one.
#[derive(Debug, Default)]
pub struct SharedDataMap {
    entries: HashMap<Vec<u8>, (Vec<u8>, u32)>,
    next_cas: u32,
}

impl SharedDataMap {
    fn next_cas(&mut self) -> u32 {
        if self.next_cas == 0 {
            self.next_cas = 1;
        }
        let cas = self.next_cas;
        self.next_cas = self.next_cas.wrapping_add(1);
        if self.next_cas == 0 {
            self.next_cas = 1;
        }
        cas
    }

    pub fn get(&self, key: &[u8]) -> Option<(Vec<u8>, u32)> {
        self.entries.get(key).cloned()
    }

    pub fn set(&mut self, key: &[u8], value: &[u8], cas: u32) -> Status {
        if let Some((_, stored)) = self.entries.get(key)
            && cas != 0
            && cas != *stored
        {
            return Status::CasMismatch;
        }
        let next = self.next_cas();
        self.entries.insert(key.to_vec(), (value.to_vec(), next));
        Status::Ok
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Total bytes held in keys and values.
    pub fn bytes(&self) -> usize {
        self.entries
            .iter()
            .map(|(k, (v, _))| k.len() + v.len())
            .sum()
    }

    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.entries.keys().map(Vec::as_slice)
    }
}

/// A metric as Envoy keeps it: one stat per name, whatever VM defined it.
#[derive(Debug, Clone, PartialEq)]
pub enum Stat {
    Counter(u64),
    Gauge(i64),
    Histogram(Vec<u64>),
}

#[derive(Default)]
pub struct Shared {
    pub clock: Clock,
    data: Mutex<SharedDataMap>,
    interference: Mutex<Option<Interference>>,
    stats: Mutex<BTreeMap<String, Stat>>,
    logs: Mutex<Vec<LogRecord>>,
    counters: Mutex<SharedCounters>,
}

/// Counts of shared-data operations, for tests of contention.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SharedCounters {
    pub gets: u64,
    pub sets: u64,
    pub cas_mismatches: u64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub fn get_shared(&self, key: &[u8]) -> Option<(Vec<u8>, u32)> {
        let mut data = lock(&self.data);
        lock(&self.counters).gets += 1;
        let found = data.get(key);
        if found.is_some()
            && let Some(hook) = lock(&self.interference).as_mut()
        {
            hook(key, &mut data);
        }
        found
    }

    pub fn set_shared(&self, key: &[u8], value: &[u8], cas: u32) -> Status {
        let status = lock(&self.data).set(key, value, cas);
        let mut counters = lock(&self.counters);
        counters.sets += 1;
        if status == Status::CasMismatch {
            counters.cas_mismatches += 1;
        }
        status
    }

    pub fn with_data<R>(&self, f: impl FnOnce(&mut SharedDataMap) -> R) -> R {
        f(&mut lock(&self.data))
    }

    pub fn set_interference(&self, hook: Option<Interference>) {
        *lock(&self.interference) = hook;
    }

    pub fn shared_counters(&self) -> SharedCounters {
        *lock(&self.counters)
    }

    pub fn log(&self, record: LogRecord) {
        lock(&self.logs).push(record);
    }

    pub fn logs(&self) -> Vec<LogRecord> {
        lock(&self.logs).clone()
    }

    pub fn define_stat(&self, kind: i32, name: &str) {
        use super::abi::metric;
        let mut stats = lock(&self.stats);
        stats.entry(name.to_string()).or_insert_with(|| match kind {
            metric::GAUGE => Stat::Gauge(0),
            metric::HISTOGRAM => Stat::Histogram(Vec::new()),
            _ => Stat::Counter(0),
        });
    }

    pub fn with_stat<R>(&self, name: &str, f: impl FnOnce(&mut Stat) -> R) -> Option<R> {
        lock(&self.stats).get_mut(name).map(f)
    }

    pub fn stats(&self) -> BTreeMap<String, Stat> {
        lock(&self.stats).clone()
    }
}
