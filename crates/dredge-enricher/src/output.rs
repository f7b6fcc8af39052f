//! Enriched lines into Kinesis records (compressed or not), records into
//! PutRecords calls, and retries of exactly the entries that failed.
//! Writing the lines is the caller's; transport is the sink's.

use std::hash::{Hash, Hasher};

use dredge_core::sink::{OutRecord, RecordSink, MAX_BYTES_PER_CALL, MAX_RECORDS_PER_CALL, MAX_RECORD_BYTES};
use dredge_core::stream_data::RecordEncoder;
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

/// Partition keys are 16 hex digits; Kinesis counts them in a record's size.
const PARTITION_KEY_BYTES: usize = 16;

/// The most data a record may carry.
pub const RECORD_DATA_LIMIT: usize = MAX_RECORD_BYTES - PARTITION_KEY_BYTES;

/// The longest enriched line a record takes: a frame of one such line,
/// however incompressible, fits [`RECORD_DATA_LIMIT`] (zstd adds at most a
/// few hundred bytes). Decoding bounds every field, so real lines are a few
/// kilobytes; a longer one is refused, never sent for Kinesis to refuse.
pub const MAX_LINE_BYTES: usize = 512 * 1024;

/// An enriched line over [`MAX_LINE_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("enriched line of {0} bytes, over the {MAX_LINE_BYTES}-byte limit of one record")]
pub struct LineTooLong(pub usize);

/// Lines compressed into one record, at most: enough for zstd to find the
/// repeats across many lines (about 10x), and small enough that the frame
/// almost always fits a record (when it does not, the lines are split).
pub const COMPRESSED_LINES: usize = 4 * 1024 * 1024;

/// The size of a compressing packer's line buffer: what its staging pool holds.
pub const STAGING_BUFFER: usize = COMPRESSED_LINES + LINE_SLACK;

/// Packs newline-delimited lines into records. Plain, records hold at most
/// [`RECORD_DATA_LIMIT`] bytes of lines, written straight into the record's
/// buffer (no per-line copy, no regrowth). Compressed, lines gather in one
/// staging buffer up to [`COMPRESSED_LINES`] bytes, then are compressed into
/// a record buffer, as one frame of at most [`RECORD_DATA_LIMIT`] bytes, or
/// as several frames over halves of the lines when one would not fit.
#[derive(Debug)]
pub struct Packer<'p, 'e> {
    records: &'p BufferPool,
    /// Where the buffer lines are written into comes from: `records` when
    /// plain, the staging pool when compressing.
    lines: &'p BufferPool,
    encoder: &'e mut RecordEncoder,
    max_bytes: usize,
    seed: String,
    done: Vec<Packed>,
    current: Vec<u8>,
    current_first: usize,
    /// Records made so far (taken or not): the next one's key index.
    made: usize,
}

impl<'p, 'e> Packer<'p, 'e> {
    /// `seed` makes partition keys differ between batches (the batch's
    /// first sequence number is a good one); record buffers of
    /// [`RECORD_BUFFER`] bytes come from `records`, and a compressing
    /// packer's line buffer of [`STAGING_BUFFER`] bytes from `staging`.
    pub fn new(seed: &str, records: &'p BufferPool, staging: &'p BufferPool, encoder: &'e mut RecordEncoder) -> Self {
        match encoder {
            RecordEncoder::Plain => Packer::with_max_bytes(seed, RECORD_DATA_LIMIT, records, records, encoder),
            RecordEncoder::Zstd(_) => Packer::with_max_bytes(seed, COMPRESSED_LINES, records, staging, encoder),
        }
    }

    /// A packer of at most `max_bytes` of lines per record (before
    /// compression), line buffers from `lines`.
    pub fn with_max_bytes(
        seed: &str,
        max_bytes: usize,
        records: &'p BufferPool,
        lines: &'p BufferPool,
        encoder: &'e mut RecordEncoder,
    ) -> Self {
        Packer {
            records,
            lines,
            encoder,
            max_bytes,
            seed: seed.to_owned(),
            done: Vec::new(),
            current: Vec::new(),
            current_first: usize::MAX,
            made: 0,
        }
    }

    /// Adds one line (without its newline) from input record `source`.
    pub fn push(&mut self, source: usize, line: &[u8]) -> Result<(), LineTooLong> {
        self.push_with(source, |out| out.extend_from_slice(line))
    }

