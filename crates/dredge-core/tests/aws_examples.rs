//! AWS documentation examples of flow-log records, versions 2 to 8, decoded
//! field by field.
//!
//! Versions 2, 3 and 5 (and the version-4 fields, which AWS only shows inside
//! the version-5 example) are copied verbatim from the VPC User Guide, format
//! lines included. The Transit Gateway guide (version 6), the ECS fields
//! (version 7) and `reject-reason` (version 8) are documented as fields
//! only, without an example record: those records are built from the
//! documented field list and values and are marked as such.

use std::net::IpAddr;

use dredge_core::flowlog::{
    Action, AddrType, DecodeOptions, Decoder, Field, FlowDirection, Format, Item, LineError, LogStatus, PayloadKind,
    Record, Value,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Decodes `line` with `format` and hands the record to `check`.
fn with_record(format: &Format, line: &str, check: impl FnOnce(Record<'_, '_>)) {
    let mut values = Vec::new();
    let record = format.decode(line, &mut values).unwrap_or_else(|e| panic!("{e}: {line}"));
    check(record);
}

/// The record as JSON, through `Record::write_json`.
fn json(format: &Format, line: &str) -> serde_json::Map<String, serde_json::Value> {
    let mut values = Vec::new();
    let record = format.decode(line, &mut values).unwrap();
    let mut out = Vec::new();
    record.write_json(&mut out);
    match serde_json::from_slice(&out).unwrap() {
        serde_json::Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// Decodes a whole payload, returning every item as `Ok(values rendered
/// back to text)` or `Err(error)`, with the payload kind and stats.
fn decode_payload(bytes: &[u8]) -> (PayloadKind, dredge_core::flowlog::DecodeStats, Vec<Result<String, LineError>>) {
    let decoder = Decoder::new(DecodeOptions::default());
    let mut items = Vec::new();
    let (kind, stats) = decoder
        .decode(bytes, &mut |item| match item {
            Item::Record { record, .. } => {
                items.push(Ok(record.iter().map(|(_, v)| v.to_string()).collect::<Vec<_>>().join(" ")))
            }
            Item::Rejected { error, .. } => items.push(Err(error)),
        })
        .unwrap();
    (kind, stats, items)
}

// ---------------------------------------------------------------------------
// Version 2: the default format.
// https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-records-examples.html
// ("Accepted and rejected traffic", "No data and skipped records",
// "Security group and network ACL rules", "IPv6 traffic")
// ---------------------------------------------------------------------------

const V2_SSH_ACCEPT: &str =
    "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK";
const V2_RDP_REJECT: &str =
    "2 123456789010 eni-1235b8ca123456789 172.31.9.69 172.31.9.12 49761 3389 6 20 4249 1418530010 1418530070 REJECT OK";
const V2_NODATA: &str = "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA";
const V2_SKIPDATA: &str = "2 123456789010 eni-11111111aaaaaaaaa - - - - - - - 1431280876 1431280934 - SKIPDATA";
const V2_PING_ACCEPT: &str =
    "2 123456789010 eni-1235b8ca123456789 203.0.113.12 172.31.16.139 0 0 1 4 336 1432917027 1432917142 ACCEPT OK";
const V2_PING_REJECT: &str =
    "2 123456789010 eni-1235b8ca123456789 172.31.16.139 203.0.113.12 0 0 1 4 336 1432917094 1432917142 REJECT OK";
const V2_IPV6_SSH: &str = "2 123456789010 eni-1235b8ca123456789 2001:db8:1234:a100:8d6e:3477:df66:f105 \
                           2001:db8:1234:a102:3304:8879:34cf:4071 34892 22 6 54 8855 1477913708 1477913820 ACCEPT OK";

#[test]
fn v2_accepted_ssh() {
    with_record(&Format::default_v2(), V2_SSH_ACCEPT, |r| {
        assert_eq!(r.u64(Field::Version), Some(2));
        assert_eq!(r.text(Field::AccountId), Some("123456789010"));
        assert_eq!(r.text(Field::InterfaceId), Some("eni-1235b8ca123456789"));
        assert_eq!(r.addr(Field::Srcaddr), Some(ip("172.31.16.139")));
        assert_eq!(r.addr(Field::Dstaddr), Some(ip("172.31.16.21")));
        assert_eq!(r.u64(Field::Srcport), Some(20641));
        assert_eq!(r.u64(Field::Dstport), Some(22));
        assert_eq!(r.u64(Field::Protocol), Some(6));
        assert_eq!(r.u64(Field::Packets), Some(20));
        assert_eq!(r.u64(Field::Bytes), Some(4249));
        assert_eq!(r.u64(Field::Start), Some(1418530010));
        assert_eq!(r.u64(Field::End), Some(1418530070));
        assert_eq!(r.action(), Some(Action::Accept));
        assert_eq!(r.log_status(), Some(LogStatus::Ok));
        assert!(!r.is_status_only());
        // Fields outside the default format are absent, not null.
        assert_eq!(r.get(Field::VpcId), None);
        assert_eq!(r.get(Field::TcpFlags), None);
    });
}

#[test]
fn v2_rejected_rdp() {
    with_record(&Format::default_v2(), V2_RDP_REJECT, |r| {
        assert_eq!(r.addr(Field::Srcaddr), Some(ip("172.31.9.69")));
        assert_eq!(r.addr(Field::Dstaddr), Some(ip("172.31.9.12")));
        assert_eq!(r.u64(Field::Srcport), Some(49761));
        assert_eq!(r.u64(Field::Dstport), Some(3389));
        assert_eq!(r.u64(Field::Protocol), Some(6));
        assert_eq!(r.action(), Some(Action::Reject));
        assert_eq!(r.log_status(), Some(LogStatus::Ok));
    });
}

#[test]
fn v2_nodata_and_skipdata_carry_nulls() {
    for (line, eni, status) in [
        (V2_NODATA, "eni-1235b8ca123456789", LogStatus::NoData),
        (V2_SKIPDATA, "eni-11111111aaaaaaaaa", LogStatus::SkipData),
    ] {
        with_record(&Format::default_v2(), line, |r| {
            assert_eq!(r.text(Field::InterfaceId), Some(eni));
            for f in [
                Field::Srcaddr,
                Field::Dstaddr,
                Field::Srcport,
                Field::Dstport,
                Field::Protocol,
                Field::Packets,
                Field::Bytes,
                Field::Action,
            ] {
                assert_eq!(r.get(f), Some(Value::Null), "{f} in {line}");
            }
            assert_eq!(r.u64(Field::Start), Some(1431280876));
            assert_eq!(r.u64(Field::End), Some(1431280934));
            assert_eq!(r.log_status(), Some(status));
            assert_eq!(r.action(), None);
            assert!(r.is_status_only());
        });
        let obj = json(&Format::default_v2(), line);
        assert_eq!(obj.len(), 14);
        assert_eq!(obj["srcaddr"], serde_json::Value::Null);
        assert_eq!(obj["packets"], serde_json::Value::Null);
        assert_eq!(obj["action"], serde_json::Value::Null);
        assert_eq!(obj["log_status"], status.as_str());
    }
}

#[test]
fn v2_icmp_ping_through_stateless_acl() {
    with_record(&Format::default_v2(), V2_PING_ACCEPT, |r| {
        assert_eq!(r.addr(Field::Srcaddr), Some(ip("203.0.113.12")));
        assert_eq!(r.addr(Field::Dstaddr), Some(ip("172.31.16.139")));
        // ICMP has no ports; AWS writes 0, not `-`.
        assert_eq!(r.u64(Field::Srcport), Some(0));
        assert_eq!(r.u64(Field::Dstport), Some(0));
        assert_eq!(r.u64(Field::Protocol), Some(1));
        assert_eq!(r.u64(Field::Packets), Some(4));
        assert_eq!(r.u64(Field::Bytes), Some(336));
        assert_eq!(r.u64(Field::Start), Some(1432917027));
        assert_eq!(r.action(), Some(Action::Accept));
    });
    with_record(&Format::default_v2(), V2_PING_REJECT, |r| {
        assert_eq!(r.addr(Field::Srcaddr), Some(ip("172.31.16.139")));
        assert_eq!(r.addr(Field::Dstaddr), Some(ip("203.0.113.12")));
        assert_eq!(r.u64(Field::Start), Some(1432917094));
        assert_eq!(r.u64(Field::End), Some(1432917142));
        assert_eq!(r.action(), Some(Action::Reject));
    });
}

#[test]
fn v2_ipv6_ssh() {
    with_record(&Format::default_v2(), V2_IPV6_SSH, |r| {
        assert_eq!(r.addr(Field::Srcaddr), Some(ip("2001:db8:1234:a100:8d6e:3477:df66:f105")));
        assert_eq!(r.addr(Field::Dstaddr), Some(ip("2001:db8:1234:a102:3304:8879:34cf:4071")));
        assert!(r.addr(Field::Srcaddr).unwrap().is_ipv6());
        assert_eq!(r.u64(Field::Srcport), Some(34892));
        assert_eq!(r.u64(Field::Dstport), Some(22));
        assert_eq!(r.u64(Field::Packets), Some(54));
        assert_eq!(r.u64(Field::Bytes), Some(8855));
        assert_eq!(r.u64(Field::Start), Some(1477913708));
        assert_eq!(r.u64(Field::End), Some(1477913820));
        assert_eq!(r.action(), Some(Action::Accept));
    });
    let obj = json(&Format::default_v2(), V2_IPV6_SSH);
    assert_eq!(obj["srcaddr"], "2001:db8:1234:a100:8d6e:3477:df66:f105");
    assert_eq!(obj["bytes"], 8855);
}

#[test]
fn v2_examples_as_one_default_format_payload() {
    let text =
        [V2_SSH_ACCEPT, V2_RDP_REJECT, V2_NODATA, V2_SKIPDATA, V2_PING_ACCEPT, V2_PING_REJECT, V2_IPV6_SSH].join("\n");
    let (kind, stats, items) = decode_payload(text.as_bytes());
    assert_eq!(kind, PayloadKind::Text);
    assert_eq!(stats.records, 7);
    assert_eq!(stats.no_data, 1);
    assert_eq!(stats.skip_data, 1);
    assert_eq!(stats.rejected, 0);
    assert_eq!(stats.headers, 0);
    // Every line renders back to exactly its text.
    let rendered: Vec<String> = items.into_iter().map(Result::unwrap).collect();
    assert_eq!(rendered.join("\n"), text);
}

// ---------------------------------------------------------------------------
// Version 3: "TCP flag sequence", custom format.
// https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-records-examples.html#flow-log-example-tcp-flag
// (also awsdocs/amazon-vpc-user-guide, doc_source/flow-logs-records-examples.md)
// ---------------------------------------------------------------------------

const V3_TCP_FORMAT: &str = "version vpc-id subnet-id instance-id interface-id account-id type srcaddr dstaddr srcport \
                             dstport pkt-srcaddr pkt-dstaddr protocol bytes packets start end action tcp-flags log-status";

const V3_TCP_LINES: [&str; 6] = [
    "3 vpc-abcdefab012345678 subnet-aaaaaaaa012345678 i-01234567890123456 eni-1235b8ca123456789 123456789010 IPv4 52.213.180.42 10.0.0.62 43416 5001 52.213.180.42 10.0.0.62 6 568 8 1566848875 1566848933 ACCEPT 2 OK",
    "3 vpc-abcdefab012345678 subnet-aaaaaaaa012345678 i-01234567890123456 eni-1235b8ca123456789 123456789010 IPv4 10.0.0.62 52.213.180.42 5001 43416 10.0.0.62 52.213.180.42 6 376 7 1566848875 1566848933 ACCEPT 18 OK",
    "3 vpc-abcdefab012345678 subnet-aaaaaaaa012345678 i-01234567890123456 eni-1235b8ca123456789 123456789010 IPv4 52.213.180.42 10.0.0.62 43418 5001 52.213.180.42 10.0.0.62 6 100701 70 1566848875 1566848933 ACCEPT 2 OK",
    "3 vpc-abcdefab012345678 subnet-aaaaaaaa012345678 i-01234567890123456 eni-1235b8ca123456789 123456789010 IPv4 10.0.0.62 52.213.180.42 5001 43418 10.0.0.62 52.213.180.42 6 632 12 1566848875 1566848933 ACCEPT 18 OK",
    "3 vpc-abcdefab012345678 subnet-aaaaaaaa012345678 i-01234567890123456 eni-1235b8ca123456789 123456789010 IPv4 10.0.0.62 52.213.180.42 5001 43418 10.0.0.62 52.213.180.42 6 63388 1219 1566848933 1566849113 ACCEPT 1 OK",
    "3 vpc-abcdefab012345678 subnet-aaaaaaaa012345678 i-01234567890123456 eni-1235b8ca123456789 123456789010 IPv4 52.213.180.42 10.0.0.62 43418 5001 52.213.180.42 10.0.0.62 6 23294588 15774 1566848933 1566849113 ACCEPT 1 OK",
];

/// The short-connection pair of the same section. The second line is
/// printed in the documentation with two spaces after `43638`: a typo in the
/// page (AWS separates fields with one space), kept verbatim here.
const V3_TCP_SHORT: [&str; 2] = [
    "3 vpc-abcdefab012345678 subnet-aaaaaaaa012345678 i-01234567890123456 eni-1235b8ca123456789 123456789010 IPv4 52.213.180.42 10.0.0.62 43638 5001 52.213.180.42 10.0.0.62 6 1260 17 1566933133 1566933193 ACCEPT 3 OK",
    "3 vpc-abcdefab012345678 subnet-aaaaaaaa012345678 i-01234567890123456 eni-1235b8ca123456789 123456789010 IPv4 10.0.0.62 52.213.180.42 5001 43638  10.0.0.62 52.213.180.42 6 967 14 1566933133 1566933193 ACCEPT 19 OK",
];

#[test]
fn v3_tcp_flag_sequence() {
    let format = Format::parse(V3_TCP_FORMAT).unwrap();
    assert_eq!(format.len(), 21);
    assert_eq!(format.version(), 3);
    // (srcport, dstport, bytes, packets, tcp-flags, start)
    let expected = [
        (43416, 5001, 568, 8, 2, 1566848875),
        (5001, 43416, 376, 7, 18, 1566848875),
        (43418, 5001, 100701, 70, 2, 1566848875),
        (5001, 43418, 632, 12, 18, 1566848875),
        (5001, 43418, 63388, 1219, 1, 1566848933),
        (43418, 5001, 23294588, 15774, 1, 1566848933),
    ];
    for (line, (sport, dport, bytes, packets, flags, start)) in V3_TCP_LINES.iter().zip(expected) {
        with_record(&format, line, |r| {
            assert_eq!(r.u64(Field::Version), Some(3));
            assert_eq!(r.text(Field::VpcId), Some("vpc-abcdefab012345678"));
            assert_eq!(r.text(Field::SubnetId), Some("subnet-aaaaaaaa012345678"));
            assert_eq!(r.text(Field::InstanceId), Some("i-01234567890123456"));
            assert_eq!(r.text(Field::InterfaceId), Some("eni-1235b8ca123456789"));
            assert_eq!(r.text(Field::AccountId), Some("123456789010"));
            assert_eq!(r.get(Field::Type), Some(Value::AddrType(AddrType::Ipv4)));
            assert_eq!(r.u64(Field::Srcport), Some(sport));
            assert_eq!(r.u64(Field::Dstport), Some(dport));
            assert_eq!(r.u64(Field::Protocol), Some(6));
            // Bytes come before packets in this format.
            assert_eq!(r.u64(Field::Bytes), Some(bytes));
            assert_eq!(r.u64(Field::Packets), Some(packets));
            assert_eq!(r.u64(Field::TcpFlags), Some(flags));
            assert_eq!(r.u64(Field::Start), Some(start));
            assert_eq!(r.action(), Some(Action::Accept));
            assert_eq!(r.log_status(), Some(LogStatus::Ok));
            // No NAT here: packet-level addresses equal the interface-level ones.
            assert_eq!(r.addr(Field::PktSrcaddr), r.addr(Field::Srcaddr));
            assert_eq!(r.addr(Field::PktDstaddr), r.addr(Field::Dstaddr));
            let server = ip("10.0.0.62");
            assert!(r.addr(Field::Srcaddr) == Some(server) || r.addr(Field::Dstaddr) == Some(server));
        });
    }
    // SYN-ACK is SYN (2) | ACK (16).
    with_record(&format, V3_TCP_LINES[1], |r| assert_eq!(r.u64(Field::TcpFlags), Some(2 | 16)));
}

#[test]
fn v3_short_connection_and_the_documentation_double_space() {
    let format = Format::parse(V3_TCP_FORMAT).unwrap();
    with_record(&format, V3_TCP_SHORT[0], |r| {
        assert_eq!(r.u64(Field::Srcport), Some(43638));
        assert_eq!(r.u64(Field::TcpFlags), Some(3)); // SYN | FIN
        assert_eq!(r.u64(Field::Bytes), Some(1260));
        assert_eq!(r.u64(Field::Packets), Some(17));
    });
    // Verbatim, the second line has an empty field after `43638` (position 11).
    let mut values = Vec::new();
    assert_eq!(format.decode_into(V3_TCP_SHORT[1], &mut values), Err(LineError::EmptyField { position: 11 }));
    // With the typo corrected it is a valid record: SYN-ACK | FIN = 19.
    let fixed = V3_TCP_SHORT[1].replace("43638  ", "43638 ");
    with_record(&format, &fixed, |r| {
        assert_eq!(r.u64(Field::Srcport), Some(5001));
        assert_eq!(r.u64(Field::Dstport), Some(43638));
        assert_eq!(r.addr(Field::PktSrcaddr), Some(ip("10.0.0.62")));
        assert_eq!(r.u64(Field::Bytes), Some(967));
        assert_eq!(r.u64(Field::Packets), Some(14));
        assert_eq!(r.u64(Field::TcpFlags), Some(19));
    });
}

#[test]
fn v3_tcp_flag_example_as_an_s3_file_with_header() {
    let mut text = String::from(V3_TCP_FORMAT);
    for line in V3_TCP_LINES.iter().chain(&V3_TCP_SHORT) {
        text.push('\n');
        text.push_str(line);
    }
    text.push('\n');
    let (kind, stats, items) = decode_payload(text.as_bytes());
    assert_eq!(kind, PayloadKind::Text);
    assert_eq!(stats.headers, 1);
    assert_eq!(stats.records, 7);
    assert_eq!(stats.rejected, 1);
    assert_eq!(items.len(), 8);
    for (item, line) in items.iter().zip(V3_TCP_LINES.iter().chain(&V3_TCP_SHORT[..1])) {
        assert_eq!(item.as_deref(), Ok(*line));
    }
    assert_eq!(items[7], Err(LineError::EmptyField { position: 11 }));
}

// ---------------------------------------------------------------------------
// Version 3 fields without `version`: "Traffic through a NAT gateway".
// https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-records-examples.html#flow-log-example-nat
// ---------------------------------------------------------------------------

const NAT_FORMAT: &str = "instance-id interface-id srcaddr dstaddr pkt-srcaddr pkt-dstaddr";

#[test]
fn v3_traffic_through_a_nat_gateway() {
    let format = Format::parse(NAT_FORMAT).unwrap();
    assert_eq!(format.version(), 3);
    assert!(!format.contains(Field::Version));
    // (line, srcaddr, dstaddr, pkt-srcaddr, pkt-dstaddr)
    let nat_eni = [
        (
            "- eni-1235b8ca123456789 10.0.1.5 10.0.0.220 10.0.1.5 203.0.113.5",
            "10.0.1.5",
            "10.0.0.220",
            "10.0.1.5",
            "203.0.113.5",
        ),
        (
            "- eni-1235b8ca123456789 10.0.0.220 203.0.113.5 10.0.0.220 203.0.113.5",
            "10.0.0.220",
            "203.0.113.5",
            "10.0.0.220",
            "203.0.113.5",
        ),
        (
            "- eni-1235b8ca123456789 203.0.113.5 10.0.0.220 203.0.113.5 10.0.0.220",
            "203.0.113.5",
            "10.0.0.220",
            "203.0.113.5",
            "10.0.0.220",
        ),
        (
            "- eni-1235b8ca123456789 10.0.0.220 10.0.1.5 203.0.113.5 10.0.1.5",
            "10.0.0.220",
            "10.0.1.5",
            "203.0.113.5",
            "10.0.1.5",
        ),
    ];
    for (line, src, dst, psrc, pdst) in nat_eni {
        with_record(&format, line, |r| {
            // Requester-managed interface: no instance.
            assert_eq!(r.get(Field::InstanceId), Some(Value::Null));
            assert_eq!(r.text(Field::InstanceId), None);
            assert_eq!(r.text(Field::InterfaceId), Some("eni-1235b8ca123456789"));
            assert_eq!(r.addr(Field::Srcaddr), Some(ip(src)));
            assert_eq!(r.addr(Field::Dstaddr), Some(ip(dst)));
            assert_eq!(r.addr(Field::PktSrcaddr), Some(ip(psrc)));
            assert_eq!(r.addr(Field::PktDstaddr), Some(ip(pdst)));
            // One side of every record is the NAT gateway's own address.
            let own = ip("10.0.0.220");
            assert!(r.addr(Field::Srcaddr) == Some(own) || r.addr(Field::Dstaddr) == Some(own));
        });
    }
    // The instance's own interface. The page annotates these two lines with
    // a trailing `#...` comment, which is not part of the record; it is cut
    // off here.
    let instance_eni = [
        "i-01234567890123456 eni-1111aaaa2222bbbb3 10.0.1.5 203.0.113.5 10.0.1.5 203.0.113.5 #Traffic from the source instance to host on the internet",
        "i-01234567890123456 eni-1111aaaa2222bbbb3 203.0.113.5 10.0.1.5 203.0.113.5 10.0.1.5 #Response traffic from host on the internet to the source instance",
    ];
    let mut values = Vec::new();
    for line in instance_eni {
        // Verbatim, the annotation makes the line too long.
        assert!(matches!(format.decode_into(line, &mut values), Err(LineError::FieldCount { expected: 6, .. })));
        let record = line.split(" #").next().unwrap();
        with_record(&format, record, |r| {
            assert_eq!(r.text(Field::InstanceId), Some("i-01234567890123456"));
            assert_eq!(r.text(Field::InterfaceId), Some("eni-1111aaaa2222bbbb3"));
            assert_eq!(r.addr(Field::Srcaddr), r.addr(Field::PktSrcaddr));
            assert_eq!(r.addr(Field::Dstaddr), r.addr(Field::PktDstaddr));
        });
    }
}

#[test]
fn v3_nat_gateway_lines_in_a_payload_starting_with_dash_are_data() {
    // Lines that start with `-` or `i-` must not be mistaken for headers.
    let text = format!(
        "{NAT_FORMAT}\n- eni-1235b8ca123456789 10.0.1.5 10.0.0.220 10.0.1.5 203.0.113.5\n\
         i-01234567890123456 eni-1111aaaa2222bbbb3 10.0.1.5 203.0.113.5 10.0.1.5 203.0.113.5\n"
    );
    let (_, stats, items) = decode_payload(text.as_bytes());
    assert_eq!(stats.headers, 1);
    assert_eq!(stats.records, 2);
    assert_eq!(
        items[1].as_deref(),
        Ok("i-01234567890123456 eni-1111aaaa2222bbbb3 10.0.1.5 203.0.113.5 10.0.1.5 203.0.113.5")
    );
}

// ---------------------------------------------------------------------------
// Version 3: "Traffic through a transit gateway" (VPC flow log of VPC B).
// https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-records-examples.html#flow-log-example-tgw
// ---------------------------------------------------------------------------

const TGW_VPC_FORMAT: &str = "version interface-id account-id vpc-id subnet-id instance-id srcaddr dstaddr srcport \
                              dstport protocol tcp-flags type pkt-srcaddr pkt-dstaddr action log-status";

/// The page's block, `...` line included.
const TGW_VPC_BLOCK: &str = "\
3 eni-33333333333333333 123456789010 vpc-abcdefab012345678 subnet-22222222bbbbbbbbb i-01234567890123456 10.20.33.164 10.40.2.236 39812 80 6 3 IPv4 10.20.33.164 10.40.2.236 ACCEPT OK
...
3 eni-33333333333333333 123456789010 vpc-abcdefab012345678 subnet-22222222bbbbbbbbb i-01234567890123456 10.40.2.236 10.20.33.164 80 39812 6 19 IPv4 10.40.2.236 10.20.33.164 ACCEPT OK";

const TGW_VPC_REQUEST: &str = "3 eni-11111111111111111 123456789010 vpc-abcdefab012345678 subnet-11111111aaaaaaaaa - 10.40.1.175 10.40.2.236 39812 80 6 3 IPv4 10.20.33.164 10.40.2.236 ACCEPT OK";
const TGW_VPC_RESPONSE: &str = "3 eni-22222222222222222 123456789010 vpc-abcdefab012345678 subnet-22222222bbbbbbbbb - 10.40.2.236 10.40.2.31 80 39812 6 19 IPv4 10.40.2.236 10.20.33.164 ACCEPT OK";

#[test]
fn v3_traffic_through_a_transit_gateway() {
    let format = Format::parse(TGW_VPC_FORMAT).unwrap();
    assert_eq!(format.len(), 17);
    with_record(&format, TGW_VPC_REQUEST, |r| {
        assert_eq!(r.u64(Field::Version), Some(3));
        assert_eq!(r.text(Field::InterfaceId), Some("eni-11111111111111111"));
        assert_eq!(r.text(Field::SubnetId), Some("subnet-11111111aaaaaaaaa"));
        assert_eq!(r.get(Field::InstanceId), Some(Value::Null));
        // The transit gateway interface's address vs the client behind it.
        assert_eq!(r.addr(Field::Srcaddr), Some(ip("10.40.1.175")));
        assert_eq!(r.addr(Field::PktSrcaddr), Some(ip("10.20.33.164")));
        assert_eq!(r.addr(Field::Dstaddr), Some(ip("10.40.2.236")));
        assert_eq!(r.u64(Field::Srcport), Some(39812));
        assert_eq!(r.u64(Field::Dstport), Some(80));
        assert_eq!(r.u64(Field::TcpFlags), Some(3));
        assert_eq!(r.get(Field::Type), Some(Value::AddrType(AddrType::Ipv4)));
        assert_eq!(r.action(), Some(Action::Accept));
    });
    with_record(&format, TGW_VPC_RESPONSE, |r| {
        assert_eq!(r.text(Field::InterfaceId), Some("eni-22222222222222222"));
        assert_eq!(r.addr(Field::Dstaddr), Some(ip("10.40.2.31")));
        assert_eq!(r.addr(Field::PktDstaddr), Some(ip("10.20.33.164")));
        assert_eq!(r.u64(Field::TcpFlags), Some(19));
    });
    let obj = json(&format, TGW_VPC_REQUEST);
    assert_eq!(obj.len(), 17);
    assert_eq!(obj["instance_id"], serde_json::Value::Null);
    assert_eq!(obj["tcp_flags"], 3);
    assert_eq!(obj["type"], "IPv4");
    assert_eq!(obj["pkt_srcaddr"], "10.20.33.164");
}

#[test]
fn v3_transit_gateway_block_decodes_around_the_ellipsis() {
    // As CloudWatch Logs would deliver the page's block: the `...` line is
    // rejected on its own, the records around it decode.
    let events: Vec<serde_json::Value> = TGW_VPC_BLOCK
        .lines()
        .chain([TGW_VPC_REQUEST, TGW_VPC_RESPONSE])
        .enumerate()
        .map(|(i, m)| serde_json::json!({"id": i.to_string(), "timestamp": 1566848875000u64, "message": m}))
        .collect();
    let doc = serde_json::json!({
        "messageType": "DATA_MESSAGE",
        "owner": "123456789010",
        "logGroup": "vpc-flow-logs",
        "logStream": "eni-33333333333333333-all",
        "subscriptionFilters": ["to-kinesis"],
        "logEvents": events,
    });
    // The header travels as the first event, since the decoder's default is v2.
    let mut doc = doc;
    doc["logEvents"]
        .as_array_mut()
        .unwrap()
        .insert(0, serde_json::json!({"id": "h", "timestamp": 0, "message": TGW_VPC_FORMAT}));
    let (kind, stats, items) = decode_payload(&serde_json::to_vec(&doc).unwrap());
    assert_eq!(kind, PayloadKind::CloudWatchData);
    assert_eq!(stats.headers, 1);
    assert_eq!(stats.records, 4);
    assert_eq!(stats.rejected, 1);
    assert_eq!(items[1], Err(LineError::NotAnInteger { field: Field::Version, value: "...".into() }));
    assert_eq!(items[3].as_deref(), Ok(TGW_VPC_REQUEST));
}

// ---------------------------------------------------------------------------
// Versions 4 and 5: "Service name, traffic path, and flow direction".
// https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-records-examples.html
// AWS has no example with a version-4 format; this one holds every
// version-4 field (region, az-id, sublocation-type, sublocation-id).
// ---------------------------------------------------------------------------

const V5_FORMAT: &str = "version srcaddr dstaddr srcport dstport protocol start end type packets bytes account-id \
                         vpc-id subnet-id instance-id interface-id region az-id sublocation-type sublocation-id action \
                         tcp-flags pkt-srcaddr pkt-dstaddr pkt-src-aws-service pkt-dst-aws-service traffic-path \
                         flow-direction log-status";
const V5_S3_INGRESS: &str = "5 52.95.128.179 10.0.0.71 80 34210 6 1616729292 1616729349 IPv4 14 15044 123456789012 vpc-abcdefab012345678 subnet-aaaaaaaa012345678 i-0c50d5961bcb2d47b eni-1235b8ca123456789 ap-southeast-2 apse2-az3 - - ACCEPT 19 52.95.128.179 10.0.0.71 S3 - - ingress OK";
const V5_S3_EGRESS: &str = "5 10.0.0.71 52.95.128.179 34210 80 6 1616729292 1616729349 IPv4 7 471 123456789012 vpc-abcdefab012345678 subnet-aaaaaaaa012345678 i-0c50d5961bcb2d47b eni-1235b8ca123456789 ap-southeast-2 apse2-az3 - - ACCEPT 3 10.0.0.71 52.95.128.179 - S3 8 egress OK";

#[test]
fn v5_service_name_traffic_path_and_flow_direction() {
    let format = Format::parse(V5_FORMAT).unwrap();
    assert_eq!(format.len(), 29);
    assert_eq!(format.version(), 5);
    with_record(&format, V5_S3_INGRESS, |r| {
        assert_eq!(r.u64(Field::Version), Some(5));
        assert_eq!(r.addr(Field::Srcaddr), Some(ip("52.95.128.179")));
        assert_eq!(r.addr(Field::Dstaddr), Some(ip("10.0.0.71")));
        assert_eq!(r.u64(Field::Srcport), Some(80));
        assert_eq!(r.u64(Field::Dstport), Some(34210));
        assert_eq!(r.u64(Field::Start), Some(1616729292));
        assert_eq!(r.u64(Field::End), Some(1616729349));
        assert_eq!(r.u64(Field::Packets), Some(14));
        assert_eq!(r.u64(Field::Bytes), Some(15044));
        assert_eq!(r.text(Field::AccountId), Some("123456789012"));
        assert_eq!(r.text(Field::InstanceId), Some("i-0c50d5961bcb2d47b"));
        // Version-4 fields.
        assert_eq!(r.text(Field::Region), Some("ap-southeast-2"));
        assert_eq!(r.text(Field::AzId), Some("apse2-az3"));
        assert_eq!(r.get(Field::SublocationType), Some(Value::Null));
        assert_eq!(r.get(Field::SublocationId), Some(Value::Null));
        // Version-5 fields.
        assert_eq!(r.text(Field::PktSrcAwsService), Some("S3"));
        assert_eq!(r.get(Field::PktDstAwsService), Some(Value::Null));
        // traffic-path is only set for egress.
        assert_eq!(r.get(Field::TrafficPath), Some(Value::Null));
        assert_eq!(r.get(Field::FlowDirection), Some(Value::Direction(FlowDirection::Ingress)));
        assert_eq!(r.u64(Field::TcpFlags), Some(19));
        assert_eq!(r.action(), Some(Action::Accept));
        assert_eq!(r.log_status(), Some(LogStatus::Ok));
    });
    with_record(&format, V5_S3_EGRESS, |r| {
        assert_eq!(r.addr(Field::Srcaddr), Some(ip("10.0.0.71")));
        assert_eq!(r.u64(Field::Packets), Some(7));
        assert_eq!(r.u64(Field::Bytes), Some(471));
        assert_eq!(r.u64(Field::TcpFlags), Some(3));
        assert_eq!(r.get(Field::PktSrcAwsService), Some(Value::Null));
        assert_eq!(r.text(Field::PktDstAwsService), Some("S3"));
        // 8: through an internet gateway (Nitro).
        assert_eq!(r.u64(Field::TrafficPath), Some(8));
        assert_eq!(r.get(Field::FlowDirection), Some(Value::Direction(FlowDirection::Egress)));
    });
    let obj = json(&format, V5_S3_EGRESS);
    assert_eq!(obj.len(), 29);
    assert_eq!(obj["flow_direction"], "egress");
    assert_eq!(obj["traffic_path"], 8);
    assert_eq!(obj["pkt_src_aws_service"], serde_json::Value::Null);
    assert_eq!(obj["pkt_dst_aws_service"], "S3");
    assert_eq!(obj["region"], "ap-southeast-2");
}

#[test]
fn v4_fields_of_the_v5_example_as_a_version_4_format() {
    // Projection of the example above onto its version <= 4 fields: a
    // derived record, not one printed by AWS.
    let full = Format::parse(V5_FORMAT).unwrap();
    let v4_fields: Vec<Field> = full.fields().iter().copied().filter(|f| f.version() <= 4).collect();
    let v4 = Format::new(v4_fields.clone()).unwrap();
    assert_eq!(v4.version(), 4);
    assert_eq!(v4.len(), 25);
    let tokens: Vec<&str> = V5_S3_INGRESS.split(' ').collect();
    let projected: Vec<&str> = v4_fields.iter().map(|f| tokens[full.position(*f).unwrap()]).collect();
    let line = ["4"].into_iter().chain(projected[1..].iter().copied()).collect::<Vec<_>>().join(" ");
    with_record(&v4, &line, |r| {
        assert_eq!(r.u64(Field::Version), Some(4));
        assert_eq!(r.text(Field::Region), Some("ap-southeast-2"));
        assert_eq!(r.text(Field::AzId), Some("apse2-az3"));
        assert_eq!(r.get(Field::SublocationType), Some(Value::Null));
        assert_eq!(r.get(Field::FlowDirection), None);
        assert_eq!(r.u64(Field::Bytes), Some(15044));
    });
}

// ---------------------------------------------------------------------------
// Version 6: Transit Gateway flow logs.
// https://docs.aws.amazon.com/vpc/latest/tgw/tgw-flow-logs.html ("Transit
// Gateway Flow Log records": the default format is every field of the
// available-fields table, in the table's order; awsdocs/aws-transit-gateway-guide,
// doc_source/tgw-flow-logs.md). The guide prints no example record: the
// records below are built from the documented fields and values.
// ---------------------------------------------------------------------------

const TGW_DEFAULT_FORMAT: &str = "version resource-type account-id tgw-id tgw-attachment-id tgw-src-vpc-account-id \
     tgw-dst-vpc-account-id tgw-src-vpc-id tgw-dst-vpc-id tgw-src-subnet-id tgw-dst-subnet-id tgw-src-eni tgw-dst-eni \
     tgw-src-az-id tgw-dst-az-id tgw-pair-attachment-id srcaddr dstaddr srcport dstport protocol packets bytes start \
     end log-status type packets-lost-no-route packets-lost-blackhole packets-lost-mtu-exceeded \
     packets-lost-ttl-expired tcp-flags region flow-direction pkt-src-aws-service pkt-dst-aws-service";

/// Constructed (see above).
const TGW_RECORD: &str = "6 TransitGatewayAttachment 123456789010 tgw-0123456789abcdef0 tgw-attach-0123456789abcdef0 \
     123456789010 210987654321 vpc-abcdefab012345678 vpc-0fedcba9876543210 subnet-aaaaaaaa012345678 \
     subnet-22222222bbbbbbbbb eni-1235b8ca123456789 eni-22222222222222222 use1-az1 use1-az2 \
     tgw-attach-0fedcba9876543210 10.20.33.164 10.40.2.236 39812 80 6 10 840 1616729292 1616729349 OK IPv4 0 2 0 0 3 \
     us-east-1 ingress - -";
/// Constructed: a flow from an on-premises network (no source VPC).
const TGW_RECORD_VPN: &str = "6 TransitGateway 123456789010 tgw-0123456789abcdef0 tgw-attach-0aaaaaaaaaaaaaaaa - \
     123456789010 - vpc-abcdefab012345678 - subnet-aaaaaaaa012345678 - eni-1235b8ca123456789 - use1-az1 \
     tgw-attach-0bbbbbbbbbbbbbbbb 192.168.1.10 10.0.0.62 51515 443 6 4 240 1616729292 1616729349 OK IPv4 3 0 0 1 2 \
     us-east-1 egress - -";

#[test]
fn v6_transit_gateway_default_format() {
    let format = Format::parse(TGW_DEFAULT_FORMAT).unwrap();
    assert_eq!(format.len(), 36);
    assert_eq!(format.version(), 6);
    // Every version-6 field is in the default TGW format.
    for f in Field::ALL.iter().filter(|f| f.version() == 6) {
        assert!(format.contains(*f), "{f}");
    }
    // TGW records have no interface, action or VPC-level fields.
    for f in [Field::InterfaceId, Field::Action, Field::VpcId, Field::PktSrcaddr] {
        assert!(!format.contains(f), "{f}");
    }
    with_record(&format, TGW_RECORD, |r| {
        assert_eq!(r.u64(Field::Version), Some(6));
        assert_eq!(r.text(Field::ResourceType), Some("TransitGatewayAttachment"));
        assert_eq!(r.text(Field::TgwId), Some("tgw-0123456789abcdef0"));
        assert_eq!(r.text(Field::TgwAttachmentId), Some("tgw-attach-0123456789abcdef0"));
        assert_eq!(r.text(Field::TgwSrcVpcAccountId), Some("123456789010"));
        assert_eq!(r.text(Field::TgwDstVpcAccountId), Some("210987654321"));
        assert_eq!(r.text(Field::TgwSrcVpcId), Some("vpc-abcdefab012345678"));
        assert_eq!(r.text(Field::TgwDstSubnetId), Some("subnet-22222222bbbbbbbbb"));
        assert_eq!(r.text(Field::TgwSrcEni), Some("eni-1235b8ca123456789"));
        assert_eq!(r.text(Field::TgwDstAzId), Some("use1-az2"));
        assert_eq!(r.text(Field::TgwPairAttachmentId), Some("tgw-attach-0fedcba9876543210"));
        assert_eq!(r.addr(Field::Srcaddr), Some(ip("10.20.33.164")));
        assert_eq!(r.u64(Field::Dstport), Some(80));
        assert_eq!(r.u64(Field::Packets), Some(10));
        assert_eq!(r.u64(Field::Bytes), Some(840));
        assert_eq!(r.log_status(), Some(LogStatus::Ok));
        assert_eq!(r.get(Field::Type), Some(Value::AddrType(AddrType::Ipv4)));
        assert_eq!(r.u64(Field::PacketsLostNoRoute), Some(0));
        assert_eq!(r.u64(Field::PacketsLostBlackhole), Some(2));
        assert_eq!(r.u64(Field::PacketsLostMtuExceeded), Some(0));
        assert_eq!(r.u64(Field::PacketsLostTtlExpired), Some(0));
        assert_eq!(r.u64(Field::TcpFlags), Some(3));
        assert_eq!(r.text(Field::Region), Some("us-east-1"));
        assert_eq!(r.get(Field::FlowDirection), Some(Value::Direction(FlowDirection::Ingress)));
        assert_eq!(r.get(Field::PktSrcAwsService), Some(Value::Null));
        assert_eq!(r.action(), None);
    });
    with_record(&format, TGW_RECORD_VPN, |r| {
        assert_eq!(r.text(Field::ResourceType), Some("TransitGateway"));
        assert_eq!(r.get(Field::TgwSrcVpcAccountId), Some(Value::Null));
        assert_eq!(r.get(Field::TgwSrcVpcId), Some(Value::Null));
        assert_eq!(r.get(Field::TgwSrcAzId), Some(Value::Null));
        assert_eq!(r.addr(Field::Srcaddr), Some(ip("192.168.1.10")));
        assert_eq!(r.u64(Field::PacketsLostNoRoute), Some(3));
        assert_eq!(r.u64(Field::PacketsLostTtlExpired), Some(1));
        assert_eq!(r.get(Field::FlowDirection), Some(Value::Direction(FlowDirection::Egress)));
    });
    let obj = json(&format, TGW_RECORD);
    assert_eq!(obj.len(), 36);
    assert_eq!(obj["resource_type"], "TransitGatewayAttachment");
    assert_eq!(obj["packets_lost_blackhole"], 2);
    assert_eq!(obj["tgw_src_vpc_account_id"], "123456789010");
}

#[test]
fn v6_transit_gateway_format_as_create_flow_logs_string() {
    // The same format given to CreateFlowLogs as `${field}` placeholders.
    let format = Format::parse(TGW_DEFAULT_FORMAT).unwrap();
    let aws = format.to_aws_string();
    assert!(aws.starts_with("${version} ${resource-type} ${account-id} ${tgw-id} "));
    assert!(aws.ends_with(" ${pkt-src-aws-service} ${pkt-dst-aws-service}"));
    assert_eq!(Format::parse(&aws).unwrap(), format);
}

// ---------------------------------------------------------------------------
// Version 7: Amazon ECS fields.
// https://docs.aws.amazon.com/vpc/latest/userguide/flow-log-records.html#flow-logs-fields
// The guide lists the ecs-* fields (version 7) without an example record:
// the record below is built from the documented fields, with ARNs in ECS's
// documented shapes.
// ---------------------------------------------------------------------------

const ECS_FORMAT: &str = "${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} \
     ${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${log-status} ${ecs-cluster-arn} ${ecs-cluster-name} \
     ${ecs-container-instance-arn} ${ecs-container-instance-id} ${ecs-container-id} ${ecs-second-container-id} \
     ${ecs-service-name} ${ecs-task-definition-arn} ${ecs-task-arn} ${ecs-task-id}";

/// Constructed: an EC2-launch-type task (container instance known).
const ECS_RECORD_EC2: &str = "7 123456789010 eni-1235b8ca123456789 10.0.1.23 10.0.2.45 43512 8080 6 12 3120 \
     1616729292 1616729349 ACCEPT OK arn:aws:ecs:us-east-1:123456789010:cluster/web-cluster web-cluster \
     arn:aws:ecs:us-east-1:123456789010:container-instance/web-cluster/0a1b2c3d4e5f60718293a4b5c6d7e8f9 \
     0a1b2c3d4e5f60718293a4b5c6d7e8f9 3c5e8d1f0a2b4c6d8e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d - web-service \
     arn:aws:ecs:us-east-1:123456789010:task-definition/web:7 \
     arn:aws:ecs:us-east-1:123456789010:task/web-cluster/1f2e3d4c5b6a79808f7e6d5c4b3a2910 \
     1f2e3d4c5b6a79808f7e6d5c4b3a2910";
/// Constructed: a Fargate task (no container instance), not part of a service.
const ECS_RECORD_FARGATE: &str = "7 123456789010 eni-22222222222222222 10.0.2.45 52.95.128.179 51000 443 6 5 900 \
     1616729292 1616729349 ACCEPT OK arn:aws:ecs:us-east-1:123456789010:cluster/batch batch - - \
     9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0 - - \
     arn:aws:ecs:us-east-1:123456789010:task-definition/job:1 \
     arn:aws:ecs:us-east-1:123456789010:task/batch/aa11bb22cc33dd44ee55ff6677889900 aa11bb22cc33dd44ee55ff6677889900";

#[test]
fn v7_ecs_fields() {
    let format = Format::parse(ECS_FORMAT).unwrap();
    assert_eq!(format.len(), 24);
    assert_eq!(format.version(), 7);
    with_record(&format, ECS_RECORD_EC2, |r| {
        assert_eq!(r.u64(Field::Version), Some(7));
        assert_eq!(r.text(Field::EcsClusterArn), Some("arn:aws:ecs:us-east-1:123456789010:cluster/web-cluster"));
        assert_eq!(r.text(Field::EcsClusterName), Some("web-cluster"));
        assert_eq!(
            r.text(Field::EcsContainerInstanceArn),
            Some("arn:aws:ecs:us-east-1:123456789010:container-instance/web-cluster/0a1b2c3d4e5f60718293a4b5c6d7e8f9")
        );
        assert_eq!(r.text(Field::EcsContainerInstanceId), Some("0a1b2c3d4e5f60718293a4b5c6d7e8f9"));
        assert_eq!(r.text(Field::EcsContainerId).map(str::len), Some(64));
        assert_eq!(r.get(Field::EcsSecondContainerId), Some(Value::Null));
        assert_eq!(r.text(Field::EcsServiceName), Some("web-service"));
        assert_eq!(
            r.text(Field::EcsTaskDefinitionArn),
            Some("arn:aws:ecs:us-east-1:123456789010:task-definition/web:7")
        );
        assert_eq!(
            r.text(Field::EcsTaskArn),
            Some("arn:aws:ecs:us-east-1:123456789010:task/web-cluster/1f2e3d4c5b6a79808f7e6d5c4b3a2910")
        );
        assert_eq!(r.text(Field::EcsTaskId), Some("1f2e3d4c5b6a79808f7e6d5c4b3a2910"));
        assert_eq!(r.u64(Field::Dstport), Some(8080));
        assert_eq!(r.action(), Some(Action::Accept));
    });
    with_record(&format, ECS_RECORD_FARGATE, |r| {
        assert_eq!(r.text(Field::EcsClusterName), Some("batch"));
        assert_eq!(r.get(Field::EcsContainerInstanceArn), Some(Value::Null));
        assert_eq!(r.get(Field::EcsContainerInstanceId), Some(Value::Null));
        assert_eq!(r.get(Field::EcsServiceName), Some(Value::Null));
        assert_eq!(r.text(Field::EcsTaskId), Some("aa11bb22cc33dd44ee55ff6677889900"));
        assert_eq!(r.addr(Field::Dstaddr), Some(ip("52.95.128.179")));
    });
    let obj = json(&format, ECS_RECORD_FARGATE);
    assert_eq!(obj.len(), 24);
    assert_eq!(obj["ecs_cluster_arn"], "arn:aws:ecs:us-east-1:123456789010:cluster/batch");
    assert_eq!(obj["ecs_service_name"], serde_json::Value::Null);
}

// ---------------------------------------------------------------------------
// Version 8: reject-reason (VPC Block Public Access).
// https://docs.aws.amazon.com/vpc/latest/userguide/flow-log-records.html#flow-logs-fields
// https://docs.aws.amazon.com/vpc/latest/userguide/security-vpc-bpa.html
// `reject-reason` is `BPA` when VPC BPA blocked the traffic, `-` otherwise.
// No example record is printed: the records below are constructed.
// ---------------------------------------------------------------------------

const BPA_FORMAT: &str = "${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} \
     ${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${log-status} ${vpc-id} ${subnet-id} ${flow-direction} \
     ${traffic-path} ${reject-reason}";

const BPA_BLOCKED: &str = "8 123456789010 eni-1235b8ca123456789 198.51.100.7 10.0.1.5 50122 22 6 3 180 1730000000 \
     1730000060 REJECT OK vpc-abcdefab012345678 subnet-aaaaaaaa012345678 ingress - BPA";
const BPA_BLOCKED_EGRESS: &str = "8 123456789010 eni-1235b8ca123456789 10.0.1.5 203.0.113.5 40112 443 6 2 120 \
     1730000000 1730000060 REJECT OK vpc-abcdefab012345678 subnet-aaaaaaaa012345678 egress 8 BPA";
const BPA_SG_REJECT: &str = "8 123456789010 eni-1235b8ca123456789 10.0.9.9 10.0.1.5 50500 3389 6 1 60 1730000000 \
     1730000060 REJECT OK vpc-abcdefab012345678 subnet-aaaaaaaa012345678 ingress - -";

#[test]
fn v8_reject_reason() {
    let format = Format::parse(BPA_FORMAT).unwrap();
    assert_eq!(format.version(), 8);
    assert_eq!(format.position(Field::RejectReason), Some(18));
    with_record(&format, BPA_BLOCKED, |r| {
        assert_eq!(r.u64(Field::Version), Some(8));
        assert_eq!(r.action(), Some(Action::Reject));
        assert_eq!(r.text(Field::RejectReason), Some("BPA"));
        assert_eq!(r.get(Field::FlowDirection), Some(Value::Direction(FlowDirection::Ingress)));
        assert_eq!(r.get(Field::TrafficPath), Some(Value::Null));
        assert_eq!(r.addr(Field::Srcaddr), Some(ip("198.51.100.7")));
    });
    with_record(&format, BPA_BLOCKED_EGRESS, |r| {
        assert_eq!(r.text(Field::RejectReason), Some("BPA"));
        assert_eq!(r.u64(Field::TrafficPath), Some(8));
        assert_eq!(r.get(Field::FlowDirection), Some(Value::Direction(FlowDirection::Egress)));
    });
    with_record(&format, BPA_SG_REJECT, |r| {
        // Rejected by a security group or network ACL: no reason given.
        assert_eq!(r.action(), Some(Action::Reject));
        assert_eq!(r.get(Field::RejectReason), Some(Value::Null));
        assert_eq!(r.text(Field::RejectReason), None);
    });
    let obj = json(&format, BPA_BLOCKED);
    assert_eq!(obj["reject_reason"], "BPA");
    assert_eq!(json(&format, BPA_SG_REJECT)["reject_reason"], serde_json::Value::Null);
}
