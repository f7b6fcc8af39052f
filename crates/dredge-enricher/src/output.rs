//! Enriched lines into Kinesis records, records into PutRecords calls, and
//! retries of exactly the entries that failed. Encoding (the lines) is the
//! caller's; transport is the sink's.

use std::hash::{Hash, Hasher};

use dredge_core::sink::{OutRecord, RecordSink, MAX_BYTES_PER_CALL, MAX_RECORDS_PER_CALL, MAX_RECORD_BYTES};
use dredge_lambda::RetryPolicy;

use crate::buffers::BufferPool;

/// An output record and the earliest input record it carries lines of.
#[derive(Debug, Clone)]
pub struct Packed {
    pub record: OutRecord,
    pub first_source: usize,
}

/// Room left past `max_bytes` in a record's buffer, so that the line that
/// overflows it is written without moving the buffer.
pub const LINE_SLACK: usize = 16 * 1024;

/// The size of an output record's buffer: what a [`Packer`]'s pool holds.
pub const RECORD_BUFFER: usize = MAX_RECORD_BYTES + LINE_SLACK;

/// Packs newline-delimited lines into records of at most `max_bytes`.
/// Lines are written straight into the record being filled, whose buffer
/// comes from the pool at its full size: no per-line copy, no regrowth.
#[derive(Debug)]
pub struct Packer<'p> {
    pool: &'p BufferPool,
    max_bytes: usize,
    seed: String,
    done: Vec<Packed>,
    current: Vec<u8>,
    current_first: usize,
    /// Records made so far (taken or not): the next one's key index.
    made: usize,
}

impl<'p> Packer<'p> {
    /// `seed` makes partition keys differ between batches (the batch's
    /// first sequence number is a good one); buffers of [`RECORD_BUFFER`]
    /// bytes come from `pool`.
    pub fn new(seed: &str, pool: &'p BufferPool) -> Self {
        Packer::with_max_bytes(seed, MAX_RECORD_BYTES, pool)
    }

    pub fn with_max_bytes(seed: &str, max_bytes: usize, pool: &'p BufferPool) -> Self {
        Packer {
            pool,
            max_bytes,
            seed: seed.to_owned(),
            done: Vec::new(),
            current: Vec::new(),
            current_first: usize::MAX,
            made: 0,
        }
    }

    /// Adds one line (without its newline) from input record `source`.
    pub fn push(&mut self, source: usize, line: &[u8]) {
        self.push_with(source, |out| out.extend_from_slice(line));
    }

    /// Adds the line `write` appends (without its newline) from input
    /// record `source`.
    pub fn push_with(&mut self, source: usize, write: impl FnOnce(&mut Vec<u8>)) {
        if self.current.capacity() == 0 {
            self.current = self.pool.take();
        }
        let start = self.current.len();
        write(&mut self.current);
        if start > 0 && self.current.len() + 1 > self.max_bytes {
            // The line does not fit: the lines before it are one record,
            // the line starts the next.
            let mut next = self.pool.take();
            next.extend_from_slice(&self.current[start..]);
            self.current.truncate(start);
            self.flush();
            self.current = next;
        }
        self.current.push(b'\n');
        self.current_first = self.current_first.min(source);
    }

    fn flush(&mut self) {
        if self.current.is_empty() {
            return;
        }
        let data = std::mem::take(&mut self.current);
        let partition_key = partition_key(&self.seed, self.made);
        self.made += 1;
        self.done.push(Packed { record: OutRecord { partition_key, data }, first_source: self.current_first });
        self.current_first = usize::MAX;
    }

    /// How many records are full.
    pub fn ready(&self) -> usize {
        self.done.len()
    }

