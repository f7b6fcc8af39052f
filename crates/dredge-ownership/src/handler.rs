//! The ownership function's handler: one Lambda event in, a summary out.
//!
//! - An EventBridge `aws.ec2` event (instance state change, CloudTrail API
//!   call) is parsed into changes, each applied to the store. A running
//!   instance whose ENIs the table does not know is described (EC2) and its
//!   ENIs applied as they are now.
//! - An EventBridge `Scheduled Event` (source `aws.events`), or a payload
//!   `{"reconcile": true}`, reconciles the table with a snapshot of every
//!   ENI, closing only owners of the snapshot's account and region.
//!
//! Failures: a transient store or EC2 failure fails the invocation, so Lambda
//! retries the event (marks are idempotent, so a replay is harmless). Event
//! types not handled, events that cannot be understood (poison) and
//! permanent failures are logged and counted, and the invocation succeeds:
//! retrying them would fail the same way forever. Each invocation is a
//! [`Handled`]: the Lambda entry (`dredge_lambda::serve`), the CLI and the
//! tests report it the same way, one EMF metrics line and one log line.
//!
//! The store's and EC2's futures are boxed where they are awaited: nested
//! inline, the SDK's state machines make one future of hundreds of
//! kilobytes, which overflows a 2 MiB thread stack in debug builds.

use std::ops::Deref;
use std::time::Instant;

use dredge_core::ownership::{
    Applier, ApplyStats, Change, Eni, Outcome, OwnershipStore, ReconcileStats, SnapshotScope, StoreError, TagPolicy,
    UnixTime,
};
use serde::Serialize;
use serde_json::Value;
use tracing::{error, info, warn};

use crate::describe::{DescribeError, Ec2Describer};
use crate::events::{self, handled_calls, parse_event, STATE_CHANGE};
use dredge_lambda::emf::{self, Document, Unit};
use dredge_lambda::Diagnostic;
use dredge_lambda::{Invocation, Reporter};

/// The `detail-type` of EventBridge schedule events.
pub const SCHEDULED_EVENT: &str = "Scheduled Event";
/// The `source` of EventBridge schedule events.
pub const SCHEDULE_SOURCE: &str = "aws.events";
/// The kind reported for reconciles.
pub const RECONCILE: &str = "Reconcile";
/// The `Function` metric dimension's value.
pub const FUNCTION: &str = "ownership";
/// The dimension splitting `Events` by event kind.
pub const KIND_DIMENSION: &str = "EventKind";

/// What became of one event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// Its changes were applied (some may have failed permanently: see
    /// `errors`).
    #[default]
    Applied,
    /// The table was reconciled with a snapshot.
    Reconciled,
    /// A handled event that changed nothing (failed or DryRun call,
    /// `pending` state, ...).
    Ignored,
    /// An event type this function does not handle.
    Unknown,
    /// An event that cannot be understood: not retried.
    Invalid,
    /// Could not be processed and retrying will not help (see `errors`).
    Failed,
}

/// What one invocation did: returned to the caller, logged, and turned into
/// metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// The CloudTrail `eventName`, the `detail-type` of other events, or
    /// `Reconcile`.
    pub kind: String,
    pub result: Disposition,
    /// Changes the event carried.
    pub changes: u64,
    /// Changes (including those from described ENIs) that wrote marks or
    /// records.
    pub applied: u64,
    /// Outcomes of every change applied, described ENIs included.
    pub stats: ApplyStats,
    /// ENIs learned by describing instances the table did not know.
    pub described_enis: u64,
    /// Parts of the event that gave no change, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    /// Why the event was ignored, unknown or invalid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Permanent failures (logged, counted, not retried).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconcile: Option<ReconcileStats>,
}

/// A failure worth retrying: the invocation fails so Lambda delivers the
/// event again.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("{kind}: {source}; the event will be retried")]
    Store { kind: String, source: StoreError },
    #[error("{kind}: {source}; the event will be retried")]
    Describe { kind: String, source: DescribeError },
}

