//! EventBridge events that change IP ownership, turned into [`Change`]s.
//!
//! Two kinds of `aws.ec2` event are handled:
//!
//! - `EC2 Instance State-change Notification`: `detail.instance-id` and
//!   `detail.state`. `running` is [`Change::InstanceUp`]; `stopped`,
//!   `shutting-down` and `terminated` are [`Change::InstanceDown`];
//!   `pending` and `stopping` change nothing.
//! - `AWS API Call via CloudTrail` for the calls in [`HANDLED_CALLS`]:
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

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::Value;
use thiserror::Error;

use super::{is_private, merge_tags, push_unique, BadTime, Change, Eni, UnixTime};

/// The `detail-type` of instance state changes.
pub const STATE_CHANGE: &str = "EC2 Instance State-change Notification";
/// The `detail-type` of CloudTrail API calls.
pub const CLOUDTRAIL_CALL: &str = "AWS API Call via CloudTrail";

/// The CloudTrail `eventName`s turned into changes.
pub const HANDLED_CALLS: [&str; 12] = [
    "RunInstances",
    "TerminateInstances",
    "CreateNetworkInterface",
    "DeleteNetworkInterface",
    "AttachNetworkInterface",
    "DetachNetworkInterface",
    "AssignPrivateIpAddresses",
    "UnassignPrivateIpAddresses",
    "AssignIpv6Addresses",
    "UnassignIpv6Addresses",
    "AssociateAddress",
    "DisassociateAddress",
];

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
    let up = match state {
        "running" => true,
        "stopped" | "shutting-down" | "terminated" => false,
        "pending" | "stopping" => {
            let why = format!("instance state `{state}`");
            return Ok(Parsed::new(STATE_CHANGE, Outcome::Ignored(Ignored::NoChange(why))));
        }
        other => {
            let why = format!("unknown instance state `{other}`");
            return Ok(Parsed::new(STATE_CHANGE, Outcome::Ignored(Ignored::NoChange(why))));
        }
    };
    let at = event_time(Some(event), detail, STATE_CHANGE)?;
    let instance_id = instance_id.to_owned();
    let change = if up { Change::InstanceUp { at, instance_id } } else { Change::InstanceDown { at, instance_id } };
    Ok(Parsed::new(STATE_CHANGE, Outcome::Changes { changes: vec![change], skipped: Vec::new() }))
}

