//! The enricher on embedded backends: attribution at the flow's time,
//! failure semantics, dead letters, caching.

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine;
use dredge_core::ipranges::IpRanges;
use dredge_core::objects::{LocalObjects, ObjectError, ObjectStore};
use dredge_core::ownership::{
    AddressKey, Applier, Attached, Change, Eni, Mark, MemoryStore, Owner, OwnershipStore, Scope, Sighting, TagPolicy,
    UnixTime, ASG_TAG,
};
use dredge_core::retry_queue::MemoryQueue;
use dredge_core::sink::{EntryError, OutRecord, RecordSink, SinkError};
use dredge_core::stream_data::{read_lines, Compression, DEFAULT_MAX_LINES_BYTES};
use dredge_enricher::{Enricher, EnricherConfig, Input};
use serde_json::Value as Json;

const VPC: &str = "vpc-0a1b2c3d4e5f60789";
const NOW: UnixTime = UnixTime(1_800_000_000);

/// A sink that keeps what it accepted and fails entries on request.
#[derive(Default)]
struct TestSink {
    accepted: Mutex<Vec<OutRecord>>,
    /// Fail the first N entries offered (then accept).
    fail_first: Mutex<usize>,
    fail_always: bool,
    /// Accept only this many entries in all, then fail every one.
    accept_only: Option<usize>,
}

impl RecordSink for TestSink {
    async fn put_records(&self, records: &[OutRecord]) -> Result<Vec<Result<(), EntryError>>, SinkError> {
        let mut fail_first = self.fail_first.lock().unwrap();
        Ok(records
            .iter()
            .map(|r| {
                let full = self.accept_only.is_some_and(|n| self.accepted.lock().unwrap().len() >= n);
                if self.fail_always || full || *fail_first > 0 {
                    *fail_first = fail_first.saturating_sub(1);
                    Err(EntryError {
                        code: "ProvisionedThroughputExceededException".into(),
                        message: "slow down".into(),
                    })
                } else {
                    self.accepted.lock().unwrap().push(r.clone());
                    Ok(())
                }
            })
            .collect())
    }
}

impl TestSink {
    fn lines(&self) -> Vec<Json> {
        self.accepted
            .lock()
            .unwrap()
            .iter()
            .flat_map(|r| {
                let lines = read_lines(&r.data, DEFAULT_MAX_LINES_BYTES).unwrap();
                lines.iter().map(|l| serde_json::from_slice(l).unwrap()).collect::<Vec<_>>()
            })
            .collect()
    }
}

/// A dead-letter store that can be made to fail.
struct Objects {
    inner: LocalObjects,
    fail: bool,
}

impl ObjectStore for Objects {
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), ObjectError> {
        if self.fail {
            return Err(ObjectError::Transient("S3 is having a bad day".into()));
        }
        self.inner.put(key, body).await
    }
    async fn get(&self, key: &str) -> Result<Vec<u8>, ObjectError> {
        self.inner.get(key).await
    }
}

fn owner(eni: &str, instance: &str, asg: &str, az: &str) -> Owner {
    let mut e = Eni::new(eni);
    e.vpc_id = Some(VPC.into());
    e.account_id = Some("123456789012".into());
    e.region = Some("us-east-1".into());
    e.az = Some(az.into());
    e.instance_id = Some(instance.into());
    e.tags.insert(ASG_TAG.into(), asg.into());
    e.owner(&TagPolicy::default())
}

fn seen(eni: &str, attached: Attached, at: i64) -> Sighting {
    Sighting { eni_id: eni.into(), attached, at: UnixTime(at) }
}

fn key(addr: &str) -> AddressKey {
    AddressKey::new(Scope::Vpc(VPC.into()), addr.parse().unwrap())
}

