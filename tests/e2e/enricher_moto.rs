//! The pipeline end to end against the moto server: CloudWatch Logs
//! envelopes put on a real Kinesis stream, read back as the Lambda event
//! source mapping would deliver them, enriched against a DynamoDB ownership
//! table, written to a second stream and read back; rejected lines land in
//! S3. Then the writer stages the enriched stream in S3 (delivered more than
//! once), compaction leaves every flow once, and readers this project did
//! not write (pyarrow, DuckDB, parquet-java) read the final objects.

use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::ShardIteratorType;
use dredge_aws::{create_table, s3_client, DynamoOwnershipStore, KinesisSink, S3Objects};
use dredge_core::ownership::{
    AddressKey, Applier, Attached, Change, OwnershipStore, Scope, Sighting, TagPolicy, UnixTime,
};
use dredge_core::stream_data::{read_lines, DEFAULT_MAX_LINES_BYTES};
use dredge_enricher::lambda::handle;
use dredge_enricher::{Enricher, EnricherConfig, KinesisBatch};
use dredge_lambda::Vars;
use dredge_tests::{eni, envelope, VPC};
use dredge_writer::lambda::Writer;
use dredge_writer::{Outcome, WriterConfig, WriterEvent};

async fn create_stream(client: &aws_sdk_kinesis::Client, name: &str) {
    client.create_stream().stream_name(name).shard_count(1).send().await.expect("create_stream");
}

/// Every record on the stream's only shard, as the event source mapping
/// would hand them to the function.
async fn read_all(client: &aws_sdk_kinesis::Client, stream: &str) -> Vec<aws_sdk_kinesis::types::Record> {
    let shards = client.list_shards().stream_name(stream).send().await.expect("list_shards");
    let shard = shards.shards()[0].shard_id().to_owned();
    let iterator = client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("get_shard_iterator")
        .shard_iterator
        .unwrap();
    let out = client.get_records().shard_iterator(iterator).limit(10_000).send().await.expect("get_records");
    out.records().to_vec()
}

/// The Lambda event for records read off the stream, as
/// `aws_lambda_events` writes it, read back as the enricher reads events.
fn as_event(records: &[aws_sdk_kinesis::types::Record]) -> KinesisBatch {
    let mut event = KinesisEvent::default();
    for r in records {
        let mut rec = KinesisEventRecord::default();
        rec.kinesis.data.0 = r.data().as_ref().to_vec();
        rec.kinesis.sequence_number = r.sequence_number().to_owned();
        rec.kinesis.partition_key = r.partition_key().unwrap_or_default().to_owned();
        if let Some(at) = r.approximate_arrival_timestamp() {
            rec.kinesis.approximate_arrival_timestamp.0 =
                chrono::DateTime::from_timestamp_millis(at.to_millis().unwrap()).unwrap();
        }
        rec.event_source = Some("aws:kinesis".into());
        // As Lambda names it: the (one) shard, then the sequence number.
        rec.event_id = Some(format!("shardId-000000000000:{}", r.sequence_number()));
        event.records.push(rec);
    }
    let batch: KinesisBatch = serde_json::from_value(serde_json::to_value(&event).unwrap()).unwrap();
    assert_eq!(batch.records.len(), records.len());
    for (ours, theirs) in batch.records.iter().zip(&event.records) {
        assert_eq!(ours.kinesis.data, theirs.kinesis.data.0);
        assert_eq!(ours.kinesis.sequence_number, theirs.kinesis.sequence_number);
        assert_eq!(ours.shard(), Some("shardId-000000000000"));
        let ms = theirs.kinesis.approximate_arrival_timestamp.0.timestamp_millis();
        assert!((ours.kinesis.approximate_arrival_timestamp * 1000.0 - ms as f64).abs() < 1.0);
    }
    batch
}

