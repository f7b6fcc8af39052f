//! Applying ownership changes and snapshots to a store: the logic the
//! ownership Lambda and `dredge ownership apply/import` share.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde::Serialize;

use super::change::Change;
use super::eni::{merge_tags, push_unique, Eni};
use super::evidence::{scope_label, Attached, Sighting};
use super::owner::{TagPolicy, ASG_TAG};
use super::scope::Scope;
use super::store::{
    EniRecord, EniRef, EniWrite, InstanceNote, InstanceRecord, OwnershipStore, StoreError, StoreResult,
};
use super::time::UnixTime;
use super::timeline::{AddressKey, Mark};

/// What applying one change did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Marks written (possibly zero: nothing to change); `opened` counts
    /// relabels too.
    Applied { opened: usize, closed: usize, unscoped: usize },
    /// The change names an ENI (or attachment, association) the table does
    /// not know: kept, and applied when the ENI becomes known.
    Deferred { reference: String },
    /// The change names an ENI by what the table cannot resolve (an
    /// instance's primary ENI among several, a public IP nobody holds); a
    /// reconcile will catch up.
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
    /// Changes kept until their ENI is known.
    pub deferred: u64,
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
            Outcome::Deferred { .. } => self.deferred += 1,
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
    /// What the reconcile horizon notes this scope under ([`scope_label`]).
    pub fn label(&self) -> String {
        scope_label(self.account_id.as_deref(), self.region.as_deref())
    }

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

    /// The ENI took `addresses` at `at`.
    fn open(&mut self, eni: &Eni, policy: &TagPolicy, at: UnixTime, addresses: impl IntoIterator<Item = IpAddr>) {
        self.push_for(eni, addresses, Mark::Open { at, owner: eni.owner(policy) });
    }

    /// From `at`, what the ENI holds of `addresses` is owned as `eni` (an
    /// attach or detach). Whether it still holds them then is the
    /// timeline's to tell, from the opens and closes: a release may be
    /// learned after the attach.
    fn relabel(&mut self, eni: &Eni, policy: &TagPolicy, at: UnixTime, addresses: impl IntoIterator<Item = IpAddr>) {
        self.label(eni, policy, at, addresses, 0);
    }

    /// [`Marks::relabel`] told from the ENI record of version `basis`
    /// (see [`Mark::Relabel`]).
    fn label(
        &mut self,
        eni: &Eni,
        policy: &TagPolicy,
        at: UnixTime,
        addresses: impl IntoIterator<Item = IpAddr>,
        basis: u64,
    ) {
        self.push_for(eni, addresses, Mark::Relabel { at, owner: eni.owner(policy), basis });
    }

    fn push_for(&mut self, eni: &Eni, addresses: impl IntoIterator<Item = IpAddr>, mark: Mark) {
        self.opened += self.push_each(eni, addresses, mark);
    }

    /// `mark` for each of `addresses` the ENI can scope; how many.
    fn push_each(&mut self, eni: &Eni, addresses: impl IntoIterator<Item = IpAddr>, mark: Mark) -> usize {
        let before = self.marks.len();
        for address in addresses {
            if let Some(key) = self.key(eni, address) {
                self.marks.push((key, mark.clone()));
            }
        }
        self.marks.len() - before
    }

    fn close(&mut self, eni: &Eni, at: UnixTime, addresses: impl IntoIterator<Item = IpAddr>) {
        self.close_for(eni, None, at, addresses);
    }

    /// Closes that end the ENI's intervals only while attached to
    /// `instance` (its termination or stop): an interface detached from it
    /// earlier, even if learned later, keeps its addresses.
    fn close_for(
        &mut self,
        eni: &Eni,
        instance: Option<&str>,
        at: UnixTime,
        addresses: impl IntoIterator<Item = IpAddr>,
    ) {
        let instance_id = instance.map(str::to_owned);
        let close = Mark::Close { at, eni_id: eni.eni_id.clone(), instance_id, found_gone: false, spared: false };
        self.closed += self.push_each(eni, addresses, close);
    }

    /// `instance`'s end at `at` did not reach the ENI: its closes of
    /// `addresses` are replaced by ones that end nothing.
    fn spare(&mut self, eni: &Eni, instance: &str, at: UnixTime, addresses: impl IntoIterator<Item = IpAddr>) {
        let instance_id = Some(instance.to_owned());
        let spared = Mark::Close { at, eni_id: eni.eni_id.clone(), instance_id, found_gone: false, spared: true };
        self.push_each(eni, addresses, spared);
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

/// Why one attempt at a change did not finish.
enum Retry {
    Store(StoreError),
    /// Another writer changed an ENI record since this attempt read it.
    Conflict,
}

impl From<StoreError> for Retry {
    fn from(e: StoreError) -> Self {
        Retry::Store(e)
    }
}

type Attempt<T> = Result<T, Retry>;

/// How many times a change is tried against concurrent writers of its
/// records before the conflict is reported (as transient: the caller's
/// retry tries again later).
const MAX_ATTEMPTS: usize = 10;

/// What one attempt did, the names of ENIs it made known, and the names of
/// the known ENI it changed: changes kept for either are applied next.
struct Done {
    outcome: Outcome,
    known: Vec<EniRef>,
    /// Every name of the (known) ENI record the change wrote. An earlier
    /// delivery that made the ENI known may have failed before applying
    /// the changes kept for it: a retry finds it known already (nothing
    /// new in `known`), so what is kept for it is looked for here too.
    touched: Vec<EniRef>,
}

impl From<Outcome> for Done {
    fn from(outcome: Outcome) -> Self {
        Done { outcome, known: Vec::new(), touched: Vec::new() }
    }
}

impl Done {
    /// The outcome of a change that wrote `record`, which `before` was.
    fn wrote(outcome: Outcome, before: Option<&EniRecord>, record: &EniRecord) -> Self {
        // A record without addresses (a deletion learned first) is not
        // known yet: what waits for it waits on.
        let touched = if record.eni.addresses().next().is_some() { record.references() } else { Vec::new() };
        Done { outcome, known: new_references(before, record), touched }
    }
}

/// The references `after` has that `before` (if any) had not.
fn new_references(before: Option<&EniRecord>, after: &EniRecord) -> Vec<EniRef> {
    let had = before.map(EniRecord::references).unwrap_or_default();
    after.references().into_iter().filter(|r| !had.contains(r)).collect()
}

impl<'s, S: OwnershipStore> Applier<'s, S> {
    pub fn new(store: &'s S, policy: TagPolicy) -> Self {
        Applier { store, policy }
    }

    async fn record_of(&self, eni_id: &str) -> StoreResult<Option<EniRecord>> {
        self.store.eni(&EniRef::Id(eni_id.to_owned())).await
    }

    /// The record of an ENI the table knows: a deletion learned first
    /// leaves one without addresses (nor a VPC to scope them by), and what
    /// names the ENI waits for its description as if there were none.
    async fn known_record(&self, eni_id: &str) -> StoreResult<Option<EniRecord>> {
        Ok(self.record_of(eni_id).await?.filter(|r| r.eni.addresses().next().is_some()))
    }

    /// Writes a record over the version it was read at.
    async fn put(&self, record: &EniRecord) -> Attempt<()> {
        match self.store.put_eni(record).await? {
            EniWrite::Written => Ok(()),
            EniWrite::Conflict => Err(Retry::Conflict),
        }
    }

    /// Writes the marks, then the ENI record: if the record write fails or
    /// conflicts the change is tried again whole, and the marks are
    /// idempotent.
    async fn finish(&self, marks: Marks, record: Option<&EniRecord>) -> Attempt<Outcome> {
        if !marks.marks.is_empty() {
            self.store.put_marks(&marks.marks).await?;
        }
        if let Some(r) = record {
            self.put(r).await?;
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
    ) -> Attempt<Outcome> {
        let outcome = match instance_id {
            Some(i) => marks.then_describe(i),
            None => marks.outcome(),
        };
        self.finish(marks, Some(record)).await?;
        Ok(outcome)
    }

    /// Keeps `change` until `reference` is known.
    async fn defer(&self, reference: EniRef, change: &Change) -> Attempt<Done> {
        self.store.put_pending(&reference, change).await?;
        Ok(Outcome::Deferred { reference: reference.to_string() }.into())
    }

    /// Releases the auto-assigned public addresses of `record` at `at`: a
    /// stop, or an Elastic IP taking their place. Those it gave up at `at`
    /// or later (a later stop or a description learned first) are closed
    /// at `at` too, which ends them only if held then. A stop's closes
    /// hold only while attached to `instance`.
    fn release_auto_assigned(record: &mut EniRecord, instance: Option<&str>, at: UnixTime, m: &mut Marks) {
        // A description after the stop listing an auto-assigned address
        // shows it was taken after (a stop releases every one): the
        // record's lists, if that new, hold nothing the stop released.
        let held: Vec<IpAddr> = if at < record.listed_at { Vec::new() } else { record.eni.auto_assigned().collect() };
        // Given up later: held at `at` or taken after it (at a restart),
        // which the record cannot tell. The close ends it if held; its
        // later removal stays, for the stop that ended it if taken after.
        let later = record.removed.iter().filter(|(_, r)| r.auto_assigned && r.at >= at).map(|(ip, _)| *ip);
        m.close_for(&record.eni, instance, at, held.iter().copied().chain(later));
        // Not `updated_at`: a stop tells nothing of the attachment (an
        // attach elsewhere before it, learned after, must still count).
        record.remove(&held, at, true);
    }

    /// Closes, at the time they happened, releases that were learned before
    /// the opens they end: the ENI deleted, its instance terminated or
    /// stopped (auto-assigned addresses) later than `at` but processed
    /// earlier.
    async fn close_known_later_ends(
        &self,
        record: &EniRecord,
        eni: &Eni,
        addresses: &[IpAddr],
        at: UnixTime,
        m: &mut Marks,
    ) -> StoreResult<()> {
        if let Some(deleted) = record.deleted_at.filter(|d| *d >= at) {
            m.close(eni, deleted, record.held_through(addresses, at, deleted));
        }
        // An instance's end reaches the ENI only while attached to it: until
        // its detach, its deletion, or the next attach seen (one attachment
        // at a time; an earlier attach may be learned before its detach).
        let detached = eni.attachment_id.as_ref().and_then(|a| record.attachments.get(a)).and_then(|a| a.detached_at);
        let next_attach = record
            .attachments
            .iter()
            .filter(|(id, a)| a.exact && a.at > at && eni.attachment_id.as_ref() != Some(*id))
            .map(|(_, a)| a.at)
            .min();
        let gone = detached.into_iter().chain(record.deleted_at).chain(next_attach).min();
        let attached_at = |t: UnixTime| gone.is_none_or(|g| g > t);
        if let Some(instance_id) = &eni.instance_id {
            if let Some(inst) = self.store.instance(instance_id).await.map(|i| i.filter(|i| !i.running))? {
                let end = inst.changed_at;
                let held = || record.held_through(addresses, at, end);
                match detached {
                    None if end >= at && attached_at(end) => m.close_for(eni, Some(instance_id), end, held()),
                    // A detach seen after the end tells the interface
                    // outlived it (`outlived_instance_end`): the end
                    // released nothing, so its close of an address learned
                    // only now, written by whoever learned the end first,
                    // is spared too.
                    Some(d) if end >= at && d >= end && record.deleted_at.is_none_or(|x| x > end) => {
                        m.spare(eni, instance_id, end, held())
                    }
                    _ => {}
                }
            }
            let auto: Vec<IpAddr> = eni.auto_assigned().filter(|a| addresses.contains(a)).collect();
            if !auto.is_empty() {
                let notes = self.store.instance_notes(instance_id).await?;
                if let Some(stop) = notes.stops.into_iter().find(|s| *s >= at).filter(|s| attached_at(*s)) {
                    m.close_for(eni, Some(instance_id), stop, record.held_through(&auto, at, stop));
                }
            }
        }
        Ok(())
    }

    /// The ENI as the owner of its addresses: attached, with its
    /// instance's tags (its ASG, app), which live on the instance's other
    /// ENIs; detached, as a bare interface, its own tags without an ASG.
    /// The record keeps the ENI's own tags only, so a detach drops exactly
    /// what the instance lent.
    async fn view(&self, eni: &Eni) -> StoreResult<Eni> {
        let mut eni = eni.clone();
        match &eni.instance_id {
            Some(instance) => {
                for sibling in self.store.enis_of_instance(instance).await? {
                    if sibling.eni.eni_id != eni.eni_id {
                        merge_tags(&mut eni.tags, &sibling.eni.tags);
                    }
                }
            }
            None => {
                eni.tags.remove(ASG_TAG);
            }
        }
        Ok(eni)
    }

    /// The ENI without its instance.
    fn bare(eni: &Eni) -> Eni {
        Eni { instance_id: None, attachment_id: None, ..eni.clone() }
    }

    /// The ENI attached to `instance_id`.
    fn attached(eni: &Eni, instance_id: &str, attachment_id: Option<&String>) -> Eni {
        Eni { instance_id: Some(instance_id.to_owned()), attachment_id: attachment_id.cloned(), ..eni.clone() }
    }

    /// What an attach or detach at `at` labels: the addresses the record
    /// holds now, and those it may have held then but not now (given up
    /// later, or taken by a change and dropped by a newer description):
    /// a release or description learned first must not keep the label off
    /// them. A relabel outside the ENI's holding is void, so the extra are
    /// harmless.
    fn maybe_held(record: &EniRecord, at: UnixTime, now: &[IpAddr]) -> Vec<IpAddr> {
        // Given up after `at`, or taken again since the (earliest) removal.
        let kept_then = |a: &IpAddr| record.removed.get(a).is_none_or(|r| r.at > at || record.taken_since(*a, r.at));
        let later = record.removed.iter().filter(|(_, r)| r.at > at).map(|(ip, _)| *ip);
        let taken = record.added.keys().copied().filter(kept_then);
        let mut all = now.to_vec();
        for a in later.chain(taken) {
            push_unique(&mut all, a);
        }
        all
    }

    /// The ENI as attached at `at`, as far as the record tells: as it is
    /// now from the record's newest description on; before, by the
    /// attachment live then (one that is not the record's now, without a
    /// detach seen, ended by that description at the latest); bare when its
    /// attachment now began later by its own attach event; else as it is
    /// now (a description only bounds when an attachment began). A change
    /// learned after a later attach must not take that attach's owner.
    fn as_of(record: &EniRecord, at: UnixTime) -> Eni {
        if at >= record.updated_at {
            return record.eni.clone();
        }
        let current = record.eni.attachment_id.as_deref();
        let ended =
            |id: &str, detached: Option<UnixTime>| detached.or((Some(id) != current).then_some(record.updated_at));
        let live = record
            .attachments
            .iter()
            .filter(|(id, a)| a.at <= at && ended(id, a.detached_at).is_none_or(|d| d > at))
            .max_by_key(|(id, a)| (a.at, *id));
        if let Some((id, a)) = live {
            return Self::attached(&record.eni, &a.instance_id, Some(id));
        }
        let now = record.eni.attachment_id.as_ref().and_then(|id| record.attachments.get(id));
        match now {
            Some(a) if a.exact && a.at > at => Self::bare(&record.eni),
            _ => record.eni.clone(),
        }
    }

    /// Relabels each address a change dated (an assign, an association)
    /// whose owner then the record now tells otherwise than `before` did:
    /// the change took the record's answer of its time, and an attach,
    /// detach or description learned since dated an attachment afresh.
    /// The same owner then as had the record known it first. A `retried`
    /// change retells every one: its first attempt may have told from the
    /// same version as the writer it lost to, and differently.
    async fn relabel_retold(
        &self,
        before: &EniRecord,
        after: &EniRecord,
        retried: bool,
        m: &mut Marks,
    ) -> StoreResult<()> {
        let attachment = |e: &Eni| (e.instance_id.clone(), e.attachment_id.clone());
        // Before the oldest attachment the record still remembers, one it
        // has forgotten may have been live: its answer there is no news.
        let forgot = before.attachments.keys().any(|id| !after.attachments.contains_key(id));
        let remembered_since = after.attachments.values().map(|a| a.at).min();
        let mut views: Vec<Eni> = Vec::new();
        let takings = after.added.iter().flat_map(|(address, times)| times.iter().map(move |t| (address, t)));
        for (address, since) in takings {
            if forgot && remembered_since.is_none_or(|r| since < r) {
                continue;
            }
            let then = Self::as_of(after, since);
            if !retried && attachment(&then) == attachment(&Self::as_of(before, since)) {
                continue;
            }
            let view = match views.iter().find(|v| attachment(v) == attachment(&then)) {
                Some(v) => v.clone(),
                None => {
                    let v = self.view(&then).await?;
                    views.push(v.clone());
                    v
                }
            };
            m.label(&view, &self.policy, since, [*address], before.version);
        }
        Ok(())
    }

    /// Relabels `addresses`, held since `since` but learned only now, at
    /// each later owner change the record remembers (attaches and detaches
    /// seen before the addresses were), while the ENI still held them as
    /// far as the record knows; a release learned later voids them in the
    /// timeline.
    async fn replay_attachments(
        &self,
        record: &EniRecord,
        addresses: &[IpAddr],
        since: UnixTime,
        m: &mut Marks,
    ) -> StoreResult<()> {
        if addresses.is_empty() || record.attachments.is_empty() {
            return Ok(());
        }
        let held_at = |t: UnixTime| -> Vec<IpAddr> {
            if record.deleted_at.is_some_and(|d| d <= t) {
                return Vec::new();
            }
            record.held_through(addresses, since, t)
        };
        let bare = self.view(&Self::bare(&record.eni)).await?;
        for (id, a) in &record.attachments {
            if a.at > since {
                let eni = self.view(&Self::attached(&record.eni, &a.instance_id, Some(id))).await?;
                let held = held_at(a.at);
                m.relabel(&eni, &self.policy, a.at, held.iter().copied());
                self.close_known_later_ends(record, &eni, &held, a.at, m).await?;
            }
            if let Some(d) = a.detached_at.filter(|d| *d > since) {
                m.relabel(&bare, &self.policy, d, held_at(d));
            }
        }
        Ok(())
    }

    /// An interface detached at `at` from an instance that had ended
    /// before outlived that end (EC2 detaches the interfaces it does not
    /// delete): the end's close did not release its addresses. Each close
    /// of what the ENI may have held then is replaced by a spared one,
    /// which ends nothing, whichever came first; a release learned later
    /// still ends an address at its own time (a re-open at the end would
    /// have outlived it). Only a detach tells for sure that the interface
    /// was still attached when the instance ended; an attach elsewhere
    /// without it leaves the gap to a reconcile.
    async fn outlived_instance_end(
        &self,
        record: &EniRecord,
        attachment_id: &str,
        at: UnixTime,
        m: &mut Marks,
    ) -> StoreResult<()> {
        let Some(a) = record.attachments.get(attachment_id) else { return Ok(()) };
        let Some(instance) = self.store.instance(&a.instance_id).await? else { return Ok(()) };
        let end = instance.changed_at;
        if instance.running || end < a.at || end > at || record.deleted_at.is_some_and(|d| d <= end) {
            return Ok(());
        }
        let now: Vec<IpAddr> = record.eni.addresses().collect();
        m.spare(&record.eni, &a.instance_id, end, Self::maybe_held(record, end, &now));
        Ok(())
    }

    /// Completes the opens of the instance's other ENIs with tags learned
    /// only now (an interface attached before the instance's own was
    /// known): the fuller version of each fact replaces the one written.
    async fn complete_siblings(&self, eni: &Eni, m: &mut Marks) -> StoreResult<()> {
        let Some(instance) = &eni.instance_id else { return Ok(()) };
        let ids: Vec<String> = self.store.instance_notes(instance).await?.interfaces;
        let others: Vec<String> = ids.into_iter().filter(|id| *id != eni.eni_id).collect();
        for sibling in self.store.enis_by_id(&others).await?.into_iter().flatten() {
            let mut view = self.view(&Self::attached(&sibling.eni, instance, None)).await?;
            merge_tags(&mut view.tags, &eni.tags);
            let owner = view.owner(&self.policy);
            for address in sibling.eni.addresses() {
                let Some(key) = m.key(&sibling.eni, address) else { continue };
                for mark in self.store.timeline(&key).await?.marks() {
                    let Some(old) = mark.owner() else { continue };
                    if old.eni_id == owner.eni_id && old.instance_id == owner.instance_id && owner.supersedes(old) {
                        m.marks.push((key.clone(), mark.with_owner(owner.clone())));
                        m.opened += 1;
                    }
                }
            }
        }
        Ok(())
    }

    /// Applies one change, then the changes kept for the ENIs it made
    /// known.
    pub async fn apply(&self, change: &Change) -> StoreResult<Outcome> {
        // On the heap: with a store's own futures inside (DynamoDB's are
        // large), the state of one change would crowd its caller's stack.
        Box::pin(self.apply_retrying(change)).await
    }

    async fn apply_retrying(&self, change: &Change) -> StoreResult<Outcome> {
        let done = self.attempt(change).await?;
        let mut references = done.known;
        references.extend(done.touched);
        references.sort();
        references.dedup();
        self.apply_kept(references).await?;
        Ok(done.outcome)
    }

    /// Tries a change until no concurrent writer gets in its way.
    async fn attempt(&self, change: &Change) -> StoreResult<Done> {
        for attempt in 0..MAX_ATTEMPTS {
            match self.apply_one(change, attempt > 0).await {
                Ok(done) => return Ok(done),
                Err(Retry::Conflict) => continue,
                Err(Retry::Store(e)) => return Err(e),
            }
        }
        Err(StoreError::Transient(format!("ENI record kept changing under {MAX_ATTEMPTS} attempts")))
    }

    /// Applies the changes kept for newly known references (and for those
    /// they make known in turn), forgetting each once applied. A loop, not
    /// recursion: each change is one attempt on the stack.
    async fn apply_kept(&self, mut known: Vec<EniRef>) -> StoreResult<()> {
        while let Some(reference) = known.pop() {
            let kept = self.store.pending(&reference).await?;
            if kept.is_empty() {
                continue;
            }
            for change in &kept {
                known.extend(self.attempt(change).await?.known);
            }
            self.store.forget_pending(&reference, &kept).await?;
        }
        Ok(())
    }

    /// Each kind of change runs as its own boxed future: in one, the
    /// temporaries of every branch's store calls made a single poll frame of
    /// over a megabyte in debug builds, past a test thread's 2 MiB stack.
    async fn apply_one(&self, change: &Change, retried: bool) -> Attempt<Done> {
        let mut m = Marks::default();
        match change {
            Change::EniUp { at, eni } => {
                Box::pin(async move {
                    let existing = self.record_of(&eni.eni_id).await?;
                    let mut described = (**eni).clone();
                    let mut later: Vec<IpAddr> = Vec::new();
                    if let Some(old) = &existing {
                        // The record's attachment completes only a newer
                        // description of the same instance: a newer record
                        // may have been attached since, and a description
                        // showing no instance or another is detached from
                        // the record's (a detach learned later).
                        if old.updated_at <= *at && old.eni.instance_id == described.instance_id {
                            described.fill_from(&old.eni);
                        } else {
                            described.fill_from(&Self::bare(&old.eni));
                        }
                        // What the ENI gave up after this description is gone.
                        later = described.addresses().filter(|a| old.removed_after(*a, *at)).collect();
                        described.remove_addresses(&later);
                    }
                    let addresses: Vec<IpAddr> = described.addresses().collect();
                    let owner = self.view(&described).await?;
                    m.open(&owner, &self.policy, *at, addresses.iter().chain(&later).copied());
                    // Held then, given up at the removal (its close may be a
                    // reconcile's, or missing: at the latest then).
                    for a in &later {
                        let gone = existing.as_ref().and_then(|o| o.removed.get(a)).map(|r| r.at);
                        if let (Some(gone), Some(key)) = (gone, m.key(&described, *a)) {
                            m.marks.push((key, Mark::found_gone(gone, described.eni_id.clone())));
                        }
                    }
                    let mut record = match existing.clone() {
                        // A deletion learned first left a record without
                        // addresses, which describes nothing: this does (its
                        // attachment too, which an instance's end looks for).
                        Some(placeholder) if placeholder.eni.addresses().next().is_none() => EniRecord {
                            eni: described.clone(),
                            updated_at: *at,
                            addresses_at: *at,
                            listed_at: *at,
                            ..placeholder
                        },
                        // A newer event already described it: keep that,
                        // completed from this older description.
                        Some(mut newer) if newer.updated_at > *at => {
                            // Its attachment is the newer record's own; its
                            // addresses this description's, unless a change
                            // since (or a newer description) told them.
                            newer.eni.fill_from(&Self::bare(&described));
                            if newer.addresses_at <= *at {
                                newer.eni.private_addresses = described.private_addresses.clone();
                                newer.eni.public_addresses = described.public_addresses.clone();
                                newer.eni.elastic_addresses = described.elastic_addresses.clone();
                                newer.addresses_at = *at;
                                newer.listed_at = *at;
                            }
                            newer
                        }
                        // Addresses changed after this description: keep what
                        // changes since gave (what they gave up is not in
                        // `described`); the rest of the lists are this
                        // description's, newer than the record's.
                        Some(old) if old.addresses_at > *at => {
                            let mut eni = described.clone();
                            let taken_after = |a: &IpAddr| old.added.get(a).is_some_and(|t| t.latest() > *at);
                            for a in old.eni.addresses().filter(taken_after) {
                                eni.add_address(a);
                            }
                            for a in old.eni.elastic_addresses.iter().filter(|a| taken_after(a)) {
                                push_unique(&mut eni.elastic_addresses, *a);
                            }
                            EniRecord { eni, updated_at: *at, listed_at: *at, ..old }
                        }
                        Some(old) => EniRecord {
                            eni: described.clone(),
                            updated_at: *at,
                            addresses_at: *at,
                            listed_at: *at,
                            ..old
                        },
                        None => EniRecord::new(described.clone(), *at),
                    };
                    // Of this description's lists and the newest the record
                    // took whole, what the newer did not list of the older's
                    // was given up by its time at the latest (as after a
                    // reconcile): a stop learned later ends it. Lists only
                    // changes edited since tell nothing of what they lack.
                    if let Some(old) = &existing {
                        if record.listed_at == *at {
                            record.remove_dropped(&old.eni, *at);
                        } else if record.listed_at > *at {
                            record.remove_dropped(&described, record.listed_at);
                        }
                    }
                    if let (Some(instance), Some(attachment)) = (&described.instance_id, &described.attachment_id) {
                        record.remember_attachment(attachment, instance, *at, false);
                    }
                    record.associations.extend(described.associations.clone());
                    // Elastic IPs associated earlier by allocation: theirs since
                    // the association.
                    for (allocation, ip) in &described.allocations {
                        let Some(since) = record.awaiting.get(allocation).copied().filter(|t| *t < *at) else {
                            continue;
                        };
                        record.awaiting.remove(allocation);
                        if !record.removed_after(*ip, since) {
                            record.add(*ip, since);
                            let then = self.view(&Self::as_of(&record, since)).await?;
                            m.open(&then, &self.policy, since, [*ip]);
                            self.close_known_later_ends(&record, &then, &[*ip], since, &mut m).await?;
                            self.replay_attachments(&record, &[*ip], since, &mut m).await?;
                        }
                    }
                    let held: Vec<IpAddr> = addresses.iter().chain(&later).copied().collect();
                    self.close_known_later_ends(&record, &described, &held, *at, &mut m).await?;
                    let learned: Vec<IpAddr> = match &existing {
                        Some(old) => {
                            addresses.iter().copied().filter(|a| !old.eni.addresses().any(|b| b == *a)).collect()
                        }
                        None => Vec::new(),
                    };
                    let learned: Vec<IpAddr> = learned.into_iter().chain(later.iter().copied()).collect();
                    self.replay_attachments(&record, &learned, *at, &mut m).await?;
                    if let Some(old) = &existing {
                        self.relabel_retold(old, &record, retried, &mut m).await?;
                    }
                    if let Some(instance) = &described.instance_id {
                        let note = InstanceNote::Interface(described.eni_id.clone());
                        self.store.note_instance(instance, &note).await?;
                        if existing.as_ref().is_none_or(|old| old.eni.tags != record.eni.tags) {
                            self.complete_siblings(&described, &mut m).await?;
                        }
                    }
                    let outcome = self.finish(m, Some(&record)).await?;
                    // A record without addresses (a deletion learned first) did
                    // not make the ENI known: what waits for it applies now.
                    let before = existing.filter(|old| old.eni.addresses().next().is_some());
                    Ok(Done::wrote(outcome, before.as_ref(), &record))
                })
                .await
            }
            Change::EniDeleted { at, eni_id } => {
                Box::pin(async move {
                    let mut record =
                        self.record_of(eni_id).await?.unwrap_or_else(|| EniRecord::new(Eni::new(eni_id.clone()), *at));
                    m.close(&record.eni, *at, record.eni.addresses().collect::<Vec<_>>());
                    record.deleted_at = Some(record.deleted_at.map_or(*at, |d| d.min(*at)));
                    Ok(self.finish(m, Some(&record)).await?.into())
                })
                .await
            }
            Change::Attached { at, eni_id, instance_id, attachment_id } => {
                Box::pin(async move {
                    let Some(mut record) = self.known_record(eni_id).await? else {
                        // Attached before its creation reached the table: kept
                        // for when it does, and the instance's describe shows it.
                        self.store.put_pending(&EniRef::Id(eni_id.clone()), change).await?;
                        return Ok(Outcome::NeedsDescribe { instance_id: instance_id.clone() }.into());
                    };
                    let before = record.clone();
                    let eni = Self::attached(&record.eni, instance_id, attachment_id.as_ref());
                    if *at >= record.updated_at {
                        record.eni = eni.clone();
                        record.updated_at = *at;
                    }
                    if let Some(attachment) = attachment_id {
                        record.remember_attachment(attachment, instance_id, *at, true);
                    }
                    self.store.note_instance(instance_id, &InstanceNote::Interface(eni_id.clone())).await?;
                    // Relabelled as attached from `at`, whatever is newer in the record.
                    let addresses: Vec<IpAddr> = eni.addresses().collect();
                    let labelled = Self::maybe_held(&before, *at, &addresses);
                    m.relabel(&self.view(&eni).await?, &self.policy, *at, labelled.iter().copied());
                    self.close_known_later_ends(&record, &eni, &labelled, *at, &mut m).await?;
                    self.relabel_retold(&before, &record, retried, &mut m).await?;
                    let outcome = self.finish(m, Some(&record)).await?;
                    Ok(Done::wrote(outcome, Some(&before), &record))
                })
                .await
            }
            Change::Detached { at, attachment_id } => {
                Box::pin(async move {
                    let reference = EniRef::Attachment(attachment_id.clone());
                    let Some(mut record) = self.store.eni(&reference).await? else {
                        return self.defer(reference, change).await;
                    };
                    let before = record.clone();
                    // A detached ENI belongs to no instance, but still holds its
                    // addresses, as a bare interface. An older attachment's end
                    // is superseded by the next attach's own open.
                    let bare = Self::bare(&record.eni);
                    if let Some(a) = record.attachments.get_mut(attachment_id) {
                        a.detached_at = Some(a.detached_at.map_or(*at, |d| d.min(*at)));
                    }
                    if record.eni.attachment_id.as_deref() == Some(attachment_id.as_str()) {
                        record.eni = bare.clone();
                        record.updated_at = record.updated_at.max(*at);
                    }
                    self.outlived_instance_end(&record, attachment_id, *at, &mut m).await?;
                    let addresses: Vec<IpAddr> = bare.addresses().collect();
                    // The next attach seen in the same second labels it: a
                    // bare label would share its key, and where the attach
                    // did not label an address (learned after it), win.
                    let reattached =
                        record.attachments.iter().any(|(id, a)| id != attachment_id && a.exact && a.at == *at);
                    if !reattached {
                        let labelled = Self::maybe_held(&before, *at, &addresses);
                        m.relabel(&self.view(&bare).await?, &self.policy, *at, labelled);
                    }
                    self.close_known_later_ends(&record, &bare, &addresses, *at, &mut m).await?;
                    self.relabel_retold(&before, &record, retried, &mut m).await?;
                    let outcome = self.finish(m, Some(&record)).await?;
                    Ok(Done::wrote(outcome, Some(&record), &record))
                })
                .await
            }
            Change::AddressesAssigned { at, eni_id, addresses } => {
                Box::pin(async move {
                    let Some(mut record) = self.known_record(eni_id).await? else {
                        return self.defer(EniRef::Id(eni_id.clone()), change).await;
                    };
                    let then = Self::as_of(&record, *at);
                    m.open(&self.view(&then).await?, &self.policy, *at, addresses.iter().copied());
                    self.close_known_later_ends(&record, &then, addresses, *at, &mut m).await?;
                    // Opened as owned then: relabelled at the owner changes
                    // since (repeats of known relabels are the same facts).
                    self.replay_attachments(&record, addresses, *at, &mut m).await?;
                    for address in addresses {
                        record.add(*address, *at);
                    }
                    let outcome = self.finish(m, Some(&record)).await?;
                    Ok(Done::wrote(outcome, Some(&record), &record))
                })
                .await
            }
            Change::AddressesUnassigned { at, eni_id, addresses } => {
                Box::pin(async move {
                    let Some(mut record) = self.known_record(eni_id).await? else {
                        return self.defer(EniRef::Id(eni_id.clone()), change).await;
                    };
                    m.close(&record.eni, *at, addresses.iter().copied());
                    record.remove(addresses, *at, false);
                    let outcome = self.finish(m, Some(&record)).await?;
                    Ok(Done::wrote(outcome, Some(&record), &record))
                })
                .await
            }
            Change::PublicAssociated { at, public_ip, allocation_id, association_id, eni_id, instance_id } => {
                Box::pin(async move {
                    let record = match (eni_id, instance_id) {
                        (Some(id), _) => self.known_record(id).await?,
                        // An instance's association goes to its primary ENI;
                        // without device indexes, the one holding the instance's
                        // primary private address is not known, so require a
                        // single ENI rather than guess.
                        (None, Some(instance)) => {
                            let mut enis = self.store.enis_of_instance(instance).await?;
                            if enis.len() == 1 {
                                enis.pop()
                            } else {
                                let reference = format!("primary ENI of {instance}");
                                return Ok(Outcome::UnknownEni { reference }.into());
                            }
                        }
                        (None, None) => None,
                    };
                    let Some(mut record) = record else {
                        return match eni_id {
                            Some(id) => self.defer(EniRef::Id(id.clone()), change).await,
                            None => {
                                let reference = instance_id.clone().unwrap_or_default();
                                Ok(Outcome::UnknownEni { reference }.into())
                            }
                        };
                    };
                    let before = record.clone();
                    // The Elastic IP takes the auto-assigned address's place.
                    Self::release_auto_assigned(&mut record, None, *at, &mut m);
                    let instance = record.eni.instance_id.clone();
                    // Named by its allocation only: an earlier description may
                    // have named the allocation's address (it never changes);
                    // else the describe asked for tells it, dated from here.
                    let known = allocation_id.as_ref().and_then(|a| record.eni.allocations.get(a).copied());
                    let Some(public_ip) = (public_ip).or(known) else {
                        if let Some(allocation) = allocation_id {
                            record.await_allocation(allocation, *at);
                        }
                        return Ok(self.finish_then_describe(m, &record, instance.as_deref()).await?.into());
                    };
                    let then = Self::as_of(&record, *at);
                    m.open(&self.view(&then).await?, &self.policy, *at, [public_ip]);
                    self.close_known_later_ends(&record, &then, &[public_ip], *at, &mut m).await?;
                    self.replay_attachments(&record, &[public_ip], *at, &mut m).await?;
                    if !record.removed_after(public_ip, *at) {
                        record.add(public_ip, *at);
                        push_unique(&mut record.eni.elastic_addresses, public_ip);
                    }
                    if let Some(assoc) = association_id {
                        record.associations.insert(assoc.clone(), public_ip);
                    }
                    let outcome = self.finish(m, Some(&record)).await?;
                    Ok(Done::wrote(outcome, Some(&before), &record))
                })
                .await
            }
            Change::PublicDisassociated { at, association_id, public_ip } => {
                Box::pin(async move {
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
                        return match association_id {
                            Some(a) => self.defer(EniRef::Association(a.clone()), change).await,
                            None => {
                                let reference = public_ip.map(|ip| ip.to_string()).unwrap_or_default();
                                Ok(Outcome::UnknownEni { reference }.into())
                            }
                        };
                    };
                    let ip = association_id.as_ref().and_then(|a| record.associations.remove(a)).or(*public_ip);
                    let Some(ip) = ip else {
                        return Ok(Outcome::Ignored { reason: "association's public IP is not known".into() }.into());
                    };
                    m.close(&record.eni, *at, [ip]);
                    record.remove(&[ip], *at, false);
                    // EC2 gives an instance's interface a new auto-assigned
                    // address within minutes; only a describe tells which.
                    let instance = record.eni.instance_id.clone();
                    Ok(self.finish_then_describe(m, &record, instance.as_deref()).await?.into())
                })
                .await
            }
            Change::InstanceDown { at, instance_id } => {
                Box::pin(async move {
                    self.store
                        .put_instance(&InstanceRecord {
                            instance_id: instance_id.clone(),
                            running: false,
                            changed_at: *at,
                        })
                        .await?;
                    for record in self.store.enis_of_instance(instance_id).await? {
                        let now: Vec<IpAddr> = record.eni.addresses().collect();
                        m.close_for(&record.eni, Some(instance_id), *at, Self::maybe_held(&record, *at, &now));
                    }
                    Ok(self.finish(m, None).await?.into())
                })
                .await
            }
            Change::InstanceStopped { at, instance_id } => {
                Box::pin(async move {
                    // Kept first: an interface learned later releases at it.
                    self.store.note_instance(instance_id, &InstanceNote::Stopped(*at)).await?;
                    let mut records = self.store.enis_of_instance(instance_id).await?;
                    for record in &mut records {
                        let before = record.clone();
                        Self::release_auto_assigned(record, Some(instance_id), *at, &mut m);
                        self.relabel_retold(&before, record, retried, &mut m).await?;
                    }
                    let outcome = m.outcome();
                    // Marks first: if a record write fails the change is retried.
                    self.finish(m, None).await?;
                    for record in &records {
                        self.put(record).await?;
                    }
                    Ok(outcome.into())
                })
                .await
            }
            Change::InstanceUp { at, instance_id } => {
                Box::pin(async move {
                    self.store
                        .put_instance(&InstanceRecord {
                            instance_id: instance_id.clone(),
                            running: true,
                            changed_at: *at,
                        })
                        .await?;
                    // What a stop kept (private addresses, IPv6, Elastic IPs)
                    // is still open; what it released is not the instance's
                    // again. A restart brings a new auto-assigned public
                    // address, which only a describe tells.
                    Ok(Outcome::NeedsDescribe { instance_id: instance_id.clone() }.into())
                })
                .await
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
        // Every holding the snapshot shows is also evidence that it lasted
        // until the snapshot (see `evidence`).
        let mut sightings = Vec::with_capacity(wanted.len());
        for ((key, owner), have) in wanted.into_iter().zip(current) {
            let attached = owner.instance_id.clone().map_or(Attached::Nothing, Attached::To);
            sightings.push((key.clone(), Sighting { eni_id: owner.eni_id.clone(), attached, at }));
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
                    m.marks.push((key.clone(), Mark::found_gone(at, owner.eni_id.clone())));
                    m.closed += 1;
                }
            }
        }
        stats.opened = m.opened as u64;
        stats.closed = m.closed as u64;
        stats.unscoped = m.unscoped as u64;
        if !m.marks.is_empty() {
            self.store.put_marks(&m.marks).await?;
        }
        self.store.put_seen(&sightings).await?;
        for eni in enis {
            self.store_described(eni, at).await?;
        }
        // Last: the horizon moves only once everything above is stored.
        self.store.note_reconciled(&scope.label(), at).await?;
        Ok(stats)
    }

    /// Stores a snapshot's description of an ENI unless a newer one is
    /// stored, over concurrent writers.
    async fn store_described(&self, eni: &Eni, at: UnixTime) -> StoreResult<()> {
        for attempt in 0..MAX_ATTEMPTS {
            let existing = self.record_of(&eni.eni_id).await?;
            let mut record = match existing.clone() {
                Some(old) if old.updated_at > at => return Ok(()),
                Some(old) => EniRecord {
                    eni: eni.clone(),
                    updated_at: at,
                    deleted_at: None,
                    addresses_at: at,
                    listed_at: at,
                    ..old
                },
                None => EniRecord::new(eni.clone(), at),
            };
            record.associations.extend(eni.associations.clone());
            // Gone by the snapshot, when exactly is not known: an event
            // older than it that explains the release (a stop, an Elastic
            // IP) still ends the address at its own time.
            if let Some(old) = &existing {
                record.remove_dropped(&old.eni, at);
                // What the snapshot tells of the attachments retells the
                // owners assigns took.
                let mut m = Marks::default();
                self.relabel_retold(old, &record, attempt > 0, &mut m).await?;
                if !m.marks.is_empty() {
                    self.store.put_marks(&m.marks).await?;
                }
            }
            if self.store.put_eni(&record).await? == EniWrite::Written {
                // Every name, not only the new ones: a run that made the
                // ENI known may have failed before applying what was kept.
                return self.apply_kept(record.references()).await;
            }
        }
        Err(StoreError::Transient(format!("ENI record {} kept changing under {MAX_ATTEMPTS} attempts", eni.eni_id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ownership::testing::ready;
    use crate::ownership::timeline::Interval;
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

    fn instance_at(store: &MemoryStore, key: AddressKey, at: i64) -> Option<Option<String>> {
        ready(store.lookup(&[(key, UnixTime(at))])).unwrap().pop().flatten().map(|o| o.instance_id)
    }

    /// A detach that never arrived: a reconcile shows the interface bare,
    /// so an assign after it is the bare interface's, not the instance's it
    /// left.
    #[test]
    fn a_change_after_a_description_takes_the_described_owner() {
        let store = MemoryStore::new();
        let applier = Applier::new(&store, TagPolicy::default());
        ready(applier.apply(&up(100, &eni("eni-a", "i-1", "a-prod-v001", &["10.0.0.50"])))).unwrap();
        let mut bare = Applier::<MemoryStore>::bare(&eni("eni-a", "i-1", "a-prod-v001", &["10.0.0.50"]));
        bare.tags.clear();
        ready(applier.reconcile(&[bare], UnixTime(500), &SnapshotScope::default())).unwrap();
        let second: IpAddr = "10.0.0.51".parse().unwrap();
        let assign = Change::AddressesAssigned { at: UnixTime(600), eni_id: "eni-a".into(), addresses: vec![second] };
        ready(applier.apply(&assign)).unwrap();
        let key = AddressKey::new(Scope::Vpc(VPC.into()), second);
        assert_eq!(instance_at(&store, key, 650), Some(None), "the bare interface's");
    }

    /// Every ordering of `0..n`.
    fn permutations(n: usize) -> Vec<Vec<usize>> {
        (0..n).fold(vec![Vec::new()], |orders, _| {
            orders
                .iter()
                .flat_map(|o| (0..n).filter(|i| !o.contains(i)).map(move |i| [o.as_slice(), &[i]].concat()))
                .collect()
        })
    }

    /// An address taken before an attach, in every delivery order (learned
    /// after the attach, after a description that already listed it, or
    /// while that description was all that told of the attachment): owned
    /// as the bare interface until the attach, then as attached, with one
    /// history.
    #[test]
    fn an_address_learned_late_is_relabelled_at_a_later_attach() {
        let bare = floating("eni-b", &["10.0.0.60"]);
        let second: IpAddr = "10.0.0.61".parse().unwrap();
        let described = described_attached(&bare, &[second], "i-1", "att-b");
        let changes = [
            up(100, &bare),
            Change::Attached {
                at: UnixTime(200),
                eni_id: "eni-b".into(),
                instance_id: "i-1".into(),
                attachment_id: Some("att-b".into()),
            },
            up(300, &described),
            Change::AddressesAssigned { at: UnixTime(150), eni_id: "eni-b".into(), addresses: vec![second] },
        ];
        let key = AddressKey::new(Scope::Vpc(VPC.into()), second);
        assert_one_history(&changes, &key, &[(170, None), (250, Some("i-1"))]);
    }

    fn attach(at: i64, eni: &str, instance: &str, attachment: &str) -> Change {
        Change::Attached {
            at: UnixTime(at),
            eni_id: eni.into(),
            instance_id: instance.into(),
            attachment_id: Some(attachment.into()),
        }
    }

    fn floating(id: &str, addrs: &[&str]) -> Eni {
        let mut e = Eni::new(id);
        e.vpc_id = Some(VPC.into());
        e.private_addresses = addrs.iter().map(|a| a.parse().unwrap()).collect();
        e
    }

    /// `eni` described attached to `instance` by `attachment`, holding
    /// `more` besides.
    fn described_attached(eni: &Eni, more: &[IpAddr], instance: &str, attachment: &str) -> Eni {
        let mut e = Applier::<MemoryStore>::attached(eni, instance, Some(&attachment.to_owned()));
        e.private_addresses.extend(more);
        e
    }

    /// `changes` in every order: the instance `key`'s owner was attached
    /// to at each probe time, and one history.
    fn assert_one_history(changes: &[Change], key: &AddressKey, probes: &[(i64, Option<&str>)]) {
        let mut histories: Vec<(Vec<usize>, Vec<Interval>)> = Vec::new();
        for order in permutations(changes.len()) {
            let store = MemoryStore::new();
            let applier = Applier::new(&store, TagPolicy::default());
            for i in &order {
                ready(applier.apply(&changes[*i])).unwrap();
            }
            for (t, instance) in probes {
                let want = Some(instance.map(str::to_owned));
                assert_eq!(instance_at(&store, key.clone(), *t), want, "at {t}, order {order:?}");
            }
            histories.push((order, ready(store.timeline(key)).unwrap().intervals(key)));
        }
        for (order, h) in &histories {
            assert_eq!(h, &histories[0].1, "order {order:?}, against {:?}", histories[0].0);
        }
    }

    /// The intervals of `keys` after `fixed`, then `changes` in every
    /// order: the distinct ones, with an order that gives each.
    fn histories(fixed: &[Change], changes: &[Change], keys: &[AddressKey]) -> Vec<(Vec<usize>, Vec<Interval>)> {
        let mut out: Vec<(Vec<usize>, Vec<Interval>)> = Vec::new();
        for order in permutations(changes.len()) {
            let store = MemoryStore::new();
            let applier = Applier::new(&store, TagPolicy::default());
            for c in fixed.iter().chain(order.iter().map(|i| &changes[*i])) {
                ready(applier.apply(c)).unwrap();
            }
            let h: Vec<Interval> = keys.iter().flat_map(|k| ready(store.timeline(k)).unwrap().intervals(k)).collect();
            if !out.iter().any(|(_, x)| *x == h) {
                out.push((order, h));
            }
        }
        out
    }

    /// Retold in every order: an assign of more addresses than the record
    /// remembers attachments for, and an Elastic IP named by allocation
    /// only (dated from the association by the description).
    #[test]
    fn every_address_a_change_dated_is_retold() {
        let bare = floating("eni-b", &["10.0.0.60"]);
        let many: Vec<IpAddr> = (1..=9).map(|i| format!("10.0.1.{i}").parse().unwrap()).collect();
        let eip: IpAddr = "3.3.3.3".parse().unwrap();
        let mut described = described_attached(&bare, &many, "i-1", "att-b");
        described.public_addresses.push(eip);
        described.elastic_addresses.push(eip);
        described.allocations.insert("eipalloc-1".into(), eip);
        described.associations.insert("eipassoc-1".into(), eip);
        let changes = [
            attach(200, "eni-b", "i-1", "att-b"),
            up(300, &described),
            Change::AddressesAssigned { at: UnixTime(150), eni_id: "eni-b".into(), addresses: many.clone() },
            Change::PublicAssociated {
                at: UnixTime(160),
                public_ip: None,
                allocation_id: Some("eipalloc-1".into()),
                association_id: Some("eipassoc-1".into()),
                eni_id: Some("eni-b".into()),
                instance_id: None,
            },
        ];
        let vpc = |a: &IpAddr| AddressKey::new(Scope::Vpc(VPC.into()), *a);
        let keys = [vpc(&many[0]), vpc(&many[8]), AddressKey::new(Scope::Global, eip)];
        let found = histories(&[up(100, &bare)], &changes, &keys);
        assert_eq!(found.len(), 1, "{found:#?}");
        let bare_then =
            |k: &AddressKey| found[0].1.iter().any(|i| i.address == k.address && i.owner.instance_id.is_none());
        assert!(keys.iter().all(bare_then), "bare until the attach: {found:#?}");
    }

    /// A reconcile's description retells like a description event: the
    /// same history whether the assign came before or after it.
    #[test]
    fn a_reconcile_retells_what_assigns_were_taken_by() {
        let bare = floating("eni-c", &["10.0.0.80"]);
        let second: IpAddr = "10.0.0.81".parse().unwrap();
        let described = described_attached(&bare, &[second], "i-2", "att-2");
        let fixed = [
            up(100, &bare),
            attach(120, "eni-c", "i-1", "att-1"),
            Change::Detached { at: UnixTime(140), attachment_id: "att-1".into() },
        ];
        let assign = Change::AddressesAssigned { at: UnixTime(150), eni_id: "eni-c".into(), addresses: vec![second] };
        let key = AddressKey::new(Scope::Vpc(VPC.into()), second);
        let mut seen = Vec::new();
        for reconcile_first in [false, true] {
            let store = MemoryStore::new();
            let applier = Applier::new(&store, TagPolicy::default());
            for c in &fixed {
                ready(applier.apply(c)).unwrap();
            }
            let snapshot = [described.clone()];
            let scope = SnapshotScope::default();
            let reconcile = || ready(applier.reconcile(&snapshot, UnixTime(300), &scope)).unwrap();
            if reconcile_first {
                reconcile();
                ready(applier.apply(&assign)).unwrap();
            } else {
                ready(applier.apply(&assign)).unwrap();
                reconcile();
            }
            seen.push(ready(store.timeline(&key)).unwrap().intervals(&key));
        }
        assert_eq!(seen[0], seen[1]);
    }

    /// An attachment the record forgot (the ninth since) says nothing new
    /// of the times it covered: what an assign then was taken by stays.
    #[test]
    fn a_forgotten_attachment_retells_nothing() {
        let store = MemoryStore::new();
        let applier = Applier::new(&store, TagPolicy::default());
        let second: IpAddr = "10.0.0.91".parse().unwrap();
        ready(applier.apply(&up(0, &floating("eni-f", &["10.0.0.90"])))).unwrap();
        for n in 1..=9i64 {
            ready(applier.apply(&attach(n * 10, "eni-f", &format!("i-{n}"), &format!("att-{n}")))).unwrap();
            if n == 1 {
                let assign =
                    Change::AddressesAssigned { at: UnixTime(15), eni_id: "eni-f".into(), addresses: vec![second] };
                ready(applier.apply(&assign)).unwrap();
            }
            if n < 9 {
                let at = UnixTime(n * 10 + if n == 1 { 7 } else { 5 });
                ready(applier.apply(&Change::Detached { at, attachment_id: format!("att-{n}") })).unwrap();
            }
        }
        let key = AddressKey::new(Scope::Vpc(VPC.into()), second);
        assert_eq!(instance_at(&store, key, 16), Some(Some("i-1".into())));
    }

    /// A description older than the record's detach does not attach the
    /// record again: an assign after the detach stays the bare interface's.
    #[test]
    fn an_older_description_leaves_a_newer_detach() {
        let bare = floating("eni-g", &["10.0.0.70"]);
        let described = described_attached(&bare, &[], "i-2", "att-2");
        let second: IpAddr = "10.0.0.71".parse().unwrap();
        let store = MemoryStore::new();
        let applier = Applier::new(&store, TagPolicy::default());
        for c in [
            up(10, &bare),
            attach(60, "eni-g", "i-2", "att-2"),
            Change::Detached { at: UnixTime(90), attachment_id: "att-2".into() },
            Change::AddressesAssigned { at: UnixTime(130), eni_id: "eni-g".into(), addresses: vec![second] },
            up(60, &described),
        ] {
            ready(applier.apply(&c)).unwrap();
        }
        let key = AddressKey::new(Scope::Vpc(VPC.into()), second);
        assert_eq!(instance_at(&store, key, 140), Some(None), "detached at 90");
        let record = ready(store.eni(&EniRef::Id("eni-g".into()))).unwrap().unwrap();
        assert_eq!(record.eni.instance_id, None);
    }

    /// Ends learned before what they end, each in every order with one
    /// history: an unassign before its instance's end (the end still
    /// closes the address at its time), an instance's end before an
    /// assign whose interface a later detach shows outlived it, and an
    /// unassign before the older description that listed the address.
    #[test]
    fn ends_learned_first_keep_their_own_time() {
        let bare = floating("eni-h", &["10.0.0.60"]);
        let second: IpAddr = "10.0.0.61".parse().unwrap();
        let key = AddressKey::new(Scope::Vpc(VPC.into()), second);
        let assign =
            |at: i64| Change::AddressesAssigned { at: UnixTime(at), eni_id: "eni-h".into(), addresses: vec![second] };
        let unassign =
            |at: i64| Change::AddressesUnassigned { at: UnixTime(at), eni_id: "eni-h".into(), addresses: vec![second] };
        let end = |at: i64, instance: &str| down(at, instance);
        let described = described_attached(&bare, &[second], "i-1", "att-1");
        // The changes, and the instance the owner is attached to at times
        // (`None`: no owner).
        type Probes<'a> = &'a [(i64, Option<Option<&'a str>>)];
        let cases: [(Vec<Change>, Probes); 3] = [
            (
                vec![attach(110, "eni-h", "i-2", "att-2"), assign(125), end(145, "i-2"), unassign(150)],
                &[(130, Some(Some("i-2"))), (147, None)],
            ),
            (
                vec![
                    assign(15),
                    attach(20, "eni-h", "i-1", "att-1"),
                    end(30, "i-1"),
                    Change::Detached { at: UnixTime(50), attachment_id: "att-1".into() },
                ],
                &[(17, Some(None)), (40, Some(Some("i-1"))), (60, Some(None))],
            ),
            (
                vec![attach(20, "eni-h", "i-1", "att-1"), up(40, &described), unassign(55)],
                &[(45, Some(Some("i-1"))), (60, None)],
            ),
        ];
        for (changes, probes) in cases {
            let found = histories(&[up(10, &bare)], &changes, std::slice::from_ref(&key));
            assert_eq!(found.len(), 1, "{found:#?}");
            let (order, _) = &found[0];
            let store = MemoryStore::new();
            let applier = Applier::new(&store, TagPolicy::default());
            for c in std::iter::once(&up(10, &bare)).chain(order.iter().map(|i| &changes[*i])) {
                ready(applier.apply(c)).unwrap();
            }
            for (t, want) in probes {
                let want = want.map(|i| i.map(str::to_owned));
                assert_eq!(instance_at(&store, key.clone(), *t), want, "at {t} of {changes:?}");
            }
        }
    }

    /// An interface outlived two instances (each detach seen after the
    /// end), and gave its address up before either: the release, learned
    /// last, still ends the address at its time (the spared ends revive
    /// nothing).
    #[test]
    fn a_release_learned_last_outlasts_spared_instance_ends() {
        let second: IpAddr = "10.0.0.51".parse().unwrap();
        let changes = [
            attach(55, "eni-e", "i-1", "att-1"),
            down(80, "i-1"),
            Change::Detached { at: UnixTime(85), attachment_id: "att-1".into() },
            attach(105, "eni-e", "i-2", "att-2"),
            down(155, "i-2"),
            Change::AddressesAssigned { at: UnixTime(20), eni_id: "eni-e".into(), addresses: vec![second] },
            Change::Detached { at: UnixTime(160), attachment_id: "att-2".into() },
            Change::AddressesUnassigned { at: UnixTime(40), eni_id: "eni-e".into(), addresses: vec![second] },
        ];
        let key = AddressKey::new(Scope::Vpc(VPC.into()), second);
        let mut in_time: Vec<usize> = (0..changes.len()).collect();
        in_time.sort_by_key(|i| changes[*i].at());
        let mut histories = Vec::new();
        for order in [in_time, (0..changes.len()).collect()] {
            let store = MemoryStore::new();
            let applier = Applier::new(&store, TagPolicy::default());
            ready(applier.apply(&up(10, &floating("eni-e", &["10.0.0.50"])))).unwrap();
            for i in &order {
                ready(applier.apply(&changes[*i])).unwrap();
            }
            assert_eq!(instance_at(&store, key.clone(), 30), Some(None), "order {order:?}");
            assert_eq!(instance_at(&store, key.clone(), 157), None, "released at 40, order {order:?}");
            histories.push(ready(store.timeline(&key)).unwrap().intervals(&key));
        }
        assert_eq!(histories[0], histories[1]);
    }

    /// A deletion learned before the interface's description: the assign
    /// and unassign learned between wait for it, and the address is held
    /// from the assign to the unassign in every order.
    #[test]
    fn changes_after_a_deletion_learned_first_wait_for_the_description() {
        let second: IpAddr = "10.0.0.41".parse().unwrap();
        let changes = [
            up(10, &floating("eni-d", &["10.0.0.40"])),
            Change::AddressesAssigned { at: UnixTime(35), eni_id: "eni-d".into(), addresses: vec![second] },
            Change::AddressesUnassigned { at: UnixTime(85), eni_id: "eni-d".into(), addresses: vec![second] },
            Change::EniDeleted { at: UnixTime(170), eni_id: "eni-d".into() },
        ];
        let key = AddressKey::new(Scope::Vpc(VPC.into()), second);
        let found = histories(&[], &changes, std::slice::from_ref(&key));
        assert_eq!(found.len(), 1, "{found:#?}");
        let interval = |i: &Interval| (i.from.0, i.to.map(|t| t.0));
        assert_eq!(found[0].1.iter().map(interval).collect::<Vec<_>>(), vec![(35, Some(85))]);
    }

    /// An address released and taken again before an attach and a
    /// detach: both label it, whichever release was learned first.
    #[test]
    fn an_address_taken_again_is_labelled_by_later_attaches_and_detaches() {
        let second: IpAddr = "10.0.0.31".parse().unwrap();
        let assign =
            |at: i64| Change::AddressesAssigned { at: UnixTime(at), eni_id: "eni-r".into(), addresses: vec![second] };
        let unassign =
            |at: i64| Change::AddressesUnassigned { at: UnixTime(at), eni_id: "eni-r".into(), addresses: vec![second] };
        let changes = [
            assign(30),
            unassign(40),
            assign(55),
            attach(60, "eni-r", "i-1", "att-1"),
            Change::Detached { at: UnixTime(70), attachment_id: "att-1".into() },
            unassign(110),
        ];
        let key = AddressKey::new(Scope::Vpc(VPC.into()), second);
        let found = histories(&[up(10, &floating("eni-r", &["10.0.0.30"]))], &changes, std::slice::from_ref(&key));
        assert_eq!(found.len(), 1, "{found:#?}");
        let owners: Vec<(i64, Option<i64>, Option<String>)> =
            found[0].1.iter().map(|i| (i.from.0, i.to.map(|t| t.0), i.owner.instance_id.clone())).collect();
        let want =
            vec![(30, Some(40), None), (55, Some(60), None), (60, Some(70), Some("i-1".into())), (70, Some(110), None)];
        assert_eq!(owners, want);
    }

    /// An address assigned, released and assigned again while the
    /// attachment was known only from a description: an attach learned
    /// later retells both assigns, not only the latest, so each holding
    /// is the bare interface's until the attach, in every order.
    #[test]
    fn every_assign_of_an_address_taken_twice_is_retold() {
        let bare = floating("eni-t", &["10.0.0.80"]);
        let second: IpAddr = "10.0.0.81".parse().unwrap();
        let described = described_attached(&bare, &[second], "i-1", "att-t");
        let assign =
            |at: i64| Change::AddressesAssigned { at: UnixTime(at), eni_id: "eni-t".into(), addresses: vec![second] };
        let changes = [
            assign(100),
            Change::AddressesUnassigned { at: UnixTime(150), eni_id: "eni-t".into(), addresses: vec![second] },
            assign(200),
            attach(250, "eni-t", "i-1", "att-t"),
            up(300, &described),
        ];
        let key = AddressKey::new(Scope::Vpc(VPC.into()), second);
        let found = histories(&[up(10, &bare)], &changes, std::slice::from_ref(&key));
        assert_eq!(found.len(), 1, "{found:#?}");
        let owners: Vec<(i64, Option<i64>, Option<String>)> =
            found[0].1.iter().map(|i| (i.from.0, i.to.map(|t| t.0), i.owner.instance_id.clone())).collect();
        let want = vec![(100, Some(150), None), (200, Some(250), None), (250, None, Some("i-1".into()))];
        assert_eq!(owners, want);
    }

    /// An address released and taken again in the same second is held
    /// through it (the timeline sorts the close before the open), so a
    /// later attach labels it whichever of the two was learned first.
    #[test]
    fn an_address_released_and_taken_in_one_second_is_labelled_later() {
        let bare = floating("eni-s", &["10.0.0.80"]);
        let second: IpAddr = "10.0.0.81".parse().unwrap();
        let assign =
            |at: i64| Change::AddressesAssigned { at: UnixTime(at), eni_id: "eni-s".into(), addresses: vec![second] };
        let changes = [
            assign(30),
            Change::AddressesUnassigned { at: UnixTime(50), eni_id: "eni-s".into(), addresses: vec![second] },
            assign(50),
            attach(60, "eni-s", "i-1", "att-s"),
            Change::Detached { at: UnixTime(80), attachment_id: "att-s".into() },
        ];
        let key = AddressKey::new(Scope::Vpc(VPC.into()), second);
        let found = histories(&[up(10, &bare)], &changes, std::slice::from_ref(&key));
        assert_eq!(found.len(), 1, "{found:#?}");
        let owners: Vec<(i64, Option<i64>, Option<String>)> =
            found[0].1.iter().map(|i| (i.from.0, i.to.map(|t| t.0), i.owner.instance_id.clone())).collect();
        let want = vec![(30, Some(60), None), (60, Some(80), Some("i-1".into())), (80, None, None)];
        assert_eq!(owners, want);
    }

    /// A description older than the record (an attach learned first) but
    /// newer than its address lists: its addresses are the newest known,
    /// so the record takes them, and the instance's end learned later
    /// closes them with the rest (the assign was never seen: only the
    /// description tells of the address). Every order.
    #[test]
    fn an_older_description_newer_than_the_address_lists_gives_its_addresses() {
        let bare = floating("eni-g", &["10.0.0.70"]);
        let second: IpAddr = "10.0.0.71".parse().unwrap();
        let mut with2 = bare.clone();
        with2.private_addresses.push(second);
        let changes = [attach(40, "eni-g", "i-1", "att-1"), up(30, &with2), down(90, "i-1")];
        let key = AddressKey::new(Scope::Vpc(VPC.into()), second);
        let found = histories(&[up(10, &bare)], &changes, std::slice::from_ref(&key));
        assert_eq!(found.len(), 1, "{found:#?}");
        let owners: Vec<(i64, Option<i64>, Option<String>)> =
            found[0].1.iter().map(|i| (i.from.0, i.to.map(|t| t.0), i.owner.instance_id.clone())).collect();
        assert_eq!(owners, vec![(30, Some(40), None), (40, Some(90), Some("i-1".into()))]);
    }

    /// An instance that ended while its interface stayed attached (the
    /// detach came later): the end's close is spared whatever was learned
    /// last: the attach (a description dated the attachment after the
    /// end), or an assign whose address the end's close reached first.
    #[test]
    fn an_end_the_interface_outlived_is_spared_when_the_attach_or_an_assign_comes_last() {
        let bare = floating("eni-o", &["10.0.0.90"]);
        let second: IpAddr = "10.0.0.91".parse().unwrap();
        let mut described = described_attached(&bare, &[second], "i-1", "att-o");
        let changes = [
            attach(30, "eni-o", "i-1", "att-o"),
            down(40, "i-1"),
            up(60, &described),
            Change::AddressesAssigned { at: UnixTime(35), eni_id: "eni-o".into(), addresses: vec![second] },
            Change::Detached { at: UnixTime(80), attachment_id: "att-o".into() },
        ];
        let keys = [
            AddressKey::new(Scope::Vpc(VPC.into()), "10.0.0.90".parse().unwrap()),
            AddressKey::new(Scope::Vpc(VPC.into()), second),
        ];
        let found = histories(&[up(10, &bare)], &changes, &keys);
        assert_eq!(found.len(), 1, "{found:#?}");
        let owners: Vec<(i64, Option<i64>, Option<String>)> =
            found[0].1.iter().map(|i| (i.from.0, i.to.map(|t| t.0), i.owner.instance_id.clone())).collect();
        let i1 = || Some("i-1".to_owned());
        let want =
            vec![(10, Some(30), None), (30, Some(80), i1()), (80, None, None), (35, Some(80), i1()), (80, None, None)];
        assert_eq!(owners, want);

        // Ended in the detach's second, the address taken again last.
        described.private_addresses.retain(|a| *a != second);
        let assign =
            |at: i64| Change::AddressesAssigned { at: UnixTime(at), eni_id: "eni-o".into(), addresses: vec![second] };
        let changes = [
            attach(30, "eni-o", "i-1", "att-o"),
            Change::Detached { at: UnixTime(90), attachment_id: "att-o".into() },
            down(90, "i-1"),
            assign(65),
            Change::AddressesUnassigned { at: UnixTime(75), eni_id: "eni-o".into(), addresses: vec![second] },
            assign(85),
        ];
        let found = histories(&[up(10, &bare)], &changes, &keys[1..]);
        assert_eq!(found.len(), 1, "{found:#?}");
        let owners: Vec<(i64, Option<i64>, Option<String>)> =
            found[0].1.iter().map(|i| (i.from.0, i.to.map(|t| t.0), i.owner.instance_id.clone())).collect();
        assert_eq!(owners, vec![(65, Some(75), i1()), (85, Some(90), i1()), (90, None, None)]);
    }

    /// The (from, to, instance) of each interval of `key` in the one
    /// history `changes` give after `fixed` in every order.
    fn one_history(fixed: &[Change], changes: &[Change], key: &AddressKey) -> Vec<(i64, Option<i64>, Option<String>)> {
        let found = histories(fixed, changes, std::slice::from_ref(key));
        assert_eq!(found.len(), 1, "{found:#?}");
        found[0].1.iter().map(|i| (i.from.0, i.to.map(|t| t.0), i.owner.instance_id.clone())).collect()
    }

    /// An instance's end learned before an earlier attachment's attach
    /// (its detach still unknown) does not close what the interface held:
    /// a later attachment, which outlived the end, shows that one had
    /// ended by then.
    #[test]
    fn an_earlier_attachment_learned_late_does_not_take_the_end() {
        let key = AddressKey::new(Scope::Vpc(VPC.into()), "10.0.0.72".parse().unwrap());
        let changes = [
            attach(20, "eni-h", "i-1", "att-3"),
            Change::Detached { at: UnixTime(50), attachment_id: "att-3".into() },
            attach(70, "eni-h", "i-1", "att-4"),
            Change::Detached { at: UnixTime(110), attachment_id: "att-4".into() },
            down(80, "i-1"),
        ];
        let i1 = || Some("i-1".to_owned());
        let want = vec![
            (11, Some(20), None),
            (20, Some(50), i1()),
            (50, Some(70), None),
            (70, Some(110), i1()),
            (110, None, None),
        ];
        assert_eq!(one_history(&[up(11, &floating("eni-h", &["10.0.0.72"]))], &changes, &key), want);
    }

    /// A deletion learned first, then the interface's description and
    /// attach: the instance's end still closes its addresses (the
    /// deletion's placeholder record is not a description).
    #[test]
    fn a_deletion_learned_first_keeps_the_attachment_the_end_closes() {
        let key = AddressKey::new(Scope::Vpc(VPC.into()), "10.0.0.70".parse().unwrap());
        let changes = [
            up(10, &floating("eni-g", &["10.0.0.70"])),
            attach(50, "eni-g", "i-3", "att-1"),
            down(90, "i-3"),
            Change::EniDeleted { at: UnixTime(100), eni_id: "eni-g".into() },
        ];
        let want = vec![(10, Some(50), None), (50, Some(90), Some("i-3".to_owned()))];
        assert_eq!(one_history(&[], &changes, &key), want);

        // Described attached, stopped, deleted: the stop releases the
        // auto-assigned public address.
        let public: IpAddr = "54.0.0.3".parse().unwrap();
        let mut p = described_attached(&floating("eni-p", &["10.0.0.73"]), &[], "i-2", "att-p");
        p.public_addresses.push(public);
        let changes = [
            up(13, &p),
            Change::InstanceStopped { at: UnixTime(61), instance_id: "i-2".into() },
            Change::EniDeleted { at: UnixTime(160), eni_id: "eni-p".into() },
        ];
        let key = AddressKey::new(Scope::Global, public);
        assert_eq!(one_history(&[], &changes, &key), vec![(13, Some(61), Some("i-2".to_owned()))]);
    }

    /// A stop of the instance an interface left, learned before the attach
    /// elsewhere, does not date the record past that attach: an assign
    /// after it takes the new instance's owner.
    #[test]
    fn a_stop_of_a_former_instance_does_not_hide_a_later_attach() {
        let second: IpAddr = "10.0.0.71".parse().unwrap();
        let changes = [
            attach(40, "eni-g", "i-1", "att-1"),
            Change::Detached { at: UnixTime(70), attachment_id: "att-1".into() },
            attach(100, "eni-g", "i-2", "att-2"),
            Change::InstanceStopped { at: UnixTime(110), instance_id: "i-1".into() },
            Change::AddressesAssigned { at: UnixTime(135), eni_id: "eni-g".into(), addresses: vec![second] },
        ];
        let key = AddressKey::new(Scope::Vpc(VPC.into()), second);
        let want = vec![(135, None, Some("i-2".to_owned()))];
        assert_eq!(one_history(&[up(10, &floating("eni-g", &["10.0.0.70"]))], &changes, &key), want);
    }

    /// A newer description without an auto-assigned public address
    /// records its release, so a stop learned after it still ends the
    /// address at the stop.
    #[test]
    fn a_description_that_drops_a_public_address_leaves_it_to_the_stop() {
        let public: IpAddr = "54.0.0.3".parse().unwrap();
        let p0 = described_attached(&floating("eni-p", &["10.0.0.73"]), &[], "i-1", "att-p");
        let mut p = p0.clone();
        p.public_addresses.push(public);
        let changes =
            [up(13, &p), Change::InstanceStopped { at: UnixTime(120), instance_id: "i-1".into() }, up(212, &p0)];
        let key = AddressKey::new(Scope::Global, public);
        assert_eq!(one_history(&[], &changes, &key), vec![(13, Some(120), Some("i-1".to_owned()))]);
    }

    /// A detach, the next attach and an assign in one second: the address
    /// is the new instance's from then, whichever was learned last (the
    /// detach's bare label would share the attach's key).
    #[test]
    fn a_detach_and_the_next_attach_in_one_second_label_as_the_attach() {
        let second: IpAddr = "10.0.0.71".parse().unwrap();
        let changes = [
            attach(50, "eni-g", "i-3", "att-1"),
            Change::Detached { at: UnixTime(90), attachment_id: "att-1".into() },
            attach(90, "eni-g", "i-2", "att-2"),
            Change::AddressesAssigned { at: UnixTime(90), eni_id: "eni-g".into(), addresses: vec![second] },
        ];
        let fixed = [up(10, &floating("eni-g", &["10.0.0.70"]))];
        let key = AddressKey::new(Scope::Vpc(VPC.into()), second);
        assert_eq!(one_history(&fixed, &changes, &key), vec![(90, None, Some("i-2".to_owned()))]);
        let key = AddressKey::new(Scope::Vpc(VPC.into()), "10.0.0.70".parse().unwrap());
        let want =
            vec![(10, Some(50), None), (50, Some(90), Some("i-3".to_owned())), (90, None, Some("i-2".to_owned()))];
        assert_eq!(one_history(&fixed, &changes, &key), want);
    }

    /// An older description learned after an attach, when only changes
    /// (a stop releasing nothing, an assign of another address) touched
    /// the record's lists since its last description: the addresses it
    /// lists are not taken for given up, and the attach labels them.
    #[test]
    fn an_older_description_after_changes_only_gives_up_nothing() {
        let second: IpAddr = "10.0.0.21".parse().unwrap();
        let mut described = floating("eni-b", &["10.0.0.20"]);
        described.private_addresses.push(second);
        let fixed = [up(12, &floating("eni-b", &["10.0.0.20"]))];
        let key = AddressKey::new(Scope::Vpc(VPC.into()), second);
        let i1 = || Some("i-1".to_owned());
        let stop = Change::InstanceStopped { at: UnixTime(30), instance_id: "i-1".into() };
        let changes = [attach(50, "eni-b", "i-1", "att-b1"), stop, up(15, &described)];
        assert_eq!(one_history(&fixed, &changes, &key), vec![(15, Some(50), None), (50, None, i1())]);

        let assign = |at: i64, a: &str| Change::AddressesAssigned {
            at: UnixTime(at),
            eni_id: "eni-b".into(),
            addresses: vec![a.parse().unwrap()],
        };
        let changes = [
            attach(50, "eni-b", "i-1", "att-b1"),
            assign(25, "10.0.0.22"),
            up(15, &described),
            assign(14, "10.0.0.21"),
        ];
        assert_eq!(one_history(&fixed, &changes, &key), vec![(14, Some(50), None), (50, None, i1())]);
    }

    /// The primary interface of `i-1` described at `at` with the public
    /// addresses `publics` (auto-assigned).
    fn primary(at: i64, publics: &[&str]) -> Change {
        let mut e = described_attached(&floating("eni-a", &["10.0.0.10"]), &[], "i-1", "att-a");
        e.public_addresses = publics.iter().map(|a| a.parse().unwrap()).collect();
        up(at, &e)
    }

    /// Stops and descriptions of an instance whose public address changes
    /// at each start: each stop ends the address held then, whichever
    /// order they come in (an earlier stop learned late does not take an
    /// address taken after it, and a description in the stop's own second
    /// does not hide the address from the stop).
    #[test]
    fn each_stop_ends_the_public_address_held_then() {
        let stop = |at: i64| Change::InstanceStopped { at: UnixTime(at), instance_id: "i-1".into() };
        let second = AddressKey::new(Scope::Global, "54.0.0.2".parse().unwrap());
        let changes = [primary(10, &["54.0.0.1"]), stop(20), primary(35, &["54.0.0.2"]), stop(40), primary(65, &[])];
        assert_eq!(one_history(&[], &changes, &second), vec![(35, Some(40), Some("i-1".to_owned()))]);

        let first = AddressKey::new(Scope::Global, "54.0.0.1".parse().unwrap());
        let changes = [primary(10, &["54.0.0.1"]), stop(40), primary(40, &[])];
        assert_eq!(one_history(&[], &changes, &first), vec![(10, Some(40), Some("i-1".to_owned()))]);
    }

    /// Three starts, three public addresses, three stops: the middle one
    /// ends at its own stop in every order (a description newer than a
    /// stop learned first gives the record its lists, so an older one
    /// learned after tells what they dropped).
    #[test]
    fn a_middle_public_address_ends_at_its_own_stop_in_any_order() {
        let stop = |at: i64| Change::InstanceStopped { at: UnixTime(at), instance_id: "i-1".into() };
        let changes = [
            primary(10, &["54.0.0.1"]),
            stop(20),
            primary(30, &["54.0.0.2"]),
            stop(40),
            primary(50, &["54.0.0.3"]),
            stop(60),
        ];
        let middle = AddressKey::new(Scope::Global, "54.0.0.2".parse().unwrap());
        assert_eq!(one_history(&[], &changes, &middle), vec![(30, Some(40), Some("i-1".to_owned()))]);
    }

    /// Random runs of an instance through stops and starts, each start a
    /// new auto-assigned public address, told by descriptions (one at each
    /// start, up to two more at random times, some in a stop's second): in
    /// time order each address runs from its start to its stop, and 40
    /// shuffled orders each give the same.
    #[test]
    fn random_stops_and_starts_give_each_public_address_its_own_stop() {
        let mut next = draws(0x9e37_79b9_7f4a_7c15);
        for world in 0..150 {
            // (address, start, stop)
            let mut runs: Vec<(String, i64, Option<i64>)> = Vec::new();
            let mut start = 10;
            for i in 1..=1 + next(3) {
                let stop = (next(4) > 0).then(|| start + 10 + 5 * next(4));
                runs.push((format!("54.0.0.{i}"), start, stop));
                match stop {
                    Some(s) => start = s + 5 + 5 * next(3),
                    None => break,
                }
            }
            let held_at = |t: i64| -> Vec<&str> {
                runs.iter().filter(|(_, a, b)| *a <= t && b.is_none_or(|b| t < b)).map(|(p, _, _)| p.as_str()).collect()
            };
            let last = runs.last().map(|(_, a, b)| b.unwrap_or(*a)).unwrap_or(10);
            let mut changes = Vec::new();
            for (_, a, b) in &runs {
                changes.push(primary(*a, &held_at(*a)));
                if let Some(b) = b {
                    changes.push(Change::InstanceStopped { at: UnixTime(*b), instance_id: "i-1".into() });
                }
            }
            for _ in 0..next(3) {
                let t = 10 + 5 * next((last - 10) / 5 + 4);
                changes.push(primary(t, &held_at(t)));
            }
            let keys: Vec<AddressKey> =
                runs.iter().map(|(p, _, _)| AddressKey::new(Scope::Global, p.parse().unwrap())).collect();
            let history = |order: &[usize]| {
                let store = MemoryStore::new();
                let applier = Applier::new(&store, TagPolicy::default());
                for i in order {
                    ready(applier.apply(&changes[*i])).unwrap();
                }
                keys.iter()
                    .flat_map(|k| ready(store.timeline(k)).unwrap().intervals(k))
                    .map(|i| (i.address, i.from.0, i.to.map(|t| t.0)))
                    .collect::<Vec<_>>()
            };
            let want = history_in_any_order(&changes, &mut next, world, history);
            let truth: Vec<_> = runs.iter().map(|(p, a, b)| (p.parse::<IpAddr>().unwrap(), *a, *b)).collect();
            assert_eq!(want, truth, "world {world}: {changes:#?}");
        }
    }

    /// Draws below `n` from a xorshift seeded with `seed`: the same every
    /// run.
    fn draws(mut seed: u64) -> impl FnMut(i64) -> i64 {
        move |n| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as i64
        }
    }

    /// The `history` of `changes` applied in time order, having checked
    /// that 40 orders shuffled with `next` give it too.
    fn history_in_any_order<H: PartialEq + std::fmt::Debug>(
        changes: &[Change],
        next: &mut impl FnMut(i64) -> i64,
        world: usize,
        history: impl Fn(&[usize]) -> H,
    ) -> H {
        let mut in_time: Vec<usize> = (0..changes.len()).collect();
        in_time.sort_by_key(|i| changes[*i].at());
        let want = history(&in_time);
        for _ in 0..40 {
            let mut order = in_time.clone();
            for i in (1..order.len()).rev() {
                order.swap(i, next(i as i64 + 1) as usize);
            }
            assert_eq!(history(&order), want, "world {world}, order {order:?} of {changes:#?}");
        }
        want
    }

    /// Random histories of one interface (attached and detached up to
    /// twice, its instances maybe terminated, a secondary address assigned
    /// and maybe released, maybe twice, a description), every event
    /// delivered: in time order and in 40 shuffled orders each, the same
    /// intervals.
    #[test]
    fn random_interface_histories_give_one_history_in_any_order() {
        let mut next = draws(0x2545_f491_4f6c_dd1d);
        let second: IpAddr = "10.0.0.71".parse().unwrap();
        let keys = [
            AddressKey::new(Scope::Vpc(VPC.into()), "10.0.0.70".parse().unwrap()),
            AddressKey::new(Scope::Vpc(VPC.into()), second),
        ];
        let base = floating("eni-g", &["10.0.0.70"]);
        for world in 0..200 {
            let mut changes = vec![up(10, &base)];
            let mut attachments = Vec::new();
            let mut t = 20 + 10 * next(3);
            let count = 1 + next(2);
            for j in 1..=count {
                let detached = (j < count || next(2) == 0).then(|| t + 20 + 10 * next(4));
                attachments.push((j, t, detached));
                changes.push(attach(t, "eni-g", &format!("i-{j}"), &format!("att-{j}")));
                if let Some(d) = detached {
                    changes.push(Change::Detached { at: UnixTime(d), attachment_id: format!("att-{j}") });
                    // Its instance maybe terminated, before the detach (which
                    // the interface outlives) or after.
                    if next(3) == 0 {
                        changes.push(down(t + 5 + 5 * next((d - t) / 5 + 4), &format!("i-{j}")));
                    }
                }
                t = detached.unwrap_or(t) + 10 + 10 * next(3);
            }
            // The secondary address, held once or (released) twice.
            let mut holdings = Vec::new();
            let mut assigned = 15 + 5 * next(30);
            loop {
                let released = (next(3) == 0).then(|| assigned + 5 + 5 * next(10));
                holdings.push((assigned, released));
                match released {
                    // Taken again, maybe in the release's second.
                    Some(r) if holdings.len() < 2 && next(2) == 0 => assigned = r + 5 * next(8),
                    _ => break,
                }
            }
            for (assigned, released) in &holdings {
                changes.push(Change::AddressesAssigned {
                    at: UnixTime(*assigned),
                    eni_id: "eni-g".into(),
                    addresses: vec![second],
                });
                if let Some(r) = released {
                    changes.push(Change::AddressesUnassigned {
                        at: UnixTime(*r),
                        eni_id: "eni-g".into(),
                        addresses: vec![second],
                    });
                }
            }
            // A description of the interface as it was then.
            let seen = 30 + 10 * next(25);
            let mut described = base.clone();
            if holdings.iter().any(|(a, r)| *a <= seen && r.is_none_or(|r| r > seen)) {
                described.private_addresses.push(second);
            }
            if let Some((j, _, _)) = attachments.iter().find(|(_, a, d)| *a <= seen && d.is_none_or(|d| d > seen)) {
                described.instance_id = Some(format!("i-{j}"));
                described.attachment_id = Some(format!("att-{j}"));
            }
            changes.push(up(seen, &described));
            let history = |order: &[usize]| {
                let store = MemoryStore::new();
                let applier = Applier::new(&store, TagPolicy::default());
                for i in order {
                    ready(applier.apply(&changes[*i])).unwrap();
                }
                keys.iter().flat_map(|k| ready(store.timeline(k)).unwrap().intervals(k)).collect::<Vec<_>>()
            };
            history_in_any_order(&changes, &mut next, world, history);
        }
    }

    /// An address taken while the interface was between two instances:
    /// every order of the attach, detach and assign tells the owner then
    /// afresh (attached, then bare), and the label told last wins.
    #[test]
    fn the_owner_an_address_was_taken_by_is_told_from_the_latest_record() {
        let mut bare = Eni::new("eni-c");
        bare.vpc_id = Some(VPC.into());
        bare.private_addresses = vec!["10.0.0.80".parse().unwrap()];
        let second: IpAddr = "10.0.0.81".parse().unwrap();
        let attach = |at: i64, instance: &str, attachment: &str| Change::Attached {
            at: UnixTime(at),
            eni_id: "eni-c".into(),
            instance_id: instance.into(),
            attachment_id: Some(attachment.into()),
        };
        let changes = [
            up(100, &bare),
            attach(120, "i-1", "att-1"),
            Change::Detached { at: UnixTime(140), attachment_id: "att-1".into() },
            Change::AddressesAssigned { at: UnixTime(150), eni_id: "eni-c".into(), addresses: vec![second] },
            attach(200, "i-2", "att-2"),
        ];
        let key = AddressKey::new(Scope::Vpc(VPC.into()), second);
        assert_one_history(&changes, &key, &[(160, None), (250, Some("i-2"))]);
    }

    /// An interface its instance's end did not delete, detached and
    /// attached to another instance: it keeps its address throughout, in
    /// every delivery order, with one history.
    #[test]
    fn an_interface_outliving_its_instance_keeps_its_address() {
        let address: IpAddr = "10.0.0.70".parse().unwrap();
        let mut e = eni("eni-s", "i-1", "s-prod-v001", &["10.0.0.70"]);
        e.attachment_id = Some("att-1".into());
        let changes = [
            up(100, &e),
            down(200, "i-1"),
            Change::Detached { at: UnixTime(210), attachment_id: "att-1".into() },
            Change::Attached {
                at: UnixTime(300),
                eni_id: "eni-s".into(),
                instance_id: "i-2".into(),
                attachment_id: Some("att-2".into()),
            },
        ];
        let key = AddressKey::new(Scope::Vpc(VPC.into()), address);
        let mut histories = Vec::new();
        for order in [[0, 1, 2, 3], [0, 2, 1, 3], [0, 2, 3, 1], [0, 3, 2, 1], [0, 1, 3, 2], [0, 3, 1, 2]] {
            let store = MemoryStore::new();
            let applier = Applier::new(&store, TagPolicy::default());
            for i in order {
                ready(applier.apply(&changes[i])).unwrap();
            }
            assert_eq!(instance_at(&store, key.clone(), 205), Some(Some("i-1".into())), "order {order:?}");
            assert_eq!(instance_at(&store, key.clone(), 250), Some(None), "detached, order {order:?}");
            assert_eq!(instance_at(&store, key.clone(), 350), Some(Some("i-2".into())), "order {order:?}");
            histories.push(ready(store.timeline(&key)).unwrap().intervals(&key));
        }
        assert!(histories.windows(2).all(|w| w[0] == w[1]), "{histories:#?}");
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
    fn running_again_asks_for_a_describe_and_reopens_nothing() {
        let store = MemoryStore::new();
        let applier = Applier::new(&store, TagPolicy::default());
        ready(applier.apply(&up(100, &eni("eni-x", "i-x", "x-prod-v001", &["10.0.0.8"])))).unwrap();
        ready(applier.apply(&Change::InstanceStopped { at: UnixTime(200), instance_id: "i-x".into() })).unwrap();
        let outcome = ready(applier.apply(&Change::InstanceUp { at: UnixTime(300), instance_id: "i-x".into() }));
        // A stop keeps private addresses; the new public one needs a describe.
        assert_eq!(outcome.unwrap(), Outcome::NeedsDescribe { instance_id: "i-x".into() });
        assert_eq!(app_at(&store, "10.0.0.8", 250).as_deref(), Some("x"));
        assert_eq!(app_at(&store, "10.0.0.8", 300).as_deref(), Some("x"));
        // Going away is final: a late `running` does not bring it back.
        ready(applier.apply(&down(400, "i-x"))).unwrap();
        ready(applier.apply(&Change::InstanceUp { at: UnixTime(350), instance_id: "i-x".into() })).unwrap();
        assert_eq!(app_at(&store, "10.0.0.8", 500), None);
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
        assert_eq!(unknown.unwrap(), Outcome::Deferred { reference: "nope".into() });
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

    /// Elastic IP `n` (allocation `eipalloc-n`, association `eipassoc-n`)
    /// associated with `eni-x` at `at`, by address or by allocation only.
    fn associate_eni_x(at: i64, public_ip: Option<&str>, n: &str) -> Change {
        Change::PublicAssociated {
            at: UnixTime(at),
            public_ip: public_ip.map(|ip| ip.parse().unwrap()),
            allocation_id: Some(format!("eipalloc-{n}")),
            association_id: Some(format!("eipassoc-{n}")),
            eni_id: Some("eni-x".into()),
            instance_id: None,
        }
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
        assert_eq!(ready(applier.apply(&start)).unwrap(), Outcome::NeedsDescribe { instance_id: "i-x".into() });
        assert_eq!(public_owner(&store, "54.0.0.1", 3_600), None);
        assert_eq!(public_owner(&store, "3.0.0.1", 3_600).as_deref(), Some("x"));
    }

    /// An association named by allocation only, and the describe it asks
    /// for made minutes later: the Elastic IP is the ENI's from the
    /// association, and a disassociation naming only the association finds
    /// the ENI through the describe.
    #[test]
    fn an_elastic_ip_named_by_allocation_dates_from_its_association() {
        let store = MemoryStore::new();
        let applier = Applier::new(&store, TagPolicy::default());
        let e = with_public(eni("eni-x", "i-x", "x-prod-v001", &["10.0.0.22"]), "54.0.0.3", None);
        ready(applier.apply(&up(100, &e))).unwrap();
        let assoc = associate_eni_x(200, None, "9");
        ready(applier.apply(&assoc)).unwrap();
        let mut described = eni("eni-x", "i-x", "x-prod-v001", &["10.0.0.22"]);
        let elastic: IpAddr = "3.0.0.9".parse().unwrap();
        described.public_addresses = vec![elastic];
        described.elastic_addresses = vec![elastic];
        described.associations.insert("eipassoc-9".into(), elastic);
        described.allocations.insert("eipalloc-9".into(), elastic);
        ready(applier.apply(&up(500, &described))).unwrap();
        assert_eq!(public_owner(&store, "3.0.0.9", 199), None);
        assert_eq!(
            public_owner(&store, "3.0.0.9", 250).as_deref(),
            Some("x"),
            "from the association, not the describe"
        );
        assert_eq!(public_owner(&store, "54.0.0.3", 250), None, "the auto-assigned address went at the association");
        let dis = Change::PublicDisassociated {
            at: UnixTime(600),
            association_id: Some("eipassoc-9".into()),
            public_ip: None,
        };
        assert!(matches!(ready(applier.apply(&dis)).unwrap(), Outcome::AppliedThenDescribe { closed: 1, .. }));
        assert_eq!(public_owner(&store, "3.0.0.9", 650), None);
    }

    /// A reconcile learns first that the auto-assigned address is gone;
    /// the Elastic IP association that released it, learned later, still
    /// ends it at its own time.
    #[test]
    fn a_release_learned_after_a_reconcile_ends_the_address_at_its_time() {
        let store = MemoryStore::new();
        let applier = Applier::new(&store, TagPolicy::default());
        let e = with_public(eni("eni-x", "i-x", "x-prod-v001", &["10.0.0.23"]), "54.0.0.4", None);
        ready(applier.apply(&up(100, &e))).unwrap();
        let now = eni("eni-x", "i-x", "x-prod-v001", &["10.0.0.23"]);
        ready(applier.reconcile(&[now], UnixTime(900), &SnapshotScope::default())).unwrap();
        assert_eq!(public_owner(&store, "54.0.0.4", 500).as_deref(), Some("x"), "the reconcile knows no better");
        let assoc = associate_eni_x(400, Some("3.0.0.4"), "4");
        ready(applier.apply(&assoc)).unwrap();
        assert_eq!(public_owner(&store, "54.0.0.4", 399).as_deref(), Some("x"));
        assert_eq!(public_owner(&store, "54.0.0.4", 500), None);
    }

    #[test]
    fn an_elastic_ip_releases_the_auto_assigned_address() {
        let store = MemoryStore::new();
        let applier = Applier::new(&store, TagPolicy::default());
        let e = with_public(eni("eni-x", "i-x", "x-prod-v001", &["10.0.0.21"]), "54.0.0.2", None);
        ready(applier.apply(&up(100, &e))).unwrap();
        // Named by allocation only: the auto-assigned address goes, and a
        // describe is asked for to learn the Elastic IP.
        let assoc = associate_eni_x(200, None, "1");
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

    /// A change kept for an unknown ENI is applied by the delivery that
    /// makes the ENI known. When that delivery fails after writing the
    /// ENI's record but before applying what was kept, its retry finds the
    /// ENI known already: the kept change must still be applied then (it
    /// was not, and stayed kept forever).
    #[test]
    fn kept_changes_survive_a_failure_after_the_eni_became_known() {
        use crate::faults::{Fault, FaultPlan, Faulty, When};
        let kept_then_known = |crash: bool| {
            let plan = FaultPlan::new();
            let store = Faulty::new(MemoryStore::new(), &plan, "store");
            let applier = Applier::new(&store, TagPolicy::default());
            let assign = Change::AddressesAssigned {
                at: UnixTime(150),
                eni_id: "eni-x".into(),
                addresses: vec!["10.0.0.40".parse().unwrap(), "10.0.0.41".parse().unwrap()],
            };
            let x = up(100, &eni("eni-x", "i-x", "x-prod-v001", &["10.0.0.9"]));
            assert_eq!(ready(applier.apply(&assign)).unwrap(), Outcome::Deferred { reference: "eni-x".into() });
            // The ENI's marks and record are written, then the kept
            // change's marks fail (throttled, or the process dies there).
            if crash {
                plan.crash_after_writes(3, true);
            } else {
                plan.fail("store.put_marks", When::Call(2), Fault::Throttled);
            }
            assert!(ready(applier.apply(&x)).unwrap_err().is_transient());
            assert!(ready(store.inner().eni(&EniRef::Id("eni-x".into()))).unwrap().is_some(), "known already");
            plan.restart();
            // Lambda delivers the event again.
            ready(applier.apply(&x)).unwrap();
            for ip in ["10.0.0.40", "10.0.0.41"] {
                assert_eq!(app_at(store.inner(), ip, 200).as_deref(), Some("x"), "{ip} (crash: {crash})");
            }
            assert_eq!(app_at(store.inner(), "10.0.0.9", 120).as_deref(), Some("x"));
            assert!(ready(store.inner().pending(&EniRef::Id("eni-x".into()))).unwrap().is_empty(), "forgotten");
            // Delivered once more: nothing changes.
            ready(applier.apply(&x)).unwrap();
            assert_eq!(app_at(store.inner(), "10.0.0.40", 200).as_deref(), Some("x"));
        };
        kept_then_known(false);
        kept_then_known(true);
    }

    /// The same for a reconcile that makes the ENI known.
    #[test]
    fn kept_changes_survive_a_failed_reconcile() {
        use crate::faults::{FaultPlan, Faulty};
        let plan = FaultPlan::new();
        let store = Faulty::new(MemoryStore::new(), &plan, "store");
        let applier = Applier::new(&store, TagPolicy::default());
        let assign = Change::AddressesAssigned {
            at: UnixTime(150),
            eni_id: "eni-x".into(),
            addresses: vec!["10.0.0.40".parse().unwrap()],
        };
        ready(applier.apply(&assign)).unwrap();
        let snapshot = vec![eni("eni-x", "i-x", "x-prod-v001", &["10.0.0.9"])];
        let scope = SnapshotScope::default();
        // Marks, sightings, the record: then the process dies.
        plan.crash_after_writes(3, true);
        assert!(ready(applier.reconcile(&snapshot, UnixTime(100), &scope)).is_err());
        plan.restart();
        ready(applier.reconcile(&snapshot, UnixTime(100), &scope)).unwrap();
        assert_eq!(app_at(store.inner(), "10.0.0.40", 200).as_deref(), Some("x"));
    }
}
