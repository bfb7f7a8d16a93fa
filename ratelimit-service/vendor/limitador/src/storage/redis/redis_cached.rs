use crate::counter::Counter;
use crate::limit::Limit;
use crate::reservation::ReservationId;
use crate::storage::keys::*;
use crate::storage::local_reservations::{LocalReservationRegistry, ReservationRequest};
use crate::storage::redis::counters_cache::{
    CachedCounterValue, CountersCache, CountersCacheBuilder,
};
use crate::storage::redis::redis_async::AsyncRedisStorage;
use crate::storage::redis::scripts::BATCH_UPDATE_COUNTERS;
use crate::storage::redis::{
    DEFAULT_BATCH_SIZE, DEFAULT_FLUSHING_PERIOD_SEC, DEFAULT_MAX_CACHED_COUNTERS,
    DEFAULT_RESPONSE_TIMEOUT_MS,
};
use crate::storage::{AsyncCounterStorage, Authorization, StorageErr};
use async_trait::async_trait;
use metrics::gauge;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{ConnectionInfo, RedisError};
use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tracing::{error, info, info_span, warn, Instrument};

// This is just a first version.
//
// The idea is to improve throughput and latencies by caching the limits and
// counters in memory to reduce the number of accesses to Redis. Every counter
// read/write (`is_within_limits`, `update_counter`, `check`, `check_and_update`) goes through
// this cache - `get_counters`/`delete_counters`/`clear` are the exception, delegating straight
// to the underlying `AsyncRedisStorage` since they're not on the hot request path.
//
// There might be several instances of Limitador accessing the same Redis server
// at the same time. This means that cached values might not reflect updates
// done by other Limitador instances. That's the trade-off this implementation
// makes. In order to reduce the number of Redis queries, it sacrifices some
// rate-limit accuracy. We can go over limits, but the amount can be configured
// by tuning the constants below.
//
// Future improvements:
// - Introduce a mechanism to avoid going to Redis to fetch the same counter
// multiple times when it is not cached.

pub struct CachedRedisStorage {
    cached_counters: Arc<CountersCache>,
    async_redis_storage: AsyncRedisStorage,
    // Local-memory only, not shared across processes - see `LocalReservationRegistry`'s docs.
    // A starting point, matching the accuracy trade-offs this backend already makes for
    // counters themselves; not meant for production multi-replica deployments yet.
    reservations: LocalReservationRegistry,
}

#[async_trait]
impl AsyncCounterStorage for CachedRedisStorage {
    // Read-only: a cache hit is served from the local cache, a cache miss reads the authoritative
    // value live from Redis (see `check_reading_misses`).
    #[tracing::instrument(skip_all)]
    async fn is_within_limits(&self, counter: &Counter, delta: u64) -> Result<bool, StorageErr> {
        let mut counter = counter.clone();
        Ok(matches!(
            self.check_reading_misses(std::slice::from_mut(&mut counter), delta)
                .await?,
            Authorization::Ok
        ))
    }

    // Cache-backed, same trade-off as `check_and_update`: increments are applied locally and
    // flushed to Redis in the background (`Batcher`/`BATCH_UPDATE_COUNTERS`), rather than
    // written synchronously. This keeps Report/Commit's view of a counter consistent with
    // `check`/`check_and_update`'s, rather than requiring a separate live Redis read to see
    // increments applied through this method.
    #[tracing::instrument(skip_all)]
    async fn update_counter(&self, counter: &Counter, delta: u64) -> Result<(), StorageErr> {
        self.cached_counters.increase_by(counter, delta).await;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn check<'a>(
        &self,
        counters: &mut Vec<Counter>,
        delta: u64,
    ) -> Result<Authorization, StorageErr> {
        self.check_reading_misses(counters, delta).await
    }

