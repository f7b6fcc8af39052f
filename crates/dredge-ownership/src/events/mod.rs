//! EventBridge events that change IP ownership, turned into [`Change`]s.
//!
//! Two kinds of `aws.ec2` event are handled:
//!
//! - `EC2 Instance State-change Notification`: `detail.instance-id` and
//!   `detail.state`. `running` is [`Change::InstanceUp`]; `stopping` and
//!   `stopped` are [`Change::InstanceStopped`]; `shutting-down` and
//!   `terminated` are [`Change::InstanceDown`]; `pending` changes nothing.
//! - `AWS API Call via CloudTrail` for the calls in [`handled_calls`]:
//!   identifiers come from `detail.requestParameters`, results from
//!   `detail.responseElements`. A call with an `errorCode` (including
//!   `Client.DryRunOperation`, which is how CloudTrail records a successful
//!   DryRun) changed nothing and is ignored.
//!
//! Every change carries the event's own time (`detail.eventTime`, else the
//! envelope's `time`), never the time of processing: EventBridge neither
//! orders nor de-duplicates deliveries. The ENIs built here carry the account
//! (`detail.recipientAccountId`, else `detail.userIdentity.accountId`, else the
//! envelope's `account`) and region (`detail.awsRegion`, else `region`).
//!
//! CloudTrail renders EC2's XML lists in more than one way, and this parser
//! accepts all it has seen or been told of: `{"items": [...]}`, `{"item":
//! [...]}`, both keys in one object (merged), a single object instead of an
//! array, odd wrappers such as `{"assignedPrivateIpAddressSetType": [...]}`,
//! empty sets as `{}`, `""` or null, and list elements that are bare strings
//! or one-member objects. Newer EC2 APIs are recorded with the query names
//! (`{"AssignIpv6AddressesRequest": {"NetworkInterfaceId": ...}}`): the
//! wrapper is removed and PascalCase member names are accepted everywhere.
//!
//! A bare CloudTrail record (no EventBridge envelope, as in CloudTrail's S3
//! log files) is accepted too.

mod calls;
#[cfg(test)]
mod fixtures;
mod lists;

use dredge_core::ownership::{BadTime, Change, UnixTime};
use serde_json::Value;
use thiserror::Error;

use calls::{Cx, Out, CALLS};
use lists::{get, text, unwrap_query};

/// The `detail-type` of instance state changes.
pub const STATE_CHANGE: &str = "EC2 Instance State-change Notification";
/// The `detail-type` of CloudTrail API calls.
pub const CLOUDTRAIL_CALL: &str = "AWS API Call via CloudTrail";

/// The CloudTrail `eventName`s turned into changes.
pub fn handled_calls() -> impl Iterator<Item = &'static str> {
    CALLS.iter().map(|(name, _)| *name)
}

/// What one event turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The CloudTrail `eventName`, or the `detail-type` of other events: a
    /// label for counting and logging.
    pub kind: String,
    pub outcome: Outcome,
}

/// What one event means for ownership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The event changed ownership. `skipped` says which parts of it could
    /// not be turned into changes, and why; `changes` may then be empty (for
    /// example when no ENI id is known for a launched instance). Skipped
    /// parts are for logging: a later snapshot reconciles them.
    Changes { changes: Vec<Change>, skipped: Vec<String> },
    /// A handled event type that changed nothing.
    Ignored(Ignored),
    /// An event type (detail-type, or CloudTrail eventName/eventSource) this
    /// parser does not handle. Not an error: the caller counts these.
    Unknown,
}

/// Why a handled event changed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignored {
    /// The call failed: CloudTrail recorded an `errorCode`.
    Failed { error_code: String },
    /// A DryRun call (`errorCode` `Client.DryRunOperation`, or `dryRun` in
    /// the request).
    DryRun,
    /// The event changes no ownership, e.g. instance state `pending`.
    NoChange(String),
}

impl Ignored {
    /// A short, fixed label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Ignored::Failed { .. } => "failed",
            Ignored::DryRun => "dry_run",
            Ignored::NoChange(_) => "no_change",
        }
    }
}

impl Parsed {
    /// The changes, empty unless the outcome is [`Outcome::Changes`].
    pub fn changes(&self) -> &[Change] {
        match &self.outcome {
            Outcome::Changes { changes, .. } => changes,
            _ => &[],
        }
    }

    /// Takes the changes, empty unless the outcome is [`Outcome::Changes`].
    pub fn into_changes(self) -> Vec<Change> {
        match self.outcome {
            Outcome::Changes { changes, .. } => changes,
            _ => Vec::new(),
        }
    }

    fn new(kind: &str, outcome: Outcome) -> Parsed {
        Parsed { kind: kind.to_owned(), outcome }
    }
}

