//! Hostile and broken input (issue 13's table, a test per row): tiny gzips
//! of millions of bad lines, records near the decompression cap, ids of
//! megabytes, documents missing their fields, a record the store refuses.
//! Memory is the peak of the heap while a batch is processed, counted by
//! this binary's allocator; the bound is generous (256 MB, as the Lambda's
//! budget) against what each batch is expected to take.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use base64::Engine;
use dredge_core::objects::LocalObjects;
use dredge_core::ownership::{Applier, Change, Eni, MemoryStore, OwnershipStore, TagPolicy, UnixTime};
use dredge_core::sink::{check_put_records, EntryError, OutRecord, RecordSink, SinkError};
use dredge_core::stream_data::{read_lines, DEFAULT_MAX_LINES_BYTES};
use dredge_enricher::{BatchOutcome, Enricher, EnricherConfig, Input};
use serde_json::Value as Json;

/// Counts live heap bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { System.dealloc(p, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, layout, new_size) };
        if !q.is_null() {
            if new_size > layout.size() {
                let live = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size - layout.size();
                PEAK.fetch_max(live, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        q
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// One measured test at a time: the counters are the process's.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What Lambda may take for the whole function; each batch here is
/// expected to need well under half of it.
const BUDGET: usize = 256 * 1024 * 1024;

const VPC: &str = "vpc-0a1b2c3d4e5f60789";
const NOW: UnixTime = UnixTime(1_800_000_000);

/// Runs `process` on `inputs` and returns its outcome and the heap's peak
/// above what was live before.
async fn measured(e: &Enricher<MemoryStore, Sink, LocalObjects>, inputs: &[Input<'_>]) -> (BatchOutcome, usize) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let out = e.process(inputs, NOW).await;
    (out, PEAK.load(Ordering::Relaxed).saturating_sub(before))
}

/// The embedded stream's limits, and the lines it took (only when `keep`:
/// the big batches are counted, not kept).
#[derive(Default)]
struct Sink {
    keep: bool,
    records: AtomicU64,
    lines: Mutex<Vec<Json>>,
}

impl RecordSink for Sink {
    async fn put_records(&self, records: &[OutRecord]) -> Result<Vec<Result<(), EntryError>>, SinkError> {
        check_put_records(records)?;
        self.records.fetch_add(records.len() as u64, Ordering::Relaxed);
        if self.keep {
            let mut lines = self.lines.lock().unwrap();
            for r in records {
                for l in read_lines(&r.data, DEFAULT_MAX_LINES_BYTES).unwrap().iter() {
                    lines.push(serde_json::from_slice(l).unwrap());
                }
            }
        }
        Ok(vec![Ok(()); records.len()])
    }
}

/// A table that knows eni-log (app api, VPC `VPC`) and eni-poison, whose
/// record names a VPC id of 3,000 bytes: any key built from it is over
/// DynamoDB's 2,048-byte limit, which the embedded store enforces.
async fn table() -> MemoryStore {
    let store = MemoryStore::new();
    store.note_reconciled("*#*", UnixTime(1000)).await.unwrap();
    let applier = Applier::new(&store, TagPolicy::default());
    let mut log = Eni::new("eni-log");
    log.vpc_id = Some(VPC.into());
    log.instance_id = Some("i-api".into());
    log.tags.insert("aws:autoscaling:groupName".into(), "api-prod-v042".into());
    log.private_addresses = vec!["10.0.0.1".parse().unwrap()];
    applier.apply(&Change::EniUp { at: UnixTime(500), eni: Box::new(log) }).await.unwrap();
    let mut poison = Eni::new("eni-poison");
    poison.vpc_id = Some(format!("vpc-{}", "f".repeat(3000)));
    applier.apply(&Change::EniUp { at: UnixTime(500), eni: Box::new(poison) }).await.unwrap();
    store
}

async fn enricher(dir: &std::path::Path, keep: bool) -> Enricher<MemoryStore, Sink, LocalObjects> {
    Enricher::new(
        table().await,
        Sink { keep, ..Sink::default() },
        LocalObjects::new(dir),
        EnricherConfig::default(),
        TagPolicy::default(),
        None,
    )
}

fn line(eni: &str, src: &str, dst: &str, start: i64) -> String {
    format!("2 123456789012 {eni} {src} {dst} 443 50000 6 10 840 {start} {} ACCEPT OK", start + 60)
}

fn gzip(bytes: &[u8], level: u32) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn cloudwatch(doc: Json) -> Vec<u8> {
    gzip(doc.to_string().as_bytes(), 1)
}

fn data_message(lines: &[String]) -> Json {
    serde_json::json!({
        "messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": "flows", "logStream": "eni-log-all",
        "subscriptionFilters": ["to-kinesis"],
        "logEvents": lines.iter().enumerate().map(|(i, m)| serde_json::json!({"id": i.to_string(), "timestamp": 0, "message": m})).collect::<Vec<_>>(),
    })
}

fn inputs<'a>(payloads: &'a [Vec<u8>], seqs: &'a [String]) -> Vec<Input<'a>> {
    payloads
        .iter()
        .zip(seqs)
        .map(|(p, s)| Input { shard: Some("shardId-000000000000"), sequence_number: s, data: p, arrival_ms: 0 })
        .collect()
}

fn seqs(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("4959{i:04}")).collect()
}

/// Every dead-letter entry written under `dir`.
fn dead_letters(dir: &std::path::Path) -> Vec<Json> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let body = std::fs::read_to_string(&path).unwrap();
                out.extend(body.lines().map(|l| serde_json::from_str::<Json>(l).unwrap()));
            }
        }
    }
    out
}

