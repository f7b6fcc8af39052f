//! The ownership store: the one narrow interface between the ownership
//! logic and where the table lives (DynamoDB, or the embedded store).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::change::Change;
use super::eni::Eni;
use super::evidence::Sighting;
#[allow(unused_imports)] // doc links
use super::evidence::{horizon, scope_label};
use super::owner::Owner;
use super::time::UnixTime;
use super::timeline::{AddressKey, Mark, Timeline};

/// What the store remembers of one ENI, to complete later partial events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EniRecord {
    pub eni: Eni,
    /// Time of the newest event that described the ENI.
    pub updated_at: UnixTime,
    /// When the ENI was deleted, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<UnixTime>,
    /// Public IP associations: association id to public address.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub associations: BTreeMap<String, IpAddr>,
    /// Attachments seen, newest [`MAX_REMEMBERED`]: a detach names only its
    /// attachment, and may arrive after the next attach.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attachments: BTreeMap<String, Attachment>,
    /// Addresses the ENI gave up, with the earliest removal known, newest
    /// [`MAX_REMEMBERED`]: a change older than the removal must not give
    /// the address back, and an earlier stop learned later still ends an
    /// auto-assigned address at its own time.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub removed: BTreeMap<IpAddr, Removal>,
    /// Addresses the ENI took by a change (an assign, an association),
    /// with when, newest [`MAX_ADDED`]: an older removal learned later
    /// must not take them away, and the owner each was taken by is retold
    /// when the record's answer for its time changes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub added: BTreeMap<IpAddr, AddTimes>,
    /// Elastic IPs an association event named by allocation only, with the
    /// earliest such event, newest [`MAX_REMEMBERED`]: the description that
    /// tells the address dates it from the association, not from itself.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub awaiting: BTreeMap<String, UnixTime>,
    /// The newest change to the address lists (an assign, a release, a
    /// description): an older description does not replace them.
    #[serde(default)]
    pub addresses_at: UnixTime,
    /// The newest description whose address lists the record took whole
    /// (changes since edit them): what it did not list of an older
    /// description's was given up by then. 0 in records written before.
    #[serde(default)]
    pub listed_at: UnixTime,
    /// How many times the record was written: a write succeeds only over
    /// the version it read ([`OwnershipStore::put_eni`]).
    #[serde(default)]
    pub version: u64,
}

/// One attachment of an ENI to an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub instance_id: String,
    /// The attach, or the first description showing it.
    pub at: UnixTime,
    /// `at` is the attach's own time (its event was seen); a description
    /// only bounds it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exact: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detached_at: Option<UnixTime>,
}

/// When an ENI gave up an address, and whether EC2 had assigned it
/// automatically (released by a stop or an Elastic IP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removal {
    pub at: UnixTime,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_assigned: bool,
}

/// When an ENI took one address by a change, newest [`MAX_ADD_TIMES`]: an
/// address assigned, released and assigned again was taken by an owner
/// each time. Stored as a number when taken once (the form records had
/// before), else a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddTimes(Vec<UnixTime>);

/// How many takings of one address a record keeps.
pub const MAX_ADD_TIMES: usize = 4;

impl AddTimes {
    /// The newest taking: whether the address was taken again after a
    /// removal.
    pub fn latest(&self) -> UnixTime {
        self.0.last().copied().unwrap_or_default()
    }

    /// Every taking remembered, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = UnixTime> + '_ {
        self.0.iter().copied()
    }

    fn insert(&mut self, at: UnixTime) {
        if let Err(i) = self.0.binary_search(&at) {
            self.0.insert(i, at);
        }
        if self.0.len() > MAX_ADD_TIMES {
            self.0.remove(0);
        }
    }
}

impl Serialize for AddTimes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => one.serialize(s),
            all => all.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for AddTimes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Once(UnixTime),
            Times(Vec<UnixTime>),
        }
        let mut times = match Form::deserialize(d)? {
            Form::Once(t) => vec![t],
            Form::Times(t) => t,
        };
        times.sort();
        times.dedup();
        if times.is_empty() {
            return Err(serde::de::Error::custom("an added address without a time"));
        }
        let extra = times.len().saturating_sub(MAX_ADD_TIMES);
        times.drain(..extra);
        Ok(AddTimes(times))
    }
}

