//! Property tests: random custom formats (any non-empty subset of the 58
//! fields, in any order), random records valid for each field's kind (or
//! `-`), rendered to text and decoded back.
//!
//! Three paths: `Format::decode_into` on one line; a raw text payload with a
//! header line in a random spelling, optionally gzip-compressed (one or two
//! members); a CloudWatch Logs subscription document carrying unknown extra
//! fields, optionally gzip-compressed.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use flate2::write::GzEncoder;
use flate2::Compression;
use proptest::prelude::*;
use proptest::sample::{select, subsequence};

use dredge_core::flowlog::{
    Action, AddrType, DecodeOptions, Decoder, Field, FlowDirection, Format, Item, Kind, LogStatus, PayloadKind, Value,
};

/// An owned, generated field value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Gen {
    Null,
    UInt(u64),
    Addr(IpAddr),
    Action(Action),
    LogStatus(LogStatus),
    Direction(FlowDirection),
    AddrType(AddrType),
    Text(String),
}

impl Gen {
    /// The token AWS would write.
    fn render(&self) -> String {
        match self {
            Gen::Null => "-".to_owned(),
            Gen::UInt(v) => v.to_string(),
            Gen::Addr(a) => a.to_string(),
            Gen::Action(a) => a.as_str().to_owned(),
            Gen::LogStatus(s) => s.as_str().to_owned(),
            Gen::Direction(d) => d.as_str().to_owned(),
            Gen::AddrType(t) => t.as_str().to_owned(),
            Gen::Text(t) => t.clone(),
        }
    }

    fn of(value: &Value<'_>) -> Gen {
        match *value {
            Value::Null => Gen::Null,
            Value::UInt(v) => Gen::UInt(v),
            Value::Addr(a) => Gen::Addr(a),
            Value::Action(a) => Gen::Action(a),
            Value::LogStatus(s) => Gen::LogStatus(s),
            Value::Direction(d) => Gen::Direction(d),
            Value::AddrType(t) => Gen::AddrType(t),
            Value::Text(t) => Gen::Text(t.to_owned()),
        }
    }
}

fn ipv6() -> impl Strategy<Value = Ipv6Addr> {
    prop_oneof![
        // Dense, sparse (exercises `::` compression), IPv4-mapped, loopback.
        any::<[u16; 8]>().prop_map(Ipv6Addr::from),
        prop::array::uniform8(prop_oneof![Just(0u16), any::<u16>()]).prop_map(Ipv6Addr::from),
        any::<u32>().prop_map(|v| Ipv4Addr::from(v).to_ipv6_mapped()),
        Just(Ipv6Addr::LOCALHOST),
        Just(Ipv6Addr::UNSPECIFIED),
    ]
}

fn addr() -> impl Strategy<Value = IpAddr> {
    prop_oneof![any::<u32>().prop_map(|v| IpAddr::V4(Ipv4Addr::from(v))), ipv6().prop_map(IpAddr::V6),]
}

fn uint(max: u64) -> BoxedStrategy<u64> {
    prop_oneof![0..=max, Just(max), Just(0u64)].boxed()
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z]{1,4}-[0-9]{1,17}",
        1 => "arn:aws:ecs:[a-z]{2}-[a-z]{4,9}-[1-9]:[0-9]{12}:task/[a-z0-9-]{1,12}/[0-9a-f]{32}",
        1 => "[A-Z][A-Z0-9_]{0,20}",
    ]
}

/// A value valid for `field`'s kind, or null.
fn value(field: Field) -> BoxedStrategy<Gen> {
    let present = match field.kind() {
        Kind::UInt { max } => uint(max).prop_map(Gen::UInt).boxed(),
        Kind::Addr => addr().prop_map(Gen::Addr).boxed(),
        Kind::Action => select(Action::ALL).prop_map(Gen::Action).boxed(),
        Kind::LogStatus => select(LogStatus::ALL).prop_map(Gen::LogStatus).boxed(),
        Kind::Direction => select(FlowDirection::ALL).prop_map(Gen::Direction).boxed(),
        Kind::AddrType => select(AddrType::ALL).prop_map(Gen::AddrType).boxed(),
        Kind::Text => text().prop_map(Gen::Text).boxed(),
        Kind::Id { prefix } => {
            "[0-9a-f]{8}|[0-9a-f]{17}".prop_map(move |hex| Gen::Text(format!("{prefix}{hex}"))).boxed()
        }
    };
    prop_oneof![1 => Just(Gen::Null), 5 => present].boxed()
}

