//! Staging: one Kinesis batch of enriched records in, one Parquet object
//! per hour of flow time out, named from the batch's position so that a
//! retry of the batch overwrites its own objects. Lines that cannot be
//! written exactly (not JSON, no timestamp, a counter over `i64::MAX`, ...)
//! are counted and dead-lettered; they never fail the batch.

use std::collections::btree_map::{BTreeMap, Entry};

use dredge_columnar::{EncoderOptions, ParquetEncoder};
use dredge_core::objects::ObjectStore;
use dredge_core::stream_data::{read_lines, DEFAULT_MAX_LINES_BYTES};
use dredge_lambda::kinesis::Input;
use serde::Serialize;

use crate::error::WriteError;
use crate::layout::{BatchName, Hour, Layout};

/// A batch's shard when the event does not name one (hand-made events).
pub const LOCAL_SHARD: &str = "shardId-000000000000";

/// Lines kept verbatim in a batch's dead letter; the rest are counted.
const DEAD_LETTER_LINES: usize = 1000;

/// What staging one batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StageStats {
    pub records_in: u64,
    pub rows_written: u64,
    pub rows_rejected: u64,
    /// Input records whose data could not be read at all.
    pub records_rejected: u64,
    pub objects_written: u64,
    pub bytes_written: u64,
}

/// One rejected line or record, as the dead letter keeps it.
#[derive(Debug, Serialize)]
struct Reject<'a> {
    sequence_number: &'a str,
    /// 1-based line in the record's data; 0 for the whole record.
    line: usize,
    reason: String,
    /// The line itself (enriched JSON), when it is text.
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
}

/// Where a batch is staged, and how.
pub struct Staging<'a, S, O> {
    pub data: &'a S,
    /// Where lines that can never be written go, under `dead_letter_prefix`.
    pub dead_letter: &'a O,
    pub dead_letter_prefix: &'a str,
    pub layout: &'a Layout,
    pub encoder: EncoderOptions,
}

impl<S: ObjectStore, O: ObjectStore> Staging<'_, S, O> {
    /// Stages one batch. On failure nothing is reported done: the caller
    /// retries the batch, which overwrites what was written.
    pub async fn stage(&self, inputs: &[Input<'_>], now: i64) -> (StageStats, Result<(), WriteError>) {
        let mut stats = StageStats { records_in: inputs.len() as u64, ..StageStats::default() };
        let result = self.stage_batch(inputs, now, &mut stats).await;
        (stats, result)
    }

    async fn stage_batch(&self, inputs: &[Input<'_>], now: i64, stats: &mut StageStats) -> Result<(), WriteError> {
        let (Some(first), Some(last)) = (inputs.first(), inputs.last()) else { return Ok(()) };
        let shard = first.shard.unwrap_or(LOCAL_SHARD);
        let batch = BatchName::new(shard, first.sequence_number, last.sequence_number).ok_or_else(|| {
            WriteError::BadObject {
                key: format!("{shard}_{}_{}", first.sequence_number, last.sequence_number),
                reason: "the event's shard or sequence numbers cannot name an object".into(),
            }
        })?;
        let mut hours: BTreeMap<Hour, ParquetEncoder<Vec<u8>>> = BTreeMap::new();
        let mut rejects: Vec<u8> = Vec::new();
        let mut reject = |r: Reject<'_>, stats: &mut StageStats| {
            if r.line == 0 {
                stats.records_rejected += 1;
            } else {
                stats.rows_rejected += 1;
            }
            if stats.rows_rejected + stats.records_rejected <= DEAD_LETTER_LINES as u64 {
                serde_json::to_writer(&mut rejects, &r).expect("JSON into a Vec");
                rejects.push(b'\n');
            }
        };
        for input in inputs {
            let lines = match read_lines(input.data, DEFAULT_MAX_LINES_BYTES) {
                Ok(lines) => lines,
                Err(e) => {
                    let r =
                        Reject { sequence_number: input.sequence_number, line: 0, reason: e.to_string(), text: None };
                    reject(r, stats);
                    continue;
                }
            };
            for (i, line) in lines.iter().enumerate() {
                let at = |reason: String| Reject {
                    sequence_number: input.sequence_number,
                    line: i + 1,
                    reason,
                    text: std::str::from_utf8(line).ok(),
                };
                let Some(hour) = timestamp(line).and_then(Hour::of_millis) else {
                    reject(at("no usable `timestamp`".into()), stats);
                    continue;
                };
                let encoder = match hours.entry(hour) {
                    Entry::Occupied(e) => e.into_mut(),
                    Entry::Vacant(e) => e.insert(ParquetEncoder::new(Vec::new(), self.encoder)?),
                };
                if let Err(e) = encoder.push_line(line)? {
                    reject(at(e.to_string()), stats);
                }
            }
        }
        for (hour, encoder) in hours {
            let (body, summary) = encoder.finish()?;
            if summary.rows_written == 0 {
                continue;
            }
            stats.rows_written += summary.rows_written;
            stats.bytes_written += body.len() as u64;
            self.data.put(&self.layout.staged(hour, &batch), body).await?;
            stats.objects_written += 1;
        }
        if !rejects.is_empty() {
            let prefix = self.dead_letter_prefix.trim_end_matches('/');
            self.dead_letter.put(&format!("{prefix}/writer/{now}-{}.jsonl", batch.as_str()), rejects).await?;
        }
        Ok(())
    }
}

/// The `timestamp` member of an enriched line: found by its key (a key
/// cannot occur unescaped inside a JSON string), then parsed.
fn timestamp(line: &[u8]) -> Option<i64> {
    const KEY: &[u8] = b"\"timestamp\":";
    let at = memchr::memmem::find(line, KEY)? + KEY.len();
    let rest = &line[at..];
    let rest = &rest[rest.iter().take_while(|b| b.is_ascii_whitespace()).count()..];
    let len = rest.iter().take_while(|b| b.is_ascii_digit() || **b == b'-').count();
    std::str::from_utf8(&rest[..len]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timestamp_is_found_wherever_it_is() {
        assert_eq!(timestamp(br#"{"timestamp":1796046310123,"flow_id":"x"}"#), Some(1_796_046_310_123));
        assert_eq!(timestamp(br#"{"flow_id":"x", "timestamp": 12}"#), Some(12));
        assert_eq!(timestamp(br#"{"flow_id":"\"timestamp\":9"}"#), None);
        assert_eq!(timestamp(br#"{"timestamp":"soon"}"#), None);
        assert_eq!(timestamp(b"not json"), None);
    }
}
