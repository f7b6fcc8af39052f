//! Dredge's domain: decoding VPC flow logs, the time-ranged IP ownership
//! model, attribution and the enriched record. No AWS SDK here: adapters
//! live in `dredge-aws`, entry points in the Lambda and CLI crates.

pub mod enrich;
pub mod flowlog;
pub mod ipranges;
pub mod ownership;