    /// Adds the line `write` appends (without its newline) from input
    /// record `source`; a line over [`MAX_LINE_BYTES`] is taken back out.
    pub fn push_with(&mut self, source: usize, write: impl FnOnce(&mut Vec<u8>)) -> Result<(), LineTooLong> {
        if self.current.capacity() == 0 {
            self.current = self.lines.take();
        }
        let start = self.current.len();
        write(&mut self.current);
        let len = self.current.len() - start;
        if len > MAX_LINE_BYTES {
            self.current.truncate(start);
            return Err(LineTooLong(len));
        }
        if start > 0 && self.current.len() + 1 > self.max_bytes {
            // The line does not fit: the lines before it make a record,
            // the line starts the next.
            self.seal(start);
        }
        self.current.push(b'\n');
        self.current_first = self.current_first.min(source);
        Ok(())
    }

    /// Makes the lines before `end` a record (or records); what follows
    /// stays, as the start of the next.
    fn seal(&mut self, end: usize) {
        if end == 0 {
            return;
        }
        let first = std::mem::replace(&mut self.current_first, usize::MAX);
        if let RecordEncoder::Plain = self.encoder {
            // The lines are the record: its buffer goes with it.
            let mut next = Vec::new();
            if end < self.current.len() {
                next = self.lines.take();
                next.extend_from_slice(&self.current[end..]);
                self.current.truncate(end);
            }
            let data = std::mem::replace(&mut self.current, next);
            self.add(data, first);
            return;
        }
        let lines = std::mem::take(&mut self.current);
        self.compress(&lines[..end], first);
        self.current = lines;
        self.current.drain(..end);
    }

    /// Compresses `lines` into one record, or, when the frame would not
    /// fit, each half into its own (each keeping the whole run's first
    /// source: a retry may then repeat lines, never skip them).
    fn compress(&mut self, lines: &[u8], first: usize) {
        let mut data = self.records.take();
        match self.encoder.encode(lines, RECORD_DATA_LIMIT, &mut data) {
            Ok(()) => self.add(data, first),
            Err(_) => {
                self.records.give(data);
                match split_lines(lines) {
                    Some(middle) => {
                        self.compress(&lines[..middle], first);
                        self.compress(&lines[middle..], first);
                    }
                    None => {
                        // One line, at most MAX_LINE_BYTES: its frame fits.
                        // Were it ever not to, the record goes as the stream
                        // refuses it, and its input is kept aside for it.
                        let mut data = Vec::new();
                        let fits_anything = usize::MAX;
                        self.encoder.encode(lines, fits_anything, &mut data).expect("no limit");
                        self.add(data, first);
                    }
                }
            }
        }
    }

    fn add(&mut self, data: Vec<u8>, first_source: usize) {
        let partition_key = partition_key(&self.seed, self.made);
        self.made += 1;
        self.done.push(Packed { record: OutRecord { partition_key, data }, first_source });
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
        self.seal(self.current.len());
        if let RecordEncoder::Zstd(_) = self.encoder {
            self.lines.give(std::mem::take(&mut self.current));
        }
        self.done
    }
}

/// Where to split newline-terminated lines into two runs of about half the
/// bytes each: just after a newline. `None` for a single line.
fn split_lines(lines: &[u8]) -> Option<usize> {
    // The last newline ends the run: it splits nothing.
    let body = &lines[..lines.len().saturating_sub(1)];
    let half = body.len() / 2;
    let newline = |b: &u8| *b == b'\n';
    body[half..]
        .iter()
        .position(newline)
        .map(|i| half + i + 1)
        .or_else(|| body[..half].iter().rposition(newline).map(|i| i + 1))
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
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub records: u64,
    pub bytes: u64,
    pub calls: u64,
    /// Entries put again after failing.
    pub retried: u64,
    /// The earliest input record with output that could not be delivered.
    pub failed_from: Option<usize>,
    /// Records the stream refused for their content, alone in their call:
    /// each one's earliest input, its data and why.
    pub refused: Vec<(usize, Vec<u8>, String)>,
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
        self.refused.extend(other.refused);
    }
}

