//! Malformed input, one category per test: the exact `LineError` (or
//! `PayloadError`) and, for line errors, proof that the other lines of the
//! same payload still decode.

use std::io::Write;
use std::time::Instant;

use flate2::write::GzEncoder;
use flate2::Compression;

use dredge_core::flowlog::{
    gunzip_bounded, DecodeOptions, DecodeStats, Decoder, Field, Format, FormatError, Item, LineError, PayloadError,
    PayloadKind,
};

const GOOD_1: &str =
    "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK";
const GOOD_2: &str =
    "2 123456789010 eni-1235b8ca123456789 172.31.9.69 172.31.9.12 49761 3389 6 20 4249 1418530010 1418530070 REJECT OK";

/// One outcome per visited item: the line number and the record's line
/// rendered back, or the error.
type Outcome = (usize, Result<String, LineError>);

fn decode_with(decoder: &Decoder, payload: &[u8]) -> Result<(PayloadKind, DecodeStats, Vec<Outcome>), PayloadError> {
    let mut items = Vec::new();
    let (kind, stats) = decoder.decode(payload, &mut |item| match item {
        Item::Record { line, record } => {
            items.push((line, Ok(record.iter().map(|(_, v)| v.to_string()).collect::<Vec<_>>().join(" "))))
        }
        Item::Rejected { line, error, .. } => items.push((line, Err(error))),
    })?;
    Ok((kind, stats, items))
}

fn decode(payload: &[u8]) -> (PayloadKind, DecodeStats, Vec<Outcome>) {
    decode_with(&Decoder::default(), payload).expect("payload refused")
}

/// Decodes `GOOD_1`, `bad`, `GOOD_2` as one default-format text payload
/// and checks that only the middle line is rejected, with `expected`.
fn assert_rejected_between_good_lines(bad: &[u8], expected: LineError) {
    let mut payload = Vec::new();
    payload.extend_from_slice(GOOD_1.as_bytes());
    payload.push(b'\n');
    payload.extend_from_slice(bad);
    payload.push(b'\n');
    payload.extend_from_slice(GOOD_2.as_bytes());
    let (kind, stats, items) = decode(&payload);
    assert_eq!(kind, PayloadKind::Text);
    assert_eq!(
        items,
        vec![(1, Ok(GOOD_1.to_owned())), (2, Err(expected.clone())), (3, Ok(GOOD_2.to_owned()))],
        "bad line: {}",
        String::from_utf8_lossy(bad)
    );
    assert_eq!(stats.records, 2);
    assert_eq!(stats.rejected, 1);
    // decode_into on the bare line gives the same error.
    if let Ok(text) = std::str::from_utf8(bad) {
        let mut values = Vec::new();
        assert_eq!(Format::default_v2().decode_into(text.trim_ascii(), &mut values), Err(expected));
    }
}

/// `GOOD_1` with token `index` replaced by `token`.
fn with_token(index: usize, token: &str) -> String {
    let mut tokens: Vec<&str> = GOOD_1.split(' ').collect();
    tokens[index] = token;
    tokens.join(" ")
}

// Positions in the default format.
const SRCADDR: usize = 3;
const DSTADDR: usize = 4;
const SRCPORT: usize = 5;
const DSTPORT: usize = 6;
const PROTOCOL: usize = 7;
const PACKETS: usize = 8;
const BYTES: usize = 9;
const START: usize = 10;
const ACTION: usize = 12;
const LOG_STATUS: usize = 13;

#[test]
fn too_few_fields() {
    let line = GOOD_1.rsplit_once(' ').unwrap().0; // without log-status
    assert_rejected_between_good_lines(line.as_bytes(), LineError::FieldCount { expected: 14, found: 13 });
    // A single valid token.
    assert_rejected_between_good_lines(b"2", LineError::FieldCount { expected: 14, found: 1 });
}

#[test]
fn too_many_fields() {
    assert_rejected_between_good_lines(
        format!("{GOOD_1} BPA").as_bytes(),
        LineError::FieldCount { expected: 14, found: 15 },
    );
    assert_rejected_between_good_lines(
        format!("{GOOD_1} - - - - -").as_bytes(),
        LineError::FieldCount { expected: 14, found: 19 },
    );
}