fn dead_letter_bytes(dir: &std::path::Path) -> u64 {
    walk_sizes(dir)
}

fn walk_sizes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| {
                    let path = e.unwrap().path();
                    if path.is_dir() {
                        walk_sizes(&path)
                    } else {
                        std::fs::metadata(&path).unwrap().len()
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Row 1: a 2 KB record, the gzip of 1 Mi lines of `x`. It took 1.1 GB of
/// memory and wrote a 101 MB dead letter (a JSON value per line).
#[tokio::test]
async fn a_tiny_gzip_of_a_million_bad_lines_is_counted_in_little_memory() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let e = enricher(dir.path(), true).await;
    let bomb = gzip(&b"x\n".repeat(1 << 20), 9);
    assert!(bomb.len() < 4096, "{} bytes", bomb.len());
    let payloads = vec![bomb];
    let seq = seqs(1);
    let (out, peak) = measured(&e, &inputs(&payloads, &seq)).await;
    assert_eq!(out.retry_from, None);
    assert_eq!(out.stats.rejected_lines, 1 << 20);
    assert!(peak < 64 * 1024 * 1024, "peak heap {peak} bytes for 2 MiB of text");
    // Counts per reason, ten lines quoted, the record whole: kilobytes.
    assert!(dead_letter_bytes(dir.path()) < 64 * 1024, "{} bytes of dead letters", dead_letter_bytes(dir.path()));
    let kept = dead_letters(dir.path());
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["rejected_lines"], 1 << 20);
    assert_eq!(kept[0]["reasons"], serde_json::json!({"not_an_integer": 1 << 20}));
    assert_eq!(kept[0]["samples"].as_array().unwrap().len(), 10);
    assert_eq!(kept[0]["samples"][0]["text"], "x");
    let data = base64::engine::general_purpose::STANDARD.decode(kept[0]["data_base64"].as_str().unwrap()).unwrap();
    assert_eq!(data, payloads[0]);
}

/// Row 2: a 61 KB record of 31 Mi lines aborted the process ("memory
/// allocation failed"). Over the batch's line budget, it is kept whole
/// without being decoded, and the batch goes on.
#[tokio::test]
async fn a_record_past_the_batch_budget_is_kept_whole_and_the_batch_goes_on() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let e = enricher(dir.path(), true).await;
    let bomb = gzip(&b"x\n".repeat(31 << 20), 9);
    assert!(bomb.len() < 128 * 1024, "{} bytes", bomb.len());
    let good = cloudwatch(data_message(&[line("eni-log", "10.0.0.1", "10.0.0.9", 1500)]));
    let payloads = vec![bomb, good];
    let seq = seqs(2);
    let (out, peak) = measured(&e, &inputs(&payloads, &seq)).await;
    assert_eq!(out.retry_from, None);
    assert_eq!((out.stats.over_budget, out.stats.rejected_lines, out.stats.output_lines), (1, 0, 1));
    // The record inflated once (62 MiB, under the 64 MiB cap) and was
    // counted, never split into lines.
    assert!(peak < BUDGET / 2, "peak heap {peak} bytes");
    assert_eq!(e.sink().lines.lock().unwrap().len(), 1, "the good record after it is delivered");
    let kept = dead_letters(dir.path());
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["sequence_number"], seq[0]);
    assert!(kept[0]["refused"].as_str().unwrap().contains("budget"), "{}", kept[0]["refused"]);
}

