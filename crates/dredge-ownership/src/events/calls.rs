//! The CloudTrail calls that change ownership, one handler each: what a
//! call's request and response say, as [`Change`]s.

use std::net::IpAddr;

use dredge_core::ownership::{merge_tags, parse_address, push_unique, BadAddress, Change, Eni, EniBuilder, UnixTime};
use serde_json::Value;

use super::lists::{get, items, owned, sole_string, tag_pairs, tags, text};
use super::EventError;

/// A CloudTrail call's handler: what the call changed, into `Out`.
type Handler = fn(&Cx<'_>, &mut Out) -> Result<(), EventError>;

/// The CloudTrail `eventName`s turned into changes, and their handlers.
pub(super) const CALLS: [(&str, Handler); 12] = [
    ("RunInstances", run_instances),
    ("TerminateInstances", terminate_instances),
    ("CreateNetworkInterface", create_network_interface),
    ("DeleteNetworkInterface", delete_network_interface),
    ("AttachNetworkInterface", attach_network_interface),
    ("DetachNetworkInterface", detach_network_interface),
    ("AssignPrivateIpAddresses", assign_private),
    ("UnassignPrivateIpAddresses", unassign_private),
    ("AssignIpv6Addresses", assign_ipv6),
    ("UnassignIpv6Addresses", unassign_ipv6),
    ("AssociateAddress", associate_address),
    ("DisassociateAddress", disassociate_address),
];

/// What a CloudTrail handler sees.
pub(super) struct Cx<'a> {
    pub(super) event: &'a str,
    pub(super) at: UnixTime,
    pub(super) account: Option<&'a str>,
    pub(super) region: Option<&'a str>,
    pub(super) request: Option<&'a Value>,
    pub(super) response: Option<&'a Value>,
}

#[derive(Default)]
pub(super) struct Out {
    pub(super) changes: Vec<Change>,
    pub(super) skipped: Vec<String>,
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