/// Splits records into PutRecords-sized calls.
fn calls(records: &[OutRecord]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, r) in records.iter().enumerate() {
        let size = r.size();
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
        // Calls in order, as a stack.
        let mut ranges = calls(&pending);
        ranges.reverse();
        while let Some(range) = ranges.pop() {
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
                Err(e) if e.is_invalid() && range.len() > 1 => {
                    // One record's content can refuse the whole call: each
                    // alone, so only that one is set aside.
                    tracing::warn!(error = %e, records = range.len(), "put call refused; putting its records one by one");
                    ranges.extend(range.rev().map(|i| i..i + 1));
                }
                Err(e) if e.is_invalid() => {
                    tracing::error!(error = %e, "record refused for its content");
                    let i = range.start;
                    d.refused.push((sources[i], std::mem::take(&mut pending[i].data), e.to_string()));
                }
                Err(e) => {
                    tracing::error!(error = %e, "put call failed permanently");
                    given_up.extend(&sources[range]);
                }
            }
        }
        failed.sort_unstable();
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
    use dredge_core::stream_data::{read_lines, Compression};

    use super::*;

    #[test]
    fn packs_lines_under_the_record_limit() {
        let pool = BufferPool::new(64, 4);
        let mut plain = RecordEncoder::Plain;
        let mut p = Packer::with_max_bytes("seed", 10, &pool, &pool, &mut plain);
        p.push(3, b"aaaa").unwrap();
        p.push(4, b"bbbb").unwrap();
        p.push(5, b"cc").unwrap();
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
        let mut plain = RecordEncoder::Plain;
        let mut p = Packer::with_max_bytes("seed", 12, &pool, &pool, &mut plain);
        p.push_with(0, |out| out.extend_from_slice(b"aaaa")).unwrap();
        p.push_with(1, |out| out.extend_from_slice(b"bbbbbbb")).unwrap();
        // Longer than a record on its own: alone in its record, never split.
        p.push_with(2, |out| out.extend_from_slice(b"cccccccccccccccc")).unwrap();
        p.push(3, b"dd").unwrap();
        let out = p.finish();
        let data: Vec<&[u8]> = out.iter().map(|p| p.record.data.as_slice()).collect();
        assert_eq!(data, [&b"aaaa\n"[..], b"bbbbbbb\n", b"cccccccccccccccc\n", b"dd\n"]);
        assert_eq!(out.iter().map(|p| p.first_source).collect::<Vec<_>>(), [0, 1, 2, 3]);
    }

    #[test]
    fn records_taken_early_keep_distinct_keys_and_sources() {
        let pool = BufferPool::new(64, 4);
        let mut plain = RecordEncoder::Plain;
        let mut p = Packer::with_max_bytes("seed", 6, &pool, &pool, &mut plain);
        let mut records = Vec::new();
        for source in 0..6 {
            p.push(source, b"line").unwrap();
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

    /// Every line of the records, decoded as any consumer does.
    fn read_back(records: &[Packed]) -> Vec<Vec<u8>> {
        records
            .iter()
            .flat_map(|p| {
                let lines = read_lines(&p.record.data, 64 << 20).unwrap();
                lines.iter().map(<[u8]>::to_vec).collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn compressed_records_hold_many_lines_and_read_back_in_order() {
        let (records, staging) = (BufferPool::new(RECORD_BUFFER, 4), BufferPool::new(STAGING_BUFFER, 1));
        let mut zstd = RecordEncoder::new(Compression::Zstd);
        let mut p = Packer::new("seed", &records, &staging, &mut zstd);
        let lines: Vec<Vec<u8>> =
            (0..40_000).map(|i| format!(r#"{{"flow_id":"s:1:{i}","src_app":"api"}}"#).into_bytes()).collect();
        for (i, line) in lines.iter().enumerate() {
            p.push(i / 100, line).unwrap();
        }
        let out = p.finish();
        assert_eq!(out.len(), 1, "{} bytes of lines in one frame", lines.iter().map(|l| l.len() + 1).sum::<usize>());
        assert!(out[0].record.data.len() < 200_000);
        assert_eq!(out[0].first_source, 0);
        assert_eq!(read_back(&out), lines);
        assert_eq!(staging.spare(), 1, "the staging buffer goes back");
    }

    #[test]
    fn a_frame_over_the_record_limit_is_split_into_records_that_fit() {
        let (records, staging) = (BufferPool::new(RECORD_BUFFER, 4), BufferPool::new(STAGING_BUFFER, 1));
        let mut zstd = RecordEncoder::new(Compression::Zstd);
        let mut p = Packer::new("seed", &records, &staging, &mut zstd);
        // About 3 MiB of lines that hardly compress.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let lines: Vec<Vec<u8>> = (0..3_000)
            .map(|_| {
                (0..1000)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        b'!' + (x % 90) as u8
                    })
                    .collect()
            })
            .collect();
        for (i, line) in lines.iter().enumerate() {
            p.push(7 + i / 1000, line).unwrap();
        }
        let out = p.finish();
        assert!(out.len() >= 3, "{} records", out.len());
        assert!(out.iter().all(|p| p.record.size() <= MAX_RECORD_BYTES));
        assert!(out.iter().all(|p| p.first_source == 7), "halves keep the run's first source");
        assert_eq!(read_back(&out), lines);
    }

    #[test]
    fn lines_split_after_a_newline_near_the_middle() {
        assert_eq!(split_lines(b"aaaa\nbb\ncc\n"), Some(8));
        assert_eq!(split_lines(b"aaaaaaaa\nb\n"), Some(9));
        assert_eq!(split_lines(b"aaaaaaaa\n"), None);
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

    /// Refuses, as invalid, every call holding a record whose data starts
    /// with `poison`; or refuses every call permanently (`denied`).
    struct Refusing {
        poison: u8,
        denied: bool,
        accepted: Mutex<Vec<Vec<u8>>>,
    }

    impl RecordSink for Refusing {
        async fn put_records(&self, records: &[OutRecord]) -> Result<Vec<Result<(), EntryError>>, SinkError> {
            if self.denied {
                return Err(SinkError::Permanent("AccessDeniedException".into()));
            }
            if records.iter().any(|r| r.data[0] == self.poison) {
                return Err(SinkError::Invalid("ValidationException: record too large".into()));
            }
            self.accepted.lock().unwrap().extend(records.iter().map(|r| r.data.clone()));
            Ok(vec![Ok(()); records.len()])
        }
    }

    #[tokio::test]
    async fn a_record_refused_for_its_content_is_set_aside_and_the_rest_delivered() {
        let pool = BufferPool::new(64, 4);
        let sink = Refusing { poison: b'x', denied: false, accepted: Default::default() };
        let records = vec![packed(b"a", 0), packed(b"x", 1), packed(b"b", 2), packed(b"c", 3)];
        let d = deliver(&sink, records, &no_wait(3), &pool).await;
        assert_eq!(d.failed_from, None, "one bad record does not sink the rest");
        assert_eq!(d.records, 3);
        assert_eq!(d.refused.len(), 1);
        assert_eq!((d.refused[0].0, d.refused[0].1.as_slice()), (1, b"x".as_slice()));
        assert_eq!(*sink.accepted.lock().unwrap(), [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()], "in order");
    }

    #[tokio::test]
    async fn a_permanent_failure_of_the_stream_itself_still_fails_the_batch() {
        let pool = BufferPool::new(64, 4);
        let sink = Refusing { poison: b'x', denied: true, accepted: Default::default() };
        let d = deliver(&sink, vec![packed(b"a", 3), packed(b"b", 5)], &no_wait(3), &pool).await;
        assert_eq!(d.failed_from, Some(3), "access denied is not the records' fault");
        assert!(d.refused.is_empty());
    }

    #[test]
    fn a_line_over_the_limit_is_refused_and_the_packer_goes_on() {
        let (records, staging) = (BufferPool::new(RECORD_BUFFER, 4), BufferPool::new(STAGING_BUFFER, 1));
        for compression in [Compression::Zstd, Compression::None] {
            let mut encoder = RecordEncoder::new(compression);
            let mut p = Packer::new("seed", &records, &staging, &mut encoder);
            p.push(0, b"before").unwrap();
            let huge = vec![b'a'; 2 << 20];
            assert_eq!(p.push(1, &huge), Err(LineTooLong(huge.len())));
            // The longest line taken, incompressible, still fits one record.
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            let longest: Vec<u8> = (0..MAX_LINE_BYTES)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    b'!' + (x % 90) as u8
                })
                .collect();
            p.push(2, &longest).unwrap();
            p.push(3, b"after").unwrap();
            let out = p.finish();
            assert!(out.iter().all(|p| p.record.size() <= MAX_RECORD_BYTES), "{compression:?}");
            assert_eq!(read_back(&out), [b"before".to_vec(), longest.clone(), b"after".to_vec()], "{compression:?}");
        }
    }
}
