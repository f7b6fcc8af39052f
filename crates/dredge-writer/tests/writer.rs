//! The writer on the embedded object store: staging, compaction, repeats,
//! late flows, rejects, and runs that die half-way.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow_array::{Array, Int64Array, StringArray};
use bytes::Bytes;
use dredge_columnar::EncoderOptions;
use dredge_core::objects::{
    Listed, LocalObjects, MultipartUpload, ObjectError, ObjectListing, ObjectStore, Part, Upload,
};
use dredge_lambda::kinesis::Input;
use dredge_writer::layout::{Hour, Layout};
use dredge_writer::manifest::Manifest;
use dredge_writer::{compact, CompactOptions, Sizes, Staging};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// 2026-11-30T13:00:00Z, in seconds.
const HOUR: i64 = 1_796_043_600;
const SHARD: &str = "shardId-000000000001";

/// An enriched line for flow `n` of source record `seq`, in the hour
/// starting at `hour`.
fn line(hour: i64, seq: u64, n: u64, bytes: &str) -> String {
    let start = hour + (n as i64 % 3600);
    format!(
        concat!(
            r#"{{"timestamp":{ts},"flow_id":"{SHARD}:{seq}:{n}","version":2,"account_id":"123456789012","#,
            r#""interface_id":"eni-0a1b2c3d4e5f60001","srcaddr":"10.0.0.1","dstaddr":"10.0.0.2","srcport":443,"#,
            r#""dstport":5{n},"protocol":6,"packets":2,"bytes":{bytes},"start":{start},"end":{end},"#,
            r#""action":"ACCEPT","log_status":"OK","src_app":"api","src_attribution":"owner","#,
            r#""dst_attribution":"unattributed","cross_az":false}}"#
        ),
        ts = start * 1000,
        SHARD = SHARD,
        seq = seq,
        n = n,
        bytes = bytes,
        start = start,
        end = start + 60,
    )
}

/// One Kinesis record at stream position `49000 + seq`, holding flows
/// `flows` of source record `seq`.
fn record(hour: i64, seq: u64, flows: std::ops::Range<u64>) -> (String, Vec<u8>) {
    replayed(49_000 + seq, hour, seq, flows)
}

/// The flows of source record `seq` again, at another stream position
/// (an enricher retry or a replay).
fn replayed(position: u64, hour: i64, seq: u64, flows: std::ops::Range<u64>) -> (String, Vec<u8>) {
    let mut data = String::new();
    for n in flows {
        data.push_str(&line(hour, seq, n, "100"));
        data.push('\n');
    }
    (position.to_string(), data.into_bytes())
}

fn inputs(records: &[(String, Vec<u8>)]) -> Vec<Input<'_>> {
    records.iter().map(|(seq, data)| Input { shard: Some(SHARD), sequence_number: seq, data, arrival_ms: 0 }).collect()
}

fn layout() -> Layout {
    Layout::new("flows").unwrap()
}

async fn stage_records<S: ObjectStore>(
    store: &S,
    dead: &LocalObjects,
    records: &[(String, Vec<u8>)],
) -> dredge_writer::StageStats {
    let layout = layout();
    let staging = Staging {
        data: store,
        dead_letter: dead,
        dead_letter_prefix: "rejected",
        layout: &layout,
        encoder: EncoderOptions::default(),
    };
    let (stats, result) = staging.stage(&inputs(records), HOUR).await;
    result.unwrap();
    stats
}

/// Every final row's flow id and bytes, read back with the parquet crate.
async fn final_rows<S: ObjectListing>(store: &S) -> (Vec<String>, i64) {
    let mut ids = Vec::new();
    let mut bytes = 0;
    for listed in store.list("flows/").await.unwrap() {
        if !listed.key.ends_with(".parquet") {
            continue;
        }
        let body = Bytes::from(store.get(&listed.key).await.unwrap());
        for batch in ParquetRecordBatchReaderBuilder::try_new(body).unwrap().build().unwrap() {
            let batch = batch.unwrap();
            let id = batch.column_by_name("flow_id").unwrap().as_any().downcast_ref::<StringArray>().unwrap();
            ids.extend(id.iter().map(|s| s.unwrap().to_owned()));
            let b = batch.column_by_name("bytes").unwrap().as_any().downcast_ref::<Int64Array>().unwrap();
            bytes += b.iter().map(|v| v.unwrap()).sum::<i64>();
        }
    }
    (ids, bytes)
}

