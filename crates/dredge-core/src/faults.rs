//! Fault injection (feature `faults`, for tests): [`Faulty`] wraps any
//! backend behind the narrow AWS interfaces ([`OwnershipStore`],
//! [`RecordSink`], [`ObjectStore`] with [`ObjectListing`] and
//! [`MultipartUpload`], [`RetryQueue`]) and fails its calls as a shared
//! [`FaultPlan`] says: throttling, 5xx, timeouts, permanent refusals,
//! responses lost after the call went through, entries of a batch refused
//! while the others are taken, and a process crash between two writes.
//!
//! Every fault is one of the crate's own errors ([`Failure`], [`EntryError`],
//! [`QueueEntryError`]), worded as AWS words it, so the code under test
//! classifies an injected fault exactly as it classifies the SDK error it
//! stands for (`dredge_lambda::sdk_error` makes the same `Failure`s).
//!
//! Calls are named `<wrapper>.<operation>` (`store.put_marks`,
//! `sink.put_records`, `dead_letter.put`, ...), the wrapper's name given at
//! [`Faulty::new`]. A rule's target is `*` (every call), a wrapper's name
//! (its every call), or one call's full name.
//!
//! ```
//! use dredge_core::faults::{Fault, FaultPlan, Faulty, When};
//! use dredge_core::ownership::MemoryStore;
//!
//! let plan = FaultPlan::new();
//! let store = Faulty::new(MemoryStore::new(), &plan, "store");
//! plan.fail("store.put_marks", When::Call(2), Fault::Throttled);
//! plan.fail("store", When::Chance(0.1, 7), Fault::ServerError);
//! # let _ = store;
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::failure::Failure;
use crate::objects::{Listed, MultipartUpload, ObjectError, ObjectListing, ObjectStore, Part, Upload};
use crate::ownership::{
    AddressKey, Change, EniRecord, EniRef, EniWrite, Head, InstanceNote, InstanceNotes, InstanceRecord, Mark, Owner,
    OwnershipStore, Sighting, StoreResult, Timeline, UnixTime,
};
use crate::retry_queue::{QueueEntryError, QueueError, QueueMessage, RetryQueue};
use crate::sink::{EntryError, OutRecord, RecordSink, SinkError};

/// When a rule fires, counting the calls it matches from when it was added.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum When {
    /// The next matching call, once.
    Next,
    /// The `n`-th matching call (1-based), once.
    Call(u64),
    /// Each matching call with probability `p`, from a generator seeded
    /// with the second value: the same seed fails the same calls.
    Chance(f64, u64),
    /// Every matching call.
    Always,
}

/// How a whole call fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `ThrottlingException` (S3's 503 `SlowDown`, Kinesis's
    /// `ProvisionedThroughputExceededException`): transient.
    Throttled,
    /// A 500 from the service: transient.
    ServerError,
    /// No answer in time, the request maybe never sent: transient. The
    /// call does not reach the backend.
    Timeout,
    /// A refusal retrying cannot change (`ValidationException`, access
    /// denied): permanent.
    Permanent,
    /// The call goes through, but its answer is lost on the way back: the
    /// caller sees a timeout (transient) for something that was done.
    LostResponse,
}

impl Fault {
    /// The error the caller sees, as AWS's SDK error for it is classified.
    pub fn failure(self, call: &str) -> Failure {
        match self {
            Fault::Throttled => Failure::Transient(format!("{call}: ThrottlingException: Rate exceeded (injected)")),
            Fault::ServerError => Failure::Transient(format!("{call}: InternalServerError: status 500 (injected)")),
            Fault::Timeout => Failure::Transient(format!("{call}: timeout: no response in time (injected)")),
            Fault::Permanent => Failure::Permanent(format!("{call}: ValidationException: refused for good (injected)")),
            Fault::LostResponse => Failure::Transient(format!(
                "{call}: dispatch failure: connection reset after the request was sent (injected)"
            )),
        }
    }
}

