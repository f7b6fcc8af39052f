//! A per-container cache in front of the ownership store: bounded, with a
//! TTL, holding the latest marks of each address so that any flow time they
//! cover resolves without a store call.
//!
//! Ownership changes reach the table within about a minute; flow logs
//! arrive minutes after the flow. A cached head fetched at `f` is trusted
//! for a flow starting at `t` only while `t + freshness <= f` (changes up to
//! `t` had landed when it was fetched) and the entry is younger than `ttl`.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::{Arc, Mutex};

use crate::FastHashMap;

use super::evidence::{known_at, known_free_at, Sighting};
use super::owner::Owner;
use super::store::{OwnershipStore, StoreResult};
use super::time::UnixTime;
use super::timeline::{AddressKey, Located, Timeline};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// Most addresses kept.
    pub capacity: usize,
    /// Seconds an entry is used at all.
    pub ttl_seconds: i64,
    /// Seconds a flow must precede the fetch for the entry to answer it.
    pub freshness_seconds: i64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig { capacity: 200_000, ttl_seconds: 300, freshness_seconds: 120 }
    }
}

/// Counters since the cache was made.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    /// Store requests made during lookups, as the store counts them
    /// ([`OwnershipStore::calls`]; requests others make on the same store
    /// meanwhile are counted too).
    pub store_calls: u64,
    /// Cached heads read again because they could not vouch for an answer
    /// (what the knowledge horizon costs in reads).
    pub rereads: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    timeline: Arc<Timeline>,
    complete: bool,
    /// The store's sightings and this container's heartbeats since.
    seen: Vec<Sighting>,
    /// The reconcile horizon read before the entry was: the marks of every
    /// reconcile up to it are in `timeline`.
    horizon: Option<UnixTime>,
    fetched_at: UnixTime,
}

/// Heartbeats are stored once per address, ENI and this many seconds: the
/// store's evidence lags a container's by less than this.
pub const HEARTBEAT_SECONDS: i64 = 60;

/// Where a query's owner was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// Unowned at that time (or unknown to the store's history too).
    Free,
    /// An open mark of a key's timeline.
    Mark { key: u32, mark: u32 },
    /// An owner the store's history gave.
    History(u32),
}

/// What [`OwnerCache::lookup`] found: each query's owner, borrowed from
/// shared timelines, and whether the table's knowledge reaches the query's
/// time ([`known_at`], [`known_free_at`]).
#[derive(Debug)]
pub struct Owners {
    timelines: Vec<Option<Arc<Timeline>>>,
    found: Vec<Found>,
    known: Vec<bool>,
    owned: Vec<Owner>,
    /// Heartbeats worth storing: the first of each address, ENI and
    /// [`HEARTBEAT_SECONDS`] bucket this container has seen.
    pub evidence: Vec<(AddressKey, Sighting)>,
}

impl Owners {
    /// The owner of query `i`; `None` when the address was unowned then.
    pub fn get(&self, i: usize) -> Option<&Owner> {
        match self.found[i] {
            Found::Free => None,
            Found::Mark { key, mark } => {
                let timeline = self.timelines[key as usize].as_deref().expect("a found mark's timeline is kept");
                let owner = timeline.marks()[mark as usize].owner();
                Some(owner.expect("found marks are opens and relabels"))
            }
            Found::History(i) => Some(&self.owned[i as usize]),
        }
    }

    /// Whether query `i`'s answer is vouched for at the query's time: its
    /// owner known to hold the address then ([`known_at`]), or, for no
    /// owner, nobody known to ([`known_free_at`]). An answer from the
    /// store's history counts as known: later marks exist, the time is long
    /// past.
    pub fn known(&self, i: usize) -> bool {
        self.known[i]
    }

    /// Every query's owner, in order, with whether it is known: one pass
    /// that reads the timelines while nothing else competes for the cache,
    /// so that later per-query reads are one load each.
    pub fn all(&self) -> Vec<(Option<&Owner>, bool)> {
        (0..self.found.len()).map(|i| (self.get(i), self.known[i])).collect()
    }

