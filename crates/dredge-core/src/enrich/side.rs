//! The attribution policy: which side of a flow is the interface that
//! logged it, what is known of each side, and how surely. A wrong owner is
//! worse than none, so every rule here errs towards `unattributed`.

use std::net::IpAddr;

use crate::flowlog::FlowDirection;
use crate::ipranges::{AwsRange, IpRanges};
use crate::ownership::{is_private, Owner, UnixTime};

use super::json::Sides;
use super::schema::{Side, SideField};

/// How a side was attributed: the `*_attribution` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Attribution {
    /// An ownership interval covers the flow's start, and the table's
    /// knowledge of the address reaches it (`ownership::known_at`).
    Owner,
    /// As `Owner`, decided on a second chance: the table could not vouch
    /// for the owner when the flow first came, and could later.
    OwnerAfterRetry,
    /// The side is the interface that logged the flow: the flow itself is
    /// evidence that the ENI held the address; its details come from what
    /// the table knows of the ENI.
    LoggingEni,
    /// A public address in AWS's published ranges.
    AwsService,
    /// A public address outside AWS's ranges.
    Internet,
    /// Nothing certain is known: no interval covers the time, the address
    /// is private and outside the scope we can see, the table and the flow
    /// disagree, or the table could not vouch for its owner within the
    /// second chance's wait.
    Unattributed,
}

impl Attribution {
    pub const ALL: [Attribution; 6] = [
        Attribution::Owner,
        Attribution::OwnerAfterRetry,
        Attribution::LoggingEni,
        Attribution::AwsService,
        Attribution::Internet,
        Attribution::Unattributed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Attribution::Owner => "owner",
            Attribution::OwnerAfterRetry => "owner_after_retry",
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
    OwnedAfterRetry(&'a Owner),
    LoggingEni(&'a Owner),
    Aws(&'a AwsRange),
    Internet,
    Unattributed,
    /// The table names an owner it cannot vouch for yet: decided later, or
    /// written `unattributed` ([`SideOwner::settled`]).
    NotYet,
}

impl<'a> SideOwner<'a> {
    pub fn attribution(&self) -> Attribution {
        match self {
            SideOwner::Owned(_) => Attribution::Owner,
            SideOwner::OwnedAfterRetry(_) => Attribution::OwnerAfterRetry,
            SideOwner::LoggingEni(_) => Attribution::LoggingEni,
            SideOwner::Aws(_) => Attribution::AwsService,
            SideOwner::Internet => Attribution::Internet,
            SideOwner::Unattributed | SideOwner::NotYet => Attribution::Unattributed,
        }
    }

    pub fn is_pending(&self) -> bool {
        *self == SideOwner::NotYet
    }

    /// The side once there is no more waiting: still undecided is
    /// unattributed.
    pub fn settled(self) -> SideOwner<'a> {
        match self {
            SideOwner::NotYet => SideOwner::Unattributed,
            other => other,
        }
    }

    /// A side decided on a second chance.
    pub fn retried(self) -> SideOwner<'a> {
        match self {
            SideOwner::Owned(o) => SideOwner::OwnedAfterRetry(o),
            other => other,
        }
    }

    /// The value of one side column; `None` is null.
    pub fn value(&self, field: SideField) -> Option<&'a str> {
        if field == SideField::Attribution {
            return Some(self.attribution().as_str());
        }
        match *self {
            SideOwner::Owned(o) | SideOwner::OwnedAfterRetry(o) | SideOwner::LoggingEni(o) => match field {
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
            SideOwner::Unattributed | SideOwner::NotYet => None,
        }
    }
}

/// What the enricher knows about one side before deciding.
#[derive(Debug, Clone, Copy)]
pub struct SideFacts<'a> {
    pub address: Option<IpAddr>,
    /// The table's owner of the address at the flow's start.
    pub table_owner: Option<&'a Owner>,
    /// Whether the table's knowledge of the address reaches the flow's
    /// start: for its owner (`ownership::known_at`), or for nobody
    /// (`ownership::known_free_at`).
    pub table_known: bool,
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
            return if facts.table_known { SideOwner::Owned(owner) } else { SideOwner::NotYet };
        }
    }
    if facts.is_logging_side {
        if let Some(owner) = facts.logging_eni {
            return SideOwner::LoggingEni(owner);
        }
        return SideOwner::Unattributed;
    }
    // Nobody held it, as far as the table knows; but the fleet did before,
    // and who took it next may not have reached the table yet.
    if facts.table_owner.is_none() && !facts.table_known {
        return SideOwner::NotYet;
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

/// What the table knows of the ENI that logged a flow.
#[derive(Debug, Clone, Copy)]
pub struct LoggingEni<'a> {
    pub owner: &'a Owner,
    /// Every address the ENI is known to hold.
    pub addresses: &'a [IpAddr],
    /// When the ENI was deleted, if it was.
    pub deleted_at: Option<UnixTime>,
    /// Since when `owner` holds ([`EniRecord::attached_since`]): the ENI
    /// may have been attached elsewhere before (it moved between
    /// applications), so earlier flows do not take it.
    ///
    /// [`EniRecord::attached_since`]: crate::ownership::EniRecord::attached_since
    pub since: UnixTime,
}