type Handler = fn(&Cx<'_>, &mut Out) -> Result<(), EventError>;

fn cloudtrail(envelope: Option<&Value>, detail: &Value) -> Result<Parsed, EventError> {
    let name = text(detail, "eventName").unwrap_or(CLOUDTRAIL_CALL);
    let handler: Handler = match name {
        "RunInstances" => run_instances,
        "TerminateInstances" => terminate_instances,
        "CreateNetworkInterface" => create_network_interface,
        "DeleteNetworkInterface" => delete_network_interface,
        "AttachNetworkInterface" => attach_network_interface,
        "DetachNetworkInterface" => detach_network_interface,
        "AssignPrivateIpAddresses" => assign_private,
        "UnassignPrivateIpAddresses" => unassign_private,
        "AssignIpv6Addresses" => assign_ipv6,
        "UnassignIpv6Addresses" => unassign_ipv6,
        "AssociateAddress" => associate_address,
        "DisassociateAddress" => disassociate_address,
        _ => return Ok(Parsed::new(name, Outcome::Unknown)),
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

/// What a CloudTrail handler sees.
struct Cx<'a> {
    event: &'a str,
    at: UnixTime,
    account: Option<&'a str>,
    region: Option<&'a str>,
    request: Option<&'a Value>,
    response: Option<&'a Value>,
}

#[derive(Default)]
struct Out {
    changes: Vec<Change>,
    skipped: Vec<String>,
}

impl Out {
    fn push(&mut self, change: Change) {
        self.changes.push(change);
    }

    fn skip(&mut self, why: impl Into<String>) {
        self.skipped.push(why.into());
    }
}

impl<'a> Cx<'a> {
    fn missing(&self, field: &'static str) -> EventError {
        EventError::Missing { event: self.event.to_owned(), field }
    }

    fn ip(&self, value: &str, field: &'static str) -> Result<IpAddr, EventError> {
        value.trim().parse().map_err(|_| EventError::BadAddress {
            event: self.event.to_owned(),
            field,
            value: value.to_owned(),
        })
    }

    /// A string member of the request, else of the response.
    fn text(&self, field: &str) -> Option<&'a str> {
        self.request.and_then(|r| text(r, field)).or_else(|| self.response.and_then(|r| text(r, field)))
    }

    fn required(&self, field: &'static str) -> Result<&'a str, EventError> {
        self.text(field).ok_or_else(|| self.missing(field))
    }

    fn public_ip(&self, field: &'static str) -> Result<Option<IpAddr>, EventError> {
        self.text(field).map(|s| self.ip(s, field)).transpose()
    }

    /// An ENI with what the event says of where it is.
    fn eni(&self, eni_id: &str) -> Eni {
        let mut eni = Eni::new(eni_id);
        eni.account_id = self.account.map(str::to_owned);
        eni.region = self.region.map(str::to_owned);
        eni
    }

    /// The addresses listed under the first of `sets` present in `object`.
    fn addresses(&self, object: Option<&Value>, sets: &[&str], key: &'static str) -> Result<Vec<IpAddr>, EventError> {
        let Some(object) = object else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for set in sets {
            for item in items(get(object, set)) {
                let value = match item {
                    Value::String(s) => Some(s.as_str()),
                    Value::Object(_) => text(item, key).or_else(|| sole_string(item)),
                    _ => None,
                };
                if let Some(value) = value.filter(|v| !v.is_empty()) {
                    push_unique(&mut out, self.ip(value, key)?);
                }
            }
            if !out.is_empty() {
                break;
            }
        }
        Ok(out)
    }

    /// An ENI as CloudTrail describes it (RunInstances'
    /// `networkInterfaceSet` items, CreateNetworkInterface's
    /// `networkInterface`). `None` without a `networkInterfaceId`.
    fn described_eni(&self, ni: &Value) -> Result<Option<Eni>, EventError> {
        let Some(id) = text(ni, "networkInterfaceId") else {
            return Ok(None);
        };
        let mut eni = self.eni(id);
        eni.az = owned(text(ni, "availabilityZone"));
        eni.vpc_id = owned(text(ni, "vpcId"));
        eni.subnet_id = owned(text(ni, "subnetId"));
        eni.interface_type = owned(text(ni, "interfaceType"));
        eni.requester_id = owned(text(ni, "requesterId"));
        eni.description = owned(text(ni, "description"));
        if let Some(attachment) = get(ni, "attachment") {
            eni.instance_id = owned(text(attachment, "instanceId"));
            eni.attachment_id = owned(text(attachment, "attachmentId"));
        }
        for item in items(get(ni, "privateIpAddressesSet")) {
            if let Some(ip) = text(item, "privateIpAddress") {
                push_unique(&mut eni.private_addresses, self.ip(ip, "privateIpAddress")?);
            }
            if let Some(ip) = get(item, "association").and_then(|a| text(a, "publicIp")) {
                push_unique(&mut eni.public_addresses, self.ip(ip, "publicIp")?);
            }
        }
        if eni.private_addresses.is_empty() {
            if let Some(ip) = text(ni, "privateIpAddress") {
                eni.private_addresses.push(self.ip(ip, "privateIpAddress")?);
            }
        }
        if let Some(ip) = get(ni, "association").and_then(|a| text(a, "publicIp")) {
            push_unique(&mut eni.public_addresses, self.ip(ip, "publicIp")?);
        }
        for ip in self.addresses(Some(ni), &["ipv6AddressesSet"], "ipv6Address")? {
            let list = if is_private(ip) { &mut eni.private_addresses } else { &mut eni.public_addresses };
            push_unique(list, ip);
        }
        eni.tags = tags(get(ni, "tagSet"));
        merge_tags(&mut eni.tags, &tags(get(ni, "tags")));
        Ok(Some(eni))
    }
}

/// One `EniUp` per ENI of every launched instance, with the instance's tags
/// (which carry the auto scaling group) merged into the ENI's own.
fn run_instances(cx: &Cx<'_>, out: &mut Out) -> Result<(), EventError> {
    let response = cx.response.ok_or_else(|| cx.missing("responseElements"))?;
    let instances = items(get(response, "instancesSet"));
    if instances.is_empty() {
        out.skip("no instances in responseElements.instancesSet");
        return Ok(());
    }
    // Launching onto an existing ENI names it in the request: usable only
    // when one instance was launched with exactly one such ENI.
    let requested: Vec<&str> = cx
        .request
        .map(|r| items(get(r, "networkInterfaceSet")))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|ni| text(ni, "networkInterfaceId"))
        .collect();
    for instance in &instances {
        let Some(instance_id) = text(instance, "instanceId") else {
            out.skip("an instance without instanceId");
            continue;
        };
        let interfaces = items(get(instance, "networkInterfaceSet"));
        let mut enis = Vec::with_capacity(interfaces.len());
        for ni in &interfaces {
            match cx.described_eni(ni)? {
                Some(eni) => enis.push(eni),
                None => out.skip(format!("instance {instance_id}: a network interface without networkInterfaceId")),
            }
        }
        if interfaces.is_empty() {
            let known = (instances.len() == 1 && requested.len() == 1).then(|| requested[0]);
            match (known, text(instance, "privateIpAddress")) {
                (Some(eni_id), Some(ip)) => {
                    let mut eni = cx.eni(eni_id);
                    eni.private_addresses.push(cx.ip(ip, "privateIpAddress")?);
                    enis.push(eni);
                }
                (Some(eni_id), None) => out.skip(format!(
                    "instance {instance_id}: launched on {eni_id} but no privateIpAddress in the response"
                )),
                (None, _) => out.skip(format!(
                    "instance {instance_id}: no networkInterfaceSet, and no ENI id to hold its privateIpAddress"
                )),
            }
        }
        let instance_tags = tags(get(instance, "tagSet"));
        let az = get(instance, "placement").and_then(|p| text(p, "availabilityZone"));
        for mut eni in enis {
            eni.instance_id = eni.instance_id.or_else(|| Some(instance_id.to_owned()));
            eni.az = eni.az.or_else(|| owned(az));
            eni.subnet_id = eni.subnet_id.or_else(|| owned(text(instance, "subnetId")));
            eni.vpc_id = eni.vpc_id.or_else(|| owned(text(instance, "vpcId")));
            merge_tags(&mut eni.tags, &instance_tags);
            out.push(Change::EniUp { at: cx.at, eni: Box::new(eni) });
        }
    }
    Ok(())
}

/// One `InstanceDown` per instance in the response (else the request).
fn terminate_instances(cx: &Cx<'_>, out: &mut Out) -> Result<(), EventError> {
    let ids = |object: Option<&Value>| -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for instance in object.map(|o| items(get(o, "instancesSet"))).unwrap_or_default() {
            if let Some(id) = text(instance, "instanceId").filter(|id| !ids.iter().any(|i| i == id)) {
                ids.push(id.to_owned());
            }
        }
        ids
    };
    let mut instance_ids = ids(cx.response);
    if instance_ids.is_empty() {
        instance_ids = ids(cx.request);
    }
    if instance_ids.is_empty() {
        return Err(cx.missing("instancesSet"));
    }
    for instance_id in instance_ids {
        out.push(Change::InstanceDown { at: cx.at, instance_id });
    }
    Ok(())
}

