//! `dredge replay` end to end against moto (the server `scripts/test`
//! starts): on-failure records in SQS queues naming ranges of Kinesis
//! streams, replayed through the enricher and then the writer on DynamoDB,
//! Kinesis and S3, and the messages deleted or kept as the ranges allow.

use std::path::PathBuf;
use std::process::{Command, Output};

use aws_config::SdkConfig;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{ShardIteratorType, StreamStatus};
use aws_sdk_sqs::types::QueueAttributeName;
use dredge_core::stream_data::{read_lines, DEFAULT_MAX_LINES_BYTES};
use serde_json::{json, Value};

/// The SDK configuration for moto, or `None` (the test skips) without one;
/// under `CI=true` a missing server fails the test instead.
async fn moto(test: &str) -> Option<SdkConfig> {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        assert!(std::env::var("CI").map_or(true, |v| v != "true"), "CI=true needs the moto server (scripts/test)");
        eprintln!("{test}: SKIPPED, no moto server (AWS_ENDPOINT_URL unset); run scripts/test");
        return None;
    }
    Some(dredge_lambda::entry::sdk_config().await)
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::UNIX_EPOCH.elapsed().unwrap().subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// What the deployed functions would find around them.
struct Pipeline {
    kinesis: aws_sdk_kinesis::Client,
    sqs: aws_sdk_sqs::Client,
    s3: aws_sdk_s3::Client,
    table: String,
    flows: Stream,
    enriched: Stream,
    dead_letter_bucket: String,
    data_bucket: String,
}

struct Stream {
    name: String,
    arn: String,
}

impl Pipeline {
    async fn new(sdk: SdkConfig) -> Pipeline {
        let kinesis = aws_sdk_kinesis::Client::new(&sdk);
        let s3 = dredge_aws::s3_client(&sdk);
        let table = unique("replay-table");
        dredge_aws::create_table(&aws_sdk_dynamodb::Client::new(&sdk), &table).await.expect("create table");
        let (dead_letter_bucket, data_bucket) = (unique("replay-dead"), unique("replay-data"));
        for bucket in [&dead_letter_bucket, &data_bucket] {
            s3.create_bucket().bucket(bucket).send().await.expect("create bucket");
        }
        let flows = stream(&kinesis, &unique("replay-flows")).await;
        let enriched = stream(&kinesis, &unique("replay-enriched")).await;
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        Pipeline { kinesis, sqs, s3, table, flows, enriched, dead_letter_bucket, data_bucket }
    }

    /// Puts `data` on the flow-log stream: its sequence number.
    async fn put(&self, stream: &Stream, data: &[u8]) -> String {
        let put = self
            .kinesis
            .put_record()
            .stream_arn(&stream.arn)
            .partition_key("k")
            .data(Blob::new(data))
            .send()
            .await
            .expect("put record");
        put.sequence_number.clone()
    }

    async fn queue(&self, bodies: &[String]) -> String {
        let url =
            self.sqs.create_queue().queue_name(unique("replay-failures")).send().await.unwrap().queue_url.unwrap();
        for body in bodies {
            self.sqs.send_message().queue_url(&url).message_body(body).send().await.expect("send");
        }
        url
    }

    /// Messages in the queue: (visible, in flight).
    async fn messages(&self, url: &str) -> (u64, u64) {
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap();
        let count = |name| attributes[&name].parse::<u64>().unwrap();
        (
            count(QueueAttributeName::ApproximateNumberOfMessages),
            count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        )
    }

    /// Every record of a stream's (only) shard: (sequence number, data).
    async fn records(&self, stream: &Stream) -> Vec<(String, Vec<u8>)> {
        let mut iterator = self
            .kinesis
            .get_shard_iterator()
            .stream_arn(&stream.arn)
            .shard_id("shardId-000000000000")
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator;
        let mut records = Vec::new();
        while let Some(current) = iterator {
            let page = self.kinesis.get_records().stream_arn(&stream.arn).shard_iterator(current).send().await.unwrap();
            if page.records.is_empty() {
                break;
            }
            records.extend(page.records.into_iter().map(|r| (r.sequence_number, r.data.into_inner())));
            iterator = page.next_shard_iterator;
        }
        records
    }

    /// The enriched records' lines, as JSON.
    async fn enriched_lines(&self) -> Vec<Value> {
        let mut lines = Vec::new();
        for (_, data) in self.records(&self.enriched).await {
            for line in read_lines(&data, DEFAULT_MAX_LINES_BYTES).unwrap().iter() {
                lines.push(serde_json::from_slice(line).unwrap());
            }
        }
        lines
    }