/// The table: 10.0.0.5 held by app x [1000, 2000), then by app y from
/// 3000 (a reconcile of everything saw y hold it at 4000); the logging ENI
/// eni-log (app api) holds 10.0.0.1 throughout.
async fn table() -> MemoryStore {
    let store = MemoryStore::new();
    let x = owner("eni-x", "i-x", "x-prod-v001", "us-east-1b");
    let y = owner("eni-y", "i-y", "y-prod-v001", "us-east-1a");
    store
        .put_marks(&[
            (key("10.0.0.5"), Mark::Open { at: UnixTime(1000), owner: x }),
            (key("10.0.0.5"), Mark::close(UnixTime(2000), "eni-x")),
            (key("10.0.0.5"), Mark::Open { at: UnixTime(3000), owner: y }),
        ])
        .await
        .unwrap();
    store.put_seen(&[(key("10.0.0.5"), seen("eni-y", Attached::To("i-y".into()), 4000))]).await.unwrap();
    // The reconcile horizon: nobody else held anything the table does not
    // show, up to 4000.
    store.note_reconciled("*#*", UnixTime(4000)).await.unwrap();
    let mut log = Eni::new("eni-log");
    log.vpc_id = Some(VPC.into());
    log.account_id = Some("123456789012".into());
    log.region = Some("us-east-1".into());
    log.az = Some("us-east-1a".into());
    log.instance_id = Some("i-api".into());
    log.tags.insert(ASG_TAG.into(), "api-prod-v042".into());
    log.private_addresses = vec!["10.0.0.1".parse().unwrap()];
    Applier::new(&store, TagPolicy::default())
        .apply(&Change::EniUp { at: UnixTime(500), eni: Box::new(log) })
        .await
        .unwrap();
    store
}

fn ranges() -> Arc<IpRanges> {
    let doc = r#"{"prefixes":[{"ip_prefix":"52.94.0.0/16","region":"us-east-1","service":"DYNAMODB","network_border_group":"us-east-1"}],"ipv6_prefixes":[]}"#;
    Arc::new(IpRanges::from_json(doc.as_bytes()).unwrap())
}

fn enricher(
    store: MemoryStore,
    dir: &std::path::Path,
    fail_dead_letter: bool,
    config: EnricherConfig,
) -> Enricher<MemoryStore, TestSink, Objects> {
    Enricher::new(
        store,
        TestSink::default(),
        Objects { inner: LocalObjects::new(dir), fail: fail_dead_letter },
        config,
        TagPolicy::default(),
        Some(ranges()),
    )
}

/// An enricher writing to `sink` with `compression`, retrying puts twice
/// without backoff, and without AWS ranges.
async fn enricher_on(
    sink: TestSink,
    dir: &std::path::Path,
    compression: Compression,
) -> Enricher<MemoryStore, TestSink, Objects> {
    let config = EnricherConfig { put_retry: no_wait(2), compression, ..EnricherConfig::default() };
    Enricher::new(
        table().await,
        sink,
        Objects { inner: LocalObjects::new(dir), fail: false },
        config,
        TagPolicy::default(),
        None,
    )
}

fn line(src: &str, dst: &str, start: i64) -> String {
    format!("2 123456789012 eni-log {src} {dst} 443 50000 6 10 840 {start} {} ACCEPT OK", start + 60)
}

fn cloudwatch(lines: &[String]) -> Vec<u8> {
    let doc = serde_json::json!({
        "messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": "flows", "logStream": "eni-log-all",
        "subscriptionFilters": ["to-kinesis"], "policyLevel": "ACCOUNT_LEVEL_POLICY",
        "logEvents": lines.iter().enumerate().map(|(i, m)| serde_json::json!({"id": i.to_string(), "timestamp": 0, "message": m})).collect::<Vec<_>>(),
    });
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(doc.to_string().as_bytes()).unwrap();
    gz.finish().unwrap()
}

/// Retries without waiting.
fn no_wait(attempts: u32) -> dredge_lambda::RetryPolicy {
    dredge_lambda::RetryPolicy::new(attempts, std::time::Duration::ZERO, std::time::Duration::ZERO)
}

fn inputs<'a>(payloads: &'a [Vec<u8>], seqs: &'a [String]) -> Vec<Input<'a>> {
    payloads
        .iter()
        .zip(seqs)
        .map(|(p, s)| Input {
            shard: Some("shardId-000000000000"),
            sequence_number: s,
            data: p,
            arrival_ms: 1_799_999_000_000,
        })
        .collect()
}