    /// Takes the full records, leaving the one being filled.
    pub fn take_ready(&mut self) -> Vec<Packed> {
        std::mem::take(&mut self.done)
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

impl Delivery {
    /// Adds a later delivery of the same batch.
    pub fn add(&mut self, other: Delivery) {
        self.records += other.records;
        self.bytes += other.bytes;
        self.calls += other.calls;
        self.retried += other.retried;
        self.failed_from = match (self.failed_from, other.failed_from) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

/// Splits records into PutRecords-sized calls.
fn calls(records: &[OutRecord]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, r) in records.iter().enumerate() {
        let size = r.data.len() + r.partition_key.len();
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
/// calls) as `retry` says. Sinks are lent the records, and a retry lends
/// the same ones again; what a sink copies is its own business (the
/// Kinesis sink copies each into its request, since the SDK's `Blob` owns
/// its bytes). Buffers of records done with go back to `pool`.
pub async fn deliver<K: RecordSink>(
    sink: &K,
    records: Vec<Packed>,
    retry: &RetryPolicy,
    pool: &BufferPool,
) -> Delivery {
    let mut d = Delivery::default();
    let (mut pending, mut sources): (Vec<OutRecord>, Vec<usize>) =
        records.into_iter().map(|p| (p.record, p.first_source)).unzip();
    let mut given_up: Vec<usize> = Vec::new();
    for attempt in 0..retry.attempts {
        if pending.is_empty() {
            break;
        }
        if attempt > 0 {
            d.retried += pending.len() as u64;
            retry.pause(attempt).await;
        }
        // Indexes into `pending` to put again.
        let mut failed: Vec<usize> = Vec::new();
        for range in calls(&pending) {
            d.calls += 1;
            match sink.put_records(&pending[range.clone()]).await {
                Ok(results) => {
                    for (i, result) in range.zip(results) {
                        match result {
                            Ok(()) => {
                                d.records += 1;
                                d.bytes += pending[i].data.len() as u64;
                                pool.give(std::mem::take(&mut pending[i].data));
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "put entry failed");
                                failed.push(i);
                            }
                        }
                    }
                }
                Err(e) if e.is_transient() => {
                    tracing::warn!(error = %e, "put call failed");
                    failed.extend(range);
                }
                Err(e) => {
                    tracing::error!(error = %e, "put call failed permanently");
                    given_up.extend(&sources[range]);
                }
            }
        }
        let empty = || OutRecord { partition_key: String::new(), data: Vec::new() };
        pending = failed.iter().map(|&i| std::mem::replace(&mut pending[i], empty())).collect();
        sources = failed.iter().map(|&i| sources[i]).collect();
    }
    given_up.extend(sources);
    d.failed_from = given_up.into_iter().min();
    d
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use dredge_core::sink::{EntryError, SinkError};

    use super::*;

    #[test]
    fn packs_lines_under_the_record_limit() {
        let pool = BufferPool::new(64, 4);
        let mut p = Packer::with_max_bytes("seed", 10, &pool);
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
    fn lines_written_in_place_pack_like_pushed_ones() {
        let pool = BufferPool::new(64, 4);
        let mut p = Packer::with_max_bytes("seed", 12, &pool);
        p.push_with(0, |out| out.extend_from_slice(b"aaaa"));
        p.push_with(1, |out| out.extend_from_slice(b"bbbbbbb"));
        // Longer than a record on its own: alone in its record, never split.
        p.push_with(2, |out| out.extend_from_slice(b"cccccccccccccccc"));
        p.push(3, b"dd");
        let out = p.finish();
        let data: Vec<&[u8]> = out.iter().map(|p| p.record.data.as_slice()).collect();
        assert_eq!(data, [&b"aaaa\n"[..], b"bbbbbbb\n", b"cccccccccccccccc\n", b"dd\n"]);
        assert_eq!(out.iter().map(|p| p.first_source).collect::<Vec<_>>(), [0, 1, 2, 3]);
    }

    #[test]
    fn records_taken_early_keep_distinct_keys_and_sources() {
        let pool = BufferPool::new(64, 4);
        let mut p = Packer::with_max_bytes("seed", 6, &pool);
        let mut records = Vec::new();
        for source in 0..6 {
            p.push(source, b"line");
            if p.ready() >= 2 {
                records.extend(p.take_ready());
            }
        }
        records.extend(p.finish());
        assert_eq!(records.len(), 6);
        assert_eq!(records.iter().map(|p| p.first_source).collect::<Vec<_>>(), [0, 1, 2, 3, 4, 5]);
        let mut keys: Vec<&str> = records.iter().map(|p| p.record.partition_key.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), 6, "one key per record, across takes");
    }

    #[test]
    fn calls_respect_count_and_size_limits() {
        let small = |_| OutRecord { partition_key: "k".into(), data: vec![b'x'; 10] };
        let records: Vec<_> = (0..1001).map(small).collect();
        let ranges = calls(&records);
        assert_eq!(ranges.iter().map(|r| r.len()).collect::<Vec<_>>(), [500, 500, 1]);
        let big = |_| OutRecord { partition_key: "k".into(), data: vec![b'x'; 1_000_000] };
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

    fn no_wait(attempts: u32) -> RetryPolicy {
        RetryPolicy::new(attempts, std::time::Duration::ZERO, std::time::Duration::ZERO)
    }

    fn packed(data: &[u8], source: usize) -> Packed {
        Packed { record: OutRecord { partition_key: "k".into(), data: data.to_vec() }, first_source: source }
    }

    #[tokio::test]
    async fn retries_only_the_failed_entries() {
        let pool = BufferPool::new(64, 4);
        let sink = Flaky { fail: vec![b'b'], times: 2, seen: Default::default(), accepted: Default::default() };
        let d = deliver(&sink, vec![packed(b"a", 0), packed(b"b", 1), packed(b"c", 2)], &no_wait(5), &pool).await;
        assert_eq!(d.failed_from, None);
        assert_eq!((d.records, d.retried, d.calls), (3, 2, 3));
        let mut accepted = sink.accepted.lock().unwrap().clone();
        accepted.sort();
        assert_eq!(accepted, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()], "each exactly once");
    }

    #[tokio::test]
    async fn reports_the_earliest_source_it_gave_up_on() {
        let pool = BufferPool::new(64, 4);
        let sink = Flaky { fail: vec![b'b', b'c'], times: 99, seen: Default::default(), accepted: Default::default() };
        let d = deliver(&sink, vec![packed(b"a", 0), packed(b"c", 4), packed(b"b", 2)], &no_wait(3), &pool).await;
        assert_eq!(d.failed_from, Some(2));
        assert_eq!(d.records, 1);
    }
}