    pub fn len(&self) -> usize {
        self.found.len()
    }

    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }
}

#[derive(Debug, Default)]
pub struct OwnerCache {
    config: CacheConfig,
    entries: Mutex<FastHashMap<AddressKey, Entry>>,
    stats: Mutex<CacheStats>,
}

impl OwnerCache {
    pub fn new(config: CacheConfig) -> Self {
        OwnerCache { config, entries: Mutex::default(), stats: Mutex::default() }
    }

    pub fn stats(&self) -> CacheStats {
        *self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn usable(&self, e: &Entry, at: UnixTime, now: UnixTime) -> bool {
        now.0 - e.fetched_at.0 <= self.config.ttl_seconds && at.0 + self.config.freshness_seconds <= e.fetched_at.0
    }

    /// The owner of each query: an index into `keys` and a time. `now` is
    /// the wall clock (passed in so tests control it). Each key is looked
    /// up once however many queries name it; owners are borrowed from the
    /// cached timelines, never copied.
    ///
    /// `heartbeats` (a key and a sighting) join the evidence before
    /// anything is decided, so a batch's flows confirm each other; nobody is
    /// believed up to `horizon` ([`known_free_at`]), read before this call
    /// (an entry read earlier is held to the horizon of its time). A cached entry that
    /// cannot vouch for its answer at a query's time is read again when
    /// that could help: the store may have learned more since.
    pub async fn lookup<S: OwnershipStore>(
        &self,
        store: &S,
        keys: &[AddressKey],
        queries: &[(u32, UnixTime)],
        heartbeats: &[(u32, Sighting)],
        horizon: Option<UnixTime>,
        now: UnixTime,
    ) -> StoreResult<Owners> {
        let calls_before = store.calls();
        let mut latest: Vec<Option<UnixTime>> = vec![None; keys.len()];
        for &(k, at) in queries {
            let l = &mut latest[k as usize];
            *l = Some(l.map_or(at, |l| l.max(at)));
        }
        let mut beats: Vec<Vec<&Sighting>> = vec![Vec::new(); keys.len()];
        for (k, s) in heartbeats {
            beats[*k as usize].push(s);
        }
        // Per key: its timeline, completeness and evidence (the batch's
        // heartbeats not yet merged), and whether it was read just now.
        let mut slots: Vec<Option<Slot>> = vec![None; keys.len()];
        let mut missing: Vec<usize> = Vec::new();
        {
            let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            for (k, key) in keys.iter().enumerate() {
                let Some(at) = latest[k] else { continue };
                match entries.get(key).filter(|e| self.usable(e, at, now)) {
                    Some(e) => slots[k] = Some(Slot::cached(e)),
                    None => missing.push(k),
                }
            }
        }
        // The batch's heartbeats join the evidence (the first of each bucket
        // is worth storing): cached keys' now, the others' once read.
        let mut evidence = Vec::new();
        for (k, slot) in slots.iter_mut().enumerate() {
            if let Some(slot) = slot {
                absorb(&mut slot.seen, &beats[k], &keys[k], &mut evidence);
            }
        }
        // A cached entry that cannot vouch for an owner it gives is read
        // again: the store may have learned more since.
        let mut doubtful = vec![false; keys.len()];
        for &(k, at) in queries {
            let k = k as usize;
            let Some(slot) = &slots[k] else { continue };
            if doubtful[k] {
                continue;
            }
            let located = slot.timeline.locate(at, slot.complete);
            // Nobody past the horizon stays unknown whatever is read.
            let could_help = !matches!(located, Located::Free) || horizon.is_some_and(|h| h >= at);
            if could_help && !vouched(&slot.timeline, located, &slot.seen, at, slot.horizon) {
                doubtful[k] = true;
                missing.push(k);
            }
        }
        if !missing.is_empty() {
            // One call: the store splits it into batches and may run them
            // concurrently.
            let asked: Vec<AddressKey> = missing.iter().map(|&k| keys[k].clone()).collect();
            let heads = store.heads(&asked).await?;
            for (&k, head) in missing.iter().zip(heads) {
                // Evidence this container had (the batch's heartbeats
                // included) and the store may not have yet.
                let mut seen = head.seen;
                match &slots[k] {
                    Some(old) => {
                        for s in &old.seen {
                            Sighting::merge(&mut seen, s.clone());
                        }
                    }
                    None => absorb(&mut seen, &beats[k], &keys[k], &mut evidence),
                }
                slots[k] = Some(Slot {
                    timeline: Arc::new(head.timeline),
                    complete: head.complete,
                    seen,
                    horizon,
                    fetched: true,
                });
            }
        }
        {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            for (k, slot) in slots.iter().enumerate() {
                let Some(slot) = slot else { continue };
                if slot.fetched {
                    let entry = Entry {
                        timeline: slot.timeline.clone(),
                        complete: slot.complete,
                        seen: slot.seen.clone(),
                        horizon,
                        fetched_at: now,
                    };
                    entries.insert(keys[k].clone(), entry);
                } else if beats[k].is_empty() {
                    // Nothing new to keep.
                } else if let Some(e) = entries.get_mut(&keys[k]) {
                    e.seen.clone_from(&slot.seen);
                }
            }
            make_room(&mut entries, 0, self.config.capacity, self.config.ttl_seconds, now, |e| e.fetched_at);
        }
        let mut found = Vec::with_capacity(queries.len());
        let mut known = Vec::with_capacity(queries.len());
        let mut history: Vec<usize> = Vec::new();
        let mut hits = 0u64;
        for (i, &(k, at)) in queries.iter().enumerate() {
            let slot = slots[k as usize].as_ref().expect("every queried key has a slot");
            let located = slot.timeline.locate(at, slot.complete);
            // A hit: answered by what was cached before this lookup.
            if !slot.fetched && located != Located::Unknown {
                hits += 1;
            }
            known.push(vouched(&slot.timeline, located, &slot.seen, at, slot.horizon));
            found.push(match located {
                Located::Open(mark) => Found::Mark { key: k, mark: mark as u32 },
                Located::Free => Found::Free,
                Located::Unknown => {
                    history.push(i);
                    Found::Free
                }
            });
        }
        // Times older than any cached head: ask the store's history.
        let mut owned = Vec::new();
        if !history.is_empty() {
            let asked: Vec<(AddressKey, UnixTime)> =
                history.iter().map(|&i| (keys[queries[i].0 as usize].clone(), queries[i].1)).collect();
            for (i, owner) in history.into_iter().zip(store.lookup(&asked).await?) {
                if let Some(owner) = owner {
                    found[i] = Found::History(owned.len() as u32);
                    owned.push(owner);
                }
            }
        }
        let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        stats.hits += hits;
        stats.misses += queries.len() as u64 - hits;
        stats.store_calls += store.calls().saturating_sub(calls_before);
        stats.rereads += doubtful.iter().filter(|d| **d).count() as u64;
        let timelines = slots.into_iter().map(|s| s.map(|s| s.timeline)).collect();
        Ok(Owners { timelines, found, known, owned, evidence })
    }
}

/// Merges a key's heartbeats into its evidence, noting in `evidence` the
/// ones worth storing: the first of their [`HEARTBEAT_SECONDS`] bucket.
fn absorb(seen: &mut Vec<Sighting>, beats: &[&Sighting], key: &AddressKey, evidence: &mut Vec<(AddressKey, Sighting)>) {
    let bucket = |at: UnixTime| at.0.div_euclid(HEARTBEAT_SECONDS);
    for s in beats {
        let stored = seen.iter().find(|o| o.eni_id == s.eni_id && o.attached == s.attached);
        if stored.is_none_or(|o| bucket(o.at) < bucket(s.at)) {
            evidence.push((key.clone(), (*s).clone()));
        }
        Sighting::merge(seen, (*s).clone());
    }
}

/// Whether the timeline's answer for `at` is vouched for by the evidence.
/// An answer older than the timeline (the store's history) counts as
/// known: later marks exist, the time is long past.
fn vouched(timeline: &Timeline, located: Located, seen: &[Sighting], at: UnixTime, horizon: Option<UnixTime>) -> bool {
    match located {
        Located::Open(mark) => known_at(timeline, mark, seen, at),
        Located::Free => known_free_at(timeline, at, horizon),
        Located::Unknown => true,
    }
}

/// One key's state during a lookup.
#[derive(Debug, Clone)]
struct Slot {
    timeline: Arc<Timeline>,
    complete: bool,
    seen: Vec<Sighting>,
    horizon: Option<UnixTime>,
    /// Read from the store during this lookup.
    fetched: bool,
}

impl Slot {
    fn cached(e: &Entry) -> Slot {
        Slot {
            timeline: e.timeline.clone(),
            complete: e.complete,
            seen: e.seen.clone(),
            horizon: e.horizon,
            fetched: false,
        }
    }
}

/// Makes room for `adding` more entries within `capacity`: drops entries
/// older than `ttl_seconds`, then (still over) the oldest, by the time
/// `fetched_at` reads off each value. Shared by the per-container caches.
pub fn make_room<K, V, S>(
    map: &mut HashMap<K, V, S>,
    adding: usize,
    capacity: usize,
    ttl_seconds: i64,
    now: UnixTime,
    fetched_at: impl Fn(&V) -> UnixTime,
) where
    K: Clone + Eq + Hash + Ord,
    S: BuildHasher,
{
    if map.len() + adding <= capacity {
        return;
    }
    map.retain(|_, v| now.0 - fetched_at(v).0 <= ttl_seconds);
    let excess = (map.len() + adding).saturating_sub(capacity);
    if excess > 0 {
        let mut ages: Vec<(UnixTime, K)> = map.iter().map(|(k, v)| (fetched_at(v), k.clone())).collect();
        ages.sort_unstable();
        for (_, key) in ages.into_iter().take(excess) {
            map.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ownership::testing::ready;
    use crate::ownership::{Mark, MemoryStore, OwnerKind, Scope, Sighting};

    fn key(i: u8) -> AddressKey {
        AddressKey::new(Scope::Vpc("vpc-1".into()), format!("10.0.0.{i}").parse().unwrap())
    }

    fn store_with(n: u8) -> MemoryStore {
        let store = MemoryStore::new();
        let marks: Vec<_> = (0..n)
            .map(|i| {
                (key(i), Mark::Open { at: UnixTime(100), owner: Owner::new(format!("eni-{i}"), OwnerKind::Instance) })
            })
            .collect();
        ready(crate::ownership::OwnershipStore::put_marks(&store, &marks)).unwrap();
        // Seen holding them long after any time asked: known.
        let seen: Vec<_> = (0..n).map(|i| (key(i), seen(&format!("eni-{i}"), 100_000))).collect();
        ready(crate::ownership::OwnershipStore::put_seen(&store, &seen)).unwrap();
        store
    }

    fn seen(eni: &str, at: i64) -> Sighting {
        Sighting { eni_id: eni.into(), attached: crate::ownership::Attached::Unknown, at: UnixTime(at) }
    }

    fn beat(
        cache: &OwnerCache,
        store: &impl OwnershipStore,
        at: i64,
        heartbeat: Option<i64>,
        now: i64,
    ) -> (Option<String>, bool, Vec<i64>) {
        let beats: Vec<(u32, Sighting)> = heartbeat.map(|h| (0, seen("eni-0", h))).into_iter().collect();
        let owners = ready(cache.lookup(store, &[key(0)], &[(0, UnixTime(at))], &beats, None, UnixTime(now))).unwrap();
        let stored = owners.evidence.iter().map(|(_, s)| s.at.0).collect();
        (owners.get(0).map(|o| o.eni_id.clone()), owners.known(0), stored)
    }

    #[test]
    fn owners_are_vouched_for_by_evidence_and_doubtful_entries_read_again() {
        let store = MemoryStore::new();
        let open = Mark::Open { at: UnixTime(100), owner: Owner::new("eni-0", OwnerKind::Instance) };
        ready(crate::ownership::OwnershipStore::put_marks(&store, &[(key(0), open)])).unwrap();
        let cache = OwnerCache::new(CacheConfig::default());
        // An open alone: the owner, not vouched for.
        assert_eq!(beat(&cache, &store, 500, None, 1000), (Some("eni-0".into()), false, vec![]));
        assert_eq!(cache.stats().store_calls, 1);
        // The cached entry cannot vouch: read again.
        beat(&cache, &store, 500, None, 1001);
        assert_eq!(cache.stats().store_calls, 2);
        // The batch's own heartbeat vouches, and is worth storing.
        assert_eq!(beat(&cache, &store, 500, Some(600), 1002), (Some("eni-0".into()), true, vec![600]));
        // The same bucket again: known from the cache, nothing to store.
        assert_eq!(beat(&cache, &store, 590, Some(620), 1003), (Some("eni-0".into()), true, vec![]));
        assert_eq!(cache.stats().store_calls, 2, "vouched for: no read");
        // The next bucket is stored; the store then vouches to a new cache.
        assert_eq!(beat(&cache, &store, 590, Some(660), 1004).2, vec![660]);
        ready(crate::ownership::OwnershipStore::put_seen(&store, &[(key(0), seen("eni-0", 660))])).unwrap();
        let fresh = OwnerCache::new(CacheConfig::default());
        assert_eq!(beat(&fresh, &store, 650, None, 1005), (Some("eni-0".into()), true, vec![]));
        assert!(!beat(&fresh, &store, 661, None, 1006).1, "past the evidence");
    }

    /// Looks up (key, time) pairs, each distinct key once.
    fn ask(cache: &OwnerCache, store: &impl OwnershipStore, queries: &[(AddressKey, UnixTime)], now: i64) -> Owners {
        let mut keys: Vec<AddressKey> = Vec::new();
        let queries: Vec<(u32, UnixTime)> = queries
            .iter()
            .map(|(key, at)| {
                let k = keys.iter().position(|k| k == key).unwrap_or_else(|| {
                    keys.push(key.clone());
                    keys.len() - 1
                });
                (k as u32, *at)
            })
            .collect();
        ready(cache.lookup(store, &keys, &queries, &[], Some(UnixTime(i64::MAX)), UnixTime(now))).unwrap()
    }

    fn enis(owners: &Owners) -> Vec<Option<String>> {
        (0..owners.len()).map(|i| owners.get(i).map(|o| o.eni_id.clone())).collect()
    }

    #[test]
    fn a_warm_batch_costs_no_store_call() {
        let store = store_with(200);
        let cache = OwnerCache::new(CacheConfig::default());
        let queries: Vec<_> = (0..200).map(|i| (key(i), UnixTime(500))).collect();
        let cold = ask(&cache, &store, &queries, 1000);
        assert!(enis(&cold).iter().all(Option::is_some));
        // 200 keys: one `heads` call, which the embedded store counts as one
        // (DynamoDB would send two batches of 100 and count two).
        assert_eq!(cache.stats().store_calls, 1);
        let warm = ask(&cache, &store, &queries, 1010);
        assert_eq!(enis(&warm), enis(&cold));
        let stats = cache.stats();
        // The warm lookup calls the store not at all: still the cold one.
        assert_eq!((stats.store_calls, stats.hits, stats.misses), (1, 200, 200));
    }

    #[test]
    fn recent_flows_and_old_entries_go_back_to_the_store() {
        let store = store_with(1);
        let cache = OwnerCache::new(CacheConfig { capacity: 10, ttl_seconds: 300, freshness_seconds: 120 });
        // Each fetch is one `heads` call: one store call to the embedded store.
        ask(&cache, &store, &[(key(0), UnixTime(500))], 1000);
        assert_eq!(cache.stats().store_calls, 1);
        // A flow from after the fetch (minus freshness) is not answered from it.
        ask(&cache, &store, &[(key(0), UnixTime(950))], 1001);
        assert_eq!(cache.stats().store_calls, 2);
        // Past the TTL the entry is refetched.
        ask(&cache, &store, &[(key(0), UnixTime(500))], 1400);
        assert_eq!(cache.stats().store_calls, 3);
    }

    #[test]
    fn answers_borrow_one_copy_per_owner() {
        let store = store_with(1);
        let cache = OwnerCache::new(CacheConfig::default());
        let queries = [(key(0), UnixTime(500)), (key(0), UnixTime(600)), (key(1), UnixTime(600))];
        for now in [1000, 1010] {
            let a = ask(&cache, &store, &queries, now);
            let (first, second) = (a.get(0).unwrap(), a.get(1).unwrap());
            assert!(std::ptr::eq(first, second), "cold and warm alike");
            assert_eq!(first.eni_id, "eni-0");
            assert!(a.get(2).is_none());
        }
    }

    /// A store whose heads hold only the latest mark, as DynamoDB's hold
    /// the latest few: older times need the history.
    struct ShortHeads(MemoryStore);

    impl OwnershipStore for ShortHeads {
        async fn put_marks(&self, marks: &[(AddressKey, Mark)]) -> StoreResult<()> {
            self.0.put_marks(marks).await
        }
        async fn lookup(&self, queries: &[(AddressKey, UnixTime)]) -> StoreResult<Vec<Option<Owner>>> {
            self.0.lookup(queries).await
        }
        async fn heads(&self, keys: &[AddressKey]) -> StoreResult<Vec<super::super::Head>> {
            let full = self.0.heads(keys).await?;
            Ok(full
                .into_iter()
                .map(|h| super::super::Head {
                    complete: h.timeline.marks().len() <= 1,
                    timeline: h.timeline.latest(1),
                    seen: h.seen,
                })
                .collect())
        }
        async fn put_seen(&self, seen: &[(AddressKey, super::super::Sighting)]) -> StoreResult<()> {
            self.0.put_seen(seen).await
        }
        async fn note_reconciled(&self, scope: &str, at: UnixTime) -> StoreResult<()> {
            self.0.note_reconciled(scope, at).await
        }
        async fn reconciled(&self) -> StoreResult<Vec<(String, UnixTime)>> {
            self.0.reconciled().await
        }
        async fn timeline(&self, key: &AddressKey) -> StoreResult<Timeline> {
            self.0.timeline(key).await
        }
        async fn timelines(&self) -> StoreResult<Vec<(AddressKey, Timeline)>> {
            self.0.timelines().await
        }
        async fn eni(&self, by: &super::super::EniRef) -> StoreResult<Option<super::super::EniRecord>> {
            self.0.eni(by).await
        }
        async fn enis_of_instance(&self, instance_id: &str) -> StoreResult<Vec<super::super::EniRecord>> {
            self.0.enis_of_instance(instance_id).await
        }
        async fn enis(&self) -> StoreResult<Vec<super::super::EniRecord>> {
            self.0.enis().await
        }
        async fn put_eni(&self, record: &super::super::EniRecord) -> StoreResult<super::super::EniWrite> {
            self.0.put_eni(record).await
        }
        async fn put_pending(
            &self,
            reference: &super::super::EniRef,
            change: &super::super::Change,
        ) -> StoreResult<()> {
            self.0.put_pending(reference, change).await
        }
        async fn pending(&self, reference: &super::super::EniRef) -> StoreResult<Vec<super::super::Change>> {
            self.0.pending(reference).await
        }
        async fn forget_pending(
            &self,
            reference: &super::super::EniRef,
            changes: &[super::super::Change],
        ) -> StoreResult<()> {
            self.0.forget_pending(reference, changes).await
        }
        async fn note_instance(&self, instance_id: &str, note: &super::super::InstanceNote) -> StoreResult<()> {
            self.0.note_instance(instance_id, note).await
        }
        async fn instance_notes(&self, instance_id: &str) -> StoreResult<super::super::InstanceNotes> {
            self.0.instance_notes(instance_id).await
        }
        async fn instance(&self, instance_id: &str) -> StoreResult<Option<super::super::InstanceRecord>> {
            self.0.instance(instance_id).await
        }
        async fn put_instance(&self, record: &super::super::InstanceRecord) -> StoreResult<()> {
            self.0.put_instance(record).await
        }
        fn calls(&self) -> u64 {
            self.0.calls()
        }
    }

    /// Times before the cached marks are asked of the store's history; a
    /// closed interval reads as free.
    #[test]
    fn older_times_fall_back_to_the_history() {
        let store = MemoryStore::new();
        let owner = |eni: &str| Owner::new(eni, OwnerKind::Instance);
        let marks: Vec<_> = [
            Mark::Open { at: UnixTime(100), owner: owner("eni-old") },
            Mark::close(UnixTime(200), "eni-old"),
            Mark::Open { at: UnixTime(300), owner: owner("eni-new") },
        ]
        .into_iter()
        .map(|m| (key(0), m))
        .collect();
        ready(crate::ownership::OwnershipStore::put_marks(&store, &marks)).unwrap();
        ready(crate::ownership::OwnershipStore::put_seen(&store, &[(key(0), seen("eni-new", 10_000))])).unwrap();
        let store = ShortHeads(store);
        let cache = OwnerCache::new(CacheConfig::default());
        let queries: Vec<_> = [150, 250, 350].map(|t| (key(0), UnixTime(t))).into();
        let want = [Some("eni-old".to_owned()), None, Some("eni-new".to_owned())];
        let cold = ask(&cache, &store, &queries, 1000);
        assert_eq!(enis(&cold), want);
        // The embedded store counts one per call: `heads`, then `lookup`.
        assert_eq!(cache.stats().store_calls, 2, "one heads call, one history call");
        let warm = ask(&cache, &store, &queries, 1001);
        assert_eq!(enis(&warm), want);
        let stats = cache.stats();
        // One more `lookup` for the two times the cached head cannot answer.
        assert_eq!((stats.store_calls, stats.hits), (3, 1), "the head answers only the latest time");
    }

    #[test]
    fn making_room_drops_expired_then_oldest_entries() {
        let mut map: HashMap<String, UnixTime> = HashMap::new();
        for (name, at) in [("eni-old", 100), ("eni-mid", 500), ("eni-new", 900), ("eni-newer", 950)] {
            map.insert(name.into(), UnixTime(at));
        }
        let at = |t: &UnixTime| *t;
        // Room for one more within 4: the expired entry goes, nothing else.
        make_room(&mut map, 1, 4, 600, UnixTime(1000), at);
        let mut left: Vec<&str> = map.keys().map(String::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["eni-mid", "eni-new", "eni-newer"]);
        // Room for two within 3 with nothing expired: the two oldest go.
        make_room(&mut map, 2, 3, 10_000, UnixTime(1000), at);
        assert_eq!(map.keys().collect::<Vec<_>>(), ["eni-newer"]);
        // Enough room: nothing changes.
        make_room(&mut map, 1, 3, 0, UnixTime(1000), at);
        assert_eq!(map.len(), 1);
    }

    #[test]
    fn capacity_is_a_bound() {
        let store = store_with(50);
        let cache = OwnerCache::new(CacheConfig { capacity: 20, ttl_seconds: 300, freshness_seconds: 0 });
        for i in 0..50 {
            ask(&cache, &store, &[(key(i), UnixTime(500))], 1000 + i64::from(i));
        }
        assert!(cache.len() <= 20, "{}", cache.len());
    }
}