fn seqs(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("4959{i:04}")).collect()
}

#[tokio::test]
async fn a_late_flow_is_attributed_to_the_owner_at_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let e = enricher(table().await, dir.path(), false, EnricherConfig::default());
    // Processed long after y took the address: the flow from x's time is x's.
    let payloads = vec![cloudwatch(&[
        line("10.0.0.1", "10.0.0.5", 1500),
        line("10.0.0.1", "10.0.0.5", 2500),
        line("10.0.0.1", "10.0.0.5", 3500),
    ])];
    let seq = seqs(1);
    let out = e.process(&inputs(&payloads, &seq), NOW).await;
    assert_eq!(out.retry_from, None, "{:?}", out.error);
    let lines = e.sink().lines();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["dst_app"], "x");
    assert_eq!(lines[0]["dst_attribution"], "owner");
    assert_eq!(lines[0]["timestamp"], 1_500_000);
    assert_eq!(lines[1]["dst_attribution"], "unattributed", "in the gap nobody owned it");
    assert!(lines[1].get("dst_app").is_none());
    assert_eq!(lines[2]["dst_app"], "y");
    for l in &lines {
        assert_eq!(l["src_app"], "api");
        assert_eq!(l["src_attribution"], "owner");
        assert_eq!(l["src_eni_id"], "eni-log");
    }
    assert_eq!(lines[0]["cross_az"], true);
    assert_eq!(lines[2]["cross_az"], false);
    assert_eq!(lines[0]["cross_vpc"], false);
    assert_eq!(out.stats.dst_unattributed, 1);
}

#[tokio::test]
async fn public_private_and_unknown_remote_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let e = enricher(table().await, dir.path(), false, EnricherConfig::default());
    let payloads = vec![cloudwatch(&[
        line("10.0.0.1", "52.94.3.4", 1500),
        line("10.0.0.1", "8.8.8.8", 1500),
        line("10.0.0.1", "10.9.9.9", 1500),
        // Logged by eni-log, but its own address is not one the table has
        // for it at that time (before the ENI existed): evidence only.
        line("10.0.0.77", "10.0.0.5", 1500),
    ])];
    let seq = seqs(1);
    e.process(&inputs(&payloads, &seq), NOW).await;
    let lines = e.sink().lines();
    assert_eq!((lines[0]["dst_app"].as_str(), lines[0]["dst_kind"].as_str()), (Some("DYNAMODB"), Some("aws_service")));
    assert_eq!(lines[0]["dst_region"], "us-east-1");
    assert_eq!(lines[1]["dst_kind"], "internet");
    assert_eq!(lines[2]["dst_attribution"], "unattributed");
    assert_eq!(lines[3]["dst_app"], "x");
    assert_eq!(lines[3]["src_attribution"], "unattributed", "10.0.0.77 is not eni-log's and nobody else's");
}

