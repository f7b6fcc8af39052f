//! What is known of one side of a flow, and how surely.

use std::net::IpAddr;

use crate::ipranges::{AwsRange, IpRanges};
use crate::ownership::{is_private, Owner};

use super::schema::SideField;

/// How a side was attributed: the `*_attribution` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Attribution {
    /// An ownership interval covers the flow's start.
    Owner,
    /// The side is the interface that logged the flow: the flow itself is
    /// evidence that the ENI held the address; its details come from what
    /// the table knows of the ENI.
    LoggingEni,
    /// A public address in AWS's published ranges.
    AwsService,
    /// A public address outside AWS's ranges.
    Internet,
    /// Nothing certain is known: no interval covers the time, the address
    /// is private and outside the scope we can see, or the table and the
    /// flow disagree.
    Unattributed,
}

impl Attribution {
    pub const ALL: [Attribution; 5] = [
        Attribution::Owner,
        Attribution::LoggingEni,
        Attribution::AwsService,
        Attribution::Internet,
        Attribution::Unattributed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Attribution::Owner => "owner",
            Attribution::LoggingEni => "logging_eni",
            Attribution::AwsService => "aws_service",
            Attribution::Internet => "internet",
            Attribution::Unattributed => "unattributed",
        }
    }
}

/// One side's attribution, borrowing what it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SideOwner<'a> {
    Owned(&'a Owner),
    LoggingEni(&'a Owner),
    Aws(&'a AwsRange),
    Internet,
    Unattributed,
}

impl<'a> SideOwner<'a> {
    pub fn attribution(&self) -> Attribution {
        match self {
            SideOwner::Owned(_) => Attribution::Owner,
            SideOwner::LoggingEni(_) => Attribution::LoggingEni,
            SideOwner::Aws(_) => Attribution::AwsService,
            SideOwner::Internet => Attribution::Internet,
            SideOwner::Unattributed => Attribution::Unattributed,
        }
    }

    /// The value of one side column; `None` is null.
    pub fn value(&self, field: SideField) -> Option<&'a str> {
        if field == SideField::Attribution {
            return Some(self.attribution().as_str());
        }
        match *self {
            SideOwner::Owned(o) | SideOwner::LoggingEni(o) => match field {
                SideField::App => o.app.as_deref(),
                SideField::Stack => o.stack.as_deref(),
                SideField::Detail => o.detail.as_deref(),
                SideField::Cluster => o.cluster.as_deref(),
                SideField::Asg => o.asg.as_deref(),
                SideField::AccountId => o.account_id.as_deref(),
                SideField::Region => o.region.as_deref(),
                SideField::Az => o.az.as_deref(),
                SideField::VpcId => o.vpc_id.as_deref(),
                SideField::SubnetId => o.subnet_id.as_deref(),
                SideField::InstanceId => o.instance_id.as_deref(),
                SideField::EniId => Some(o.eni_id.as_str()),
                SideField::Kind => Some(o.kind.as_str()),
                SideField::Attribution => unreachable!("handled above"),
            },
            // The AWS service stands in for the app: "api talks to S3".
            SideOwner::Aws(r) => match field {
                SideField::App => Some(r.service.as_str()),
                SideField::Region => Some(r.region.as_str()),
                SideField::Kind => Some("aws_service"),
                _ => None,
            },
            SideOwner::Internet => match field {
                SideField::Kind => Some("internet"),
                _ => None,
            },
            SideOwner::Unattributed => None,
        }
    }
}

/// What the enricher knows about one side before deciding.
#[derive(Debug, Clone, Copy)]
pub struct SideFacts<'a> {
    pub address: Option<IpAddr>,
    /// The table's owner of the address at the flow's start.
    pub table_owner: Option<&'a Owner>,
    /// This side is the interface that logged the flow.
    pub is_logging_side: bool,
    /// The logging interface's id (from the record).
    pub interface_id: Option<&'a str>,
    /// What the table knows of the logging ENI (only for the logging side).
    pub logging_eni: Option<&'a Owner>,
}

/// Decides one side. A wrong owner is worse than none: on the logging side
/// the table's owner must be the logging ENI, or it is not believed.
pub fn decide<'a>(facts: SideFacts<'a>, ranges: Option<&'a IpRanges>) -> SideOwner<'a> {
    let Some(address) = facts.address else { return SideOwner::Unattributed };
    if let Some(owner) = facts.table_owner {
        let contradicts = facts.is_logging_side && facts.interface_id.is_some_and(|eni| eni != owner.eni_id);
        if !contradicts {
            return SideOwner::Owned(owner);
        }
    }
    if facts.is_logging_side {
        if let Some(owner) = facts.logging_eni {
            return SideOwner::LoggingEni(owner);
        }
        return SideOwner::Unattributed;
    }
    if is_private(address) {
        return SideOwner::Unattributed;
    }
    match ranges.and_then(|r| r.lookup(address)) {
        Some(range) => SideOwner::Aws(range),
        // Without the ranges loaded, "internet" cannot be told from AWS.
        None if ranges.is_some() => SideOwner::Internet,
        None => SideOwner::Unattributed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ownership::OwnerKind;

    fn facts<'a>(addr: &str, table: Option<&'a Owner>, logging: bool, eni: Option<&'a Owner>) -> SideFacts<'a> {
        SideFacts {
            address: Some(addr.parse().unwrap()),
            table_owner: table,
            is_logging_side: logging,
            interface_id: Some("eni-log"),
            logging_eni: eni,
        }
    }

    #[test]
    fn the_table_decides_unless_it_contradicts_the_flow() {
        let log = Owner::new("eni-log", OwnerKind::Instance);
        let other = Owner::new("eni-other", OwnerKind::Instance);
        assert_eq!(decide(facts("10.0.0.1", Some(&other), false, None), None), SideOwner::Owned(&other));
        assert_eq!(decide(facts("10.0.0.1", Some(&log), true, Some(&log)), None), SideOwner::Owned(&log));
        // The table says another ENI held the logging ENI's own address.
        assert_eq!(decide(facts("10.0.0.1", Some(&other), true, Some(&log)), None), SideOwner::LoggingEni(&log));
        assert_eq!(decide(facts("10.0.0.1", Some(&other), true, None), None), SideOwner::Unattributed);
        assert_eq!(decide(facts("10.0.0.1", None, true, Some(&log)), None), SideOwner::LoggingEni(&log));
    }

    #[test]
    fn public_addresses_fall_back_to_aws_ranges_then_internet() {
        let doc = r#"{"prefixes":[{"ip_prefix":"52.94.0.0/16","region":"us-east-1","service":"DYNAMODB"}],"ipv6_prefixes":[]}"#;
        let ranges = IpRanges::from_json(doc.as_bytes()).unwrap();
        let s = decide(facts("52.94.1.1", None, false, None), Some(&ranges));
        assert_eq!(s.value(SideField::App), Some("DYNAMODB"));
        assert_eq!(s.value(SideField::Kind), Some("aws_service"));
        assert_eq!(s.value(SideField::Attribution), Some("aws_service"));
        let s = decide(facts("8.8.8.8", None, false, None), Some(&ranges));
        assert_eq!((s.value(SideField::Kind), s.value(SideField::App)), (Some("internet"), None));
        assert_eq!(decide(facts("8.8.8.8", None, false, None), None), SideOwner::Unattributed);
        // Private and unknown: never guessed.
        let s = decide(facts("10.9.9.9", None, false, None), Some(&ranges));
        assert_eq!(s.value(SideField::Attribution), Some("unattributed"));
        assert_eq!(s.value(SideField::App), None);
    }
}