/// A random non-empty subset of the fields, in random order.
fn fields() -> impl Strategy<Value = Vec<Field>> {
    subsequence(Field::ALL.to_vec(), 1..=Field::COUNT).prop_shuffle()
}

fn record(fields: &[Field]) -> impl Strategy<Value = Vec<Gen>> {
    fields.iter().map(|&f| value(f)).collect::<Vec<_>>()
}

/// A format and `1..=max_lines` records for it.
fn format_and_records(max_lines: usize) -> impl Strategy<Value = (Vec<Field>, Vec<Vec<Gen>>)> {
    fields().prop_flat_map(move |fields| {
        let records = prop::collection::vec(record(&fields), 1..=max_lines);
        (Just(fields), records)
    })
}

fn render_line(record: &[Gen]) -> String {
    record.iter().map(Gen::render).collect::<Vec<_>>().join(" ")
}

/// How the header line spells the field names.
#[derive(Debug, Clone, Copy)]
enum Spelling {
    Hyphen,
    Underscore,
    Placeholder,
}

fn header(format: &Format, spelling: Spelling) -> String {
    match spelling {
        Spelling::Hyphen => format.to_string(),
        Spelling::Underscore => format.fields().iter().map(|f| f.snake_name()).collect::<Vec<_>>().join(" "),
        Spelling::Placeholder => format.to_aws_string(),
    }
}

/// How the payload is compressed.
#[derive(Debug, Clone, Copy)]
enum Gzip {
    None,
    One,
    /// Two concatenated gzip members, split at this fraction (per mille).
    Two(u16),
}

fn gzip_strategy() -> impl Strategy<Value = Gzip> {
    prop_oneof![Just(Gzip::None), Just(Gzip::One), (0u16..=1000).prop_map(Gzip::Two)]
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn compress(bytes: Vec<u8>, how: Gzip) -> Vec<u8> {
    match how {
        Gzip::None => bytes,
        Gzip::One => gz(&bytes),
        Gzip::Two(at) => {
            let split = bytes.len() * usize::from(at) / 1000;
            let mut out = gz(&bytes[..split]);
            out.extend(gz(&bytes[split..]));
            out
        }
    }
}

/// Runs the decoder over `payload`, returning each item as
/// `(line number, Ok(decoded values) | Err(error text))`.
type Decoded = Vec<(usize, Result<Vec<Gen>, String>)>;

fn run(decoder: &Decoder, payload: &[u8]) -> (PayloadKind, dredge_core::flowlog::DecodeStats, Decoded) {
    let mut items = Vec::new();
    let (kind, stats) = decoder
        .decode(payload, &mut |item| match item {
            Item::Record { line, record } => {
                items.push((line, Ok(record.iter().map(|(_, v)| Gen::of(&v)).collect())));
            }
            Item::Rejected { line, error, .. } => items.push((line, Err(error.to_string()))),
        })
        .expect("payload refused");
    (kind, stats, items)
}

fn count_status(records: &[Vec<Gen>], fields: &[Field], status: LogStatus) -> u64 {
    let Some(p) = fields.iter().position(|&f| f == Field::LogStatus) else {
        return 0;
    };
    records.iter().filter(|r| r[p] == Gen::LogStatus(status)).count() as u64
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// One line through `decode_into`, and the same line rendered back.
    #[test]
    fn line_round_trips((fields, records) in format_and_records(1)) {
        let format = Format::new(fields.clone()).unwrap();
        prop_assert_eq!(format.fields(), &fields[..]);
        prop_assert_eq!(format.version(), fields.iter().map(|f| f.version()).max().unwrap());
        let line = render_line(&records[0]);
        let mut values = Vec::new();
        format.decode_into(&line, &mut values).map_err(|e| TestCaseError::fail(format!("{e}: {line}")))?;
        let decoded: Vec<Gen> = values.iter().map(Gen::of).collect();
        prop_assert_eq!(&decoded, &records[0]);
        // Rendering the decoded values gives the line back exactly.
        let again = values.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(" ");
        prop_assert_eq!(&again, &line);
        // The record view agrees with the raw values, field by field.
        let record = format.decode(&line, &mut values).unwrap();
        for (i, f) in fields.iter().enumerate() {
            prop_assert_eq!(record.get(*f).map(|v| Gen::of(&v)), Some(records[0][i].clone()));
        }
        for f in Field::ALL.iter().filter(|f| !fields.contains(f)) {
            prop_assert_eq!(record.get(*f), None);
        }
        // JSON output parses and has exactly the format's keys.
        let mut out = Vec::new();
        record.write_json(&mut out);
        let json: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&out).unwrap();
        prop_assert_eq!(json.len(), fields.len());
        for (f, g) in fields.iter().zip(&records[0]) {
            let expected = match g {
                Gen::Null => serde_json::Value::Null,
                Gen::UInt(v) => serde_json::Value::from(*v),
                other => serde_json::Value::from(other.render()),
            };
            prop_assert_eq!(&json[f.snake_name()], &expected);
        }
    }

}

