//! Decoding one flow-log line against a known format.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use thiserror::Error;

use super::field::{is_id, Field, Kind, MAX_TEXT_BYTES};
use super::format::Format;
use super::record::Record;
use super::value::{Action, AddrType, FlowDirection, LogStatus, Value};

/// Why a line was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LineError {
    #[error("expected {expected} fields, found {found}")]
    FieldCount { expected: usize, found: usize },
    #[error("field `{field}`: `{value}` is not an unsigned integer")]
    NotAnInteger { field: Field, value: String },
    #[error("field `{field}`: {value} is out of range (0-{max})")]
    OutOfRange { field: Field, value: String, max: u64 },
    #[error("field `{field}`: `{value}` is not an IPv4 or IPv6 address")]
    BadAddress { field: Field, value: String },
    #[error("field `{field}`: `{value}` is not one of {allowed}")]
    BadKeyword { field: Field, value: String, allowed: &'static str },
    #[error("empty field at position {position}")]
    EmptyField { position: usize },
    #[error("field `{field}`: `{value}` is not an id of the form {prefix}<1-32 letters and digits>")]
    BadId { field: Field, value: String, prefix: &'static str },
    #[error("field `{field}`: {len} bytes, more than {max}")]
    TooLong { field: Field, len: usize, max: usize },
    #[error("line is not valid UTF-8")]
    NotUtf8,
    #[error("line of {len} bytes, longer than any flow-log line ({max} bytes at most)")]
    LineTooLong { len: u64, max: usize },
    #[error("header line: {0}")]
    BadHeader(#[from] super::format::FormatError),
}

impl LineError {
    /// A short name for the kind of error, for counting rejects by reason.
    pub fn kind(&self) -> &'static str {
        match self {
            LineError::FieldCount { .. } => "field_count",
            LineError::NotAnInteger { .. } => "not_an_integer",
            LineError::OutOfRange { .. } => "out_of_range",
            LineError::BadAddress { .. } => "bad_address",
            LineError::BadKeyword { .. } => "bad_keyword",
            LineError::BadId { .. } => "bad_id",
            LineError::TooLong { .. } => "too_long",
            LineError::EmptyField { .. } => "empty_field",
            LineError::NotUtf8 => "not_utf8",
            LineError::LineTooLong { .. } => "line_too_long",
            LineError::BadHeader(_) => "bad_header",
        }
    }
}

/// Splits on single spaces; AWS separates fields with exactly one.
#[inline]
fn tokens(line: &str) -> impl Iterator<Item = &str> {
    line.split(' ')
}

impl Format {
    /// Decodes `line` (without its line terminator) into `values`, which is
    /// cleared first and reused across lines so decoding allocates nothing.
    pub fn decode_into<'a>(&self, line: &'a str, values: &mut Vec<Value<'a>>) -> Result<(), LineError> {
        values.clear();
        let fields = self.fields();
        let expected = fields.len();
        values.reserve(expected);
        // One pass over the line: find each separator eight bytes at a time
        // and decode the token in place.
        let mut rest = line;
        let mut position = 0;
        loop {
            let Some(&field) = fields.get(position) else {
                return Err(LineError::FieldCount { expected, found: tokens(line).count() });
            };
            let (token, next) = match find_space(rest.as_bytes()) {
                Some(i) => (&rest[..i], Some(&rest[i + 1..])),
                None => (rest, None),
            };
            values.push(decode_value(field, token, position)?);
            position += 1;
            match next {
                Some(r) => rest = r,
                None => break,
            }
        }
        if values.len() != expected {
            return Err(LineError::FieldCount { expected, found: values.len() });
        }
        Ok(())
    }

    /// Decodes one line into a record that borrows `values`.
    pub fn decode<'v, 'a>(
        &'v self,
        line: &'a str,
        values: &'v mut Vec<Value<'a>>,
    ) -> Result<Record<'v, 'a>, LineError> {
        self.decode_into(line, values)?;
        Ok(Record::new(self, values))
    }
}