fn create_network_interface(cx: &Cx<'_>, out: &mut Out) -> Result<(), EventError> {
    let ni = cx
        .response
        .and_then(|r| get(r, "networkInterface"))
        .ok_or_else(|| cx.missing("responseElements.networkInterface"))?;
    let eni = cx.described_eni(ni)?.ok_or_else(|| cx.missing("networkInterface.networkInterfaceId"))?;
    out.push(Change::EniUp { at: cx.at, eni: Box::new(eni) });
    Ok(())
}

fn delete_network_interface(cx: &Cx<'_>, out: &mut Out) -> Result<(), EventError> {
    let eni_id = cx.required("networkInterfaceId")?.to_owned();
    out.push(Change::EniDeleted { at: cx.at, eni_id });
    Ok(())
}

fn attach_network_interface(cx: &Cx<'_>, out: &mut Out) -> Result<(), EventError> {
    out.push(Change::Attached {
        at: cx.at,
        eni_id: cx.required("networkInterfaceId")?.to_owned(),
        instance_id: cx.required("instanceId")?.to_owned(),
        attachment_id: owned(cx.response.and_then(|r| text(r, "attachmentId"))),
    });
    Ok(())
}

fn detach_network_interface(cx: &Cx<'_>, out: &mut Out) -> Result<(), EventError> {
    let attachment_id = cx.required("attachmentId")?.to_owned();
    out.push(Change::Detached { at: cx.at, attachment_id });
    Ok(())
}

/// The ENI and the addresses the response lists (EC2 picks them when the
/// request gave only a count), else those the request named.
fn changed_addresses(
    cx: &Cx<'_>,
    response_sets: &[&str],
    request_sets: &[&str],
    key: &'static str,
) -> Result<(String, Vec<IpAddr>), EventError> {
    let eni_id = cx.required("networkInterfaceId")?.to_owned();
    let mut addresses = cx.addresses(cx.response, response_sets, key)?;
    if addresses.is_empty() {
        addresses = cx.addresses(cx.request, request_sets, key)?;
    }
    Ok((eni_id, addresses))
}

fn assigned(
    cx: &Cx<'_>,
    out: &mut Out,
    response_sets: &[&str],
    request_sets: &[&str],
    key: &'static str,
) -> Result<(), EventError> {
    let (eni_id, addresses) = changed_addresses(cx, response_sets, request_sets, key)?;
    if addresses.is_empty() {
        out.skip(format!("{eni_id}: no assigned addresses in the response or the request"));
    } else {
        out.push(Change::AddressesAssigned { at: cx.at, eni_id, addresses });
    }
    Ok(())
}

fn unassigned(
    cx: &Cx<'_>,
    out: &mut Out,
    response_sets: &[&str],
    request_sets: &[&str],
    key: &'static str,
) -> Result<(), EventError> {
    let (eni_id, addresses) = changed_addresses(cx, response_sets, request_sets, key)?;
    if addresses.is_empty() {
        out.skip(format!("{eni_id}: no unassigned addresses in the request or the response"));
    } else {
        out.push(Change::AddressesUnassigned { at: cx.at, eni_id, addresses });
    }
    Ok(())
}

