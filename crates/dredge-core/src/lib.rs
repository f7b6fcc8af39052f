//! Dredge's domain: decoding VPC flow logs, the time-ranged IP ownership
//! model, attribution and the enriched record, and the narrow interfaces
//! (ownership store, record sink, object store, retry queue) behind which
//! AWS sits, each with an embedded implementation. No AWS SDK here: SDK adapters live in
//! `dredge-aws`, entry points in the Lambda and CLI crates.

pub mod enrich;
pub mod failure;
#[cfg(any(test, feature = "faults"))]
pub mod faults;
pub mod flowlog;
pub mod ipranges;
pub mod objects;
pub mod ownership;
pub mod retry_queue;
pub mod sink;
pub mod stream_data;

pub use failure::Failure;

/// A hash map for per-batch lookups, hashed with foldhash: several times
/// faster than std's SipHash on small keys, and seeded per process, so
/// keys taken from traffic cannot be chosen to collide.
pub type FastHashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
