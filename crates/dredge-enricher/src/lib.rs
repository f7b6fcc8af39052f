//! The enricher Lambda's logic: Kinesis flow logs in, both sides of every
//! flow attributed to their owner at the flow's start time, enriched
//! records out. The binary (`dredge-enricher`) wires AWS backends; the
//! `dredge` CLI runs the same handler on embedded ones.

pub mod aws_calls;
pub mod buffers;
pub mod config;
pub mod deployed;
pub mod handler;
pub mod lambda;
pub mod output;
pub mod ranges;
pub mod second_chance;

pub use config::{BatchBudget, EnricherConfig, FunctionConfig, RangesSource};
pub use dredge_lambda::kinesis::{Input, KinesisBatch};
pub use handler::{BatchOutcome, BatchStats, Enricher, RetryOutcome};
pub use second_chance::NoQueue;
