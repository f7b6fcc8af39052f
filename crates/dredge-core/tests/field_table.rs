//! The field table of `shared/reference/FORMATS.md` ("VPC flow log records"),
//! transcribed as data, checked against the `Field` registry: every name
//! resolves, every version matches, nothing is missing or extra, and the
//! kinds of the representative fields are right.

use std::collections::BTreeSet;

use dredge_core::flowlog::{Field, Format, Kind, DEFAULT_FIELDS};

/// FORMATS.md, table "Fields by the version that introduced them", in the
/// table's order.
const TABLE: &[(u8, &str)] = &[
    (
        2,
        "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status",
    ),
    (3, "vpc-id subnet-id instance-id tcp-flags type pkt-srcaddr pkt-dstaddr"),
    (4, "region az-id sublocation-type sublocation-id"),
    (5, "pkt-src-aws-service pkt-dst-aws-service flow-direction traffic-path"),
    (
        6,
        "resource-type tgw-id tgw-attachment-id tgw-src-vpc-account-id tgw-dst-vpc-account-id tgw-src-vpc-id \
         tgw-dst-vpc-id tgw-src-subnet-id tgw-dst-subnet-id tgw-src-eni tgw-dst-eni tgw-src-az-id tgw-dst-az-id \
         tgw-pair-attachment-id packets-lost-no-route packets-lost-blackhole packets-lost-mtu-exceeded \
         packets-lost-ttl-expired",
    ),
    (
        7,
        "ecs-cluster-arn ecs-cluster-name ecs-container-instance-arn ecs-container-instance-id ecs-container-id \
         ecs-second-container-id ecs-service-name ecs-task-definition-arn ecs-task-arn ecs-task-id",
    ),
    (8, "reject-reason"),
];

/// Every (version, hyphenated name) of the table, in order.
fn table_rows() -> Vec<(u8, &'static str)> {
    TABLE.iter().flat_map(|&(version, names)| names.split_ascii_whitespace().map(move |n| (version, n))).collect()
}

fn lookup(name: &str) -> Field {
    Field::from_name(name).unwrap_or_else(|| panic!("`{name}` is in FORMATS.md but not in the registry"))
}

#[test]
fn table_has_58_fields_per_version_counts() {
    let counts: Vec<(u8, usize)> =
        TABLE.iter().map(|&(v, names)| (v, names.split_ascii_whitespace().count())).collect();
    assert_eq!(counts, vec![(2, 14), (3, 7), (4, 4), (5, 4), (6, 18), (7, 10), (8, 1)]);
    assert_eq!(table_rows().len(), 58);
    assert_eq!(Field::COUNT, 58);
    assert_eq!(Field::ALL.len(), 58);
}

#[test]
fn every_table_name_resolves_with_its_version_and_spelling() {
    for (version, name) in table_rows() {
        let field = lookup(name);
        assert_eq!(field.name(), name, "hyphenated name of {field:?}");
        assert_eq!(field.version(), version, "version of `{name}`");
        assert_eq!(field.snake_name(), name.replace('-', "_"), "snake_case name of `{name}`");
        assert_eq!(field.to_string(), name, "Display of {field:?}");
        // Every spelling a header or a CreateFlowLogs format may use.
        assert_eq!(Field::from_name(&name.replace('-', "_")), Some(field), "snake spelling of `{name}`");
        assert_eq!(Field::from_name(&format!("${{{name}}}")), Some(field), "placeholder of `{name}`");
    }
}

