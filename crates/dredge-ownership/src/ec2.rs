//! The EC2 SDK describer: `DescribeNetworkInterfaces` (all pages) for the
//! ENIs, `DescribeInstances` for the tags of the instances they are attached
//! to (the auto scaling group among them).
//!
//! [`eni_from_sdk`] fills the same `EniBuilder` as the describe JSON reader
//! ([`crate::snapshot`]), so that a snapshot read by the Lambda and one read
//! from `aws ec2 describe-network-interfaces` JSON give the same ENIs.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types::{Filter, NetworkInterface, NetworkInterfaceAssociation, Tag};
use aws_sdk_ec2::Client;
use dredge_core::ownership::{Association, BadAddress, Eni, EniBuilder, UnixTime};
use dredge_lambda::sdk_error;

use crate::describe::{DescribeError, Ec2Describer, TakenSnapshot};
use crate::snapshot::Snapshot;

/// Items per page (EC2 allows 5 to 1000).
const PAGE_SIZE: i32 = 1000;
/// Values per filter (EC2 allows 200).
const FILTER_VALUES: usize = 200;

/// The describer backed by the EC2 API.
#[derive(Debug, Clone)]
pub struct Ec2Api {
    client: Client,
}

impl Ec2Api {
    pub fn new(client: Client) -> Ec2Api {
        Ec2Api { client }
    }

    async fn network_interfaces(&self, filter: Option<Filter>) -> Result<Vec<NetworkInterface>, DescribeError> {
        self.client
            .describe_network_interfaces()
            .set_filters(filter.map(|f| vec![f]))
            .into_paginator()
            .page_size(PAGE_SIZE)
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| classify("DescribeNetworkInterfaces", e))
    }

    /// Adds the tags of these instances to `snapshot.instance_tags`. A
    /// filter (not `InstanceIds`) so that an instance gone meanwhile is
    /// simply absent rather than failing the call.
    async fn add_instance_tags(&self, snapshot: &mut Snapshot, instance_ids: &[String]) -> Result<(), DescribeError> {
        for chunk in instance_ids.chunks(FILTER_VALUES) {
            let filter = Filter::builder().name("instance-id").set_values(Some(chunk.to_vec())).build();
            let reservations = self
                .client
                .describe_instances()
                .filters(filter)
                .into_paginator()
                .page_size(PAGE_SIZE)
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| classify("DescribeInstances", e))?;
            for instance in reservations.iter().flat_map(|r| r.instances()) {
                if let Some(id) = instance.instance_id().filter(|id| !id.is_empty()) {
                    snapshot.instance_tags.insert(id.to_owned(), tag_map(instance.tags()));
                }
            }
        }
        Ok(())
    }

    async fn snapshot_of(&self, filter: Option<Filter>) -> Result<Snapshot, DescribeError> {
        let interfaces = self.network_interfaces(filter).await?;
        let mut snapshot = Snapshot::new();
        for interface in &interfaces {
            snapshot.enis.push(eni_from_sdk(interface)?);
        }
        let instances: BTreeSet<&String> = snapshot.enis.iter().filter_map(|e| e.instance_id.as_ref()).collect();
        let instances: Vec<String> = instances.into_iter().cloned().collect();
        self.add_instance_tags(&mut snapshot, &instances).await?;
        snapshot.finish();
        Ok(snapshot)
    }
}

impl Ec2Describer for Ec2Api {
    async fn describe_instance(&self, instance_id: &str) -> Result<Vec<Eni>, DescribeError> {
        let filter = Filter::builder().name("attachment.instance-id").values(instance_id).build();
        Ok(self.snapshot_of(Some(filter)).await?.enis)
    }

    async fn snapshot(&self) -> Result<TakenSnapshot, DescribeError> {
        // Every address in the snapshot was owned when the first page was
        // asked for, or came later: the start is the safe time to stamp.
        let taken_at = UnixTime::now();
        let snapshot = self.snapshot_of(None).await?;
        Ok(TakenSnapshot { snapshot, taken_at: Some(taken_at) })
    }
}

/// An EC2 SDK failure, by the rules every service shares
/// (`dredge_lambda::sdk_error`).
pub fn classify<E>(operation: &str, error: SdkError<E, aws_sdk_ec2::config::http::HttpResponse>) -> DescribeError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    sdk_error::classify(&format!("EC2 {operation}"), &error)
}