fn assign_private(cx: &Cx<'_>, out: &mut Out) -> Result<(), EventError> {
    assigned(
        cx,
        out,
        &["assignedPrivateIpAddressesSet"],
        &["privateIpAddressesSet", "privateIpAddress"],
        "privateIpAddress",
    )
}

fn unassign_private(cx: &Cx<'_>, out: &mut Out) -> Result<(), EventError> {
    unassigned(
        cx,
        out,
        &["unassignedPrivateIpAddressesSet"],
        &["privateIpAddressesSet", "privateIpAddress"],
        "privateIpAddress",
    )
}

fn assign_ipv6(cx: &Cx<'_>, out: &mut Out) -> Result<(), EventError> {
    assigned(cx, out, &["assignedIpv6Addresses"], &["ipv6Addresses", "ipv6AddressesSet"], "ipv6Address")
}

fn unassign_ipv6(cx: &Cx<'_>, out: &mut Out) -> Result<(), EventError> {
    unassigned(cx, out, &["unassignedIpv6Addresses"], &["ipv6Addresses", "ipv6AddressesSet"], "ipv6Address")
}

/// A VPC association names the allocation, not the address: the public IP
/// is then unknown here (`None`) and must come from the allocation.
fn associate_address(cx: &Cx<'_>, out: &mut Out) -> Result<(), EventError> {
    let public_ip = cx.public_ip("publicIp")?;
    let allocation_id = owned(cx.text("allocationId"));
    let eni_id = owned(cx.text("networkInterfaceId"));
    let instance_id = owned(cx.text("instanceId"));
    if eni_id.is_none() && instance_id.is_none() {
        return Err(cx.missing("networkInterfaceId or instanceId"));
    }
    if public_ip.is_none() && allocation_id.is_none() {
        return Err(cx.missing("allocationId or publicIp"));
    }
    out.push(Change::PublicAssociated {
        at: cx.at,
        public_ip,
        allocation_id,
        association_id: owned(cx.response.and_then(|r| text(r, "associationId"))),
        eni_id,
        instance_id,
    });
    Ok(())
}

fn disassociate_address(cx: &Cx<'_>, out: &mut Out) -> Result<(), EventError> {
    let association_id = owned(cx.text("associationId"));
    let public_ip = cx.public_ip("publicIp")?;
    if association_id.is_none() && public_ip.is_none() {
        return Err(cx.missing("associationId or publicIp"));
    }
    out.push(Change::PublicDisassociated { at: cx.at, association_id, public_ip });
    Ok(())
}

/// The member `name` of an object, or its PascalCase spelling (the query
/// names newer APIs are recorded with). Null counts as absent.
fn get<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    let object = value.as_object()?;
    let found = match object.get(name) {
        Some(v) => v,
        None => {
            let mut chars = name.chars();
            let first = chars.next()?;
            let pascal: String = first.to_uppercase().chain(chars).collect();
            object.get(&pascal)?
        }
    };
    (!found.is_null()).then_some(found)
}

/// A non-empty string member.
fn text<'a>(value: &'a Value, name: &str) -> Option<&'a str> {
    get(value, name).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn owned(s: Option<&str>) -> Option<String> {
    s.map(str::to_owned)
}

/// The only string member of an object (`{"assignedIpv6Addresses": "..."}`,
/// `{"content": "...", "tag": 1}`).
fn sole_string(value: &Value) -> Option<&str> {
    let mut strings = value.as_object()?.values().filter_map(Value::as_str);
    let first = strings.next()?;
    strings.next().is_none().then_some(first)
}

/// `{"Ipv6AddressesRequest": {...}}` → `{...}`: the query-name wrapper some
/// newer EC2 APIs' records use.
fn unwrap_query<'a>(value: Option<&'a Value>, event: &str, suffix: &str) -> Option<&'a Value> {
    let value = value?;
    if let Some(object) = value.as_object() {
        if object.len() == 1 {
            if let Some((key, inner)) = object.iter().next() {
                if inner.is_object() && key.strip_suffix(suffix) == Some(event) {
                    return Some(inner);
                }
            }
        }
    }
    Some(value)
}

