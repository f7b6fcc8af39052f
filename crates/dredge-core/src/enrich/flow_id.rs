//! `flow_id`: where an enriched record's flow came from, as one string.
//!
//! `<shard>:<sequence number>:<line>`: the Kinesis shard (`shardId-…`, from
//! the event record's `eventID`), the input record's sequence number, and the
//! 1-based line (or CloudWatch Logs log event) within the record's decoded
//! payload, as dead letters number it. A source line always gets the same id,
//! on every retry and replay, and no other line gets it: consumers drop
//! at-least-once duplicates by it. Without an `eventID` (hand-made events)
//! the shard is written `-`.

use std::fmt;

use crate::flowlog::write_json_str;

/// A flow's source position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowId<'a> {
    /// `None` when the event did not say (no `eventID`).
    pub shard: Option<&'a str>,
    pub sequence_number: &'a str,
    /// 1-based line or log event number.
    pub line: usize,
}

/// What `flow_id` names the shard when the event did not say.
pub const UNKNOWN_SHARD: &str = "-";

impl fmt::Display for FlowId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.shard.unwrap_or(UNKNOWN_SHARD), self.sequence_number, self.line)
    }
}

/// Writes flow ids as JSON strings. The `"<shard>:<sequence>:` part is the
/// same for every line of an input record: it is escaped once per record.
#[derive(Debug, Default)]
pub struct FlowIdWriter {
    /// The (shard, sequence number) the prefix is for, by address: an input
    /// record's strings stay put while its lines are written.
    of: Option<(usize, usize, usize)>,
    prefix: Vec<u8>,
}

impl FlowIdWriter {
    pub fn write(&mut self, id: &FlowId<'_>, out: &mut Vec<u8>) {
        let shard = id.shard.unwrap_or(UNKNOWN_SHARD);
        let of = (shard.as_ptr() as usize, id.sequence_number.as_ptr() as usize, id.sequence_number.len());
        if self.of != Some(of) {
            self.prefix.clear();
            let text = format!("{shard}:{}:", id.sequence_number);
            write_json_str(&text, &mut self.prefix);
            self.prefix.pop(); // the closing quote comes after the line
            self.of = Some(of);
        }
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(itoa::Buffer::new().format(id.line).as_bytes());
        out.push(b'"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_names_shard_sequence_and_line() {
        let id = FlowId { shard: Some("shardId-000000000006"), sequence_number: "4959033", line: 3 };
        assert_eq!(id.to_string(), "shardId-000000000006:4959033:3");
        assert_eq!(FlowId { shard: None, ..id }.to_string(), "-:4959033:3");
    }

    #[test]
    fn written_ids_are_the_displayed_ones_escaped() {
        let mut w = FlowIdWriter::default();
        let (a, b) = (String::from("49590"), String::from("4\"9"));
        for (shard, seq, line) in [(Some("shardId-1"), &a, 1), (Some("shardId-1"), &a, 2), (None, &b, 7)] {
            let id = FlowId { shard, sequence_number: seq, line };
            let mut out = Vec::new();
            w.write(&id, &mut out);
            assert_eq!(serde_json::from_slice::<String>(&out).unwrap(), id.to_string());
        }
    }
}
