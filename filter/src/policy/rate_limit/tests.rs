//! GCRA decisions checked against governor's own test and redis-cell's table, the shared
//! table's behaviour under contention, failures and floods, and the response fields.

use std::cell::Cell;

use serde_json::json;

use super::shared_data::{GetError, MemorySharedData, SetError, SharedData};
use super::store::SharedBucket;
use super::*;
use crate::config::Config;
use crate::request::Headers;

pub(super) const EPOCH: u64 = 1_767_225_600_000_000_000; // 2026-01-01T00:00:00Z
pub(super) const MS: u64 = 1_000_000;
pub(super) const S: u64 = 1_000 * MS;

/// Bucket `key` of `shared`, as the GCRA reads and writes it.
fn cell<'a, D: SharedData + ?Sized>(shared: &'a D, key: &'a str) -> SharedBucket<'a, D> {
    SharedBucket { shared, key }
}

/// The limits, as a store prepares them.
pub(super) fn refs(limits: &RateLimits) -> Vec<&Limit> {
    limits.limits.iter().map(|l| l.as_ref()).collect()
}

fn quota(limit: u32, window: &str, burst: Option<u32>) -> Quota {
    let mut raw = json!({"limit": limit, "window": window});
    if let Some(b) = burst {
        raw["burst"] = json!(b);
    }
    let limits: RawLimits = serde_json::from_value(raw).expect("raw");
    compile(&limits).expect("compiles").limits[0].quota
}

#[test]
fn governors_two_per_second_test() {
    // governor tests/direct.rs `rejects_too_many`: allowed at 0 and 1 ms, refused at 2 ms,
    // allowed at 1002 and 1003 ms, refused at 1004 ms.
    let shared = MemorySharedData::default();
    let q = quota(2, "1s", None);
    let at = |ms: u64| check(q, &cell(&shared, "b"), 7, EPOCH + ms * MS).allowed;
    assert!(at(0));
    assert!(at(1));
    assert!(!at(2));
    assert!(at(1002));
    assert!(at(1003));
    assert!(!at(1004));
    // The refusal at 2 ms says when: 498 ms later.
    let shared = MemorySharedData::default();
    check(q, &cell(&shared, "b"), 7, EPOCH);
    check(q, &cell(&shared, "b"), 7, EPOCH + MS);
    assert_eq!(
        check(q, &cell(&shared, "b"), 7, EPOCH + 2 * MS).retry_after,
        Duration::from_millis(498)
    );
}

#[test]
fn redis_cells_table() {
    // redis-cell `it_rate_limits`: limit 5 (max_burst 4) at 1 per second; columns: offset,
    // remaining, reset_after, retry_after (refusals), limited. redis-cell's burst of 4 extra
    // is governor's burst of 5.
    let shared = MemorySharedData::default();
    let q = quota(1, "1s", Some(5));
    let rows: &[(u64, u32, u64, Option<u64>, bool)] = &[
        (0, 4, 1000, None, false),
        (0, 3, 2000, None, false),
        (0, 2, 3000, None, false),
        (0, 1, 4000, None, false),
        (0, 0, 5000, None, false),
        (0, 0, 5000, Some(1000), true),
        (3000, 2, 3000, None, false),
        (3100, 1, 3900, None, false),
        (4000, 1, 4000, None, false),
        (8000, 4, 1000, None, false),
        (9500, 4, 1000, None, false),
    ];
    for (i, (offset_ms, remaining, reset_ms, retry_ms, limited)) in rows.iter().enumerate() {
        let result = check(q, &cell(&shared, "b"), 7, EPOCH + offset_ms * MS);
        assert_eq!(result.allowed, !limited, "row {i}");
        assert_eq!(result.remaining, *remaining, "row {i}");
        assert_eq!(
            result.reset_after,
            Duration::from_millis(*reset_ms),
            "row {i}"
        );
        if let Some(retry) = retry_ms {
            assert_eq!(result.retry_after, Duration::from_millis(*retry), "row {i}");
        }
    }
}

#[test]
fn exactly_burst_then_one_per_interval() {
    let shared = MemorySharedData::default();
    let q = quota(100, "15m", None); // one every 9 s, 100 at once
    let allowed = (0..150)
        .filter(|_| check(q, &cell(&shared, "b"), 1, EPOCH).allowed)
        .count();
    assert_eq!(allowed, 100);
    assert!(!check(q, &cell(&shared, "b"), 1, EPOCH + 8_999 * MS).allowed);
    assert!(check(q, &cell(&shared, "b"), 1, EPOCH + 9 * S).allowed);
    assert!(!check(q, &cell(&shared, "b"), 1, EPOCH + 9 * S).allowed);
}

