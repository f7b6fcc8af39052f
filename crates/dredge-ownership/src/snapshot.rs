//! The state of the world at one moment, as `aws ec2
//! describe-network-interfaces` and `aws ec2 describe-instances` print it.
//! Seeding and reconciling from a snapshot is the only way to know
//! addresses that existed before the first event.
//!
//! Each document is recognised by its top-level key (`NetworkInterfaces` or
//! `Reservations`); any number of them (pages, accounts, regions) add up to
//! one [`Snapshot`]. Unknown members are ignored. The ownership Lambda gets
//! the same data from the EC2 SDK (`NetworkInterface`, `Instance`): both
//! fill an [`EniBuilder`], so both give the same ENIs.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::Value;
use thiserror::Error;

use dredge_core::ownership::{
    merge_tags, tag_map, Association as AssociationIds, BadAddress, Change, Eni, EniBuilder, UnixTime,
};

/// ENIs and the tags of the instances they may be attached to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub enis: Vec<Eni>,
    /// Instance id → its tags (`aws:autoscaling:groupName` among them).
    pub instance_tags: BTreeMap<String, BTreeMap<String, String>>,
}

/// Which document was read, and how many entries it held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    /// `describe-network-interfaces`: this many ENIs.
    NetworkInterfaces(usize),
    /// `describe-instances`: this many instances.
    Instances(usize),
}

#[derive(Debug, Error)]
pub enum SnapshotError {
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "neither `NetworkInterfaces` (aws ec2 describe-network-interfaces) nor `Reservations` \
         (aws ec2 describe-instances) at the top level"
    )]
    UnknownDocument,
    #[error("{document}: {source}")]
    Shape { document: &'static str, source: serde_json::Error },
    #[error("{eni_id}: `{value}` is not an IP address")]
    BadAddress { eni_id: String, value: String },
}

impl Snapshot {
    pub fn new() -> Snapshot {
        Snapshot::default()
    }

