//! The VPC flow-log field registry: every field of versions 2 through 8, its
//! AWS (hyphenated) and snake_case names, the version that introduced it and
//! the kind of value it holds. Everything else (format parsing, decoding,
//! JSON output, the enriched schema) is driven from this one table.

use std::fmt;

/// What a field's text may hold, and how it decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Unsigned decimal integer no larger than `max`.
    UInt { max: u64 },
    /// IPv4 or IPv6 address.
    Addr,
    /// `ACCEPT` or `REJECT`.
    Action,
    /// `OK`, `NODATA` or `SKIPDATA`.
    LogStatus,
    /// `ingress` or `egress`.
    Direction,
    /// `IPv4`, `IPv6` or `EFA`.
    AddrType,
    /// An AWS resource id: `prefix` then 1 to [`MAX_ID_SUFFIX`] ASCII
    /// letters and digits (AWS's own are 8 or 17 hex digits). Checked
    /// because ids become table keys and output: an id of megabytes would
    /// be refused downstream and take its batch with it.
    Id { prefix: &'static str },
    /// Any other token without spaces (names, ARNs, account ids), at most
    /// [`MAX_TEXT_BYTES`] long.
    Text,
}

/// The longest id suffix accepted after its prefix.
pub const MAX_ID_SUFFIX: usize = 32;

/// Whether `token` is `prefix` then 1 to [`MAX_ID_SUFFIX`] ASCII letters
/// and digits: the shape of a [`Kind::Id`].
pub fn is_id(prefix: &str, token: &str) -> bool {
    token.strip_prefix(prefix).is_some_and(|suffix| {
        (1..=MAX_ID_SUFFIX).contains(&suffix.len()) && suffix.as_bytes().chunks(8).all(alphanumeric8)
    })
}

/// Whether up to eight bytes are all ASCII letters and digits, checked a
/// word at a time (ids are on every flow: this is on the hot path).
#[inline]
fn alphanumeric8(bytes: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    // Padding with '0' keeps a short tail's missing bytes valid.
    let mut word = [b'0'; 8];
    word[..bytes.len()].copy_from_slice(bytes);
    let w = u64::from_le_bytes(word);
    if w & HI != 0 {
        return false;
    }
    // Per byte, with no carries (every byte is under 0x80): the high bit of
    // x + (0x80 - lo) is set when x >= lo, that of x + (0x7f - hi) when x > hi.
    let in_range = |x: u64, lo: u8, hi: u8| (x + LO * u64::from(0x80 - lo)) & !(x + LO * u64::from(0x7f - hi)) & HI;
    let lower = w | (LO * 0x20);
    (in_range(w, b'0', b'9') | in_range(lower, b'a', b'z')) == HI
}

/// The longest free-text field accepted: ARNs and names are a few hundred
/// bytes at most.
pub const MAX_TEXT_BYTES: usize = 1024;

const ENI: Kind = Kind::Id { prefix: "eni-" };
const VPC: Kind = Kind::Id { prefix: "vpc-" };
const SUBNET: Kind = Kind::Id { prefix: "subnet-" };
const TGW_ATTACH: Kind = Kind::Id { prefix: "tgw-attach-" };

const U8: Kind = Kind::UInt { max: u8::MAX as u64 };
const U16: Kind = Kind::UInt { max: u16::MAX as u64 };
const U64: Kind = Kind::UInt { max: u64::MAX };

macro_rules! fields {
    ($($variant:ident => $name:literal, $snake:literal, $version:literal, $kind:expr;)*) => {
        /// One flow-log field.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Field { $($variant,)* }

        impl Field {
            /// Every field, in AWS's documentation order (by version).
            pub const ALL: &'static [Field] = &[$(Field::$variant,)*];
            /// Number of known fields.
            pub const COUNT: usize = Self::ALL.len();

            /// AWS's hyphenated name, as in `${field-name}`.
            pub const fn name(self) -> &'static str {
                match self { $(Field::$variant => $name,)* }
            }

            /// The snake_case name used in JSON output and the enriched schema.
            pub const fn snake_name(self) -> &'static str {
                match self { $(Field::$variant => $snake,)* }
            }

            /// The flow-log version that introduced the field.
            pub const fn version(self) -> u8 {
                match self { $(Field::$variant => $version,)* }
            }

            /// What the field holds.
            pub const fn kind(self) -> Kind {
                match self { $(Field::$variant => $kind,)* }
            }
        }
    };
}

