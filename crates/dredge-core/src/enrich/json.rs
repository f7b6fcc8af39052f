//! The enriched record as one JSON object per line: the enriched stream's
//! wire format. Keys are [`columns`] names; null values are left out.

use crate::flowlog::{write_json_str, write_json_value, Record, Value};

use super::schema::{columns, Source};
use super::side::SideOwner;

/// Both sides of one flow, decided.
#[derive(Debug, Clone, Copy)]
pub struct Sides<'a> {
    pub src: SideOwner<'a>,
    pub dst: SideOwner<'a>,
}

impl<'a> Sides<'a> {
    fn side(&self, side: super::schema::Side) -> &SideOwner<'a> {
        match side {
            super::schema::Side::Src => &self.src,
            super::schema::Side::Dst => &self.dst,
        }
    }

    /// `Some(differs)` when both sides know the compared field.
    pub fn cross(&self, cross: super::schema::Cross) -> Option<bool> {
        let f = cross.compares();
        Some(self.src.value(f)? != self.dst.value(f)?)
    }
}

/// Appends one enriched record (no trailing newline).
pub fn write_enriched(record: &Record<'_, '_>, timestamp_ms: i64, sides: &Sides<'_>, out: &mut Vec<u8>) {
    out.push(b'{');
    let mut first = true;
    let mut key = |out: &mut Vec<u8>, name: &str| {
        if !first {
            out.push(b',');
        }
        first = false;
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
    };
    for col in columns() {
        match col.source {
            Source::Timestamp => {
                key(out, &col.name);
                out.extend_from_slice(itoa::Buffer::new().format(timestamp_ms).as_bytes());
            }
            Source::Flow(field) => match record.get(field) {
                None | Some(Value::Null) => {}
                Some(v) => {
                    key(out, &col.name);
                    write_json_value(&v, out);
                }
            },
            Source::Side(side, field) => {
                if let Some(v) = sides.side(side).value(field) {
                    key(out, &col.name);
                    write_json_str(v, out);
                }
            }
            Source::Cross(c) => {
                if let Some(b) = sides.cross(c) {
                    key(out, &col.name);
                    out.extend_from_slice(if b { b"true" } else { b"false" });
                }
            }
        }
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flowlog::Format;
    use crate::ownership::{Owner, OwnerKind};

    #[test]
    fn writes_flow_fields_sides_and_cross_flags() {
        let format = Format::default_v2();
        let mut values = Vec::new();
        let rec = format
            .decode(
                "2 123456789010 eni-a 10.0.0.1 10.0.0.2 443 50000 6 10 840 1418530010 1418530070 ACCEPT OK",
                &mut values,
            )
            .unwrap();
        let mut a = Owner::new("eni-a", OwnerKind::Instance);
        a.app = Some("api".into());
        a.region = Some("us-east-1".into());
        a.az = Some("us-east-1a".into());
        let mut b = Owner::new("eni-b", OwnerKind::Instance);
        b.app = Some("db".into());
        b.region = Some("us-east-1".into());
        b.az = Some("us-east-1b".into());
        let sides = Sides { src: SideOwner::Owned(&a), dst: SideOwner::Owned(&b) };
        let mut out = Vec::new();
        write_enriched(&rec, 1_418_530_010_000, &sides, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["timestamp"], 1_418_530_010_000i64);
        assert_eq!(v["bytes"], 840);
        assert_eq!(v["src_app"], "api");
        assert_eq!(v["dst_app"], "db");
        assert_eq!(v["src_attribution"], "owner");
        assert_eq!(v["src_eni_id"], "eni-a");
        assert_eq!(v["cross_region"], false);
        assert_eq!(v["cross_az"], true);
        assert!(v.get("cross_vpc").is_none(), "unknown on both sides: null");
        assert!(v.get("vpc_id").is_none(), "not in the format: null");

        let sides = Sides { src: SideOwner::Owned(&a), dst: SideOwner::Unattributed };
        out.clear();
        write_enriched(&rec, 0, &sides, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["dst_attribution"], "unattributed");
        assert!(v.get("dst_app").is_none() && v.get("cross_az").is_none());
    }
}