async fn manifest<S: ObjectStore>(store: &S, hour: i64) -> Manifest {
    let key = layout().manifest(Hour::of_millis(hour * 1000).unwrap());
    serde_json::from_slice(&store.get(&key).await.unwrap()).unwrap()
}

fn due(hour: i64) -> i64 {
    hour + 3600 + 15 * 60
}

#[tokio::test]
async fn staging_writes_an_object_per_hour_and_a_retry_overwrites_it() {
    let dir = tempfile::tempdir().unwrap();
    let (store, dead) = (LocalObjects::new(dir.path().join("data")), LocalObjects::new(dir.path().join("dead")));
    let records = [record(HOUR, 1, 0..50), record(HOUR + 3600, 2, 0..30)];
    let stats = stage_records(&store, &dead, &records).await;
    assert_eq!((stats.rows_written, stats.objects_written, stats.rows_rejected), (80, 2, 0));
    let staged: Vec<String> = store.list("staging/").await.unwrap().into_iter().map(|l| l.key).collect();
    assert_eq!(
        staged,
        [
            "staging/flows/dt=2026-11-30/hour=13/shardId-000000000001_49001_49002.parquet",
            "staging/flows/dt=2026-11-30/hour=14/shardId-000000000001_49001_49002.parquet",
        ]
    );
    // The same batch again (a plain retry): the same objects, overwritten.
    stage_records(&store, &dead, &records).await;
    assert_eq!(store.list("staging/").await.unwrap().len(), 2);
}

#[tokio::test]
async fn compaction_keeps_every_flow_once_and_adds_late_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (store, dead) = (LocalObjects::new(dir.path().join("data")), LocalObjects::new(dir.path().join("dead")));
    // A batch, then a bisected half of it (other positions, same flows).
    stage_records(&store, &dead, &[record(HOUR, 1, 0..100), record(HOUR, 2, 0..50)]).await;
    stage_records(&store, &dead, &[record(HOUR, 2, 0..50)]).await;
    // The next hour is not due yet.
    stage_records(&store, &dead, &[record(HOUR + 3600, 3, 0..10)]).await;

    let options = CompactOptions::default();
    let (stats, result) = compact(&store, &layout(), &options, due(HOUR)).await;
    result.unwrap();
    assert_eq!((stats.hours_compacted, stats.staged_objects, stats.rows_read), (1, 2, 200));
    assert_eq!((stats.rows_written, stats.duplicates_dropped, stats.objects_written), (150, 50, 1));
    let (ids, bytes) = final_rows(&store).await;
    assert_eq!((ids.len(), ids.iter().collect::<BTreeSet<_>>().len(), bytes), (150, 150, 15_000));
    let m = manifest(&store, HOUR).await;
    assert_eq!((m.objects.len(), m.rows, m.partition.as_str()), (1, 150, "dt=2026-11-30/hour=13"));
    let left: Vec<String> = store.list("staging/").await.unwrap().into_iter().map(|l| l.key).collect();
    assert_eq!(left.len(), 1, "the next hour stays staged: {left:?}");
    assert!(left[0].contains("hour=14"));

    // Late flows of the compacted hour, with a repeat of a final one.
    stage_records(&store, &dead, &[record(HOUR, 4, 0..20), record(HOUR, 1, 99..100)]).await;
    let (stats, result) = compact(&store, &layout(), &options, due(HOUR) + 60).await;
    result.unwrap();
    assert_eq!((stats.rows_written, stats.duplicates_dropped), (20, 1));
    let m = manifest(&store, HOUR).await;
    assert_eq!((m.objects.len(), m.rows), (2, 170));
    let (ids, _) = final_rows(&store).await;
    assert_eq!((ids.len(), ids.iter().collect::<BTreeSet<_>>().len()), (170, 170));
}

#[tokio::test]
async fn lines_that_cannot_be_written_exactly_are_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let (store, dead) = (LocalObjects::new(dir.path().join("data")), LocalObjects::new(dir.path().join("dead")));
    let mut data = line(HOUR, 7, 0, "100").into_bytes();
    data.push(b'\n');
    data.extend_from_slice(line(HOUR, 7, 1, "18446744073709551615").as_bytes());
    data.extend_from_slice(b"\nnot json\n{\"flow_id\":\"x\"}\n");
    let records = [("49007".to_owned(), data)];
    let stats = stage_records(&store, &dead, &records).await;
    assert_eq!((stats.rows_written, stats.rows_rejected), (1, 3));
    let letters = dead.list("rejected/writer/").await.unwrap();
    assert_eq!(letters.len(), 1);
    let body = String::from_utf8(dead.get(&letters[0].key).await.unwrap()).unwrap();
    let lines: Vec<serde_json::Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.iter().map(|l| l["line"].as_u64().unwrap()).collect::<Vec<_>>(), [2, 3, 4]);
    assert!(lines[0]["text"].as_str().unwrap().contains("18446744073709551615"), "{body}");
}

