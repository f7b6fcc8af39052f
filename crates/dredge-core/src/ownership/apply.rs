//! Applying ownership changes and snapshots to a store: the logic the
//! ownership Lambda and `dredge ownership apply/import` share.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde::Serialize;

use super::change::Change;
use super::eni::{merge_tags, push_unique, Eni};
use super::owner::{TagPolicy, ASG_TAG};
use super::scope::Scope;
use super::store::{EniRecord, EniRef, InstanceRecord, OwnershipStore, StoreResult};
use super::time::UnixTime;
use super::timeline::{AddressKey, Mark};

/// What applying one change did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Marks written (possibly zero: nothing to change).
    Applied { opened: usize, closed: usize, unscoped: usize },
    /// The change names an ENI (or attachment, association) the table does
    /// not know; a reconcile will catch up.
    UnknownEni { reference: String },
    /// The instance came back but the table knows none of its ENIs: the
    /// caller should describe it (EC2) and apply what it finds.
    NeedsDescribe { instance_id: String },
    /// Marks written, and what the change implies only a describe of the
    /// instance tells (a restart's or a disassociation's new auto-assigned
    /// public address, an Elastic IP named by its allocation only, an ENI
    /// attached before the table knew it): the caller should describe it.
    AppliedThenDescribe { opened: usize, closed: usize, unscoped: usize, instance_id: String },
    /// Nothing to do, and why.
    Ignored { reason: String },
}

/// Counters over many changes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ApplyStats {
    pub changes: u64,
    pub opened: u64,
    pub closed: u64,
    /// Private addresses skipped because their VPC is unknown.
    pub unscoped: u64,
    pub unknown_eni: u64,
    pub needs_describe: u64,
    pub ignored: u64,
}

impl ApplyStats {
    pub fn record(&mut self, outcome: &Outcome) {
        self.changes += 1;
        match outcome {
            Outcome::Applied { opened, closed, unscoped } => {
                self.opened += *opened as u64;
                self.closed += *closed as u64;
                self.unscoped += *unscoped as u64;
            }
            Outcome::UnknownEni { .. } => self.unknown_eni += 1,
            Outcome::NeedsDescribe { .. } => self.needs_describe += 1,
            Outcome::AppliedThenDescribe { opened, closed, unscoped, .. } => {
                self.opened += *opened as u64;
                self.closed += *closed as u64;
                self.unscoped += *unscoped as u64;
                self.needs_describe += 1;
            }
            Outcome::Ignored { .. } => self.ignored += 1,
        }
    }
}

/// Which part of the world a snapshot describes: reconcile closes only
/// owners inside it, so one account's snapshot never closes another's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotScope {
    pub account_id: Option<String>,
    pub region: Option<String>,
}

impl SnapshotScope {
    fn covers(&self, account: Option<&str>, region: Option<&str>) -> bool {
        let matches = |want: &Option<String>, have: Option<&str>| match (want, have) {
            (Some(w), Some(h)) => w == h,
            _ => true,
        };
        matches(&self.account_id, account) && matches(&self.region, region)
    }
}

/// What a reconcile did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReconcileStats {
    pub enis: u64,
    pub addresses: u64,
    /// Addresses whose table owner already agreed with the snapshot.
    pub unchanged: u64,
    pub opened: u64,
    pub closed: u64,
    pub unscoped: u64,
}

/// Applies changes to a store under a tag policy.
pub struct Applier<'s, S> {
    store: &'s S,
    policy: TagPolicy,
}

#[derive(Default)]
struct Marks {
    marks: Vec<(AddressKey, Mark)>,
    opened: usize,
    closed: usize,
    unscoped: usize,
}

impl Marks {
    fn key(&mut self, eni: &Eni, address: IpAddr) -> Option<AddressKey> {
        let key = Scope::of(address, eni.vpc_id.as_deref()).map(|s| AddressKey::new(s, address));
        if key.is_none() {
            self.unscoped += 1;
        }
        key
    }

    fn open(&mut self, eni: &Eni, policy: &TagPolicy, at: UnixTime, addresses: impl IntoIterator<Item = IpAddr>) {
        let owner = eni.owner(policy);
        for address in addresses {
            if let Some(key) = self.key(eni, address) {
                self.marks.push((key, Mark::Open { at, owner: owner.clone() }));
                self.opened += 1;
            }
        }
    }