// Payload-level cases build up to a dozen records of up to 58 fields each:
// fewer cases keep the debug-mode run short.
proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// The buffer is reused across lines of different formats.
    #[test]
    fn buffer_reuse_across_formats(
        (fields_a, records_a) in format_and_records(3),
        (fields_b, records_b) in format_and_records(3),
    ) {
        let a = Format::new(fields_a).unwrap();
        let b = Format::new(fields_b).unwrap();
        let lines_a: Vec<String> = records_a.iter().map(|r| render_line(r)).collect();
        let lines_b: Vec<String> = records_b.iter().map(|r| render_line(r)).collect();
        let mut values = Vec::new();
        for (i, line) in lines_a.iter().enumerate() {
            a.decode_into(line, &mut values).unwrap();
            prop_assert_eq!(values.iter().map(Gen::of).collect::<Vec<_>>(), records_a[i].clone());
            if let Some(other) = lines_b.get(i) {
                b.decode_into(other, &mut values).unwrap();
                prop_assert_eq!(values.iter().map(Gen::of).collect::<Vec<_>>(), records_b[i].clone());
            }
        }
    }

    /// Header line (random spelling) plus lines in a text payload, plain or
    /// gzip-compressed, with CRLF or LF and optional blank lines.
    #[test]
    fn text_payload_with_header_round_trips(
        (fields, records) in format_and_records(12),
        spelling in prop_oneof![Just(Spelling::Hyphen), Just(Spelling::Underscore), Just(Spelling::Placeholder)],
        gzip in gzip_strategy(),
        crlf in any::<bool>(),
        blank_every in prop::option::of(1usize..4),
        trailing_newline in any::<bool>(),
    ) {
        let format = Format::new(fields.clone()).unwrap();
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut text = header(&format, spelling);
        // Physical line number (1-based) of each record.
        let mut numbers = Vec::new();
        let mut line_no = 1;
        for (i, r) in records.iter().enumerate() {
            if blank_every.is_some_and(|n| i % n == 0) {
                text.push_str(eol);
                line_no += 1;
                text.push_str("   ");
            }
            text.push_str(eol);
            line_no += 1;
            text.push_str(&render_line(r));
            numbers.push(line_no);
        }
        if trailing_newline {
            text.push_str(eol);
        }
        let payload = compress(text.into_bytes(), gzip);
        let (kind, stats, items) = run(&Decoder::default(), &payload);
        prop_assert_eq!(kind, PayloadKind::Text);
        prop_assert_eq!(stats.payloads, 1);
        prop_assert_eq!(stats.headers, 1);
        prop_assert_eq!(stats.rejected, 0);
        prop_assert_eq!(stats.records, records.len() as u64);
        prop_assert_eq!(stats.no_data, count_status(&records, &fields, LogStatus::NoData));
        prop_assert_eq!(stats.skip_data, count_status(&records, &fields, LogStatus::SkipData));
        let expected: Decoded = numbers.into_iter().zip(records.iter().cloned().map(Ok)).collect();
        prop_assert_eq!(items, expected);
    }

    /// The same lines as CloudWatch Logs log events in a subscription
    /// document (with fields the decoder does not know), plain or gzip.
    #[test]
    fn cloudwatch_document_round_trips(
        (fields, records) in format_and_records(12),
        gzip in gzip_strategy(),
        policy_level in prop::option::of(select(&["ACCOUNT_LEVEL_POLICY", "LOG_GROUP_LEVEL_POLICY"][..])),
        pretty in any::<bool>(),
    ) {
        let format = Format::new(fields.clone()).unwrap();
        let events: Vec<serde_json::Value> = records
            .iter()
            .enumerate()
            .map(|(i, r)| serde_json::json!({
                "id": format!("3195310660696698337880902507980421114328961542429{i:04}"),
                "timestamp": 1_432_826_855_000u64 + i as u64,
                "message": render_line(r),
                "extractedFields": {"unknown": "ignored"},
            }))
            .collect();
        let mut doc = serde_json::json!({
            "messageType": "DATA_MESSAGE",
            "owner": "123456789012",
            "logGroup": "vpc-flow-logs",
            "logStream": "eni-0abc1234567890def-all",
            "subscriptionFilters": ["to-kinesis"],
            "logEvents": events,
            "someFutureField": [1, {"nested": true}, null],
        });
        if let Some(level) = policy_level {
            doc["policyLevel"] = serde_json::Value::from(level);
        }
        let json = if pretty { serde_json::to_vec_pretty(&doc) } else { serde_json::to_vec(&doc) }.unwrap();
        let payload = compress(json, gzip);
        let decoder = Decoder::new(DecodeOptions { format, ..DecodeOptions::default() });
        let (kind, stats, items) = run(&decoder, &payload);
        prop_assert_eq!(kind, PayloadKind::CloudWatchData);
        prop_assert_eq!(stats.control_messages, 0);
        prop_assert_eq!(stats.headers, 0);
        prop_assert_eq!(stats.rejected, 0);
        prop_assert_eq!(stats.records, records.len() as u64);
        prop_assert_eq!(stats.no_data, count_status(&records, &fields, LogStatus::NoData));
        // Items are numbered by log event, from 1.
        let expected: Decoded = (1..).zip(records.iter().cloned().map(Ok)).collect();
        prop_assert_eq!(items, expected);
    }
}

