//! Where the limiter's state lives, as two traits: [`RateStore`], what a limit asks of its store
//! (its tables created when a config loads, one key's GCRA decision per request), and
//! [`BucketCell`] (table.rs), one bucket of 8 slots read whole with a version and written whole only if
//! that version still holds, which is all the GCRA's CAS loop needs.
//!
//! Two stores implement them: proxy-wasm shared data (every [`SharedData`], here: one key per
//! bucket, Envoy's CAS as the version), shared by the worker VMs of a Wasm build; and the
//! process-memory tables of `atomic_table.rs`, shared by the worker threads of a native build.
//! Both give the same decisions, the same headers, exact across workers.

use super::gcra::{self, Check};
use super::shared_data::{GetError, SetError, SharedData};
use super::table::{Bucket, BucketCell};
use super::{KeyHasher, Limit};

/// The limiter's state, shared by every worker of the proxy.
pub trait RateStore {
    /// Makes sure the tables of `limits` exist and returns the key hasher, whose secret is
    /// `fresh_secret` unless another worker (or an earlier config) made one first. Run when a
    /// worker loads its config; the error says what failed.
    fn prepare(&self, limits: &[&Limit], fresh_secret: [u8; 16])
    -> Result<KeyHasher, &'static str>;
    /// governor's GCRA for one key (its bucket in `limit`'s table and its fingerprint there)
    /// at `now` (ns since the Unix epoch); a store that fails says so in the check
    /// (`store_failed`).
    fn check(&self, limit: &Limit, bucket: u32, fingerprint: u64, now: u64) -> Check;
}

/// Shared-data key of the hash secret.
const SECRET_KEY: &str = "hardening.rl.secret";

/// Shared data as the store: each bucket one key (`<table><n>`), created when a config loads.
impl<S: SharedData + ?Sized> RateStore for S {
    /// Envoy's configuration canary runs first, on the main thread, before any worker serves,
    /// so it creates everything; later VMs find it done. Creating each bucket up front means
    /// no two workers can race to create one (Envoy's `set` ignores the CAS on a key that does
    /// not exist yet).
    fn prepare(
        &self,
        limits: &[&Limit],
        fresh_secret: [u8; 16],
    ) -> Result<KeyHasher, &'static str> {
        let read_secret = || -> Result<Option<[u8; 16]>, &'static str> {
            match self.get(SECRET_KEY) {
                Ok(Some((bytes, _))) => Ok(bytes.try_into().ok()),
                Ok(None) => Ok(None),
                Err(_) => Err("cannot read shared data"),
            }
        };
        let secret = match read_secret()? {
            Some(secret) => secret,
            None => {
                self.set(SECRET_KEY, &fresh_secret, None)
                    .map_err(|_| "cannot write shared data")?;
                read_secret()?.ok_or("the rate-limit secret did not persist")?
            }
        };
        for limit in limits {
            let ready = format!("{}ready", limit.table);
            if matches!(self.get(&ready), Ok(Some(_))) {
                continue;
            }
            for bucket in 0..limit.buckets {
                let key = limit.bucket_key(bucket);
                if matches!(self.get(&key), Ok(None)) {
                    self.set(&key, &[], None)
                        .map_err(|_| "cannot write shared data")?;
                }
            }
            self.set(&ready, b"1", None)
                .map_err(|_| "cannot write shared data")?;
        }
        Ok(KeyHasher::new(secret))
    }

    fn check(&self, limit: &Limit, bucket: u32, fingerprint: u64, now: u64) -> Check {
        let key = limit.bucket_key(bucket);
        let cell = SharedBucket {
            shared: self,
            key: &key,
        };
        gcra::check(limit.quota, &cell, fingerprint, now)
    }
}

/// One bucket in shared data: the key's value is the bucket's encoding (an empty value, as
/// buckets are created, reads as empty slots), its CAS the version.
pub(super) struct SharedBucket<'a, S: SharedData + ?Sized> {
    pub(super) shared: &'a S,
    pub(super) key: &'a str,
}

impl<S: SharedData + ?Sized> BucketCell for SharedBucket<'_, S> {
    fn read(&self) -> Result<Option<(Bucket, u64)>, GetError> {
        Ok(self
            .shared
            .get(self.key)?
            .map(|(bytes, cas)| (Bucket::decode(&bytes), u64::from(cas))))
    }

    fn write(&self, bucket: &Bucket, version: Option<u64>) -> Result<(), SetError> {
        // A version is a CAS this cell read, so it fits; anything else cannot match.
        let cas = match version.map(u32::try_from) {
            None => None,
            Some(Ok(cas)) => Some(cas),
            Some(Err(_)) => return Err(SetError::CasMismatch),
        };
        self.shared.set(self.key, &bucket.encode(), cas)
    }
}