/// The ENI an SDK `NetworkInterface` describes, built as the describe JSON
/// reader builds it ([`EniBuilder`] holds the rules): the account is the
/// ENI's owner, the region that of its zone.
pub fn eni_from_sdk(ni: &NetworkInterface) -> Result<Eni, DescribeError> {
    let id = ni
        .network_interface_id()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| DescribeError::Permanent("a network interface without NetworkInterfaceId".into()))?;
    let mut eni = EniBuilder::new(id);
    eni.account(ni.owner_id())
        .az_and_region(ni.availability_zone())
        .vpc(ni.vpc_id())
        .subnet(ni.subnet_id())
        .interface_type(ni.interface_type().map(|t| interface_type(t.as_str())))
        .requester(ni.requester_id())
        .description(ni.description());
    if let Some(a) = ni.attachment() {
        eni.attachment(a.instance_id(), a.attachment_id(), a.status().map(|s| s.as_str()));
    }
    add_addresses(&mut eni, ni).map_err(|e| DescribeError::Permanent(format!("{id}: {e}")))?;
    eni.tags(ni.tag_set().iter().map(tag_pair));
    Ok(eni.build())
}

fn ids(a: Option<&NetworkInterfaceAssociation>) -> Association<'_> {
    Association { association_id: a.and_then(|a| a.association_id()), allocation_id: a.and_then(|a| a.allocation_id()) }
}

fn add_addresses(eni: &mut EniBuilder, ni: &NetworkInterface) -> Result<(), BadAddress> {
    for private in ni.private_ip_addresses() {
        let a = private.association();
        eni.private(private.private_ip_address())?.associated(
            a.and_then(|a| a.public_ip()),
            a.and_then(|a| a.ip_owner_id()),
            ids(a),
        )?;
    }
    let a = ni.association();
    eni.primary_private(ni.private_ip_address())?.associated(
        a.and_then(|a| a.public_ip()),
        a.and_then(|a| a.ip_owner_id()),
        ids(a),
    )?;
    for v6 in ni.ipv6_addresses() {
        eni.ipv6(v6.ipv6_address())?;
    }
    Ok(())
}

/// The interface type as EC2 sends it and the CLI prints it. The SDK's
/// model spells one value `natGateway`, the service (and so `Unknown`)
/// `nat_gateway`: keep the service's spelling, which `Eni::kind` reads.
fn interface_type(t: &str) -> &str {
    match t {
        "natGateway" => "nat_gateway",
        other => other,
    }
}

fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    dredge_core::ownership::tag_map(tags.iter().map(tag_pair))
}