impl HandlerError {
    /// A short name for the Lambda error response's `errorType`.
    pub fn error_type(&self) -> &'static str {
        match self {
            HandlerError::Store { .. } => "Dredge.TransientStoreError",
            HandlerError::Describe { .. } => "Dredge.TransientEc2Error",
        }
    }
}

impl Disposition {
    pub const fn as_str(self) -> &'static str {
        match self {
            Disposition::Applied => "applied",
            Disposition::Reconciled => "reconciled",
            Disposition::Ignored => "ignored",
            Disposition::Unknown => "unknown",
            Disposition::Invalid => "invalid",
            Disposition::Failed => "failed",
        }
    }
}

/// What to do with one event.
enum Request {
    Reconcile { at: Option<UnixTime>, event_time: Option<UnixTime>, scope: SnapshotScope },
    Event,
    Invalid { kind: String, reason: String },
}

/// The handler: a store, a describer and the configuration, built once per
/// container and shared by every invocation.
pub struct Handler<S, D> {
    store: S,
    describer: D,
    policy: TagPolicy,
    scope: SnapshotScope,
}

/// What one invocation did: its summary, how long it took, and the
/// transient failure that fails it (so that the event is retried).
#[derive(Debug)]
pub struct Handled {
    pub summary: Summary,
    pub duration_ms: f64,
    pub failure: Option<HandlerError>,
}

impl Handled {
    pub fn into_result(self) -> Result<Summary, HandlerError> {
        match self.failure {
            None => Ok(self.summary),
            Some(e) => Err(e),
        }
    }
}

impl Invocation for Handled {
    type Response = Summary;

    fn metrics(&self, function: &str) -> Document {
        metrics(function, &self.summary, self.failure.is_some(), self.duration_ms)
    }

    fn log(&self) {
        let summary = &self.summary;
        match &self.failure {
            None => {
                let json = serde_json::to_string(summary).unwrap_or_default();
                info!(kind = %summary.kind, result = summary.result.as_str(), summary = %json, "handled");
            }
            Some(e) => error!(kind = %summary.kind, error = %e, "failed; the invocation fails so the event is retried"),
        }
    }

    fn into_response(self) -> Result<Summary, Diagnostic> {
        self.into_result()
            .map_err(|e| Diagnostic { error_type: e.error_type().to_owned(), error_message: e.to_string() })
    }
}

/// A handler whose invocations are reported as the Lambda entry reports
/// them: what the `dredge` CLI and the tests run.
pub struct Reported<S, D> {
    handler: Handler<S, D>,
    reporter: Reporter,
}

impl<S: OwnershipStore, D: Ec2Describer> Reported<S, D> {
    pub fn new(handler: Handler<S, D>, reporter: Reporter) -> Self {
        Reported { handler, reporter }
    }

    /// [`Handler::handle`], reported.
    pub async fn handle(&self, event: Value) -> Result<Summary, HandlerError> {
        self.handle_in(event, &self.handler.scope).await
    }

    /// [`Handler::handle_in`], reported.
    pub async fn handle_in(&self, event: Value, fallback: &SnapshotScope) -> Result<Summary, HandlerError> {
        let handled = self.handler.invoke(event, fallback).await;
        self.reporter.report(&handled);
        handled.into_result()
    }

    /// [`Handler::with_scope`].
    pub fn with_scope(self, scope: SnapshotScope) -> Self {
        Reported { handler: self.handler.with_scope(scope), reporter: self.reporter }
    }

    pub fn into_parts(self) -> (S, D) {
        self.handler.into_parts()
    }
}

impl<S, D> Deref for Reported<S, D> {
    type Target = Handler<S, D>;

    fn deref(&self) -> &Handler<S, D> {
        &self.handler
    }
}

impl<S: OwnershipStore, D: Ec2Describer> Handler<S, D> {
    /// A handler with no fallback reconcile scope.
    pub fn new(store: S, describer: D, policy: TagPolicy) -> Self {
        Handler { store, describer, policy, scope: SnapshotScope::default() }
    }

