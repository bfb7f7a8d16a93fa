//! The process-memory store: its seqlock (whole reads, versioned writes), the same decisions
//! as shared data, exact counts under threads racing for one key or for many, and the registry
//! that carries tables over a reload and the secret over every config.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::atomic_table::AtomicTable;
use super::shared_data::{MemorySharedData, SetError};
use super::tests::{EPOCH, MS, S, limits, refs, run};
use super::*;

/// One compiled limit.
fn limit(raw: serde_json::Value) -> Arc<Limit> {
    let raw: RawLimits = serde_json::from_value(raw).expect("raw");
    Arc::clone(&compile(&raw).expect("compiles").limits[0])
}

/// A store for one config with its own registry, prepared for `limit`.
fn prepared(limit: &Limit) -> AtomicTables {
    let store = AtomicTables::new(Arc::new(TableRegistry::new()));
    store.prepare(&[limit], [7; 16]).expect("prepared");
    store
}

fn bucket_of(fingerprint: u64, tat: u64) -> Bucket {
    let mut bucket = Bucket::default();
    bucket.slots[2] = Slot { fingerprint, tat };
    bucket
}

#[test]
fn atomic_tables_are_send_and_sync() {
    fn shared_by_threads<T: Send + Sync>() {}
    shared_by_threads::<AtomicTables>();
    shared_by_threads::<TableRegistry>();
}

#[test]
fn a_bucket_reads_back_what_was_written() {
    let table = AtomicTable::new(2);
    let cell = table.cell(1).expect("bucket 1");
    assert_eq!(cell.read(), Ok(Some((Bucket::default(), 0))));
    let bucket = bucket_of(42, EPOCH);
    cell.write(&bucket, Some(0)).expect("written");
    assert_eq!(cell.read(), Ok(Some((bucket, 2))));
    assert_eq!(
        table.cell(0).expect("bucket 0").read(),
        Ok(Some((Bucket::default(), 0)))
    );
    assert!(table.cell(2).is_none());
}

#[test]
fn a_stale_version_is_a_cas_mismatch() {
    let table = AtomicTable::new(1);
    let cell = table.cell(0).expect("bucket");
    let first = bucket_of(1, EPOCH);
    cell.write(&first, Some(0)).expect("written");
    // Another worker read version 0 too: its write comes too late.
    assert_eq!(
        cell.write(&bucket_of(2, EPOCH), Some(0)),
        Err(SetError::CasMismatch)
    );
    // An odd version is never read: it cannot match.
    assert_eq!(
        cell.write(&bucket_of(3, EPOCH), Some(1)),
        Err(SetError::CasMismatch)
    );
    assert_eq!(cell.read(), Ok(Some((first, 2))));
}

#[test]
fn a_write_without_a_version_is_unconditional() {
    let table = AtomicTable::new(1);
    let cell = table.cell(0).expect("bucket");
    cell.write(&bucket_of(1, EPOCH), Some(0)).expect("written");
    let second = bucket_of(2, EPOCH);
    cell.write(&second, None).expect("written");
    assert_eq!(cell.read(), Ok(Some((second, 4))));
}

