//! The enriched record as one JSON object per line: the enriched stream's
//! wire format. Keys are [`columns`] names, in column order; null values
//! are left out.
//!
//! A record is written in two halves, following the schema's column order:
//! [`FlowWriter`] writes `timestamp`, `flow_id` and the flow-log fields (known as soon
//! as a line is decoded), [`SideWriter`] the side and cross columns (known
//! once the batch's lookups are done) and the closing brace. Both compile
//! their part of the schema once: the flow half per flow-log format, the
//! side half per distinct side owner, which is then copied into every
//! record of a flow of that owner rather than written field by field.

use std::ops::Range;

use crate::flowlog::{write_json_str, write_json_value, Field, Format, Record, Value};

use super::flow_id::{FlowId, FlowIdWriter};
use super::schema::{columns, Cross, Side, SideField, Source};
use super::side::SideOwner;
use crate::FastHashMap;

/// Both sides of one flow, decided.
#[derive(Debug, Clone, Copy)]
pub struct Sides<'a> {
    pub src: SideOwner<'a>,
    pub dst: SideOwner<'a>,
}

impl<'a> Sides<'a> {
    /// `Some(differs)` when both sides know the compared field.
    pub fn cross(&self, cross: Cross) -> Option<bool> {
        let f = cross.compares();
        Some(self.src.value(f)? != self.dst.value(f)?)
    }
}

/// Appends one enriched record (no trailing newline). Writing many records,
/// keep a [`FlowWriter`] and a [`SideWriter`] instead: this compiles both
/// halves for the one record.
pub fn write_enriched(
    record: &Record<'_, '_>,
    timestamp_ms: i64,
    flow_id: &FlowId<'_>,
    sides: &Sides<'_>,
    out: &mut Vec<u8>,
) {
    FlowWriter::new().write(record, timestamp_ms, flow_id, out);
    SideWriter::new().write(sides, out);
}

/// `,"name":` for a column.
fn key(name: &str) -> Box<[u8]> {
    format!(",\"{name}\":").into_bytes().into_boxed_slice()
}

/// The flow half for one format: which value goes under which key.
#[derive(Debug)]
struct FlowPlan {
    fields: Vec<Field>,
    /// (index into the record's values, key), in column order.
    columns: Vec<(usize, Box<[u8]>)>,
}

impl FlowPlan {
    fn new(format: &Format) -> Self {
        let columns = columns()
            .iter()
            .filter_map(|c| match c.source {
                Source::Flow(field) => format.position(field).map(|p| (p, key(&c.name))),
                _ => None,
            })
            .collect();
        FlowPlan { fields: format.fields().to_vec(), columns }
    }
}

/// Writes the first half of enriched records: `{"timestamp":…`,
/// `"flow_id":…` and every flow-log field of the record's format, without
/// the closing brace.
#[derive(Debug)]
pub struct FlowWriter {
    timestamp_key: Box<[u8]>,
    flow_id_key: Box<[u8]>,
    flow_ids: FlowIdWriter,
    /// One plan per format seen; a payload's header line may switch it.
    plans: Vec<FlowPlan>,
}

impl Default for FlowWriter {
    fn default() -> Self {
        FlowWriter::new()
    }
}

impl FlowWriter {
    pub fn new() -> Self {
        let cols = columns();
        assert_eq!(cols[0].source, Source::Timestamp, "the schema starts with the timestamp");
        assert_eq!(cols[1].source, Source::FlowId, "then the flow id");
        // Each half is written by one writer: the schema must list every
        // flow column before any side or cross column.
        let last_flow =
            cols.iter().rposition(|c| matches!(c.source, Source::Timestamp | Source::FlowId | Source::Flow(_)));
        let first_side = cols.iter().position(|c| matches!(c.source, Source::Side(..) | Source::Cross(_)));
        assert!(last_flow < first_side, "flow columns come before side columns");
        let mut timestamp_key = key(&cols[0].name).into_vec();
        timestamp_key[0] = b'{';
        FlowWriter {
            timestamp_key: timestamp_key.into_boxed_slice(),
            flow_id_key: key(&cols[1].name),
            flow_ids: FlowIdWriter::default(),
            plans: Vec::new(),
        }
    }

    fn plan(&mut self, format: &Format) -> &FlowPlan {
        let i = match self.plans.iter().position(|p| p.fields == format.fields()) {
            Some(i) => i,
            None => {
                self.plans.push(FlowPlan::new(format));
                self.plans.len() - 1
            }
        };
        &self.plans[i]
    }

    pub fn write(&mut self, record: &Record<'_, '_>, timestamp_ms: i64, flow_id: &FlowId<'_>, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.timestamp_key);
        out.extend_from_slice(itoa::Buffer::new().format(timestamp_ms).as_bytes());
        out.extend_from_slice(&self.flow_id_key);
        self.flow_ids.write(flow_id, out);
        let values = record.values();
        for (index, key) in &self.plan(record.format()).columns {
            let value = &values[*index];
            if !matches!(value, Value::Null) {
                out.extend_from_slice(key);
                write_json_value(value, out);
            }
        }
    }
}

