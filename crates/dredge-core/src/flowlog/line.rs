//! Decoding one flow-log line against a known format.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use thiserror::Error;

use super::field::{Field, Kind};
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
    #[error("line is not valid UTF-8")]
    NotUtf8,
    #[error("header line: {0}")]
    BadHeader(#[from] super::format::FormatError),
    #[error("line is longer than {max} bytes")]
    TooLong { max: usize },
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
        let expected = self.len();
        for (position, token) in tokens(line).enumerate() {
            let Some(&field) = self.fields().get(position) else {
                return Err(LineError::FieldCount { expected, found: tokens(line).count() });
            };
            values.push(decode_value(field, token, position)?);
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

#[inline]
fn decode_value(field: Field, token: &str, position: usize) -> Result<Value<'_>, LineError> {
    if token == "-" {
        return Ok(Value::Null);
    }
    if token.is_empty() {
        return Err(LineError::EmptyField { position });
    }
    Ok(match field.kind() {
        Kind::UInt { max } => Value::UInt(parse_uint(field, token, max)?),
        Kind::Addr => {
            Value::Addr(parse_addr(token).ok_or_else(|| LineError::BadAddress { field, value: token.to_owned() })?)
        }
        Kind::Action => Value::Action(keyword(field, token, Action::parse, "ACCEPT, REJECT")?),
        Kind::LogStatus => Value::LogStatus(keyword(field, token, LogStatus::parse, "OK, NODATA, SKIPDATA")?),
        Kind::Direction => Value::Direction(keyword(field, token, FlowDirection::parse, "ingress, egress")?),
        Kind::AddrType => Value::AddrType(keyword(field, token, AddrType::parse, "IPv4, IPv6, EFA")?),
        Kind::Text => Value::Text(token),
    })
}

fn keyword<T>(field: Field, token: &str, parse: fn(&str) -> Option<T>, allowed: &'static str) -> Result<T, LineError> {
    parse(token).ok_or_else(|| LineError::BadKeyword { field, value: token.to_owned(), allowed })
}

/// Decimal digits only: no sign, no spaces, checked for overflow.
#[inline]
fn parse_uint(field: Field, token: &str, max: u64) -> Result<u64, LineError> {
    let mut value: u64 = 0;
    let mut overflow = false;
    for &b in token.as_bytes() {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return Err(LineError::NotAnInteger { field, value: token.to_owned() });
        }
        match value.checked_mul(10).and_then(|v| v.checked_add(u64::from(digit))) {
            Some(v) => value = v,
            None => overflow = true,
        }
    }
    if overflow || value > max {
        return Err(LineError::OutOfRange { field, value: token.to_owned(), max });
    }
    Ok(value)
}

#[inline]
fn parse_addr(token: &str) -> Option<IpAddr> {
    if token.len() <= 15 && !token.contains(':') {
        token.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
    } else {
        token.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    }
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
}