    // Notice that this method does not guarantee 100% accuracy when applying the
    // limits. In order to do so, we'd need to run this whole function
    // atomically, but that'd be too slow.
    // This function trades accuracy for speed.
    #[tracing::instrument(skip_all)]
    async fn check_and_update<'a>(
        &self,
        counters: &mut Vec<Counter>,
        delta: u64,
    ) -> Result<Authorization, StorageErr> {
        let auth = self.check_assuming_fresh_misses(counters, delta);
        if matches!(auth, Authorization::Ok) {
            for counter in counters.iter() {
                self.cached_counters.increase_by(counter, delta).await;
            }
        }
        Ok(auth)
    }

    #[tracing::instrument(skip_all)]
    async fn get_counters(
        &self,
        limits: &HashSet<Arc<Limit>>,
    ) -> Result<HashSet<Counter>, StorageErr> {
        self.async_redis_storage.get_counters(limits).await
    }

    #[tracing::instrument(skip_all)]
    async fn delete_counters(&self, limits: &HashSet<Arc<Limit>>) -> Result<(), StorageErr> {
        self.async_redis_storage.delete_counters(limits).await
    }

    #[tracing::instrument(skip_all)]
    async fn clear(&self) -> Result<(), StorageErr> {
        self.async_redis_storage.clear().await
    }

    // Local-memory only (see `LocalReservationRegistry`'s docs): admission is checked against
    // this instance's own cached view of each counter. A cache miss can't just default to 0.
    // Unlike `check_and_update` - which writes on every admitted call, so a wrong guess is
    // corrected in full by the very next flush (`apply_remote_delta` folds in whatever Redis has
    // beyond what we last accounted for, not just incremental drift) - `reserve` never writes to
    // this cache, so nothing reconciles a wrong guess afterward. And unlike a read-only `check`,
    // whose decision is discarded, an under-estimate here is admitted as a real hold in
    // `LocalReservationRegistry`, which every subsequent `reserve` call on this counter folds
    // into its own admission math via `outstanding()`, compounding the mistake for up to
    // `ReservationLimits::max_ttl`. Misses are fetched live from Redis instead (the read-only
    // `check` path does the same), in one batched round trip.
    #[tracing::instrument(skip_all)]
    async fn reserve(
        &self,
        counters: &mut Vec<Counter>,
        reservation_id: &ReservationId,
        check_amount: u64,
        hold_amount: u64,
        ttl: Duration,
    ) -> Result<Authorization, StorageErr> {
        let now = SystemTime::now();

        let mut values_and_window_ttls: Vec<Option<(u64, Duration)>> = counters
            .iter()
            .map(|counter| {
                self.cached_counters
                    .get(counter)
                    .map(|cached| (cached.hits(counter), cached.ttl()))
            })
            .collect();

        let missing: Vec<usize> = values_and_window_ttls
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.is_none().then_some(i))
            .collect();

        if !missing.is_empty() {
            let missing_counters: Vec<Counter> =
                missing.iter().map(|&i| counters[i].clone()).collect();
            let fetched = self
                .async_redis_storage
                .values_and_window_ttls(&missing_counters)
                .await?;
            for (i, value_ttl) in missing.into_iter().zip(fetched) {
                values_and_window_ttls[i] = Some(value_ttl);
            }
        }

        let values_and_window_ttls: Vec<(u64, Duration)> = values_and_window_ttls
            .into_iter()
            .map(|v| v.expect("every entry was either cached or just fetched"))
            .collect();

        Ok(self.reservations.reserve(
            counters,
            &values_and_window_ttls,
            ReservationRequest {
                reservation_id,
                check_amount,
                hold_amount,
                ttl,
                now,
            },
        ))
    }

    #[tracing::instrument(skip_all)]
    async fn release_reservation(
        &self,
        counters: &[Counter],
        reservation_id: &ReservationId,
    ) -> Result<bool, StorageErr> {
        Ok(self.reservations.release(counters, reservation_id))
    }
}

