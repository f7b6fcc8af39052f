//! The enricher on embedded backends: attribution at the flow's time,
//! failure semantics, dead letters, caching.

use std::io::Write;
use std::sync::{Arc, Mutex};

use dredge_core::ipranges::IpRanges;
use dredge_core::objects::{LocalObjects, ObjectError, ObjectStore};
use dredge_core::ownership::{
    AddressKey, Applier, Change, Eni, Mark, MemoryStore, Owner, OwnershipStore, Scope, TagPolicy, UnixTime, ASG_TAG,
};
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

fn key(addr: &str) -> AddressKey {
    AddressKey::new(Scope::Vpc(VPC.into()), addr.parse().unwrap())
}

/// The table: 10.0.0.5 held by app x [1000, 2000), then by app y from
/// 3000; the logging ENI eni-log (app api) holds 10.0.0.1 throughout.
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
    // The dead letter names each rejected line and keeps the input whole.
    let files: Vec<_> = walk(dir.path());
    assert_eq!(files.len(), 1);
    let body = std::fs::read_to_string(&files[0]).unwrap();
    let entries: Vec<Json> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(entries[0]["sequence_number"], seq[0]);
    assert_eq!(entries[0]["line"], 2);
    assert!(entries[0]["reason"].as_str().unwrap().contains("dstaddr"));
    assert_eq!(entries[1]["sequence_number"], seq[1]);
    assert!(entries[1]["reason"].as_str().unwrap().starts_with("gzip"));
    assert!(entries.iter().any(|e| e["sequence_number"] == seq[1] && e["data_base64"].is_string()));
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

/// The store is asked once per kind of read on a cold batch (heads, ENI
/// records), and not at all on a warm one.
#[tokio::test]
async fn a_warm_cache_asks_the_store_nothing() {
    let store = table().await;
    let mut marks = Vec::new();
    for i in 0..250u32 {
        let addr = format!("10.1.{}.{}", i / 200, i % 200 + 1);
        marks.push((
            key(&addr),
            Mark::Open { at: UnixTime(100), owner: owner(&format!("eni-{i}"), "i", "z-prod-v001", "us-east-1a") },
        ));
    }
    store.put_marks(&marks).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let e = enricher(store, dir.path(), false, EnricherConfig::default());
    let lines: Vec<String> =
        (0..250u32).map(|i| line("10.0.0.1", &format!("10.1.{}.{}", i / 200, i % 200 + 1), 1500)).collect();
    let payloads = vec![lines.join("\n").into_bytes()];
    let seq = seqs(1);
    let cold = e.process(&inputs(&payloads, &seq), NOW).await;
    // 251 distinct addresses (250 remote + the logging one): one `heads`
    // call, plus one `enis_by_id` call for the logging ENI; the embedded
    // store counts one per call (DynamoDB would count its 3 + 1 batches).
    assert_eq!(cold.stats.store_calls, 2);
    let warm = e.process(&inputs(&payloads, &seq), UnixTime(NOW.0 + 10)).await;
    assert_eq!((warm.stats.store_calls, warm.stats.eni_lookups), (0, 0));
    // Both sides of every flow answered from the cache.
    assert_eq!((warm.stats.cache_hits, warm.stats.cache_misses), (500, 0));
    assert!(e.sink().lines().iter().all(|l| l["dst_app"] == "z"));
}