#[tokio::test]
async fn bad_input_goes_to_the_dead_letter_store_and_never_fails_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let e = enricher(table().await, dir.path(), false, EnricherConfig::default());
    let payloads = vec![
        cloudwatch(&[line("10.0.0.1", "10.0.0.5", 1500), "2 123456789012 eni-log 10.0.0.1 nonsense".into()]),
        b"\x1f\x8bnot really gzip".to_vec(),
        br#"{"messageType":"CONTROL_MESSAGE","logEvents":[]}"#.to_vec(),
        format!("{}\n2 123456789012 eni-log - - - - - - - 1500 1560 - NODATA\n", line("10.0.0.1", "10.0.0.5", 3500))
            .into_bytes(),
    ];
    let seq = seqs(4);
    let out = e.process(&inputs(&payloads, &seq), NOW).await;
    assert_eq!(out.retry_from, None);
    assert_eq!((out.stats.rejected_lines, out.stats.payload_errors, out.stats.control_messages), (1, 1, 1));
    assert_eq!((out.stats.flows, out.stats.status_records, out.stats.output_lines), (2, 1, 2));
    assert_eq!(e.sink().lines().len(), 2, "NODATA is counted, not forwarded");
    // The dead letter has one entry per affected input: its rejects counted
    // by reason, the first ones quoted, and the input whole.
    let files: Vec<_> = walk(dir.path());
    assert_eq!(files.len(), 1);
    let body = std::fs::read_to_string(&files[0]).unwrap();
    let entries: Vec<Json> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["sequence_number"], seq[0]);
    assert_eq!(entries[0]["rejected_lines"], 1);
    assert_eq!(entries[0]["reasons"], serde_json::json!({"bad_address": 1}));
    assert_eq!(entries[0]["samples"][0]["line"], 2);
    assert!(entries[0]["samples"][0]["reason"].as_str().unwrap().contains("dstaddr"));
    assert_eq!(entries[0]["samples"][0]["text"], "2 123456789012 eni-log 10.0.0.1 nonsense");
    assert_eq!(entries[1]["sequence_number"], seq[1]);
    assert!(entries[1]["refused"].as_str().unwrap().starts_with("gzip"));
    assert_eq!(entries[1]["reasons"], serde_json::json!({"gzip": 1}));
    let base64 =
        |e: &Json| base64::engine::general_purpose::STANDARD.decode(e["data_base64"].as_str().unwrap()).unwrap();
    assert_eq!(base64(&entries[0]), payloads[0]);
    assert_eq!(base64(&entries[1]), payloads[1]);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn status_records_are_forwarded_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let config = EnricherConfig { forward_status_records: true, ..EnricherConfig::default() };
    let e = enricher(table().await, dir.path(), false, config);
    let payloads = vec![b"2 123456789012 eni-log - - - - - - - 1500 1560 - NODATA\n".to_vec()];
    let seq = seqs(1);
    e.process(&inputs(&payloads, &seq), NOW).await;
    let lines = e.sink().lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["log_status"], "NODATA");
    assert_eq!(lines[0]["src_attribution"], "unattributed");
}

#[tokio::test]
async fn failed_entries_are_retried_and_nothing_is_lost_or_doubled() {
    let dir = tempfile::tempdir().unwrap();
    let config = EnricherConfig {
        put_retry: no_wait(EnricherConfig::default().put_retry.attempts),
        ..EnricherConfig::default()
    };
    let e = enricher(table().await, dir.path(), false, config);
    *e.sink().fail_first.lock().unwrap() = 2;
    let payloads: Vec<Vec<u8>> = (0..3).map(|i| line("10.0.0.1", "10.0.0.5", 1500 + i).into_bytes()).collect();
    let seq = seqs(3);
    let out = e.process(&inputs(&payloads, &seq), NOW).await;
    assert_eq!(out.retry_from, None);
    assert!(out.stats.put_retried >= 1);
    let mut starts: Vec<i64> = e.sink().lines().iter().map(|l| l["start"].as_i64().unwrap()).collect();
    starts.sort();
    assert_eq!(starts, [1500, 1501, 1502]);
}

#[tokio::test]
async fn a_stream_that_keeps_failing_makes_lambda_retry_from_the_first_record() {
    let dir = tempfile::tempdir().unwrap();
    let e = enricher_on(TestSink { fail_always: true, ..TestSink::default() }, dir.path(), Compression::Zstd).await;
    let payloads: Vec<Vec<u8>> = (0..3).map(|i| line("10.0.0.1", "10.0.0.5", 1500 + i).into_bytes()).collect();
    let seq = seqs(3);
    let out = e.process(&inputs(&payloads, &seq), NOW).await;
    assert_eq!(out.retry_from.as_deref(), Some(seq[0].as_str()));
}