/// A run of consecutive side or cross columns in the schema.
#[derive(Debug)]
enum Segment {
    /// One side's columns: (field, key).
    Side(Side, Vec<(SideField, Box<[u8]>)>),
    Cross(Cross, Box<[u8]>),
}

/// One side owner's columns, written once.
#[derive(Debug)]
struct Fragment {
    /// Per [`Segment`]: its bytes in `SideWriter::bytes` (empty for cross).
    runs: Vec<Range<usize>>,
    /// Per [`Cross`]: the compared value, interned (`None` when unknown).
    compared: Vec<Option<u32>>,
}

/// Which side owner a fragment is for: its variant and what it points to.
/// The writer borrows every owner for its lifetime, so an address cannot
/// be reused by another owner while it is a key.
type OwnerKey = (u8, usize);

fn owner_key(side: &SideOwner<'_>) -> OwnerKey {
    match side {
        SideOwner::Owned(o) => (0, std::ptr::from_ref(*o) as usize),
        SideOwner::OwnedAfterRetry(o) => (5, std::ptr::from_ref(*o) as usize),
        SideOwner::LoggingEni(o) => (1, std::ptr::from_ref(*o) as usize),
        SideOwner::Aws(r) => (2, std::ptr::from_ref(*r) as usize),
        SideOwner::Internet => (3, 0),
        SideOwner::Unattributed | SideOwner::NotYet => (4, 0),
    }
}

/// Writes the second half of enriched records: the side and cross columns
/// and the closing brace. Each distinct side owner's columns are written
/// once, then copied; a writer lives as long as the owners it borrows
/// (one batch).
#[derive(Debug)]
pub struct SideWriter<'a> {
    segments: Vec<Segment>,
    ids: FastHashMap<OwnerKey, u32>,
    fragments: Vec<Fragment>,
    bytes: Vec<u8>,
    /// Compared values, interned so that cross flags compare ids.
    strings: FastHashMap<&'a str, u32>,
}

impl Default for SideWriter<'_> {
    fn default() -> Self {
        SideWriter::new()
    }
}

impl<'a> SideWriter<'a> {
    pub fn new() -> Self {
        let mut segments: Vec<Segment> = Vec::new();
        for c in columns() {
            match c.source {
                Source::Side(side, field) => match segments.last_mut() {
                    Some(Segment::Side(s, fields)) if *s == side => fields.push((field, key(&c.name))),
                    _ => segments.push(Segment::Side(side, vec![(field, key(&c.name))])),
                },
                Source::Cross(cross) => segments.push(Segment::Cross(cross, key(&c.name))),
                Source::Timestamp | Source::FlowId | Source::Flow(_) => {}
            }
        }
        SideWriter {
            segments,
            ids: FastHashMap::default(),
            fragments: Vec::new(),
            bytes: Vec::new(),
            strings: FastHashMap::default(),
        }
    }

    fn fragment(&mut self, owner: &SideOwner<'a>) -> usize {
        let key = owner_key(owner);
        if let Some(&id) = self.ids.get(&key) {
            return id as usize;
        }
        let runs = self
            .segments
            .iter()
            .map(|segment| {
                let start = self.bytes.len();
                if let Segment::Side(_, fields) = segment {
                    for (field, key) in fields {
                        if let Some(v) = owner.value(*field) {
                            self.bytes.extend_from_slice(key);
                            write_json_str(v, &mut self.bytes);
                        }
                    }
                }
                start..self.bytes.len()
            })
            .collect();
        let compared = Cross::ALL
            .iter()
            .map(|c| {
                let v = owner.value(c.compares())?;
                let next = self.strings.len() as u32;
                Some(*self.strings.entry(v).or_insert(next))
            })
            .collect();
        self.fragments.push(Fragment { runs, compared });
        let id = self.fragments.len() - 1;
        self.ids.insert(key, id as u32);
        id
    }

