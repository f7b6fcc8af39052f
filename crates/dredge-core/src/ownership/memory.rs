//! The embedded ownership store: the same semantics as DynamoDB, in memory,
//! optionally persisted as one JSON file under a state directory (default
//! `.dredge/`) for the CLI and local runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use super::change::Change;
use super::evidence::Sighting;
use super::owner::Owner;
use super::store::{
    EniRecord, EniRef, EniWrite, Head, InstanceNote, InstanceNotes, InstanceRecord, OwnershipStore, StoreError,
    StoreResult,
};
use super::time::UnixTime;
use super::timeline::{AddressKey, Mark, Timeline};

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    addresses: BTreeMap<String, (AddressKey, Timeline)>,
    enis: BTreeMap<String, EniRecord>,
    instances: BTreeMap<String, InstanceRecord>,
    /// Kept changes by the reference they wait for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pending: Vec<(EniRef, Vec<Change>)>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    notes: BTreeMap<String, InstanceNotes>,
    /// Sightings by address (the same key as `addresses`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    seen: BTreeMap<String, Vec<Sighting>>,
    /// Each scope's latest reconcile.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    reconciled: BTreeMap<String, UnixTime>,
}

impl State {
    fn pending_of(&mut self, reference: &EniRef) -> Option<&mut Vec<Change>> {
        self.pending.iter_mut().find(|(r, _)| r == reference).map(|(_, c)| c)
    }
}

/// File name of the persisted state inside the state directory.
pub const STATE_FILE: &str = "ownership.json";

/// The embedded store. Its [`calls`](OwnershipStore::calls) count one per
/// store method called, batch methods (`heads`, `enis_by_id`, `lookup`,
/// `put_marks`) included whatever their size: each would be one request to
/// a remote store without a batch limit.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    path: Option<PathBuf>,
    calls: AtomicU64,
}

impl MemoryStore {
    /// An empty store that lives only in memory.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// Loads the store persisted in `dir` (empty when there is none yet);
    /// [`MemoryStore::save`] writes it back.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        let path = dir.join(STATE_FILE);
        let state = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(e),
        };
        Ok(MemoryStore { state: Mutex::new(state), path: Some(path), calls: AtomicU64::new(0) })
    }

    /// Writes the state atomically (temporary file, then rename).
    pub fn save(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else { return Ok(()) };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec(&*self.lock()).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(tmp, path)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every
        // mutation is a single insert), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state, for one store call (counted).
    fn call(&self) -> MutexGuard<'_, State> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.lock()
    }
}

fn key_string(key: &AddressKey) -> String {
    key.to_string()
}

/// DynamoDB refuses a partition key over 2048 bytes (a validation error):
/// so does the embedded store, for the keys the DynamoDB store would write
/// (an address key's or an ENI id's, with its two-byte item prefix).
pub const MAX_PARTITION_KEY_BYTES: usize = 2048;

fn check_key(key: &str) -> StoreResult<()> {
    const ITEM_PREFIX: usize = 2;
    if key.len() + ITEM_PREFIX > MAX_PARTITION_KEY_BYTES {
        return Err(StoreError::Invalid(format!(
            "ValidationException: One or more parameter values were invalid: Size of hashkey has exceeded the \
             maximum size limit of {MAX_PARTITION_KEY_BYTES} bytes ({} bytes)",
            key.len() + ITEM_PREFIX
        )));
    }
    Ok(())
}

fn check_keys<'k>(keys: impl IntoIterator<Item = &'k AddressKey>) -> StoreResult<()> {
    keys.into_iter().try_for_each(|k| check_key(&key_string(k)))
}

impl OwnershipStore for MemoryStore {
    async fn put_marks(&self, marks: &[(AddressKey, Mark)]) -> StoreResult<()> {
        let mut state = self.call();
        check_keys(marks.iter().map(|(k, _)| k))?;
        for (key, mark) in marks {
            state
                .addresses
                .entry(key_string(key))
                .or_insert_with(|| (key.clone(), Timeline::new()))
                .1
                .insert(mark.clone());
        }
        Ok(())
    }

    async fn lookup(&self, queries: &[(AddressKey, UnixTime)]) -> StoreResult<Vec<Option<Owner>>> {
        let state = self.call();
        check_keys(queries.iter().map(|(k, _)| k))?;
        Ok(queries
            .iter()
            .map(|(key, at)| state.addresses.get(&key_string(key)).and_then(|(_, t)| t.owner_at(*at).cloned()))
            .collect())
    }

    /// Whole timelines, in one call (the trait's default would make one per
    /// key).
    async fn heads(&self, keys: &[AddressKey]) -> StoreResult<Vec<Head>> {
        let state = self.call();
        check_keys(keys)?;
        Ok(keys
            .iter()
            .map(|key| {
                let key = key_string(key);
                Head {
                    timeline: state.addresses.get(&key).map(|(_, t)| t.clone()).unwrap_or_default(),
                    complete: true,
                    seen: state.seen.get(&key).cloned().unwrap_or_default(),
                }
            })
            .collect())
    }

    async fn put_seen(&self, seen: &[(AddressKey, Sighting)]) -> StoreResult<()> {
        let mut state = self.call();
        check_keys(seen.iter().map(|(k, _)| k))?;
        let state = &mut *state;
        for (key, sighting) in seen {
            let key = key_string(key);
            if state.addresses.contains_key(&key) {
                Sighting::merge(state.seen.entry(key).or_default(), sighting.clone());
            }
        }
        Ok(())
    }

