//! The flows already written for an hour, by `flow_id`: how compaction
//! drops the repeats at-least-once delivery makes. A set of 128-bit hashes
//! rather than of the ids: about 16 bytes a flow instead of ~60, and a
//! collision (which would drop a distinct flow) has odds near 2^-100 for an
//! hour's tens of millions of flows.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};

/// Hashes of the flow ids seen.
#[derive(Debug, Default)]
pub struct FlowIds {
    seen: HashSet<u128>,
}

impl FlowIds {
    /// Adds a flow id's fingerprint; `false` when it was there already (a
    /// repeat).
    pub fn insert(&mut self, id: Fingerprint) -> bool {
        self.seen.insert(id.0)
    }

    pub(crate) fn len(&self) -> usize {
        self.seen.len()
    }
}

/// A flow id's 128-bit hash: computed once per row, for both the pass it
/// falls in and the set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint(u128);

impl Fingerprint {
    /// Two independent 64-bit SipHashes (std's, fixed keys: stable within
    /// a run, which is all the set needs).
    pub fn of(id: &str) -> Fingerprint {
        let mut a = std::hash::DefaultHasher::new();
        id.hash(&mut a);
        let mut b = std::hash::DefaultHasher::new();
        0xa5u8.hash(&mut b);
        id.hash(&mut b);
        Fingerprint((u128::from(a.finish()) << 64) | u128::from(b.finish()))
    }

    /// Which of `ranges` hash ranges the id falls in: how compaction splits
    /// an hour too large for one set into passes.
    pub(crate) fn range(self, ranges: u64) -> u64 {
        // The high half, independent of the set's own hashing of the ids.
        ((self.0 >> 64) as u64) % ranges
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_told_apart_from_new_ids() {
        let mut ids = FlowIds::default();
        assert!(ids.insert(Fingerprint::of("shardId-000000000001:495:0")));
        assert!(ids.insert(Fingerprint::of("shardId-000000000001:495:1")));
        assert!(!ids.insert(Fingerprint::of("shardId-000000000001:495:0")));
        assert_eq!(ids.len(), 2);
        let mut many = FlowIds::default();
        assert!((0..100_000).all(|i| many.insert(Fingerprint::of(&format!("shardId-000000000002:{i}:{}", i % 7)))));
    }
}
