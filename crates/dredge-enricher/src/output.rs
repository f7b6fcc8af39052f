//! Enriched lines into Kinesis records, records into PutRecords calls, and
//! retries of exactly the entries that failed. Encoding (the lines) is the
//! caller's; transport is the sink's.

use std::hash::{Hash, Hasher};
use std::time::Duration;

use dredge_core::sink::{OutRecord, RecordSink, MAX_BYTES_PER_CALL, MAX_RECORDS_PER_CALL, MAX_RECORD_BYTES};

/// An output record and the earliest input record it carries lines of.
#[derive(Debug, Clone)]
pub struct Packed {
    pub record: OutRecord,
    pub first_source: usize,
}

/// Packs newline-delimited lines into records of at most `max_bytes`.
#[derive(Debug)]
pub struct Packer {
    max_bytes: usize,
    seed: String,
    done: Vec<Packed>,
    current: Vec<u8>,
    current_first: usize,
}

impl Packer {
    /// `seed` makes partition keys differ between batches (the batch's
    /// first sequence number is a good one).
    pub fn new(seed: &str) -> Self {
        Packer::with_max_bytes(seed, MAX_RECORD_BYTES)
    }

    pub fn with_max_bytes(seed: &str, max_bytes: usize) -> Self {
        Packer { max_bytes, seed: seed.to_owned(), done: Vec::new(), current: Vec::new(), current_first: usize::MAX }
    }

    /// Adds one line (without its newline) from input record `source`.
    pub fn push(&mut self, source: usize, line: &[u8]) {
        if !self.current.is_empty() && self.current.len() + line.len() + 1 > self.max_bytes {
            self.flush();
        }
        self.current.extend_from_slice(line);
        self.current.push(b'\n');
        self.current_first = self.current_first.min(source);
    }

    fn flush(&mut self) {
        if self.current.is_empty() {
            return;
        }
        let data = std::mem::take(&mut self.current);
        let partition_key = partition_key(&self.seed, self.done.len());
        self.done.push(Packed { record: OutRecord { partition_key, data }, first_source: self.current_first });
        self.current_first = usize::MAX;
    }

    pub fn finish(mut self) -> Vec<Packed> {
        self.flush();
        self.done
    }
}

/// A well-spread key per output record: consecutive records land on
/// different shards, whatever the input's own keys were.
fn partition_key(seed: &str, index: usize) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    seed.hash(&mut h);
    index.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// What a delivery did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub records: u64,
    pub bytes: u64,
    pub calls: u64,
    /// Entries put again after failing.
    pub retried: u64,
    /// The earliest input record with output that could not be delivered.
    pub failed_from: Option<usize>,
}

