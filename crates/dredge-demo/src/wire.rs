//! What AWS would send, in AWS's shapes: EventBridge events (built from the
//! sample events in `events/ownership/`, so the shapes are the ones the
//! ownership function is tested on), describe-network-interfaces and
//! describe-instances documents, CloudWatch Logs subscription records, and
//! the Lambda Kinesis events that carry them.

use std::io::Write;
use std::sync::OnceLock;

use dredge_core::ownership::UnixTime;
use dredge_lambda::kinesis::{event_json, EventRecord};
use serde_json::{json, Value};

use crate::world::{Emitted, EniState, EventSpec, Role, Time, World, ACCOUNTS, REGIONS};

/// The sample events the demo's events are made from.
const TEMPLATES: [(&str, &str); 11] = [
    ("state-change", include_str!("../../../events/ownership/state-change-running.json")),
    ("RunInstances", include_str!("../../../events/ownership/run-instances.json")),
    ("TerminateInstances", include_str!("../../../events/ownership/terminate-instances.json")),
    ("AssignPrivateIpAddresses", include_str!("../../../events/ownership/assign-private-ip-addresses.json")),
    ("UnassignPrivateIpAddresses", include_str!("../../../events/ownership/unassign-private-ip-addresses.json")),
    ("AssociateAddress", include_str!("../../../events/ownership/associate-address.json")),
    ("DisassociateAddress", include_str!("../../../events/ownership/disassociate-address.json")),
    ("CreateNetworkInterface", include_str!("../../../events/ownership/create-network-interface.json")),
    ("AttachNetworkInterface", include_str!("../../../events/ownership/attach-network-interface.json")),
    ("DetachNetworkInterface", include_str!("../../../events/ownership/detach-network-interface.json")),
    ("DeleteNetworkInterface", include_str!("../../../events/ownership/delete-network-interface.json")),
];

fn template(name: &str) -> Value {
    static PARSED: OnceLock<Vec<(&'static str, Value)>> = OnceLock::new();
    let parsed = PARSED.get_or_init(|| {
        TEMPLATES.iter().map(|(n, text)| (*n, serde_json::from_str(text).expect("sample events are JSON"))).collect()
    });
    parsed.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone()).expect("a template for every event kind")
}

/// Sets the value at a JSON pointer whose parents exist.
fn set(v: &mut Value, pointer: &str, value: Value) {
    match v.pointer_mut(pointer) {
        Some(slot) => *slot = value,
        None => panic!("template lacks {pointer}"),
    }
}

fn dns_name(ip: impl std::fmt::Display) -> String {
    format!("ip-{}.ec2.internal", ip.to_string().replace('.', "-"))
}

fn public_association(ip: impl std::fmt::Display, owner: &str) -> Value {
    json!({
        "publicIp": ip.to_string(),
        "publicDnsName": format!("ec2-{}.compute-1.amazonaws.com", ip.to_string().replace('.', "-")),
        "ipOwnerId": owner,
    })
}

