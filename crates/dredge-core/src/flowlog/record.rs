//! A decoded flow-log record: a format and the values of one line.

use std::net::IpAddr;

use super::field::Field;
use super::format::Format;
use super::value::{Action, FlowDirection, LogStatus, Value};

/// One decoded line. Borrows its format and values; fields outside the
/// format read as absent (`None`), exactly like `-`.
#[derive(Debug, Clone, Copy)]
pub struct Record<'v, 'a> {
    format: &'v Format,
    values: &'v [Value<'a>],
}

impl<'v, 'a> Record<'v, 'a> {
    /// `values` must have been decoded with `format`.
    pub(crate) fn new(format: &'v Format, values: &'v [Value<'a>]) -> Self {
        debug_assert_eq!(format.len(), values.len());
        Record { format, values }
    }

    pub fn format(&self) -> &'v Format {
        self.format
    }

    /// The values, in the format's field order.
    pub fn values(&self) -> &'v [Value<'a>] {
        self.values
    }

    /// The fields of the record's format with their values, in line order.
    pub fn iter(&self) -> impl Iterator<Item = (Field, Value<'a>)> + 'v {
        self.format.fields().iter().copied().zip(self.values.iter().copied())
    }

    /// The field's value: `None` when the format lacks it, `Some(Null)` for `-`.
    #[inline]
    pub fn get(&self, field: Field) -> Option<Value<'a>> {
        self.format.position(field).map(|p| self.values[p])
    }

    #[inline]
    pub fn u64(&self, field: Field) -> Option<u64> {
        self.get(field).and_then(|v| v.as_u64())
    }

    #[inline]
    pub fn addr(&self, field: Field) -> Option<IpAddr> {
        self.get(field).and_then(|v| v.as_addr())
    }

    #[inline]
    pub fn text(&self, field: Field) -> Option<&'a str> {
        match self.get(field) {
            Some(Value::Text(t)) => Some(t),
            _ => None,
        }
    }

    pub fn action(&self) -> Option<Action> {
        match self.get(Field::Action) {
            Some(Value::Action(a)) => Some(a),
            _ => None,
        }
    }

    pub fn log_status(&self) -> Option<LogStatus> {
        match self.get(Field::LogStatus) {
            Some(Value::LogStatus(s)) => Some(s),
            _ => None,
        }
    }

    pub fn flow_direction(&self) -> Option<FlowDirection> {
        match self.get(Field::FlowDirection) {
            Some(Value::Direction(d)) => Some(d),
            _ => None,
        }
    }

    /// Whether the record reports a capture interval rather than a flow.
    pub fn is_status_only(&self) -> bool {
        matches!(self.log_status(), Some(LogStatus::NoData | LogStatus::SkipData))
    }

    /// Appends the record as one JSON object: snake_case keys, exactly the
    /// fields of its format, `-` as null, integers as numbers.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (field, value)) in self.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(field.snake_name().as_bytes());
            out.extend_from_slice(b"\":");
            write_json_value(&value, out);
        }
        out.push(b'}');
    }
}

/// Appends one value as JSON.
pub fn write_json_value(value: &Value<'_>, out: &mut Vec<u8>) {
    use std::io::Write;
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::UInt(v) => out.extend_from_slice(itoa::Buffer::new().format(*v).as_bytes()),
        Value::Addr(IpAddr::V4(a)) => {
            // The common case, without the formatting machinery.
            out.push(b'"');
            for (i, octet) in a.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                out.extend_from_slice(itoa::Buffer::new().format(octet).as_bytes());
            }
            out.push(b'"');
        }
        Value::Addr(a) => {
            // Infallible: writing to a Vec.
            let _ = write!(out, "\"{a}\"");
        }
        Value::Action(v) => write_json_str(v.as_str(), out),
        Value::LogStatus(v) => write_json_str(v.as_str(), out),
        Value::Direction(v) => write_json_str(v.as_str(), out),
        Value::AddrType(v) => write_json_str(v.as_str(), out),
        Value::Text(t) => write_json_str(t, out),
    }
}

/// Appends a JSON string, escaping only when the text needs it.
pub fn write_json_str(s: &str, out: &mut Vec<u8>) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(out, s).expect("writing to a Vec cannot fail");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_exactly_the_format_fields() {
        let format = Format::default_v2();
        let mut values = Vec::new();
        let rec = format
            .decode("2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA", &mut values)
            .unwrap();
        let mut out = Vec::new();
        rec.write_json(&mut out);
        let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let obj = json.as_object().unwrap();
        assert_eq!(obj.len(), 14);
        assert_eq!(obj["version"], 2);
        assert_eq!(obj["account_id"], "123456789010");
        assert_eq!(obj["srcaddr"], serde_json::Value::Null);
        assert_eq!(obj["start"], 1431280876u64);
        assert_eq!(obj["log_status"], "NODATA");
        assert!(rec.is_status_only());
    }

    #[test]
    fn addresses_are_written_in_canonical_form() {
        for a in ["0.0.0.0", "10.0.0.1", "192.168.100.255", "255.255.255.255", "2001:db8::1", "::ffff:10.0.0.1"] {
            let mut out = Vec::new();
            write_json_value(&Value::Addr(a.parse().unwrap()), &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), format!("\"{a}\""));
        }
    }

    #[test]
    fn text_is_escaped_when_needed() {
        let mut out = Vec::new();
        write_json_str("a\"b\\c", &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), r#""a\"b\\c""#);
    }
}
