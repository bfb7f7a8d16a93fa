use crate::counter::Counter;
use crate::storage::atomic_expiring_value::AtomicExpiringValue;
use crate::storage::redis::DEFAULT_MAX_CACHED_COUNTERS;
use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use metrics::{counter, gauge, histogram};
use moka::notification::RemovalCause;
use moka::sync::Cache;
use std::collections::HashMap;
use std::future::Future;
use std::ops::Not;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::select;
use tokio::sync::{Notify, Semaphore};
use tracing::info;

#[derive(Debug)]
pub struct CachedCounterValue {
    value: AtomicExpiringValue,
    initial_value: AtomicU64,
    from_authority: AtomicBool,
}

impl CachedCounterValue {
    pub fn from_authority(counter: &Counter, value: u64) -> Self {
        let now = SystemTime::now();
        Self {
            value: AtomicExpiringValue::new(value, now + counter.window()),
            initial_value: AtomicU64::new(value),
            from_authority: AtomicBool::new(true),
        }
    }

    pub fn load_from_authority_asap(counter: &Counter, temp_value: u64) -> Self {
        let now = SystemTime::now();
        Self {
            value: AtomicExpiringValue::new(temp_value, now + counter.window()),
            initial_value: AtomicU64::new(0),
            from_authority: AtomicBool::new(false),
        }
    }

    #[cfg(feature = "redis_storage")]
    pub fn add_from_authority(&self, delta: u64, expire_at: SystemTime, max_value: u64) {
        let new_val = self.value.add_and_set_expiry(delta, expire_at);
        if new_val > max_value {
            histogram!("counter_overshoot").record((new_val - max_value) as f64);
        }
        self.initial_value.fetch_add(delta, Ordering::SeqCst);
        self.from_authority.store(true, Ordering::Release);
    }

    pub fn delta(&self, counter: &Counter, delta: u64) -> u64 {
        let value = self
            .value
            .update(delta, counter.window(), SystemTime::now());
        if value == delta {
            // new window, invalidate initial value
            // which happens _after_ the self.value was reset, see `pending_writes`
            self.initial_value.store(0, Ordering::SeqCst);
        }
        value
    }

    pub fn pending_writes(&self) -> Result<u64, ()> {
        self.pending_writes_and_value().map(|(writes, _)| writes)
    }

    pub fn pending_writes_and_value(&self) -> Result<(u64, u64), ()> {
        let start = self.initial_value.load(Ordering::SeqCst);
        let value = self.value.value_at(SystemTime::now());
        let offset = if start == 0 {
            value
        } else {
            let writes = value.checked_sub(start);
            // self.value expired, is now less than the writes of the previous window
            // which have not yet been reset... it'll be 0, so treat it as such.
            writes.unwrap_or(value)
        };
        match self
            .initial_value
            .compare_exchange(start, value, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => Ok((offset, value)),
            Err(newer) => {
                if newer == 0 {
                    // We got reset because of expiry, this fresh value can wait the next iteration
                    Ok((0, 0))
                } else {
                    // Concurrent call to this method?
                    // We could support that with a CAS loop in the future if needed
                    Err(())
                }
            }
        }
    }

    fn no_pending_writes(&self) -> bool {
        let start = self.initial_value.load(Ordering::SeqCst);
        let value = self.value.value_at(SystemTime::now());
        value.checked_sub(start).unwrap_or(value) == 0
    }

    fn revert_writes(&self, writes: u64) -> Result<(), ()> {
        let newer = self.initial_value.load(Ordering::SeqCst);
        if newer > writes {
            return match self.initial_value.compare_exchange(
                newer,
                newer - writes,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Err(expiry) if expiry != 0 => Err(()),
                _ => Ok(()),
            };
        }
        Ok(())
    }

    pub fn hits(&self, _: &Counter) -> u64 {
        self.value.value_at(SystemTime::now())
    }

