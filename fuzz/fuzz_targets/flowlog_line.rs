//! The flow-log line decoder, `Format::decode`, on one line of arbitrary
//! text. The first input byte picks the format: 0-63 the default v2 format,
//! 254 the fields of versions 2-5 in order, 255 every field, anything else
//! a custom format (a subset of 1 to 24
//! fields in an order derived from the byte). The rest is the line.
//!
//! Beyond "no panic":
//! - a decoded line has exactly as many values as the format has fields and
//!   as the line has space-separated tokens;
//! - every value is of its field's kind and is what its token says (std's
//!   parsers agree on integers and addresses, text is the token itself,
//!   `-` and only `-` is null);
//! - the values re-render (`Display`, joined by spaces) to a line that
//!   decodes to the same values, and `write_json` writes a JSON object
//!   with exactly the format's fields and the same values;
//! - a rejected line's error describes the line (an address std accepts is
//!   never refused, an out-of-range integer is out of range, ...);
//! - a line parsed as a format (header) re-parses from its own renderings.

#![no_main]

use std::net::IpAddr;

use dredge_core::flowlog::{Field, Format, Kind, LineError, Value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let Ok(line) = std::str::from_utf8(rest) else { return };
    let format = format_for(selector);
    check_line(&format, line);
    check_header(line);
});

/// The format the first byte selects (deterministic: a crash reproduces).
fn format_for(selector: u8) -> Format {
    match selector {
        0..=63 => Format::default_v2(),
        // The fields of versions 2 to 5, as an S3 file's header names them.
        254 => Format::new(Field::ALL.iter().copied().filter(|f| f.version() <= 5).collect()).expect("fields once"),
        255 => Format::new(Field::ALL.to_vec()).expect("every field once"),
        s => {
            let n = 1 + usize::from(s) % 24;
            let mut state = u32::from(s).wrapping_mul(2_654_435_761) | 1;
            let mut fields = Vec::with_capacity(n);
            while fields.len() < n {
                // xorshift32
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let f = Field::ALL[state as usize % Field::COUNT];
                if !fields.contains(&f) {
                    fields.push(f);
                }
            }
            Format::new(fields).expect("distinct fields")
        }
    }
}

fn check_line(format: &Format, line: &str) {
    let tokens: Vec<&str> = line.split(' ').collect();
    let mut values = Vec::new();
    match format.decode(line, &mut values) {
        Ok(record) => {
            assert_eq!(tokens.len(), format.len(), "decoded a line with the wrong number of tokens");
            assert_eq!(record.values().len(), format.len());
            for ((field, value), token) in record.iter().zip(&tokens) {
                check_value(field, &value, token);
            }
            for &f in Field::ALL {
                assert_eq!(record.get(f).is_some(), format.contains(f), "{f}");
            }

            // Re-rendered, the values decode to themselves.
            let rendered: Vec<String> = record.values().iter().map(|v| v.to_string()).collect();
            let rendered = rendered.join(" ");
            let mut again = Vec::new();
            match format.decode(&rendered, &mut again) {
                Ok(second) => assert_eq!(second.values(), record.values(), "re-rendered as {rendered:?}"),
                Err(e) => panic!("{line:?} re-rendered as {rendered:?} does not decode: {e}"),
            }

            // JSON: exactly the format's fields, the same values.
            let mut out = Vec::new();
            record.write_json(&mut out);
            let json: serde_json::Value =
                serde_json::from_slice(&out).unwrap_or_else(|e| panic!("write_json wrote invalid JSON ({e}): {out:?}"));
            let object = json.as_object().expect("write_json writes an object");
            assert_eq!(object.len(), format.len());
            for (field, value) in record.iter() {
                let written = &object[field.snake_name()];
                check_json(field, &value, written);
            }
        }
        Err(error) => {
            let _ = error.to_string();
            check_error(format, &tokens, &error);
        }
    }
}

fn check_value(field: Field, value: &Value<'_>, token: &str) {
    if token == "-" {
        assert_eq!(*value, Value::Null, "{field}");
        return;
    }
    match (field.kind(), value) {
        (Kind::UInt { max }, Value::UInt(v)) => {
            assert!(*v <= max, "{field}: {v} > {max}");
            assert!(token.bytes().all(|b| b.is_ascii_digit()), "{field}: {token:?} decoded as {v}");
            assert_eq!(token.parse::<u64>().ok(), Some(*v), "{field}: {token:?}");
        }
        (Kind::Addr, Value::Addr(a)) => {
            assert_eq!(token.parse::<IpAddr>().ok(), Some(*a), "{field}: {token:?}");
        }
        (Kind::Action, Value::Action(v)) => assert_eq!(v.as_str(), token),
        (Kind::LogStatus, Value::LogStatus(v)) => assert_eq!(v.as_str(), token),
        (Kind::Direction, Value::Direction(v)) => assert_eq!(v.as_str(), token),
        (Kind::AddrType, Value::AddrType(v)) => assert_eq!(v.as_str(), token),
        (Kind::Text, Value::Text(t)) => {
            assert_eq!(*t, token);
            assert!(!t.is_empty() && !t.contains(' ') && t.len() <= dredge_core::flowlog::MAX_TEXT_BYTES);
        }
        (Kind::Id { prefix }, Value::Text(t)) => {
            assert_eq!(*t, token);
            assert!(dredge_core::flowlog::is_id(prefix, t), "{field}: {t:?}");
        }
        (kind, value) => panic!("{field} ({kind:?}) decoded {token:?} as {value:?}"),
    }
}