#[test]
fn a_clock_stepping_back_blocks_a_key_for_one_window_at_most() {
    let shared = MemorySharedData::default();
    let q = quota(10, "1m", None);
    for _ in 0..10 {
        assert!(check(q, &cell(&shared, "b"), 1, EPOCH + 3600 * S).allowed);
    }
    // The wall clock steps back an hour: the stored state is an hour ahead.
    let back = check(q, &cell(&shared, "b"), 1, EPOCH);
    assert!(!back.allowed);
    assert!(
        back.retry_after <= Duration::from_secs(6),
        "{:?}",
        back.retry_after
    );
    assert!(check(q, &cell(&shared, "b"), 1, EPOCH + 6 * S).allowed);
}

/// Shared data that lets another writer in between one read and the following write.
struct Interfering<'a> {
    inner: &'a MemorySharedData,
    interfere: Cell<u32>,
    /// What the other writer does: consume a request of key 1, or rewrite the same bytes.
    consume: bool,
}

impl SharedData for Interfering<'_> {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, GetError> {
        let value = self.inner.get(key)?;
        if self.interfere.get() > 0 {
            self.interfere.set(self.interfere.get() - 1);
            if self.consume {
                assert!(check(quota(3, "1m", None), &cell(self.inner, key), 1, EPOCH).allowed);
            } else if let Some((bytes, _)) = &value {
                self.inner.set(key, bytes, None).expect("rewrite");
            }
        }
        Ok(value)
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError> {
        self.inner.set(key, value, cas)
    }
}

#[test]
fn a_lost_cas_race_is_retried_and_nothing_is_lost() {
    let memory = MemorySharedData::default();
    memory.set("b", &[], None).expect("bucket");
    let racing = Interfering {
        inner: &memory,
        interfere: Cell::new(1),
        consume: true,
    };
    let q = quota(3, "1m", None);
    let first = check(q, &cell(&racing, "b"), 1, EPOCH);
    assert!(first.allowed);
    assert_eq!(first.conflicts, 1);
    assert_eq!(first.remaining, 1, "both requests counted");
    assert!(check(q, &cell(&memory, "b"), 1, EPOCH).allowed);
    assert!(
        !check(q, &cell(&memory, "b"), 1, EPOCH).allowed,
        "exactly 3"
    );
}

#[test]
fn endless_races_or_a_failing_store_are_reported() {
    let memory = MemorySharedData::default();
    memory.set("b", &[], None).expect("bucket");
    let racing = Interfering {
        inner: &memory,
        interfere: Cell::new(100),
        consume: false,
    };
    let result = check(quota(1000, "1m", None), &cell(&racing, "b"), 1, EPOCH);
    assert!(result.store_failed);
    assert_eq!(result.conflicts, MAX_CAS_RETRIES + 1);

    struct Broken;
    impl SharedData for Broken {
        fn get(&self, _: &str) -> Result<Option<(Vec<u8>, u32)>, GetError> {
            Err(GetError)
        }
        fn set(&self, _: &str, _: &[u8], _: Option<u32>) -> Result<(), SetError> {
            Err(SetError::Failed)
        }
    }
    assert!(check(quota(10, "1m", None), &cell(&Broken, "b"), 1, EPOCH).store_failed);
}

// ---- the policy: keys, table, responses ----

pub(super) fn limits(section: serde_json::Value) -> (RateLimits, MemorySharedData, KeyHasher) {
    let config = Config::from_bytes(
        json!({"defaults": {"rate_limit": section}})
            .to_string()
            .as_bytes(),
    )
    .expect("valid");
    let limits = config.defaults.rate_limit.clone().expect("on");
    let shared = MemorySharedData::default();
    let hasher = shared.prepare(&refs(&limits), [7; 16]).expect("prepared");
    (limits, shared, hasher)
}

pub(super) fn run(
    limits: &RateLimits,
    store: &dyn RateStore,
    hasher: &KeyHasher,
    now: u64,
    client: &str,
    headers: &[(&str, &str)],
) -> Outcome {
    let mut pairs: Vec<(&[u8], &[u8])> = vec![
        (b":method", b"GET"),
        (b":path", b"/users"),
        (b"x-request-id", b"rid"),
    ];
    pairs.extend(headers.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())));
    let headers = Headers::new(pairs);
    let inputs = Inputs {
        now,
        client: parse_ip(client),
        route: "users",
        store,
        hasher,
    };
    limits.check(&RequestHead::from_headers(&headers), &inputs)
}