#[test]
fn non_integer() {
    for (index, field, token) in [
        (PACKETS, Field::Packets, "2x"),
        (PACKETS, Field::Packets, "+5"),
        (PACKETS, Field::Packets, "-5"),
        (BYTES, Field::Bytes, "1e3"),
        (BYTES, Field::Bytes, "4249.0"),
        (BYTES, Field::Bytes, "0x10"),
        (START, Field::Start, "2014-12-14T04:06:50Z"),
        (SRCPORT, Field::Srcport, "ssh"),
        (PROTOCOL, Field::Protocol, "tcp"),
        // Non-ASCII digits (Arabic-Indic).
        (DSTPORT, Field::Dstport, "\u{0662}\u{0662}"),
        (0, Field::Version, "v2"),
    ] {
        assert_rejected_between_good_lines(
            with_token(index, token).as_bytes(),
            LineError::NotAnInteger { field, value: token.to_owned() },
        );
    }
}

#[test]
fn out_of_range_port_protocol_and_u64_overflow() {
    for (index, field, token, max) in [
        (SRCPORT, Field::Srcport, "65536", 65_535),
        (DSTPORT, Field::Dstport, "99999999", 65_535),
        (PROTOCOL, Field::Protocol, "256", 255),
        (0, Field::Version, "300", 255),
        (PACKETS, Field::Packets, "18446744073709551616", u64::MAX),
        (BYTES, Field::Bytes, "99999999999999999999999999999999", u64::MAX),
    ] {
        assert_rejected_between_good_lines(
            with_token(index, token).as_bytes(),
            LineError::OutOfRange { field, value: token.to_owned(), max },
        );
    }
    // The limits themselves are accepted.
    let line = with_token(SRCPORT, "65535");
    let line = line.replacen(" 6 20 4249 ", " 255 20 18446744073709551615 ", 1);
    let (_, stats, items) = decode(line.as_bytes());
    assert_eq!(stats.rejected, 0);
    assert_eq!(items, vec![(1, Ok(line.clone()))]);
}

#[test]
fn bad_ipv4() {
    for token in [
        "172.31.16.256",
        "172.31.16",
        "172.31.16.139.1",
        "172.31.016.139",
        "172.31.16.",
        "172.31.16.139/32",
        "999.999.999.999",
        "172.31.16.1390",
        "localhost",
    ] {
        assert_rejected_between_good_lines(
            with_token(SRCADDR, token).as_bytes(),
            LineError::BadAddress { field: Field::Srcaddr, value: token.to_owned() },
        );
    }
}

#[test]
fn bad_ipv6() {
    for token in [
        "2001:db8:::1",
        "2001:db8::g",
        "[2001:db8::1]",
        "2001:db8::1%eth0",
        "2001:db8:1234:a100:8d6e:3477:df66:f105:1",
        "2001:db8:1234:a100:8d6e:3477:df66",
        "12345::1",
        ":::",
        "::ffff:1.2.3.256",
    ] {
        assert_rejected_between_good_lines(
            with_token(DSTADDR, token).as_bytes(),
            LineError::BadAddress { field: Field::Dstaddr, value: token.to_owned() },
        );
    }
}

#[test]
fn bad_action_and_log_status_keywords() {
    for token in ["accept", "Accept", "ALLOW", "DENY", "ACCEPTED"] {
        assert_rejected_between_good_lines(
            with_token(ACTION, token).as_bytes(),
            LineError::BadKeyword { field: Field::Action, value: token.to_owned(), allowed: "ACCEPT, REJECT" },
        );
    }
    for token in ["ok", "NO_DATA", "NoData", "SKIPPED", "FAILED"] {
        assert_rejected_between_good_lines(
            with_token(LOG_STATUS, token).as_bytes(),
            LineError::BadKeyword { field: Field::LogStatus, value: token.to_owned(), allowed: "OK, NODATA, SKIPDATA" },
        );
    }
}