impl CachedRedisStorage {
    /// Annotate every counter already present in the local cache with its current
    /// `remaining`/`expires_in`, and track whether `delta` more would keep it within its limit.
    /// Returns the first limited authorization found (if any) and the indices of the counters that
    /// were not present in the cache, left for the caller to resolve. Never mutates the cache.
    fn annotate_cached(
        &self,
        counters: &mut [Counter],
        delta: u64,
    ) -> (Option<Authorization>, Vec<usize>) {
        let mut first_limited = None;
        let mut missing: Vec<usize> = vec![];

        for (idx, counter) in counters.iter_mut().enumerate() {
            match self.cached_counters.get(counter) {
                Some(val) => {
                    if first_limited.is_none() && val.is_limited(counter, delta) {
                        first_limited = Some(Authorization::Limited(
                            counter.limit().name().map(|n| n.to_owned()),
                        ));
                    }
                    // `remaining` reflects the counter's actual current state, not a projection
                    // of `delta` having been applied.
                    counter.set_remaining(val.remaining(counter));
                    // A zero ttl means the previous window has already elapsed even though a
                    // stale entry is still cached - report a fresh full window, the same as a
                    // counter that was never cached at all.
                    let ttl = val.ttl();
                    let ttl = if ttl.is_zero() { counter.window() } else { ttl };
                    counter.set_expires_in(ttl);
                }
                _ => missing.push(idx),
            }
        }

        (first_limited, missing)
    }

    /// Determine whether `delta` more would keep every counter within its limit, annotating each
    /// with its `remaining`/`expires_in`. Cache hits are served from the local cache; cache misses
    /// are read live from Redis in one batched round trip. Reading the authoritative value on a
    /// miss (rather than assuming a fresh counter) avoids admitting an already-exhausted counter
    /// when the local cache is cold. Never mutates the cache.
    async fn check_reading_misses(
        &self,
        counters: &mut [Counter],
        delta: u64,
    ) -> Result<Authorization, StorageErr> {
        let (mut first_limited, missing) = self.annotate_cached(counters, delta);

        if !missing.is_empty() {
            let missing_counters: Vec<Counter> =
                missing.iter().map(|&i| counters[i].clone()).collect();
            let fetched = self
                .async_redis_storage
                .values_and_window_ttls(&missing_counters)
                .await?;
            for (&i, (value, ttl)) in missing.iter().zip(fetched) {
                let counter = &mut counters[i];
                if first_limited.is_none()
                    && counter
                        .max_value()
                        .checked_sub(value.saturating_add(delta))
                        .is_none()
                {
                    first_limited = Some(Authorization::Limited(
                        counter.limit().name().map(|n| n.to_owned()),
                    ));
                }
                counter.set_remaining(counter.max_value().saturating_sub(value));
                let ttl = if ttl.is_zero() { counter.window() } else { ttl };
                counter.set_expires_in(ttl);
            }
        }

        Ok(first_limited.unwrap_or(Authorization::Ok))
    }

    /// Determine whether `delta` more would keep every counter within its limit, annotating each
    /// with its `remaining`/`expires_in`. Cache hits are served from the local cache; a cache miss
    /// is assumed to be a fresh (`0`) counter without reading Redis. This trades accuracy for
    /// speed: an uncached counter that is actually over its limit elsewhere is admitted until the
    /// local cache learns its value. Synchronous - never touches Redis - and never mutates the
    /// cache.
    fn check_assuming_fresh_misses(&self, counters: &mut [Counter], delta: u64) -> Authorization {
        let (mut first_limited, missing) = self.annotate_cached(counters, delta);

        for &i in &missing {
            let counter = &mut counters[i];
            if first_limited.is_none() && counter.max_value().checked_sub(delta).is_none() {
                first_limited = Some(Authorization::Limited(
                    counter.limit().name().map(|n| n.to_owned()),
                ));
            }
            counter.set_remaining(counter.max_value());
            counter.set_expires_in(counter.window());
        }

        first_limited.unwrap_or(Authorization::Ok)
    }