    /// A bad address in `field`, as this event's error.
    fn bad(&self, field: &'static str) -> impl Fn(BadAddress) -> EventError + '_ {
        move |BadAddress { value }| EventError::BadAddress { event: self.event.to_owned(), field, value }
    }

    fn ip(&self, value: &str, field: &'static str) -> Result<IpAddr, EventError> {
        parse_address(value).map_err(self.bad(field))
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
    fn eni(&self, eni_id: &str) -> EniBuilder {
        let mut eni = EniBuilder::new(eni_id);
        eni.account(self.account).region(self.region);
        eni
    }

    /// The addresses listed under the first of `sets` present in `object`.
    fn addresses(&self, object: Option<&Value>, sets: &[&str], key: &'static str) -> Result<Vec<IpAddr>, EventError> {
        let Some(object) = object else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for set in sets {
            for value in address_texts(object, set, key) {
                push_unique(&mut out, self.ip(value, key)?);
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
        eni.az(text(ni, "availabilityZone"))
            .vpc(text(ni, "vpcId"))
            .subnet(text(ni, "subnetId"))
            .interface_type(text(ni, "interfaceType"))
            .requester(text(ni, "requesterId"))
            .description(text(ni, "description"));
        if let Some(attachment) = get(ni, "attachment") {
            eni.attachment(
                text(attachment, "instanceId"),
                text(attachment, "attachmentId"),
                text(attachment, "status"),
            );
        }
        // (publicIp, ipOwnerId): `amazon` owns auto-assigned addresses.
        fn public_ip(item: &Value) -> (Option<&str>, Option<&str>) {
            let association = get(item, "association");
            (association.and_then(|a| text(a, "publicIp")), association.and_then(|a| text(a, "ipOwnerId")))
        }
        for item in items(get(ni, "privateIpAddressesSet")) {
            eni.private(text(item, "privateIpAddress")).map_err(self.bad("privateIpAddress"))?;
            let (ip, owner) = public_ip(item);
            eni.public_owned_by(ip, owner).map_err(self.bad("publicIp"))?;
        }
        eni.primary_private(text(ni, "privateIpAddress")).map_err(self.bad("privateIpAddress"))?;
        let (ip, owner) = public_ip(ni);
        eni.public_owned_by(ip, owner).map_err(self.bad("publicIp"))?;
        for ip in address_texts(ni, "ipv6AddressesSet", "ipv6Address") {
            eni.ipv6(Some(ip)).map_err(self.bad("ipv6Address"))?;
        }
        eni.tags(tag_pairs(get(ni, "tagSet"))).tags(tag_pairs(get(ni, "tags")));
        Ok(Some(eni.build()))
    }
}

/// The addresses a CloudTrail list holds: bare strings, or objects with
/// `key` (else a sole string member).
fn address_texts<'v>(object: &'v Value, set: &str, key: &'v str) -> impl Iterator<Item = &'v str> {
    items(get(object, set)).into_iter().filter_map(move |item| match item {
        Value::String(s) => Some(s.as_str()).filter(|s| !s.is_empty()),
        Value::Object(_) => text(item, key).or_else(|| sole_string(item)).filter(|s| !s.is_empty()),
        _ => None,
    })
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
                    eni.private(Some(ip)).map_err(cx.bad("privateIpAddress"))?;
                    enis.push(eni.build());
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

/// Which way an address call moved addresses.
#[derive(Clone, Copy)]
enum Moved {
    Assigned,
    Unassigned,
}

/// Where an address call lists its addresses: the response's sets, else the
/// request's, and the member that names each address.
struct Sets {
    response: &'static [&'static str],
    request: &'static [&'static str],
    key: &'static str,
}

const ASSIGNED_PRIVATE: Sets = Sets {
    response: &["assignedPrivateIpAddressesSet"],
    request: &["privateIpAddressesSet", "privateIpAddress"],
    key: "privateIpAddress",
};
const UNASSIGNED_PRIVATE: Sets = Sets { response: &["unassignedPrivateIpAddressesSet"], ..ASSIGNED_PRIVATE };
const ASSIGNED_IPV6: Sets =
    Sets { response: &["assignedIpv6Addresses"], request: &["ipv6Addresses", "ipv6AddressesSet"], key: "ipv6Address" };
const UNASSIGNED_IPV6: Sets = Sets { response: &["unassignedIpv6Addresses"], ..ASSIGNED_IPV6 };

/// The ENI and the addresses the response lists (EC2 picks them when the
/// request gave only a count), else those the request named.
fn moved_addresses(cx: &Cx<'_>, out: &mut Out, moved: Moved, sets: &Sets) -> Result<(), EventError> {
    let eni_id = cx.required("networkInterfaceId")?.to_owned();
    let mut addresses = cx.addresses(cx.response, sets.response, sets.key)?;
    if addresses.is_empty() {
        addresses = cx.addresses(cx.request, sets.request, sets.key)?;
    }
    let at = cx.at;
    match (moved, addresses.is_empty()) {
        (Moved::Assigned, true) => out.skip(format!("{eni_id}: no assigned addresses in the response or the request")),
        (Moved::Unassigned, true) => {
            out.skip(format!("{eni_id}: no unassigned addresses in the request or the response"))
        }
        (Moved::Assigned, false) => out.push(Change::AddressesAssigned { at, eni_id, addresses }),
        (Moved::Unassigned, false) => out.push(Change::AddressesUnassigned { at, eni_id, addresses }),
    }
    Ok(())
}

fn assign_private(cx: &Cx<'_>, out: &mut Out) -> Result<(), EventError> {
    moved_addresses(cx, out, Moved::Assigned, &ASSIGNED_PRIVATE)
}

fn unassign_private(cx: &Cx<'_>, out: &mut Out) -> Result<(), EventError> {
    moved_addresses(cx, out, Moved::Unassigned, &UNASSIGNED_PRIVATE)
}

fn assign_ipv6(cx: &Cx<'_>, out: &mut Out) -> Result<(), EventError> {
    moved_addresses(cx, out, Moved::Assigned, &ASSIGNED_IPV6)
}

fn unassign_ipv6(cx: &Cx<'_>, out: &mut Out) -> Result<(), EventError> {
    moved_addresses(cx, out, Moved::Unassigned, &UNASSIGNED_IPV6)
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

#[cfg(test)]
mod tests {
    use dredge_core::ownership::{OwnerKind, TagPolicy, ASG_TAG};
    use serde_json::Value;

    use super::super::fixtures::*;
    use super::super::{parse_event, EventError, Outcome};
    use super::*;

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
}