/// The EventBridge event for one emitted change.
pub fn event(world: &World, e: &Emitted) -> Value {
    let vpc = &world.vpcs[e.vpc];
    let (account, region) = (ACCOUNTS[vpc.account], REGIONS[vpc.region].name);
    let mut v = match &e.spec {
        EventSpec::StateChange { instance, state } => {
            let mut v = template("state-change");
            let id = &world.instances[*instance].id;
            set(&mut v, "/detail", json!({"instance-id": id, "state": state.name()}));
            set(&mut v, "/resources", json!([format!("arn:aws:ec2:{region}:{account}:instance/{id}")]));
            v
        }
        EventSpec::RunInstances { instance } => run_instances(world, *instance, e.at),
        EventSpec::TerminateInstances { instance } => {
            let mut v = template("TerminateInstances");
            let id = &world.instances[*instance].id;
            set(&mut v, "/detail/requestParameters/instancesSet/items/0/instanceId", json!(id));
            set(&mut v, "/detail/responseElements/instancesSet/items/0/instanceId", json!(id));
            v
        }
        EventSpec::AssignPrivate { eni, ip } => {
            let mut v = template("AssignPrivateIpAddresses");
            let id = &world.enis[*eni].id;
            set(&mut v, "/detail/requestParameters/networkInterfaceId", json!(id));
            set(&mut v, "/detail/requestParameters/secondaryPrivateIpAddressCount", json!(1));
            set(&mut v, "/detail/responseElements/networkInterfaceId", json!(id));
            set(
                &mut v,
                "/detail/responseElements/assignedPrivateIpAddressesSet/assignedPrivateIpAddressSetType",
                json!([{"privateIpAddress": ip.to_string()}]),
            );
            v
        }
        EventSpec::UnassignPrivate { eni, ip } => {
            let mut v = template("UnassignPrivateIpAddresses");
            set(&mut v, "/detail/requestParameters/networkInterfaceId", json!(world.enis[*eni].id));
            set(
                &mut v,
                "/detail/requestParameters/privateIpAddressesSet",
                json!({"items": [{"privateIpAddress": ip.to_string()}]}),
            );
            v
        }
        EventSpec::AssociateAddress { eni, eip, association_id } => {
            let mut v = template("AssociateAddress");
            let state = world.enis[*eni].state_at(e.at);
            set(&mut v, "/detail/requestParameters/allocationId", json!(world.eips[*eip].allocation_id));
            set(&mut v, "/detail/requestParameters/networkInterfaceId", json!(world.enis[*eni].id));
            set(
                &mut v,
                "/detail/requestParameters/privateIpAddress",
                json!(state.map(|s| s.primary.to_string()).unwrap_or_default()),
            );
            set(&mut v, "/detail/responseElements/associationId", json!(association_id));
            v
        }
        EventSpec::DisassociateAddress { association_id } => {
            let mut v = template("DisassociateAddress");
            set(&mut v, "/detail/requestParameters/associationId", json!(association_id));
            v
        }
        EventSpec::CreateNetworkInterface { eni } => create_network_interface(world, *eni, e.at),
        EventSpec::AttachNetworkInterface { eni, instance, attachment_id } => {
            let mut v = template("AttachNetworkInterface");
            set(&mut v, "/detail/requestParameters/networkInterfaceId", json!(world.enis[*eni].id));
            set(&mut v, "/detail/requestParameters/instanceId", json!(world.instances[*instance].id));
            set(&mut v, "/detail/requestParameters/deviceIndex", json!(1));
            set(&mut v, "/detail/responseElements/attachmentId", json!(attachment_id));
            v
        }
        EventSpec::DetachNetworkInterface { attachment_id } => {
            let mut v = template("DetachNetworkInterface");
            set(&mut v, "/detail/requestParameters/attachmentId", json!(attachment_id));
            v
        }
        EventSpec::DeleteNetworkInterface { eni } => {
            let mut v = template("DeleteNetworkInterface");
            set(&mut v, "/detail/requestParameters/networkInterfaceId", json!(world.enis[*eni].id));
            v
        }
    };
    let time = UnixTime(e.at).to_string();
    set(&mut v, "/id", json!(e.id));
    set(&mut v, "/time", json!(time));
    set(&mut v, "/account", json!(account));
    set(&mut v, "/region", json!(region));
    if v.pointer("/detail/eventTime").is_some() {
        set(&mut v, "/detail/eventTime", json!(time));
        set(&mut v, "/detail/eventID", json!(e.id));
        set(&mut v, "/detail/awsRegion", json!(region));
        set(&mut v, "/detail/recipientAccountId", json!(account));
        set(&mut v, "/detail/userIdentity/accountId", json!(account));
    }
    v
}