/// Output is delivered while the batch is written; when the stream stops
/// taking it, the batch stops and Lambda retries from the first input whose
/// output is not all delivered: nothing before it is missing.
#[tokio::test]
async fn a_stream_failing_mid_batch_stops_it_with_nothing_before_the_retry_point_lost() {
    let dir = tempfile::tempdir().unwrap();
    // Plain records (1 MiB) fill ten times sooner than compressed ones (4 MiB
    // of lines each), so this small batch shows delivery mid-batch.
    let sink = TestSink { accept_only: Some(12), ..TestSink::default() };
    let e = enricher_on(sink, dir.path(), Compression::None).await;
    // 40 inputs of 1,000 flows each, about 35 MB of output: output records
    // fill and are delivered long before the batch ends.
    const FLOWS: i64 = 1000;
    let payloads: Vec<Vec<u8>> = (0..40)
        .map(|i| cloudwatch(&(0..FLOWS).map(|j| line("10.0.0.1", "10.0.0.5", i * FLOWS + j)).collect::<Vec<_>>()))
        .collect();
    let seq = seqs(payloads.len());
    let out = e.process(&inputs(&payloads, &seq), NOW).await;
    let retry = seq.iter().position(|s| Some(s.as_str()) == out.retry_from.as_deref()).expect("a retry point");
    assert!(retry > 0, "the first records were delivered");
    assert!(out.stats.output_lines < 40 * FLOWS as u64, "stopped early: {:?}", out.stats);
    let mut per_input = vec![0i64; payloads.len()];
    for l in e.sink().lines() {
        per_input[(l["start"].as_i64().unwrap() / FLOWS) as usize] += 1;
    }
    assert!(per_input[..retry].iter().all(|&n| n == FLOWS), "{retry} {per_input:?}");
    assert!(per_input[retry] < FLOWS, "{retry} {per_input:?}");
}

/// Compressed or not, the same enriched lines, each with the flow id of its
/// source line, the same on a replay; compressed, a fraction of the bytes.
#[tokio::test]
async fn compressed_output_carries_the_same_lines_with_stable_flow_ids() {
    let dir = tempfile::tempdir().unwrap();
    let payloads: Vec<Vec<u8>> = (0..20)
        .map(|i| cloudwatch(&(0..200).map(|j| line("10.0.0.1", "10.0.0.5", 1000 + i * 200 + j)).collect::<Vec<_>>()))
        .chain([format!("{}\n\n{}", line("10.0.0.1", "10.0.0.5", 1), line("10.0.0.1", "10.0.0.5", 2)).into_bytes()])
        .collect();
    let seq = seqs(payloads.len());
    let mut outputs = Vec::new();
    for compression in [Compression::Zstd, Compression::None, Compression::Zstd] {
        let e = enricher_on(TestSink::default(), dir.path(), compression).await;
        let out = e.process(&inputs(&payloads, &seq), NOW).await;
        assert_eq!(out.retry_from, None);
        outputs.push((out.stats, e.sink().lines()));
    }
    let (zstd, plain, replay) = (&outputs[0], &outputs[1], &outputs[2]);
    assert_eq!(zstd.1, plain.1, "the same lines");
    assert_eq!(zstd.1, replay.1, "and flow ids, on a replay");
    assert_eq!(zstd.1.len(), 4002);
    let mut ids: Vec<&str> = zstd.1.iter().map(|l| l["flow_id"].as_str().unwrap()).collect();
    assert_eq!(ids[0], format!("shardId-000000000000:{}:1", seq[0]));
    // Raw text: line numbers count the blank line.
    assert_eq!(ids[4001], format!("shardId-000000000000:{}:3", seq[20]));
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4002, "one id per source line");
    // Bytes: once per record, and compressed, a fraction of the raw text.
    assert!(plain.0.output_bytes > 5 * plain.0.flow_log_bytes, "{:?}", plain.0);
    assert!(zstd.0.output_bytes < plain.0.flow_log_bytes, "{:?}", zstd.0);
    assert_eq!(zstd.0.flow_log_bytes, plain.0.flow_log_bytes);
    let raw: usize = (0..20).map(|i| (0..200).map(|j| line("", "", 1000 + i * 200 + j).len()).sum::<usize>()).sum();
    assert!(zstd.0.flow_log_bytes > raw as u64);
}