/// Row 3: four records of valid flows, each under the 64 MiB cap, took
/// 830 MB: every decoded flow was held until output. Chunks of 32 Ki flows
/// are looked up and delivered before the next is decoded.
#[tokio::test]
async fn records_of_valid_flows_near_the_cap_are_processed_in_bounded_memory() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let e = enricher(dir.path(), false).await;
    // 100 distinct flows, repeated to 24 MiB of text per record (the whole
    // batch held at once took over 400 MB).
    let block: String = (0..100)
        .map(|i| line("eni-log", "10.0.0.1", &format!("10.0.{}.{}", i / 50, i % 50 + 2), 1500 + i) + "\n")
        .collect();
    let per_record = (24 << 20) / block.len();
    let record = gzip(block.repeat(per_record).as_bytes(), 1);
    let payloads = vec![record; 4];
    let seq = seqs(4);
    let (out, peak) = measured(&e, &inputs(&payloads, &seq)).await;
    assert_eq!(out.retry_from, None, "{:?}", out.error);
    let flows = 4 * 100 * per_record as u64;
    assert_eq!((out.stats.flows, out.stats.output_lines), (flows, flows));
    assert!(out.stats.output_records > 4, "{} records", out.stats.output_records);
    assert!(peak < BUDGET, "peak heap {peak} bytes for {flows} flows");
    eprintln!("{flows} flows: peak heap {} MiB", peak >> 20);
}

/// Row 4: a line with a 2 MiB interface-id made a 2 MiB output record that
/// Kinesis refuses, failing the batch on every retry. The id is checked
/// when decoded: the line is rejected, the rest delivered.
#[tokio::test]
async fn a_two_mib_interface_id_rejects_its_line_not_the_batch() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let e = enricher(dir.path(), true).await;
    let huge = format!("eni-{}", "0123456789abcdef".repeat(128 * 1024));
    let lines = vec![
        line("eni-log", "10.0.0.1", "10.0.0.9", 1500),
        line(&huge, "10.0.0.1", "10.0.0.9", 1500),
        line("eni-log", "10.0.0.1", "10.0.0.8", 1500),
    ];
    let payloads = vec![cloudwatch(data_message(&lines))];
    let seq = seqs(1);
    let out = e.process(&inputs(&payloads, &seq), NOW).await;
    assert_eq!(out.retry_from, None, "{:?}", out.error);
    assert_eq!((out.stats.rejected_lines, out.stats.output_lines), (1, 2));
    assert_eq!(e.sink().lines.lock().unwrap().len(), 2);
    let kept = dead_letters(dir.path());
    assert_eq!(kept[0]["reasons"], serde_json::json!({"bad_id": 1}));
    assert_eq!(kept[0]["samples"][0]["line"], 2);
    assert!(kept[0]["samples"][0]["text"].as_str().unwrap().len() <= 1024, "quoted in part");
}