/// What is known of a whole flow before its sides are decided.
#[derive(Debug, Clone, Copy)]
pub struct FlowFacts<'a> {
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    /// The flow's start: the time both sides are attributed at. Without
    /// one, nothing is attributed.
    pub start: Option<UnixTime>,
    /// `interface-id`: the ENI that logged the flow.
    pub interface_id: Option<&'a str>,
    pub direction: Option<FlowDirection>,
    /// What the table knows of `interface_id`, if anything.
    pub logging_eni: Option<LoggingEni<'a>>,
    /// The table's owner of each address at the flow's start, and whether
    /// the table vouches for it then.
    pub src_owner: Option<&'a Owner>,
    pub dst_owner: Option<&'a Owner>,
    pub src_known: bool,
    pub dst_known: bool,
}

/// Decides both sides of a flow at its start. The logging ENI's record is
/// believed only while the ENI existed; the logging side is the one whose
/// address the ENI holds, else the one the table gives the ENI, else the
/// one `flow-direction` names.
pub fn attribute<'a>(flow: &FlowFacts<'a>, ranges: Option<&'a IpRanges>) -> Sides<'a> {
    if flow.start.is_none() {
        return Sides { src: SideOwner::Unattributed, dst: SideOwner::Unattributed };
    }
    let eni = flow.logging_eni.filter(|e| match (e.deleted_at, flow.start) {
        (Some(deleted), Some(start)) => start < deleted,
        _ => true,
    });
    let logging = logging_side(flow, eni);
    let side = |which: Side, address, table_owner, table_known| {
        let is_logging_side = logging == Some(which);
        decide(
            SideFacts {
                address,
                table_owner,
                table_known,
                is_logging_side,
                interface_id: flow.interface_id,
                logging_eni: match eni {
                    Some(e) if is_logging_side && flow.start.is_some_and(|s| s >= e.since) => Some(e.owner),
                    _ => None,
                },
            },
            ranges,
        )
    };
    Sides {
        src: side(Side::Src, flow.src, flow.src_owner, flow.src_known),
        dst: side(Side::Dst, flow.dst, flow.dst_owner, flow.dst_known),
    }
}

