//! What is known of one network interface: its addresses and what it is
//! attached to. Events and snapshots describe ENIs; owners derive from them.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::owner::{Owner, OwnerKind, TagPolicy, ASG_TAG};
use super::scope::is_private;

/// One ENI as EC2 describes it (DescribeNetworkInterfaces, RunInstances,
/// CreateNetworkInterface). Fields an event does not carry stay `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Eni {
    pub eni_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub az: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    /// EC2's `InterfaceType`: `interface`, `lambda`, `nat_gateway`,
    /// `network_load_balancer`, `vpc_endpoint`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface_type: Option<String>,
    /// The service that created a requester-managed ENI (`amazon-elb`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment_id: Option<String>,
    /// Private IPv4 and IPv6 addresses: unique within the VPC.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub private_addresses: Vec<IpAddr>,
    /// Public IPv4 (Elastic IP or auto-assigned) and global IPv6 addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub public_addresses: Vec<IpAddr>,
    /// The public IPv4 addresses known to be Elastic IPs (an association
    /// event, or an owner other than `amazon` in a description): they stay
    /// with the ENI across a stop. Any other public IPv4 address is taken
    /// for auto-assigned, which EC2 releases at a stop.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub elastic_addresses: Vec<IpAddr>,
    /// Elastic IP associations a description names (association id to
    /// address): how a later disassociation, which names only the
    /// association, finds the ENI.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub associations: BTreeMap<String, IpAddr>,
    /// The Elastic IPs a description names by allocation (allocation id
    /// to address): what an association event, which names only the
    /// allocation, associated.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub allocations: BTreeMap<String, IpAddr>,
    /// The ENI's tags merged with its instance's (the instance's carry the
    /// auto scaling group).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

impl Eni {
    pub fn new(eni_id: impl Into<String>) -> Eni {
        Eni { eni_id: eni_id.into(), ..Eni::default() }
    }

    /// Every address the ENI holds.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.private_addresses.iter().chain(&self.public_addresses).copied()
    }

    /// The public IPv4 addresses EC2 releases when the instance stops or an
    /// Elastic IP takes their place: every one not known to be elastic.
    pub fn auto_assigned(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.public_addresses.iter().copied().filter(|a| a.is_ipv4() && !self.elastic_addresses.contains(a))
    }

    /// Forgets `addresses` (private, public and elastic lists alike).
    pub fn remove_addresses(&mut self, addresses: &[IpAddr]) {
        for list in [&mut self.private_addresses, &mut self.public_addresses, &mut self.elastic_addresses] {
            list.retain(|a| !addresses.contains(a));
        }
    }

    /// What the ENI belongs to, from its type, requester and attachment.
    pub fn kind(&self) -> OwnerKind {
        let ty = self.interface_type.as_deref().unwrap_or("interface");
        let requester = self.requester_id.as_deref().unwrap_or("");
        let description = self.description.as_deref().unwrap_or("");
        match ty {
            "lambda" => OwnerKind::Lambda,
            "nat_gateway" => OwnerKind::NatGateway,
            "network_load_balancer" | "gateway_load_balancer" => OwnerKind::LoadBalancer,
            "vpc_endpoint" | "gateway_load_balancer_endpoint" => OwnerKind::VpcEndpoint,
            _ if self.instance_id.is_some() && requester.is_empty() => OwnerKind::Instance,
            _ if requester == "amazon-elb" || description.starts_with("ELB ") => OwnerKind::LoadBalancer,
            _ if description.starts_with("arn:aws:ecs:") || requester.contains("ecs") => OwnerKind::EcsTask,
            _ if description.starts_with("AWS Lambda VPC ENI") => OwnerKind::Lambda,
            _ if self.instance_id.is_some() => OwnerKind::Instance,
            _ => OwnerKind::Interface,
        }
    }

    /// The owner of the ENI's addresses.
    pub fn owner(&self, policy: &TagPolicy) -> Owner {
        let mut owner = Owner::new(self.eni_id.clone(), self.kind());
        owner.interface_type = self.interface_type.clone();
        owner.requester_id = self.requester_id.clone();
        owner.instance_id = self.instance_id.clone();
        owner.account_id = self.account_id.clone();
        owner.region = self.region.clone();
        owner.az = self.az.clone();
        owner.vpc_id = self.vpc_id.clone();
        owner.subnet_id = self.subnet_id.clone();
        owner.name_from(self.tags.get(ASG_TAG).map(String::as_str), &self.tags, policy);
        owner
    }

    /// Fills what `self` lacks from `older` (a previous description of the
    /// same ENI): events describe ENIs partially.
    pub fn fill_from(&mut self, older: &Eni) {
        macro_rules! fill {
            ($($f:ident),*) => { $( if self.$f.is_none() { self.$f = older.$f.clone(); } )* };
        }
        fill!(
            account_id,
            region,
            az,
            vpc_id,
            subnet_id,
            interface_type,
            requester_id,
            description,
            instance_id,
            attachment_id
        );
        merge_tags(&mut self.tags, &older.tags);
        // An address once known to be elastic stays so while the ENI holds it.
        for ip in &older.elastic_addresses {
            if self.public_addresses.contains(ip) {
                push_unique(&mut self.elastic_addresses, *ip);
            }
        }
    }

    /// Adds an address to the private or the public list by its scope
    /// ([`is_private`]), once.
    pub fn add_address(&mut self, ip: IpAddr) {
        let list = if is_private(ip) { &mut self.private_addresses } else { &mut self.public_addresses };
        push_unique(list, ip);
    }
}

