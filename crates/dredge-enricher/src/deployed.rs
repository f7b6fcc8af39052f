//! The enricher as deployed: on DynamoDB, Kinesis, S3 and (with
//! `RETRY_QUEUE_URL`) its SQS retry queue, configured from the environment
//! (README.md lists the variables), with `IP_RANGES` loaded. Built once per
//! container by `main.rs`, and by `dredge replay`, which runs the handler on
//! the live pipeline.

use std::sync::Arc;

use dredge_aws::{s3_client, DynamoOwnershipStore, KinesisSink, S3Objects, SqsQueue};
use dredge_lambda::SdkConfig;

use crate::config::{ConfigError, FunctionConfig};
use crate::ranges::{self, FetchOptions, RangesError};
use crate::Enricher;

pub type DeployedEnricher = Enricher<DynamoOwnershipStore, KinesisSink, S3Objects, SqsQueue>;

/// Why the enricher could not start: both are the operator's to fix, so
/// both fail init rather than run a half-configured function.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Ranges(#[from] RangesError),
}

pub async fn enricher(sdk: &SdkConfig) -> Result<DeployedEnricher, InitError> {
    let config = FunctionConfig::from_env()?;
    let s3 = s3_client(sdk);
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
    let store = DynamoOwnershipStore::new(aws_sdk_dynamodb::Client::new(sdk), config.table);
    let sink = KinesisSink::new(aws_sdk_kinesis::Client::new(sdk), config.enriched_stream);
    let dead_letter = S3Objects::new(s3, config.dead_letter_bucket, "");
    let queue = config.retry_queue_url.map(|url| SqsQueue::new(aws_sdk_sqs::Client::new(sdk), url));
    Ok(Enricher::new(store, sink, dead_letter, config.enricher, config.policy, ranges).with_queue(queue))
}
