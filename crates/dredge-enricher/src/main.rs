//! The `dredge-enricher` Lambda (custom runtime, `provided.al2023`,
//! handler `bootstrap`), invoked by a Kinesis event source mapping with
//! `ReportBatchItemFailures`.
//!
//! Configuration (environment, see README.md): `OWNERSHIP_TABLE`,
//! `ENRICHED_STREAM` and `DEAD_LETTER_BUCKET` are required; the rest have
//! defaults. SDK clients, the ip-ranges table and the caches are built once
//! per container.

// The handler's future nests the SDK's futures deeper than rustc's default
// layout query limit.
#![recursion_limit = "256"]

use std::sync::Arc;

use dredge_aws::{init_json_logging, s3_client, sdk_config, DynamoOwnershipStore, KinesisSink, S3Objects};
use dredge_core::ownership::{TagPolicy, UnixTime};
use dredge_enricher::config::required;
use dredge_enricher::lambda::{handle, metrics};
use dredge_enricher::ranges::{self, FetchOptions};
use dredge_enricher::{Enricher, EnricherConfig, KinesisBatch};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_json_logging();
    let config = EnricherConfig::from_env()?;
    let table = required("OWNERSHIP_TABLE")?;
    let stream = required("ENRICHED_STREAM")?;
    let bucket = required("DEAD_LETTER_BUCKET")?;
    let policy = TagPolicy::from_keys(
        &std::env::var("DREDGE_TAGS").unwrap_or_else(|_| "app,team".into()),
        Some(&std::env::var("DREDGE_APP_TAG").unwrap_or_else(|_| "app".into())),
    );
    let sdk = sdk_config().await;
    let s3 = s3_client(&sdk);
    // A source that fails to load fails init: the operator configured it.
    let ranges = ranges::load(&config.ranges, &s3, &FetchOptions::default()).await.map_err(|e| e.to_string())?;
    if ranges.is_none() {
        tracing::warn!("IP_RANGES not set: public addresses outside the table stay unattributed");
    }
    let ranges = ranges.map(Arc::new);
    tracing::info!(
        table = %table,
        stream = %stream,
        dead_letter_bucket = %bucket,
        format = %config.format,
        ranges = ranges.as_ref().map_or(0, |r| r.len()),
        "enricher ready"
    );
    let store = DynamoOwnershipStore::new(aws_sdk_dynamodb::Client::new(&sdk), table);
    let sink = KinesisSink::new(aws_sdk_kinesis::Client::new(&sdk), stream);
    let dead_letter = S3Objects::new(s3, bucket, "");
    let enricher = Enricher::new(store, sink, dead_letter, config, policy, ranges);
    let enricher = &enricher;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<KinesisBatch>| async move {
        let (response, outcome) = handle(enricher, &event.payload, UnixTime::now()).await;
        // One write per EMF document (to_line ends with a newline).
        print!("{}", metrics(&outcome.stats, "enricher").to_line());
        match &outcome.error {
            Some(error) => tracing::warn!(
                error = %error,
                retry_from = ?outcome.retry_from,
                stats = %serde_json::json!(outcome.stats),
                "batch partly failed"
            ),
            None => tracing::info!(stats = %serde_json::json!(outcome.stats), "batch done"),
        }
        Ok::<_, Error>(response)
    }))
    .await
}