/// How many attachments and removals a record keeps.
pub const MAX_REMEMBERED: usize = 8;

/// How many added addresses a record keeps: one assign may name dozens
/// (an EKS node's warm pool of secondary addresses).
pub const MAX_ADDED: usize = 64;

impl InstanceRecord {
    /// Whether this record should replace `stored` (see
    /// [`OwnershipStore::put_instance`]).
    pub fn supersedes(&self, stored: &InstanceRecord) -> bool {
        match (stored.running, self.running) {
            (true, false) => true,
            (false, true) => false,
            (false, false) => self.changed_at < stored.changed_at,
            (true, true) => self.changed_at >= stored.changed_at,
        }
    }
}

impl EniRecord {
    pub fn new(eni: Eni, updated_at: UnixTime) -> Self {
        EniRecord {
            eni,
            updated_at,
            deleted_at: None,
            associations: BTreeMap::new(),
            attachments: BTreeMap::new(),
            removed: BTreeMap::new(),
            added: BTreeMap::new(),
            awaiting: BTreeMap::new(),
            addresses_at: updated_at,
            listed_at: updated_at,
            version: 0,
        }
    }

    /// Remembers an attachment seen at `at` (`exact`: by its attach event),
    /// forgetting the oldest beyond the limit.
    pub fn remember_attachment(&mut self, attachment_id: &str, instance_id: &str, at: UnixTime, exact: bool) {
        let a = self.attachments.entry(attachment_id.to_owned()).or_insert_with(|| Attachment {
            instance_id: instance_id.to_owned(),
            at,
            exact,
            detached_at: None,
        });
        // The attach event's own time replaces a description's bound (a
        // description dated as of the event that asked for it may even
        // come before it).
        if exact && !a.exact {
            a.at = at;
        } else if exact == a.exact {
            a.at = a.at.min(at);
        }
        a.exact |= exact;
        while self.attachments.len() > MAX_REMEMBERED {
            let oldest = self.attachments.iter().min_by_key(|(id, a)| (a.at, *id)).map(|(id, _)| id.clone());
            oldest.map(|id| self.attachments.remove(&id));
        }
    }

    /// Gives up `addresses` at `at`, remembering when; the earliest
    /// removal wins. An older change than the record's newest description
    /// is remembered but leaves the address lists alone.
    pub fn remove(&mut self, addresses: &[IpAddr], at: UnixTime, auto_assigned: bool) {
        for ip in addresses {
            let r = self.removed.entry(*ip).or_insert(Removal { at, auto_assigned });
            r.at = r.at.min(at);
            r.auto_assigned |= auto_assigned;
        }
        while self.removed.len() > MAX_REMEMBERED {
            let oldest = self.removed.iter().min_by_key(|(ip, r)| (r.at, **ip)).map(|(ip, _)| *ip);
            oldest.map(|ip| self.removed.remove(&ip));
        }
        let gone: Vec<IpAddr> = addresses.iter().copied().filter(|a| !self.taken_since(*a, at)).collect();
        if at >= self.updated_at {
            self.eni.remove_addresses(&gone);
        }
        // Giving up nothing (a stop without a public address) changes no list.
        if !addresses.is_empty() {
            self.addresses_at = self.addresses_at.max(at);
        }
    }

    /// Remembers as given up at `at` what `before` listed and the record's
    /// lists, newer, do not (when exactly is not known): an auto-assigned
    /// address as such, so a stop or an Elastic IP learned later still
    /// ends it at its own time.
    pub fn remove_dropped(&mut self, before: &Eni, at: UnixTime) {
        let kept: Vec<IpAddr> = self.eni.addresses().collect();
        let was_auto: Vec<IpAddr> = before.auto_assigned().collect();
        let (auto, other): (Vec<IpAddr>, Vec<IpAddr>) =
            before.addresses().filter(|a| !kept.contains(a)).partition(|a| was_auto.contains(a));
        self.remove(&auto, at, true);
        self.remove(&other, at, false);
    }

    /// Whether a change took `address` at `at` or later: a removal at `at`
    /// does not end it (taken again in the same second is held, as closes
    /// sort before opens).
    pub fn taken_since(&self, address: IpAddr, at: UnixTime) -> bool {
        self.added.get(&address).is_some_and(|t| t.latest() >= at)
    }