/// How refused entries of a batch call (PutRecords, SendMessageBatch) are
/// refused. A new kind of entry refusal is a new variant here and one arm
/// in each of [`EntryFault::entry_error`] and [`EntryFault::queue_error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryFault {
    /// Over the shard's (or queue's) throughput: worth putting again.
    Throughput,
    /// The service failed on the entry: worth putting again.
    Internal,
}

impl EntryFault {
    /// The refusal as Kinesis words it in a PutRecords answer.
    pub fn entry_error(self) -> EntryError {
        let (code, message) = match self {
            EntryFault::Throughput => (
                "ProvisionedThroughputExceededException",
                "Rate exceeded for shard shardId-000000000000 in stream (injected)",
            ),
            EntryFault::Internal => ("InternalFailure", "Internal service failure (injected)"),
        };
        EntryError { code: code.into(), message: message.into() }
    }

    /// The refusal as SQS words it in a SendMessageBatch answer.
    pub fn queue_error(self) -> QueueEntryError {
        let (code, message) = match self {
            EntryFault::Throughput => ("RequestThrottled", "Request is throttled (injected)"),
            EntryFault::Internal => ("InternalError", "Internal error (injected)"),
        };
        QueueEntryError { code: code.into(), message: message.into(), transient: true }
    }
}

/// Calls made and faults injected, per call name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Calls the wrapper was asked to make (failed ones included).
    pub calls: u64,
    /// Calls failed (whole, lost, crashed, or with entries refused).
    pub faults: u64,
}

#[derive(Debug, Clone, Copy)]
enum Action {
    Fail(Fault),
    /// Refuse each entry with this probability (at least one per call).
    Entries(EntryFault, f64),
}

#[derive(Debug)]
struct Rule {
    target: String,
    when: When,
    action: Action,
    seen: u64,
    rng: Rng,
    spent: bool,
}

impl Rule {
    fn matches(&self, call: &str, wrapper: &str) -> bool {
        self.target == "*" || self.target == call || self.target == wrapper
    }

    /// Counts a matching call; whether the rule fires on it.
    fn fires(&mut self) -> bool {
        self.seen += 1;
        if self.spent {
            return false;
        }
        let fire = match self.when {
            When::Next => true,
            When::Call(n) => self.seen == n,
            When::Chance(p, _) => self.rng.chance(p),
            When::Always => true,
        };
        if fire && matches!(self.when, When::Next | When::Call(_)) {
            self.spent = true;
        }
        fire
    }
}

#[derive(Debug, Clone, Copy)]
struct Crash {
    /// Writes still allowed before the crash.
    writes_left: u64,
    /// Whether the last write's answer reaches the caller.
    ack_last: bool,
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<Rule>,
    counts: BTreeMap<String, Counts>,
    crash: Option<Crash>,
    crashed: bool,
    crashes: u64,
    /// Seeds the entry choices of calls refused in part.
    entries: Rng,
}

/// What a wrapper does with one call.
#[derive(Debug)]
enum Decision {
    Proceed,
    Fail(Failure),
    /// Call through, then fail.
    Lose(Failure),
    /// Refuse some entries (a seed for which), pass the others.
    Entries(EntryFault, f64, u64),
}

/// The faults to inject, shared by every wrapper built on it (cloning
/// shares it): what one test process's backends suffer together.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    state: Arc<Mutex<State>>,
}