#[test]
fn bad_flow_direction_and_type_keywords() {
    let format = "${version} ${type} ${flow-direction} ${srcaddr} ${log-status}";
    let good_a = "5 IPv4 ingress 10.0.0.1 OK";
    let good_b = "5 EFA egress 2001:db8::1 OK";
    for (bad, field, value, allowed) in [
        ("5 IPv4 Ingress 10.0.0.1 OK", Field::FlowDirection, "Ingress", "ingress, egress"),
        ("5 IPv4 in 10.0.0.1 OK", Field::FlowDirection, "in", "ingress, egress"),
        ("5 ipv4 ingress 10.0.0.1 OK", Field::Type, "ipv4", "IPv4, IPv6, EFA"),
        ("5 IPV6 egress 2001:db8::1 OK", Field::Type, "IPV6", "IPv4, IPv6, EFA"),
        ("5 IPv5 egress 10.0.0.1 OK", Field::Type, "IPv5", "IPv4, IPv6, EFA"),
    ] {
        let payload = format!("{format}\n{good_a}\n{bad}\n{good_b}\n");
        let (_, stats, items) = decode(payload.as_bytes());
        assert_eq!(stats.headers, 1);
        assert_eq!(
            items,
            vec![
                (2, Ok(good_a.to_owned())),
                (3, Err(LineError::BadKeyword { field, value: value.to_owned(), allowed })),
                (4, Ok(good_b.to_owned())),
            ]
        );
    }
}

#[test]
fn empty_field_from_a_double_space() {
    // Double space between srcport and dstport: the empty token is at
    // position 6 and the line has 15 tokens, but the empty field wins.
    let line = GOOD_1.replacen("20641 22", "20641  22", 1);
    assert_rejected_between_good_lines(line.as_bytes(), LineError::EmptyField { position: 6 });
    // Double space replacing a field: right count, one empty.
    let line = with_token(PACKETS, "");
    assert_rejected_between_good_lines(line.as_bytes(), LineError::EmptyField { position: PACKETS });
    // A tab is not a separator: it stays inside the token.
    let line = GOOD_1.replacen("20641 22", "20641\t22", 1);
    assert_rejected_between_good_lines(
        line.as_bytes(),
        LineError::NotAnInteger { field: Field::Srcport, value: "20641\t22".into() },
    );
}

#[test]
fn leading_and_trailing_white_space_is_trimmed_by_the_payload_decoder() {
    // The line decoder is strict...
    let trailing = format!("{GOOD_1} ");
    let leading = format!(" {GOOD_1}");
    let mut values = Vec::new();
    assert_eq!(
        Format::default_v2().decode_into(&trailing, &mut values),
        Err(LineError::FieldCount { expected: 14, found: 15 })
    );
    assert_eq!(Format::default_v2().decode_into(&leading, &mut values), Err(LineError::EmptyField { position: 0 }));
    // ...the payload decoder trims each line first.
    let payload = format!("  {GOOD_1} \t\r\n\t{GOOD_2}  ");
    let (_, stats, items) = decode(payload.as_bytes());
    assert_eq!(stats.rejected, 0);
    assert_eq!(items, vec![(1, Ok(GOOD_1.to_owned())), (2, Ok(GOOD_2.to_owned()))]);
}

#[test]
fn invalid_utf8_line() {
    let mut bad = GOOD_1.as_bytes().to_vec();
    // eni-1235b8ca123456789 -> eni-\xff235b8ca123456789
    let at = GOOD_1.find("eni-").unwrap() + 4;
    bad[at] = 0xff;
    assert_rejected_between_good_lines(&bad, LineError::NotUtf8);
    // Overlong encoding and a lone continuation byte.
    assert_rejected_between_good_lines(b"2 \xc0\xaf", LineError::NotUtf8);
    assert_rejected_between_good_lines(b"\x80", LineError::NotUtf8);
}