    pub fn remaining(&self, counter: &Counter) -> u64 {
        // Saturating: a counter can overshoot its limit (see `add_from_authority`'s
        // `counter_overshoot`, and uncapped `update_counter` deltas from Report/Commit), so
        // `hits` may exceed `max_value` - a plain subtraction would underflow.
        counter.max_value().saturating_sub(self.hits(counter))
    }

    pub fn is_limited(&self, counter: &Counter, delta: u64) -> bool {
        self.hits(counter) as i128 + delta as i128 > counter.max_value() as i128
    }

    pub fn ttl(&self) -> Duration {
        self.value.ttl()
    }

    pub fn requires_fast_flush(&self, within: &Duration) -> bool {
        self.from_authority.load(Ordering::Acquire).not() || &self.value.ttl() <= within
    }
}

pub struct Batcher {
    updates: DashMap<Counter, Arc<CachedCounterValue>>,
    notifier: Notify,
    interval: Duration,
    priority_flush: AtomicBool,
    limiter: Semaphore,
}

impl Batcher {
    fn new(period: Duration, max_cached_counters: usize) -> Self {
        Self {
            updates: Default::default(),
            notifier: Default::default(),
            interval: period,
            priority_flush: AtomicBool::new(false),
            limiter: Semaphore::new(max_cached_counters),
        }
    }

    pub async fn add(&self, counter: Counter, value: Arc<CachedCounterValue>) {
        let priority = value.requires_fast_flush(&self.interval);
        match self.updates.entry(counter.clone()) {
            Entry::Occupied(needs_merge) => {
                let arc = needs_merge.get();
                if !Arc::ptr_eq(arc, &value) {
                    arc.delta(&counter, value.pending_writes().unwrap());
                }
            }
            Entry::Vacant(miss) => {
                self.limiter.acquire().await.unwrap().forget();
                gauge!("batcher_size").increment(1);
                miss.insert_entry(value);
            }
        };
        if priority {
            self.priority_flush.store(true, Ordering::Release);
        }
        self.notifier.notify_one();
    }

    pub async fn consume<F, Fut, T, E>(&self, max: usize, consumer: F) -> Result<T, E>
    where
        F: FnOnce(HashMap<Counter, Arc<CachedCounterValue>>) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut ready = self.batch_ready(max);
        loop {
            if ready {
                let mut batch = Vec::with_capacity(max);
                batch.extend(
                    self.updates
                        .iter()
                        .filter(|entry| entry.value().requires_fast_flush(&self.interval))
                        .take(max)
                        .map(|e| e.key().clone()),
                );
                if let Some(remaining) = max.checked_sub(batch.len()) {
                    batch.extend(self.updates.iter().take(remaining).map(|e| e.key().clone()));
                }
                let mut result = HashMap::new();
                for counter in &batch {
                    let value = self.updates.get(counter).unwrap().clone();
                    result.insert(counter.clone(), value);
                }
                histogram!("batcher_flush_size").record(result.len() as f64);
                let result = consumer(result).await;
                if result.is_ok() {
                    batch.iter().for_each(|counter| {
                        let prev = self
                            .updates
                            .remove_if(counter, |_, v| v.no_pending_writes());
                        if prev.is_some() {
                            self.limiter.add_permits(1);
                            gauge!("batcher_size").decrement(1);
                        }
                    });
                }
                return result;
            } else {
                ready = select! {
                    _ = async {
                        loop {
                            self.notifier.notified().await;
                            if self.batch_ready(max) {
                                break;
                            }
                        }
                    } => {
                        info!("Priority flush!");
                        true
                    },
                    _ = tokio::time::sleep(self.interval) => true,
                }
            }
        }
    }

    fn batch_ready(&self, size: usize) -> bool {
        self.updates.len() >= size
            || self
                .priority_flush
                .compare_exchange(true, false, Ordering::Release, Ordering::Acquire)
                .is_ok()
    }
}