/// Position of the first space in `bytes`. Looks at eight bytes per step
/// (SWAR): tokens are short, so this beats both a byte loop (one
/// mispredicted branch per token) and a SIMD memchr call (setup cost per
/// call).
#[inline]
fn find_space(bytes: &[u8]) -> Option<usize> {
    const LO: u64 = u64::from_ne_bytes([0x01; 8]);
    const HI: u64 = u64::from_ne_bytes([0x80; 8]);
    const SPACES: u64 = u64::from_ne_bytes([b' '; 8]);
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("chunk of 8"));
        let x = word ^ SPACES;
        // The lowest set bit marks the first zero byte of `x` exactly
        // (false positives can only follow a true zero byte).
        let found = x.wrapping_sub(LO) & !x & HI;
        if found != 0 {
            return Some(offset + (found.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks.remainder().iter().position(|&b| b == b' ').map(|i| offset + i)
}

/// Every field's kind, indexed by `Field::index`: a table lookup in the
/// per-token hot path instead of a call to `Field::kind`.
const KINDS: [Kind; Field::COUNT] = {
    let mut kinds = [Kind::Text; Field::COUNT];
    let mut i = 0;
    while i < Field::COUNT {
        kinds[i] = Field::ALL[i].kind();
        i += 1;
    }
    kinds
};

#[inline]
fn decode_value(field: Field, token: &str, position: usize) -> Result<Value<'_>, LineError> {
    if token == "-" {
        return Ok(Value::Null);
    }
    if token.is_empty() {
        return Err(LineError::EmptyField { position });
    }
    Ok(match KINDS[field.index()] {
        Kind::UInt { max } => Value::UInt(parse_uint(field, token, max)?),
        Kind::Addr => {
            Value::Addr(parse_addr(token).ok_or_else(|| LineError::BadAddress { field, value: clip(token) })?)
        }
        Kind::Action => Value::Action(keyword(field, token, Action::parse, "ACCEPT, REJECT")?),
        Kind::LogStatus => Value::LogStatus(keyword(field, token, LogStatus::parse, "OK, NODATA, SKIPDATA")?),
        Kind::Direction => Value::Direction(keyword(field, token, FlowDirection::parse, "ingress, egress")?),
        Kind::AddrType => Value::AddrType(keyword(field, token, AddrType::parse, "IPv4, IPv6, EFA")?),
        Kind::Id { prefix } => Value::Text(parse_id(field, token, prefix)?),
        Kind::Text if token.len() > MAX_TEXT_BYTES => {
            return Err(LineError::TooLong { field, len: token.len(), max: MAX_TEXT_BYTES })
        }
        Kind::Text => Value::Text(token),
    })
}

fn parse_id<'a>(field: Field, token: &'a str, prefix: &'static str) -> Result<&'a str, LineError> {
    if is_id(prefix, token) {
        Ok(token)
    } else {
        Err(LineError::BadId { field, value: clip(token), prefix })
    }
}

/// What an error quotes of a bad token: enough to recognise it, never the
/// megabytes a hostile line may carry.
fn clip(token: &str) -> String {
    const QUOTED: usize = 64;
    if token.len() <= QUOTED {
        return token.to_owned();
    }
    let mut end = QUOTED;
    while !token.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &token[..end], token.len())
}

fn keyword<T>(field: Field, token: &str, parse: fn(&str) -> Option<T>, allowed: &'static str) -> Result<T, LineError> {
    parse(token).ok_or_else(|| LineError::BadKeyword { field, value: clip(token), allowed })
}

/// Decimal digits only: no sign, no spaces, checked for overflow.
#[inline]
fn parse_uint(field: Field, token: &str, max: u64) -> Result<u64, LineError> {
    let bytes = token.as_bytes();
    let mut value: u64 = 0;
    let overflow = if bytes.len() <= 19 {
        // At most 19 digits cannot overflow a u64: no checks per digit.
        for &b in bytes {
            let digit = b.wrapping_sub(b'0');
            if digit > 9 {
                return Err(not_an_integer(field, token));
            }
            value = value * 10 + u64::from(digit);
        }
        false
    } else {
        let mut overflow = false;
        for &b in bytes {
            let digit = b.wrapping_sub(b'0');
            if digit > 9 {
                return Err(not_an_integer(field, token));
            }
            match value.checked_mul(10).and_then(|v| v.checked_add(u64::from(digit))) {
                Some(v) => value = v,
                None => overflow = true,
            }
        }
        overflow
    };
    if overflow || value > max {
        return Err(LineError::OutOfRange { field, value: clip(token), max });
    }
    Ok(value)
}

#[cold]
fn not_an_integer(field: Field, token: &str) -> LineError {
    LineError::NotAnInteger { field, value: clip(token) }
}

#[inline]
fn parse_addr(token: &str) -> Option<IpAddr> {
    // IPv4 first: its parser rejects an IPv6 address within a few bytes,
    // which is cheaper than scanning every IPv4 token for a `:`. Neither
    // parser accepts what the other does.
    match parse_ipv4(token.as_bytes()) {
        Some(v4) => Some(IpAddr::V4(v4)),
        None => token.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
    }
}