fn tag_pair(tag: &Tag) -> (Option<&str>, Option<&str>) {
    (tag.key(), tag.value())
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use aws_sdk_ec2::types::{
        AttachmentStatus, NetworkInterfaceAssociation, NetworkInterfaceAttachment, NetworkInterfaceIpv6Address,
        NetworkInterfacePrivateIpAddress, NetworkInterfaceType,
    };

    use super::*;

    const INTERFACES: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../samples/ec2-describe/describe-network-interfaces.json"
    ));

    /// The fixture ENI as the JSON path reads it.
    fn from_json(id: &str) -> Eni {
        let s = Snapshot::from_documents([INTERFACES]).unwrap();
        s.enis.into_iter().find(|e| e.eni_id == id).unwrap()
    }

    fn tag(k: &str, v: &str) -> Tag {
        Tag::builder().key(k).value(v).build()
    }

    fn private(ip: &str, public: Option<&str>) -> NetworkInterfacePrivateIpAddress {
        let mut b = NetworkInterfacePrivateIpAddress::builder().private_ip_address(ip);
        if let Some(p) = public {
            b = b.association(NetworkInterfaceAssociation::builder().public_ip(p).build());
        }
        b.build()
    }

    /// eni-0a1b2c3d4e5f60001 of the fixture, as the SDK returns it.
    fn primary() -> NetworkInterface {
        NetworkInterface::builder()
            .network_interface_id("eni-0a1b2c3d4e5f60001")
            .association(NetworkInterfaceAssociation::builder().public_ip("54.210.33.7").ip_owner_id("amazon").build())
            .attachment(
                NetworkInterfaceAttachment::builder()
                    .attachment_id("eni-attach-0a1b2c3d4e5f60001")
                    .instance_id("i-0d4c3b2a1f0e98765")
                    .status(AttachmentStatus::Attached)
                    .device_index(0)
                    .build(),
            )
            .availability_zone("us-east-1a")
            .description("")
            .interface_type(NetworkInterfaceType::Interface)
            .owner_id("123456789012")
            .private_ip_address("10.20.1.15")
            .private_ip_addresses(private("10.20.1.15", Some("54.210.33.7")))
            .private_ip_addresses(private("10.20.1.40", None))
            .requester_managed(false)
            .subnet_id("subnet-0c1a2b3c4d5e6f701")
            .vpc_id("vpc-0a1b2c3d4e5f60789")
            .build()
    }

    #[test]
    fn sdk_and_json_give_the_same_eni() {
        assert_eq!(eni_from_sdk(&primary()).unwrap(), from_json("eni-0a1b2c3d4e5f60001"));
    }

    fn attachment(id: &str, instance: Option<&str>) -> NetworkInterfaceAttachment {
        let b = NetworkInterfaceAttachment::builder().attachment_id(id).status(AttachmentStatus::Attached);
        match instance {
            Some(i) => b.instance_id(i).build(),
            None => b.build(),
        }
    }

    #[test]
    fn ipv6_lambda_load_balancer_and_nat_enis_match_the_json_path() {
        let data = NetworkInterface::builder()
            .network_interface_id("eni-0a1b2c3d4e5f60002")
            .attachment(attachment("eni-attach-0a1b2c3d4e5f60002", Some("i-0d4c3b2a1f0e98765")))
            .availability_zone("us-east-1a")
            .description("api-prod data plane")
            .interface_type(NetworkInterfaceType::Interface)
            .ipv6_address("2600:1f18:4a3:6e01:9d2c:41a7:3b0e:5f11")
            .ipv6_addresses(
                NetworkInterfaceIpv6Address::builder()
                    .ipv6_address("2600:1f18:4a3:6e01:9d2c:41a7:3b0e:5f11")
                    .is_primary_ipv6(false)
                    .build(),
            )
            .owner_id("123456789012")
            .private_ip_address("10.20.1.16")
            .private_ip_addresses(private("10.20.1.16", None))
            .private_ip_addresses(private("10.20.1.17", None))
            .subnet_id("subnet-0c1a2b3c4d5e6f701")
            .vpc_id("vpc-0a1b2c3d4e5f60789")
            .build();
        assert_eq!(eni_from_sdk(&data).unwrap(), from_json("eni-0a1b2c3d4e5f60002"));

        let lambda = NetworkInterface::builder()
            .network_interface_id("eni-0d5e6f7a8b9c00004")
            .attachment(attachment("ela-attach-0f3c6a9d2b5e81470", None))
            .availability_zone("us-east-1b")
            .description("AWS Lambda VPC ENI-billing-worker-5d1c3a0e-8f2b-4c7e-9a61-3b4d2e0f7a19")
            .interface_type(NetworkInterfaceType::Lambda)
            .owner_id("123456789012")
            .private_ip_address("10.20.17.201")
            .private_ip_addresses(private("10.20.17.201", None))
            .requester_id("AROAR5EXAMPLELAMBDA01:123456789012")
            .subnet_id("subnet-0c1a2b3c4d5e6f702")
            .vpc_id("vpc-0a1b2c3d4e5f60789")
            .build();
        let lambda = eni_from_sdk(&lambda).unwrap();
        assert_eq!(lambda, from_json("eni-0d5e6f7a8b9c00004"));
        assert_eq!(lambda.kind(), dredge_core::ownership::OwnerKind::Lambda);

        let nlb = NetworkInterface::builder()
            .network_interface_id("eni-0e6f7a8b9c0d10005")
            .attachment(attachment("ela-attach-08b1d4e7a0c3f6925", None))
            .availability_zone("us-east-1a")
            .description("ELB net/api-prod-nlb/7e3b1c9d5a2f4e86")
            .interface_type(NetworkInterfaceType::NetworkLoadBalancer)
            .owner_id("123456789012")
            .private_ip_address("10.20.4.10")
            .private_ip_addresses(private("10.20.4.10", None))
            .requester_id("amazon-elb")
            .subnet_id("subnet-0c1a2b3c4d5e6f701")
            .vpc_id("vpc-0a1b2c3d4e5f60789")
            .build();
        assert_eq!(eni_from_sdk(&nlb).unwrap(), from_json("eni-0e6f7a8b9c0d10005"));

        let eip = NetworkInterfaceAssociation::builder()
            .allocation_id("eipalloc-0a9b8c7d6e5f43210")
            .association_id("eipassoc-0c4e6a8b0d2f13579")
            .ip_owner_id("123456789012")
            .public_ip("44.206.18.91")
            .build();
        let nat = NetworkInterface::builder()
            .network_interface_id("eni-0f7a8b9c0d1e20006")
            .association(eip.clone())
            .attachment(attachment("ela-attach-0d7f9b1c3e5a72846", None))
            .availability_zone("us-east-1a")
            .description("Interface for NAT Gateway nat-0a9b8c7d6e5f43210")
            // What the service sends: the SDK keeps it as `Unknown`.
            .interface_type(NetworkInterfaceType::from("nat_gateway"))
            .owner_id("123456789012")
            .private_ip_address("10.20.32.12")
            .private_ip_addresses(
                NetworkInterfacePrivateIpAddress::builder().private_ip_address("10.20.32.12").association(eip).build(),
            )
            .requester_id("036872051663")
            .subnet_id("subnet-0c1a2b3c4d5e6f703")
            .vpc_id("vpc-0a1b2c3d4e5f60789")
            .build();
        let nat = eni_from_sdk(&nat).unwrap();
        assert_eq!(nat, from_json("eni-0f7a8b9c0d1e20006"));
        assert_eq!(nat.public_addresses.len(), 1, "listed twice, kept once");
        assert_eq!(nat.kind(), dredge_core::ownership::OwnerKind::NatGateway);
        // The SDK's own spelling of the variant means the same.
        let modelled = NetworkInterface::builder()
            .network_interface_id("eni-1")
            .interface_type(NetworkInterfaceType::NatGateway)
            .build();
        assert_eq!(eni_from_sdk(&modelled).unwrap().interface_type.as_deref(), Some("nat_gateway"));

        let other = NetworkInterface::builder()
            .network_interface_id("eni-0a9b8c7d6e5f40777")
            .attachment(attachment("eni-attach-0a9b8c7d6e5f40777", Some("i-0b1c2d3e4f5a67890")))
            .availability_zone("us-east-1a")
            .description("")
            .interface_type(NetworkInterfaceType::Interface)
            .owner_id("123456789012")
            .private_ip_address("10.20.1.15")
            .private_ip_addresses(private("10.20.1.15", None))
            .subnet_id("subnet-0d9e8f7a6b5c4d301")
            .tag_set(tag("team", "search-infra"))
            .vpc_id("vpc-0f9e8d7c6b5a40321")
            .build();
        assert_eq!(eni_from_sdk(&other).unwrap(), from_json("eni-0a9b8c7d6e5f40777"));
    }

    #[test]
    fn detached_attachments_empty_strings_and_tags() {
        let ni = NetworkInterface::builder()
            .network_interface_id("eni-1")
            .attachment(
                NetworkInterfaceAttachment::builder()
                    .instance_id("i-1")
                    .attachment_id("eni-attach-1")
                    .status(AttachmentStatus::Detached)
                    .build(),
            )
            .vpc_id("")
            .private_ip_address("10.0.0.9")
            .ipv6_addresses(NetworkInterfaceIpv6Address::builder().ipv6_address("fd00::9").build())
            .tag_set(tag("app", "billing"))
            .tag_set(Tag::builder().value("no key").build())
            .build();
        let eni = eni_from_sdk(&ni).unwrap();
        assert_eq!(eni.instance_id, None);
        assert_eq!(eni.attachment_id, None);
        assert_eq!(eni.vpc_id, None);
        let ips: Vec<IpAddr> = ["10.0.0.9", "fd00::9"].iter().map(|s| s.parse().unwrap()).collect();
        assert_eq!(eni.private_addresses, ips);
        assert_eq!(eni.tags.len(), 1);
        assert_eq!(eni.tags["app"], "billing");
    }

    #[test]
    fn bad_data_is_a_permanent_error() {
        let no_id = NetworkInterface::builder().private_ip_address("10.0.0.1").build();
        assert!(!eni_from_sdk(&no_id).unwrap_err().is_transient());
        let bad = NetworkInterface::builder().network_interface_id("eni-1").private_ip_address("10.0.0.300").build();
        let err = eni_from_sdk(&bad).unwrap_err();
        assert!(err.to_string().contains("10.0.0.300"), "{err}");
    }

    #[test]
    fn ec2_errors_follow_the_shared_rules() {
        use aws_sdk_ec2::operation::describe_network_interfaces::DescribeNetworkInterfacesError;
        use aws_smithy_runtime_api::http::StatusCode;
        use aws_smithy_types::body::SdkBody;
        use aws_smithy_types::error::ErrorMetadata;

        let error = |code: &str, status: u16| {
            let e = DescribeNetworkInterfacesError::generic(ErrorMetadata::builder().code(code).build());
            let raw =
                aws_sdk_ec2::config::http::HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
            classify("DescribeNetworkInterfaces", SdkError::service_error(e, raw))
        };
        for (code, status) in
            [("RequestLimitExceeded", 503), ("Throttling", 400), ("InternalError", 500), ("Unavailable", 503)]
        {
            let e = error(code, status);
            assert!(e.is_transient(), "{e}");
            assert!(e.message().starts_with("EC2 DescribeNetworkInterfaces: "), "{e}");
        }
        for (code, status) in [("UnauthorizedOperation", 403), ("InvalidParameterValue", 400)] {
            assert!(!error(code, status).is_transient(), "{code}");
        }
    }
}
