//! The writer function: enriched records from the Kinesis stream to
//! Druid-ready Parquet on S3.
//!
//! - Each Kinesis batch is [staged](stage): one Parquet object per hour of
//!   flow time, named from the batch's position (a retry overwrites it).
//! - A scheduled run (`{"compact": true}`) [compacts](compact) each hour
//!   past its lateness allowance into final objects of a target size, every
//!   flow once (repeats dropped by `flow_id`), with an hour manifest.
//!
//! Objects are laid out as [`layout`] says; columns come from the one
//! schema (`dredge-columnar`).

pub mod aws_calls;
pub mod compact;
pub mod config;
pub mod deployed;
mod error;
mod final_object;
mod flow_ids;
pub mod lambda;
pub mod layout;
pub mod manifest;
pub mod stage;

pub use compact::{compact, CompactOptions, CompactStats};
pub use config::WriterConfig;
pub use error::WriteError;
pub use final_object::Sizes;
pub use lambda::{Outcome, WriterEvent};
pub use stage::{StageStats, Staging};