fn run_instances(world: &World, i: usize, at: Time) -> Value {
    let mut v = template("RunInstances");
    let instance = &world.instances[i];
    let app = &world.apps[instance.app];
    let subnet = &world.subnets[instance.subnet];
    let vpc = &world.vpcs[subnet.vpc];
    let region = &REGIONS[vpc.region];
    let eni = &world.enis[instance.eni];
    let state = eni.state_at(at).expect("a launched instance's interface exists");
    let attachment = state.attachment.as_ref().expect("a primary interface is attached");
    let tags = json!({"items": [
        {"key": "aws:autoscaling:groupName", "value": app.asg},
        {"key": "Name", "value": format!("{}-{}", app.name, app.stack)},
        {"key": "app", "value": app.name},
    ]});
    set(&mut v, "/detail/requestParameters/subnetId", json!(subnet.id));
    set(&mut v, "/detail/requestParameters/availabilityZone", json!(region.azs[subnet.az]));
    set(
        &mut v,
        "/detail/requestParameters/tagSpecificationSet/items/0/tags",
        json!([{"key": "aws:autoscaling:groupName", "value": app.asg}]),
    );
    set(&mut v, "/detail/responseElements/ownerId", json!(ACCOUNTS[vpc.account]));
    let item = v.pointer_mut("/detail/responseElements/instancesSet/items/0").expect("an instance item");
    set(item, "/instanceId", json!(instance.id));
    set(item, "/privateIpAddress", json!(state.primary.to_string()));
    set(item, "/privateDnsName", json!(dns_name(state.primary)));
    set(item, "/launchTime", json!(at * 1000));
    set(item, "/placement/availabilityZone", json!(region.azs[subnet.az]));
    set(item, "/placement/availabilityZoneId", json!(region.az_ids[subnet.az]));
    set(item, "/subnetId", json!(subnet.id));
    set(item, "/vpcId", json!(vpc.id));
    set(item, "/tagSet", tags);
    let mut ni = item.pointer("/networkInterfaceSet/items/0").cloned().expect("a network interface item");
    set(&mut ni, "/networkInterfaceId", json!(eni.id));
    set(&mut ni, "/subnetId", json!(subnet.id));
    set(&mut ni, "/vpcId", json!(vpc.id));
    set(&mut ni, "/ownerId", json!(ACCOUNTS[vpc.account]));
    set(&mut ni, "/macAddress", json!(eni.mac));
    set(&mut ni, "/privateIpAddress", json!(state.primary.to_string()));
    set(&mut ni, "/privateDnsName", json!(dns_name(state.primary)));
    set(&mut ni, "/attachment/attachmentId", json!(attachment.id));
    set(&mut ni, "/attachment/attachTime", json!(at * 1000));
    let mut address = json!({
        "privateIpAddress": state.primary.to_string(),
        "privateDnsName": dns_name(state.primary),
        "primary": true,
    });
    let obj = ni.as_object_mut().expect("an object");
    match &state.public {
        Some(p) => {
            address["association"] = public_association(p.ip, "amazon");
            obj.insert("association".into(), public_association(p.ip, "amazon"));
        }
        None => {
            obj.remove("association");
        }
    }
    obj.insert("privateIpAddressesSet".into(), json!({"item": [address]}));
    set(item, "/networkInterfaceSet", json!({"items": [ni]}));
    v
}

fn create_network_interface(world: &World, e: usize, at: Time) -> Value {
    let mut v = template("CreateNetworkInterface");
    let eni = &world.enis[e];
    let subnet = &world.subnets[eni.subnet];
    let vpc = &world.vpcs[subnet.vpc];
    let region = &REGIONS[vpc.region];
    let state = eni.state_at(at).expect("a created interface exists");
    let name = format!("failover-{}", &eni.id[4..12]);
    set(&mut v, "/detail/requestParameters/subnetId", json!(subnet.id));
    set(&mut v, "/detail/requestParameters/description", json!("failover interface"));
    set(&mut v, "/detail/requestParameters/tagSpecificationSet/items/0/tags", json!([{"key": "Name", "value": name}]));
    let ni = v.pointer_mut("/detail/responseElements/networkInterface").expect("a networkInterface");
    set(ni, "/networkInterfaceId", json!(eni.id));
    set(ni, "/subnetId", json!(subnet.id));
    set(ni, "/vpcId", json!(vpc.id));
    set(ni, "/availabilityZone", json!(region.azs[subnet.az]));
    set(ni, "/availabilityZoneId", json!(region.az_ids[subnet.az]));
    set(ni, "/description", json!("failover interface"));
    set(ni, "/ownerId", json!(ACCOUNTS[vpc.account]));
    set(ni, "/macAddress", json!(eni.mac));
    set(ni, "/privateIpAddress", json!(state.primary.to_string()));
    set(ni, "/privateDnsName", json!(dns_name(state.primary)));
    set(
        ni,
        "/privateIpAddressesSet",
        json!({"item": [{"privateIpAddress": state.primary.to_string(), "privateDnsName": dns_name(state.primary), "primary": true}]}),
    );
    set(ni, "/tagSet", json!({"items": [{"key": "Name", "value": name}]}));
    v
}