    /// The account and region a reconcile covers when the event does not
    /// say (a `{"reconcile": true}` payload without them).
    pub fn with_scope(mut self, scope: SnapshotScope) -> Self {
        self.scope = scope;
        self
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn describer(&self) -> &D {
        &self.describer
    }

    pub fn into_parts(self) -> (S, D) {
        (self.store, self.describer)
    }

    /// Handles one event, unreported; a reconcile without an account or
    /// region in the event uses the handler's scope.
    pub async fn handle(&self, event: Value) -> Result<Summary, HandlerError> {
        self.invoke(event, &self.scope).await.into_result()
    }

    /// Handles one event, unreported; a reconcile without an account or
    /// region in the event uses `fallback`'s, then the handler's.
    pub async fn handle_in(&self, event: Value, fallback: &SnapshotScope) -> Result<Summary, HandlerError> {
        self.invoke(event, fallback).await.into_result()
    }

    /// Handles one event: what the Lambda entry reports and answers.
    pub async fn invoke(&self, event: Value, fallback: &SnapshotScope) -> Handled {
        let started = Instant::now();
        let mut summary = Summary::default();
        let outcome = match classify(&event, fallback, &self.scope) {
            Request::Reconcile { at, event_time, scope } => {
                summary.kind = RECONCILE.to_owned();
                Box::pin(self.reconcile(&mut summary, at, event_time, &scope)).await
            }
            Request::Event => Box::pin(self.apply_event(&mut summary, &event)).await,
            Request::Invalid { kind, reason } => {
                warn!(kind = %kind, reason = %reason, "invalid event, not retried");
                summary.kind = kind;
                summary.result = Disposition::Invalid;
                summary.reason = Some(reason);
                Ok(())
            }
        };
        let duration_ms = (started.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0;
        Handled { summary, duration_ms, failure: outcome.err() }
    }

    async fn apply_event(&self, summary: &mut Summary, event: &Value) -> Result<(), HandlerError> {
        let parsed = match parse_event(event) {
            Ok(parsed) => parsed,
            Err(e) => {
                summary.kind = label_of(event);
                summary.result = Disposition::Invalid;
                summary.reason = Some(e.to_string());
                warn!(kind = %summary.kind, reason = %e, "invalid event, not retried");
                return Ok(());
            }
        };
        summary.kind = parsed.kind;
        match parsed.outcome {
            events::Outcome::Unknown => {
                summary.result = Disposition::Unknown;
                summary.reason = Some(format!("event type `{}` is not handled", summary.kind));
                info!(kind = %summary.kind, source = text(event, "source"), "unknown event type, counted and skipped");
            }
            events::Outcome::Ignored(why) => {
                summary.result = Disposition::Ignored;
                summary.reason = Some(match &why {
                    events::Ignored::Failed { error_code } => format!("the call failed: {error_code}"),
                    events::Ignored::DryRun => "a DryRun call".to_owned(),
                    events::Ignored::NoChange(reason) => reason.clone(),
                });
                info!(kind = %summary.kind, ignored = why.label(), "event changes nothing");
            }
            events::Outcome::Changes { changes, skipped } => {
                summary.result = Disposition::Applied;
                summary.changes = changes.len() as u64;
                for why in &skipped {
                    info!(kind = %summary.kind, skipped = %why, "part of the event gave no change; reconcile will catch up");
                }
                summary.skipped = skipped;
                let applier = Applier::new(&self.store, self.policy.clone());
                for change in &changes {
                    self.apply_change(&applier, change, summary).await?;
                }
            }
        }
        Ok(())
    }

    async fn apply_change(
        &self,
        applier: &Applier<'_, S>,
        change: &Change,
        summary: &mut Summary,
    ) -> Result<(), HandlerError> {
        let outcome = match Box::pin(applier.apply(change)).await {
            Ok(outcome) => outcome,
            Err(e) => return self.store_failed(e, summary),
        };
        summary.stats.record(&outcome);
        match outcome {
            Outcome::Applied { .. } => summary.applied += 1,
            Outcome::UnknownEni { reference } => {
                info!(kind = %summary.kind, reference = %reference, "change names an ENI the table cannot resolve; reconcile will catch up");
            }
            Outcome::Deferred { reference } => {
                info!(kind = %summary.kind, reference = %reference, "change names an ENI the table does not know yet; kept until it does");
            }
            Outcome::Ignored { reason } => info!(kind = %summary.kind, reason = %reason, "change ignored"),
            Outcome::NeedsDescribe { instance_id } => {
                self.describe_instance(applier, &instance_id, change.at(), summary).await?;
            }
            Outcome::AppliedThenDescribe { instance_id, .. } => {
                summary.applied += 1;
                self.describe_instance(applier, &instance_id, change.at(), summary).await?;
            }
        }
        Ok(())
    }

    /// Learns the ENIs of an instance from EC2 and applies them as up since
    /// `at`, the time of the event that asked, while the describe is fresh
    /// ([`DESCRIBE_FRESH_SECONDS`]); later, as up since the describe. A
    /// describe tells the present: made long after the event, it may show
    /// what changed since (an address released and handed back), which must
    /// not be dated back to the event.
    async fn describe_instance(
        &self,
        applier: &Applier<'_, S>,
        instance_id: &str,
        at: UnixTime,
        summary: &mut Summary,
    ) -> Result<(), HandlerError> {
        let at = match self.describer.reads_at() {
            Some(now) if now.0 - at.0 > DESCRIBE_FRESH_SECONDS => now,
            _ => at,
        };
        let enis: Vec<Eni> = match Box::pin(self.describer.describe_instance(instance_id)).await {
            Ok(enis) => enis,
            Err(e) if e.is_transient() => return Err(HandlerError::Describe { kind: summary.kind.clone(), source: e }),
            Err(e) => {
                warn!(kind = %summary.kind, instance_id, error = %e, "could not describe the instance; reconcile will catch up");
                summary.errors.push(format!("describe {instance_id}: {e}"));
                return Ok(());
            }
        };
        if enis.is_empty() {
            info!(kind = %summary.kind, instance_id, "the instance has no ENIs (gone already?)");
        }
        summary.described_enis += enis.len() as u64;
        for eni in enis {
            let change = Change::EniUp { at, eni: Box::new(eni) };
            let outcome = match Box::pin(applier.apply(&change)).await {
                Ok(outcome) => outcome,
                Err(e) => {
                    self.store_failed(e, summary)?;
                    continue;
                }
            };
            summary.stats.record(&outcome);
            if matches!(outcome, Outcome::Applied { .. }) {
                summary.applied += 1;
            }
        }
        Ok(())
    }

    async fn reconcile(
        &self,
        summary: &mut Summary,
        at: Option<UnixTime>,
        event_time: Option<UnixTime>,
        scope: &SnapshotScope,
    ) -> Result<(), HandlerError> {
        summary.result = Disposition::Reconciled;
        if scope.account_id.is_none() || scope.region.is_none() {
            warn!(
                account = scope.account_id.as_deref(),
                region = scope.region.as_deref(),
                "reconcile scope is partial: owners of any account or region missing from the snapshot may be closed"
            );
        }
        let taken = match Box::pin(self.describer.snapshot()).await {
            Ok(taken) => taken,
            Err(e) if e.is_transient() => return Err(HandlerError::Describe { kind: summary.kind.clone(), source: e }),
            Err(e) => {
                error!(error = %e, "could not take a snapshot; reconcile skipped");
                summary.result = Disposition::Failed;
                summary.errors.push(format!("snapshot: {e}"));
                return Ok(());
            }
        };
        let at = at.or(taken.taken_at).or(event_time).unwrap_or_else(UnixTime::now);
        let applier = Applier::new(&self.store, self.policy.clone());
        match Box::pin(applier.reconcile(&taken.snapshot.enis, at, scope)).await {
            Ok(stats) => {
                info!(at = %at, enis = stats.enis, opened = stats.opened, closed = stats.closed, "reconciled");
                summary.reconcile = Some(stats);
                Ok(())
            }
            Err(e) => {
                let failed = self.store_failed(e, summary);
                summary.result = Disposition::Failed;
                failed
            }
        }
    }

    /// A transient store failure fails the invocation; a permanent one is
    /// logged and counted.
    fn store_failed(&self, e: StoreError, summary: &mut Summary) -> Result<(), HandlerError> {
        if e.is_transient() {
            return Err(HandlerError::Store { kind: summary.kind.clone(), source: e });
        }
        error!(kind = %summary.kind, error = %e, "permanent store error, not retried");
        summary.errors.push(e.to_string());
        Ok(())
    }
}

/// How long after an event a describe still tells the state at the
/// event's time: EC2 state changes arrive within seconds, CloudTrail calls
/// minutes late.
pub const DESCRIBE_FRESH_SECONDS: i64 = 120;

/// The EMF document for one invocation: every counter under `Function`,
/// and `Events` also under `Function` × `EventKind`.
pub fn metrics(function: &str, summary: &Summary, transient_failure: bool, duration_ms: f64) -> Document {
    let s = summary;
    let is = |d: Disposition| u64::from(s.result == d);
    let mut doc = Document::for_function(function);
    doc.dimension(KIND_DIMENSION, metric_kind(s))
        .count("Events", 1)
        .count("UnknownEvents", is(Disposition::Unknown))
        .count("IgnoredEvents", is(Disposition::Ignored))
        .count("InvalidEvents", is(Disposition::Invalid))
        .count("Changes", s.changes)
        .count("ChangesApplied", s.applied)
        .count("MarksOpened", s.stats.opened)
        .count("MarksClosed", s.stats.closed)
        .count("UnscopedAddresses", s.stats.unscoped)
        .count("UnknownEnis", s.stats.unknown_eni)
        .count("DeferredChanges", s.stats.deferred)
        .count("IgnoredChanges", s.stats.ignored)
        .count("NeedsDescribe", s.stats.needs_describe)
        .count("DescribedEnis", s.described_enis)
        .count("SkippedParts", s.skipped.len() as u64)
        .count("PermanentErrors", s.errors.len() as u64)
        .count("TransientErrors", u64::from(transient_failure))
        .metric("HandlerDuration", duration_ms, Unit::Milliseconds);
    if let Some(r) = &s.reconcile {
        doc.count("Reconciles", 1)
            .count("ReconcileEnis", r.enis)
            .count("ReconcileAddresses", r.addresses)
            .count("ReconcileUnchanged", r.unchanged)
            .count("ReconcileOpened", r.opened)
            .count("ReconcileClosed", r.closed)
            .count("ReconcileUnscoped", r.unscoped);
    }
    doc.directive(&[&[emf::FUNCTION_DIMENSION, KIND_DIMENSION]]).count("Events", 1);
    doc
}

/// The `EventKind` dimension: a handled kind, `Reconcile`, or `Other` (so
/// that arbitrary event types cannot create unbounded metrics).
pub fn metric_kind(summary: &Summary) -> &str {
    let kind = summary.kind.as_str();
    if kind == STATE_CHANGE {
        "InstanceStateChange"
    } else if kind == RECONCILE || handled_calls().any(|call| call == kind) {
        kind
    } else {
        "Other"
    }
}

/// A label for an event that could not be parsed.
fn label_of(event: &Value) -> String {
    let detail_name = event.get("detail").and_then(|d| d.get("eventName")).and_then(Value::as_str);
    detail_name
        .or_else(|| event.get("eventName").and_then(Value::as_str))
        .or_else(|| event.get("detail-type").and_then(Value::as_str))
        .unwrap_or("Invalid")
        .to_owned()
}

fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn classify(event: &Value, fallback: &SnapshotScope, own: &SnapshotScope) -> Request {
    let scope = |account: Option<&str>, region: Option<&str>| SnapshotScope {
        account_id: account
            .map(str::to_owned)
            .or_else(|| fallback.account_id.clone())
            .or_else(|| own.account_id.clone()),
        region: region.map(str::to_owned).or_else(|| fallback.region.clone()).or_else(|| own.region.clone()),
    };
    if event.get("reconcile").and_then(Value::as_bool) == Some(true) {
        let at = match event.get("at") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => match n.as_i64() {
                Some(secs) => Some(UnixTime(secs)),
                None => return invalid_at(n),
            },
            Some(Value::String(s)) => match UnixTime::parse_any(s) {
                Ok(t) => Some(t),
                Err(e) => return Request::Invalid { kind: RECONCILE.to_owned(), reason: e.to_string() },
            },
            Some(other) => return invalid_at(other),
        };
        let scope = scope(text(event, "account"), text(event, "region"));
        return Request::Reconcile { at, event_time: None, scope };
    }
    if text(event, "detail-type") == Some(SCHEDULED_EVENT) && text(event, "source") == Some(SCHEDULE_SOURCE) {
        let event_time = match text(event, "time").map(UnixTime::parse_rfc3339) {
            None => None,
            Some(Ok(t)) => Some(t),
            Some(Err(e)) => return Request::Invalid { kind: SCHEDULED_EVENT.to_owned(), reason: e.to_string() },
        };
        let scope = scope(text(event, "account"), text(event, "region"));
        return Request::Reconcile { at: None, event_time, scope };
    }
    Request::Event
}

fn invalid_at(value: impl std::fmt::Display) -> Request {
    Request::Invalid {
        kind: RECONCILE.to_owned(),
        reason: format!("`at` must be RFC 3339 or Unix seconds, not {value}"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn classifies_reconcile_requests() {
        let none = SnapshotScope::default();
        let own = SnapshotScope { account_id: Some("111111111111".into()), region: Some("eu-west-1".into()) };
        match classify(&json!({"reconcile": true, "at": "2026-11-12T04:00:00Z", "region": "us-east-1"}), &none, &own) {
            Request::Reconcile { at, event_time, scope } => {
                assert_eq!(at, Some(UnixTime::parse_rfc3339("2026-11-12T04:00:00Z").unwrap()));
                assert_eq!(event_time, None);
                assert_eq!(scope.account_id.as_deref(), Some("111111111111"));
                assert_eq!(scope.region.as_deref(), Some("us-east-1"));
            }
            _ => panic!("not a reconcile"),
        }
        let fallback = SnapshotScope { account_id: Some("222222222222".into()), region: None };
        match classify(&json!({"reconcile": true, "at": 1800000000}), &fallback, &own) {
            Request::Reconcile { at, scope, .. } => {
                assert_eq!(at, Some(UnixTime(1_800_000_000)));
                assert_eq!(scope.account_id.as_deref(), Some("222222222222"));
                assert_eq!(scope.region.as_deref(), Some("eu-west-1"));
            }
            _ => panic!("not a reconcile"),
        }
        for bad in [json!({"reconcile": true, "at": "soon"}), json!({"reconcile": true, "at": [1]})] {
            assert!(matches!(classify(&bad, &none, &own), Request::Invalid { .. }), "{bad}");
        }
        // Not a reconcile: false, or a schedule from elsewhere.
        assert!(matches!(classify(&json!({"reconcile": false}), &none, &own), Request::Event));
        let other = json!({"detail-type": "Scheduled Event", "source": "custom.app"});
        assert!(matches!(classify(&other, &none, &own), Request::Event));
    }

    #[test]
    fn metric_kinds_are_bounded() {
        let kind = |k: &str| metric_kind(&Summary { kind: k.into(), ..Summary::default() }).to_owned();
        assert_eq!(kind("RunInstances"), "RunInstances");
        assert_eq!(kind(STATE_CHANGE), "InstanceStateChange");
        assert_eq!(kind(RECONCILE), "Reconcile");
        assert_eq!(kind("EBS Volume Notification"), "Other");
        assert_eq!(kind("CreateVpc"), "Other");
    }
}
