//! Changes to IP ownership, as EC2 events and snapshots report them. Parsing
//! (`events`, `snapshot`) produces these; `apply` turns them into marks.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::eni::Eni;
use super::time::UnixTime;

/// One change, stamped with when it happened (the event's own time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// An ENI exists, described (at least partly) by `eni`, holding the
    /// addresses it lists. RunInstances, CreateNetworkInterface.
    EniUp { at: UnixTime, eni: Box<Eni> },
    /// The ENI is gone with all its addresses. DeleteNetworkInterface.
    EniDeleted { at: UnixTime, eni_id: String },
    /// The ENI was attached to an instance. AttachNetworkInterface.
    Attached { at: UnixTime, eni_id: String, instance_id: String, attachment_id: Option<String> },
    /// An attachment ended. DetachNetworkInterface names only the attachment.
    Detached { at: UnixTime, attachment_id: String },
    /// Addresses added to an ENI. AssignPrivateIpAddresses, AssignIpv6Addresses.
    AddressesAssigned { at: UnixTime, eni_id: String, addresses: Vec<IpAddr> },
    /// Addresses removed from an ENI. Unassign*.
    AddressesUnassigned { at: UnixTime, eni_id: String, addresses: Vec<IpAddr> },
    /// A public (Elastic) IP associated with an ENI or an instance's primary
    /// ENI. AssociateAddress.
    PublicAssociated {
        at: UnixTime,
        public_ip: Option<IpAddr>,
        allocation_id: Option<String>,
        association_id: Option<String>,
        eni_id: Option<String>,
        instance_id: Option<String>,
    },
    /// A public IP association ended. DisassociateAddress names the
    /// association (VPC) or the public IP (EC2-Classic style).
    PublicDisassociated { at: UnixTime, association_id: Option<String>, public_ip: Option<IpAddr> },
    /// The instance is going away: its ENIs' addresses are released.
    /// State-change `shutting-down`, `terminated`; TerminateInstances.
    InstanceDown { at: UnixTime, instance_id: String },
    /// The instance stopped: EC2 releases its auto-assigned public IPv4
    /// addresses (another customer may get them); private addresses, IPv6
    /// and Elastic IPs stay with its ENIs. State-change `stopping`,
    /// `stopped`.
    InstanceStopped { at: UnixTime, instance_id: String },
    /// The instance is running again. State-change `running`. A restart
    /// brings a new auto-assigned public address, which only a describe
    /// tells.
    InstanceUp { at: UnixTime, instance_id: String },
}

impl Change {
    pub fn at(&self) -> UnixTime {
        match self {
            Change::EniUp { at, .. }
            | Change::EniDeleted { at, .. }
            | Change::Attached { at, .. }
            | Change::Detached { at, .. }
            | Change::AddressesAssigned { at, .. }
            | Change::AddressesUnassigned { at, .. }
            | Change::PublicAssociated { at, .. }
            | Change::PublicDisassociated { at, .. }
            | Change::InstanceDown { at, .. }
            | Change::InstanceStopped { at, .. }
            | Change::InstanceUp { at, .. } => *at,
        }
    }
}
