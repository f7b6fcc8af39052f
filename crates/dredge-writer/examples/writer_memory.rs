//! Peak memory and throughput of the writer, on the embedded object store
//! in a temporary folder:
//!
//! 1. staging one full Lambda batch: 6 MB of zstd record data, each record
//!    about 1 MiB compressed from 4 MiB of enriched lines (what the
//!    enricher puts on the stream);
//! 2. staging `BATCHES` such batches of one hour (default 40: about 7
//!    million rows), some flows delivered twice, then compacting the hour.
//!
//! `cargo run --release -p dredge-writer --example writer_memory -- [BATCHES]`
//!
//! Peak RSS is the kernel's `VmHWM`, reset through `/proc/self/clear_refs`
//! before each step when the kernel allows it.

use std::time::Instant;

use dredge_columnar::EncoderOptions;
use dredge_core::objects::{LocalObjects, ObjectListing};
use dredge_core::stream_data::{Compression, RecordEncoder};
use dredge_lambda::kinesis::Input;
use dredge_writer::layout::Layout;
use dredge_writer::{compact, CompactOptions, Staging};

/// 2026-11-30T13:00:00Z.
const HOUR: i64 = 1_796_043_600;
const RECORD_LINES_BYTES: usize = 4 << 20;
const RECORD_BYTES: usize = 1 << 20;
const BATCH_BYTES: usize = 6_000_000;

fn line(out: &mut String, seq: u64, n: u64) {
    use std::fmt::Write;
    let start = HOUR + (n as i64 % 3600);
    let _ = write!(
        out,
        concat!(
            r#"{{"timestamp":{},"flow_id":"shardId-000000000001:{}:{}","version":5,"account_id":"123456789012","#,
            r#""interface_id":"eni-0a1b2c3d4e5f6{:04}","srcaddr":"10.0.{}.{}","dstaddr":"10.1.{}.{}","srcport":{},"#,
            r#""dstport":443,"protocol":6,"packets":{},"bytes":{},"start":{},"end":{},"action":"ACCEPT","#,
            r#""log_status":"OK","vpc_id":"vpc-0a1b2c3d4e5f60789","subnet_id":"subnet-0c1a2b3c4d5e6f701","#,
            r#""flow_direction":"egress","src_app":"app{}","src_stack":"prod","src_cluster":"app{}-prod","#,
            r#""src_account_id":"123456789012","src_region":"us-east-1","src_az":"us-east-1a","#,
            r#""src_vpc_id":"vpc-0a1b2c3d4e5f60789","src_eni_id":"eni-0a1b2c3d4e5f6{:04}","src_kind":"instance","#,
            r#""src_attribution":"owner","dst_app":"app{}","dst_stack":"prod","dst_region":"us-east-1","#,
            r#""dst_az":"us-east-1b","dst_kind":"instance","dst_attribution":"owner","cross_region":false,"#,
            r#""cross_az":true,"cross_vpc":false,"cross_account":false}}"#,
            "\n"
        ),
        start * 1000,
        seq,
        n,
        n % 500,
        n % 250,
        n % 200,
        (n / 7) % 250,
        n % 190,
        1024 + n % 60000,
        n % 97 + 1,
        n * 7919 % 1_000_003,
        start,
        start + 60,
        n % 40,
        n % 40,
        n % 500,
        (n + 7) % 40,
    );
}

/// One full batch: records of up to 1 MiB of zstd, 6 MB in all. Flow
/// numbers continue from `next`; every tenth flow of the previous batch is
/// delivered again.
fn batch(encoder: &mut RecordEncoder, first_seq: u64, next: &mut u64) -> Vec<(String, Vec<u8>)> {
    let mut records = Vec::new();
    let mut total = 0;
    let mut seq = first_seq;
    while total < BATCH_BYTES {
        let mut lines = String::with_capacity(RECORD_LINES_BYTES + 4096);
        while lines.len() < RECORD_LINES_BYTES {
            let n = *next;
            *next += 1;
            // A repeat of an earlier flow, at a new position.
            let (s, m) = if n % 10 == 0 && n > 1000 { (n - 1000, n - 1000) } else { (n, n) };
            line(&mut lines, s, m);
        }
        let mut data = Vec::new();
        encoder.encode(lines.as_bytes(), RECORD_BYTES, &mut data).expect("fits a record");
        total += data.len();
        records.push((seq.to_string(), data));
        seq += 1;
    }
    records
}