fields! {
    Version => "version", "version", 2, U8;
    AccountId => "account-id", "account_id", 2, Kind::Text;
    InterfaceId => "interface-id", "interface_id", 2, ENI;
    Srcaddr => "srcaddr", "srcaddr", 2, Kind::Addr;
    Dstaddr => "dstaddr", "dstaddr", 2, Kind::Addr;
    Srcport => "srcport", "srcport", 2, U16;
    Dstport => "dstport", "dstport", 2, U16;
    Protocol => "protocol", "protocol", 2, U8;
    Packets => "packets", "packets", 2, U64;
    Bytes => "bytes", "bytes", 2, U64;
    Start => "start", "start", 2, U64;
    End => "end", "end", 2, U64;
    Action => "action", "action", 2, Kind::Action;
    LogStatus => "log-status", "log_status", 2, Kind::LogStatus;
    VpcId => "vpc-id", "vpc_id", 3, VPC;
    SubnetId => "subnet-id", "subnet_id", 3, SUBNET;
    InstanceId => "instance-id", "instance_id", 3, Kind::Id { prefix: "i-" };
    TcpFlags => "tcp-flags", "tcp_flags", 3, U8;
    Type => "type", "type", 3, Kind::AddrType;
    PktSrcaddr => "pkt-srcaddr", "pkt_srcaddr", 3, Kind::Addr;
    PktDstaddr => "pkt-dstaddr", "pkt_dstaddr", 3, Kind::Addr;
    Region => "region", "region", 4, Kind::Text;
    AzId => "az-id", "az_id", 4, Kind::Text;
    SublocationType => "sublocation-type", "sublocation_type", 4, Kind::Text;
    SublocationId => "sublocation-id", "sublocation_id", 4, Kind::Text;
    PktSrcAwsService => "pkt-src-aws-service", "pkt_src_aws_service", 5, Kind::Text;
    PktDstAwsService => "pkt-dst-aws-service", "pkt_dst_aws_service", 5, Kind::Text;
    FlowDirection => "flow-direction", "flow_direction", 5, Kind::Direction;
    TrafficPath => "traffic-path", "traffic_path", 5, U8;
    ResourceType => "resource-type", "resource_type", 6, Kind::Text;
    TgwId => "tgw-id", "tgw_id", 6, Kind::Id { prefix: "tgw-" };
    TgwAttachmentId => "tgw-attachment-id", "tgw_attachment_id", 6, TGW_ATTACH;
    TgwSrcVpcAccountId => "tgw-src-vpc-account-id", "tgw_src_vpc_account_id", 6, Kind::Text;
    TgwDstVpcAccountId => "tgw-dst-vpc-account-id", "tgw_dst_vpc_account_id", 6, Kind::Text;
    TgwSrcVpcId => "tgw-src-vpc-id", "tgw_src_vpc_id", 6, VPC;
    TgwDstVpcId => "tgw-dst-vpc-id", "tgw_dst_vpc_id", 6, VPC;
    TgwSrcSubnetId => "tgw-src-subnet-id", "tgw_src_subnet_id", 6, SUBNET;
    TgwDstSubnetId => "tgw-dst-subnet-id", "tgw_dst_subnet_id", 6, SUBNET;
    TgwSrcEni => "tgw-src-eni", "tgw_src_eni", 6, ENI;
    TgwDstEni => "tgw-dst-eni", "tgw_dst_eni", 6, ENI;
    TgwSrcAzId => "tgw-src-az-id", "tgw_src_az_id", 6, Kind::Text;
    TgwDstAzId => "tgw-dst-az-id", "tgw_dst_az_id", 6, Kind::Text;
    TgwPairAttachmentId => "tgw-pair-attachment-id", "tgw_pair_attachment_id", 6, TGW_ATTACH;
    PacketsLostNoRoute => "packets-lost-no-route", "packets_lost_no_route", 6, U64;
    PacketsLostBlackhole => "packets-lost-blackhole", "packets_lost_blackhole", 6, U64;
    PacketsLostMtuExceeded => "packets-lost-mtu-exceeded", "packets_lost_mtu_exceeded", 6, U64;
    PacketsLostTtlExpired => "packets-lost-ttl-expired", "packets_lost_ttl_expired", 6, U64;
    EcsClusterArn => "ecs-cluster-arn", "ecs_cluster_arn", 7, Kind::Text;
    EcsClusterName => "ecs-cluster-name", "ecs_cluster_name", 7, Kind::Text;
    EcsContainerInstanceArn => "ecs-container-instance-arn", "ecs_container_instance_arn", 7, Kind::Text;
    EcsContainerInstanceId => "ecs-container-instance-id", "ecs_container_instance_id", 7, Kind::Text;
    EcsContainerId => "ecs-container-id", "ecs_container_id", 7, Kind::Text;
    EcsSecondContainerId => "ecs-second-container-id", "ecs_second_container_id", 7, Kind::Text;
    EcsServiceName => "ecs-service-name", "ecs_service_name", 7, Kind::Text;
    EcsTaskDefinitionArn => "ecs-task-definition-arn", "ecs_task_definition_arn", 7, Kind::Text;
    EcsTaskArn => "ecs-task-arn", "ecs_task_arn", 7, Kind::Text;
    EcsTaskId => "ecs-task-id", "ecs_task_id", 7, Kind::Text;
    RejectReason => "reject-reason", "reject_reason", 8, Kind::Text;
}