/// `aws ec2 describe-network-interfaces` and `aws ec2 describe-instances`
/// for one account and region, as they would answer at `t`.
pub fn describe(world: &World, t: Time, account: usize, region: usize) -> [Value; 2] {
    let mut interfaces = Vec::new();
    let mut instances = Vec::new();
    for eni in &world.enis {
        let subnet = &world.subnets[eni.subnet];
        let vpc = &world.vpcs[subnet.vpc];
        if vpc.account != account || vpc.region != region {
            continue;
        }
        if let Some(state) = eni.state_at(t) {
            interfaces.push(describe_interface(world, eni, state));
        }
    }
    for instance in &world.instances {
        let subnet = &world.subnets[instance.subnet];
        let vpc = &world.vpcs[subnet.vpc];
        if vpc.account != account || vpc.region != region {
            continue;
        }
        // Terminated instances stay visible for a while; the run never asks
        // about those that are long gone.
        let Some(state) = instance.state_at(t) else { continue };
        let app = &world.apps[instance.app];
        let primary = world.enis[instance.eni].state_at(t).map(|s| s.primary.to_string());
        instances.push(json!({
            "ReservationId": format!("r-{}", &instance.id[2..]),
            "OwnerId": ACCOUNTS[account],
            "Groups": [],
            "Instances": [{
                "InstanceId": instance.id,
                "State": {"Code": state.code(), "Name": state.name()},
                "SubnetId": subnet.id,
                "VpcId": vpc.id,
                "Placement": {"AvailabilityZone": REGIONS[region].azs[subnet.az], "Tenancy": "default"},
                "PrivateIpAddress": primary,
                "LaunchTime": UnixTime(instance.launched).to_string(),
                "Tags": [
                    {"Key": "aws:autoscaling:groupName", "Value": app.asg},
                    {"Key": "Name", "Value": format!("{}-{}", app.name, app.stack)},
                    {"Key": "app", "Value": app.name},
                ],
            }],
        }));
    }
    [json!({ "NetworkInterfaces": interfaces }), json!({ "Reservations": instances })]
}

fn describe_interface(world: &World, eni: &crate::world::Eni, state: &EniState) -> Value {
    let subnet = &world.subnets[eni.subnet];
    let vpc = &world.vpcs[subnet.vpc];
    let region = &REGIONS[vpc.region];
    let account = ACCOUNTS[vpc.account];
    let association = state.public.as_ref().map(|p| {
        let owner = if p.eip.is_some() { account } else { "amazon" };
        let mut a = json!({
            "IpOwnerId": owner,
            "PublicDnsName": format!("ec2-{}.compute-1.amazonaws.com", p.ip.to_string().replace('.', "-")),
            "PublicIp": p.ip.to_string(),
        });
        if let Some((eip, association_id)) = &p.eip {
            a["AllocationId"] = json!(world.eips[*eip].allocation_id);
            a["AssociationId"] = json!(association_id);
        }
        a
    });
    let mut addresses = vec![json!({
        "Primary": true,
        "PrivateDnsName": dns_name(state.primary),
        "PrivateIpAddress": state.primary.to_string(),
    })];
    if let Some(a) = &association {
        addresses[0]["Association"] = a.clone();
    }
    for ip in &state.secondary {
        addresses.push(json!({"Primary": false, "PrivateDnsName": dns_name(ip), "PrivateIpAddress": ip.to_string()}));
    }
    let (interface_type, description, requester) = match &eni.role {
        Role::Service { interface_type, description, requester } => {
            (*interface_type, description.as_str(), Some(*requester))
        }
        Role::Primary | Role::Floating => ("interface", "", None),
    };
    let mut v = json!({
        "AvailabilityZone": region.azs[subnet.az],
        "AvailabilityZoneId": region.az_ids[subnet.az],
        "Description": description,
        "Groups": [],
        "InterfaceType": interface_type,
        "Ipv6Addresses": [],
        "MacAddress": eni.mac,
        "NetworkInterfaceId": eni.id,
        "OwnerId": account,
        "PrivateDnsName": dns_name(state.primary),
        "PrivateIpAddress": state.primary.to_string(),
        "PrivateIpAddresses": addresses,
        "RequesterManaged": requester.is_some(),
        "SourceDestCheck": true,
        "Status": if state.attachment.is_some() || requester.is_some() { "in-use" } else { "available" },
        "SubnetId": subnet.id,
        "TagSet": [],
        "VpcId": vpc.id,
    });
    if let Some(r) = requester {
        v["RequesterId"] = json!(r);
    }
    if let Some(a) = association {
        v["Association"] = a;
    }
    if let Some(a) = &state.attachment {
        v["Attachment"] = json!({
            "AttachTime": UnixTime(world.instances[a.instance].launched).to_string(),
            "AttachmentId": a.id,
            "DeleteOnTermination": a.device == 0,
            "DeviceIndex": a.device,
            "NetworkCardIndex": 0,
            "InstanceId": world.instances[a.instance].id,
            "InstanceOwnerId": account,
            "Status": "attached",
        });
    }
    v
}