/// Row 5: an id over DynamoDB's 2 KB key limit failed every lookup, with
/// the retry point at record 0. A VPC id from a flow log is checked when
/// decoded (the line is rejected); one from the table (an ENI record naming
/// a VPC of 3,000 bytes) makes the store refuse the lookup, and only the
/// input behind it is set aside.
#[tokio::test]
async fn an_id_over_the_key_limit_sets_aside_only_its_own_input() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let e = enricher(dir.path(), true).await;
    let long_vpc = format!("vpc-{}", "a".repeat(3000));
    let v5 = format!(
        "version vpc-id interface-id srcaddr dstaddr start log-status\n\
         5 {VPC} eni-log 10.0.0.1 10.0.0.9 1500 OK\n\
         5 {long_vpc} eni-log 10.0.0.1 10.0.0.9 1500 OK\n"
    );
    let payloads = vec![
        cloudwatch(data_message(&[line("eni-log", "10.0.0.1", "10.0.0.9", 1500)])),
        cloudwatch(data_message(&[line("eni-poison", "10.9.0.1", "10.9.0.2", 1500)])),
        v5.into_bytes(),
    ];
    let seq = seqs(3);
    let out = e.process(&inputs(&payloads, &seq), NOW).await;
    assert_eq!(out.retry_from, None, "{:?}", out.error);
    assert_eq!(out.stats.rejected_lines, 1, "the flow log's own long VPC id");
    assert_eq!(out.stats.output_lines, 2, "inputs 0 and 2 delivered");
    let ids: Vec<String> =
        e.sink().lines.lock().unwrap().iter().map(|l| l["flow_id"].as_str().unwrap().to_owned()).collect();
    assert!(ids[0].contains(&seq[0]) && ids[1].contains(&seq[2]), "{ids:?}");
    let kept = dead_letters(dir.path());
    assert_eq!(kept.len(), 2);
    assert_eq!(kept[0]["sequence_number"], seq[1]);
    assert!(kept[0]["refused"].as_str().unwrap().contains("Size of hashkey"), "{}", kept[0]["refused"]);
    assert_eq!(kept[1]["sequence_number"], seq[2]);
    assert_eq!(kept[1]["reasons"], serde_json::json!({"bad_id": 1}));
}

/// Row 6: a CloudWatch Logs DATA_MESSAGE without `logEvents` was accepted as
/// zero records.
#[tokio::test]
async fn a_data_message_without_log_events_is_refused_and_counted() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let e = enricher(dir.path(), true).await;
    let mut doc = data_message(&[]);
    doc.as_object_mut().unwrap().remove("logEvents");
    let payloads = vec![cloudwatch(doc)];
    let seq = seqs(1);
    let out = e.process(&inputs(&payloads, &seq), NOW).await;
    assert_eq!(out.retry_from, None);
    assert_eq!(out.stats.payload_errors, 1);
    let kept = dead_letters(dir.path());
    assert_eq!(kept[0]["reasons"], serde_json::json!({"missing_field": 1}));
    assert!(kept[0]["refused"].as_str().unwrap().contains("logEvents"));
}

/// The budget is spent across records: a batch of many small bombs stops
/// decoding once its text adds up, and keeps the rest whole.
#[tokio::test]
async fn many_small_bombs_spend_the_batch_budget_and_the_rest_is_kept() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let config = EnricherConfig {
        budget: dredge_enricher::BatchBudget { text_bytes: 10 << 20, lines: 1 << 30 },
        ..EnricherConfig::default()
    };
    let e = Enricher::new(
        table().await,
        Sink { keep: true, ..Sink::default() },
        LocalObjects::new(dir.path()),
        config,
        TagPolicy::default(),
        None,
    );
    // Each 4 MiB of text; the budget of 10 MiB takes two.
    let bomb = gzip(&b"y\n".repeat(2 << 20), 9);
    let payloads = vec![bomb; 5];
    let seq = seqs(5);
    let out = e.process(&inputs(&payloads, &seq), NOW).await;
    assert_eq!(out.retry_from, None);
    assert_eq!((out.stats.rejected_lines, out.stats.over_budget), (2 * (2 << 20), 3));
    let kept = dead_letters(dir.path());
    assert_eq!(kept.len(), 5, "every record kept, decoded or not");
    assert!(kept[2..].iter().all(|k| k["refused"].as_str().unwrap().contains("budget")));
}

/// A batch of tiny records that each inflate to nearly the cap: each one
/// inflated is charged to the budget, decoded or not, so once it is spent
/// the rest are kept whole without being inflated, and the batch ends in
/// bounded time instead of inflating gigabytes.
#[tokio::test]
async fn a_batch_of_tiny_bombs_stops_inflating_once_the_budget_is_spent() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let e = enricher(dir.path(), true).await;
    let bomb = gzip(&b"z\n".repeat(31 << 20), 9);
    let payloads = vec![bomb; 40];
    let seq = seqs(40);
    let (out, peak) = measured(&e, &inputs(&payloads, &seq)).await;
    assert_eq!(out.retry_from, None);
    assert_eq!((out.stats.over_budget, out.stats.rejected_lines), (40, 0));
    // 512 MiB of budget over 62 MiB each: nine inflated, none decoded.
    assert_eq!(out.stats.flow_log_bytes, 0);
    assert!(peak < BUDGET / 2, "peak heap {peak} bytes");
    assert_eq!(dead_letters(dir.path()).len(), 40);
}
