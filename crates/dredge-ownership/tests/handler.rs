//! The ownership handler end to end: every event fixture under
//! `events/ownership/` through [`Handler`] with the embedded store and a
//! describer reading `samples/ec2-describe/*.json`; reconciles; unknown
//! and invalid events; transient and permanent failures; the EMF line.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use dredge_core::ownership::{
    AddressKey, Change, EniRecord, EniRef, EniWrite, InstanceNote, InstanceNotes, InstanceRecord, Mark, MemoryStore,
    Owner, OwnerKind, OwnershipStore, Scope, Sighting, SnapshotScope, StoreError, StoreResult, TagPolicy, Timeline,
    UnixTime,
};
use dredge_lambda::emf::Sink;
use dredge_lambda::Reporter;
use dredge_ownership::{
    DescribeError, Disposition, Ec2Describer, FileDescriber, Handler, HandlerError, Reported, Summary, TakenSnapshot,
};
use serde_json::{json, Value};

const VPC: &str = "vpc-0a1b2c3d4e5f60789";
const ACCOUNT: &str = "123456789012";

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/ownership")
}

fn read(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn fixture(name: &str) -> Value {
    read(&events_dir().join(name))
}

fn describer() -> FileDescriber {
    FileDescriber::from_paths(&[Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/ec2-describe")]).unwrap()
}

/// A handler over `store` and the snapshot fixtures, with its metrics lines.
fn handler_with<S: OwnershipStore, D: Ec2Describer>(store: S, describer: D) -> (Reported<S, D>, Arc<Mutex<Vec<u8>>>) {
    let (sink, buffer) = Sink::memory();
    let handler = Handler::new(store, describer, TagPolicy::default());
    (Reported::new(handler, Reporter::new("ownership", sink)), buffer)
}

fn handler() -> (Reported<MemoryStore, FileDescriber>, Arc<Mutex<Vec<u8>>>) {
    handler_with(MemoryStore::new(), describer())
}

/// Every EMF line written so far.
fn emf_lines(buffer: &Arc<Mutex<Vec<u8>>>) -> Vec<Value> {
    let text = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {e}: {l}"))).collect()
}

fn last_emf(buffer: &Arc<Mutex<Vec<u8>>>) -> Value {
    emf_lines(buffer).pop().expect("no metrics line")
}

fn time(s: &str) -> UnixTime {
    UnixTime::parse_rfc3339(s).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn key(address: &str) -> AddressKey {
    let address = ip(address);
    let scope = Scope::of(address, Some(VPC)).unwrap();
    AddressKey::new(scope, address)
}

async fn owner_at<S: OwnershipStore>(store: &S, address: &str, at: &str) -> Option<Owner> {
    store.lookup(&[(key(address), time(at))]).await.unwrap().pop().unwrap()
}

/// Every event fixture: the files directly under `events/ownership/` and
/// under `events/ownership/scheduled/` (the snapshot documents are the
/// describer's input, not events).
fn event_fixtures() -> Vec<String> {
    let mut names = Vec::new();
    for (dir, prefix) in [(events_dir(), ""), (events_dir().join("scheduled"), "scheduled/")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() && path.extension().is_some_and(|e| e == "json") {
                names.push(format!("{prefix}{}", path.file_name().unwrap().to_string_lossy()));
            }
        }
    }
    names.sort();
    names
}

/// What one fixture does to an empty store.
struct Expect {
    kind: &'static str,
    result: Disposition,
    changes: u64,
    applied: u64,
    opened: u64,
    closed: u64,
    unknown_eni: u64,
    ignored: u64,
    described: u64,
    event_kind: &'static str,
}

const STATE: &str = "EC2 Instance State-change Notification";

#[allow(clippy::too_many_arguments)]
const fn expect(
    kind: &'static str,
    result: Disposition,
    changes: u64,
    applied: u64,
    opened: u64,
    closed: u64,
    unknown_eni: u64,
    ignored: u64,
    described: u64,
    event_kind: &'static str,
) -> Expect {
    Expect { kind, result, changes, applied, opened, closed, unknown_eni, ignored, described, event_kind }
}

fn expectations() -> BTreeMap<&'static str, Expect> {
    use Disposition::*;
    BTreeMap::from([
        // Changes to ENIs the (empty) table does not know: counted, left to
        // the reconcile.
        (
            "assign-ipv6-addresses.json",
            expect("AssignIpv6Addresses", Applied, 1, 0, 0, 0, 1, 0, 0, "AssignIpv6Addresses"),
        ),
        (
            "assign-private-ip-addresses.json",
            expect("AssignPrivateIpAddresses", Applied, 1, 0, 0, 0, 1, 0, 0, "AssignPrivateIpAddresses"),
        ),
        // A VPC association names the allocation, not the address; on an
        // empty table its ENI is unknown too.
        ("associate-address.json", expect("AssociateAddress", Applied, 1, 0, 0, 0, 1, 0, 0, "AssociateAddress")),
        // Attached before the table knew the ENI: the instance is described
        // (the snapshot's two ENIs, six addresses).
        (
            "attach-network-interface.json",
            expect("AttachNetworkInterface", Applied, 1, 2, 6, 0, 0, 0, 2, "AttachNetworkInterface"),
        ),
        (
            "create-network-interface-dry-run.json",
            expect("CreateNetworkInterface", Ignored, 0, 0, 0, 0, 0, 0, 0, "CreateNetworkInterface"),
        ),
        (
            "create-network-interface.json",
            expect("CreateNetworkInterface", Applied, 1, 1, 1, 0, 0, 0, 0, "CreateNetworkInterface"),
        ),
        // Deleting an ENI never seen records the deletion, closing nothing.
        (
            "delete-network-interface.json",
            expect("DeleteNetworkInterface", Applied, 1, 1, 0, 0, 0, 0, 0, "DeleteNetworkInterface"),
        ),
        (
            "detach-network-interface.json",
            expect("DetachNetworkInterface", Applied, 1, 0, 0, 0, 1, 0, 0, "DetachNetworkInterface"),
        ),
        (
            "disassociate-address.json",
            expect("DisassociateAddress", Applied, 1, 0, 0, 0, 1, 0, 0, "DisassociateAddress"),
        ),
        ("run-instances-error.json", expect("RunInstances", Ignored, 0, 0, 0, 0, 0, 0, 0, "RunInstances")),
        ("run-instances-item-and-items.json", expect("RunInstances", Applied, 1, 1, 2, 0, 0, 0, 0, "RunInstances")),
        ("run-instances.json", expect("RunInstances", Applied, 2, 2, 5, 0, 0, 0, 0, "RunInstances")),
        // The instance's ENIs are unknown: described (two ENIs, six
        // addresses) and opened.
        ("state-change-running.json", expect(STATE, Applied, 1, 2, 6, 0, 0, 0, 2, "InstanceStateChange")),
        ("state-change-terminated.json", expect(STATE, Applied, 1, 1, 0, 0, 0, 0, 0, "InstanceStateChange")),
        ("terminate-instances.json", expect("TerminateInstances", Applied, 1, 1, 0, 0, 0, 0, 0, "TerminateInstances")),
        (
            "unassign-ipv6-addresses.json",
            expect("UnassignIpv6Addresses", Applied, 1, 0, 0, 0, 1, 0, 0, "UnassignIpv6Addresses"),
        ),
        (
            "unassign-private-ip-addresses.json",
            expect("UnassignPrivateIpAddresses", Applied, 1, 0, 0, 0, 1, 0, 0, "UnassignPrivateIpAddresses"),
        ),
        // Reconciles seed the empty table from the snapshot: eleven
        // addresses (checked in `reconcile_seeds_an_empty_table`).
        ("scheduled/reconcile.json", expect("Reconcile", Reconciled, 0, 0, 0, 0, 0, 0, 0, "Reconcile")),
        ("scheduled/scheduled-event.json", expect("Reconcile", Reconciled, 0, 0, 0, 0, 0, 0, 0, "Reconcile")),
    ])
}

#[tokio::test]
async fn every_fixture_alone_on_an_empty_table() {
    let expectations = expectations();
    let fixtures = event_fixtures();
    let names: Vec<&str> = fixtures.iter().map(String::as_str).collect();
    let expected: Vec<&str> = expectations.keys().copied().collect();
    assert_eq!(names, expected, "every fixture under events/ownership needs an expectation here, and only those");
    for name in &fixtures {
        let want = &expectations[name.as_str()];
        let (handler, metrics) = handler();
        let s = handler.handle(fixture(name)).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        let got = (s.kind.as_str(), s.result, s.changes, s.applied, s.stats.opened, s.stats.closed);
        let want_main = (want.kind, want.result, want.changes, want.applied, want.opened, want.closed);
        assert_eq!(got, want_main, "{name}: {s:?}");
        // Kept for later or not resolvable: either way not applied now.
        let got = (s.stats.unknown_eni + s.stats.deferred, s.stats.ignored, s.described_enis, s.errors.len());
        assert_eq!(got, (want.unknown_eni, want.ignored, want.described, 0), "{name}: {s:?}");
        if want.result == Disposition::Ignored {
            assert!(s.reason.is_some(), "{name}: an ignored event says why");
        }
        let emf = emf_lines(&metrics);
        assert_eq!(emf.len(), 1, "{name}: one metrics line per invocation");
        let emf = &emf[0];
        assert_eq!(emf["Events"], 1, "{name}");
        assert_eq!(emf["EventKind"], want.event_kind, "{name}");
        assert_eq!(emf["MarksOpened"], want.opened, "{name}");
        assert_eq!(emf["MarksClosed"], want.closed, "{name}");
        let not_applied = emf["UnknownEnis"].as_u64().unwrap() + emf["DeferredChanges"].as_u64().unwrap();
        assert_eq!(not_applied, want.unknown_eni, "{name}");
        assert_eq!(emf["IgnoredEvents"], u64::from(want.result == Disposition::Ignored), "{name}");
        assert_eq!(emf["TransientErrors"], 0, "{name}");
    }
}

/// The fixtures in event-time order, as EventBridge would mostly deliver
/// them.
fn story() -> Vec<(String, Value)> {
    let mut events: Vec<(String, String, Value)> = event_fixtures()
        .into_iter()
        .filter(|name| !name.starts_with("scheduled/"))
        .map(|name| {
            let event = fixture(&name);
            let at = event["detail"]["eventTime"].as_str().or(event["time"].as_str()).unwrap().to_owned();
            (at, name, event)
        })
        .collect();
    events.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    events.into_iter().map(|(_, name, event)| (name, event)).collect()
}

async fn play<S: OwnershipStore, D: Ec2Describer>(handler: &Reported<S, D>) -> Vec<Summary> {
    let mut out = Vec::new();
    for (name, event) in story() {
        out.push(handler.handle(event).await.unwrap_or_else(|e| panic!("{name}: {e}")));
    }
    out
}

#[tokio::test]
async fn the_fixtures_in_order_build_each_address_history() {
    let (handler, metrics) = handler();
    let summaries = play(&handler).await;
    assert_eq!(emf_lines(&metrics).len(), summaries.len());
    let store = handler.store();

    // The instance's primary address: api-prod from launch to termination.
    let primary = owner_at(store, "10.20.1.15", "2026-11-05T00:00:00Z").await.unwrap();
    assert_eq!(primary.eni_id, "eni-0a1b2c3d4e5f60001");
    assert_eq!(primary.kind, OwnerKind::Instance);
    assert_eq!(primary.instance_id.as_deref(), Some("i-0d4c3b2a1f0e98765"));
    assert_eq!(primary.asg.as_deref(), Some("api-prod-v042"));
    assert_eq!(primary.app.as_deref(), Some("api"));
    assert_eq!(primary.cluster.as_deref(), Some("api-prod"));
    assert_eq!(primary.account_id.as_deref(), Some(ACCOUNT));
    assert_eq!(primary.region.as_deref(), Some("us-east-1"));
    assert!(owner_at(store, "10.20.1.15", "2026-11-03T14:02:10Z").await.is_none(), "not before launch");
    assert!(owner_at(store, "10.20.1.15", "2026-11-12T03:44:09Z").await.is_none(), "not after termination");
    assert_eq!(owner_at(store, "54.210.33.7", "2026-11-10T00:00:00Z").await.unwrap().eni_id, "eni-0a1b2c3d4e5f60001");

    // A secondary address assigned, then one of the two released.
    assert!(owner_at(store, "10.20.1.41", "2026-11-05T09:15:02Z").await.is_none());
    assert_eq!(owner_at(store, "10.20.1.41", "2026-11-05T10:00:00Z").await.unwrap().app.as_deref(), Some("api"));
    assert!(owner_at(store, "10.20.1.41", "2026-11-05T11:40:27Z").await.is_none());
    assert!(owner_at(store, "10.20.1.40", "2026-11-08T00:00:00Z").await.is_some());

    // An IPv6 address for under two hours.
    let v6 = "2600:1f18:4a3:6e01:7c8b:2e14:a0d9:44c2";
    assert_eq!(owner_at(store, v6, "2026-11-06T17:00:00Z").await.unwrap().eni_id, "eni-0a1b2c3d4e5f60002");
    assert!(owner_at(store, v6, "2026-11-06T18:02:13Z").await.is_none());

    // An ENI created (named by its own app tag), attached (taking the
    // instance's auto scaling group from its other ENIs), detached (a bare
    // interface again), then deleted.
    let created = owner_at(store, "10.20.2.50", "2026-11-09T13:12:50Z").await.unwrap();
    assert_eq!(
        (created.kind, created.app.as_deref(), created.asg.as_deref()),
        (OwnerKind::Interface, Some("api"), None)
    );
    let attached = owner_at(store, "10.20.2.50", "2026-11-09T14:00:00Z").await.unwrap();
    assert_eq!(attached.kind, OwnerKind::Instance);
    assert_eq!(attached.instance_id.as_deref(), Some("i-0d4c3b2a1f0e98765"));
    assert_eq!((attached.asg.as_deref(), attached.cluster.as_deref()), (Some("api-prod-v042"), Some("api-prod")));
    let detached = owner_at(store, "10.20.2.50", "2026-11-10T08:31:00Z").await.unwrap();
    assert_eq!(
        (detached.kind, detached.instance_id.as_deref(), detached.asg.as_deref()),
        (OwnerKind::Interface, None, None)
    );
    assert!(owner_at(store, "10.20.2.50", "2026-11-10T08:31:19Z").await.is_none());

    // A later instance, named by its app tag (no auto scaling group).
    let bastion = owner_at(store, "10.20.3.6", "2026-11-11T12:00:00Z").await.unwrap();
    assert_eq!(bastion.eni_id, "eni-0b9a8c7d6e5f40010");
    assert_eq!(bastion.app.as_deref(), Some("bastion"));
    assert_eq!(bastion.asg, None);
    assert_eq!(bastion.tags.get("team").map(String::as_str), Some("sre"));

    // The totals the metrics report.
    let opened: u64 = summaries.iter().map(|s| s.stats.opened).sum();
    let closed: u64 = summaries.iter().map(|s| s.stats.closed).sum();
    let lines = emf_lines(&metrics);
    assert_eq!(lines.iter().map(|l| l["MarksOpened"].as_u64().unwrap()).sum::<u64>(), opened);
    assert_eq!(lines.iter().map(|l| l["MarksClosed"].as_u64().unwrap()).sum::<u64>(), closed);
    assert!(opened > 0 && closed > 0);
    let ignored: Vec<&str> =
        summaries.iter().filter(|s| s.result == Disposition::Ignored).map(|s| s.reason.as_deref().unwrap()).collect();
    assert_eq!(ignored, ["the call failed: Server.InsufficientInstanceCapacity", "a DryRun call"]);
}

/// Every mark of every address, for comparing stores.
async fn dump<S: OwnershipStore>(store: &S) -> Vec<(AddressKey, Vec<Mark>)> {
    let mut all: Vec<(AddressKey, Vec<Mark>)> =
        store.timelines().await.unwrap().into_iter().map(|(k, t)| (k, t.marks().to_vec())).collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

#[tokio::test]
async fn redelivered_events_change_nothing() {
    let (once, _) = handler();
    play(&once).await;
    let (twice, _) = handler();
    play(&twice).await;
    play(&twice).await;
    assert_eq!(dump(once.store()).await, dump(twice.store()).await);
}

#[tokio::test]
async fn reconcile_seeds_an_empty_table() {
    for name in ["scheduled/scheduled-event.json", "scheduled/reconcile.json"] {
        let (handler, metrics) = handler();
        let s = handler.handle(fixture(name)).await.unwrap();
        assert_eq!((s.kind.as_str(), s.result), ("Reconcile", Disposition::Reconciled), "{name}");
        let r = s.reconcile.unwrap();
        assert_eq!((r.enis, r.addresses, r.opened, r.closed, r.unchanged, r.unscoped), (6, 11, 11, 0, 0, 0), "{name}");
        // Stamped with the event's time: the file snapshot has none.
        let nat = owner_at(handler.store(), "10.20.32.12", "2026-11-12T04:00:00Z").await.unwrap();
        assert_eq!(nat.kind, OwnerKind::NatGateway, "{name}");
        assert!(owner_at(handler.store(), "10.20.32.12", "2026-11-12T03:59:59Z").await.is_none(), "{name}");
        // The same address in another VPC is another owner.
        let other = handler
            .store()
            .lookup(&[(
                AddressKey::new(Scope::Vpc("vpc-0f9e8d7c6b5a40321".into()), ip("10.20.1.15")),
                time("2026-11-12T05:00:00Z"),
            )])
            .await
            .unwrap()
            .pop()
            .unwrap()
            .unwrap();
        assert_eq!(other.asg.as_deref(), Some("search-prod-v013"));
        let emf = last_emf(&metrics);
        assert_eq!((emf["Reconciles"].as_u64(), emf["ReconcileOpened"].as_u64()), (Some(1), Some(11)), "{name}");
        assert_eq!(emf["EventKind"], "Reconcile");

        // A second reconcile of the same state changes nothing.
        let again = handler.handle(fixture(name)).await.unwrap().reconcile.unwrap();
        assert_eq!((again.unchanged, again.opened, again.closed), (11, 0, 0), "{name}");
    }
}

#[tokio::test]
async fn scheduled_reconcile_after_the_story_closes_what_is_gone() {
    let (handler, metrics) = handler();
    play(&handler).await;
    let s = handler.handle(fixture("scheduled/scheduled-event.json")).await.unwrap();
    let r = s.reconcile.unwrap();
    // The snapshot still shows the api instance's six addresses, the four
    // service ENIs' five and the other VPC's one; the bastion's two
    // addresses are not in it and are closed.
    assert_eq!((r.enis, r.addresses, r.unchanged), (6, 11, 0));
    assert_eq!(r.opened, 11);
    assert_eq!(r.closed, 2);
    assert!(owner_at(handler.store(), "10.20.3.5", "2026-11-12T04:00:00Z").await.is_none());
    assert!(owner_at(handler.store(), "10.20.3.5", "2026-11-12T03:59:59Z").await.is_some());
    assert_eq!(last_emf(&metrics)["ReconcileClosed"], 2);
}

#[tokio::test]
async fn reconcile_closes_only_inside_its_scope() {
    let (handler, _) = handler();
    play(&handler).await;
    // Another account's (empty) snapshot: the bastion's addresses belong to
    // 123456789012 and stay open.
    let (store, _) = handler.into_parts();
    let (handler, _) = handler_with(store, FileDescriber::empty());
    let s = handler
        .handle(
            json!({"reconcile": true, "at": "2026-11-12T04:00:00Z", "account": "210987654321", "region": "us-east-1"}),
        )
        .await
        .unwrap();
    assert_eq!(s.reconcile.unwrap().closed, 0);
    assert!(owner_at(handler.store(), "10.20.3.5", "2026-11-12T05:00:00Z").await.is_some());
    // The right account's empty snapshot closes them.
    let s = handler
        .handle(json!({"reconcile": true, "at": "2026-11-12T04:00:00Z", "account": ACCOUNT, "region": "us-east-1"}))
        .await
        .unwrap();
    assert_eq!(s.reconcile.unwrap().closed, 2);
    assert!(owner_at(handler.store(), "10.20.3.5", "2026-11-12T05:00:00Z").await.is_none());
}

#[tokio::test]
async fn a_reconcile_payload_takes_its_scope_from_the_fallback() {
    let (handler, _) = handler();
    play(&handler).await;
    let (store, _) = handler.into_parts();
    let (handler, _) = handler_with(store, FileDescriber::empty());
    let elsewhere = SnapshotScope { account_id: Some("210987654321".into()), region: Some("us-east-1".into()) };
    let s = handler.handle_in(json!({"reconcile": true, "at": 1794456000}), &elsewhere).await.unwrap();
    assert_eq!(s.reconcile.unwrap().closed, 0);
    let here = SnapshotScope { account_id: Some(ACCOUNT.into()), region: Some("us-east-1".into()) };
    let handler = handler.with_scope(here);
    let s = handler.handle(json!({"reconcile": true, "at": 1794456000})).await.unwrap();
    assert_eq!(s.reconcile.unwrap().closed, 2);
}

#[tokio::test]
async fn unknown_event_types_are_counted_not_failed() {
    let (handler, metrics) = handler();
    let ebs = json!({
        "version": "0", "id": "1", "detail-type": "EBS Volume Notification", "source": "aws.ec2",
        "account": ACCOUNT, "time": "2026-11-12T04:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {"event": "createVolume", "result": "available"}
    });
    let mut create_vpc = fixture("delete-network-interface.json");
    create_vpc["detail"]["eventName"] = json!("CreateVpc");
    let from_elsewhere =
        json!({"detail-type": "Scheduled Event", "source": "custom.cron", "time": "2026-11-12T04:00:00Z"});
    for (event, kind) in
        [(ebs, "EBS Volume Notification"), (create_vpc, "CreateVpc"), (from_elsewhere, "Scheduled Event")]
    {
        let s = handler.handle(event).await.unwrap();
        assert_eq!((s.kind.as_str(), s.result), (kind, Disposition::Unknown));
        assert_eq!(s.changes, 0);
        let emf = last_emf(&metrics);
        assert_eq!((emf["UnknownEvents"].as_u64(), emf["Events"].as_u64()), (Some(1), Some(1)));
        assert_eq!(emf["EventKind"], "Other", "unknown kinds share one dimension value");
    }
    assert!(dump(handler.store()).await.is_empty());
}

#[tokio::test]
async fn invalid_events_are_counted_not_retried() {
    let (handler, metrics) = handler();
    let mut no_eni = fixture("delete-network-interface.json");
    no_eni["detail"]["requestParameters"] = json!({});
    let mut bad_time = fixture("state-change-running.json");
    bad_time["time"] = json!("yesterday");
    for (event, kind) in [
        (no_eni, "DeleteNetworkInterface"),
        (bad_time, STATE),
        (json!(["not", "an", "event"]), "Invalid"),
        (json!({"reconcile": true, "at": "whenever"}), "Reconcile"),
    ] {
        let s = handler.handle(event).await.unwrap();
        assert_eq!((s.kind.as_str(), s.result), (kind, Disposition::Invalid));
        assert!(s.reason.is_some());
        assert_eq!(last_emf(&metrics)["InvalidEvents"], 1);
    }
}

/// A store that fails one operation (every call, or the first `times`).
struct FailingStore {
    inner: MemoryStore,
    operation: &'static str,
    transient: bool,
    remaining: Mutex<u32>,
}

impl FailingStore {
    fn new(operation: &'static str, transient: bool, times: u32) -> Self {
        FailingStore { inner: MemoryStore::new(), operation, transient, remaining: Mutex::new(times) }
    }

    fn check(&self, operation: &str) -> StoreResult<()> {
        let mut remaining = self.remaining.lock().unwrap();
        if operation != self.operation || *remaining == 0 {
            return Ok(());
        }
        *remaining -= 1;
        let message = format!("{operation}: injected failure");
        Err(if self.transient { StoreError::Transient(message) } else { StoreError::Permanent(message) })
    }
}

impl OwnershipStore for FailingStore {
    async fn put_marks(&self, marks: &[(AddressKey, Mark)]) -> StoreResult<()> {
        self.check("put_marks")?;
        self.inner.put_marks(marks).await
    }
    async fn lookup(&self, queries: &[(AddressKey, UnixTime)]) -> StoreResult<Vec<Option<Owner>>> {
        self.check("lookup")?;
        self.inner.lookup(queries).await
    }
    async fn put_seen(&self, seen: &[(AddressKey, Sighting)]) -> StoreResult<()> {
        self.check("put_seen")?;
        self.inner.put_seen(seen).await
    }
    async fn note_reconciled(&self, scope: &str, at: UnixTime) -> StoreResult<()> {
        self.check("note_reconciled")?;
        self.inner.note_reconciled(scope, at).await
    }
    async fn reconciled(&self) -> StoreResult<Vec<(String, UnixTime)>> {
        self.check("reconciled")?;
        self.inner.reconciled().await
    }
    async fn timeline(&self, key: &AddressKey) -> StoreResult<Timeline> {
        self.check("timeline")?;
        self.inner.timeline(key).await
    }
    async fn timelines(&self) -> StoreResult<Vec<(AddressKey, Timeline)>> {
        self.check("timelines")?;
        self.inner.timelines().await
    }
    async fn eni(&self, by: &EniRef) -> StoreResult<Option<EniRecord>> {
        self.check("eni")?;
        self.inner.eni(by).await
    }
    async fn enis_of_instance(&self, instance_id: &str) -> StoreResult<Vec<EniRecord>> {
        self.check("enis_of_instance")?;
        self.inner.enis_of_instance(instance_id).await
    }
    async fn enis(&self) -> StoreResult<Vec<EniRecord>> {
        self.check("enis")?;
        self.inner.enis().await
    }
    async fn put_eni(&self, record: &EniRecord) -> StoreResult<EniWrite> {
        self.check("put_eni")?;
        self.inner.put_eni(record).await
    }
    async fn put_pending(&self, reference: &EniRef, change: &Change) -> StoreResult<()> {
        self.check("put_pending")?;
        self.inner.put_pending(reference, change).await
    }
    async fn pending(&self, reference: &EniRef) -> StoreResult<Vec<Change>> {
        self.check("pending")?;
        self.inner.pending(reference).await
    }
    async fn forget_pending(&self, reference: &EniRef, changes: &[Change]) -> StoreResult<()> {
        self.check("forget_pending")?;
        self.inner.forget_pending(reference, changes).await
    }
    async fn note_instance(&self, instance_id: &str, note: &InstanceNote) -> StoreResult<()> {
        self.check("note_instance")?;
        self.inner.note_instance(instance_id, note).await
    }
    async fn instance_notes(&self, instance_id: &str) -> StoreResult<InstanceNotes> {
        self.check("instance_notes")?;
        self.inner.instance_notes(instance_id).await
    }
    async fn instance(&self, instance_id: &str) -> StoreResult<Option<InstanceRecord>> {
        self.check("instance")?;
        self.inner.instance(instance_id).await
    }
    async fn put_instance(&self, record: &InstanceRecord) -> StoreResult<()> {
        self.check("put_instance")?;
        self.inner.put_instance(record).await
    }
}

#[tokio::test]
async fn a_transient_store_error_fails_the_invocation_and_the_retry_succeeds() {
    let (handler, metrics) = handler_with(FailingStore::new("put_marks", true, 1), describer());
    let event = fixture("run-instances.json");
    let err = handler.handle(event.clone()).await.unwrap_err();
    assert!(matches!(&err, HandlerError::Store { source, .. } if source.is_transient()), "{err}");
    assert!(err.to_string().contains("RunInstances"), "{err}");
    let emf = last_emf(&metrics);
    assert_eq!((emf["TransientErrors"].as_u64(), emf["PermanentErrors"].as_u64()), (Some(1), Some(0)));

    // Lambda delivers the event again: now it applies.
    let s = handler.handle(event).await.unwrap();
    assert_eq!((s.applied, s.stats.opened), (2, 5));
    assert!(owner_at(handler.store(), "10.20.1.15", "2026-11-05T00:00:00Z").await.is_some());
}

#[tokio::test]
async fn a_transient_store_error_fails_a_reconcile() {
    let (handler, metrics) = handler_with(FailingStore::new("timelines", true, u32::MAX), describer());
    let err = handler.handle(fixture("scheduled/scheduled-event.json")).await.unwrap_err();
    assert!(matches!(err, HandlerError::Store { .. }), "{err}");
    assert_eq!(last_emf(&metrics)["TransientErrors"], 1);
}

#[tokio::test]
async fn a_permanent_store_error_is_counted_not_retried() {
    let (handler, metrics) = handler_with(FailingStore::new("put_eni", false, u32::MAX), describer());
    let s = handler.handle(fixture("run-instances.json")).await.unwrap();
    assert_eq!(s.errors.len(), 2, "{s:?}");
    assert!(s.errors[0].contains("injected failure"));
    let emf = last_emf(&metrics);
    assert_eq!((emf["PermanentErrors"].as_u64(), emf["TransientErrors"].as_u64()), (Some(2), Some(0)));
}

/// A describer that fails.
struct FailingDescriber {
    transient: bool,
}

impl FailingDescriber {
    fn error(&self) -> DescribeError {
        if self.transient {
            DescribeError::Transient("RequestLimitExceeded".into())
        } else {
            DescribeError::Permanent("UnauthorizedOperation".into())
        }
    }
}

impl Ec2Describer for FailingDescriber {
    async fn describe_instance(&self, _instance_id: &str) -> Result<Vec<dredge_core::ownership::Eni>, DescribeError> {
        Err(self.error())
    }
    async fn snapshot(&self) -> Result<TakenSnapshot, DescribeError> {
        Err(self.error())
    }
}

#[tokio::test]
async fn ec2_errors_fail_when_transient_and_are_counted_when_not() {
    let (handler, metrics) = handler_with(MemoryStore::new(), FailingDescriber { transient: true });
    let err = handler.handle(fixture("state-change-running.json")).await.unwrap_err();
    assert!(matches!(err, HandlerError::Describe { .. }), "{err}");
    let err = handler.handle(fixture("scheduled/scheduled-event.json")).await.unwrap_err();
    assert!(matches!(err, HandlerError::Describe { .. }), "{err}");
    assert_eq!(emf_lines(&metrics).iter().filter(|l| l["TransientErrors"] == 1).count(), 2);

    let (handler, metrics) = handler_with(MemoryStore::new(), FailingDescriber { transient: false });
    let s = handler.handle(fixture("state-change-running.json")).await.unwrap();
    assert_eq!((s.result, s.stats.needs_describe, s.errors.len()), (Disposition::Applied, 1, 1));
    let s = handler.handle(fixture("scheduled/scheduled-event.json")).await.unwrap();
    assert_eq!((s.result, s.errors.len()), (Disposition::Failed, 1));
    assert_eq!(last_emf(&metrics)["PermanentErrors"], 1);
}

#[tokio::test]
async fn the_emf_line_has_cloudwatchs_shape() {
    let (sink, buffer) = Sink::memory();
    let handler = Reported::new(
        Handler::new(MemoryStore::new(), describer(), TagPolicy::default()),
        Reporter::new("ownership-test", sink),
    );
    handler.handle(fixture("run-instances.json")).await.unwrap();
    let text = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
    assert_eq!(text.matches('\n').count(), 1, "one line, newline-terminated");
    let doc: Value = serde_json::from_str(text.trim_end()).unwrap();

    let aws = &doc["_aws"];
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let ts = aws["Timestamp"].as_u64().expect("Timestamp in milliseconds");
    assert!(ts <= now_ms && now_ms - ts < 60_000, "{ts} vs {now_ms}");
    let directives = aws["CloudWatchMetrics"].as_array().unwrap();
    assert_eq!(directives.len(), 2);
    for d in directives {
        assert_eq!(d["Namespace"], "Dredge");
        for set in d["Dimensions"].as_array().unwrap() {
            for dimension in set.as_array().unwrap() {
                assert!(doc[dimension.as_str().unwrap()].is_string(), "dimension {dimension} has a value");
            }
        }
        for metric in d["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap();
            assert!(doc[name].is_number(), "metric {name} has a value");
            assert!(["Count", "Milliseconds"].contains(&metric["Unit"].as_str().unwrap()));
        }
    }
    assert_eq!(directives[0]["Dimensions"], json!([["Function"]]));
    assert_eq!(directives[1]["Dimensions"], json!([["Function", "EventKind"]]));
    assert_eq!(directives[1]["Metrics"], json!([{"Name": "Events", "Unit": "Count"}]));
    let names: Vec<&str> =
        directives[0]["Metrics"].as_array().unwrap().iter().map(|m| m["Name"].as_str().unwrap()).collect();
    for wanted in [
        "Events",
        "UnknownEvents",
        "IgnoredEvents",
        "InvalidEvents",
        "Changes",
        "ChangesApplied",
        "MarksOpened",
        "MarksClosed",
        "UnknownEnis",
        "DeferredChanges",
        "IgnoredChanges",
        "DescribedEnis",
        "PermanentErrors",
        "TransientErrors",
    ] {
        assert!(names.contains(&wanted), "{wanted} missing from {names:?}");
    }
    assert!(!names.contains(&"Reconciles"), "reconcile metrics only when reconciling");
    assert_eq!(doc["Function"], "ownership-test");
    assert_eq!(doc["EventKind"], "RunInstances");
    assert_eq!(
        (doc["Changes"].as_u64(), doc["ChangesApplied"].as_u64(), doc["MarksOpened"].as_u64()),
        (Some(2), Some(2), Some(5))
    );
}

#[tokio::test]
async fn the_summary_is_json() {
    let (handler, _) = handler();
    let s = handler.handle(fixture("run-instances-error.json")).await.unwrap();
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(v["kind"], "RunInstances");
    assert_eq!(v["result"], "ignored");
    assert_eq!(v["reason"], "the call failed: Server.InsufficientInstanceCapacity");
    assert!(v.get("errors").is_none() && v.get("reconcile").is_none());
    let s = handler.handle(fixture("scheduled/reconcile.json")).await.unwrap();
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(v["result"], "reconciled");
    assert_eq!(v["reconcile"]["opened"], 11);
}

/// A describe made soon after the event stands for the event's time; one
/// made long after tells only the present (the address may have been
/// released and handed back meanwhile), so it opens as of the describe.
#[tokio::test]
async fn a_late_describe_is_dated_at_the_describe_not_the_event() {
    let running = fixture("state-change-running.json");
    let event_at = time("2026-11-03T14:02:39Z");
    for (late, opened_at) in [(60, event_at), (3_600, UnixTime(event_at.0 + 3_600))] {
        let describer = describer().taken_at(UnixTime(event_at.0 + late));
        let (handler, _) = handler_with(MemoryStore::new(), describer);
        handler.handle(running.clone()).await.unwrap();
        let app_at = |t: i64| {
            let store = handler.store();
            async move { store.lookup(&[(key("10.20.1.15"), UnixTime(t))]).await.unwrap().pop().unwrap()?.app }
        };
        assert_eq!(app_at(opened_at.0 - 1).await, None, "late {late}");
        assert_eq!(app_at(opened_at.0).await.as_deref(), Some("api"), "late {late}");
    }
}