    fn close(&mut self, eni: &Eni, at: UnixTime, addresses: impl IntoIterator<Item = IpAddr>) {
        for address in addresses {
            if let Some(key) = self.key(eni, address) {
                self.marks.push((key, Mark::Close { at, eni_id: eni.eni_id.clone() }));
                self.closed += 1;
            }
        }
    }

    fn outcome(&self) -> Outcome {
        Outcome::Applied { opened: self.opened, closed: self.closed, unscoped: self.unscoped }
    }

    fn then_describe(&self, instance_id: &str) -> Outcome {
        Outcome::AppliedThenDescribe {
            opened: self.opened,
            closed: self.closed,
            unscoped: self.unscoped,
            instance_id: instance_id.to_owned(),
        }
    }
}

impl<'s, S: OwnershipStore> Applier<'s, S> {
    pub fn new(store: &'s S, policy: TagPolicy) -> Self {
        Applier { store, policy }
    }

    async fn record_of(&self, eni_id: &str) -> StoreResult<Option<EniRecord>> {
        self.store.eni(&EniRef::Id(eni_id.to_owned())).await
    }

    /// Writes the marks, then the ENI record: if the record write fails the
    /// change is retried whole, and the marks are idempotent.
    async fn finish(&self, marks: Marks, record: Option<&EniRecord>) -> StoreResult<Outcome> {
        if !marks.marks.is_empty() {
            self.store.put_marks(&marks.marks).await?;
        }
        if let Some(r) = record {
            self.store.put_eni(r).await?;
        }
        Ok(marks.outcome())
    }

    /// [`Self::finish`], then asks for a describe of `instance_id` when there
    /// is one.
    async fn finish_then_describe(
        &self,
        marks: Marks,
        record: &EniRecord,
        instance_id: Option<&str>,
    ) -> StoreResult<Outcome> {
        let outcome = match instance_id {
            Some(i) => marks.then_describe(i),
            None => marks.outcome(),
        };
        self.finish(marks, Some(record)).await?;
        Ok(outcome)
    }

    /// Releases the auto-assigned public addresses of `record` at `at`:
    /// a stop, or an Elastic IP taking their place. An older change than
    /// what the record holds closes them but leaves the record.
    fn release_auto_assigned(record: &mut EniRecord, at: UnixTime, m: &mut Marks) {
        let released: Vec<IpAddr> = record.eni.auto_assigned().collect();
        m.close(&record.eni, at, released.iter().copied());
        if at >= record.updated_at {
            record.eni.remove_addresses(&released);
            record.updated_at = at;
        }
    }

    /// Closes, at the time they happened, releases that were learned before
    /// the opens they end: an ENI deleted or an instance stopped later than
    /// `at` but processed earlier.
    async fn close_known_later_ends(
        &self,
        record: &EniRecord,
        addresses: &[IpAddr],
        at: UnixTime,
        m: &mut Marks,
    ) -> StoreResult<()> {
        if let Some(deleted) = record.deleted_at.filter(|d| *d >= at) {
            m.close(&record.eni, deleted, addresses.iter().copied());
        }
        if let Some(instance_id) = &record.eni.instance_id {
            if let Some(inst) = self.store.instance(instance_id).await? {
                if !inst.running && inst.changed_at >= at {
                    m.close(&record.eni, inst.changed_at, addresses.iter().copied());
                }
            }
        }
        Ok(())
    }

    /// Applies one change.
    pub async fn apply(&self, change: &Change) -> StoreResult<Outcome> {
        // On the heap: with a store's own futures inside (DynamoDB's are
        // large), the state of one change would crowd its caller's stack.
        Box::pin(self.apply_one(change)).await
    }