    /// Whether a change at `at` giving the ENI `address` is outdated: the
    /// ENI gave it up later.
    pub fn removed_after(&self, address: IpAddr, at: UnixTime) -> bool {
        self.removed.get(&address).is_some_and(|r| r.at > at)
    }

    /// The `addresses` the ENI still held up to `until`, having held them
    /// at `since`: none it gave up in between (one given up at `until`
    /// itself, by what happened then or found gone by then, was).
    pub fn held_through(&self, addresses: &[IpAddr], since: UnixTime, until: UnixTime) -> Vec<IpAddr> {
        let given_up = |a: &IpAddr| self.removed.get(a).is_some_and(|r| r.at > since && r.at < until);
        addresses.iter().copied().filter(|a| !given_up(a)).collect()
    }

    /// Takes `address` at `at`, unless it was given up later.
    pub fn add(&mut self, address: IpAddr, at: UnixTime) {
        self.added.entry(address).or_insert_with(|| AddTimes(Vec::new())).insert(at);
        while self.added.len() > MAX_ADDED {
            let oldest = self.added.iter().min_by_key(|(ip, t)| (t.latest(), **ip)).map(|(ip, _)| *ip);
            oldest.map(|ip| self.added.remove(&ip));
        }
        if !self.removed_after(address, at) {
            self.removed.remove(&address);
            self.eni.add_address(address);
            self.addresses_at = self.addresses_at.max(at);
        }
    }

    /// Remembers an association of `allocation_id` at `at` whose address is
    /// not known yet; the earliest wins.
    pub fn await_allocation(&mut self, allocation_id: &str, at: UnixTime) {
        let t = self.awaiting.entry(allocation_id.to_owned()).or_insert(at);
        *t = (*t).min(at);
        while self.awaiting.len() > MAX_REMEMBERED {
            let oldest = self.awaiting.iter().min_by_key(|(id, t)| (**t, *id)).map(|(id, _)| id.clone());
            oldest.map(|id| self.awaiting.remove(&id));
        }
    }

    /// Since when the ENI has been attached as it is now, as far as the
    /// record tells: its attachment's start (an attach, or the first
    /// description showing it); bare, its latest detach; else (never seen
    /// attached) ever since it was known. Before that, the record's owner
    /// is not the ENI's.
    pub fn attached_since(&self) -> UnixTime {
        let attachment = |id: &String| self.attachments.get(id).map(|a| a.at);
        match (&self.eni.instance_id, &self.eni.attachment_id) {
            (Some(_), Some(id)) => attachment(id).unwrap_or(self.updated_at),
            (Some(_), None) => self.updated_at,
            // Bare: since the latest detach; an attachment whose detach was
            // never seen ended by the description that shows it bare.
            (None, _) => self
                .attachments
                .values()
                .map(|a| a.detached_at.unwrap_or(self.updated_at))
                .max()
                .unwrap_or(UnixTime(i64::MIN)),
        }
    }

    /// Whether `attachment_id` is, or was, this ENI's.
    pub fn has_attachment(&self, attachment_id: &str) -> bool {
        self.eni.attachment_id.as_deref() == Some(attachment_id) || self.attachments.contains_key(attachment_id)
    }

    /// Every name the ENI is found by.
    pub fn references(&self) -> Vec<EniRef> {
        let mut refs = vec![EniRef::Id(self.eni.eni_id.clone())];
        let attachments = self.eni.attachment_id.iter().chain(self.attachments.keys());
        let mut seen = std::collections::BTreeSet::new();
        refs.extend(attachments.filter(|a| seen.insert(a.as_str())).map(|a| EniRef::Attachment(a.clone())));
        refs.extend(self.associations.keys().map(|a| EniRef::Association(a.clone())));
        refs
    }
}

/// Whether a conditional write of an ENI record went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum EniWrite {
    Written,
    /// Another writer stored a newer version since this one was read.
    Conflict,
}

/// What the store remembers of one instance's lifecycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRecord {
    pub instance_id: String,
    /// The newest state change seen, and when.
    pub running: bool,
    pub changed_at: UnixTime,
}

/// One fact about an instance's past that later changes need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceNote {
    /// It stopped: an interface learned later releases its auto-assigned
    /// addresses at the first stop after it was described.
    Stopped(UnixTime),
    /// The ENI was attached to it: its tags complete the owners of the
    /// instance's other ENIs, also those attached before it was known.
    Interface(String),
}