#[tokio::test]
async fn flow_logs_through_kinesis_dynamodb_and_back() {
    let Some(config) = dredge_tests::moto_config("flow_logs_through_kinesis_dynamodb_and_back").await else {
        return;
    };
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let kinesis = aws_sdk_kinesis::Client::new(&config);
    let s3 = s3_client(&config);
    let table = dredge_tests::unique_name("ownership");
    let input = dredge_tests::unique_name("flows");
    let output = dredge_tests::unique_name("enriched");
    let bucket = dredge_tests::unique_name("dead").to_lowercase();
    create_table(&ddb, &table).await.expect("create table");
    create_stream(&kinesis, &input).await;
    create_stream(&kinesis, &output).await;
    s3.create_bucket().bucket(&bucket).send().await.expect("create_bucket");

    // Ownership: the logging ENI (api) from 500; 10.0.0.5 held by x from
    // 1000 until x's instance stopped at 2000, then by y from 3000.
    let store = DynamoOwnershipStore::new(ddb.clone(), &table);
    let applier = Applier::new(&store, TagPolicy::default());
    let changes = [
        Change::EniUp { at: UnixTime(500), eni: Box::new(eni("eni-log", "i-api", "api-prod-v042", "10.0.0.1")) },
        Change::EniUp { at: UnixTime(1000), eni: Box::new(eni("eni-x", "i-x", "x-prod-v001", "10.0.0.5")) },
        Change::InstanceDown { at: UnixTime(2000), instance_id: "i-x".into() },
        Change::EniUp { at: UnixTime(3000), eni: Box::new(eni("eni-y", "i-y", "y-prod-v001", "10.0.0.5")) },
    ];
    for change in &changes {
        applier.apply(change).await.expect("apply");
    }
    // What a reconcile at 4000 leaves: y seen holding 10.0.0.5 (evidence
    // that reaches the flow at 3500), and the horizon at 4000.
    let y_seen = Sighting { eni_id: "eni-y".into(), attached: Attached::To("i-y".into()), at: UnixTime(4000) };
    let key = AddressKey::new(Scope::Vpc(VPC.into()), "10.0.0.5".parse().unwrap());
    store.put_seen(&[(key, y_seen)]).await.expect("put_seen");
    store.note_reconciled("*#*", UnixTime(4000)).await.expect("note_reconciled");

    let line = |dst: &str, start: i64| {
        format!("2 123456789012 eni-log 10.0.0.1 {dst} 443 50000 6 10 840 {start} {} ACCEPT OK", start + 60)
    };
    let payloads = [
        envelope(&[line("10.0.0.5", 1500), line("10.0.0.5", 2500)]),
        envelope(&[line("10.0.0.5", 3500), "2 123456789012 eni-log not-an-address".into()]),
    ];
    for (i, p) in payloads.iter().enumerate() {
        kinesis
            .put_record()
            .stream_name(&input)
            .partition_key(format!("eni-log-{i}"))
            .data(Blob::new(p.clone()))
            .send()
            .await
            .expect("put_record");
    }
    let delivered = read_all(&kinesis, &input).await;
    assert_eq!(delivered.len(), 2);

    let enricher = Enricher::new(
        DynamoOwnershipStore::new(ddb.clone(), &table),
        KinesisSink::new(kinesis.clone(), &output),
        S3Objects::new(s3.clone(), &bucket, ""),
        EnricherConfig::default(),
        TagPolicy::default(),
        None,
    );
    // Boxed: the handlers' futures, nested inline, overflow a debug build's
    // test thread stack.
    let (response, outcome) = Box::pin(handle(&enricher, &as_event(&delivered), UnixTime(1_800_000_000))).await;
    assert!(response.batch_item_failures.is_empty(), "{:?}", outcome.error);
    assert_eq!(outcome.stats.rejected_lines, 1);
    // The reconcile horizon (GetItem); two distinct addresses, every time
    // explained by their heads: one BatchGetItem; one for the logging ENI's
    // record; one UpdateItem for its heartbeat.
    assert_eq!(outcome.stats.store_calls, 4);
    assert_eq!(outcome.stats.heartbeats_written, 1);

    let enriched: Vec<serde_json::Value> = read_all(&kinesis, &output)
        .await
        .iter()
        .flat_map(|r| {
            let lines = read_lines(r.data().as_ref(), DEFAULT_MAX_LINES_BYTES).expect("record data");
            lines.iter().map(|l| serde_json::from_slice(l).unwrap()).collect::<Vec<serde_json::Value>>()
        })
        .collect();
    let by_start = |s: i64| enriched.iter().find(|l| l["start"] == s).unwrap_or_else(|| panic!("start {s}"));
    assert_eq!(enriched.len(), 3);
    assert_eq!(by_start(1500)["dst_app"], "x");
    assert_eq!(by_start(2500)["dst_attribution"], "unattributed");
    assert_eq!(by_start(3500)["dst_app"], "y");
    assert!(enriched.iter().all(|l| l["src_app"] == "api" && l["src_attribution"] == "owner"));
    let flow_id = |s: i64| by_start(s)["flow_id"].as_str().unwrap().to_owned();
    assert_eq!(flow_id(1500), format!("shardId-000000000000:{}:1", delivered[0].sequence_number()));

    let listed = s3.list_objects_v2().bucket(&bucket).send().await.expect("list_objects");
    assert_eq!(listed.contents().len(), 1, "one dead-letter object");
    let key = listed.contents()[0].key().unwrap().to_owned();
    let body = s3.get_object().bucket(&bucket).key(&key).send().await.unwrap().body.collect().await.unwrap();
    let first: serde_json::Value =
        serde_json::from_slice(body.into_bytes().split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(first["samples"][0]["line"], 2);
    assert_eq!(first["rejected_lines"], 1);
    assert_eq!(first["sequence_number"], delivered[1].sequence_number());
    assert!(first["data_base64"].is_string(), "the record kept whole");

    // A second, identical batch is answered from the cache but for the
    // horizon and the one head that cannot vouch for its answer: "nobody"
    // at 2500, with an open between it and the horizon (an open a
    // reconcile wrote would not say since when), is read again.
    let (_, again) = Box::pin(handle(&enricher, &as_event(&delivered), UnixTime(1_800_000_010))).await;
    assert_eq!(again.stats.store_calls, 2);
    // ... and was put on the enriched stream again, at new positions: what
    // an enricher retry does.
    let enriched_records = read_all(&kinesis, &output).await;
    assert_eq!(enriched_records.len(), 2);

    // The writer: each delivery staged, once more as a replay of the first
    // record alone; compaction keeps the three flows once each.
    let data = dredge_tests::unique_name("data").to_lowercase();
    s3.create_bucket().bucket(&data).send().await.expect("create_bucket");
    let vars = [("DATA_BUCKET", data.as_str()), ("DEAD_LETTER_BUCKET", bucket.as_str())];
    let config = WriterConfig::from_vars(&Vars::new(|k| vars.iter().find(|v| v.0 == k).map(|v| v.1.to_owned())), None)
        .expect("writer config");
    let writer = Writer::new(S3Objects::new(s3.clone(), &data, ""), S3Objects::new(s3.clone(), &bucket, ""), config);
    for records in [&enriched_records[..1], &enriched_records[1..], &enriched_records[..1]] {
        match Box::pin(writer.handle(&WriterEvent::Kinesis(as_event(records)), 1_800_000_000)).await {
            Outcome::Staged { stats, error: None, .. } => assert_eq!(stats.rows_written, 3),
            other => panic!("{other:?}"),
        }
    }
    // DuckDB over the staged layout: every delivery, repeats included.
    let staged = s3.list_objects_v2().bucket(&data).prefix("staging/").send().await.expect("list_objects");
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, key) in staged.contents().iter().filter_map(|o| o.key()).enumerate() {
        let body = s3.get_object().bucket(&data).key(key).send().await.unwrap().body.collect().await.unwrap();
        let file = dir.path().join(format!("staged-{i}.parquet"));
        std::fs::write(&file, body.into_bytes()).unwrap();
        files.push(file);
    }
    assert_eq!(files.len(), 2, "the replay overwrote its own object");
    if let Some(out) = read_with_pyarrow_and_duckdb(&files) {
        assert_eq!(out["duckdb"]["count"], 6);
        let bytes: i64 = enriched.iter().map(|l| l["bytes"].as_i64().unwrap()).sum();
        assert_eq!(out["duckdb"]["sums"]["bytes"], 2 * bytes);
    }
    let compacted = Box::pin(writer.handle(&WriterEvent::Compact { compact: true }, 1_800_000_000)).await;
    let Outcome::Compacted { stats, error: None } = compacted else { panic!("{compacted:?}") };
    assert_eq!((stats.rows_read, stats.rows_written, stats.duplicates_dropped), (6, 3, 3), "{stats:?}");
    let listed = s3.list_objects_v2().bucket(&data).send().await.expect("list_objects");
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys.len(), 2, "one final object and the manifest, no staging left: {keys:?}");
    assert!(keys.contains(&"flows/dt=1970-01-01/hour=00/_manifest.json"), "{keys:?}");
    let object = keys.iter().find(|k| k.ends_with(".parquet")).expect("a final object");
    let body = s3.get_object().bucket(&data).key(*object).send().await.unwrap().body.collect().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("final.parquet");
    std::fs::write(&file, body.into_bytes()).unwrap();
    read_back_by_others(&file, &enriched);
}

