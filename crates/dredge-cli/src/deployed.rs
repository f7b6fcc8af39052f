//! The enricher and the writer as deployed: their SDK backends, configured
//! from the environment variables each function reads (README.md lists
//! them), for `dredge replay`, which runs a function's handler on the live
//! pipeline. Built as `crates/dredge-enricher/src/main.rs` and
//! `crates/dredge-writer/src/main.rs` build them, from the same
//! configuration types.

use std::sync::Arc;

use anyhow::Context;
use aws_config::SdkConfig;
use dredge_aws::{s3_client, DynamoOwnershipStore, KinesisSink, S3Objects, SqsQueue};
use dredge_enricher::ranges::{self, FetchOptions};
use dredge_enricher::{Enricher, FunctionConfig};
use dredge_lambda::Vars;
use dredge_writer::lambda::Writer;
use dredge_writer::WriterConfig;

pub type DeployedEnricher = Enricher<DynamoOwnershipStore, KinesisSink, S3Objects, SqsQueue>;
pub type DeployedWriter = Writer<S3Objects, S3Objects>;

/// The enricher on DynamoDB, Kinesis, S3 and (with `RETRY_QUEUE_URL`) its
/// retry queue, with `IP_RANGES` loaded.
pub async fn enricher(sdk: &SdkConfig) -> anyhow::Result<DeployedEnricher> {
    let config = FunctionConfig::from_env().context("the enricher's environment")?;
    let s3 = s3_client(sdk);
    let ranges = ranges::load(&config.enricher.ranges, &s3, &FetchOptions::default())
        .await
        .with_context(|| format!("loading IP_RANGES {}", config.enricher.ranges))?
        .map(Arc::new);
    if ranges.is_none() {
        tracing::warn!("IP_RANGES not set: public addresses outside the table stay unattributed");
    }
    let store = DynamoOwnershipStore::new(aws_sdk_dynamodb::Client::new(sdk), config.table);
    let sink = KinesisSink::new(aws_sdk_kinesis::Client::new(sdk), config.enriched_stream);
    let dead_letter = S3Objects::new(s3, config.dead_letter_bucket, "");
    let queue = config.retry_queue_url.map(|url| SqsQueue::new(aws_sdk_sqs::Client::new(sdk), url));
    Ok(Enricher::new(store, sink, dead_letter, config.enricher, config.policy, ranges).with_queue(queue))
}

/// The writer on its S3 buckets.
pub fn writer(sdk: &SdkConfig) -> anyhow::Result<DeployedWriter> {
    let config = WriterConfig::from_vars(&Vars::process(), None).context("the writer's environment")?;
    let s3 = s3_client(sdk);
    let data = S3Objects::new(s3.clone(), config.data_bucket.clone(), "");
    let dead_letter = S3Objects::new(s3, config.dead_letter_bucket.clone(), "");
    Ok(Writer::new(data, dead_letter, config))
}