/// Everything noted of an instance, each list sorted and without repeats.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceNotes {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stops: Vec<UnixTime>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<String>,
}

impl InstanceNotes {
    /// Adds a note, keeping the lists sorted and without repeats.
    pub fn add(&mut self, note: &InstanceNote) {
        fn insert<T: Ord + Clone>(list: &mut Vec<T>, item: &T) {
            if let Err(i) = list.binary_search(item) {
                list.insert(i, item.clone());
            }
        }
        match note {
            InstanceNote::Stopped(at) => insert(&mut self.stops, at),
            InstanceNote::Interface(id) => insert(&mut self.interfaces, id),
        }
    }
}

/// The latest part of an address's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Head {
    pub timeline: Timeline,
    /// Whether `timeline` is the whole history (nothing older exists).
    pub complete: bool,
    /// Evidence of how long its holders kept the address ([`Sighting`]).
    pub seen: Vec<Sighting>,
}

impl Head {
    /// The head of an address the store knows nothing of.
    pub fn default_complete() -> Head {
        Head { timeline: Timeline::new(), complete: true, seen: Vec::new() }
    }
}

/// How an ENI is found.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "by", content = "id", rename_all = "snake_case")]
pub enum EniRef {
    Id(String),
    Attachment(String),
    Association(String),
}

impl std::fmt::Display for EniRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EniRef::Id(id) | EniRef::Attachment(id) | EniRef::Association(id) => f.write_str(id),
        }
    }
}

/// A store failure: [`Failure`](crate::Failure), the one error type of
/// every backend.
pub type StoreError = crate::Failure;

pub type StoreResult<T> = Result<T, StoreError>;

/// The time-ranged IP ownership table. Writes are idempotent: replaying any
/// call leaves the table as it was after the first.
pub trait OwnershipStore: Send + Sync {
    /// Adds marks (facts) to address timelines.
    fn put_marks(&self, marks: &[(AddressKey, Mark)]) -> impl Future<Output = StoreResult<()>> + Send;

    /// The owner of each (address, time), in order; `None` when nobody owned
    /// the address then, or nothing is known.
    fn lookup(
        &self,
        queries: &[(AddressKey, UnixTime)],
    ) -> impl Future<Output = StoreResult<Vec<Option<Owner>>>> + Send;