/// One CloudWatch Logs subscription record (gzip of a `DATA_MESSAGE`) for
/// the flow-log lines of one log stream (an ENI).
pub fn flow_log_record(account: &str, eni_id: &str, lines: &[(Time, String)], first_id: u64) -> Vec<u8> {
    let events: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(k, (at, message))| {
            json!({"id": format!("{:056}", first_id + k as u64), "timestamp": at * 1000, "message": message})
        })
        .collect();
    let document = json!({
        "messageType": "DATA_MESSAGE",
        "owner": account,
        "logGroup": "dredge-demo-flow-logs",
        "logStream": format!("{eni_id}-all"),
        "subscriptionFilters": ["dredge-flow-logs"],
        "logEvents": events,
    });
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&serde_json::to_vec(&document).expect("JSON")).expect("in memory");
    gz.finish().expect("in memory")
}

/// The Lambda event `function` gets for records of one shard: (sequence
/// number, data, arrival time).
pub fn kinesis_event(function: &str, stream: &str, shard: &str, records: &[(String, &[u8], Time)]) -> Value {
    let entries: Vec<EventRecord<'_>> = records
        .iter()
        .map(|(sequence, data, arrival)| EventRecord {
            partition_key: "demo",
            sequence_number: sequence,
            data,
            arrival: *arrival as f64,
        })
        .collect();
    event_json(function, stream, shard, &entries)
}

/// AWS service ranges for the demo's regions, in `ip-ranges.json`'s shape:
/// a stand-in for the real file, so the demo needs nothing from outside.
pub const AWS_SERVICES: [(&str, &str, &str); 4] = [
    ("52.216.0.0/15", "us-east-1", "S3"),
    ("3.218.180.0/22", "us-east-1", "DYNAMODB"),
    ("52.218.0.0/17", "eu-west-1", "S3"),
    ("52.119.240.0/21", "eu-west-1", "DYNAMODB"),
];

pub fn ip_ranges_json() -> String {
    let prefixes: Vec<Value> = AWS_SERVICES
        .iter()
        .map(|(prefix, region, service)| {
            json!({"ip_prefix": prefix, "region": region, "service": service, "network_border_group": region})
        })
        .collect();
    json!({"syncToken": "1796000000", "createDate": "2026-11-30-00-00-00", "prefixes": prefixes, "ipv6_prefixes": []})
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::Options;

    fn world() -> World {
        World::build(&Options { seed: 5, churn: 1.0, start: 1_800_000_000, end: 1_800_000_000 + 2 * 3600 })
    }

    #[test]
    fn every_event_is_one_the_ownership_decoder_reads() {
        let w = world();
        assert!(!w.events.is_empty());
        for e in &w.events {
            let v = event(&w, e);
            let parsed = dredge_ownership::events::parse_event(&v)
                .unwrap_or_else(|err| panic!("{}: {err}\n{v:#}", e.spec.label()));
            // State changes like `pending` change nothing; every call does.
            assert!(
                e.spec.is_state_change() || matches!(parsed.outcome, dredge_ownership::events::Outcome::Changes { .. }),
                "{}: {:?}",
                e.spec.label(),
                parsed.outcome
            );
        }
    }

    #[test]
    fn snapshots_read_back_with_every_live_interface() {
        let w = world();
        let t = w.start + 1800;
        let mut enis = 0;
        for account in 0..ACCOUNTS.len() {
            for region in 0..REGIONS.len() {
                let docs = describe(&w, t, account, region);
                let snapshot = dredge_ownership::Snapshot::from_documents(docs.iter().map(|d| d.to_string())).unwrap();
                enis += snapshot.enis.len();
            }
        }
        assert_eq!(enis, w.enis.iter().filter(|e| e.state_at(t).is_some()).count());
    }

    #[test]
    fn ip_ranges_parse() {
        let ranges = dredge_core::ipranges::IpRanges::from_json(ip_ranges_json().as_bytes()).unwrap();
        assert_eq!(ranges.len(), AWS_SERVICES.len());
    }
}