/// Splits records into PutRecords-sized calls.
fn calls(records: &[Packed]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, p) in records.iter().enumerate() {
        let size = p.record.data.len() + p.record.partition_key.len();
        if i > start && (i - start == MAX_RECORDS_PER_CALL || bytes + size > MAX_BYTES_PER_CALL) {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < records.len() {
        out.push(start..records.len());
    }
    out
}

/// Puts every record, retrying failed entries (and transiently failed
/// calls) with exponential backoff, `attempts` times in all.
pub async fn deliver<K: RecordSink>(sink: &K, records: Vec<Packed>, attempts: u32, backoff: Duration) -> Delivery {
    let mut d = Delivery::default();
    let mut pending = records;
    let mut given_up: Vec<Packed> = Vec::new();
    for attempt in 0..attempts.max(1) {
        if pending.is_empty() {
            break;
        }
        if attempt > 0 {
            d.retried += pending.len() as u64;
            tokio::time::sleep(backoff.saturating_mul(1 << (attempt - 1).min(10))).await;
        }
        let mut failed = Vec::new();
        for range in calls(&pending) {
            let batch: Vec<OutRecord> = pending[range.clone()].iter().map(|p| p.record.clone()).collect();
            d.calls += 1;
            match sink.put_records(&batch).await {
                Ok(results) => {
                    for (p, result) in pending[range].iter().zip(results) {
                        match result {
                            Ok(()) => {
                                d.records += 1;
                                d.bytes += p.record.data.len() as u64;
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "put entry failed");
                                failed.push(p.clone());
                            }
                        }
                    }
                }
                Err(e) if e.is_transient() => {
                    tracing::warn!(error = %e, "put call failed");
                    failed.extend(pending[range].iter().cloned());
                }
                Err(e) => {
                    tracing::error!(error = %e, "put call failed permanently");
                    given_up.extend(pending[range].iter().cloned());
                }
            }
        }
        pending = failed;
    }
    given_up.extend(pending);
    d.failed_from = given_up.iter().map(|p| p.first_source).min();
    d
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use dredge_core::sink::{EntryError, SinkError};

    use super::*;

    #[test]
    fn packs_lines_under_the_record_limit() {
        let mut p = Packer::with_max_bytes("seed", 10);
        p.push(3, b"aaaa");
        p.push(4, b"bbbb");
        p.push(5, b"cc");
        let out = p.finish();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].record.data, b"aaaa\nbbbb\n");
        assert_eq!(out[0].first_source, 3);
        assert_eq!(out[1].record.data, b"cc\n");
        assert_eq!(out[1].first_source, 5);
        assert_ne!(out[0].record.partition_key, out[1].record.partition_key);
    }

    #[test]
    fn calls_respect_count_and_size_limits() {
        let small =
            |i| Packed { record: OutRecord { partition_key: "k".into(), data: vec![b'x'; 10] }, first_source: i };
        let records: Vec<_> = (0..1001).map(small).collect();
        let ranges = calls(&records);
        assert_eq!(ranges.iter().map(|r| r.len()).collect::<Vec<_>>(), [500, 500, 1]);
        let big = |i| Packed {
            record: OutRecord { partition_key: "k".into(), data: vec![b'x'; 1_000_000] },
            first_source: i,
        };
        let records: Vec<_> = (0..12).map(big).collect();
        assert!(calls(&records).iter().all(|r| r.len() <= 5));
    }

    /// Fails each entry whose data starts with a byte in `fail`, the first
    /// `times` times it is seen.
    struct Flaky {
        fail: Vec<u8>,
        times: u32,
        seen: Mutex<std::collections::HashMap<Vec<u8>, u32>>,
        accepted: Mutex<Vec<Vec<u8>>>,
    }

    impl RecordSink for Flaky {
        async fn put_records(&self, records: &[OutRecord]) -> Result<Vec<Result<(), EntryError>>, SinkError> {
            let mut seen = self.seen.lock().unwrap();
            Ok(records
                .iter()
                .map(|r| {
                    let n = seen.entry(r.data.clone()).or_insert(0);
                    *n += 1;
                    if self.fail.contains(&r.data[0]) && *n <= self.times {
                        Err(EntryError {
                            code: "ProvisionedThroughputExceededException".into(),
                            message: "slow".into(),
                        })
                    } else {
                        self.accepted.lock().unwrap().push(r.data.clone());
                        Ok(())
                    }
                })
                .collect())
        }
    }

    fn packed(data: &[u8], source: usize) -> Packed {
        Packed { record: OutRecord { partition_key: "k".into(), data: data.to_vec() }, first_source: source }
    }

    #[tokio::test]
    async fn retries_only_the_failed_entries() {
        let sink = Flaky { fail: vec![b'b'], times: 2, seen: Default::default(), accepted: Default::default() };
        let d = deliver(&sink, vec![packed(b"a", 0), packed(b"b", 1), packed(b"c", 2)], 5, Duration::ZERO).await;
        assert_eq!(d.failed_from, None);
        assert_eq!((d.records, d.retried, d.calls), (3, 2, 3));
        let mut accepted = sink.accepted.lock().unwrap().clone();
        accepted.sort();
        assert_eq!(accepted, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()], "each exactly once");
    }

    #[tokio::test]
    async fn reports_the_earliest_source_it_gave_up_on() {
        let sink = Flaky { fail: vec![b'b', b'c'], times: 99, seen: Default::default(), accepted: Default::default() };
        let d = deliver(&sink, vec![packed(b"a", 0), packed(b"c", 4), packed(b"b", 2)], 3, Duration::ZERO).await;
        assert_eq!(d.failed_from, Some(2));
        assert_eq!(d.records, 1);
    }
}
