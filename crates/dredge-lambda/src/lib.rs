//! What every Dredge function shares, so that each `main.rs` only builds
//! its clients and hands its handler to [`entry::serve`]:
//!
//! - [`kinesis`]: the Kinesis event as the Kinesis-triggered functions read
//!   it, and the partial-batch response;
//! - [`sqs`]: the same for an SQS queue (the enricher's second chance);
//! - [`sdk_error`]: one classification of AWS SDK errors (transient or
//!   permanent) for every service;
//! - [`retry`]: the one retry policy (attempts, exponential backoff,
//!   jitter) of every retry loop;
//! - [`config`]: configuration from environment variables, the tag policy
//!   included;
//! - [`emf`]: CloudWatch Embedded Metric Format documents;
//! - [`entry`]: logging, SDK configuration, the runtime loop, and the
//!   report of every invocation.

pub mod aws_call;
pub mod config;
pub mod emf;
pub mod entry;
pub mod failure_destination;
pub mod kinesis;
pub mod retry;
pub mod sdk_error;
pub mod sqs;

pub use aws_call::AwsCall;
pub use aws_config::SdkConfig;
pub use config::{ConfigError, Vars};
pub use entry::{serve, start, Invocation, Reporter};
pub use lambda_runtime::{Diagnostic, Error, LambdaEvent};
pub use retry::RetryPolicy;
