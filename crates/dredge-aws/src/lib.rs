//! Dredge's AWS adapters: the SDK configuration every Lambda and the CLI
//! share, and [`DynamoOwnershipStore`], the DynamoDB implementation of
//! [`dredge_core::ownership::OwnershipStore`].
//!
//! Clients are built once per process (Lambda container) by the callers,
//! from [`sdk_config`], and reused for every invocation.

mod config;
mod kinesis;
mod logging;
pub mod ownership;
mod s3;

pub use config::sdk_config;
pub use kinesis::KinesisSink;
pub use logging::init_json_logging;
pub use ownership::{create_table, DynamoOwnershipStore, DEFAULT_HEAD_MARKS, DEFAULT_RETENTION, INSTANCE_INDEX};
pub use s3::{s3_client, S3Objects};