impl FaultPlan {
    pub fn new() -> Self {
        FaultPlan::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fails calls to `target` (`*`, a wrapper's name, or a full call name
    /// such as `store.put_marks`) when `when` says, with `fault`.
    pub fn fail(&self, target: &str, when: When, fault: Fault) -> &Self {
        self.add(target, when, Action::Fail(fault))
    }

    /// Refuses part of the entries of batch calls to `target` when `when`
    /// says: each entry with probability `fraction`, at least one; the
    /// others go through. Calls without entries (all but
    /// `put_records` and `send`) are not affected.
    pub fn fail_entries(&self, target: &str, when: When, fault: EntryFault, fraction: f64) -> &Self {
        self.add(target, when, Action::Entries(fault, fraction))
    }

    fn add(&self, target: &str, when: When, action: Action) -> &Self {
        let seed = match when {
            When::Chance(_, seed) => seed,
            _ => 0,
        };
        self.lock().rules.push(Rule {
            target: target.to_owned(),
            when,
            action,
            seen: 0,
            rng: Rng::new(seed),
            spent: false,
        });
        self
    }

    /// Simulates the process dying between two writes: `writes` more
    /// writes (calls that change the backend) go through, then every call
    /// fails until [`restart`](Self::restart). With `ack_last` false the
    /// last of those writes is done but its caller sees it fail.
    pub fn crash_after_writes(&self, writes: u64, ack_last: bool) -> &Self {
        let mut s = self.lock();
        if writes == 0 {
            s.crashed = true;
            s.crashes += 1;
            s.crash = None;
        } else {
            s.crash = Some(Crash { writes_left: writes, ack_last });
        }
        self
    }

    /// Whether the simulated process has crashed (and not restarted).
    pub fn crashed(&self) -> bool {
        self.lock().crashed
    }

    /// How many times the process crashed.
    pub fn crashes(&self) -> u64 {
        self.lock().crashes
    }

    /// A new process: calls go through again (rules stay).
    pub fn restart(&self) {
        let mut s = self.lock();
        s.crashed = false;
        s.crash = None;
    }

    /// No more faults: every rule and any crash to come dropped, the
    /// process restarted. Counters stay.
    pub fn clear(&self) {
        let mut s = self.lock();
        s.rules.clear();
        s.crash = None;
        s.crashed = false;
    }

    /// Calls and faults of every call `target` names (`*`, a wrapper's
    /// name, or one call's full name).
    pub fn counts(&self, target: &str) -> Counts {
        let s = self.lock();
        let mut total = Counts::default();
        for (call, c) in &s.counts {
            let wrapper = call.split('.').next().unwrap_or(call);
            if target == "*" || target == call || target == wrapper {
                total.calls += c.calls;
                total.faults += c.faults;
            }
        }
        total
    }

    pub fn calls(&self, target: &str) -> u64 {
        self.counts(target).calls
    }

    pub fn faults(&self, target: &str) -> u64 {
        self.counts(target).faults
    }

    /// Decides one call.
    fn decide(&self, wrapper: &str, op: &str, write: bool) -> Decision {
        let call = format!("{wrapper}.{op}");
        let mut s = self.lock();
        let s = &mut *s;
        let counts = s.counts.entry(call.clone()).or_default();
        counts.calls += 1;
        if s.crashed {
            counts.faults += 1;
            return Decision::Fail(Failure::Transient(format!("{call}: the process crashed (injected)")));
        }
        let mut decision = Decision::Proceed;
        for rule in s.rules.iter_mut().filter(|r| r.matches(&call, wrapper)) {
            if !rule.fires() || !matches!(decision, Decision::Proceed) {
                continue;
            }
            decision = match rule.action {
                Action::Fail(Fault::LostResponse) => Decision::Lose(Fault::LostResponse.failure(&call)),
                Action::Fail(fault) => Decision::Fail(fault.failure(&call)),
                Action::Entries(fault, fraction) => Decision::Entries(fault, fraction, s.entries.next()),
            };
        }
        // A write that reaches the backend counts towards the crash.
        if write && !matches!(decision, Decision::Fail(_)) {
            if let Some(crash) = &mut s.crash {
                crash.writes_left -= 1;
                if crash.writes_left == 0 {
                    let ack = crash.ack_last;
                    s.crash = None;
                    s.crashed = true;
                    s.crashes += 1;
                    if !ack {
                        decision = Decision::Lose(Failure::Transient(format!(
                            "{call}: the process crashed after sending (injected)"
                        )));
                    }
                }
            }
        }
        if !matches!(decision, Decision::Proceed) {
            counts.faults += 1;
        }
        decision
    }
}

/// A small seeded generator (SplitMix64): the same seed, the same faults.
/// Also what the fault tests draw their orders and shapes from.
#[derive(Debug, Clone, Default)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability `p` (never for `p` = 0).
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p && p > 0.0
    }