#[tokio::test]
async fn a_failing_dead_letter_store_retries_from_the_first_bad_record() {
    let dir = tempfile::tempdir().unwrap();
    let e = enricher(table().await, dir.path(), true, EnricherConfig::default());
    let payloads = vec![
        line("10.0.0.1", "10.0.0.5", 1500).into_bytes(),
        b"garbage line".to_vec(),
        line("10.0.0.1", "10.0.0.5", 1501).into_bytes(),
    ];
    let seq = seqs(3);
    let out = e.process(&inputs(&payloads, &seq), NOW).await;
    assert_eq!(out.retry_from.as_deref(), Some(seq[1].as_str()));
    assert!(out.error.unwrap().contains("dead-letter"));
}

/// The store is asked once per kind of read on a cold batch (horizon, heads,
/// ENI records), and only for the horizon on a warm one.
#[tokio::test]
async fn a_warm_cache_asks_the_store_nothing() {
    let store = table().await;
    let mut marks = Vec::new();
    let mut sightings = Vec::new();
    for i in 0..250u32 {
        let addr = format!("10.1.{}.{}", i / 200, i % 200 + 1);
        let eni = format!("eni-{i}");
        marks
            .push((key(&addr), Mark::Open { at: UnixTime(100), owner: owner(&eni, "i", "z-prod-v001", "us-east-1a") }));
        sightings.push((key(&addr), seen(&eni, Attached::To("i".into()), 9000)));
    }
    store.put_marks(&marks).await.unwrap();
    store.put_seen(&sightings).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let e = enricher(store, dir.path(), false, EnricherConfig::default());
    let lines: Vec<String> =
        (0..250u32).map(|i| line("10.0.0.1", &format!("10.1.{}.{}", i / 200, i % 200 + 1), 1500)).collect();
    let payloads = vec![lines.join("\n").into_bytes()];
    let seq = seqs(1);
    let cold = e.process(&inputs(&payloads, &seq), NOW).await;
    // 251 distinct addresses (250 remote + the logging one): the horizon,
    // one `heads` call, one `enis_by_id` call for the logging ENI, one
    // `put_seen` for its heartbeat; the embedded store counts one per call
    // (DynamoDB would count 1 GetItem, its 3 + 1 batches and 1 UpdateItem).
    assert_eq!(cold.stats.store_calls, 4);
    assert_eq!(cold.stats.heartbeats_written, 1);
    let warm = e.process(&inputs(&payloads, &seq), UnixTime(NOW.0 + 10)).await;
    // Warm: only the horizon is read.
    assert_eq!((warm.stats.store_calls, warm.stats.eni_lookups), (1, 0));
    // Both sides of every flow answered from the cache.
    assert_eq!((warm.stats.cache_hits, warm.stats.cache_misses), (500, 0));
    assert!(e.sink().lines().iter().all(|l| l["dst_app"] == "z"));
}

/// An enricher with a retry queue that waits `delay` seconds between
/// tries, at most `max_wait` in all.
fn with_queue(
    store: MemoryStore,
    dir: &std::path::Path,
    delay: u32,
    max_wait: i64,
) -> Enricher<MemoryStore, TestSink, Objects, MemoryQueue> {
    let config = EnricherConfig {
        second_chance: dredge_core::enrich::WaitPolicy { delay_seconds: delay, max_wait_seconds: max_wait },
        ..EnricherConfig::default()
    };
    enricher(store, dir, false, config).with_queue(Some(MemoryQueue::new()))
}

/// Processes payloads at `now`, the queue's clock set to it too.
async fn process_at(
    e: &Enricher<MemoryStore, TestSink, Objects, MemoryQueue>,
    payloads: &[Vec<u8>],
    seq: &[String],
    now: i64,
) -> dredge_enricher::BatchOutcome {
    e.queue().unwrap().set_now(UnixTime(now));
    e.process(&inputs(payloads, seq), UnixTime(now)).await
}

/// Hands the queue's due messages back to the enricher at `now`.
async fn retry_due(
    e: &Enricher<MemoryStore, TestSink, Objects, MemoryQueue>,
    now: i64,
) -> dredge_enricher::RetryOutcome {
    let queue = e.queue().unwrap();
    queue.set_now(UnixTime(now));
    e.retry(&queue.due(), UnixTime(now)).await
}

