//! The `dredge-enricher` Lambda (custom runtime, `provided.al2023`,
//! handler `bootstrap`), invoked by two event source mappings with
//! `ReportBatchItemFailures`: the flow-log Kinesis stream, and the SQS
//! retry queue of the second chance (`RETRY_QUEUE_URL`). Configuration:
//! [`dredge_enricher::FunctionConfig`] (README.md
//! lists the variables). SDK clients, the ip-ranges table and the caches
//! are built once per container.

// The handler's future nests the SDK's futures deeper than rustc's default
// layout query limit.
#![recursion_limit = "256"]

use dredge_core::ownership::UnixTime;
use dredge_enricher::lambda::handle_any;
use dredge_lambda::{Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let sdk = dredge_lambda::start().await?;
    let enricher = dredge_enricher::deployed::enricher(&sdk).await?;
    let enricher = &enricher;
    dredge_lambda::serve("enricher", move |event: LambdaEvent<serde_json::Value>| async move {
        handle_any(enricher, event.payload, UnixTime::now()).await
    })
    .await
}