/// An object store that stops working after a number of writes.
struct Failing {
    inner: LocalObjects,
    writes_left: AtomicUsize,
}

impl Failing {
    fn wrote(&self) -> Result<(), ObjectError> {
        let left = self.writes_left.load(Ordering::SeqCst);
        if left == 0 {
            return Err(ObjectError::Transient("S3: SlowDown (injected)".into()));
        }
        self.writes_left.store(left - 1, Ordering::SeqCst);
        Ok(())
    }
}

impl ObjectStore for Failing {
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), ObjectError> {
        self.wrote()?;
        self.inner.put(key, body).await
    }
    async fn get(&self, key: &str) -> Result<Vec<u8>, ObjectError> {
        self.inner.get(key).await
    }
}

impl ObjectListing for Failing {
    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, ObjectError> {
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<(), ObjectError> {
        self.wrote()?;
        self.inner.delete(key).await
    }
}

impl MultipartUpload for Failing {
    async fn start_upload(&self, key: &str) -> Result<Upload, ObjectError> {
        self.inner.start_upload(key).await
    }
    async fn upload_part(&self, upload: &Upload, number: u32, body: Vec<u8>) -> Result<Part, ObjectError> {
        self.inner.upload_part(upload, number, body).await
    }
    async fn complete_upload(&self, upload: &Upload, parts: &[Part]) -> Result<(), ObjectError> {
        self.wrote()?;
        self.inner.complete_upload(upload, parts).await
    }
    async fn abort_upload(&self, upload: &Upload) -> Result<(), ObjectError> {
        self.inner.abort_upload(upload).await
    }
}

#[tokio::test]
async fn a_compaction_that_dies_anywhere_is_completed_by_the_next() {
    // Small objects, so that a run writes several and can die between them.
    let options = CompactOptions { sizes: Sizes { target_bytes: 1, ..Sizes::default() }, ..CompactOptions::default() };
    let mut writes_before_dying = 0;
    loop {
        let dir = tempfile::tempdir().unwrap();
        let dead = LocalObjects::new(dir.path().join("dead"));
        let healthy = LocalObjects::new(dir.path().join("data"));
        // Four overlapping deliveries of the flows 0..60 of one source record.
        for s in 0..4 {
            stage_records(&healthy, &dead, &[replayed(50_000 + s, HOUR, 1, s * 10..s * 10 + 30)]).await;
        }
        let failing = Failing { inner: healthy.clone(), writes_left: AtomicUsize::new(writes_before_dying) };
        let (_, died) = compact(&failing, &layout(), &options, due(HOUR)).await;
        let (stats, result) = compact(&healthy, &layout(), &options, due(HOUR) + 60).await;
        result.unwrap();
        let (ids, bytes) = final_rows(&healthy).await;
        let distinct = ids.iter().collect::<BTreeSet<_>>().len();
        assert_eq!((ids.len(), distinct, bytes), (60, 60, 6_000), "died after {writes_before_dying} writes: {stats:?}");
        assert_eq!(manifest(&healthy, HOUR).await.rows, 60);
        assert!(healthy.list("staging/").await.unwrap().is_empty());
        if died.is_ok() {
            break;
        }
        writes_before_dying += 1;
    }
    assert!(writes_before_dying > 4, "the run had several writes to die between");
}

#[tokio::test]
async fn a_batch_that_fails_half_written_is_retried_whole() {
    let dir = tempfile::tempdir().unwrap();
    let dead = LocalObjects::new(dir.path().join("dead"));
    let healthy = LocalObjects::new(dir.path().join("data"));
    // Two hours: the first object is written, then S3 fails.
    let records = [record(HOUR, 1, 0..40), record(HOUR + 3600, 2, 0..10)];
    let failing = Failing { inner: healthy.clone(), writes_left: AtomicUsize::new(1) };
    let layout = layout();
    let staging = Staging {
        data: &failing,
        dead_letter: &dead,
        dead_letter_prefix: "rejected",
        layout: &layout,
        encoder: EncoderOptions::default(),
    };
    let (_, result) = staging.stage(&inputs(&records), HOUR).await;
    let e = result.unwrap_err();
    assert!(e.is_transient(), "{e}");
    // Lambda retries the batch: the same objects, overwritten and completed.
    stage_records(&healthy, &dead, &records).await;
    assert_eq!(healthy.list("staging/").await.unwrap().len(), 2);
    let (_, result) = compact(&healthy, &layout, &CompactOptions::default(), due(HOUR + 3600)).await;
    result.unwrap();
    let (ids, bytes) = final_rows(&healthy).await;
    assert_eq!((ids.len(), ids.iter().collect::<BTreeSet<_>>().len(), bytes), (50, 50, 5_000));
}

/// A store whose manifests cannot be read (access denied, say).
struct UnreadableManifests(LocalObjects);

impl ObjectStore for UnreadableManifests {
    async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), ObjectError> {
        self.0.put(key, body).await
    }
    async fn get(&self, key: &str) -> Result<Vec<u8>, ObjectError> {
        if key.ends_with("_manifest.json") {
            return Err(ObjectError::Permanent("S3 GetObject: AccessDenied (injected)".into()));
        }
        self.0.get(key).await
    }
}

