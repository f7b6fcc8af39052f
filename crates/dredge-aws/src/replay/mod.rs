//! For `dredge replay`: the records a Kinesis on-failure record points at,
//! read back from their shard ([`reread`]), and the SQS queue such records
//! wait in ([`FailureQueue`]). One service per file.

mod kinesis;
mod sqs;

pub use kinesis::{reread, Reread, RereadError, ShardRange, StreamRecord};
pub use sqs::{FailureQueue, QueuedMessage};