    /// The latest marks of each address, with whether they are its whole
    /// history: what a cache keeps. One round trip per 100 keys on DynamoDB.
    /// The default reads whole timelines.
    fn heads(&self, keys: &[AddressKey]) -> impl Future<Output = StoreResult<Vec<Head>>> + Send {
        async move {
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                out.push(Head { timeline: self.timeline(key).await?, complete: true, seen: Vec::new() });
            }
            Ok(out)
        }
    }

    /// Records evidence that ENIs held addresses ([`Sighting`]), kept with
    /// the address's head: the latest per ENI and attachment. Evidence may
    /// be lost to a concurrent write (knowing less is safe), never invented;
    /// sightings of addresses the table has no history for are dropped.
    fn put_seen(&self, seen: &[(AddressKey, Sighting)]) -> impl Future<Output = StoreResult<()>> + Send;

    /// Notes that a reconcile described `scope` ([`scope_label`]) as of
    /// `at`; a scope's time only moves forward.
    fn note_reconciled(&self, scope: &str, at: UnixTime) -> impl Future<Output = StoreResult<()>> + Send;

    /// Every scope's latest reconcile: what [`horizon`] is computed from.
    fn reconciled(&self) -> impl Future<Output = StoreResult<Vec<(String, UnixTime)>>> + Send;

    /// The full timeline of one address.
    fn timeline(&self, key: &AddressKey) -> impl Future<Output = StoreResult<Timeline>> + Send;

    /// Every address with its timeline (for dump and reconcile).
    fn timelines(&self) -> impl Future<Output = StoreResult<Vec<(AddressKey, Timeline)>>> + Send;

    fn eni(&self, by: &EniRef) -> impl Future<Output = StoreResult<Option<EniRecord>>> + Send;

    /// Several ENI records by id, in order (`None` where unknown). One
    /// round trip per 100 ids on DynamoDB; the default asks one by one.
    fn enis_by_id(&self, ids: &[String]) -> impl Future<Output = StoreResult<Vec<Option<EniRecord>>>> + Send {
        async move {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                out.push(self.eni(&EniRef::Id(id.clone())).await?);
            }
            Ok(out)
        }
    }

    /// The ENIs last seen attached to an instance.
    fn enis_of_instance(&self, instance_id: &str) -> impl Future<Output = StoreResult<Vec<EniRecord>>> + Send;

    /// Every ENI record (for reconcile).
    fn enis(&self) -> impl Future<Output = StoreResult<Vec<EniRecord>>> + Send;

    /// Stores the record as version `record.version + 1` if the stored
    /// version is still `record.version` (0: none stored); otherwise
    /// nothing changes and the caller reads again.
    fn put_eni(&self, record: &EniRecord) -> impl Future<Output = StoreResult<EniWrite>> + Send;

    /// Keeps a change that names an ENI (or attachment, association) the
    /// table does not know yet, until it does.
    fn put_pending(&self, reference: &EniRef, change: &Change) -> impl Future<Output = StoreResult<()>> + Send;

    /// The changes kept for `reference`.
    fn pending(&self, reference: &EniRef) -> impl Future<Output = StoreResult<Vec<Change>>> + Send;

    /// Forgets kept changes once applied.
    fn forget_pending(&self, reference: &EniRef, changes: &[Change]) -> impl Future<Output = StoreResult<()>> + Send;

    /// Adds a fact to an instance's notes (a set that only grows, so
    /// concurrent and repeated notes all stay).
    fn note_instance(&self, instance_id: &str, note: &InstanceNote) -> impl Future<Output = StoreResult<()>> + Send;

    /// Everything noted of an instance.
    fn instance_notes(&self, instance_id: &str) -> impl Future<Output = StoreResult<InstanceNotes>> + Send;

    fn instance(&self, instance_id: &str) -> impl Future<Output = StoreResult<Option<InstanceRecord>>> + Send;

    /// Stores the record unless what is stored says more: going away is
    /// final (a down record replaces a running one whatever their times),
    /// of two downs the earliest wins, of two running records the newest.
    fn put_instance(&self, record: &InstanceRecord) -> impl Future<Output = StoreResult<()>> + Send;

    /// How many requests (round trips) the store has made since it was
    /// made: a counter that only grows; callers diff it around the calls
    /// they measure. What one request is belongs to the store (DynamoDB:
    /// every request sent; the embedded store: every call). The default,
    /// for a store that does not count, stays 0.
    fn calls(&self) -> u64 {
        0
    }
}