#[test]
fn the_429_and_the_ratelimit_fields() {
    let (limits, shared, hasher) = limits(json!({"name": "api", "limit": 2, "window": "1m"}));
    let first = run(&limits, &shared, &hasher, EPOCH, "192.0.2.1:1000", &[]);
    assert!(first.refusal.is_none());
    assert_eq!(
        first.headers,
        Some(RateHeaders {
            policy: "\"api\";q=2;w=60".into(),
            state: "\"api\";r=1;t=30".into(),
            legacy: None
        })
    );
    run(&limits, &shared, &hasher, EPOCH, "192.0.2.1:1000", &[]);
    let third = run(
        &limits,
        &shared,
        &hasher,
        EPOCH + 10 * S,
        "192.0.2.1:1000",
        &[],
    );
    let refusal = third.refusal.expect("429");
    assert_eq!(refusal.status, 429);
    assert_eq!(refusal.header("retry-after"), Some("20"));
    assert_eq!(
        refusal.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(
        String::from_utf8(refusal.body).expect("utf8"),
        r#"{"type":"about:blank","title":"Too Many Requests","status":429,"detail":"Too many requests, please try again later.","code":"rate_limited","request_id":"rid","violated_policies":["api"]}"#
    );
    assert_eq!(third.headers.expect("headers").state, "\"api\";r=0;t=20");
    // Another client has its own budget.
    assert!(
        run(
            &limits,
            &shared,
            &hasher,
            EPOCH + 10 * S,
            "192.0.2.2:1000",
            &[]
        )
        .refusal
        .is_none()
    );
}

#[test]
fn dry_run_counts_but_never_refuses() {
    let (limits, shared, hasher) =
        limits(json!({"limit": 1, "window": "1m", "mode": "dry_run", "legacy_headers": true}));
    run(&limits, &shared, &hasher, EPOCH, "192.0.2.1:1", &[]);
    let second = run(&limits, &shared, &hasher, EPOCH, "192.0.2.1:1", &[]);
    assert!(second.refusal.is_none());
    assert_eq!(
        second.events.iter().map(|(_, e)| *e).collect::<Vec<_>>(),
        [Event::DryRunLimited]
    );
    let headers = second.headers.expect("headers");
    assert_eq!(headers.state, "\"default\";r=0;t=60");
    assert_eq!(headers.legacy, Some(("1".into(), "0".into(), "60".into())));
}

#[test]
fn header_keys_share_or_refuse_when_missing() {
    let (shared_limits, shared, hasher) =
        limits(json!({"limit": 1, "window": "1m", "key": "header:X-Api-Key"}));
    assert!(
        run(&shared_limits, &shared, &hasher, EPOCH, "192.0.2.1:1", &[])
            .refusal
            .is_none()
    );
    // A second keyless request, from another client, shares the keyless bucket.
    assert_eq!(
        run(&shared_limits, &shared, &hasher, EPOCH, "192.0.2.9:1", &[])
            .refusal
            .map(|r| r.status),
        Some(429)
    );
    assert!(
        run(
            &shared_limits,
            &shared,
            &hasher,
            EPOCH,
            "192.0.2.9:1",
            &[("x-api-key", "k1")]
        )
        .refusal
        .is_none()
    );

    let (reject, shared, hasher) = limits(
        json!({"limit": 1, "window": "1m", "key": "header:x-api-key", "missing_key": "reject"}),
    );
    let refusal = run(&reject, &shared, &hasher, EPOCH, "192.0.2.1:1", &[])
        .refusal
        .expect("400");
    assert_eq!(refusal.status, 400);
    assert!(
        String::from_utf8_lossy(&refusal.body)
            .contains("\"detail\":\"This endpoint requires the x-api-key header.\"")
    );
}

#[test]
fn several_limits_all_must_pass() {
    let (limits, shared, hasher) = limits(json!([
        {"name": "burst", "limit": 2, "window": "1s"},
        {"name": "hourly", "limit": 3, "window": "1h"}
    ]));
    let mut statuses = Vec::new();
    for second in 0..5 {
        let outcome = run(
            &limits,
            &shared,
            &hasher,
            EPOCH + second * 2 * S,
            "192.0.2.1:1",
            &[],
        );
        statuses.push(outcome.refusal.map_or(200, |r| r.status));
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    let outcome = run(
        &limits,
        &shared,
        &hasher,
        EPOCH + 20 * S,
        "192.0.2.1:1",
        &[],
    );
    let headers = outcome.headers.expect("headers");
    assert_eq!(headers.policy, "\"burst\";q=2;w=1, \"hourly\";q=3;w=3600");
    assert!(
        headers
            .state
            .starts_with("\"burst\";r=1;t=1, \"hourly\";r=0;t="),
        "{}",
        headers.state
    );
}

#[test]
fn a_flood_of_keys_never_grows_the_table_and_a_hot_key_keeps_its_limit() {
    let (limits, shared, hasher) = limits(json!({"limit": 5, "window": "1m", "slots": 64}));
    let keys_before = shared.len();
    assert_eq!(
        keys_before,
        8 + 2,
        "8 buckets, the ready marker, the secret"
    );
    let bytes_after_warmup = |shared: &MemorySharedData| shared.bytes();
    // The hot client uses its budget first.
    for _ in 0..5 {
        assert!(
            run(&limits, &shared, &hasher, EPOCH, "198.51.100.7:1", &[])
                .refusal
                .is_none()
        );
    }
    for i in 0..10_000u32 {
        let client = format!("10.{}.{}.{}:1", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        run(&limits, &shared, &hasher, EPOCH + S, &client, &[]);
    }
    assert_eq!(shared.len(), keys_before);
    assert!(bytes_after_warmup(&shared) <= 8 * (BUCKET_BYTES + 40) + 64);
    // Still limited: its slot is its own, or a shared one that is at least as used.
    assert_eq!(
        run(&limits, &shared, &hasher, EPOCH + S, "198.51.100.7:1", &[])
            .refusal
            .map(|r| r.status),
        Some(429)
    );
}

#[test]
fn prepare_is_idempotent_and_keeps_the_secret() {
    let (limits, shared, _) = limits(json!({"limit": 5, "window": "1m", "slots": 16}));
    let before = shared.bytes();
    let again = shared.prepare(&refs(&limits), [9; 16]).expect("prepared");
    assert_eq!(shared.bytes(), before);
    assert_eq!(again.secret, [7; 16]);
}

#[test]
fn config_refusals() {
    let refusal = |section: serde_json::Value| {
        Config::from_bytes(
            json!({"defaults": {"rate_limit": section}})
                .to_string()
                .as_bytes(),
        )
        .expect_err("refused")
        .to_string()
    };
    assert_eq!(
        refusal(json!({"window": "1m"})),
        "invalid configuration at `defaults.rate_limit.limit`: required: requests allowed per window"
    );
    assert_eq!(
        refusal(json!({"limit": 10, "window": "15 minutes"})),
        "invalid configuration at `defaults.rate_limit.window`: `15 minutes`: the unit must be ms, s, m, h or d"
    );
    assert_eq!(
        refusal(json!({"limit": 10, "window": "1m", "key": "header:x api"})),
        "invalid configuration at `defaults.rate_limit.key`: `x api` is not a header name"
    );
    assert_eq!(
        refusal(json!({"limit": 10, "window": "1m", "key": ["client_ip", "cookie"]})),
        "invalid configuration at `defaults.rate_limit.key[1]`: `cookie`: expected client_ip, header:<name>, path or route"
    );
    assert_eq!(
        refusal(json!({"limit": 10, "window": "1m", "missing_key": "reject"})),
        "invalid configuration at `defaults.rate_limit.missing_key`: only applies to header: keys"
    );
    assert_eq!(
        refusal(json!([{"limit": 10, "window": "1m"}, {"limit": 20, "window": "1h"}])),
        "invalid configuration at `defaults.rate_limit[0].name`: name each limit when there are several"
    );
    assert_eq!(
        refusal(
            json!([{"name": "a", "limit": 10, "window": "1m"}, {"name": "a", "limit": 20, "window": "1h"}])
        ),
        "invalid configuration at `defaults.rate_limit[1].name`: `a` is used twice"
    );
    assert_eq!(
        refusal(json!({"name": "my limit", "limit": 10, "window": "1m"})),
        "invalid configuration at `defaults.rate_limit.name`: `my limit`: names are 1-64 letters, digits, `_`, `-` or `.`"
    );
    assert_eq!(
        refusal(json!({"limit": 10, "window": "1m", "ipv6_prefix": 0})),
        "invalid configuration at `defaults.rate_limit.ipv6_prefix`: 0: a prefix length from 1 to 128"
    );
    assert_eq!(
        refusal(json!({"limit": 10, "window": "1m", "slots": 4})),
        "invalid configuration at `defaults.rate_limit.slots`: 4: from 8 to 16777216"
    );
    assert_eq!(
        refusal(json!({"limit": 10, "window": "1m", "burst": 0})),
        "invalid configuration at `defaults.rate_limit.burst`: must be at least 1"
    );
    assert_eq!(
        refusal(json!([])),
        "invalid configuration at `defaults.rate_limit`: no limits: give one (limit, window) or turn rate limiting off with false"
    );
}