#[test]
fn snake_names_have_no_hyphens_and_are_distinct() {
    let mut seen = BTreeSet::new();
    for f in Field::ALL {
        let snake = f.snake_name();
        assert!(!snake.contains('-'), "{snake}");
        assert!(snake.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{snake} is not lower snake_case");
        assert!(seen.insert(snake), "{snake} appears twice");
    }
}

#[test]
fn table_and_registry_hold_exactly_the_same_fields_in_the_same_order() {
    let from_table: Vec<Field> = table_rows().into_iter().map(|(_, n)| lookup(n)).collect();
    let table_set: BTreeSet<Field> = from_table.iter().copied().collect();
    let registry_set: BTreeSet<Field> = Field::ALL.iter().copied().collect();
    assert_eq!(table_set.len(), 58, "the table names a field twice");
    assert_eq!(table_set, registry_set);
    // Field::ALL is documented as "AWS's documentation order (by version)".
    assert_eq!(from_table, Field::ALL);
    // And versions never decrease along Field::ALL.
    assert!(Field::ALL.windows(2).all(|w| w[0].version() <= w[1].version()));
}

#[test]
fn names_outside_the_table_do_not_resolve() {
    for name in [
        "",
        "Version",
        "SRCADDR",
        "src-addr",
        "log_status ",
        "${srcaddr",
        "srcaddr}",
        "$srcaddr",
        "${ srcaddr }",
        "traffic_path-",
        // Fields AWS documents beyond FORMATS.md, which the registry does not know.
        "resource-id",
        "encryption-status",
        // Alibaba Cloud / GCP names.
        "eni-id",
        "vswitch-id",
    ] {
        assert_eq!(Field::from_name(name), None, "`{name}` should not resolve");
    }
}

#[test]
fn default_v2_format_is_the_version_2_row_in_order() {
    let v2: Vec<Field> = TABLE[0].1.split_ascii_whitespace().map(lookup).collect();
    assert_eq!(DEFAULT_FIELDS.to_vec(), v2);
    let default = Format::default_v2();
    assert_eq!(default.fields(), &v2[..]);
    assert_eq!(default.version(), 2);
    assert_eq!(default.to_string(), TABLE[0].1);
    assert_eq!(Format::default(), default);
    for (i, f) in v2.iter().enumerate() {
        assert_eq!(default.position(*f), Some(i));
    }
    assert_eq!(default.position(Field::VpcId), None);
}

#[test]
fn format_version_is_the_highest_field_version() {
    for &(version, names) in TABLE {
        // The row alone, and the row with version-2 fields around it.
        let row = Format::parse(names).unwrap();
        assert_eq!(row.version(), version, "{names}");
        if version > 2 {
            let mixed = Format::parse(&format!("srcaddr {names} log-status")).unwrap();
            assert_eq!(mixed.version(), version, "{names}");
        }
    }
    let all = Format::new(Field::ALL.to_vec()).unwrap();
    assert_eq!(all.version(), 8);
    assert_eq!(all.len(), 58);
}

#[test]
fn representative_kinds() {
    const U8: Kind = Kind::UInt { max: 255 };
    const U16: Kind = Kind::UInt { max: 65_535 };
    const U64: Kind = Kind::UInt { max: u64::MAX };
    let expect = [
        ("version", U8),
        ("srcport", U16),
        ("dstport", U16),
        ("protocol", U8),
        ("packets", U64),
        ("bytes", U64),
        ("start", U64),
        ("end", U64),
        ("tcp-flags", U8),
        ("traffic-path", U8),
        ("packets-lost-no-route", U64),
        ("packets-lost-blackhole", U64),
        ("packets-lost-mtu-exceeded", U64),
        ("packets-lost-ttl-expired", U64),
        ("srcaddr", Kind::Addr),
        ("dstaddr", Kind::Addr),
        ("pkt-srcaddr", Kind::Addr),
        ("pkt-dstaddr", Kind::Addr),
        ("action", Kind::Action),
        ("log-status", Kind::LogStatus),
        ("flow-direction", Kind::Direction),
        ("type", Kind::AddrType),
        ("account-id", Kind::Text),
        ("interface-id", Kind::Id { prefix: "eni-" }),
        ("vpc-id", Kind::Id { prefix: "vpc-" }),
        ("subnet-id", Kind::Id { prefix: "subnet-" }),
        ("instance-id", Kind::Id { prefix: "i-" }),
        ("tgw-id", Kind::Id { prefix: "tgw-" }),
        ("tgw-attachment-id", Kind::Id { prefix: "tgw-attach-" }),
        ("tgw-pair-attachment-id", Kind::Id { prefix: "tgw-attach-" }),
        ("tgw-src-eni", Kind::Id { prefix: "eni-" }),
        ("tgw-dst-subnet-id", Kind::Id { prefix: "subnet-" }),
        ("region", Kind::Text),
        ("pkt-src-aws-service", Kind::Text),
        ("resource-type", Kind::Text),
        ("tgw-src-vpc-account-id", Kind::Text),
        ("ecs-task-arn", Kind::Text),
        ("reject-reason", Kind::Text),
    ];
    for (name, kind) in expect {
        assert_eq!(lookup(name).kind(), kind, "kind of `{name}`");
    }
}

#[test]
fn every_field_has_a_kind_consistent_with_its_name() {
    for f in Field::ALL {
        let name = f.name();
        let kind = f.kind();
        if name.ends_with("addr") {
            assert_eq!(kind, Kind::Addr, "{name}");
        } else if name.ends_with("port") {
            assert_eq!(kind, Kind::UInt { max: 65_535 }, "{name}");
        } else if name.ends_with("-id") || name.ends_with("-arn") || name.ends_with("-eni") || name.ends_with("-name") {
            assert!(matches!(kind, Kind::Text | Kind::Id { .. }), "{name}");
        } else if name.starts_with("packets") || name == "bytes" || name == "start" || name == "end" {
            assert_eq!(kind, Kind::UInt { max: u64::MAX }, "{name}");
        }
    }
    // Only these fields are not free text or integers.
    let keywords: Vec<&str> = Field::ALL
        .iter()
        .filter(|f| !matches!(f.kind(), Kind::Text | Kind::Id { .. } | Kind::UInt { .. } | Kind::Addr))
        .map(|f| f.name())
        .collect();
    assert_eq!(keywords, ["action", "log-status", "type", "flow-direction"]);
}

#[test]
fn index_is_the_position_in_all() {
    for (i, f) in Field::ALL.iter().enumerate() {
        assert_eq!(f.index(), i);
    }
}