/// Appends `item` unless `list` holds it already: an ENI lists each address
/// once, in the order first described.
pub fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// Adds the tags of `from` that `into` lacks: an ENI's own tags win over
/// its instance's, a newer description's over an older one's.
pub fn merge_tags(into: &mut BTreeMap<String, String>, from: &BTreeMap<String, String>) {
    for (key, value) in from {
        into.entry(key.clone()).or_insert_with(|| value.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_interface_type_then_requester() {
        let mut e = Eni::new("eni-1");
        assert_eq!(e.kind(), OwnerKind::Interface);
        e.instance_id = Some("i-1".into());
        assert_eq!(e.kind(), OwnerKind::Instance);
        e.interface_type = Some("nat_gateway".into());
        assert_eq!(e.kind(), OwnerKind::NatGateway);
        let mut elb = Eni::new("eni-2");
        elb.requester_id = Some("amazon-elb".into());
        assert_eq!(elb.kind(), OwnerKind::LoadBalancer);
        let mut lambda = Eni::new("eni-3");
        lambda.interface_type = Some("lambda".into());
        assert_eq!(lambda.kind(), OwnerKind::Lambda);
    }

    #[test]
    fn owner_carries_asg_names() {
        let mut e = Eni::new("eni-1");
        e.instance_id = Some("i-1".into());
        e.vpc_id = Some("vpc-1".into());
        e.tags.insert(ASG_TAG.into(), "api-prod-v042".into());
        let o = e.owner(&TagPolicy::default());
        assert_eq!(o.app.as_deref(), Some("api"));
        assert_eq!(o.asg.as_deref(), Some("api-prod-v042"));
        assert_eq!(o.vpc_id.as_deref(), Some("vpc-1"));
        assert_eq!(o.kind, OwnerKind::Instance);
    }

    #[test]
    fn addresses_go_by_scope_once() {
        let mut e = Eni::new("eni-1");
        for ip in ["fd00::1", "2600:1f18::1", "fd00::1", "10.0.0.1"] {
            e.add_address(ip.parse().unwrap());
        }
        let ips = |l: &[&str]| l.iter().map(|s| s.parse().unwrap()).collect::<Vec<IpAddr>>();
        assert_eq!(e.private_addresses, ips(&["fd00::1", "10.0.0.1"]));
        assert_eq!(e.public_addresses, ips(&["2600:1f18::1"]));
    }

    #[test]
    fn public_ipv4_is_auto_assigned_unless_known_elastic() {
        let mut e = Eni::new("eni-1");
        let ips = |l: &[&str]| l.iter().map(|s| s.parse().unwrap()).collect::<Vec<IpAddr>>();
        e.public_addresses = ips(&["54.0.0.1", "3.3.3.3", "2600:1f18::1"]);
        e.elastic_addresses = ips(&["3.3.3.3"]);
        assert_eq!(e.auto_assigned().collect::<Vec<_>>(), ips(&["54.0.0.1"]));
        let mut newer = Eni::new("eni-1");
        newer.public_addresses = ips(&["3.3.3.3"]);
        newer.fill_from(&e);
        assert_eq!(newer.elastic_addresses, ips(&["3.3.3.3"]), "still elastic");
        e.remove_addresses(&ips(&["3.3.3.3"]));
        assert!(e.elastic_addresses.is_empty() && !e.public_addresses.contains(&"3.3.3.3".parse().unwrap()));
    }

    #[test]
    fn own_tags_win() {
        let mut own = BTreeMap::from([("team".to_owned(), "netops".to_owned())]);
        let instance = BTreeMap::from([("team".to_owned(), "edge".to_owned()), ("app".to_owned(), "api".to_owned())]);
        merge_tags(&mut own, &instance);
        assert_eq!((own["team"].as_str(), own["app"].as_str()), ("netops", "api"));
    }
}