#[cfg(not(target_family = "wasm"))]
#[test]
fn readers_see_whole_buckets_and_every_write_counts_once() {
    use std::sync::atomic::{AtomicU64, Ordering};

    let table = AtomicTable::new(1);
    let cell = table.cell(0).expect("bucket");
    let written = AtomicU64::new(0);
    // Writers fill every word with one value, from the version they read, as the GCRA does;
    // a reader must see one writer's bucket whole.
    std::thread::scope(|threads| {
        for writer in 1..=2u64 {
            let written = &written;
            threads.spawn(move || {
                for n in 0..5_000u64 {
                    let Ok(Some((_, version))) = cell.read() else {
                        continue;
                    };
                    let value = (writer << 32) | n;
                    let mut bucket = Bucket::default();
                    bucket.slots.fill(Slot {
                        fingerprint: value,
                        tat: value,
                    });
                    if cell.write(&bucket, Some(version)).is_ok() {
                        written.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        for _ in 0..2 {
            threads.spawn(|| {
                let mut whole = 0;
                for _ in 0..5_000 {
                    // A reader may give up while writers keep the bucket busy (GetError).
                    let Ok(Some((bucket, version))) = cell.read() else {
                        continue;
                    };
                    assert!(version.is_multiple_of(2));
                    let first = bucket.slots[0];
                    assert_eq!(first.fingerprint, first.tat);
                    assert!(bucket.slots.iter().all(|s| *s == first), "{bucket:?}");
                    whole += 1;
                }
                assert!(whole > 0);
            });
        }
    });
    // Each write that succeeded moved the version by 2, and no other did.
    let (_, version) = cell.read().expect("read").expect("there");
    assert_eq!(version, 2 * written.load(Ordering::Relaxed));
}

#[test]
fn both_stores_decide_the_same() {
    let limit = limit(json!({"limit": 5, "window": "1m", "burst": 3, "slots": 8}));
    let shared = MemorySharedData::default();
    shared.prepare(&[&limit], [7; 16]).expect("prepared");
    let atomic = prepared(&limit);
    // Two keys in one bucket: bursts, refusals, recovery, a clock stepping back.
    let steps: &[(u64, u64)] = &[
        (0, 1),
        (0, 1),
        (0, 3),
        (0, 1),
        (0, 1),
        (5 * S, 1),
        (11 * S, 1),
        (11 * S, 3),
        (12 * S, 1),
        (12 * S + 500 * MS, 1),
        (90 * S, 1),
        (10 * S, 1),
        (10 * S, 3),
    ];
    for (i, (offset, fingerprint)) in steps.iter().enumerate() {
        let now = EPOCH + offset;
        let over_shared = shared.check(&limit, 0, *fingerprint, now);
        let over_atomics = atomic.check(&limit, 0, *fingerprint, now);
        assert!(!over_shared.store_failed, "step {i}");
        assert_eq!(over_atomics, over_shared, "step {i}");
    }
}

#[test]
fn both_stores_answer_the_same_requests_the_same() {
    let section = json!([
        {"name": "burst", "limit": 2, "window": "1s", "legacy_headers": true},
        {"name": "hourly", "limit": 4, "window": "1h", "slots": 8}
    ]);
    let (limits, shared, hasher) = limits(section);
    let atomic = AtomicTables::new(Arc::new(TableRegistry::new()));
    let atomic_hasher = atomic.prepare(&refs(&limits), [7; 16]).expect("prepared");
    let mut refused = Vec::new();
    for step in 0..32u64 {
        let now = EPOCH + step * 100 * MS;
        let client = ["192.0.2.1:1", "2001:db8::1"][(step % 2) as usize];
        let a = run(&limits, &shared, &hasher, now, client, &[]);
        let b = run(&limits, &atomic, &atomic_hasher, now, client, &[]);
        assert_eq!(a.refusal, b.refusal, "step {step}");
        assert_eq!(a.headers, b.headers, "step {step}");
        let events = |o: &Outcome| o.events.iter().map(|(_, e)| *e).collect::<Vec<_>>();
        assert_eq!(events(&a), events(&b), "step {step}");
        refused.extend(
            a.events
                .iter()
                .filter(|(_, e)| *e == Event::Limited)
                .map(|(l, _)| l.name.clone()),
        );
    }
    // Each client: 4 allowed (the hourly limit), 12 refused, by one limit or the other.
    assert_eq!(refused.len(), 24);
    assert!(refused.contains(&"burst".to_string()) && refused.contains(&"hourly".to_string()));
}

#[cfg(not(target_family = "wasm"))]
#[test]
fn threads_racing_for_one_key_get_exactly_its_burst() {
    let limit = limit(json!({"limit": 1000, "window": "1m", "burst": 1000}));
    let store = prepared(&limit);
    let allowed: usize = std::thread::scope(|threads| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                threads.spawn(|| {
                    (0..2_000)
                        .map(|_| store.check(&limit, 3, 0x5eed, EPOCH))
                        .filter(|c| c.allowed && !c.store_failed)
                        .count()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("worker")).sum()
    });
    assert_eq!(allowed, 1000);
    assert!(!store.check(&limit, 3, 0x5eed, EPOCH).allowed);
}

#[cfg(not(target_family = "wasm"))]
#[test]
fn threads_racing_over_many_buckets_keep_each_key_exact() {
    use std::sync::atomic::{AtomicU32, Ordering};

    let limit = limit(json!({"limit": 50, "window": "1m", "slots": 512}));
    let store = prepared(&limit);
    // 256 keys over the 64 buckets, 4 to a bucket: each has a slot of its own.
    let keys = 256u32;
    let counts: Vec<AtomicU32> = (0..keys).map(|_| AtomicU32::new(0)).collect();
    std::thread::scope(|threads| {
        for worker in 0..4u32 {
            let (store, limit, counts) = (&store, &limit, &counts);
            threads.spawn(move || {
                for round in 0..80u32 {
                    for i in 0..keys {
                        let key = (i + worker * 64 + round) % keys;
                        let check = store.check(limit, key % 64, u64::from(key) + 1, EPOCH);
                        if check.allowed && !check.store_failed {
                            counts[key as usize].fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    let counts: Vec<u32> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    assert!(counts.iter().all(|&c| c == 50), "{counts:?}");
}

#[test]
fn a_reloaded_config_finds_its_table_until_none_holds_it() {
    let limit = limit(json!({"limit": 10, "window": "1m", "slots": 16}));
    let registry = Arc::new(TableRegistry::new());
    let first = AtomicTables::new(Arc::clone(&registry));
    let second = AtomicTables::new(Arc::clone(&registry));
    let first_hasher = first.prepare(&[&limit], [1; 16]).expect("prepared");
    let second_hasher = second.prepare(&[&limit], [2; 16]).expect("prepared");
    assert_eq!(first_hasher.secret, [1; 16]);
    assert_eq!(second_hasher.secret, [1; 16], "the first secret offered");
    assert_eq!(registry.live_tables(), 1);
    // A request counted through one config is seen through the other.
    assert_eq!(first.check(&limit, 1, 9, EPOCH).remaining, 9);
    assert_eq!(second.check(&limit, 1, 9, EPOCH).remaining, 8);
    drop((first, second));
    assert_eq!(registry.live_tables(), 0);
    let third = AtomicTables::new(Arc::clone(&registry));
    let third_hasher = third.prepare(&[&limit], [3; 16]).expect("prepared");
    assert_eq!(third_hasher.secret, [1; 16], "the process keeps its secret");
    let fresh = third.check(&limit, 1, 9, EPOCH);
    assert_eq!(fresh.remaining, 9, "a fresh table");
    assert_eq!(fresh.reset_after, Duration::from_secs(6));
}

#[test]
fn a_table_out_of_reach_fails_the_check() {
    let limit = limit(json!({"limit": 10, "window": "1m", "slots": 16}));
    let store = AtomicTables::new(Arc::new(TableRegistry::new()));
    assert!(
        store.check(&limit, 0, 9, EPOCH).store_failed,
        "not prepared"
    );
    store.prepare(&[&limit], [7; 16]).expect("prepared");
    assert!(!store.check(&limit, 1, 9, EPOCH).store_failed);
    assert!(store.check(&limit, 2, 9, EPOCH).store_failed, "no bucket 2");
    let other = self::limit(json!({"limit": 20, "window": "1m"}));
    assert!(
        store.check(&other, 0, 9, EPOCH).store_failed,
        "not its table"
    );
    assert!(
        store.prepare(&[&limit], [7; 16]).is_ok(),
        "the same config again"
    );
    assert!(store.prepare(&[&limit, &other], [7; 16]).is_err());
}
