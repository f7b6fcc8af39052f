//! The `dredge-writer` Lambda (custom runtime, `provided.al2023`, handler
//! `bootstrap`): invoked by the enriched stream's event source mapping
//! (`ReportBatchItemFailures`) and by the compaction schedule
//! (`{"compact": true}`). Configuration: [`WriterConfig`] (README.md lists
//! the variables). Clients are built once per container.

// The handler's future nests the SDK's futures deeper than rustc's default
// layout query limit.
#![recursion_limit = "256"]

use dredge_aws::{s3_client, S3Objects};
use dredge_core::ownership::UnixTime;
use dredge_lambda::{Error, LambdaEvent, Vars};
use dredge_writer::lambda::Writer;
use dredge_writer::{WriterConfig, WriterEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let sdk = dredge_lambda::start().await?;
    let config = WriterConfig::from_vars(&Vars::process(), None)?;
    let s3 = s3_client(&sdk);
    tracing::info!(
        bucket = %config.data_bucket,
        prefix = %config.layout.prefix(),
        lateness_seconds = config.compact.lateness_seconds,
        target_bytes = config.compact.sizes.target_bytes,
        "writer ready"
    );
    let data = S3Objects::new(s3.clone(), config.data_bucket.clone(), "");
    let dead_letter = S3Objects::new(s3, config.dead_letter_bucket.clone(), "");
    let writer = Writer::new(data, dead_letter, config);
    let writer = &writer;
    dredge_lambda::serve("writer", move |event: LambdaEvent<WriterEvent>| async move {
        writer.handle(&event.payload, UnixTime::now().0).await
    })
    .await
}