#[test]
fn bad_header_unknown_field_keeps_the_previous_format() {
    let payload =
        "version srcaddr dstaddr\n2 10.0.0.1 10.0.0.2\nversion srcaddr bogus-field\n2 10.0.0.3 10.0.0.4\n2 10.0.0.5\n";
    let (_, stats, items) = decode(payload.as_bytes());
    assert_eq!(stats.headers, 1);
    assert_eq!(stats.rejected, 2);
    assert_eq!(stats.records, 2);
    assert_eq!(
        items,
        vec![
            (2, Ok("2 10.0.0.1 10.0.0.2".to_owned())),
            (3, Err(LineError::BadHeader(FormatError::UnknownField("bogus-field".into())))),
            // The refused header did not replace the 3-field format.
            (4, Ok("2 10.0.0.3 10.0.0.4".to_owned())),
            (5, Err(LineError::FieldCount { expected: 3, found: 2 })),
        ]
    );
}

#[test]
fn bad_header_duplicate_field() {
    for (header, dup) in [
        ("version srcaddr dstaddr srcaddr", Field::Srcaddr),
        ("${version} ${log-status} ${log_status}", Field::LogStatus),
        ("version version", Field::Version),
    ] {
        let payload = format!("{GOOD_1}\n{header}\n{GOOD_2}\n");
        let (_, stats, items) = decode(payload.as_bytes());
        assert_eq!(stats.headers, 0);
        assert_eq!(
            items,
            vec![
                (1, Ok(GOOD_1.to_owned())),
                (2, Err(LineError::BadHeader(FormatError::Duplicate(dup)))),
                (3, Ok(GOOD_2.to_owned())),
            ],
            "{header}"
        );
    }
}

#[test]
fn a_line_starting_with_an_unknown_word_is_data_not_a_header() {
    // Only a leading field name makes a header; this is a bad data line.
    assert_rejected_between_good_lines(
        b"hello world",
        LineError::NotAnInteger { field: Field::Version, value: "hello".into() },
    );
}

#[test]
fn a_line_of_another_format_reports_its_first_bad_value() {
    // Values are checked as they come, so a line of another format is
    // refused for its first value that does not fit, before its field count
    // is known: here `account-id` read as `srcaddr`.
    let payload = format!("version srcaddr dstaddr\n{GOOD_1}\n2 10.0.0.1 10.0.0.2\n");
    let (_, stats, items) = decode(payload.as_bytes());
    assert_eq!(stats.headers, 1);
    assert_eq!(
        items,
        vec![
            (2, Err(LineError::BadAddress { field: Field::Srcaddr, value: "123456789010".into() })),
            (3, Ok("2 10.0.0.1 10.0.0.2".to_owned())),
        ]
    );
}

// ---------------------------------------------------------------------------
// Payload level.
// ---------------------------------------------------------------------------

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Decodes a payload that must be refused, checking nothing was visited.
fn refused(decoder: &Decoder, payload: &[u8]) -> PayloadError {
    let mut visited = 0;
    let result = decoder.decode(payload, &mut |_| visited += 1);
    assert_eq!(visited, 0, "a refused payload must visit nothing");
    match result {
        Ok(r) => panic!("payload accepted: {r:?}"),
        Err(e) => e,
    }
}

#[test]
fn corrupt_gzip() {
    let good = gz(format!("{GOOD_1}\n{GOOD_2}\n").as_bytes());
    assert_eq!(decode(&good).1.records, 2);
    let decoder = Decoder::default();

    // Truncated stream.
    let truncated = &good[..good.len() - 10];
    assert!(matches!(refused(&decoder, truncated), PayloadError::Gzip(_)));

    // CRC32 of the trailer wrong.
    let mut bad_crc = good.clone();
    let n = bad_crc.len();
    bad_crc[n - 8] ^= 0xff;
    assert!(matches!(refused(&decoder, &bad_crc), PayloadError::Gzip(_)));

    // Invalid deflate block type (BTYPE = 11) right after the 10-byte header.
    let mut bad_block = good.clone();
    bad_block[10] |= 0b110;
    assert!(matches!(refused(&decoder, &bad_block), PayloadError::Gzip(_)));

    // Only the magic bytes.
    assert!(matches!(refused(&decoder, &[0x1f, 0x8b]), PayloadError::Gzip(_)));

    // A valid member followed by garbage.
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"\x1f\x8bnot gzip at all");
    assert!(matches!(refused(&decoder, &trailing), PayloadError::Gzip(_)));
}