impl Field {
    /// Looks a field up by name: AWS's hyphenated spelling, the snake_case
    /// one, or the `${field-name}` placeholder of a CreateFlowLogs format.
    pub fn from_name(name: &str) -> Option<Field> {
        let bare = name.strip_prefix("${").and_then(|n| n.strip_suffix('}')).unwrap_or(name);
        Field::ALL.iter().copied().find(|f| f.name() == bare || f.snake_name() == bare)
    }

    /// Position in [`Field::ALL`], for per-field lookup tables.
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_names_are_the_hyphenated_names_with_underscores() {
        for f in Field::ALL {
            assert_eq!(f.snake_name(), f.name().replace('-', "_"), "{f:?}");
        }
    }

    #[test]
    fn ids_are_checked_byte_by_byte_as_the_word_check_says() {
        for b in 0..=255u8 {
            for len in 1..=MAX_ID_SUFFIX {
                for at in [0, len / 2, len - 1] {
                    let mut suffix = vec![b'a'; len];
                    suffix[at] = b;
                    let token = [b"eni-".as_slice(), &suffix].concat();
                    let Ok(token) = std::str::from_utf8(&token) else { continue };
                    assert_eq!(is_id("eni-", token), b.is_ascii_alphanumeric(), "{token:?}");
                }
            }
        }
        assert!(!is_id("eni-", "eni-"));
        assert!(!is_id("eni-", &format!("eni-{}", "a".repeat(MAX_ID_SUFFIX + 1))));
        assert!(is_id("eni-", &format!("eni-{}", "Z9".repeat(MAX_ID_SUFFIX / 2))));
    }

    #[test]
    fn index_matches_position_in_all() {
        for (i, f) in Field::ALL.iter().enumerate() {
            assert_eq!(f.index(), i);
        }
    }

    #[test]
    fn names_resolve_in_every_spelling() {
        assert_eq!(Field::from_name("log-status"), Some(Field::LogStatus));
        assert_eq!(Field::from_name("log_status"), Some(Field::LogStatus));
        assert_eq!(Field::from_name("${log-status}"), Some(Field::LogStatus));
        assert_eq!(Field::from_name("${log-status"), None);
        assert_eq!(Field::from_name("logstatus"), None);
    }
}
