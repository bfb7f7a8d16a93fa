//! The state table in shared data: a fixed number of buckets, each one shared-data key whose
//! value holds 8 slots of (key fingerprint, GCRA theoretical arrival time). The table never
//! grows with the number of distinct keys.
//!
//! A key hashes to one bucket. In it, the key's own slot is used if it has one; otherwise a
//! free slot (never used, or expired: its TAT is in the past, so its key is back to full
//! capacity, the same as no state); otherwise, all 8 being live, the key shares the least-used
//! live slot. Sharing is fail-safe: two keys on one slot share one budget, so neither gets
//! more than its limit.

use super::shared_data::{GetError, SetError};

pub const SLOTS_PER_BUCKET: usize = 8;
const SLOT_BYTES: usize = 16;
pub const BUCKET_BYTES: usize = SLOTS_PER_BUCKET * SLOT_BYTES;

/// One bucket of a table (8 slots of fingerprint and TAT), read and written whole. `read`
/// returns the bucket and its version, `None` if the bucket does not exist; `write` succeeds
/// only if the bucket is still at `version` (`Err(CasMismatch)` if another worker wrote it
/// since), and with `None` writes unconditionally (a missing bucket being created).
pub trait BucketCell {
    fn read(&self) -> Result<Option<(Bucket, u64)>, GetError>;
    fn write(&self, bucket: &Bucket, version: Option<u64>) -> Result<(), SetError>;
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Slot {
    /// 0: never used.
    pub fingerprint: u64,
    /// Theoretical arrival time, nanoseconds since the Unix epoch.
    pub tat: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bucket {
    pub slots: [Slot; SLOTS_PER_BUCKET],
}

/// Where a key's state is in its bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// The key's own slot.
    Own(usize),
    /// A free slot the key takes over.
    Free(usize),
    /// A live slot of another key, shared.
    Shared(usize),
}

impl Placement {
    pub fn index(self) -> usize {
        match self {
            Self::Own(i) | Self::Free(i) | Self::Shared(i) => i,
        }
    }
}

impl Bucket {
    /// A bucket from its stored bytes; anything short or malformed reads as empty slots (an
    /// empty value is how buckets are created).
    pub fn decode(bytes: &[u8]) -> Self {
        let mut bucket = Self::default();
        for (slot, chunk) in bucket.slots.iter_mut().zip(bytes.chunks_exact(SLOT_BYTES)) {
            let (fp, tat) = chunk.split_at(8);
            slot.fingerprint = u64::from_le_bytes(fp.try_into().unwrap_or_default());
            slot.tat = u64::from_le_bytes(tat.try_into().unwrap_or_default());
        }
        bucket
    }

    pub fn encode(&self) -> [u8; BUCKET_BYTES] {
        let mut out = [0u8; BUCKET_BYTES];
        for (slot, chunk) in self.slots.iter().zip(out.chunks_exact_mut(SLOT_BYTES)) {
            let (fp, tat) = chunk.split_at_mut(8);
            fp.copy_from_slice(&slot.fingerprint.to_le_bytes());
            tat.copy_from_slice(&slot.tat.to_le_bytes());
        }
        out
    }

    pub fn place(&self, fingerprint: u64, now: u64) -> Placement {
        if let Some(i) = self.slots.iter().position(|s| s.fingerprint == fingerprint) {
            return Placement::Own(i);
        }
        let free = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.fingerprint == 0 || s.tat <= now)
            .min_by_key(|(_, s)| (s.fingerprint != 0, s.tat))
            .map(|(i, _)| i);
        if let Some(i) = free {
            return Placement::Free(i);
        }
        let least_used = self
            .slots
            .iter()
            .enumerate()
            .min_by_key(|(_, s)| s.tat)
            .map_or(0, |(i, _)| i);
        Placement::Shared(least_used)
    }

    pub fn slot_mut(&mut self, index: usize) -> Option<&mut Slot> {
        self.slots.get_mut(index)
    }

    pub fn slot(&self, index: usize) -> Option<&Slot> {
        self.slots.get(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_and_tolerates_garbage() {
        let mut bucket = Bucket::default();
        bucket.slots[3] = Slot {
            fingerprint: 7,
            tat: 1_700_000_000_000_000_000,
        };
        assert_eq!(Bucket::decode(&bucket.encode()), bucket);
        assert_eq!(Bucket::decode(&[]), Bucket::default());
        assert_eq!(Bucket::decode(&[1, 2, 3]), Bucket::default());
    }

    #[test]
    fn own_then_free_then_least_used_shared() {
        let now = 1_000;
        let mut bucket = Bucket::default();
        assert_eq!(bucket.place(42, now), Placement::Free(0));
        bucket.slots[0] = Slot {
            fingerprint: 42,
            tat: 2_000,
        };
        assert_eq!(bucket.place(42, now), Placement::Own(0));
        // An expired slot is free; among free slots, never-used ones first, then the oldest.
        bucket.slots[1] = Slot {
            fingerprint: 9,
            tat: 500,
        };
        assert_eq!(bucket.place(43, now), Placement::Free(2));
        for (i, slot) in bucket.slots.iter_mut().enumerate() {
            *slot = Slot {
                fingerprint: 100 + i as u64,
                tat: 5_000 + i as u64,
            };
        }
        bucket.slots[5].tat = 1_001;
        assert_eq!(bucket.place(43, now), Placement::Shared(5));
        bucket.slots[6].tat = 900;
        assert_eq!(bucket.place(43, now), Placement::Free(6));
    }
}