    pub async fn new(redis_url: &str) -> Result<Self, RedisError> {
        Self::new_with_options(
            redis_url,
            DEFAULT_BATCH_SIZE,
            Duration::from_secs(DEFAULT_FLUSHING_PERIOD_SEC),
            DEFAULT_MAX_CACHED_COUNTERS,
            Duration::from_millis(DEFAULT_RESPONSE_TIMEOUT_MS),
        )
        .await
    }

    async fn new_with_options(
        redis_url: &str,
        batch_size: usize,
        flushing_period: Duration,
        max_cached_counters: usize,
        response_timeout: Duration,
    ) -> Result<Self, RedisError> {
        let info = ConnectionInfo::from_str(redis_url)?;
        let redis_conn_manager = ConnectionManager::new_with_config(
            redis::Client::open(info)
                .expect("This couldn't fail in the past, yet now it did somehow!"),
            ConnectionManagerConfig::default()
                .set_connection_timeout((response_timeout * 3) + Duration::from_millis(50))
                .set_response_timeout(response_timeout)
                .set_number_of_retries(1),
        )
        .await?;

        let cached_counters = CountersCacheBuilder::new()
            .max_cached_counters(max_cached_counters)
            .build(flushing_period);

        let counters_cache = Arc::new(cached_counters);
        let partitioned = Arc::new(AtomicBool::new(false));
        let async_redis_storage =
            AsyncRedisStorage::new_with_conn_manager(redis_conn_manager.clone()).await?;

        {
            let counters_cache_clone = counters_cache.clone();
            let conn = redis_conn_manager.clone();
            let p = Arc::clone(&partitioned);
            tokio::spawn(async move {
                loop {
                    flush_batcher_and_update_counters(
                        conn.clone(),
                        counters_cache_clone.clone(),
                        p.clone(),
                        batch_size,
                    )
                    .await;
                }
            });
        }

        async_redis_storage
            .load_script(BATCH_UPDATE_COUNTERS)
            .await?;

        Ok(Self {
            cached_counters: counters_cache,
            async_redis_storage,
            reservations: LocalReservationRegistry::new(max_cached_counters as u64),
        })
    }
}

fn flip_partitioned(storage: &AtomicBool, partition: bool) -> bool {
    let we_flipped = storage
        .compare_exchange(!partition, partition, Ordering::Release, Ordering::Acquire)
        .is_ok();
    if we_flipped {
        if partition {
            gauge!("datastore_partitioned").set(1);
            error!("Partition to Redis detected!")
        } else {
            gauge!("datastore_partitioned").set(0);
            warn!("Partition to Redis resolved!");
        }
    }
    we_flipped
}

pub struct CachedRedisStorageBuilder {
    redis_url: String,
    batch_size: usize,
    flushing_period: Duration,
    max_cached_counters: usize,
    response_timeout: Duration,
}

impl CachedRedisStorageBuilder {
    pub fn new(redis_url: &str) -> Self {
        Self {
            redis_url: redis_url.to_string(),
            batch_size: DEFAULT_BATCH_SIZE,
            flushing_period: Duration::from_secs(DEFAULT_FLUSHING_PERIOD_SEC),
            max_cached_counters: DEFAULT_MAX_CACHED_COUNTERS,
            response_timeout: Duration::from_millis(DEFAULT_RESPONSE_TIMEOUT_MS),
        }
    }

    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    pub fn flushing_period(mut self, flushing_period: Duration) -> Self {
        self.flushing_period = flushing_period;
        self
    }

    pub fn max_cached_counters(mut self, max_cached_counters: usize) -> Self {
        self.max_cached_counters = max_cached_counters;
        self
    }

    pub fn response_timeout(mut self, response_timeout: Duration) -> Self {
        self.response_timeout = response_timeout;
        self
    }

    pub async fn build(self) -> Result<CachedRedisStorage, RedisError> {
        CachedRedisStorage::new_with_options(
            &self.redis_url,
            self.batch_size,
            self.flushing_period,
            self.max_cached_counters,
            self.response_timeout,
        )
        .await
    }
}

