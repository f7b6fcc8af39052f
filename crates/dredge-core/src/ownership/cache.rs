//! A per-container cache in front of the ownership store: bounded, with a
//! TTL, holding the latest marks of each address so that any flow time they
//! cover resolves without a store call.
//!
//! Ownership changes reach the table within about a minute; flow logs
//! arrive minutes after the flow. A cached head fetched at `f` is trusted
//! for a flow starting at `t` only while `t + freshness <= f` (changes up to
//! `t` had landed when it was fetched) and the entry is younger than `ttl`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::owner::Owner;
use super::store::{OwnershipStore, StoreResult};
use super::time::UnixTime;
use super::timeline::{AddressKey, Resolution, Timeline};

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
    /// Store round trips made on behalf of lookups: head batches of up to
    /// 100 addresses, and history lookups (counted per 100 queries).
    pub store_calls: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    timeline: Arc<Timeline>,
    complete: bool,
    fetched_at: UnixTime,
}

/// Keys per store call: DynamoDB's BatchGetItem limit.
const BATCH: usize = 100;

#[derive(Debug, Default)]
pub struct OwnerCache {
    config: CacheConfig,
    entries: Mutex<HashMap<AddressKey, Entry>>,
    stats: Mutex<CacheStats>,
}

impl OwnerCache {
    pub fn new(config: CacheConfig) -> Self {
        OwnerCache { config, entries: Mutex::new(HashMap::new()), stats: Mutex::new(CacheStats::default()) }
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

    /// The owner for each (address, time) query, in order. `now` is the
    /// wall clock (passed in so tests control it). Owners are shared: many
    /// flows of a batch name the same one.
    pub async fn lookup<S: OwnershipStore>(
        &self,
        store: &S,
        queries: &[(AddressKey, UnixTime)],
        now: UnixTime,
    ) -> StoreResult<Vec<Option<Arc<Owner>>>> {
        let mut answers: Vec<Option<Option<Arc<Owner>>>> = vec![None; queries.len()];
        // One shared copy per owner of the cached timelines. While a lock
        // guard is held the map does not change, so an owner's address
        // identifies it; the memo is cleared whenever the guard is let go
        // (a replaced timeline's memory may be reused).
        let mut shared: HashMap<usize, Arc<Owner>> = HashMap::new();
        fn share(shared: &mut HashMap<usize, Arc<Owner>>, o: &Owner) -> Arc<Owner> {
            shared.entry(o as *const Owner as usize).or_insert_with(|| Arc::new(o.clone())).clone()
        }
        let mut missing: Vec<AddressKey> = Vec::new();
        {
            let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            let mut seen = std::collections::HashSet::new();
            for (i, (key, at)) in queries.iter().enumerate() {
                match entries.get(key).filter(|e| self.usable(e, *at, now)) {
                    Some(e) => match e.timeline.resolve(*at, e.complete) {
                        Resolution::Owned(o) => answers[i] = Some(Some(share(&mut shared, o))),
                        Resolution::Free => answers[i] = Some(None),
                        Resolution::Unknown => {}
                    },
                    None => {
                        if seen.insert(key) {
                            missing.push(key.clone());
                        }
                    }
                }
            }
        }
        let hits = answers.iter().filter(|a| a.is_some()).count() as u64;
        let mut calls = 0u64;
        if !missing.is_empty() {
            // One call: the store splits it into batches and may run them
            // concurrently.
            calls += missing.len().div_ceil(BATCH) as u64;
            let heads = store.heads(&missing).await?;
            let fetched: Vec<_> = missing.into_iter().zip(heads).collect();
            shared.clear();
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            for (key, head) in fetched {
                let entry = Entry { timeline: Arc::new(head.timeline), complete: head.complete, fetched_at: now };
                entries.insert(key, entry);
            }
            self.evict(&mut entries, now);
            for (i, (key, at)) in queries.iter().enumerate() {
                if answers[i].is_some() {
                    continue;
                }
                // Freshly fetched: authoritative as of now, whatever the flow time.
                if let Some(e) = entries.get(key).filter(|e| e.fetched_at == now) {
                    match e.timeline.resolve(*at, e.complete) {
                        Resolution::Owned(o) => answers[i] = Some(Some(share(&mut shared, o))),
                        Resolution::Free => answers[i] = Some(None),
                        Resolution::Unknown => {}
                    }
                }
            }
        }
        // Times older than any cached head: ask the store's history.
        let history: Vec<usize> = (0..queries.len()).filter(|i| answers[*i].is_none()).collect();
        if !history.is_empty() {
            let asked: Vec<(AddressKey, UnixTime)> = history.iter().map(|i| queries[*i].clone()).collect();
            calls += asked.len().div_ceil(BATCH) as u64;
            let owners = store.lookup(&asked).await?;
            for (i, owner) in history.into_iter().zip(owners) {
                answers[i] = Some(owner.map(Arc::new));
            }
        }
        let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        stats.hits += hits;
        stats.misses += queries.len() as u64 - hits;
        stats.store_calls += calls;
        Ok(answers.into_iter().map(|a| a.flatten()).collect())
    }

    /// Drops expired entries, then (still over capacity) the oldest.
    fn evict(&self, entries: &mut HashMap<AddressKey, Entry>, now: UnixTime) {
        if entries.len() <= self.config.capacity {
            return;
        }
        entries.retain(|_, e| now.0 - e.fetched_at.0 <= self.config.ttl_seconds);
        if entries.len() > self.config.capacity {
            let mut ages: Vec<(UnixTime, AddressKey)> =
                entries.iter().map(|(k, e)| (e.fetched_at, k.clone())).collect();
            ages.sort();
            let excess = entries.len() - self.config.capacity;
            for (_, key) in ages.into_iter().take(excess) {
                entries.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ownership::testing::ready;
    use crate::ownership::{Mark, MemoryStore, OwnerKind, Scope};

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
        store
    }

    #[test]
    fn a_warm_batch_costs_no_store_call() {
        let store = store_with(200);
        let cache = OwnerCache::new(CacheConfig::default());
        let queries: Vec<_> = (0..200).map(|i| (key(i), UnixTime(500))).collect();
        let cold = ready(cache.lookup(&store, &queries, UnixTime(1000))).unwrap();
        assert!(cold.iter().all(Option::is_some));
        assert_eq!(cache.stats().store_calls, 2, "200 keys: two batches of 100");
        let warm = ready(cache.lookup(&store, &queries, UnixTime(1010))).unwrap();
        assert_eq!(warm, cold);
        let stats = cache.stats();
        assert_eq!((stats.store_calls, stats.hits, stats.misses), (2, 200, 200));
    }

    #[test]
    fn recent_flows_and_old_entries_go_back_to_the_store() {
        let store = store_with(1);
        let cache = OwnerCache::new(CacheConfig { capacity: 10, ttl_seconds: 300, freshness_seconds: 120 });
        ready(cache.lookup(&store, &[(key(0), UnixTime(500))], UnixTime(1000))).unwrap();
        assert_eq!(cache.stats().store_calls, 1);
        // A flow from after the fetch (minus freshness) is not answered from it.
        ready(cache.lookup(&store, &[(key(0), UnixTime(950))], UnixTime(1001))).unwrap();
        assert_eq!(cache.stats().store_calls, 2);
        // Past the TTL the entry is refetched.
        ready(cache.lookup(&store, &[(key(0), UnixTime(500))], UnixTime(1400))).unwrap();
        assert_eq!(cache.stats().store_calls, 3);
    }

    #[test]
    fn answers_share_one_copy_per_owner() {
        let store = store_with(1);
        let cache = OwnerCache::new(CacheConfig::default());
        let queries = [(key(0), UnixTime(500)), (key(0), UnixTime(600)), (key(1), UnixTime(600))];
        for now in [1000, 1010] {
            let a = ready(cache.lookup(&store, &queries, UnixTime(now))).unwrap();
            let (first, second) = (a[0].as_ref().unwrap(), a[1].as_ref().unwrap());
            assert!(Arc::ptr_eq(first, second), "cold and warm alike");
            assert_eq!(first.eni_id, "eni-0");
            assert!(a[2].is_none());
        }
    }

    #[test]
    fn capacity_is_a_bound() {
        let store = store_with(50);
        let cache = OwnerCache::new(CacheConfig { capacity: 20, ttl_seconds: 300, freshness_seconds: 0 });
        for i in 0..50 {
            ready(cache.lookup(&store, &[(key(i), UnixTime(500))], UnixTime(1000 + i64::from(i)))).unwrap();
        }
        assert!(cache.len() <= 20, "{}", cache.len());
    }
}