/// A handled event that cannot be understood: not an event at all, or
/// missing what its type must carry. Unknown event types are not errors.
#[derive(Debug, Error)]
pub enum EventError {
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not an EventBridge event: {0}")]
    NotAnEvent(&'static str),
    #[error("{event}: no event time (`detail.eventTime` or `time`)")]
    NoTime { event: String },
    #[error("{event}: {source}")]
    BadTime { event: String, source: BadTime },
    #[error("{event}: `{field}` is missing")]
    Missing { event: String, field: &'static str },
    #[error("{event}: `{field}` is not an IP address: `{value}`")]
    BadAddress { event: String, field: &'static str, value: String },
}

/// Parses one event from its JSON text.
pub fn parse_event_slice(json: &[u8]) -> Result<Parsed, EventError> {
    let event: Value = serde_json::from_slice(json)?;
    parse_event(&event)
}

/// Parses one EventBridge event (or a bare CloudTrail record).
pub fn parse_event(event: &Value) -> Result<Parsed, EventError> {
    let root = event.as_object().ok_or(EventError::NotAnEvent("not a JSON object"))?;
    match root.get("detail-type").and_then(Value::as_str) {
        Some(STATE_CHANGE) if from_ec2(event) => state_change(event),
        Some(CLOUDTRAIL_CALL) => {
            let detail =
                root.get("detail").filter(|d| d.is_object()).ok_or(EventError::NotAnEvent("no `detail` object"))?;
            cloudtrail(Some(event), detail)
        }
        Some(other) => Ok(Parsed::new(other, Outcome::Unknown)),
        None if root.contains_key("eventName") && root.contains_key("eventSource") => cloudtrail(None, event),
        None => Err(EventError::NotAnEvent("no `detail-type`")),
    }
}

fn from_ec2(event: &Value) -> bool {
    text(event, "source").is_none_or(|s| s == "aws.ec2")
}

fn state_change(event: &Value) -> Result<Parsed, EventError> {
    let detail = event.get("detail").unwrap_or(&Value::Null);
    let missing = |field| EventError::Missing { event: STATE_CHANGE.to_owned(), field };
    let instance_id = text(detail, "instance-id").ok_or_else(|| missing("detail.instance-id"))?;
    let state = text(detail, "state").ok_or_else(|| missing("detail.state"))?;
    let at = event_time(Some(event), detail, STATE_CHANGE)?;
    let instance_id = instance_id.to_owned();
    let change = match state {
        "running" => Change::InstanceUp { at, instance_id },
        "stopping" | "stopped" => Change::InstanceStopped { at, instance_id },
        "shutting-down" | "terminated" => Change::InstanceDown { at, instance_id },
        other => {
            let why = format!("instance state `{other}`");
            return Ok(Parsed::new(STATE_CHANGE, Outcome::Ignored(Ignored::NoChange(why))));
        }
    };
    Ok(Parsed::new(STATE_CHANGE, Outcome::Changes { changes: vec![change], skipped: Vec::new() }))
}

fn cloudtrail(envelope: Option<&Value>, detail: &Value) -> Result<Parsed, EventError> {
    let name = text(detail, "eventName").unwrap_or(CLOUDTRAIL_CALL);
    let Some(&(_, handler)) = CALLS.iter().find(|(call, _)| *call == name) else {
        return Ok(Parsed::new(name, Outcome::Unknown));
    };
    let ec2 = text(detail, "eventSource").is_none_or(|s| s == "ec2.amazonaws.com") && envelope.is_none_or(from_ec2);
    if !ec2 {
        return Ok(Parsed::new(name, Outcome::Unknown));
    }
    if let Some(code) = text(detail, "errorCode") {
        let ignored = if code.ends_with("DryRunOperation") {
            Ignored::DryRun
        } else {
            Ignored::Failed { error_code: code.to_owned() }
        };
        return Ok(Parsed::new(name, Outcome::Ignored(ignored)));
    }
    let request = unwrap_query(get(detail, "requestParameters"), name, "Request");
    if request.and_then(|r| get(r, "dryRun")).and_then(Value::as_bool) == Some(true) {
        return Ok(Parsed::new(name, Outcome::Ignored(Ignored::DryRun)));
    }
    let detail_or_envelope = |detail_key: &str, envelope_key: &str| {
        text(detail, detail_key).or_else(|| envelope.and_then(|e| text(e, envelope_key)))
    };
    let cx = Cx {
        event: name,
        at: event_time(envelope, detail, name)?,
        account: text(detail, "recipientAccountId")
            .or_else(|| get(detail, "userIdentity").and_then(|u| text(u, "accountId")))
            .or_else(|| envelope.and_then(|e| text(e, "account"))),
        region: detail_or_envelope("awsRegion", "region"),
        request,
        response: unwrap_query(get(detail, "responseElements"), name, "Response"),
    };
    let mut out = Out::default();
    handler(&cx, &mut out)?;
    Ok(Parsed::new(name, Outcome::Changes { changes: out.changes, skipped: out.skipped }))
}

/// `detail.eventTime`, else the envelope's `time`.
fn event_time(envelope: Option<&Value>, detail: &Value, event: &str) -> Result<UnixTime, EventError> {
    let time = text(detail, "eventTime")
        .or_else(|| envelope.and_then(|e| text(e, "time")))
        .ok_or_else(|| EventError::NoTime { event: event.to_owned() })?;
    UnixTime::parse_rfc3339(time).map_err(|source| EventError::BadTime { event: event.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn state_change_running_is_instance_up_at_the_event_time() {
        assert_eq!(one(RUNNING), Change::InstanceUp { at: t("2026-11-03T14:02:39Z"), instance_id: INSTANCE.into() });
        assert_eq!(parse_event_slice(RUNNING.as_bytes()).unwrap().kind, STATE_CHANGE);
    }

    #[test]
    fn state_change_terminated_is_instance_down() {
        assert_eq!(
            one(TERMINATED),
            Change::InstanceDown { at: t("2026-11-12T03:45:52Z"), instance_id: INSTANCE.into() }
        );
    }

    #[test]
    fn other_states() {
        let mut event = json(TERMINATED);
        for state in ["stopped", "stopping"] {
            event["detail"]["state"] = state.into();
            let changes = parse_event(&event).unwrap().into_changes();
            assert!(matches!(changes[..], [Change::InstanceStopped { .. }]), "{state}");
        }
        event["detail"]["state"] = "shutting-down".into();
        assert!(matches!(parse_event(&event).unwrap().into_changes()[..], [Change::InstanceDown { .. }]));
        for state in ["pending", "rebooting"] {
            event["detail"]["state"] = state.into();
            let outcome = outcome(&event);
            assert!(matches!(outcome, Outcome::Ignored(Ignored::NoChange(_))), "{state}: {outcome:?}");
        }
        event["detail"].as_object_mut().unwrap().remove("state");
        assert!(matches!(parse_event(&event), Err(EventError::Missing { .. })));
    }

    #[test]
    fn failed_and_dry_run_calls_are_ignored() {
        let parsed = parse_event_slice(RUN_INSTANCES_ERROR.as_bytes()).unwrap();
        assert_eq!(parsed.kind, "RunInstances");
        assert_eq!(
            parsed.outcome,
            Outcome::Ignored(Ignored::Failed { error_code: "Server.InsufficientInstanceCapacity".into() })
        );
        let parsed = parse_event_slice(CREATE_DRY_RUN.as_bytes()).unwrap();
        assert_eq!(parsed.outcome, Outcome::Ignored(Ignored::DryRun));
        assert_eq!(Ignored::DryRun.label(), "dry_run");

        // An error on any handled call, even one with a full response.
        let mut event = json(ASSIGN);
        event["detail"]["errorCode"] = "Client.InvalidParameterValue".into();
        assert!(matches!(outcome(&event), Outcome::Ignored(Ignored::Failed { .. })));

        // A DryRun flag in the request.
        let mut event = json(DELETE);
        event["detail"]["requestParameters"]["dryRun"] = true.into();
        assert_eq!(outcome(&event), Outcome::Ignored(Ignored::DryRun));
    }

    #[test]
    fn unknown_types_are_counted_not_errors() {
        let mut event = json(CREATE);
        event["detail"]["eventName"] = "CreateTags".into();
        let parsed = parse_event(&event).unwrap();
        assert_eq!((parsed.kind.as_str(), &parsed.outcome), ("CreateTags", &Outcome::Unknown));

        // Unknown even when it failed.
        event["detail"]["errorCode"] = "Client.UnauthorizedOperation".into();
        assert_eq!(outcome(&event), Outcome::Unknown);

        // A handled name from another service.
        let mut event = json(CREATE);
        event["detail"]["eventSource"] = "ecs.amazonaws.com".into();
        assert_eq!(outcome(&event), Outcome::Unknown);

        let mut event = json(RUNNING);
        event["detail-type"] = "EC2 Spot Instance Interruption Warning".into();
        let parsed = parse_event(&event).unwrap();
        assert_eq!(parsed.kind, "EC2 Spot Instance Interruption Warning");
        assert_eq!(parsed.outcome, Outcome::Unknown);

        let mut event = json(RUNNING);
        event["source"] = "aws.autoscaling".into();
        assert_eq!(outcome(&event), Outcome::Unknown);
    }

    #[test]
    fn time_comes_from_the_event() {
        // The CloudTrail record's eventTime wins over the envelope's time.
        let mut event = json(ASSIGN);
        event["time"] = "2026-11-05T09:20:00Z".into();
        assert_eq!(parse_event(&event).unwrap().changes()[0].at(), t("2026-11-05T09:15:03Z"));
        // Without it, the envelope's.
        event["detail"].as_object_mut().unwrap().remove("eventTime");
        assert_eq!(parse_event(&event).unwrap().changes()[0].at(), t("2026-11-05T09:20:00Z"));
        // Without either, no changes: a guessed time would misattribute.
        event.as_object_mut().unwrap().remove("time");
        assert!(matches!(parse_event(&event), Err(EventError::NoTime { .. })));
        event["detail"]["eventTime"] = "yesterday".into();
        assert!(matches!(parse_event(&event), Err(EventError::BadTime { .. })));
    }

    #[test]
    fn account_and_region_fall_back() {
        let mut event = json(CREATE);
        event["account"] = "210987654321".into();
        event["region"] = "eu-west-1".into();
        let detail = event["detail"].as_object_mut().unwrap();
        detail.remove("recipientAccountId");
        detail.remove("awsRegion");
        let Change::EniUp { eni, .. } = first(&event) else { panic!() };
        assert_eq!(eni.account_id.as_deref(), Some("123456789012"), "userIdentity.accountId");
        assert_eq!(eni.region.as_deref(), Some("eu-west-1"));
        event["detail"]["userIdentity"].as_object_mut().unwrap().remove("accountId");
        let Change::EniUp { eni, .. } = first(&event) else { panic!() };
        assert_eq!(eni.account_id.as_deref(), Some("210987654321"));
    }

    #[test]
    fn a_bare_cloudtrail_record_parses() {
        let event = json(ATTACH);
        assert_eq!(parse_event(&event["detail"]).unwrap().changes(), &[one(ATTACH)]);
    }

    #[test]
    fn malformed_events_are_errors() {
        assert!(matches!(parse_event_slice(b"{"), Err(EventError::Json(_))));
        assert!(matches!(parse_event_slice(b"[]"), Err(EventError::NotAnEvent(_))));
        assert!(matches!(parse_event_slice(b"{\"detail\": {}}"), Err(EventError::NotAnEvent(_))));
        let mut event = json(DELETE);
        event["detail"]["requestParameters"] = json("{}");
        let err = parse_event(&event).unwrap_err();
        assert_eq!(err.to_string(), "DeleteNetworkInterface: `networkInterfaceId` is missing");
        let mut event = json(ATTACH);
        event["detail"]["requestParameters"].as_object_mut().unwrap().remove("instanceId");
        assert!(matches!(parse_event(&event), Err(EventError::Missing { field: "instanceId", .. })));
    }

    #[test]
    fn each_handled_call_once() {
        let mut names: Vec<&str> = handled_calls().collect();
        assert_eq!(names.len(), 12);
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 12);
    }

    #[test]
    fn the_fixtures_tell_one_story() {
        let mut all: Vec<Change> = [
            RUN_INSTANCES,
            RUNNING,
            ASSIGN,
            UNASSIGN,
            ASSIGN6,
            UNASSIGN6,
            ASSOCIATE,
            DISASSOCIATE,
            CREATE,
            ATTACH,
            DETACH,
            DELETE,
            TERMINATE,
            TERMINATED,
        ]
        .iter()
        .rev()
        .flat_map(|text| changes(text))
        .collect();
        // Deliveries come in any order; the events' own times restore it.
        all.sort_by_key(Change::at);
        let story: Vec<&str> = all
            .iter()
            .map(|c| match c {
                Change::EniUp { .. } => "up",
                Change::EniDeleted { .. } => "deleted",
                Change::Attached { .. } => "attached",
                Change::Detached { .. } => "detached",
                Change::AddressesAssigned { .. } => "assigned",
                Change::AddressesUnassigned { .. } => "unassigned",
                Change::PublicAssociated { .. } => "associated",
                Change::PublicDisassociated { .. } => "disassociated",
                Change::InstanceDown { .. } => "down",
                Change::InstanceStopped { .. } => "stopped",
                Change::InstanceUp { .. } => "running",
            })
            .collect();
        assert_eq!(
            story,
            [
                "up",
                "up",
                "running",
                "assigned",
                "unassigned",
                "assigned",
                "unassigned",
                "associated",
                "disassociated",
                "up",
                "attached",
                "detached",
                "deleted",
                "down",
                "down"
            ]
        );
    }
}