fn peak_rss_reset() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn main() {
    let batches: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(40);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // `WRITER_MEMORY_KEEP=DIR` keeps the objects there, to look at.
    let root = std::env::var_os("WRITER_MEMORY_KEEP").map_or_else(|| dir.path().to_path_buf(), Into::into);
    let data = LocalObjects::new(root.join("data"));
    let dead = LocalObjects::new(root.join("dead"));
    let layout = Layout::new("flows").unwrap();
    let staging = Staging {
        data: &data,
        dead_letter: &dead,
        dead_letter_prefix: "rejected",
        layout: &layout,
        encoder: EncoderOptions::default(),
    };
    let mut encoder = RecordEncoder::new(Compression::Zstd);
    let mut next = 0u64;
    let mut rows = 0u64;
    let mut staged_bytes = 0u64;
    let mut stage_secs = 0.0;
    for b in 0..batches {
        let records = batch(&mut encoder, 49_000_000 + b * 1000, &mut next);
        let inputs: Vec<Input<'_>> = records
            .iter()
            .map(|(seq, d)| Input { shard: Some("shardId-000000000001"), sequence_number: seq, data: d, arrival_ms: 0 })
            .collect();
        let data_bytes: usize = records.iter().map(|r| r.1.len()).sum();
        peak_rss_reset();
        let started = Instant::now();
        let (stats, result) = rt.block_on(staging.stage(&inputs, HOUR));
        result.expect("staged");
        stage_secs += started.elapsed().as_secs_f64();
        rows += stats.rows_written;
        staged_bytes += stats.bytes_written;
        if b == 0 {
            println!(
                "one full batch: {} records, {:.1} MB of record data, {} rows, {:.1} MB Parquet; peak RSS {:.0} MB",
                records.len(),
                data_bytes as f64 / 1e6,
                stats.rows_written,
                stats.bytes_written as f64 / 1e6,
                peak_rss_mb()
            );
        }
    }
    println!(
        "staged {batches} batches: {rows} rows, {:.1} MB of Parquet, {:.0} rows/s",
        staged_bytes as f64 / 1e6,
        rows as f64 / stage_secs
    );
    let staged = rt.block_on(data.list("staging/")).unwrap().len();
    peak_rss_reset();
    let started = Instant::now();
    // `COMPACT_MAX_FLOW_IDS` as the function reads it: a small value forces
    // several passes on a small hour.
    let mut options = CompactOptions::default();
    if let Some(n) = std::env::var("COMPACT_MAX_FLOW_IDS").ok().and_then(|v| v.parse().ok()) {
        options.max_flow_ids = n;
    }
    let (stats, result) = rt.block_on(compact(&data, &layout, &options, HOUR + 7200));
    result.expect("compacted");
    let secs = started.elapsed().as_secs_f64();
    println!(
        "compacted {staged} staged objects ({:.1} MB): {} rows read, {} written, {} repeats dropped, {} final objects \
         ({:.1} MB) in {secs:.1} s: {:.1} MB/s of staged Parquet, {:.0} rows/s; peak RSS {:.0} MB",
        staged_bytes as f64 / 1e6,
        stats.rows_read,
        stats.rows_written,
        stats.duplicates_dropped,
        stats.objects_written,
        stats.bytes_written as f64 / 1e6,
        staged_bytes as f64 / 1e6 / secs,
        stats.rows_read as f64 / secs,
        peak_rss_mb(),
    );
}