fn check_json(field: Field, value: &Value<'_>, written: &serde_json::Value) {
    use serde_json::Value as J;
    match (value, written) {
        (Value::Null, J::Null) => {}
        (Value::UInt(v), J::Number(n)) => assert_eq!(n.as_u64(), Some(*v), "{field}"),
        (Value::Addr(a), J::String(s)) => assert_eq!(s.parse::<IpAddr>().ok(), Some(*a), "{field}"),
        (Value::Text(t), J::String(s)) => assert_eq!(t, s, "{field}"),
        (Value::Action(_) | Value::LogStatus(_) | Value::Direction(_) | Value::AddrType(_), J::String(s)) => {
            assert_eq!(*s, value.to_string(), "{field}")
        }
        (value, written) => panic!("{field}: {value:?} written as {written}"),
    }
}

/// The token an error quotes: the value itself, or, for a long token, the
/// token whose first bytes and length the clipped quote gives.
fn quoted<'t>(tokens: &[&'t str], value: &str) -> &'t str {
    if let Some(t) = tokens.iter().find(|t| **t == value) {
        return t;
    }
    let (head, tail) = value.rsplit_once("... (").unwrap_or_else(|| panic!("{value:?} is not a token of the line"));
    let len: usize = tail.strip_suffix(" bytes)").and_then(|n| n.parse().ok()).expect("a clipped quote's length");
    assert!(head.len() <= 64 && len > 64, "{value:?}");
    tokens
        .iter()
        .find(|t| t.len() == len && t.starts_with(head))
        .unwrap_or_else(|| panic!("{value:?} is not a token of the line"))
}

fn check_error(format: &Format, tokens: &[&str], error: &LineError) {
    let field_at = |value: &str| tokens.iter().position(|t| *t == value).and_then(|p| format.fields().get(p));
    let error = &match error.clone() {
        LineError::NotAnInteger { field, value } => {
            LineError::NotAnInteger { field, value: quoted(tokens, &value).into() }
        }
        LineError::OutOfRange { field, value, max } => {
            LineError::OutOfRange { field, value: quoted(tokens, &value).into(), max }
        }
        LineError::BadAddress { field, value } => LineError::BadAddress { field, value: quoted(tokens, &value).into() },
        LineError::BadKeyword { field, value, allowed } => {
            LineError::BadKeyword { field, value: quoted(tokens, &value).into(), allowed }
        }
        LineError::BadId { field, value, prefix } => {
            LineError::BadId { field, value: quoted(tokens, &value).into(), prefix }
        }
        other => other,
    };
    match error {
        LineError::FieldCount { expected, found } => {
            assert_eq!(*expected, format.len());
            assert_eq!(*found, tokens.len());
            assert_ne!(found, expected);
        }
        LineError::EmptyField { position } => {
            assert_eq!(tokens.get(*position), Some(&""), "empty field {position}");
        }
        LineError::NotAnInteger { field, value } => {
            assert!(matches!(field.kind(), Kind::UInt { .. }));
            assert!(!value.bytes().all(|b| b.is_ascii_digit()), "{field}: {value:?} is digits");
            assert!(field_at(value).is_some(), "{value:?} is not a token of the line");
        }
        LineError::OutOfRange { field, value, max } => {
            let Kind::UInt { max: field_max } = field.kind() else { panic!("{field} is not an integer") };
            assert_eq!(*max, field_max);
            assert!(value.bytes().all(|b| b.is_ascii_digit()), "{field}: {value:?}");
            assert!(value.parse::<u64>().map_or(true, |v| v > *max), "{field}: {value} is in range");
        }
        LineError::BadAddress { field, value } => {
            assert_eq!(field.kind(), Kind::Addr);
            assert!(value.parse::<IpAddr>().is_err(), "{field}: std accepts {value:?}, the decoder refused it");
        }
        LineError::BadKeyword { field, value, allowed } => {
            assert!(!allowed.split(", ").any(|a| a == value), "{field}: {value:?} is allowed");
        }
        LineError::BadId { field, value, prefix } => {
            assert_eq!(field.kind(), Kind::Id { prefix: *prefix });
            assert!(!dredge_core::flowlog::is_id(prefix, value), "{field}: {value:?} is an id");
        }
        LineError::TooLong { field, len, max } => {
            assert_eq!(field.kind(), Kind::Text);
            assert!(*len > *max && *max == dredge_core::flowlog::MAX_TEXT_BYTES);
        }
        LineError::LineTooLong { .. } => panic!("the line decoder never holds a line it cannot take"),
        LineError::NotUtf8 | LineError::BadHeader(_) => panic!("Format::decode returned {error:?}"),
    }
}

/// A line read as a header: the format re-parses from both of its spellings.
fn check_header(line: &str) {
    let parsed = Format::parse(line);
    if let Some(header) = Format::from_header(line) {
        assert_eq!(header, parsed, "from_header and parse disagree on {line:?}");
    }
    if let Ok(format) = parsed {
        assert_eq!(Format::parse(&format.to_string()).as_ref(), Ok(&format));
        assert_eq!(Format::parse(&format.to_aws_string()).as_ref(), Ok(&format));
        assert!(format.version() >= 2 && format.version() <= 8);
        for (i, &f) in format.fields().iter().enumerate() {
            assert_eq!(format.position(f), Some(i));
        }
    }
}