/// The elements of a list as CloudTrail renders EC2's XML lists: under
/// `items` or `item` (both in one object are merged), as an array, a single
/// element, or an object whose only member is an array. Empty lists come as
/// `{}`, `""` or null. Identical elements are kept once.
fn items(set: Option<&Value>) -> Vec<&Value> {
    let mut out = Vec::new();
    let Some(set) = set else {
        return out;
    };
    match set {
        Value::Array(elements) => extend_unique(&mut out, elements),
        Value::Object(object) => {
            let lists: Vec<&Value> = ["item", "items"].iter().filter_map(|k| object.get(*k)).collect();
            if !lists.is_empty() {
                for list in lists {
                    match list {
                        Value::Array(elements) => extend_unique(&mut out, elements),
                        one => extend_unique(&mut out, std::slice::from_ref(one)),
                    }
                }
            } else if let (1, Some(Value::Array(elements))) = (object.len(), object.values().next()) {
                extend_unique(&mut out, elements);
            } else if !object.is_empty() {
                out.push(set);
            }
        }
        Value::String(s) if !s.is_empty() => out.push(set),
        _ => {}
    }
    out
}

fn extend_unique<'a>(out: &mut Vec<&'a Value>, elements: &'a [Value]) {
    for element in elements {
        let empty = match element {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            _ => false,
        };
        if !empty && !out.contains(&element) {
            out.push(element);
        }
    }
}