    /// In `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// Which of `n` entries to refuse: each with probability `fraction`, at
/// least one.
fn refused(n: usize, fraction: f64, seed: u64) -> Vec<bool> {
    let mut rng = Rng::new(seed);
    let mut out: Vec<bool> = (0..n).map(|_| rng.chance(fraction)).collect();
    if n > 0 && !out.contains(&true) {
        out[(rng.next() % n as u64) as usize] = true;
    }
    out
}

/// A backend that fails as its [`FaultPlan`] says, and otherwise does what
/// the backend it wraps does.
#[derive(Debug, Clone)]
pub struct Faulty<T> {
    inner: T,
    plan: FaultPlan,
    name: String,
}

impl<T> Faulty<T> {
    /// Wraps `inner`; its calls are named `<name>.<operation>`.
    pub fn new(inner: T, plan: &FaultPlan, name: &str) -> Self {
        Faulty { inner, plan: plan.clone(), name: name.to_owned() }
    }

    pub fn inner(&self) -> &T {
        &self.inner
    }

    pub fn into_inner(self) -> T {
        self.inner
    }

    pub fn plan(&self) -> &FaultPlan {
        &self.plan
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs one call that has no entries.
    async fn call<R>(
        &self,
        op: &str,
        write: bool,
        call: impl Future<Output = Result<R, Failure>>,
    ) -> Result<R, Failure> {
        match self.plan.decide(&self.name, op, write) {
            Decision::Proceed | Decision::Entries(..) => call.await,
            Decision::Fail(e) => Err(e),
            Decision::Lose(e) => {
                let _ = call.await;
                Err(e)
            }
        }
    }
}

/// Reads and writes of the ownership store, by name (`store.<method>`).
impl<S: OwnershipStore> OwnershipStore for Faulty<S> {
    async fn put_marks(&self, marks: &[(AddressKey, Mark)]) -> StoreResult<()> {
        self.call("put_marks", true, self.inner.put_marks(marks)).await
    }
    async fn lookup(&self, queries: &[(AddressKey, UnixTime)]) -> StoreResult<Vec<Option<Owner>>> {
        self.call("lookup", false, self.inner.lookup(queries)).await
    }
    async fn heads(&self, keys: &[AddressKey]) -> StoreResult<Vec<Head>> {
        self.call("heads", false, self.inner.heads(keys)).await
    }
    async fn put_seen(&self, seen: &[(AddressKey, Sighting)]) -> StoreResult<()> {
        self.call("put_seen", true, self.inner.put_seen(seen)).await
    }
    async fn note_reconciled(&self, scope: &str, at: UnixTime) -> StoreResult<()> {
        self.call("note_reconciled", true, self.inner.note_reconciled(scope, at)).await
    }
    async fn reconciled(&self) -> StoreResult<Vec<(String, UnixTime)>> {
        self.call("reconciled", false, self.inner.reconciled()).await
    }
    async fn timeline(&self, key: &AddressKey) -> StoreResult<Timeline> {
        self.call("timeline", false, self.inner.timeline(key)).await
    }
    async fn timelines(&self) -> StoreResult<Vec<(AddressKey, Timeline)>> {
        self.call("timelines", false, self.inner.timelines()).await
    }
    async fn eni(&self, by: &EniRef) -> StoreResult<Option<EniRecord>> {
        self.call("eni", false, self.inner.eni(by)).await
    }
    async fn enis_by_id(&self, ids: &[String]) -> StoreResult<Vec<Option<EniRecord>>> {
        self.call("enis_by_id", false, self.inner.enis_by_id(ids)).await
    }
    async fn enis_of_instance(&self, instance_id: &str) -> StoreResult<Vec<EniRecord>> {
        self.call("enis_of_instance", false, self.inner.enis_of_instance(instance_id)).await
    }
    async fn enis(&self) -> StoreResult<Vec<EniRecord>> {
        self.call("enis", false, self.inner.enis()).await
    }
    async fn put_eni(&self, record: &EniRecord) -> StoreResult<EniWrite> {
        self.call("put_eni", true, self.inner.put_eni(record)).await
    }
    async fn put_pending(&self, reference: &EniRef, change: &Change) -> StoreResult<()> {
        self.call("put_pending", true, self.inner.put_pending(reference, change)).await
    }
    async fn pending(&self, reference: &EniRef) -> StoreResult<Vec<Change>> {
        self.call("pending", false, self.inner.pending(reference)).await
    }
    async fn forget_pending(&self, reference: &EniRef, changes: &[Change]) -> StoreResult<()> {
        self.call("forget_pending", true, self.inner.forget_pending(reference, changes)).await
    }
    async fn note_instance(&self, instance_id: &str, note: &InstanceNote) -> StoreResult<()> {
        self.call("note_instance", true, self.inner.note_instance(instance_id, note)).await
    }
    async fn instance_notes(&self, instance_id: &str) -> StoreResult<InstanceNotes> {
        self.call("instance_notes", false, self.inner.instance_notes(instance_id)).await
    }
    async fn instance(&self, instance_id: &str) -> StoreResult<Option<InstanceRecord>> {
        self.call("instance", false, self.inner.instance(instance_id)).await
    }
    async fn put_instance(&self, record: &InstanceRecord) -> StoreResult<()> {
        self.call("put_instance", true, self.inner.put_instance(record)).await
    }
    fn calls(&self) -> u64 {
        self.inner.calls()
    }
}

/// `sink.put_records`; entries refused by [`FaultPlan::fail_entries`] never
/// reach the inner sink.
impl<K: RecordSink> RecordSink for Faulty<K> {
    async fn put_records(&self, records: &[OutRecord]) -> Result<Vec<Result<(), EntryError>>, SinkError> {
        match self.plan.decide(&self.name, "put_records", true) {
            Decision::Proceed => self.inner.put_records(records).await,
            Decision::Fail(e) => Err(e),
            Decision::Lose(e) => {
                let _ = self.inner.put_records(records).await;
                Err(e)
            }
            Decision::Entries(fault, fraction, seed) => {
                let refused = refused(records.len(), fraction, seed);
                let passed: Vec<OutRecord> =
                    records.iter().zip(&refused).filter(|(_, r)| !**r).map(|(rec, _)| rec.clone()).collect();
                let mut answers = if passed.is_empty() {
                    Vec::new().into_iter()
                } else {
                    self.inner.put_records(&passed).await?.into_iter()
                };
                Ok(refused
                    .iter()
                    .map(|r| if *r { Err(fault.entry_error()) } else { answers.next().unwrap_or(Ok(())) })
                    .collect())
            }
        }
    }
}

/// `<name>.put`, `<name>.get`.
impl<O: ObjectStore> ObjectStore for Faulty<O> {
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), ObjectError> {
        self.call("put", true, self.inner.put(key, body)).await
    }
    async fn get(&self, key: &str) -> Result<Vec<u8>, ObjectError> {
        self.call("get", false, self.inner.get(key)).await
    }
}

/// `<name>.list`, `<name>.delete`.
impl<O: ObjectListing> ObjectListing for Faulty<O> {
    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, ObjectError> {
        self.call("list", false, self.inner.list(prefix)).await
    }
    async fn delete(&self, key: &str) -> Result<(), ObjectError> {
        self.call("delete", true, self.inner.delete(key)).await
    }
}

/// `<name>.start_upload`, `<name>.upload_part`, `<name>.complete_upload`,
/// `<name>.abort_upload`: all writes.
impl<O: MultipartUpload> MultipartUpload for Faulty<O> {
    async fn start_upload(&self, key: &str) -> Result<Upload, ObjectError> {
        self.call("start_upload", true, self.inner.start_upload(key)).await
    }
    async fn upload_part(&self, upload: &Upload, number: u32, body: Vec<u8>) -> Result<Part, ObjectError> {
        self.call("upload_part", true, self.inner.upload_part(upload, number, body)).await
    }
    async fn complete_upload(&self, upload: &Upload, parts: &[Part]) -> Result<(), ObjectError> {
        self.call("complete_upload", true, self.inner.complete_upload(upload, parts)).await
    }
    async fn abort_upload(&self, upload: &Upload) -> Result<(), ObjectError> {
        self.call("abort_upload", true, self.inner.abort_upload(upload)).await
    }
}

/// `<name>.send`; entries refused by [`FaultPlan::fail_entries`] never
/// reach the inner queue.
impl<Q: RetryQueue> RetryQueue for Faulty<Q> {
    async fn send(&self, batch: &[QueueMessage]) -> Result<Vec<Result<(), QueueEntryError>>, QueueError> {
        match self.plan.decide(&self.name, "send", true) {
            Decision::Proceed => self.inner.send(batch).await,
            Decision::Fail(e) => Err(e),
            Decision::Lose(e) => {
                let _ = self.inner.send(batch).await;
                Err(e)
            }
            Decision::Entries(fault, fraction, seed) => {
                let refused = refused(batch.len(), fraction, seed);
                let passed: Vec<QueueMessage> =
                    batch.iter().zip(&refused).filter(|(_, r)| !**r).map(|(m, _)| m.clone()).collect();
                let mut answers = if passed.is_empty() {
                    Vec::new().into_iter()
                } else {
                    self.inner.send(&passed).await?.into_iter()
                };
                Ok(refused
                    .iter()
                    .map(|r| if *r { Err(fault.queue_error()) } else { answers.next().unwrap_or(Ok(())) })
                    .collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::LocalObjects;
    use crate::ownership::testing::ready;
    use crate::ownership::MemoryStore;
    use crate::sink::FileStream;

    fn record(key: &str) -> OutRecord {
        OutRecord { partition_key: key.into(), data: key.as_bytes().to_vec() }
    }

    #[test]
    fn rules_fire_when_told_and_map_onto_the_crate_errors() {
        let plan = FaultPlan::new();
        let store = Faulty::new(MemoryStore::new(), &plan, "store");
        plan.fail("store.instance", When::Call(2), Fault::Throttled);
        plan.fail("store.enis", When::Next, Fault::Permanent);
        assert!(ready(store.instance("i-1")).is_ok());
        let e = ready(store.instance("i-1")).unwrap_err();
        assert!(e.is_transient() && e.message().contains("ThrottlingException"), "{e}");
        assert!(ready(store.instance("i-1")).is_ok());
        let e = ready(store.enis()).unwrap_err();
        assert!(!e.is_transient(), "{e}");
        assert!(ready(store.enis()).is_ok());
        assert_eq!(plan.counts("store.instance"), Counts { calls: 3, faults: 1 });
        assert_eq!(plan.counts("store"), Counts { calls: 5, faults: 2 });
        plan.fail("*", When::Always, Fault::ServerError);
        assert!(ready(store.enis()).unwrap_err().is_transient());
        plan.clear();
        assert!(ready(store.enis()).is_ok());
    }

    #[test]
    fn chances_repeat_with_their_seed() {
        let run = |seed| {
            let plan = FaultPlan::new();
            let store = Faulty::new(MemoryStore::new(), &plan, "store");
            plan.fail("store", When::Chance(0.3, seed), Fault::Timeout);
            (0..200).map(|_| ready(store.reconciled()).is_err()).collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
        let failed = run(3).iter().filter(|f| **f).count();
        assert!((30..90).contains(&failed), "{failed} of 200 at 0.3");
    }

    #[test]
    fn a_lost_response_did_the_work() {
        let plan = FaultPlan::new();
        let dir = tempfile_dir("lost");
        let objects = Faulty::new(LocalObjects::new(&dir), &plan, "data");
        plan.fail("data.put", When::Next, Fault::LostResponse);
        let e = ready(objects.put("a/b", b"x".to_vec())).unwrap_err();
        assert!(e.is_transient(), "{e}");
        assert_eq!(ready(objects.get("a/b")).unwrap(), b"x");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refused_entries_never_reach_the_sink_and_the_others_do() {
        let plan = FaultPlan::new();
        let dir = tempfile_dir("entries");
        let sink = Faulty::new(FileStream::new(&dir, "s"), &plan, "sink");
        plan.fail_entries("sink", When::Next, EntryFault::Throughput, 0.5);
        let records: Vec<OutRecord> = (0..20).map(|i| record(&format!("k{i}"))).collect();
        let answers = ready(sink.put_records(&records)).unwrap();
        let refused: Vec<usize> = answers.iter().enumerate().filter(|(_, a)| a.is_err()).map(|(i, _)| i).collect();
        assert!(!refused.is_empty() && refused.len() < 20, "{refused:?}");
        let stored = crate::sink::read_stream(&dir, "s").unwrap();
        let want: Vec<OutRecord> =
            records.iter().enumerate().filter(|(i, _)| !refused.contains(i)).map(|(_, r)| r.clone()).collect();
        assert_eq!(stored, want);
        assert_eq!(answers[refused[0]].as_ref().unwrap_err().code, "ProvisionedThroughputExceededException");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_queue_refuses_some_entries_and_sends_the_others() {
        use crate::retry_queue::MemoryQueue;
        let plan = FaultPlan::new();
        let queue = Faulty::new(MemoryQueue::new(), &plan, "queue");
        plan.fail_entries("queue.send", When::Next, EntryFault::Throughput, 0.5);
        let batch: Vec<QueueMessage> =
            (0..10).map(|i| QueueMessage { id: format!("m{i}"), body: format!("b{i}"), delay_seconds: 0 }).collect();
        let answers = ready(queue.send(&batch)).unwrap();
        let refused = answers.iter().filter(|a| a.as_ref().is_err_and(|e| e.is_transient())).count();
        assert!((1..10).contains(&refused), "{answers:?}");
        assert_eq!(queue.inner().due().len(), 10 - refused);
        plan.fail("queue", When::Next, Fault::Timeout);
        assert!(ready(queue.send(&batch)).unwrap_err().is_transient());
        assert!(queue.inner().is_empty(), "a timeout sends nothing");
    }

    #[test]
    fn a_crash_lets_k_writes_through_then_fails_everything_until_restart() {
        for ack_last in [true, false] {
            let plan = FaultPlan::new();
            let store = Faulty::new(MemoryStore::new(), &plan, "store");
            plan.crash_after_writes(2, ack_last);
            let record = |id: &str| InstanceRecord { instance_id: id.into(), running: true, changed_at: UnixTime(1) };
            assert!(ready(store.put_instance(&record("i-1"))).is_ok());
            assert!(ready(store.instance("i-1")).is_ok(), "reads do not count");
            assert_eq!(ready(store.put_instance(&record("i-2"))).is_ok(), ack_last);
            assert!(plan.crashed());
            assert!(ready(store.instance("i-1")).is_err(), "crashed: reads fail too");
            assert!(ready(store.put_instance(&record("i-3"))).is_err());
            plan.restart();
            assert!(ready(store.instance("i-2")).unwrap().is_some(), "the last write was done");
            assert!(ready(store.instance("i-3")).unwrap().is_none(), "nothing after the crash was");
            assert_eq!(plan.crashes(), 1);
        }
    }

    fn tempfile_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("dredge-faults-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }
}