    pub fn write(&mut self, sides: &Sides<'a>, out: &mut Vec<u8>) {
        let src = self.fragment(&sides.src);
        let dst = self.fragment(&sides.dst);
        let (src, dst) = (&self.fragments[src], &self.fragments[dst]);
        for (segment, (src_run, dst_run)) in self.segments.iter().zip(src.runs.iter().zip(&dst.runs)) {
            match segment {
                Segment::Side(Side::Src, _) => out.extend_from_slice(&self.bytes[src_run.clone()]),
                Segment::Side(Side::Dst, _) => out.extend_from_slice(&self.bytes[dst_run.clone()]),
                Segment::Cross(cross, key) => {
                    let i = *cross as usize;
                    if let (Some(a), Some(b)) = (src.compared[i], dst.compared[i]) {
                        out.extend_from_slice(key);
                        out.extend_from_slice(if a != b { b"true" } else { b"false" });
                    }
                }
            }
        }
        out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flowlog::Format;
    use crate::ipranges::IpRanges;
    use crate::ownership::{Owner, OwnerKind};

    fn owner(eni: &str, app: &str, az: &str) -> Owner {
        let mut o = Owner::new(eni, OwnerKind::Instance);
        o.app = Some(app.into());
        o.region = Some("us-east-1".into());
        o.az = Some(az.into());
        o
    }

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
        let a = owner("eni-a", "api", "us-east-1a");
        let b = owner("eni-b", "db", "us-east-1b");
        let sides = Sides { src: SideOwner::Owned(&a), dst: SideOwner::Owned(&b) };
        let mut out = Vec::new();
        let id = FlowId { shard: Some("shardId-000000000006"), sequence_number: "49590338", line: 4 };
        write_enriched(&rec, 1_418_530_010_000, &id, &sides, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["timestamp"], 1_418_530_010_000i64);
        assert_eq!(v["flow_id"], "shardId-000000000006:49590338:4");
        assert_eq!(v["bytes"], 840);
        assert_eq!(v["srcaddr"], "10.0.0.1");
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
        write_enriched(&rec, 0, &id, &sides, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["dst_attribution"], "unattributed");
        assert!(v.get("dst_app").is_none() && v.get("cross_az").is_none());
    }

    /// The reference: every column of the schema, in order, from the
    /// record's and sides' own accessors.
    fn by_columns(
        record: &Record<'_, '_>,
        timestamp_ms: i64,
        flow_id: &FlowId<'_>,
        sides: &Sides<'_>,
    ) -> Vec<(String, serde_json::Value)> {
        use serde_json::Value as J;
        columns()
            .iter()
            .filter_map(|c| {
                let v = match c.source {
                    Source::Timestamp => J::from(timestamp_ms),
                    Source::FlowId => J::from(flow_id.to_string()),
                    Source::Flow(f) => match record.get(f)? {
                        Value::Null => return None,
                        Value::UInt(n) => J::from(n),
                        other => J::from(other.to_string()),
                    },
                    Source::Side(Side::Src, f) => J::from(sides.src.value(f)?),
                    Source::Side(Side::Dst, f) => J::from(sides.dst.value(f)?),
                    Source::Cross(x) => J::from(sides.cross(x)?),
                };
                Some((c.name.clone(), v))
            })
            .collect()
    }

    #[test]
    fn reused_writers_match_the_schema_for_every_owner_kind_and_format() {
        let ranges = IpRanges::from_json(
            br#"{"prefixes":[{"ip_prefix":"52.94.0.0/16","region":"us-east-1","service":"S3"}],"ipv6_prefixes":[]}"#,
        )
        .unwrap();
        let aws = ranges.lookup("52.94.0.1".parse().unwrap()).unwrap();
        let a = owner("eni-a", "api", "us-east-1a");
        let b = owner("eni-b", "db\"quoted\\", "us-east-1b");
        let mut c = owner("eni-c", "api", "us-east-1a");
        c.vpc_id = Some("vpc-1".into());
        let kinds = [
            SideOwner::Owned(&a),
            SideOwner::LoggingEni(&b),
            SideOwner::Owned(&c),
            SideOwner::Aws(aws),
            SideOwner::Internet,
            SideOwner::Unattributed,
        ];
        let v2 = Format::default_v2();
        let custom = Format::parse("${srcaddr} ${dstaddr} ${vpc-id} ${start} ${flow-direction} ${bytes}").unwrap();
        let lines = [
            (&v2, "2 123456789010 eni-a 10.0.0.1 2001:db8::1 443 50000 6 10 840 1418530010 1418530070 ACCEPT OK"),
            (&custom, "10.0.0.1 52.94.0.1 vpc-1 1418530010 egress 99"),
            (&v2, "2 123456789010 eni-a - - - - - - - 1418530010 1418530070 - NODATA"),
        ];
        let mut flow = FlowWriter::new();
        let mut side = SideWriter::new();
        let sequence_numbers = ["4959001".to_string(), "4959002".to_string()];
        for (n, (format, line)) in lines.into_iter().enumerate() {
            let mut values = Vec::new();
            let rec = format.decode(line, &mut values).unwrap();
            // Lines of one input record, then of another, then without a shard.
            let id = FlowId {
                shard: (n < 2).then_some("shardId-000000000001"),
                sequence_number: &sequence_numbers[n / 2],
                line: n + 1,
            };
            for src in kinds {
                for dst in kinds {
                    let sides = Sides { src, dst };
                    let mut out = Vec::new();
                    flow.write(&rec, 7, &id, &mut out);
                    side.write(&sides, &mut out);
                    let text = String::from_utf8(out).unwrap();
                    let got: serde_json::Map<String, serde_json::Value> =
                        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
                    let want = by_columns(&rec, 7, &id, &sides);
                    assert_eq!(got, want.iter().cloned().collect(), "{line} {src:?} {dst:?}");
                    // Keys in column order.
                    let at: Vec<usize> = want.iter().map(|(k, _)| text.find(&format!("\"{k}\":")).unwrap()).collect();
                    assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
                }
            }
        }
    }
}