/// `tagSet` items (`key`/`value`, or `Key`/`Value`).
fn tags(set: Option<&Value>) -> BTreeMap<String, String> {
    items(set)
        .into_iter()
        .filter_map(|tag| {
            let key = text(tag, "key")?;
            let value = get(tag, "value").and_then(Value::as_str).unwrap_or("");
            Some((key.to_owned(), value.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ownership::{OwnerKind, TagPolicy, ASG_TAG};

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!("../../../../events/ownership/", $name))
        };
    }

    const RUN_INSTANCES: &str = fixture!("run-instances.json");
    const RUN_INSTANCES_MIXED: &str = fixture!("run-instances-item-and-items.json");
    const RUN_INSTANCES_ERROR: &str = fixture!("run-instances-error.json");
    const RUNNING: &str = fixture!("state-change-running.json");
    const TERMINATED: &str = fixture!("state-change-terminated.json");
    const TERMINATE: &str = fixture!("terminate-instances.json");
    const CREATE: &str = fixture!("create-network-interface.json");
    const CREATE_DRY_RUN: &str = fixture!("create-network-interface-dry-run.json");
    const DELETE: &str = fixture!("delete-network-interface.json");
    const ATTACH: &str = fixture!("attach-network-interface.json");
    const DETACH: &str = fixture!("detach-network-interface.json");
    const ASSIGN: &str = fixture!("assign-private-ip-addresses.json");
    const UNASSIGN: &str = fixture!("unassign-private-ip-addresses.json");
    const ASSIGN6: &str = fixture!("assign-ipv6-addresses.json");
    const UNASSIGN6: &str = fixture!("unassign-ipv6-addresses.json");
    const ASSOCIATE: &str = fixture!("associate-address.json");
    const DISASSOCIATE: &str = fixture!("disassociate-address.json");

    const INSTANCE: &str = "i-0d4c3b2a1f0e98765";
    const ENI1: &str = "eni-0a1b2c3d4e5f60001";
    const ENI2: &str = "eni-0a1b2c3d4e5f60002";
    const STANDBY: &str = "eni-0c3d4e5f6a7b80003";

    fn json(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    fn t(s: &str) -> UnixTime {
        UnixTime::parse_rfc3339(s).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| ip(s)).collect()
    }

    fn changes(text: &str) -> Vec<Change> {
        let parsed = parse_event_slice(text.as_bytes()).unwrap();
        match parsed.outcome {
            Outcome::Changes { changes, skipped } => {
                assert!(skipped.is_empty(), "{skipped:?}");
                changes
            }
            other => panic!("{}: {other:?}", parsed.kind),
        }
    }

    fn one(text: &str) -> Change {
        let mut all = changes(text);
        assert_eq!(all.len(), 1, "{all:?}");
        all.pop().unwrap()
    }

    fn first(event: &Value) -> Change {
        parse_event(event).unwrap().into_changes().remove(0)
    }

    fn outcome(value: &Value) -> Outcome {
        parse_event(value).unwrap().outcome
    }

    fn eni_ups(changes: Vec<Change>) -> Vec<(UnixTime, Eni)> {
        changes
            .into_iter()
            .map(|c| match c {
                Change::EniUp { at, eni } => (at, *eni),
                other => panic!("not EniUp: {other:?}"),
            })
            .collect()
    }

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
        for (state, down) in [("stopped", Some(true)), ("shutting-down", Some(true)), ("pending", None)] {
            event["detail"]["state"] = state.into();
            let changes = parse_event(&event).unwrap().into_changes();
            match down {
                Some(true) => assert!(matches!(changes[..], [Change::InstanceDown { .. }]), "{state}"),
                _ => assert!(changes.is_empty(), "{state}"),
            }
        }
        for state in ["stopping", "pending", "rebooting"] {
            event["detail"]["state"] = state.into();
            let outcome = outcome(&event);
            assert!(matches!(outcome, Outcome::Ignored(Ignored::NoChange(_))), "{state}: {outcome:?}");
        }
        event["detail"].as_object_mut().unwrap().remove("state");
        assert!(matches!(parse_event(&event), Err(EventError::Missing { .. })));
    }

    #[test]
    fn run_instances_brings_up_every_eni_with_the_instance_tags() {
        let enis = eni_ups(changes(RUN_INSTANCES));
        assert_eq!(enis.len(), 2);
        let (at, primary) = &enis[0];
        assert_eq!(*at, t("2026-11-03T14:02:11Z"));
        assert_eq!(primary.eni_id, ENI1);
        assert_eq!(primary.instance_id.as_deref(), Some(INSTANCE));
        assert_eq!(primary.attachment_id.as_deref(), Some("eni-attach-0a1b2c3d4e5f60001"));
        assert_eq!(primary.account_id.as_deref(), Some("123456789012"));
        assert_eq!(primary.region.as_deref(), Some("us-east-1"));
        assert_eq!(primary.az.as_deref(), Some("us-east-1a"));
        assert_eq!(primary.vpc_id.as_deref(), Some("vpc-0a1b2c3d4e5f60789"));
        assert_eq!(primary.subnet_id.as_deref(), Some("subnet-0c1a2b3c4d5e6f701"));
        assert_eq!(primary.interface_type.as_deref(), Some("interface"));
        assert_eq!(primary.description, None, "an empty description is no description");
        assert_eq!(primary.private_addresses, ips(&["10.20.1.15"]));
        assert_eq!(primary.public_addresses, ips(&["54.210.33.7"]));
        assert_eq!(primary.tags.get(ASG_TAG).map(String::as_str), Some("api-prod-v042"));
        assert_eq!(primary.tags.get("team").map(String::as_str), Some("edge"));

        let (_, data) = &enis[1];
        assert_eq!(data.eni_id, ENI2);
        assert_eq!(data.attachment_id.as_deref(), Some("eni-attach-0a1b2c3d4e5f60002"));
        assert_eq!(data.description.as_deref(), Some("api-prod data plane"));
        assert_eq!(data.private_addresses, ips(&["10.20.1.16", "10.20.1.17"]));
        assert_eq!(data.public_addresses, ips(&["2600:1f18:4a3:6e01:9d2c:41a7:3b0e:5f11"]), "global IPv6 is public");
        assert_eq!(data.tags.get(ASG_TAG).map(String::as_str), Some("api-prod-v042"));

        let owner = data.owner(&TagPolicy::default());
        assert_eq!(owner.kind, OwnerKind::Instance);
        assert_eq!(owner.app.as_deref(), Some("api"));
        assert_eq!(owner.cluster.as_deref(), Some("api-prod"));
    }

    #[test]
    fn item_and_items_in_one_event_are_merged() {
        let enis = eni_ups(changes(RUN_INSTANCES_MIXED));
        assert_eq!(enis.len(), 1);
        let (at, eni) = &enis[0];
        assert_eq!(*at, t("2026-11-11T10:01:36Z"));
        assert_eq!(eni.eni_id, "eni-0b9a8c7d6e5f40010");
        assert_eq!(eni.instance_id.as_deref(), Some("i-0e7f6a5b4c3d21098"));
        assert_eq!(eni.private_addresses, ips(&["10.20.3.5", "10.20.3.6"]));
        let keys: Vec<&str> = eni.tags.keys().map(String::as_str).collect();
        assert_eq!(keys, ["Name", "app", "team"]);
        assert_eq!(eni.owner(&TagPolicy::default()).app.as_deref(), Some("bastion"));
    }

    #[test]
    fn list_shapes() {
        let set = json(r#"{"item": [{"a": 1}, {"a": 2}], "items": [{"a": 2}, {"a": 3}]}"#);
        assert_eq!(items(Some(&set)).len(), 3, "merged, the shared element once");
        let single = json(r#"{"item": {"a": 1}}"#);
        assert_eq!(items(Some(&single)), vec![&json(r#"{"a": 1}"#)]);
        let wrapper = json(r#"{"assignedPrivateIpAddressSetType": [{"a": 1}, {"a": 2}]}"#);
        assert_eq!(items(Some(&wrapper)).len(), 2);
        for empty in [r#"{}"#, r#""""#, "null", "[]", r#"{"items": []}"#, r#"{"item": null}"#] {
            assert!(items(Some(&json(empty))).is_empty(), "{empty}");
        }
        assert!(items(None).is_empty());
        assert_eq!(items(Some(&json(r#""10.0.0.1""#))).len(), 1);
    }

    #[test]
    fn run_instances_without_interfaces() {
        let mut event = json(RUN_INSTANCES);
        let instance = &mut event["detail"]["responseElements"]["instancesSet"]["items"][0];
        instance.as_object_mut().unwrap().remove("networkInterfaceSet");
        let parsed = parse_event(&event).unwrap();
        let Outcome::Changes { changes, skipped } = parsed.outcome else { panic!() };
        assert!(changes.is_empty());
        assert_eq!(skipped.len(), 1);
        assert!(skipped[0].contains(INSTANCE), "{skipped:?}");

        // Launched onto an existing ENI named in the request: that ENI holds
        // the instance's address.
        event["detail"]["requestParameters"]["networkInterfaceSet"] =
            json(r#"{"items": [{"deviceIndex": 0, "networkInterfaceId": "eni-0123456789abcdef0"}]}"#);
        let enis = eni_ups(parse_event(&event).unwrap().into_changes());
        assert_eq!(enis.len(), 1);
        let eni = &enis[0].1;
        assert_eq!(eni.eni_id, "eni-0123456789abcdef0");
        assert_eq!(eni.private_addresses, ips(&["10.20.1.15"]));
        assert_eq!(eni.instance_id.as_deref(), Some(INSTANCE));
        assert_eq!(eni.vpc_id.as_deref(), Some("vpc-0a1b2c3d4e5f60789"));
        assert_eq!(eni.tags.get(ASG_TAG).map(String::as_str), Some("api-prod-v042"));
    }

    #[test]
    fn eni_tags_win_over_instance_tags() {
        let mut event = json(RUN_INSTANCES);
        event["detail"]["responseElements"]["instancesSet"]["items"][0]["networkInterfaceSet"]["items"][0]["tagSet"] =
            json(r#"{"items": [{"key": "team", "value": "netops"}]}"#);
        let enis = eni_ups(parse_event(&event).unwrap().into_changes());
        assert_eq!(enis[0].1.tags.get("team").map(String::as_str), Some("netops"));
        assert_eq!(enis[1].1.tags.get("team").map(String::as_str), Some("edge"));
    }

    #[test]
    fn terminate_instances_takes_the_instances_down() {
        assert_eq!(
            one(TERMINATE),
            Change::InstanceDown { at: t("2026-11-12T03:44:09Z"), instance_id: INSTANCE.into() }
        );
        let mut event = json(TERMINATE);
        event["detail"]["responseElements"] = Value::Null;
        assert!(matches!(parse_event(&event).unwrap().changes(), [Change::InstanceDown { .. }]));
        event["detail"]["requestParameters"] = json(r#"{"instancesSet": {}}"#);
        assert!(matches!(parse_event(&event), Err(EventError::Missing { .. })));
    }

    #[test]
    fn create_network_interface_brings_up_the_eni() {
        let Change::EniUp { at, eni } = one(CREATE) else { panic!() };
        assert_eq!(at, t("2026-11-09T13:12:41Z"));
        assert_eq!(eni.eni_id, STANDBY);
        assert_eq!(eni.private_addresses, ips(&["10.20.2.50"]));
        assert!(eni.public_addresses.is_empty());
        assert_eq!(eni.az.as_deref(), Some("us-east-1a"));
        assert_eq!(eni.vpc_id.as_deref(), Some("vpc-0a1b2c3d4e5f60789"));
        assert_eq!(eni.description.as_deref(), Some("api-prod failover interface"));
        assert_eq!(eni.instance_id, None);
        assert_eq!(eni.tags.get("app").map(String::as_str), Some("api"));
        assert_eq!(eni.kind(), OwnerKind::Interface);
        assert_eq!(eni.owner(&TagPolicy::default()).app.as_deref(), Some("api"));
    }

    #[test]
    fn attach_detach_delete() {
        assert_eq!(
            one(ATTACH),
            Change::Attached {
                at: t("2026-11-09T13:13:05Z"),
                eni_id: STANDBY.into(),
                instance_id: INSTANCE.into(),
                attachment_id: Some("eni-attach-0c3d4e5f6a7b80003".into()),
            }
        );
        assert_eq!(
            one(DETACH),
            Change::Detached { at: t("2026-11-10T08:30:44Z"), attachment_id: "eni-attach-0c3d4e5f6a7b80003".into() }
        );
        assert_eq!(one(DELETE), Change::EniDeleted { at: t("2026-11-10T08:31:19Z"), eni_id: STANDBY.into() });
    }

    #[test]
    fn private_addresses_assigned_and_unassigned() {
        assert_eq!(
            one(ASSIGN),
            Change::AddressesAssigned {
                at: t("2026-11-05T09:15:03Z"),
                eni_id: ENI1.into(),
                addresses: ips(&["10.20.1.40", "10.20.1.41"]),
            }
        );
        assert_eq!(
            one(UNASSIGN),
            Change::AddressesUnassigned {
                at: t("2026-11-05T11:40:27Z"),
                eni_id: ENI1.into(),
                addresses: ips(&["10.20.1.41"]),
            }
        );
    }

    #[test]
    fn assignment_shapes() {
        // Specific addresses named in the request, an `items` list in the
        // response.
        let mut event = json(ASSIGN);
        event["detail"]["requestParameters"]["privateIpAddressesSet"] =
            json(r#"{"items": [{"privateIpAddress": "10.20.1.40"}]}"#);
        event["detail"]["responseElements"]["assignedPrivateIpAddressesSet"] =
            json(r#"{"items": [{"privateIpAddress": "10.20.1.40"}]}"#);
        let Change::AddressesAssigned { addresses, .. } = first(&event) else { panic!() };
        assert_eq!(addresses, ips(&["10.20.1.40"]));

        // Nothing in the response: the request's addresses.
        event["detail"]["responseElements"] = json(r#"{"_return": true}"#);
        let Change::AddressesAssigned { addresses, .. } = first(&event) else { panic!() };
        assert_eq!(addresses, ips(&["10.20.1.40"]));

        // A count and no addresses anywhere: nothing to apply, said why.
        event["detail"]["requestParameters"]["privateIpAddressesSet"] = json("{}");
        let Outcome::Changes { changes, skipped } = outcome(&event) else { panic!() };
        assert!(changes.is_empty());
        assert!(skipped[0].contains(ENI1), "{skipped:?}");

        // A bad address is an error, not a silent drop.
        event["detail"]["requestParameters"]["privateIpAddressesSet"] =
            json(r#"{"items": [{"privateIpAddress": "10.20.1.400"}]}"#);
        assert!(matches!(parse_event(&event), Err(EventError::BadAddress { .. })));
    }

    #[test]
    fn ipv6_addresses_assigned_and_unassigned() {
        let v6 = ips(&["2600:1f18:4a3:6e01:7c8b:2e14:a0d9:44c2"]);
        assert_eq!(
            one(ASSIGN6),
            Change::AddressesAssigned { at: t("2026-11-06T16:20:45Z"), eni_id: ENI2.into(), addresses: v6.clone() }
        );
        assert_eq!(
            one(UNASSIGN6),
            Change::AddressesUnassigned { at: t("2026-11-06T18:02:13Z"), eni_id: ENI2.into(), addresses: v6.clone() }
        );

        // Bare strings in the list.
        let mut event = json(ASSIGN6);
        event["detail"]["responseElements"]["assignedIpv6Addresses"] =
            json(r#"{"item": ["2600:1f18:4a3:6e01:7c8b:2e14:a0d9:44c2"]}"#);
        assert_eq!(parse_event(&event).unwrap().changes(), &[one(ASSIGN6)]);

        // The query-name shape: wrapped, PascalCase, one element collapsed.
        event["detail"]["requestParameters"] = json(
            r#"{"AssignIpv6AddressesRequest": {"NetworkInterfaceId": "eni-0a1b2c3d4e5f60002", "Ipv6AddressCount": 1}}"#,
        );
        event["detail"]["responseElements"] = json(
            r#"{"AssignIpv6AddressesResponse": {"xmlns": "http://ec2.amazonaws.com/doc/2016-11-15/",
                "NetworkInterfaceId": "eni-0a1b2c3d4e5f60002",
                "AssignedIpv6Addresses": {"content": "2600:1f18:4a3:6e01:7c8b:2e14:a0d9:44c2", "tag": 1}}}"#,
        );
        assert_eq!(parse_event(&event).unwrap().changes(), &[one(ASSIGN6)]);

        // Unassign named only in the request.
        let mut event = json(UNASSIGN6);
        event["detail"]["responseElements"] = json(r#"{"_return": true}"#);
        assert_eq!(parse_event(&event).unwrap().changes(), &[one(UNASSIGN6)]);
    }

    #[test]
    fn elastic_ip_associated_and_disassociated() {
        assert_eq!(
            one(ASSOCIATE),
            Change::PublicAssociated {
                at: t("2026-11-07T10:05:18Z"),
                public_ip: None,
                allocation_id: Some("eipalloc-0e5f6a7b8c9d01234".into()),
                association_id: Some("eipassoc-0b7c8d9e0f1a23456".into()),
                eni_id: Some(ENI2.into()),
                instance_id: None,
            }
        );
        assert_eq!(
            one(DISASSOCIATE),
            Change::PublicDisassociated {
                at: t("2026-11-08T21:47:02Z"),
                association_id: Some("eipassoc-0b7c8d9e0f1a23456".into()),
                public_ip: None,
            }
        );

        // EC2-Classic style: by public IP and instance.
        let mut event = json(ASSOCIATE);
        event["detail"]["requestParameters"] =
            json(r#"{"publicIp": "3.218.77.140", "instanceId": "i-0d4c3b2a1f0e98765"}"#);
        let Change::PublicAssociated { public_ip, instance_id, .. } = first(&event) else { panic!() };
        assert_eq!(public_ip, Some(ip("3.218.77.140")));
        assert_eq!(instance_id.as_deref(), Some(INSTANCE));

        event["detail"]["requestParameters"] = json(r#"{"allocationId": "eipalloc-0e5f6a7b8c9d01234"}"#);
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
