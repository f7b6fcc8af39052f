//! Dredge's AWS adapters: the SDK side of the narrow interfaces in
//! `dredge-core`. [`DynamoOwnershipStore`] is the ownership table
//! ([`dredge_core::ownership::OwnershipStore`]), [`KinesisSink`] the
//! enriched stream ([`dredge_core::sink::RecordSink`]), [`S3Objects`] the
//! dead-letter and data buckets ([`dredge_core::objects::ObjectStore`]),
//! [`SqsQueue`] the enricher's delayed retry queue
//! ([`dredge_core::retry_queue::RetryQueue`]).
//! Never EC2: only the ownership function calls it.
//!
//! Clients are built once per process (Lambda container) by the callers,
//! from `dredge_lambda::entry::sdk_config`, and reused for every
//! invocation. SDK errors are classified by `dredge_lambda::sdk_error`.

mod kinesis;
pub mod ownership;
pub mod replay;
mod s3;
mod sqs;

pub use kinesis::KinesisSink;
pub use ownership::{create_table, DynamoOwnershipStore, DEFAULT_HEAD_MARKS, DEFAULT_RETENTION, INSTANCE_INDEX};
pub use s3::{s3_client, S3Objects};
pub use sqs::SqsQueue;