/// The lost termination: x held 10.0.0.9 from 1000, its termination never
/// arrives, and z takes the address at 1600 (its open reaches the table
/// late). Flows between the two go to neither, before or after z is known.
#[tokio::test]
async fn an_owner_whose_end_never_arrives_gets_no_flows_past_its_evidence() {
    let store = table().await;
    let x = owner("eni-x9", "i-x9", "x-prod-v001", "us-east-1b");
    store.put_marks(&[(key("10.0.0.9"), Mark::Open { at: UnixTime(1000), owner: x })]).await.unwrap();
    // A reconcile saw x hold it at 1200; nothing after.
    store.put_seen(&[(key("10.0.0.9"), seen("eni-x9", Attached::To("i-x9".into()), 1200))]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let e = enricher(store, dir.path(), false, EnricherConfig::default());
    let flows = [1100, 1300, 1500, 1700].map(|t| line("10.0.0.1", "10.0.0.9", t));
    let payloads = vec![cloudwatch(&flows)];
    let seq = seqs(1);
    let out = e.process(&inputs(&payloads, &seq), UnixTime(1800)).await;
    assert_eq!(out.retry_from, None);
    let dst: Vec<(String, Option<String>)> = e
        .sink()
        .lines()
        .iter()
        .map(|l| (l["dst_attribution"].as_str().unwrap().to_owned(), l["dst_app"].as_str().map(Into::into)))
        .collect();
    assert_eq!(dst[0], ("owner".into(), Some("x".into())), "within the evidence");
    for d in &dst[1..] {
        assert_eq!(d, &("unattributed".to_owned(), None), "past what the table knows: never x");
    }
    assert_eq!(out.stats.not_yet_known, 3);
    assert_eq!(out.stats.settled_unattributed, 3, "no queue: settled at once");

    // z's open arrives, and z's own flows vouch for it until 1750: z's
    // flows are z's, but x's end is still unknown, so the gap stays
    // unattributed, never given to z either.
    let z = owner("eni-z9", "i-z9", "z-prod-v001", "us-east-1c");
    e.store().put_marks(&[(key("10.0.0.9"), Mark::Open { at: UnixTime(1600), owner: z })]).await.unwrap();
    e.store().put_seen(&[(key("10.0.0.9"), seen("eni-z9", Attached::Unknown, 1750))]).await.unwrap();
    let before = e.sink().lines().len();
    let out = e.process(&inputs(&payloads, &seq), UnixTime(2000)).await;
    assert_eq!(out.retry_from, None);
    let lines = e.sink().lines();
    let apps: Vec<Option<&str>> = lines[before..].iter().map(|l| l["dst_app"].as_str()).collect();
    assert_eq!(apps, [Some("x"), None, None, Some("z")]);
    assert_eq!(lines[before + 1]["dst_attribution"], "unattributed");
}

/// A side the table cannot vouch for waits in the queue; once evidence
/// arrives it is decided `owner_after_retry`, once, with its flow id.
#[tokio::test]
async fn the_second_chance_decides_a_side_once_the_table_knows() {
    let store = table().await;
    let w = owner("eni-w", "i-w", "w-prod-v001", "us-east-1a");
    store.put_marks(&[(key("10.0.0.7"), Mark::Open { at: UnixTime(1000), owner: w })]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let e = with_queue(store, dir.path(), 120, 600);
    let payloads = vec![cloudwatch(&[line("10.0.0.1", "10.0.0.7", 1500), line("10.0.0.1", "10.0.0.5", 3500)])];
    let seq = seqs(1);
    let out = process_at(&e, &payloads, &seq, 1600).await;
    assert_eq!(out.retry_from, None, "{:?}", out.error);
    assert_eq!((out.stats.deferred_flows, out.stats.deferred_messages), (1, 1));
    let lines = e.sink().lines();
    assert_eq!(lines.len(), 1, "only the decided flow is out");
    assert_eq!(lines[0]["dst_app"], "y");
    // Nothing is due before the delay.
    assert_eq!(retry_due(&e, 1700).await.stats.records_in, 0);
    // Still nothing known at the first retry: it waits again.
    let out = retry_due(&e, 1720).await;
    assert!(out.failed.is_empty(), "{:?}", out.error);
    assert_eq!(out.stats.deferred_flows, 1);
    assert_eq!(e.sink().lines().len(), 1);
    // A reconcile sees w holding it; the next try decides it.
    e.store().put_seen(&[(key("10.0.0.7"), seen("eni-w", Attached::To("i-w".into()), 1800))]).await.unwrap();
    let out = retry_due(&e, 1840).await;
    assert!(out.failed.is_empty(), "{:?}", out.error);
    assert_eq!((out.stats.owner_after_retry, out.stats.deferred_flows), (1, 0));
    let lines = e.sink().lines();
    assert_eq!(lines.len(), 2);
    let late = &lines[1];
    assert_eq!(late["dst_app"], "w");
    assert_eq!(late["dst_attribution"], "owner_after_retry");
    assert_eq!(late["src_attribution"], "owner", "the side decided at once keeps its attribution");
    assert_eq!(late["timestamp"], 1_500_000);
    assert_eq!(late["flow_id"], format!("shardId-000000000000:{}:1", seq[0]));
    assert!(e.queue().unwrap().is_empty());
}

/// The wait is bounded: past it, the side is written `unattributed`; a
/// message that is not a deferred batch is kept, never retried forever.
#[tokio::test]
async fn a_wait_that_runs_out_is_unattributed_and_bad_messages_are_kept() {
    let store = table().await;
    let w = owner("eni-w", "i-w", "w-prod-v001", "us-east-1a");
    store.put_marks(&[(key("10.0.0.7"), Mark::Open { at: UnixTime(1000), owner: w })]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let e = with_queue(store, dir.path(), 300, 600);
    let payloads = vec![cloudwatch(&[line("10.0.0.1", "10.0.0.7", 1500)])];
    let seq = seqs(1);
    process_at(&e, &payloads, &seq, 1600).await;
    assert_eq!(retry_due(&e, 1900).await.stats.deferred_flows, 1, "one more wait fits: 300 + 300 <= 600");
    let out = retry_due(&e, 2200).await;
    assert_eq!((out.stats.deferred_flows, out.stats.settled_unattributed), (0, 1));
    let lines = e.sink().lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["dst_attribution"], "unattributed");
    assert!(lines[0].get("dst_app").is_none());

    let bad = dredge_core::retry_queue::ReceivedMessage { message_id: "m-bad".into(), body: "not json".into() };
    let out = e.retry(&[bad], UnixTime(2300)).await;
    assert!(out.failed.is_empty());
    assert_eq!(out.stats.bad_messages, 1);
    let kept: Vec<_> = walk(dir.path());
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(std::fs::read_to_string(&kept[0]).unwrap().contains("m-bad"));
}

/// A queue that keeps failing makes Lambda retry the input whose flows
/// could not wait; nothing is emitted twice meanwhile... but nothing is
/// lost.
#[tokio::test]
async fn a_failing_queue_retries_the_input_behind_it() {
    let store = table().await;
    let w = owner("eni-w", "i-w", "w-prod-v001", "us-east-1a");
    store.put_marks(&[(key("10.0.0.7"), Mark::Open { at: UnixTime(1000), owner: w })]).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let e = with_queue(store, dir.path(), 120, 600);
    e.queue().unwrap().fail_next(10);
    let payloads =
        vec![cloudwatch(&[line("10.0.0.1", "10.0.0.5", 3500)]), cloudwatch(&[line("10.0.0.1", "10.0.0.7", 1500)])];
    let seq = seqs(2);
    let out = e.process(&inputs(&payloads, &seq), UnixTime(1600)).await;
    assert_eq!(out.retry_from.as_deref(), Some(seq[1].as_str()));
    assert!(out.error.unwrap().contains("retry queue"));
}