    /// Reads every document, then [`finish`](Self::finish)es.
    pub fn from_documents<I>(documents: I) -> Result<Snapshot, SnapshotError>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let mut snapshot = Snapshot::new();
        for document in documents {
            snapshot.add_slice(document.as_ref())?;
        }
        snapshot.finish();
        Ok(snapshot)
    }

    /// Adds one document from its JSON text.
    pub fn add_slice(&mut self, json: &[u8]) -> Result<Document, SnapshotError> {
        let document: Value = serde_json::from_slice(json)?;
        self.add(&document)
    }

    /// Adds one document. ENIs are appended as they come: call
    /// [`finish`](Self::finish) once all documents are in.
    pub fn add(&mut self, document: &Value) -> Result<Document, SnapshotError> {
        if document.get("NetworkInterfaces").is_some() {
            let page = NetworkInterfacesPage::deserialize(document).map_err(shape("describe-network-interfaces"))?;
            let count = page.network_interfaces.len();
            for interface in page.network_interfaces {
                self.enis.push(interface.into_eni()?);
            }
            Ok(Document::NetworkInterfaces(count))
        } else if document.get("Reservations").is_some() {
            let page = ReservationsPage::deserialize(document).map_err(shape("describe-instances"))?;
            let mut count = 0;
            for instance in page.reservations.into_iter().flat_map(|r| r.instances) {
                count += 1;
                self.instance_tags.insert(instance.instance_id, tag_map(instance.tags.iter().map(Tag::pair)));
            }
            Ok(Document::Instances(count))
        } else {
            Err(SnapshotError::UnknownDocument)
        }
    }

    /// Keeps the last description of each ENI (a later document wins),
    /// orders ENIs by id, and merges instance tags into attached ENIs.
    pub fn finish(&mut self) {
        let keep = {
            let mut last: HashMap<&str, usize> = HashMap::with_capacity(self.enis.len());
            for (i, eni) in self.enis.iter().enumerate() {
                last.insert(&eni.eni_id, i);
            }
            let mut keep = vec![false; self.enis.len()];
            for &i in last.values() {
                keep[i] = true;
            }
            keep
        };
        if keep.contains(&false) {
            let mut keep = keep.into_iter();
            self.enis.retain(|_| keep.next().unwrap_or(false));
        }
        self.enis.sort_by(|a, b| a.eni_id.cmp(&b.eni_id));
        self.merge_instance_tags();
    }

    /// Adds the tags of each ENI's instance to the ENI's own; the ENI's own
    /// win on a clash. The instance's carry the auto scaling group.
    pub fn merge_instance_tags(&mut self) {
        for eni in &mut self.enis {
            if let Some(tags) = eni.instance_id.as_ref().and_then(|i| self.instance_tags.get(i)) {
                merge_tags(&mut eni.tags, tags);
            }
        }
    }

    /// The snapshot as changes stamped `at` (when it was taken): one
    /// `EniUp` per ENI.
    pub fn changes(&self, at: UnixTime) -> Vec<Change> {
        self.enis.iter().map(|eni| Change::EniUp { at, eni: Box::new(eni.clone()) }).collect()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NetworkInterfacesPage {
    network_interfaces: Vec<NetworkInterface>,
}

/// One item of `describe-network-interfaces`, as the CLI prints the SDK's
/// `NetworkInterface`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkInterface {
    network_interface_id: String,
    subnet_id: Option<String>,
    vpc_id: Option<String>,
    availability_zone: Option<String>,
    owner_id: Option<String>,
    interface_type: Option<String>,
    requester_id: Option<String>,
    description: Option<String>,
    attachment: Option<Attachment>,
    private_ip_address: Option<String>,
    #[serde(default)]
    private_ip_addresses: Vec<PrivateIpAddress>,
    #[serde(default)]
    ipv6_addresses: Vec<Ipv6Address>,
    association: Option<Association>,
    #[serde(default, alias = "Tags")]
    tag_set: Vec<Tag>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Attachment {
    instance_id: Option<String>,
    attachment_id: Option<String>,
    status: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PrivateIpAddress {
    private_ip_address: Option<String>,
    association: Option<Association>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Ipv6Address {
    ipv6_address: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Association {
    public_ip: Option<String>,
    /// `amazon` for an auto-assigned address, the account for an Elastic IP.
    ip_owner_id: Option<String>,
    /// An Elastic IP's association and allocation.
    association_id: Option<String>,
    allocation_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Tag {
    key: Option<String>,
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReservationsPage {
    reservations: Vec<Reservation>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Reservation {
    #[serde(default)]
    instances: Vec<Instance>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Instance {
    instance_id: String,
    #[serde(default)]
    tags: Vec<Tag>,
}

impl NetworkInterface {
    /// The ENI this describes ([`EniBuilder`] holds the rules). The account
    /// is the ENI's owner, the region that of its zone.
    pub fn into_eni(mut self) -> Result<Eni, SnapshotError> {
        let mut eni = EniBuilder::new(std::mem::take(&mut self.network_interface_id));
        eni.account(self.owner_id.as_deref())
            .az_and_region(self.availability_zone.as_deref())
            .vpc(self.vpc_id.as_deref())
            .subnet(self.subnet_id.as_deref())
            .interface_type(self.interface_type.as_deref())
            .requester(self.requester_id.as_deref())
            .description(self.description.as_deref());
        if let Some(a) = &self.attachment {
            eni.attachment(a.instance_id.as_deref(), a.attachment_id.as_deref(), a.status.as_deref());
        }
        self.add_addresses(&mut eni)
            .map_err(|BadAddress { value }| SnapshotError::BadAddress { eni_id: eni.eni_id().to_owned(), value })?;
        eni.tags(self.tag_set.iter().map(Tag::pair));
        Ok(eni.build())
    }

    fn add_addresses(&self, eni: &mut EniBuilder) -> Result<(), BadAddress> {
        fn public(eni: &mut EniBuilder, a: &Option<Association>) -> Result<(), BadAddress> {
            let a = a.as_ref();
            eni.associated(
                a.and_then(|a| a.public_ip.as_deref()),
                a.and_then(|a| a.ip_owner_id.as_deref()),
                AssociationIds {
                    association_id: a.and_then(|a| a.association_id.as_deref()),
                    allocation_id: a.and_then(|a| a.allocation_id.as_deref()),
                },
            )?;
            Ok(())
        }
        for private in &self.private_ip_addresses {
            eni.private(private.private_ip_address.as_deref())?;
            public(eni, &private.association)?;
        }
        eni.primary_private(self.private_ip_address.as_deref())?;
        public(eni, &self.association)?;
        for v6 in &self.ipv6_addresses {
            eni.ipv6(v6.ipv6_address.as_deref())?;
        }
        Ok(())
    }
}

impl Tag {
    fn pair(&self) -> (Option<&str>, Option<&str>) {
        (self.key.as_deref(), self.value.as_deref())
    }
}

fn shape(document: &'static str) -> impl Fn(serde_json::Error) -> SnapshotError {
    move |source| SnapshotError::Shape { document, source }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use dredge_core::ownership::{OwnerKind, Scope, TagPolicy, ASG_TAG};

    const INTERFACES: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../samples/ec2-describe/describe-network-interfaces.json"
    ));
    const INSTANCES: &str =
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/ec2-describe/describe-instances.json"));

    fn snapshot() -> Snapshot {
        Snapshot::from_documents([INTERFACES, INSTANCES]).unwrap()
    }

    fn eni<'a>(snapshot: &'a Snapshot, id: &str) -> &'a Eni {
        snapshot.enis.iter().find(|e| e.eni_id == id).unwrap()
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn reads_both_documents() {
        let mut s = Snapshot::new();
        assert_eq!(s.add_slice(INTERFACES.as_bytes()).unwrap(), Document::NetworkInterfaces(6));
        assert_eq!(s.add_slice(INSTANCES.as_bytes()).unwrap(), Document::Instances(2));
        assert_eq!(s.enis.len(), 6);
        let keys: Vec<&str> = s.instance_tags.keys().map(String::as_str).collect();
        assert_eq!(keys, ["i-0b1c2d3e4f5a67890", "i-0d4c3b2a1f0e98765"]);
    }

    #[test]
    fn instance_tags_are_merged_into_attached_enis() {
        let s = snapshot();
        let primary = eni(&s, "eni-0a1b2c3d4e5f60001");
        assert_eq!(primary.tags.get(ASG_TAG).map(String::as_str), Some("api-prod-v042"));
        assert_eq!(primary.instance_id.as_deref(), Some("i-0d4c3b2a1f0e98765"));
        assert_eq!(primary.attachment_id.as_deref(), Some("eni-attach-0a1b2c3d4e5f60001"));
        assert_eq!(primary.account_id.as_deref(), Some("123456789012"));
        assert_eq!(primary.region.as_deref(), Some("us-east-1"));
        assert_eq!(primary.az.as_deref(), Some("us-east-1a"));
        assert_eq!(primary.description, None);
        assert_eq!(primary.private_addresses, ips(&["10.20.1.15", "10.20.1.40"]));
        assert_eq!(primary.public_addresses, ips(&["54.210.33.7"]));
        let owner = primary.owner(&TagPolicy::default());
        assert_eq!(owner.kind, OwnerKind::Instance);
        assert_eq!(owner.app.as_deref(), Some("api"));
        assert_eq!(owner.stack.as_deref(), Some("prod"));
        assert_eq!(owner.vpc_id.as_deref(), Some("vpc-0a1b2c3d4e5f60789"));

        let data = eni(&s, "eni-0a1b2c3d4e5f60002");
        assert_eq!(data.private_addresses, ips(&["10.20.1.16", "10.20.1.17"]));
        assert_eq!(data.public_addresses, ips(&["2600:1f18:4a3:6e01:9d2c:41a7:3b0e:5f11"]));
        assert_eq!(data.tags.get(ASG_TAG).map(String::as_str), Some("api-prod-v042"));

        // The ENI's own tag wins over its instance's.
        let other = eni(&s, "eni-0a9b8c7d6e5f40777");
        assert_eq!(other.tags.get("team").map(String::as_str), Some("search-infra"));
        assert_eq!(other.tags.get(ASG_TAG).map(String::as_str), Some("search-prod-v013"));
    }

    #[test]
    fn elastic_ips_keep_their_association_and_allocation() {
        let s = snapshot();
        let nlb = eni(&s, "eni-0f7a8b9c0d1e20006");
        let ip: IpAddr = "44.206.18.91".parse().unwrap();
        assert_eq!(nlb.associations.get("eipassoc-0c4e6a8b0d2f13579"), Some(&ip));
        assert_eq!(nlb.allocations.get("eipalloc-0a9b8c7d6e5f43210"), Some(&ip));
        assert_eq!(nlb.elastic_addresses, vec![ip]);
        // An auto-assigned address has neither.
        assert!(eni(&s, "eni-0a1b2c3d4e5f60001").associations.is_empty());
    }

    #[test]
    fn without_instances_no_tags_are_invented() {
        let s = Snapshot::from_documents([INTERFACES]).unwrap();
        assert!(eni(&s, "eni-0a1b2c3d4e5f60001").tags.is_empty());
        // Merging later, once the instances are known, is the same as
        // reading everything at once.
        let mut s = s;
        s.add_slice(INSTANCES.as_bytes()).unwrap();
        s.merge_instance_tags();
        assert_eq!(s, snapshot());
    }

    #[test]
    fn service_enis_are_recognised() {
        let s = snapshot();
        let lambda = eni(&s, "eni-0d5e6f7a8b9c00004");
        assert_eq!(lambda.kind(), OwnerKind::Lambda);
        assert_eq!(lambda.instance_id, None);
        assert_eq!(lambda.az.as_deref(), Some("us-east-1b"));
        assert_eq!(lambda.private_addresses, ips(&["10.20.17.201"]));

        let nlb = eni(&s, "eni-0e6f7a8b9c0d10005");
        assert_eq!(nlb.kind(), OwnerKind::LoadBalancer);
        assert_eq!(nlb.requester_id.as_deref(), Some("amazon-elb"));
        assert_eq!(nlb.attachment_id.as_deref(), Some("ela-attach-08b1d4e7a0c3f6925"));

        let nat = eni(&s, "eni-0f7a8b9c0d1e20006");
        assert_eq!(nat.kind(), OwnerKind::NatGateway);
        assert_eq!(nat.private_addresses, ips(&["10.20.32.12"]));
        assert_eq!(nat.public_addresses, ips(&["44.206.18.91"]), "listed twice, kept once");
    }

    #[test]
    fn the_same_private_address_in_two_vpcs() {
        let s = snapshot();
        let holders: Vec<(&str, Option<Scope>)> = s
            .enis
            .iter()
            .filter(|e| e.private_addresses.contains(&"10.20.1.15".parse().unwrap()))
            .map(|e| (e.eni_id.as_str(), Scope::of("10.20.1.15".parse().unwrap(), e.vpc_id.as_deref())))
            .collect();
        assert_eq!(
            holders,
            [
                ("eni-0a1b2c3d4e5f60001", Some(Scope::Vpc("vpc-0a1b2c3d4e5f60789".into()))),
                ("eni-0a9b8c7d6e5f40777", Some(Scope::Vpc("vpc-0f9e8d7c6b5a40321".into()))),
            ]
        );
    }

    #[test]
    fn pages_add_up_and_the_last_description_wins() {
        let whole: Value = serde_json::from_str(INTERFACES).unwrap();
        let all = whole["NetworkInterfaces"].as_array().unwrap();
        let first = serde_json::json!({ "NetworkInterfaces": all[..4], "NextToken": "eyJ..." });
        let second = serde_json::json!({ "NetworkInterfaces": all[4..] });
        let mut paged = Snapshot::new();
        paged.add(&second).unwrap();
        paged.add(&first).unwrap();
        paged.add_slice(INSTANCES.as_bytes()).unwrap();
        paged.finish();
        assert_eq!(paged, snapshot());

        // A later document's description of an ENI replaces an earlier one.
        let mut changed = all[0].clone();
        changed["PrivateIpAddresses"] = serde_json::json!([{ "PrivateIpAddress": "10.20.1.15" }]);
        let mut s = Snapshot::new();
        s.add(&whole).unwrap();
        s.add(&serde_json::json!({ "NetworkInterfaces": [changed] })).unwrap();
        s.finish();
        assert_eq!(s.enis.len(), 6);
        assert_eq!(eni(&s, all[0]["NetworkInterfaceId"].as_str().unwrap()).private_addresses, ips(&["10.20.1.15"]));
    }

    #[test]
    fn enis_come_out_ordered_and_as_changes() {
        let s = snapshot();
        let ids: Vec<&str> = s.enis.iter().map(|e| e.eni_id.as_str()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        let at = UnixTime::parse_rfc3339("2026-11-06T00:00:00Z").unwrap();
        let changes = s.changes(at);
        assert_eq!(changes.len(), 6);
        assert!(changes.iter().all(|c| matches!(c, Change::EniUp { .. }) && c.at() == at));
    }

    #[test]
    fn tolerant_of_missing_and_unknown_members() {
        let doc = br#"{"NetworkInterfaces": [{"NetworkInterfaceId": "eni-1", "SomethingNew": {"x": 1},
            "PrivateIpAddress": "10.0.0.9", "Description": "", "Attachment": {"Status": "detached",
            "InstanceId": "i-gone"}, "Tags": [{"Key": "app", "Value": "x"}]}]}"#;
        let s = Snapshot::from_documents([&doc[..]]).unwrap();
        let e = &s.enis[0];
        assert_eq!(e.private_addresses, ips(&["10.0.0.9"]));
        assert_eq!((e.description.as_deref(), e.region.as_deref()), (None, None));
        assert_eq!(e.instance_id, None, "a detached attachment is no attachment");
        assert_eq!(e.tags.get("app").map(String::as_str), Some("x"));
    }

    #[test]
    fn bad_documents_are_errors() {
        assert!(matches!(Snapshot::new().add_slice(b"{\"Vpcs\": []}"), Err(SnapshotError::UnknownDocument)));
        assert!(matches!(Snapshot::new().add_slice(b"nope"), Err(SnapshotError::Json(_))));
        let no_id = br#"{"NetworkInterfaces": [{"VpcId": "vpc-1"}]}"#;
        let err = Snapshot::new().add_slice(no_id).unwrap_err();
        assert!(matches!(err, SnapshotError::Shape { .. }));
        assert!(err.to_string().starts_with("describe-network-interfaces: missing field `NetworkInterfaceId`"));
        let bad_ip = br#"{"NetworkInterfaces": [{"NetworkInterfaceId": "eni-1", "PrivateIpAddress": "10.0.0"}]}"#;
        assert!(matches!(
            Snapshot::new().add_slice(bad_ip),
            Err(SnapshotError::BadAddress { eni_id, .. }) if eni_id == "eni-1"
        ));
    }
}