impl ObjectListing for UnreadableManifests {
    async fn list(&self, prefix: &str) -> Result<Vec<Listed>, ObjectError> {
        self.0.list(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<(), ObjectError> {
        self.0.delete(key).await
    }
}

impl MultipartUpload for UnreadableManifests {
    async fn start_upload(&self, key: &str) -> Result<Upload, ObjectError> {
        self.0.start_upload(key).await
    }
    async fn upload_part(&self, upload: &Upload, number: u32, body: Vec<u8>) -> Result<Part, ObjectError> {
        self.0.upload_part(upload, number, body).await
    }
    async fn complete_upload(&self, upload: &Upload, parts: &[Part]) -> Result<(), ObjectError> {
        self.0.complete_upload(upload, parts).await
    }
    async fn abort_upload(&self, upload: &Upload) -> Result<(), ObjectError> {
        self.0.abort_upload(upload).await
    }
}

#[tokio::test]
async fn a_manifest_that_cannot_be_read_stops_compaction_and_removes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, dead) = (LocalObjects::new(dir.path().join("data")), LocalObjects::new(dir.path().join("dead")));
    stage_records(&store, &dead, &[record(HOUR, 1, 0..30)]).await;
    compact(&store, &layout(), &CompactOptions::default(), due(HOUR)).await.1.unwrap();
    stage_records(&store, &dead, &[record(HOUR, 2, 0..5)]).await;
    let unreadable = UnreadableManifests(store.clone());
    let (_, result) = compact(&unreadable, &layout(), &CompactOptions::default(), due(HOUR) + 60).await;
    assert!(result.is_err(), "an unreadable manifest is an error");
    let (ids, _) = final_rows(&store).await;
    assert_eq!(ids.len(), 30, "the hour's final objects are kept");
    compact(&store, &layout(), &CompactOptions::default(), due(HOUR) + 120).await.1.unwrap();
    assert_eq!(final_rows(&store).await.0.len(), 35);
}

#[tokio::test]
async fn an_hour_too_large_for_one_set_of_ids_is_compacted_in_passes() {
    let dir = tempfile::tempdir().unwrap();
    let (store, dead) = (LocalObjects::new(dir.path().join("data")), LocalObjects::new(dir.path().join("dead")));
    // 300 flows of one source record, delivered in overlapping runs.
    for s in 0..4 {
        stage_records(&store, &dead, &[replayed(60_000 + s, HOUR, 9, s * 70..s * 70 + 90)]).await;
    }
    // A pass may hold 40 ids: the hour takes several.
    let options = CompactOptions { max_flow_ids: 40, ..CompactOptions::default() };
    let (stats, result) = compact(&store, &layout(), &options, due(HOUR)).await;
    result.unwrap();
    assert_eq!((stats.rows_read, stats.rows_written, stats.duplicates_dropped), (360, 300, 60), "{stats:?}");
    assert!(stats.passes > 1, "{stats:?}");
    // Late flows and repeats, in passes again.
    stage_records(&store, &dead, &[replayed(61_000, HOUR, 9, 250..320)]).await;
    let (stats, result) = compact(&store, &layout(), &options, due(HOUR) + 60).await;
    result.unwrap();
    assert_eq!((stats.rows_written, stats.duplicates_dropped), (20, 50), "{stats:?}");
    let (ids, bytes) = final_rows(&store).await;
    assert_eq!((ids.len(), ids.iter().collect::<BTreeSet<_>>().len(), bytes), (320, 320, 32_000));
    assert_eq!(manifest(&store, HOUR).await.rows, 320);
}