    async fn note_reconciled(&self, scope: &str, at: UnixTime) -> StoreResult<()> {
        let mut state = self.call();
        let t = state.reconciled.entry(scope.to_owned()).or_insert(at);
        *t = (*t).max(at);
        Ok(())
    }

    async fn reconciled(&self) -> StoreResult<Vec<(String, UnixTime)>> {
        Ok(self.call().reconciled.iter().map(|(s, t)| (s.clone(), *t)).collect())
    }

    async fn timeline(&self, key: &AddressKey) -> StoreResult<Timeline> {
        Ok(self.call().addresses.get(&key_string(key)).map(|(_, t)| t.clone()).unwrap_or_default())
    }

    async fn timelines(&self) -> StoreResult<Vec<(AddressKey, Timeline)>> {
        Ok(self.call().addresses.values().cloned().collect())
    }

    async fn eni(&self, by: &EniRef) -> StoreResult<Option<EniRecord>> {
        let state = self.call();
        Ok(match by {
            EniRef::Id(id) => state.enis.get(id).cloned(),
            EniRef::Attachment(a) => state.enis.values().find(|r| r.has_attachment(a)).cloned(),
            EniRef::Association(a) => state.enis.values().find(|r| r.associations.contains_key(a)).cloned(),
        })
    }

    /// In one call (the trait's default would make one per id).
    async fn enis_by_id(&self, ids: &[String]) -> StoreResult<Vec<Option<EniRecord>>> {
        let state = self.call();
        ids.iter().try_for_each(|id| check_key(id))?;
        Ok(ids.iter().map(|id| state.enis.get(id).cloned()).collect())
    }

    async fn enis_of_instance(&self, instance_id: &str) -> StoreResult<Vec<EniRecord>> {
        Ok(self.call().enis.values().filter(|r| r.eni.instance_id.as_deref() == Some(instance_id)).cloned().collect())
    }

    async fn enis(&self) -> StoreResult<Vec<EniRecord>> {
        Ok(self.call().enis.values().cloned().collect())
    }

    async fn put_eni(&self, record: &EniRecord) -> StoreResult<EniWrite> {
        let mut state = self.call();
        let stored = state.enis.get(&record.eni.eni_id).map_or(0, |r| r.version);
        if stored != record.version {
            return Ok(EniWrite::Conflict);
        }
        let written = EniRecord { version: record.version + 1, ..record.clone() };
        state.enis.insert(record.eni.eni_id.clone(), written);
        Ok(EniWrite::Written)
    }

    async fn put_pending(&self, reference: &EniRef, change: &Change) -> StoreResult<()> {
        let mut state = self.call();
        match state.pending_of(reference) {
            Some(kept) if kept.contains(change) => {}
            Some(kept) => kept.push(change.clone()),
            None => state.pending.push((reference.clone(), vec![change.clone()])),
        }
        Ok(())
    }

    async fn pending(&self, reference: &EniRef) -> StoreResult<Vec<Change>> {
        Ok(self.call().pending_of(reference).cloned().unwrap_or_default())
    }

    async fn forget_pending(&self, reference: &EniRef, changes: &[Change]) -> StoreResult<()> {
        let mut state = self.call();
        if let Some(kept) = state.pending_of(reference) {
            kept.retain(|c| !changes.contains(c));
        }
        state.pending.retain(|(_, kept)| !kept.is_empty());
        Ok(())
    }

    async fn note_instance(&self, instance_id: &str, note: &InstanceNote) -> StoreResult<()> {
        self.call().notes.entry(instance_id.to_owned()).or_default().add(note);
        Ok(())
    }

    async fn instance_notes(&self, instance_id: &str) -> StoreResult<InstanceNotes> {
        Ok(self.call().notes.get(instance_id).cloned().unwrap_or_default())
    }

    async fn instance(&self, instance_id: &str) -> StoreResult<Option<InstanceRecord>> {
        Ok(self.call().instances.get(instance_id).cloned())
    }

    async fn put_instance(&self, record: &InstanceRecord) -> StoreResult<()> {
        let mut state = self.call();
        match state.instances.get(&record.instance_id) {
            Some(stored) if !record.supersedes(stored) => {}
            _ => {
                state.instances.insert(record.instance_id.clone(), record.clone());
            }
        }
        Ok(())
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ownership::testing::ready;
    use crate::ownership::{OwnerKind, Scope};

    #[test]
    fn counts_one_call_per_method_called_whatever_its_size() {
        let store = MemoryStore::new();
        let keys: Vec<AddressKey> = (0..250u8)
            .map(|i| {
                AddressKey::new(Scope::Vpc("vpc-1".into()), format!("10.0.{}.{}", i / 200, i % 200).parse().unwrap())
            })
            .collect();
        let owner = Owner::new("eni-1", OwnerKind::Instance);
        let marks: Vec<_> =
            keys.iter().map(|k| (k.clone(), Mark::Open { at: UnixTime(100), owner: owner.clone() })).collect();
        assert_eq!(store.calls(), 0);
        ready(store.put_marks(&marks)).unwrap();
        ready(store.heads(&keys)).unwrap();
        let ids: Vec<String> = (0..250).map(|i| format!("eni-{i}")).collect();
        ready(store.enis_by_id(&ids)).unwrap();
        ready(store.timeline(&keys[0])).unwrap();
        assert_eq!(store.calls(), 4);
        // Through a borrow (the `&S` impl) too.
        let borrowed = &store;
        ready(<&MemoryStore as OwnershipStore>::lookup(&borrowed, &[(keys[0].clone(), UnixTime(150))])).unwrap();
        assert_eq!(<&MemoryStore as OwnershipStore>::calls(&borrowed), 5);
    }
}