/// Which side is the interface that logged the flow: by the ENI's known
/// addresses, then by the table, then by `flow-direction`.
pub fn logging_side(flow: &FlowFacts<'_>, eni: Option<LoggingEni<'_>>) -> Option<Side> {
    if let Some(eni) = eni {
        // Both listed: the record is stale (an address it released talks to
        // it), so it says nothing.
        let holds = |a: Option<IpAddr>| a.is_some_and(|a| eni.addresses.contains(&a));
        match (holds(flow.src), holds(flow.dst)) {
            (true, false) => return Some(Side::Src),
            (false, true) => return Some(Side::Dst),
            _ => {}
        }
    }
    if let Some(id) = flow.interface_id {
        if flow.src_owner.is_some_and(|o| o.eni_id == id) {
            return Some(Side::Src);
        }
        if flow.dst_owner.is_some_and(|o| o.eni_id == id) {
            return Some(Side::Dst);
        }
    }
    match flow.direction {
        Some(FlowDirection::Egress) => Some(Side::Src),
        Some(FlowDirection::Ingress) => Some(Side::Dst),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ownership::OwnerKind;

    fn flow<'a>(src: &str, dst: &str) -> FlowFacts<'a> {
        FlowFacts {
            src: Some(src.parse().unwrap()),
            dst: Some(dst.parse().unwrap()),
            start: Some(UnixTime(1000)),
            interface_id: Some("eni-log"),
            direction: None,
            logging_eni: None,
            src_owner: None,
            dst_owner: None,
            src_known: true,
            dst_known: true,
        }
    }

    #[test]
    fn the_logging_side_by_addresses_then_table_then_direction() {
        let log = Owner::new("eni-log", OwnerKind::Instance);
        let addresses = ["10.0.0.2".parse().unwrap()];
        let eni = LoggingEni { owner: &log, addresses: &addresses, deleted_at: None, since: UnixTime(0) };
        // The ENI holds the destination: the destination logged it.
        let f = FlowFacts { logging_eni: Some(eni), ..flow("10.0.0.1", "10.0.0.2") };
        assert_eq!(logging_side(&f, f.logging_eni), Some(Side::Dst));
        let s = attribute(&f, None);
        assert_eq!((s.src, s.dst), (SideOwner::Unattributed, SideOwner::LoggingEni(&log)));
        // The ENI's record lists both (one of them released): the table
        // tells.
        let both = ["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()];
        let stale = LoggingEni { owner: &log, addresses: &both, deleted_at: None, since: UnixTime(0) };
        let f = FlowFacts { logging_eni: Some(stale), dst_owner: Some(&log), ..flow("10.0.0.1", "10.0.0.2") };
        assert_eq!(logging_side(&f, f.logging_eni), Some(Side::Dst));
        // The table gives the source to the logging ENI.
        let f = FlowFacts { src_owner: Some(&log), ..flow("10.0.0.1", "10.0.0.2") };
        assert_eq!(logging_side(&f, None), Some(Side::Src));
        // Only flow-direction says.
        let f = FlowFacts { direction: Some(FlowDirection::Ingress), ..flow("10.0.0.1", "10.0.0.2") };
        assert_eq!(logging_side(&f, None), Some(Side::Dst));
        assert_eq!(logging_side(&flow("10.0.0.1", "10.0.0.2"), None), None);
    }

    #[test]
    fn a_deleted_eni_and_a_flow_without_start_say_nothing() {
        let log = Owner::new("eni-log", OwnerKind::Instance);
        let addresses = ["10.0.0.1".parse().unwrap()];
        let deleted =
            LoggingEni { owner: &log, addresses: &addresses, deleted_at: Some(UnixTime(1000)), since: UnixTime(0) };
        let f = FlowFacts { logging_eni: Some(deleted), ..flow("10.0.0.1", "10.0.0.2") };
        assert_eq!(attribute(&f, None).src, SideOwner::Unattributed, "deleted at the flow's start");
        let alive = LoggingEni { deleted_at: Some(UnixTime(1001)), ..deleted };
        let f = FlowFacts { logging_eni: Some(alive), ..flow("10.0.0.1", "10.0.0.2") };
        assert_eq!(attribute(&f, None).src, SideOwner::LoggingEni(&log));
        // Attached as it is now only since after the flow's start (it
        // moved between instances): the record's owner is not the flow's,
        // though it still tells the logging side.
        let moved = LoggingEni { since: UnixTime(1001), ..alive };
        let f = FlowFacts { logging_eni: Some(moved), ..flow("10.0.0.1", "10.0.0.2") };
        assert_eq!(logging_side(&f, f.logging_eni), Some(Side::Src));
        assert_eq!(attribute(&f, None).src, SideOwner::Unattributed, "attached elsewhere at the flow's start");
        let other = Owner::new("eni-other", OwnerKind::Instance);
        let f =
            FlowFacts { start: None, src_owner: Some(&other), dst_owner: Some(&other), ..flow("10.0.0.1", "10.0.0.2") };
        let s = attribute(&f, None);
        assert_eq!((s.src, s.dst), (SideOwner::Unattributed, SideOwner::Unattributed));
    }

    fn facts<'a>(addr: &str, table: Option<&'a Owner>, logging: bool, eni: Option<&'a Owner>) -> SideFacts<'a> {
        SideFacts {
            address: Some(addr.parse().unwrap()),
            table_owner: table,
            table_known: true,
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
    fn an_owner_the_table_cannot_vouch_for_waits_then_is_unattributed() {
        let other = Owner::new("eni-other", OwnerKind::Instance);
        let doc =
            r#"{"prefixes":[{"ip_prefix":"54.0.0.0/8","region":"us-east-1","service":"EC2"}],"ipv6_prefixes":[]}"#;
        let ranges = IpRanges::from_json(doc.as_bytes()).unwrap();
        for addr in ["10.0.0.1", "54.1.1.1"] {
            let f = SideFacts { table_known: false, ..facts(addr, Some(&other), false, None) };
            // Not a public range's service either: the fleet held it then.
            assert_eq!(decide(f, Some(&ranges)), SideOwner::NotYet);
            assert_eq!(SideOwner::NotYet.settled(), SideOwner::Unattributed);
            assert_eq!(SideOwner::NotYet.value(SideField::Attribution), Some("unattributed"));
        }
        // Nobody, after the fleet held it: who took it next is not known yet.
        let f = SideFacts { table_known: false, ..facts("54.1.1.1", None, false, None) };
        assert_eq!(decide(f, Some(&ranges)), SideOwner::NotYet);
        let later = decide(facts("10.0.0.1", Some(&other), false, None), None).retried();
        assert_eq!(later, SideOwner::OwnedAfterRetry(&other));
        assert_eq!(later.value(SideField::Attribution), Some("owner_after_retry"));
        assert_eq!(later.value(SideField::EniId), Some("eni-other"));
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
