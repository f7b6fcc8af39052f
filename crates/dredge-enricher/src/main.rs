//! The `dredge-enricher` Lambda (custom runtime, `provided.al2023`,
//! handler `bootstrap`), invoked by two event source mappings with
//! `ReportBatchItemFailures`: the flow-log Kinesis stream, and the SQS
//! retry queue of the second chance (`RETRY_QUEUE_URL`). Configuration: [`FunctionConfig`] (README.md
//! lists the variables). SDK clients, the ip-ranges table and the caches
//! are built once per container.

// The handler's future nests the SDK's futures deeper than rustc's default
// layout query limit.
#![recursion_limit = "256"]

use std::sync::Arc;

use dredge_aws::{s3_client, DynamoOwnershipStore, KinesisSink, S3Objects, SqsQueue};
use dredge_core::ownership::UnixTime;
use dredge_enricher::config::FunctionConfig;
use dredge_enricher::lambda::handle_any;
use dredge_enricher::ranges::{self, FetchOptions};
use dredge_enricher::Enricher;
use dredge_lambda::{Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let sdk = dredge_lambda::start().await?;
    let config = FunctionConfig::from_env()?;
    let s3 = s3_client(&sdk);
    // A source that fails to load fails init: the operator configured it.
    let ranges = ranges::load(&config.enricher.ranges, &s3, &FetchOptions::default()).await?.map(Arc::new);
    if ranges.is_none() {
        tracing::warn!("IP_RANGES not set: public addresses outside the table stay unattributed");
    }
    tracing::info!(
        table = %config.table,
        stream = %config.enriched_stream,
        dead_letter_bucket = %config.dead_letter_bucket,
        format = %config.enricher.format,
        ranges = ranges.as_ref().map_or(0, |r| r.len()),
        retry_queue = config.retry_queue_url.as_deref().unwrap_or("none"),
        "enricher ready"
    );
    let store = DynamoOwnershipStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.table);
    let sink = KinesisSink::new(aws_sdk_kinesis::Client::new(&sdk), config.enriched_stream);
    let dead_letter = S3Objects::new(s3, config.dead_letter_bucket, "");
    let queue = config.retry_queue_url.map(|url| SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), url));
    let enricher = Enricher::new(store, sink, dead_letter, config.enricher, config.policy, ranges).with_queue(queue);
    let enricher = &enricher;
    dredge_lambda::serve("enricher", move |event: LambdaEvent<serde_json::Value>| async move {
        handle_any(enricher, event.payload, UnixTime::now()).await
    })
    .await
}