async fn update_counters<C: ConnectionLike>(
    redis_conn: &mut C,
    counters_and_deltas: HashMap<Counter, Arc<CachedCounterValue>>,
) -> Result<Vec<(Counter, u64, u64, SystemTime)>, (Vec<(Counter, u64, u64, SystemTime)>, StorageErr)>
{
    let redis_script = redis::Script::new(BATCH_UPDATE_COUNTERS);
    let mut script_invocation = redis_script.prepare_invoke();

    let res = if counters_and_deltas.is_empty() {
        Default::default()
    } else {
        let mut res: Vec<(Counter, u64, u64, SystemTime)> =
            Vec::with_capacity(counters_and_deltas.len());

        for (counter, value) in counters_and_deltas {
            let (delta, last_value_from_redis) = value
                .pending_writes_and_value()
                .expect("State machine is wrong!");
            if delta > 0 {
                script_invocation.key(key_for_counter(&counter));
                script_invocation.key(key_for_counters_of_limit(counter.limit()));
                script_invocation.arg(counter.window().as_secs());
                script_invocation.arg(delta);
                // We need to store the counter in the actual order we are sending it to the script
                res.push((counter, last_value_from_redis, delta, UNIX_EPOCH));
            }
        }

        // The redis crate is not working with tables, thus the response will be a Vec of counter values
        let script_res: Vec<i64> = match script_invocation
            .invoke_async(redis_conn)
            .instrument(info_span!("datastore"))
            .await
        {
            Ok(res) => res,
            Err(err) => {
                return Err((res, err.into()));
            }
        };

        // We need to update the values and ttls returned by redis
        let counters_range = 0..res.len();
        let script_res_range = (0..script_res.len()).step_by(2);

        for (i, j) in counters_range.zip(script_res_range) {
            let (_, val, delta, expires_at) = &mut res[i];
            *delta = u64::try_from(script_res[j])
                .unwrap_or(0)
                .saturating_sub(*val); // new value - previous one = remote writes
            *val = u64::try_from(script_res[j]).unwrap_or(0); // update to value to newest
            *expires_at =
                UNIX_EPOCH + Duration::from_millis(u64::try_from(script_res[j + 1]).unwrap_or(0));
        }
        res
    };

    Ok(res)
}

#[allow(unknown_lints, clippy::manual_inspect)]
#[tracing::instrument(skip_all)]
async fn flush_batcher_and_update_counters<C: ConnectionLike>(
    mut redis_conn: C,
    cached_counters: Arc<CountersCache>,
    partitioned: Arc<AtomicBool>,
    batch_size: usize,
) {
    let updated_counters = cached_counters
        .batcher()
        .consume(batch_size, |counters| {
            if !counters.is_empty() && !partitioned.load(Ordering::Acquire) {
                info!("Flushing {} counter updates", counters.len());
            }
            update_counters(&mut redis_conn, counters)
        })
        .await
        .map(|result| {
            flip_partitioned(&partitioned, false);
            result
        })
        .or_else(|(data, err)| {
            if err.is_transient() {
                let new_partition = flip_partitioned(&partitioned, true);
                if new_partition {
                    warn!("Error flushing {}", err);
                }
                let counters = data.len();
                let mut reverted = 0;
                for (counter, old_value, pending_writes, _) in data {
                    if cached_counters
                        .return_pending_writes(&counter, old_value, pending_writes)
                        .is_err()
                    {
                        error!("Couldn't revert writes back to {:?}", &counter);
                    } else {
                        reverted += 1;
                    }
                }
                if new_partition {
                    warn!("Reverted {} of {} counter increments", reverted, counters);
                }
                Ok(Vec::new())
            } else {
                Err(err)
            }
        })
        .expect("Unrecoverable Redis error!");

    for (counter, new_value, remote_deltas, ttl) in updated_counters {
        cached_counters.apply_remote_delta(counter, new_value, remote_deltas, ttl);
    }
}