/// A borrowed store is a store: lets a handler work on a store its caller
/// keeps (the CLI saves the embedded store afterwards).
impl<S: OwnershipStore> OwnershipStore for &S {
    fn put_marks(&self, marks: &[(AddressKey, Mark)]) -> impl Future<Output = StoreResult<()>> + Send {
        (**self).put_marks(marks)
    }
    fn lookup(
        &self,
        queries: &[(AddressKey, UnixTime)],
    ) -> impl Future<Output = StoreResult<Vec<Option<Owner>>>> + Send {
        (**self).lookup(queries)
    }
    fn heads(&self, keys: &[AddressKey]) -> impl Future<Output = StoreResult<Vec<Head>>> + Send {
        (**self).heads(keys)
    }
    fn put_seen(&self, seen: &[(AddressKey, Sighting)]) -> impl Future<Output = StoreResult<()>> + Send {
        (**self).put_seen(seen)
    }
    fn note_reconciled(&self, scope: &str, at: UnixTime) -> impl Future<Output = StoreResult<()>> + Send {
        (**self).note_reconciled(scope, at)
    }
    fn reconciled(&self) -> impl Future<Output = StoreResult<Vec<(String, UnixTime)>>> + Send {
        (**self).reconciled()
    }
    fn timeline(&self, key: &AddressKey) -> impl Future<Output = StoreResult<Timeline>> + Send {
        (**self).timeline(key)
    }
    fn timelines(&self) -> impl Future<Output = StoreResult<Vec<(AddressKey, Timeline)>>> + Send {
        (**self).timelines()
    }
    fn eni(&self, by: &EniRef) -> impl Future<Output = StoreResult<Option<EniRecord>>> + Send {
        (**self).eni(by)
    }
    fn enis_by_id(&self, ids: &[String]) -> impl Future<Output = StoreResult<Vec<Option<EniRecord>>>> + Send {
        (**self).enis_by_id(ids)
    }
    fn enis_of_instance(&self, instance_id: &str) -> impl Future<Output = StoreResult<Vec<EniRecord>>> + Send {
        (**self).enis_of_instance(instance_id)
    }
    fn enis(&self) -> impl Future<Output = StoreResult<Vec<EniRecord>>> + Send {
        (**self).enis()
    }
    fn put_eni(&self, record: &EniRecord) -> impl Future<Output = StoreResult<EniWrite>> + Send {
        (**self).put_eni(record)
    }
    fn put_pending(&self, reference: &EniRef, change: &Change) -> impl Future<Output = StoreResult<()>> + Send {
        (**self).put_pending(reference, change)
    }
    fn pending(&self, reference: &EniRef) -> impl Future<Output = StoreResult<Vec<Change>>> + Send {
        (**self).pending(reference)
    }
    fn forget_pending(&self, reference: &EniRef, changes: &[Change]) -> impl Future<Output = StoreResult<()>> + Send {
        (**self).forget_pending(reference, changes)
    }
    fn note_instance(&self, instance_id: &str, note: &InstanceNote) -> impl Future<Output = StoreResult<()>> + Send {
        (**self).note_instance(instance_id, note)
    }
    fn instance_notes(&self, instance_id: &str) -> impl Future<Output = StoreResult<InstanceNotes>> + Send {
        (**self).instance_notes(instance_id)
    }
    fn instance(&self, instance_id: &str) -> impl Future<Output = StoreResult<Option<InstanceRecord>>> + Send {
        (**self).instance(instance_id)
    }
    fn put_instance(&self, record: &InstanceRecord) -> impl Future<Output = StoreResult<()>> + Send {
        (**self).put_instance(record)
    }
    fn calls(&self) -> u64 {
        (**self).calls()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attached_since_is_the_start_of_what_the_record_says_now() {
        let mut r = EniRecord::new(Eni::new("eni-1"), UnixTime(100));
        assert_eq!(r.attached_since(), UnixTime(i64::MIN), "never seen attached");
        r.remember_attachment("att-1", "i-1", UnixTime(200), true);
        r.eni.instance_id = Some("i-1".into());
        r.eni.attachment_id = Some("att-1".into());
        assert_eq!(r.attached_since(), UnixTime(200));
        // Detached, then described bare.
        r.attachments.get_mut("att-1").unwrap().detached_at = Some(UnixTime(300));
        r.eni.instance_id = None;
        r.eni.attachment_id = None;
        assert_eq!(r.attached_since(), UnixTime(300));
        // Described attached, by an attachment it had not seen: as of the
        // description.
        r.eni.instance_id = Some("i-2".into());
        r.updated_at = UnixTime(500);
        assert_eq!(r.attached_since(), UnixTime(500));
    }

    /// An address taken once is stored as before (a number), so records
    /// read the same by earlier builds; takings again make a list, newest
    /// [`MAX_ADD_TIMES`], and both forms read back.
    #[test]
    fn add_times_keep_the_one_taking_form_and_the_newest_takings() {
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        let mut r = EniRecord::new(Eni::new("eni-1"), UnixTime(100));
        r.add(ip, UnixTime(150));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["added"]["10.0.0.5"], serde_json::json!(150));
        assert_eq!(serde_json::from_value::<EniRecord>(json).unwrap(), r);

        for t in [150, 120, 300, 200, 250, 400] {
            r.add(ip, UnixTime(t));
        }
        let times: Vec<i64> = r.added[&ip].iter().map(|t| t.0).collect();
        assert_eq!(times, vec![200, 250, 300, 400], "newest four, in order");
        assert_eq!(r.added[&ip].latest(), UnixTime(400));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["added"]["10.0.0.5"], serde_json::json!([200, 250, 300, 400]));
        assert_eq!(serde_json::from_value::<EniRecord>(json).unwrap(), r);

        let mut empty = serde_json::to_value(&r).unwrap();
        empty["added"]["10.0.0.5"] = serde_json::json!([]);
        assert!(serde_json::from_value::<EniRecord>(empty).is_err(), "an address taken at no time");
    }
}