/// Any string of address-like characters, including near-misses.
fn address_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9.]{0,17}",
        "[0-9]{1,4}\\.[0-9]{1,4}\\.[0-9]{1,4}\\.[0-9]{1,4}",
        "(0|00|01|1|25|255|256|099|100){1}\\.(0|1|255|256|007){1}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        "[0-9a-fA-F:.]{0,41}",
        "[0-9a-f]{0,4}(:[0-9a-f]{0,4}){1,8}",
        "::ffff:[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        addr().prop_map(|a| a.to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// An address field accepts exactly what the standard library's
    /// `IpAddr` parser accepts, with the same value.
    #[test]
    fn address_field_agrees_with_std(token in address_like()) {
        let format = Format::parse("srcaddr").unwrap();
        let mut values = Vec::new();
        let ours = format.decode_into(&token, &mut values).map(|()| values[0]);
        match token.parse::<IpAddr>() {
            Ok(std) => prop_assert_eq!(ours, Ok(Value::Addr(std))),
            Err(_) if token == "-" => prop_assert_eq!(ours, Ok(Value::Null)),
            Err(_) if token.is_empty() => {
                prop_assert_eq!(ours, Err(dredge_core::flowlog::LineError::EmptyField { position: 0 }))
            }
            Err(_) => prop_assert!(
                matches!(ours, Err(dredge_core::flowlog::LineError::BadAddress { .. })),
                "{:?} accepted as {:?}", token, ours
            ),
        }
    }

    /// Tokens of every length around the separator search's 8-byte steps,
    /// including multi-byte UTF-8 text, split exactly where the spaces are.
    #[test]
    fn tokens_of_any_length_and_bytes_split_exactly(
        tokens in prop::collection::vec("[a-zé漢0-9\u{1F600}-]{1,40}", 1..=Field::COUNT),
    ) {
        prop_assume!(tokens.iter().all(|t| t != "-"));
        let text_fields: Vec<Field> = Field::ALL.iter().copied().filter(|f| f.kind() == Kind::Text).collect();
        let n = tokens.len().min(text_fields.len());
        let format = Format::new(text_fields[..n].to_vec()).unwrap();
        let line = tokens[..n].join(" ");
        let mut values = Vec::new();
        format.decode_into(&line, &mut values).unwrap();
        let decoded: Vec<&str> = values.iter().map(|v| v.as_text().unwrap()).collect();
        prop_assert_eq!(decoded, tokens[..n].iter().map(String::as_str).collect::<Vec<_>>());
    }
}