/// `tests/python/read_parquet.py` on `files`: pyarrow's schema and values,
/// DuckDB's count and sums.
fn read_with_pyarrow_and_duckdb(files: &[std::path::PathBuf]) -> Option<serde_json::Value> {
    let mut python = dredge_tests::python_with("flow_logs_through_kinesis_dynamodb_and_back", &["pyarrow", "duckdb"])?;
    python.arg(dredge_tests::repo_root().join("tests/python/read_parquet.py")).arg("flow_id,dst_app").args(files);
    let out = python.output().expect("run python");
    assert!(out.status.success(), "read_parquet.py: {}", String::from_utf8_lossy(&out.stderr));
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

/// pyarrow and DuckDB, then parquet-java (Druid's reader), read the final
/// object: the flows the enricher wrote, each once.
fn read_back_by_others(file: &std::path::Path, enriched: &[serde_json::Value]) {
    let test = "flow_logs_through_kinesis_dynamodb_and_back";
    let run = |mut cmd: std::process::Command| {
        let out = cmd.output().expect("run a reader");
        assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    if let Some(out) = read_with_pyarrow_and_duckdb(&[file.to_path_buf()]) {
        let mut ids: Vec<&str> =
            out["values"]["flow_id"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        ids.sort_unstable();
        let mut want: Vec<&str> = enriched.iter().map(|l| l["flow_id"].as_str().unwrap()).collect();
        want.sort_unstable();
        assert_eq!(ids, want);
        assert_eq!(out["duckdb"]["count"], 3);
        let bytes: i64 = enriched.iter().map(|l| l["bytes"].as_i64().unwrap()).sum();
        assert_eq!(out["duckdb"]["sums"]["bytes"], bytes);
    }
    if let Some(mut python) = dredge_tests::python_with(test, &["pyspark"]) {
        python.args(["-c", "import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), 'jars'))"]);
        let jars = run(python).trim().to_owned();
        let mut java = std::process::Command::new("java");
        java.arg("-cp").arg(format!("{jars}/*")).arg(dredge_tests::repo_root().join("tests/java/ReadParquet.java"));
        java.arg(file);
        let out = run(java);
        assert!(out.lines().any(|l| l.starts_with("FILE ") && l.ends_with(" 3 3")), "{out}");
    }
}

/// `IP_RANGES=s3://bucket/key`: the published file from a bucket, and a
/// missing object named in the error.
#[tokio::test]
async fn ip_ranges_load_from_s3() {
    use dredge_enricher::ranges::{self, FetchOptions};
    use dredge_enricher::RangesSource;

    let Some(config) = dredge_tests::moto_config("ip_ranges_load_from_s3").await else {
        return;
    };
    let s3 = s3_client(&config);
    let bucket = dredge_tests::unique_name("ranges").to_lowercase();
    s3.create_bucket().bucket(&bucket).send().await.expect("create_bucket");
    let path = dredge_tests::shared_data().join("aws-ip-ranges.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    s3.put_object().bucket(&bucket).key("aws/ip-ranges.json").body(bytes.into()).send().await.expect("put_object");

    let options = FetchOptions::default();
    let source = RangesSource::S3 { bucket: bucket.clone(), key: "aws/ip-ranges.json".into() };
    let loaded = ranges::load(&source, &s3, &options).await.unwrap().unwrap();
    assert_eq!(loaded.len(), 10_668 + 6_160);

    let missing = RangesSource::S3 { bucket: bucket.clone(), key: "aws/missing.json".into() };
    let e = ranges::load(&missing, &s3, &options).await.unwrap_err().to_string();
    assert!(e.starts_with("IP_RANGES: ") && e.contains(&format!("s3://{bucket}/aws/missing.json")), "{e}");
}