#[test]
fn gzip_bomb_is_refused_at_the_cap() {
    const MAX: usize = 64 * 1024;
    let decoder = Decoder::new(DecodeOptions { max_decompressed: MAX, ..DecodeOptions::default() });

    // 1 MiB of zeros compresses to about a kilobyte; 1024 members of it
    // expand to 1 GiB. A final member of garbage would fail the whole
    // stream if the decoder ever got that far.
    let member = gz(&vec![0u8; 1 << 20]);
    assert!(member.len() < 4096, "{}", member.len());
    let mut bomb = Vec::with_capacity(member.len() * 1024 + 32);
    for _ in 0..1024 {
        bomb.extend_from_slice(&member);
    }
    bomb.extend_from_slice(b"\x1f\x8b\x08\x00garbage garbage garbage");
    let started = Instant::now();
    match refused(&decoder, &bomb) {
        PayloadError::TooLarge { max } => assert_eq!(max, MAX),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // Stopping at 64 KiB takes well under a second even unoptimised;
    // inflating 1 GiB does not.
    assert!(started.elapsed().as_secs_f64() < 5.0, "{:?}", started.elapsed());

    // Where exactly it stops: a first member of MAX bytes is read to its
    // end and the decoder then needs one more byte, so it reaches the
    // garbage; MAX + 1 bytes hit the cap first and the garbage is never read.
    let garbage = b"\x1f\x8b\x08\x00garbage";
    let exactly_max = [gz(&vec![b'a'; MAX]), garbage.to_vec()].concat();
    assert!(matches!(gunzip_bounded(&exactly_max, MAX), Err(PayloadError::Gzip(_))));
    let over_by_one = [gz(&vec![b'a'; MAX + 1]), garbage.to_vec()].concat();
    assert!(matches!(gunzip_bounded(&over_by_one, MAX), Err(PayloadError::TooLarge { max: MAX })));
    // And MAX bytes without garbage are accepted.
    assert_eq!(gunzip_bounded(&gz(&vec![b'a'; MAX]), MAX).unwrap().len(), MAX);

    // Through the decoder, a payload just over the cap is refused and one at
    // the cap decodes.
    let line = format!("{GOOD_1}\n");
    let fits = line.repeat(MAX / line.len());
    let (_, stats, _) = decode_with(&decoder, &gz(fits.as_bytes())).unwrap();
    assert_eq!(stats.records as usize, MAX / line.len());
    let over = line.repeat(MAX / line.len() + 1);
    assert!(matches!(refused(&decoder, &gz(over.as_bytes())), PayloadError::TooLarge { max: MAX }));
}

#[test]
fn invalid_json() {
    let decoder = Decoder::default();
    for doc in [
        &b"{not json"[..],
        b"{\"messageType\": \"DATA_MESSAGE\", \"logEvents\": [",
        // Valid JSON, wrong shape.
        b"{\"messageType\": \"DATA_MESSAGE\", \"logEvents\": [{\"message\": 5}]}",
        b"{\"messageType\": 42}",
        b"{\"logEvents\": []}",
        b"  \n {}",
        // Trailing content after the document.
        b"{\"messageType\": \"CONTROL_MESSAGE\"} {}",
        // Not UTF-8 inside a string.
        b"{\"messageType\": \"DATA_MESSAGE\", \"logEvents\": [{\"message\": \"2 \xff\"}]}",
    ] {
        let err = refused(&decoder, doc);
        assert!(matches!(err, PayloadError::NotCloudWatchLogs(_)), "{}: {err:?}", String::from_utf8_lossy(doc));
        // Gzip-wrapped, the same.
        assert!(matches!(refused(&decoder, &gz(doc)), PayloadError::NotCloudWatchLogs(_)));
    }
}

/// A data message without a field every real one has is refused, not read
/// as empty (issue 13: one without `logEvents` was accepted as zero records).
#[test]
fn a_document_missing_a_field_every_real_one_has_is_refused() {
    let decoder = Decoder::default();
    let full = serde_json::json!({
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": "vpc-flow-logs",
        "logStream": "eni-0a1b2c3d-all",
        "subscriptionFilters": ["to-kinesis"],
        "policyLevel": "ACCOUNT_LEVEL_POLICY",
        "logEvents": [{"id": "1", "timestamp": 1, "message": GOOD_1}],
    });
    assert_eq!(decode(&serde_json::to_vec(&full).unwrap()).1.records, 1);
    for field in ["owner", "logGroup", "logStream", "subscriptionFilters", "logEvents"] {
        let mut doc = full.clone();
        doc.as_object_mut().unwrap().remove(field);
        for bytes in [serde_json::to_vec(&doc).unwrap(), gz(&serde_json::to_vec(&doc).unwrap())] {
            match refused(&decoder, &bytes) {
                PayloadError::MissingField(f) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }
    // A log event without its id or timestamp is not a real one either.
    for field in ["id", "timestamp"] {
        let mut doc = full.clone();
        doc["logEvents"][0].as_object_mut().unwrap().remove(field);
        assert!(matches!(refused(&decoder, &serde_json::to_vec(&doc).unwrap()), PayloadError::NotCloudWatchLogs(_)));
    }
}

#[test]
fn unknown_message_type() {
    let decoder = Decoder::default();
    let doc = serde_json::json!({
        "messageType": "DATA_MESSAGE_V2",
        "logEvents": [{"id": "1", "timestamp": 1, "message": GOOD_1}],
    });
    match refused(&decoder, &serde_json::to_vec(&doc).unwrap()) {
        PayloadError::UnknownMessageType(t) => assert_eq!(t, "DATA_MESSAGE_V2"),
        other => panic!("{other:?}"),
    }
    // Case matters.
    match refused(&decoder, br#"{"messageType": "data_message", "logEvents": []}"#) {
        PayloadError::UnknownMessageType(t) => assert_eq!(t, "data_message"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn control_message_is_counted_not_decoded() {
    // The CloudWatch Logs reachability check, as AWS documents it.
    let doc = br#"{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"","subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1432826855000,"message":"CWL CONTROL MESSAGE: Checking health of destination Kinesis stream."}]}"#;
    for payload in [doc.to_vec(), gz(doc)] {
        let (kind, stats, items) = decode(&payload);
        assert_eq!(kind, PayloadKind::CloudWatchControl);
        assert!(items.is_empty());
        assert_eq!(stats, DecodeStats { payloads: 1, control_messages: 1, ..DecodeStats::default() });
    }
    // Counts add up across payloads.
    let mut total = DecodeStats::default();
    total.add(&decode(doc).1);
    total.add(&decode(format!("{GOOD_1}\nbad\n").as_bytes()).1);
    assert_eq!(total.payloads, 2);
    assert_eq!(total.control_messages, 1);
    assert_eq!(total.records, 1);
    assert_eq!(total.rejected, 1);
}

#[test]
fn nodata_and_skipdata_are_valid_and_counted() {
    let payload = [
        GOOD_1,
        "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA",
        "2 123456789010 eni-11111111aaaaaaaaa - - - - - - - 1431280876 1431280934 - SKIPDATA",
        "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280934 1431280994 - NODATA",
    ]
    .join("\n");
    let doc = serde_json::json!({
        "messageType": "DATA_MESSAGE",
        "owner": "123456789010",
        "logGroup": "vpc-flow-logs",
        "logStream": "eni-1235b8ca123456789-all",
        "subscriptionFilters": ["to-kinesis"],
        "policyLevel": "ACCOUNT_LEVEL_POLICY",
        "logEvents": payload.lines().enumerate()
            .map(|(i, m)| serde_json::json!({"id": i.to_string(), "timestamp": 0, "message": m}))
            .collect::<Vec<_>>(),
    });
    for (bytes, kind) in [
        (payload.clone().into_bytes(), PayloadKind::Text),
        (serde_json::to_vec(&doc).unwrap(), PayloadKind::CloudWatchData),
    ] {
        let (k, stats, items) = decode(&bytes);
        assert_eq!(k, kind);
        assert_eq!(stats.records, 4);
        assert_eq!(stats.no_data, 2);
        assert_eq!(stats.skip_data, 1);
        assert_eq!(stats.rejected, 0);
        assert_eq!(stats.text_bytes, payload.len() as u64 + 1, "every line with its newline");
        assert!(items.iter().all(|(_, r)| r.is_ok()));
    }
}

#[test]
fn blank_lines_are_ignored_but_keep_line_numbers() {
    let payload = format!("\n\n   \n{GOOD_1}\r\n\t\r\n\r\n{GOOD_2}\n \n\n");
    let (_, stats, items) = decode(payload.as_bytes());
    assert_eq!(stats.records, 2);
    assert_eq!(stats.rejected, 0);
    assert_eq!(items, vec![(4, Ok(GOOD_1.to_owned())), (7, Ok(GOOD_2.to_owned()))]);
    // A payload of nothing but blank lines decodes to nothing, without error.
    let (kind, stats, items) = decode(b"\n \r\n\t\n");
    assert_eq!(kind, PayloadKind::Text);
    assert!(items.is_empty());
    assert_eq!(stats, DecodeStats { payloads: 1, text_bytes: 6, ..DecodeStats::default() });
    // So does an empty payload, and blank log events.
    assert_eq!(decode(b"").1.records, 0);
    let doc = br#"{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"g","logStream":"s",
        "subscriptionFilters":["f"],"logEvents":[{"id":"1","timestamp":1,"message":""},{"id":"2","timestamp":1,"message":"  "}]}"#;
    let (kind, stats, items) = decode(doc);
    assert_eq!(kind, PayloadKind::CloudWatchData);
    assert!(items.is_empty());
    assert_eq!(stats.records, 0);
}

#[test]
fn header_switches_the_format_mid_payload() {
    let payload = format!(
        "{GOOD_1}\n\
         version srcaddr dstaddr action\n\
         3 10.0.0.1 10.0.0.2 ACCEPT\n\
         3 10.0.0.5 10.0.0.6 REJECT OK\n\
         ${{interface-id}} ${{reject-reason}}\n\
         eni-1235b8ca123456789 BPA\n\
         version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n\
         {GOOD_2}\n"
    );
    let (_, stats, items) = decode(payload.as_bytes());
    assert_eq!(stats.headers, 3);
    assert_eq!(stats.records, 4);
    assert_eq!(stats.rejected, 1);
    assert_eq!(
        items,
        vec![
            // Default v2 format until the first header.
            (1, Ok(GOOD_1.to_owned())),
            (3, Ok("3 10.0.0.1 10.0.0.2 ACCEPT".to_owned())),
            // A line with one field too many for the 4-field header.
            (4, Err(LineError::FieldCount { expected: 4, found: 5 })),
            (6, Ok("eni-1235b8ca123456789 BPA".to_owned())),
            (8, Ok(GOOD_2.to_owned())),
        ]
    );
    // A header only lasts for its payload: the next payload starts over
    // with the configured format.
    let (_, stats, items) = decode(GOOD_2.as_bytes());
    assert_eq!(stats.headers, 0);
    assert_eq!(items, vec![(1, Ok(GOOD_2.to_owned()))]);
}

#[test]
fn header_inside_a_cloudwatch_document_switches_the_format() {
    let doc = serde_json::json!({
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": "vpc-flow-logs",
        "logStream": "eni-0a1b2c3d-all",
        "subscriptionFilters": ["to-kinesis"],
        "logEvents": [
            {"id": "1", "timestamp": 1, "message": "${srcaddr} ${dstaddr}"},
            {"id": "2", "timestamp": 1, "message": "10.0.0.1 10.0.0.2"},
            {"id": "3", "timestamp": 1, "message": GOOD_1},
        ],
    });
    let (_, stats, items) = decode(&serde_json::to_vec(&doc).unwrap());
    assert_eq!(stats.headers, 1);
    assert_eq!(
        items,
        vec![
            (2, Ok("10.0.0.1 10.0.0.2".to_owned())),
            (3, Err(LineError::BadAddress { field: Field::Srcaddr, value: "2".into() })),
        ]
    );
}
