//! The `dredge-writer` Lambda (custom runtime, `provided.al2023`, handler
//! `bootstrap`): invoked by the enriched stream's event source mapping
//! (`ReportBatchItemFailures`) and by the compaction schedule
//! (`{"compact": true}`). Configuration: [`dredge_writer::WriterConfig`] (README.md lists
//! the variables). Clients are built once per container.

// The handler's future nests the SDK's futures deeper than rustc's default
// layout query limit.
#![recursion_limit = "256"]

use dredge_core::ownership::UnixTime;
use dredge_lambda::{Error, LambdaEvent};
use dredge_writer::WriterEvent;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let sdk = dredge_lambda::start().await?;
    let writer = dredge_writer::deployed::writer(&sdk)?;
    let writer = &writer;
    dredge_lambda::serve("writer", move |event: LambdaEvent<WriterEvent>| async move {
        writer.handle(&event.payload, UnixTime::now().0).await
    })
    .await
}