/// Dotted-quad IPv4, exactly as `Ipv4Addr::from_str` accepts it (four
/// decimal octets of one to three digits, at most 255, no leading zero),
/// without the general-purpose parser's overhead.
#[inline]
fn parse_ipv4(b: &[u8]) -> Option<Ipv4Addr> {
    if b.len() < 7 || b.len() > 15 {
        return None;
    }
    let mut octets = [0u8; 4];
    let mut i = 0;
    for (k, octet) in octets.iter_mut().enumerate() {
        if k > 0 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let start = i;
        let mut v: u32 = 0;
        while i < b.len() && i - start < 3 && b[i].is_ascii_digit() {
            v = v * 10 + u32::from(b[i] - b'0');
            i += 1;
        }
        let digits = i - start;
        if digits == 0 || v > 255 || (digits > 1 && b[start] == b'0') {
            return None;
        }
        *octet = v as u8;
    }
    (i == b.len()).then(|| Ipv4Addr::from(octets))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(format: &str, line: &str) -> Result<Vec<String>, LineError> {
        let format = Format::parse(format).unwrap();
        let mut values = Vec::new();
        format.decode_into(line, &mut values)?;
        Ok(values.iter().map(|v| format!("{v:?}")).collect())
    }

    #[test]
    fn integers_are_bounded_by_their_field() {
        assert!(decode("srcport", "65535").is_ok());
        assert!(matches!(decode("srcport", "65536"), Err(LineError::OutOfRange { max: 65535, .. })));
        assert!(matches!(decode("protocol", "256"), Err(LineError::OutOfRange { max: 255, .. })));
        assert!(decode("bytes", "18446744073709551615").is_ok());
        assert!(matches!(decode("bytes", "18446744073709551616"), Err(LineError::OutOfRange { .. })));
        assert!(matches!(decode("bytes", "+5"), Err(LineError::NotAnInteger { .. })));
        assert!(matches!(decode("bytes", "-5"), Err(LineError::NotAnInteger { .. })));
        assert!(matches!(decode("bytes", "1e3"), Err(LineError::NotAnInteger { .. })));
    }

    #[test]
    fn addresses_must_be_valid() {
        assert!(decode("srcaddr", "10.0.0.1").is_ok());
        assert!(decode("srcaddr", "2001:db8::1").is_ok());
        assert!(matches!(decode("srcaddr", "10.0.0.256"), Err(LineError::BadAddress { .. })));
        assert!(matches!(decode("srcaddr", "10.0.0"), Err(LineError::BadAddress { .. })));
        assert!(matches!(decode("srcaddr", "2001:db8:::1"), Err(LineError::BadAddress { .. })));
    }

    #[test]
    fn dash_is_null_for_every_kind() {
        let all = Format::new(Field::ALL.to_vec()).unwrap();
        let line = vec!["-"; Field::COUNT].join(" ");
        let mut values = Vec::new();
        all.decode_into(&line, &mut values).unwrap();
        assert!(values.iter().all(Value::is_null));
    }

    #[test]
    fn field_count_must_match() {
        assert_eq!(decode("srcaddr dstaddr", "10.0.0.1"), Err(LineError::FieldCount { expected: 2, found: 1 }));
        assert_eq!(
            decode("srcaddr dstaddr", "10.0.0.1 10.0.0.2 10.0.0.3"),
            Err(LineError::FieldCount { expected: 2, found: 3 })
        );
        assert_eq!(decode("srcaddr dstaddr", "10.0.0.1  10.0.0.2"), Err(LineError::EmptyField { position: 1 }));
    }

    #[test]
    fn ids_have_their_prefix_and_a_bounded_alphanumeric_suffix() {
        assert!(decode("interface-id", "eni-1235b8ca123456789").is_ok());
        assert!(decode("interface-id", "eni-0a1b2c3d").is_ok());
        assert!(decode("vpc-id instance-id", "vpc-1 i-x").is_ok());
        assert!(decode("tgw-attachment-id", "tgw-attach-0a1b2c3d").is_ok());
        for (format, token) in [
            ("interface-id", "vpc-0a1b2c3d"),
            ("interface-id", "eni-"),
            ("interface-id", "eni-0a1b/2c3d"),
            ("vpc-id", "vpc-0123456789abcdef0123456789abcdef0"),
            ("instance-id", "eni-0a1b2c3d"),
            ("tgw-attachment-id", "tgw-0a1b2c3d"),
        ] {
            assert!(matches!(decode(format, token), Err(LineError::BadId { .. })), "{format} {token}");
        }
    }

    #[test]
    fn a_huge_token_is_rejected_and_quoted_only_in_part() {
        let huge = format!("eni-{}", "a".repeat(2 << 20));
        let err = decode("interface-id", &huge).unwrap_err();
        assert!(matches!(err, LineError::BadId { .. }));
        let message = err.to_string();
        assert!(message.len() < 300, "{message}");
        assert!(message.contains(&format!("({} bytes)", huge.len())), "{message}");

        let long_arn = "a".repeat(MAX_TEXT_BYTES + 1);
        assert_eq!(
            decode("ecs-task-arn", &long_arn),
            Err(LineError::TooLong { field: Field::EcsTaskArn, len: MAX_TEXT_BYTES + 1, max: MAX_TEXT_BYTES })
        );
        assert!(decode("ecs-task-arn", &long_arn[1..]).is_ok());
        let bad_port = "9".repeat(1 << 20);
        assert!(decode("srcport", &bad_port).unwrap_err().to_string().len() < 300);
    }
}