    async fn apply_one(&self, change: &Change) -> StoreResult<Outcome> {
        let mut m = Marks::default();
        match change {
            Change::EniUp { at, eni } => {
                let existing = self.record_of(&eni.eni_id).await?;
                let mut described = (**eni).clone();
                if let Some(old) = &existing {
                    described.fill_from(&old.eni);
                }
                let addresses: Vec<IpAddr> = described.addresses().collect();
                m.open(&described, &self.policy, *at, addresses.iter().copied());
                let record = match existing {
                    // A newer event (or a deletion) already described it:
                    // keep that, completed from this older description.
                    Some(mut newer) if newer.updated_at > *at => {
                        newer.eni.fill_from(&described);
                        if newer.eni.addresses().next().is_none() {
                            newer.eni.private_addresses = described.private_addresses;
                            newer.eni.public_addresses = described.public_addresses;
                        }
                        newer
                    }
                    Some(old) => EniRecord { eni: described, updated_at: *at, ..old },
                    None => EniRecord::new(described, *at),
                };
                self.close_known_later_ends(&record, &addresses, *at, &mut m).await?;
                self.finish(m, Some(&record)).await
            }
            Change::EniDeleted { at, eni_id } => {
                let mut record =
                    self.record_of(eni_id).await?.unwrap_or_else(|| EniRecord::new(Eni::new(eni_id.clone()), *at));
                m.close(&record.eni, *at, record.eni.addresses().collect::<Vec<_>>());
                record.deleted_at = Some(record.deleted_at.map_or(*at, |d| d.min(*at)));
                self.finish(m, Some(&record)).await
            }
            Change::Attached { at, eni_id, instance_id, attachment_id } => {
                // Attached before its creation reached the table: the
                // instance's describe shows it, attached.
                let Some(mut record) = self.record_of(eni_id).await? else {
                    return Ok(Outcome::NeedsDescribe { instance_id: instance_id.clone() });
                };
                if *at >= record.updated_at {
                    record.eni.instance_id = Some(instance_id.clone());
                    record.eni.attachment_id = attachment_id.clone();
                    record.updated_at = *at;
                    // The instance's tags (its ASG) live on its other ENIs.
                    for sibling in self.store.enis_of_instance(instance_id).await? {
                        merge_tags(&mut record.eni.tags, &sibling.eni.tags);
                    }
                }
                let addresses: Vec<IpAddr> = record.eni.addresses().collect();
                m.open(&record.eni, &self.policy, *at, addresses.iter().copied());
                self.close_known_later_ends(&record, &addresses, *at, &mut m).await?;
                self.finish(m, Some(&record)).await
            }
            Change::Detached { at, attachment_id } => {
                let Some(mut record) = self.store.eni(&EniRef::Attachment(attachment_id.clone())).await? else {
                    return Ok(Outcome::UnknownEni { reference: attachment_id.clone() });
                };
                if *at >= record.updated_at {
                    // A detached ENI belongs to no instance: drop what it
                    // took from the instance (the tags its other ENIs share,
                    // the auto scaling group), keep its own.
                    if let Some(instance) = record.eni.instance_id.take() {
                        for sibling in self.store.enis_of_instance(&instance).await? {
                            if sibling.eni.eni_id != record.eni.eni_id {
                                record.eni.tags.retain(|k, v| sibling.eni.tags.get(k) != Some(v));
                            }
                        }
                    }
                    record.eni.attachment_id = None;
                    record.eni.tags.remove(ASG_TAG);
                    record.updated_at = *at;
                    // Still holds its addresses, now as a bare interface.
                    m.open(&record.eni, &self.policy, *at, record.eni.addresses().collect::<Vec<_>>());
                }
                self.finish(m, Some(&record)).await
            }
            Change::AddressesAssigned { at, eni_id, addresses } => {
                let Some(mut record) = self.record_of(eni_id).await? else {
                    return Ok(Outcome::UnknownEni { reference: eni_id.clone() });
                };
                m.open(&record.eni, &self.policy, *at, addresses.iter().copied());
                for address in addresses {
                    record.eni.add_address(*address);
                }
                self.finish(m, Some(&record)).await
            }
            Change::AddressesUnassigned { at, eni_id, addresses } => {
                let Some(mut record) = self.record_of(eni_id).await? else {
                    return Ok(Outcome::UnknownEni { reference: eni_id.clone() });
                };
                m.close(&record.eni, *at, addresses.iter().copied());
                record.eni.private_addresses.retain(|a| !addresses.contains(a));
                record.eni.public_addresses.retain(|a| !addresses.contains(a));
                self.finish(m, Some(&record)).await
            }
            Change::PublicAssociated { at, public_ip, association_id, eni_id, instance_id, .. } => {
                let record = match (eni_id, instance_id) {
                    (Some(id), _) => self.record_of(id).await?,
                    // An instance's association goes to its primary ENI;
                    // without device indexes, the one holding the instance's
                    // primary private address is not known, so require a
                    // single ENI rather than guess.
                    (None, Some(instance)) => {
                        let mut enis = self.store.enis_of_instance(instance).await?;
                        if enis.len() == 1 {
                            enis.pop()
                        } else {
                            return Ok(Outcome::UnknownEni { reference: format!("primary ENI of {instance}") });
                        }
                    }
                    (None, None) => None,
                };
                let Some(mut record) = record else {
                    let reference = eni_id.clone().or_else(|| instance_id.clone()).unwrap_or_default();
                    return Ok(Outcome::UnknownEni { reference });
                };
                // The Elastic IP takes the auto-assigned address's place.
                Self::release_auto_assigned(&mut record, *at, &mut m);
                let instance = record.eni.instance_id.clone();
                let Some(public_ip) = public_ip else {
                    // Named by its allocation only: a describe tells the address.
                    return self.finish_then_describe(m, &record, instance.as_deref()).await;
                };
                m.open(&record.eni, &self.policy, *at, [*public_ip]);
                push_unique(&mut record.eni.public_addresses, *public_ip);
                push_unique(&mut record.eni.elastic_addresses, *public_ip);
                if let Some(assoc) = association_id {
                    record.associations.insert(assoc.clone(), *public_ip);
                }
                self.finish(m, Some(&record)).await
            }
            Change::PublicDisassociated { at, association_id, public_ip } => {
                let mut found = match association_id {
                    Some(a) => self.store.eni(&EniRef::Association(a.clone())).await?,
                    None => None,
                };
                if found.is_none() {
                    if let Some(ip) = public_ip {
                        let key = AddressKey::new(Scope::Global, *ip);
                        if let Some(owner) = self.store.timeline(&key).await?.current() {
                            found = self.record_of(&owner.eni_id).await?;
                        }
                    }
                }
                let Some(mut record) = found else {
                    let reference = association_id.clone().or(public_ip.map(|ip| ip.to_string())).unwrap_or_default();
                    return Ok(Outcome::UnknownEni { reference });
                };
                let ip = association_id.as_ref().and_then(|a| record.associations.remove(a)).or(*public_ip);
                let Some(ip) = ip else {
                    return Ok(Outcome::Ignored { reason: "association's public IP is not known".into() });
                };
                m.close(&record.eni, *at, [ip]);
                record.eni.remove_addresses(&[ip]);
                // EC2 gives an instance's interface a new auto-assigned
                // address within minutes; only a describe tells which.
                let instance = record.eni.instance_id.clone();
                self.finish_then_describe(m, &record, instance.as_deref()).await
            }
            Change::InstanceDown { at, instance_id } => {
                self.store
                    .put_instance(&InstanceRecord { instance_id: instance_id.clone(), running: false, changed_at: *at })
                    .await?;
                for record in self.store.enis_of_instance(instance_id).await? {
                    m.close(&record.eni, *at, record.eni.addresses().collect::<Vec<_>>());
                }
                self.finish(m, None).await
            }
            Change::InstanceStopped { at, instance_id } => {
                let mut records = self.store.enis_of_instance(instance_id).await?;
                for record in &mut records {
                    Self::release_auto_assigned(record, *at, &mut m);
                }
                let outcome = m.outcome();
                // Marks first: if a record write fails the change is retried.
                self.finish(m, None).await?;
                for record in &records {
                    self.store.put_eni(record).await?;
                }
                Ok(outcome)
            }
            Change::InstanceUp { at, instance_id } => {
                self.store
                    .put_instance(&InstanceRecord { instance_id: instance_id.clone(), running: true, changed_at: *at })
                    .await?;
                let records = self.store.enis_of_instance(instance_id).await?;
                if records.is_empty() {
                    return Ok(Outcome::NeedsDescribe { instance_id: instance_id.clone() });
                }
                for record in &records {
                    m.open(&record.eni, &self.policy, *at, record.eni.addresses().collect::<Vec<_>>());
                }
                // A restart brings a new auto-assigned public address.
                let outcome = m.then_describe(instance_id);
                self.finish(m, None).await?;
                Ok(outcome)
            }
        }
    }