    /// `dredge replay ARGS` with the deployed functions' environment.
    fn replay(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_dredge"));
        command.arg("replay").args(args);
        for name in [
            "IP_RANGES",
            "RETRY_QUEUE_URL",
            "FLOW_LOG_FORMAT",
            "ENRICHED_COMPRESSION",
            "DATA_PREFIX",
            "DEAD_LETTER_PREFIX",
            "COMPACT_LATENESS",
            "RUST_LOG",
        ] {
            command.env_remove(name);
        }
        command
            .env("OWNERSHIP_TABLE", &self.table)
            .env("ENRICHED_STREAM", &self.enriched.name)
            .env("DEAD_LETTER_BUCKET", &self.dead_letter_bucket)
            .env("DATA_BUCKET", &self.data_bucket)
            .output()
            .expect("run dredge")
    }
}

async fn stream(kinesis: &aws_sdk_kinesis::Client, name: &str) -> Stream {
    kinesis.create_stream().stream_name(name).shard_count(1).send().await.expect("create stream");
    loop {
        let summary = kinesis
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .unwrap()
            .stream_description_summary
            .unwrap();
        if summary.stream_status == StreamStatus::Active {
            return Stream { name: name.to_owned(), arn: summary.stream_arn };
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// An on-failure record as a Kinesis event source mapping sends it.
fn failure(function: &str, stream: &Stream, shard: &str, start: &str, end: &str, batch_size: u64) -> String {
    json!({
        "requestContext": {
            "requestId": "c9b8fa9f-5a7f-4e30-8dbb-2e2a6ad8cd53",
            "functionArn": format!("arn:aws:lambda:us-east-1:123456789012:function:{function}"),
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 11
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": "2026-11-18T12:00:00.000Z",
        "KinesisBatchInfo": {
            "shardId": shard,
            "startSequenceNumber": start,
            "endSequenceNumber": end,
            "approximateArrivalOfFirstRecord": "2026-11-18T11:00:00.000Z",
            "approximateArrivalOfLastRecord": "2026-11-18T11:00:01.000Z",
            "batchSize": batch_size,
            "streamArn": stream.arn
        }
    })
    .to_string()
}

/// The sample event's two records (a CloudWatch Logs document, raw text):
/// six flows, a NODATA record and a rejected line between them.
fn sample_records() -> Vec<Vec<u8>> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events/enricher/kinesis-flow-logs.json");
    let event: dredge_lambda::kinesis::KinesisBatch = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    event.records.into_iter().map(|r| r.kinesis.data).collect()
}

/// A raw flow-log record of one flow from `source`: outside the ranges
/// named, so it must not come out.
fn stranger(source: &str) -> Vec<u8> {
    format!(
        "2 123456789012 eni-0a1b2c3d4e5f60001 {source} 10.20.1.15 443 50000 6 10 840 1795000000 1795000060 ACCEPT OK\n"
    )
    .into_bytes()
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone()).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn a_range_replays_through_the_enricher_then_the_writer() {
    let Some(sdk) = moto("a_range_replays_through_the_enricher_then_the_writer").await else { return };
    let p = Pipeline::new(sdk).await;
    p.put(&p.flows, &stranger("198.51.100.7")).await;
    let sample = sample_records();
    let start = p.put(&p.flows, &sample[0]).await;
    let end = p.put(&p.flows, &sample[1]).await;
    p.put(&p.flows, &stranger("198.51.100.8")).await;
    let queue =
        p.queue(&[failure("dredge-EnricherFunction-1A2B3C", &p.flows, "shardId-000000000000", &start, &end, 2)]).await;

    // A dry run reads the range back and leaves everything as it was.
    let dry = p.replay(&["--queue", &queue, "--dry-run"]);
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
    let counted = lines(&dry);
    assert_eq!(counted.len(), 1, "{counted:?}");
    assert_eq!(
        (&counted[0]["outcome"], &counted[0]["read"], &counted[0]["lost"]),
        (&json!("counted"), &json!(2), &json!(0))
    );
    assert_eq!(counted[0]["function"], "enricher");
    assert!(p.records(&p.enriched).await.is_empty(), "a dry run runs nothing");
    assert_eq!(p.messages(&queue).await, (1, 0), "a dry run deletes nothing and hides nothing");

    let run = p.replay(&["--queue", &queue]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let replayed = lines(&run);
    assert_eq!(replayed.len(), 1, "{replayed:?}");
    assert_eq!((&replayed[0]["outcome"], &replayed[0]["read"]), (&json!("replayed"), &json!(2)), "{replayed:?}");
    // Libraries' warnings show on stderr, their info lines do not.
    assert!(stderr(&run).contains("IP_RANGES not set"), "{}", stderr(&run));
    assert!(!stderr(&run).contains("batch done"), "{}", stderr(&run));
    // The sample's six flows came out, nothing from outside the range.
    let enriched = p.enriched_lines().await;
    let sources: Vec<&str> = enriched.iter().map(|l| l["srcaddr"].as_str().unwrap()).collect();
    assert_eq!(enriched.len(), 6, "{sources:?}");
    assert!(sources.iter().all(|s| s.starts_with("10.20.")), "{sources:?}");
    assert!(enriched.iter().all(|l| l["flow_id"].as_str().unwrap().starts_with("shardId-000000000000:")));
    assert_eq!(p.messages(&queue).await, (0, 0), "the replayed message is deleted");

    // The writer's failure queue names the enriched records: they are staged.
    let written = p.records(&p.enriched).await;
    let (first, last) = (&written[0].0, &written[written.len() - 1].0);
    let writer_queue = p
        .queue(&[failure(
            "dredge-WriterFunction-4D5E6F:live",
            &p.enriched,
            "shardId-000000000000",
            first,
            last,
            written.len() as u64,
        )])
        .await;
    let run = p.replay(&["--queue", &writer_queue]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let replayed = lines(&run);
    assert_eq!(
        (&replayed[0]["function"], &replayed[0]["outcome"]),
        (&json!("writer"), &json!("replayed")),
        "{replayed:?}"
    );
    let staged = p.s3.list_objects_v2().bucket(&p.data_bucket).prefix("staging/").send().await.unwrap();
    let keys: Vec<&str> = staged.contents().iter().filter_map(|o| o.key()).collect();
    assert!(!keys.is_empty() && keys.iter().all(|k| k.ends_with(".parquet")), "{keys:?}");
    assert_eq!(p.messages(&writer_queue).await, (0, 0));
}

#[tokio::test]
async fn ranges_the_stream_no_longer_holds_keep_their_messages() {
    let Some(sdk) = moto("ranges_the_stream_no_longer_holds_keep_their_messages").await else { return };
    let p = Pipeline::new(sdk).await;
    let sample = sample_records();
    let first = p.put(&p.flows, &sample[0]).await;
    let last = p.put(&p.flows, &sample[1]).await;
    // moto never trims a stream: a range said to start one record before
    // the shard's first stands for one whose start retention removed.
    let before_first = (first.parse::<u128>().expect("moto's sequence numbers are small") - 1).to_string();
    let enricher = "dredge-EnricherFunction-1A2B3C";
    let queue = p
        .queue(&[
            failure(enricher, &p.flows, "shardId-000000000000", &before_first, &last, 3),
            failure(enricher, &p.flows, "shardId-000000000009", &first, &last, 2),
            // A retry-queue message redriven to the enricher's failure queue.
            json!({"flows": []}).to_string(),
        ])
        .await;

    let one = p.replay(&["--queue", &queue, "--dry-run", "--max-messages", "1"]);
    assert_eq!(lines(&one).len(), 1, "--max-messages 1: {}", stderr(&one));
    assert_eq!(p.messages(&queue).await, (3, 0), "released at once");

    let run = p.replay(&["--queue", &queue]);
    assert_eq!(run.status.code(), Some(1), "kept messages fail the run: {}", stderr(&run));
    let mut reports = lines(&run);
    assert_eq!(reports.len(), 3, "{reports:?}");
    assert!(reports.iter().all(|r| r["outcome"] == "kept"), "{reports:?}");
    reports.sort_by_key(|r| r["shard_id"].as_str().map(str::to_owned));
    let (unreadable, trimmed, refused) = (&reports[0], &reports[1], &reports[2]);
    assert!(unreadable["reason"].as_str().unwrap().starts_with("not a Kinesis on-failure record"), "{unreadable}");
    assert_eq!((&trimmed["read"], &trimmed["lost"]), (&json!(2), &json!(1)), "{trimmed}");
    assert!(trimmed["reason"].as_str().unwrap().contains("no longer holds the range's start"), "{trimmed}");
    assert_eq!((&refused["read"], &refused["lost"]), (&json!(0), &json!(2)), "{refused}");
    assert!(refused["reason"].as_str().unwrap().contains("refuses"), "{refused}");
    // What the stream still held of the trimmed range went through anyway.
    assert_eq!(p.enriched_lines().await.len(), 6);
    assert_eq!(p.messages(&queue).await, (3, 0), "every message kept, visible for the next run");
    assert!(stderr(&run).contains("0 replayed and deleted, 3 kept"), "{}", stderr(&run));
}