impl Default for Batcher {
    fn default() -> Self {
        Self::new(Duration::from_millis(100), DEFAULT_MAX_CACHED_COUNTERS)
    }
}

pub struct CountersCache {
    cache: Cache<Counter, Arc<CachedCounterValue>>,
    batcher: Batcher,
}

impl CountersCache {
    pub fn get(&self, counter: &Counter) -> Option<Arc<CachedCounterValue>> {
        let option = self.cache.get(counter);
        if option.is_none() {
            let from_queue = self.batcher.updates.get(counter);
            if let Some(entry) = from_queue {
                gauge!("cache_size").increment(1);
                self.cache.insert(counter.clone(), entry.value().clone());
                return Some(entry.value().clone());
            }
        }
        option
    }

    pub fn batcher(&self) -> &Batcher {
        &self.batcher
    }

    pub fn return_pending_writes(
        &self,
        counter: &Counter,
        value: u64,
        writes: u64,
    ) -> Result<(), ()> {
        if writes != 0 {
            let mut miss = false;
            let value = self.cache.get_with_by_ref(counter, || {
                if let Some(entry) = self.batcher.updates.get(counter) {
                    entry.value().clone()
                } else {
                    miss = true;
                    let value = Arc::new(CachedCounterValue::from_authority(counter, value));
                    value.delta(counter, writes);
                    value
                }
            });
            if miss.not() {
                return value.revert_writes(writes);
            }
        }
        Ok(())
    }

    pub fn apply_remote_delta(
        &self,
        counter: Counter,
        redis_val: u64,
        remote_deltas: u64,
        expiry: SystemTime,
    ) -> Arc<CachedCounterValue> {
        if expiry > SystemTime::now() {
            let mut from_cache = true;
            let cached = self.cache.get_with(counter.clone(), || {
                from_cache = false;
                if let Some(entry) = self.batcher.updates.get(&counter) {
                    gauge!("cache_size").increment(1);
                    let cached_value = entry.value();
                    cached_value.add_from_authority(remote_deltas, expiry, counter.max_value());
                    cached_value.clone()
                } else {
                    Arc::new(CachedCounterValue::from_authority(&counter, redis_val))
                }
            });
            if from_cache {
                cached.add_from_authority(remote_deltas, expiry, counter.max_value());
            }
            return cached;
        }
        Arc::new(CachedCounterValue::load_from_authority_asap(
            &counter, redis_val,
        ))
    }

    pub async fn increase_by(&self, counter: &Counter, delta: u64) {
        let val = self.cache.get_with_by_ref(counter, || {
            gauge!("cache_size").increment(1);
            if let Some(entry) = self.batcher.updates.get(counter) {
                entry.value().clone()
            } else {
                Arc::new(CachedCounterValue::load_from_authority_asap(counter, 0))
            }
        });
        val.delta(counter, delta);
        self.batcher.add(counter.clone(), val.clone()).await;
    }
}

pub struct CountersCacheBuilder {
    max_cached_counters: usize,
}

impl CountersCacheBuilder {
    pub fn new() -> Self {
        Self {
            max_cached_counters: DEFAULT_MAX_CACHED_COUNTERS,
        }
    }

    pub fn max_cached_counters(mut self, max_cached_counters: usize) -> Self {
        self.max_cached_counters = max_cached_counters;
        self
    }

    fn eviction_listener(
        _key: Arc<Counter>,
        value: Arc<CachedCounterValue>,
        _removal_cause: RemovalCause,
    ) {
        gauge!("cache_size").decrement(1);
        if value.no_pending_writes().not() {
            counter!("evicted_pending_writes").increment(1);
        }
    }

    pub fn build(&self, period: Duration) -> CountersCache {
        CountersCache {
            cache: Cache::builder()
                .max_capacity(self.max_cached_counters as u64)
                .eviction_listener(Self::eviction_listener)
                .build(),
            batcher: Batcher::new(period, self.max_cached_counters),
        }
    }
}