    /// Makes the table agree with a snapshot of every ENI taken at `at`:
    /// opens what is missing or owned differently, closes what is gone.
    /// Only owners inside `scope` are closed.
    pub async fn reconcile(&self, enis: &[Eni], at: UnixTime, scope: &SnapshotScope) -> StoreResult<ReconcileStats> {
        Box::pin(self.reconcile_all(enis, at, scope)).await
    }

    async fn reconcile_all(&self, enis: &[Eni], at: UnixTime, scope: &SnapshotScope) -> StoreResult<ReconcileStats> {
        let mut stats = ReconcileStats { enis: enis.len() as u64, ..ReconcileStats::default() };
        let mut m = Marks::default();
        let mut seen: BTreeSet<AddressKey> = BTreeSet::new();
        let mut queries = Vec::new();
        let mut wanted = Vec::new();
        for eni in enis {
            let owner = eni.owner(&self.policy);
            for address in eni.addresses() {
                stats.addresses += 1;
                if let Some(key) = m.key(eni, address) {
                    seen.insert(key.clone());
                    queries.push((key.clone(), at));
                    wanted.push((key, owner.clone()));
                }
            }
        }
        let current = self.store.lookup(&queries).await?;
        for ((key, owner), have) in wanted.into_iter().zip(current) {
            if have.as_ref() == Some(&owner) {
                stats.unchanged += 1;
            } else {
                m.marks.push((key, Mark::Open { at, owner }));
                m.opened += 1;
            }
        }
        for (key, timeline) in self.store.timelines().await? {
            if seen.contains(&key) {
                continue;
            }
            if let Some(owner) = timeline.owner_at(at) {
                if scope.covers(owner.account_id.as_deref(), owner.region.as_deref()) {
                    m.marks.push((key, Mark::Close { at, eni_id: owner.eni_id.clone() }));
                    m.closed += 1;
                }
            }
        }
        stats.opened = m.opened as u64;
        stats.closed = m.closed as u64;
        stats.unscoped = m.unscoped as u64;
        self.finish(m, None).await?;
        for eni in enis {
            let record = match self.record_of(&eni.eni_id).await? {
                Some(old) if old.updated_at > at => continue,
                Some(old) => EniRecord { eni: eni.clone(), updated_at: at, deleted_at: None, ..old },
                None => EniRecord::new(eni.clone(), at),
            };
            self.store.put_eni(&record).await?;
        }
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ownership::testing::ready;
    use crate::ownership::MemoryStore;

    const VPC: &str = "vpc-1";

    fn eni(id: &str, instance: &str, asg: &str, addrs: &[&str]) -> Eni {
        let mut e = Eni::new(id);
        e.vpc_id = Some(VPC.into());
        e.account_id = Some("123456789012".into());
        e.region = Some("us-east-1".into());
        e.instance_id = Some(instance.into());
        e.attachment_id = Some(format!("eni-attach-{id}"));
        e.tags.insert(ASG_TAG.into(), asg.into());
        e.private_addresses = addrs.iter().map(|a| a.parse().unwrap()).collect();
        e
    }

    fn up(at: i64, e: &Eni) -> Change {
        Change::EniUp { at: UnixTime(at), eni: Box::new(e.clone()) }
    }

    fn down(at: i64, instance: &str) -> Change {
        Change::InstanceDown { at: UnixTime(at), instance_id: instance.into() }
    }

    fn app_at(store: &MemoryStore, addr: &str, at: i64) -> Option<String> {
        let key = AddressKey::new(Scope::Vpc(VPC.into()), addr.parse().unwrap());
        ready(store.lookup(&[(key, UnixTime(at))])).unwrap().pop().flatten().and_then(|o| o.app)
    }

    /// Address 10.0.0.5: app x from 100, x's instance gone at 200, app y
    /// from 300. Every delivery order, then every change delivered again,
    /// gives the same answers.
    #[test]
    fn release_and_reuse_converge_in_any_order() {
        let x = eni("eni-x", "i-x", "x-prod-v001", &["10.0.0.5"]);
        let y = eni("eni-y", "i-y", "y-prod-v001", &["10.0.0.5"]);
        let changes = [up(100, &x), down(200, "i-x"), up(300, &y)];
        let orders = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
        for order in orders {
            let store = MemoryStore::new();
            let applier = Applier::new(&store, TagPolicy::default());
            for i in order.iter().chain(order.iter()) {
                ready(applier.apply(&changes[*i])).unwrap();
            }
            let seen: Vec<_> = [50, 100, 199, 200, 250, 300, 400].map(|t| app_at(&store, "10.0.0.5", t)).into();
            let want = [None, Some("x"), Some("x"), None, None, Some("y"), Some("y")].map(|a| a.map(String::from));
            assert_eq!(seen, want, "order {order:?}");
        }
    }

    #[test]
    fn deletion_learned_before_creation_still_ends_the_interval() {
        let store = MemoryStore::new();
        let applier = Applier::new(&store, TagPolicy::default());
        let x = eni("eni-x", "i-x", "x-prod-v001", &["10.0.0.7"]);
        ready(applier.apply(&Change::EniDeleted { at: UnixTime(500), eni_id: "eni-x".into() })).unwrap();
        ready(applier.apply(&up(100, &x))).unwrap();
        assert_eq!(app_at(&store, "10.0.0.7", 300).as_deref(), Some("x"));
        assert_eq!(app_at(&store, "10.0.0.7", 600), None);
    }

    #[test]
    fn running_again_reopens_from_what_the_table_knows() {
        let store = MemoryStore::new();
        let applier = Applier::new(&store, TagPolicy::default());
        ready(applier.apply(&up(100, &eni("eni-x", "i-x", "x-prod-v001", &["10.0.0.8"])))).unwrap();
        ready(applier.apply(&down(200, "i-x"))).unwrap();
        let outcome = ready(applier.apply(&Change::InstanceUp { at: UnixTime(300), instance_id: "i-x".into() }));
        // What it held opens again; its new public address needs a describe.
        let expected = Outcome::AppliedThenDescribe { opened: 1, closed: 0, unscoped: 0, instance_id: "i-x".into() };
        assert_eq!(outcome.unwrap(), expected);
        assert_eq!(app_at(&store, "10.0.0.8", 250), None);
        assert_eq!(app_at(&store, "10.0.0.8", 300).as_deref(), Some("x"));
        let unknown = ready(applier.apply(&Change::InstanceUp { at: UnixTime(300), instance_id: "i-new".into() }));
        assert_eq!(unknown.unwrap(), Outcome::NeedsDescribe { instance_id: "i-new".into() });
    }

    #[test]
    fn assign_unassign_and_detach() {
        let store = MemoryStore::new();
        let applier = Applier::new(&store, TagPolicy::default());
        ready(applier.apply(&up(100, &eni("eni-x", "i-x", "x-prod-v001", &["10.0.0.9"])))).unwrap();
        let extra: IpAddr = "10.0.0.10".parse().unwrap();
        let assigned = Change::AddressesAssigned { at: UnixTime(150), eni_id: "eni-x".into(), addresses: vec![extra] };
        ready(applier.apply(&assigned)).unwrap();
        assert_eq!(app_at(&store, "10.0.0.10", 160).as_deref(), Some("x"));
        let unassigned =
            Change::AddressesUnassigned { at: UnixTime(170), eni_id: "eni-x".into(), addresses: vec![extra] };
        ready(applier.apply(&unassigned)).unwrap();
        assert_eq!(app_at(&store, "10.0.0.10", 180), None);
        ready(applier.apply(&Change::Detached { at: UnixTime(200), attachment_id: "eni-attach-eni-x".into() }))
            .unwrap();
        // Detached: the ENI keeps its address, but no instance or app.
        let key = AddressKey::new(Scope::Vpc(VPC.into()), "10.0.0.9".parse().unwrap());
        let owner = ready(store.lookup(&[(key, UnixTime(250))])).unwrap().pop().flatten().unwrap();
        assert_eq!((owner.eni_id.as_str(), owner.instance_id, owner.app), ("eni-x", None, None));
        let unknown = ready(applier.apply(&Change::Detached { at: UnixTime(1), attachment_id: "nope".into() }));
        assert_eq!(unknown.unwrap(), Outcome::UnknownEni { reference: "nope".into() });
    }

    #[test]
    fn public_addresses_follow_associations() {
        let store = MemoryStore::new();
        let applier = Applier::new(&store, TagPolicy::default());
        ready(applier.apply(&up(100, &eni("eni-x", "i-x", "x-prod-v001", &["10.0.0.11"])))).unwrap();
        let public: IpAddr = "54.1.2.3".parse().unwrap();
        let assoc = Change::PublicAssociated {
            at: UnixTime(150),
            public_ip: Some(public),
            allocation_id: Some("eipalloc-1".into()),
            association_id: Some("eipassoc-1".into()),
            eni_id: None,
            instance_id: Some("i-x".into()),
        };
        ready(applier.apply(&assoc)).unwrap();
        let key = AddressKey::new(Scope::Global, public);
        let owner_at = |t| ready(store.lookup(&[(key.clone(), UnixTime(t))])).unwrap().pop().flatten();
        assert_eq!(owner_at(160).and_then(|o| o.app).as_deref(), Some("x"));
        let dis = Change::PublicDisassociated {
            at: UnixTime(200),
            association_id: Some("eipassoc-1".into()),
            public_ip: None,
        };
        // The interface's new auto-assigned address needs a describe.
        let expected = Outcome::AppliedThenDescribe { opened: 0, closed: 1, unscoped: 0, instance_id: "i-x".into() };
        assert_eq!(ready(applier.apply(&dis)).unwrap(), expected);
        assert_eq!(owner_at(210), None);
    }

    fn public_owner(store: &MemoryStore, ip: &str, t: i64) -> Option<String> {
        let key = AddressKey::new(Scope::Global, ip.parse().unwrap());
        ready(store.lookup(&[(key, UnixTime(t))])).unwrap().pop().flatten().and_then(|o| o.app)
    }

    fn with_public(mut e: Eni, auto: &str, elastic: Option<&str>) -> Eni {
        e.public_addresses.push(auto.parse().unwrap());
        if let Some(ip) = elastic {
            e.public_addresses.push(ip.parse().unwrap());
            e.elastic_addresses.push(ip.parse().unwrap());
        }
        e
    }

    #[test]
    fn a_stop_releases_auto_assigned_public_addresses_only() {
        let store = MemoryStore::new();
        let applier = Applier::new(&store, TagPolicy::default());
        let e = with_public(eni("eni-x", "i-x", "x-prod-v001", &["10.0.0.20"]), "54.0.0.1", Some("3.0.0.1"));
        ready(applier.apply(&up(100, &e))).unwrap();
        let stop = Change::InstanceStopped { at: UnixTime(200), instance_id: "i-x".into() };
        assert_eq!(ready(applier.apply(&stop)).unwrap(), Outcome::Applied { opened: 0, closed: 1, unscoped: 0 });
        // The auto-assigned address is Amazon's again; the rest stays.
        assert_eq!(public_owner(&store, "54.0.0.1", 150).as_deref(), Some("x"));
        assert_eq!(public_owner(&store, "54.0.0.1", 250), None);
        assert_eq!(public_owner(&store, "3.0.0.1", 250).as_deref(), Some("x"));
        assert_eq!(app_at(&store, "10.0.0.20", 250).as_deref(), Some("x"));
        // Running again does not bring the released address back: only a
        // describe (asked for) tells the new one.
        let start = Change::InstanceUp { at: UnixTime(300), instance_id: "i-x".into() };
        assert!(matches!(ready(applier.apply(&start)).unwrap(), Outcome::AppliedThenDescribe { .. }));
        assert_eq!(public_owner(&store, "54.0.0.1", 3_600), None);
        assert_eq!(public_owner(&store, "3.0.0.1", 3_600).as_deref(), Some("x"));
    }

    #[test]
    fn an_elastic_ip_releases_the_auto_assigned_address() {
        let store = MemoryStore::new();
        let applier = Applier::new(&store, TagPolicy::default());
        let e = with_public(eni("eni-x", "i-x", "x-prod-v001", &["10.0.0.21"]), "54.0.0.2", None);
        ready(applier.apply(&up(100, &e))).unwrap();
        // Named by allocation only: the auto-assigned address goes, and a
        // describe is asked for to learn the Elastic IP.
        let assoc = Change::PublicAssociated {
            at: UnixTime(200),
            public_ip: None,
            allocation_id: Some("eipalloc-1".into()),
            association_id: Some("eipassoc-1".into()),
            eni_id: Some("eni-x".into()),
            instance_id: None,
        };
        let expected = Outcome::AppliedThenDescribe { opened: 0, closed: 1, unscoped: 0, instance_id: "i-x".into() };
        assert_eq!(ready(applier.apply(&assoc)).unwrap(), expected);
        assert_eq!(public_owner(&store, "54.0.0.2", 250), None);
        // A later stop finds nothing auto-assigned left to release.
        let stop = Change::InstanceStopped { at: UnixTime(300), instance_id: "i-x".into() };
        assert_eq!(ready(applier.apply(&stop)).unwrap(), Outcome::Applied { opened: 0, closed: 0, unscoped: 0 });
    }

    #[test]
    fn an_interface_moved_between_instances_takes_each_owner_and_none_between() {
        let store = MemoryStore::new();
        let applier = Applier::new(&store, TagPolicy::default());
        let tagged = |e: Eni, app: &str| {
            let mut e = e;
            e.tags.insert("app".into(), app.into());
            e
        };
        ready(applier.apply(&up(10, &tagged(eni("eni-a", "i-a", "a-prod-v001", &["10.0.0.30"]), "a")))).unwrap();
        ready(applier.apply(&up(10, &tagged(eni("eni-b", "i-b", "b-prod-v001", &["10.0.0.31"]), "b")))).unwrap();
        let mut floating = Eni::new("eni-f");
        floating.vpc_id = Some(VPC.into());
        floating.private_addresses = vec!["10.0.0.32".parse().unwrap()];
        ready(applier.apply(&up(20, &floating))).unwrap();
        let attach = |at: i64, instance: &str, id: &str| Change::Attached {
            at: UnixTime(at),
            eni_id: "eni-f".into(),
            instance_id: instance.into(),
            attachment_id: Some(id.into()),
        };
        let detach = |at: i64, id: &str| Change::Detached { at: UnixTime(at), attachment_id: id.into() };
        for change in [attach(100, "i-a", "att-1"), detach(200, "att-1"), attach(300, "i-b", "att-2")] {
            ready(applier.apply(&change)).unwrap();
        }
        assert_eq!(app_at(&store, "10.0.0.32", 150).as_deref(), Some("a"));
        assert_eq!(app_at(&store, "10.0.0.32", 250), None, "detached: no instance, no app");
        assert_eq!(app_at(&store, "10.0.0.32", 350).as_deref(), Some("b"));
    }

    #[test]
    fn an_attach_to_an_unknown_interface_asks_for_the_instance() {
        let store = MemoryStore::new();
        let applier = Applier::new(&store, TagPolicy::default());
        let attach = Change::Attached {
            at: UnixTime(100),
            eni_id: "eni-new".into(),
            instance_id: "i-x".into(),
            attachment_id: Some("eni-attach-1".into()),
        };
        assert_eq!(ready(applier.apply(&attach)).unwrap(), Outcome::NeedsDescribe { instance_id: "i-x".into() });
    }

    #[test]
    fn private_addresses_without_a_vpc_are_not_guessed() {
        let store = MemoryStore::new();
        let applier = Applier::new(&store, TagPolicy::default());
        let mut e = eni("eni-x", "i-x", "x-prod-v001", &["10.0.0.12"]);
        e.vpc_id = None;
        assert_eq!(ready(applier.apply(&up(100, &e))).unwrap(), Outcome::Applied { opened: 0, closed: 0, unscoped: 1 });
    }

    #[test]
    fn reconcile_opens_missing_closes_gone_and_respects_scope() {
        let store = MemoryStore::new();
        let applier = Applier::new(&store, TagPolicy::default());
        ready(applier.apply(&up(100, &eni("eni-old", "i-old", "old-prod-v001", &["10.0.1.1"])))).unwrap();
        ready(applier.apply(&up(100, &eni("eni-keep", "i-keep", "keep-prod-v001", &["10.0.1.2"])))).unwrap();
        let mut other_account = eni("eni-else", "i-else", "else-prod-v001", &["10.0.1.3"]);
        other_account.account_id = Some("999999999999".into());
        ready(applier.apply(&up(100, &other_account))).unwrap();

        let snapshot = vec![
            eni("eni-keep", "i-keep", "keep-prod-v001", &["10.0.1.2"]),
            eni("eni-new", "i-new", "new-prod-v001", &["10.0.1.4"]),
        ];
        let scope = SnapshotScope { account_id: Some("123456789012".into()), region: Some("us-east-1".into()) };
        let stats = ready(applier.reconcile(&snapshot, UnixTime(1000), &scope)).unwrap();
        assert_eq!((stats.opened, stats.closed, stats.unchanged), (1, 1, 1));
        assert_eq!(app_at(&store, "10.0.1.1", 999).as_deref(), Some("old"));
        assert_eq!(app_at(&store, "10.0.1.1", 1000), None);
        assert_eq!(app_at(&store, "10.0.1.2", 1000).as_deref(), Some("keep"));
        assert_eq!(app_at(&store, "10.0.1.4", 1000).as_deref(), Some("new"));
        // Another account's owner is outside the snapshot: left alone.
        assert_eq!(app_at(&store, "10.0.1.3", 1000).as_deref(), Some("else"));
        // Reconciling again changes nothing.
        let again = ready(applier.reconcile(&snapshot, UnixTime(1100), &scope)).unwrap();
        assert_eq!((again.opened, again.closed, again.unchanged), (0, 0, 2));
    }
}
