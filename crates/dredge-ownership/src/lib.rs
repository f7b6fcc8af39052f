//! The ownership Lambda: keeps the time-ranged IP ownership table up to date
//! from EC2 events (EventBridge: instance state changes, CloudTrail API
//! calls) and a scheduled reconcile against a snapshot of every ENI.
//!
//! The AWS wire formats live here, with the one function that reads them:
//! [`events`] decodes EventBridge and CloudTrail events into the model's
//! changes, [`snapshot`] reads describe JSON; `dredge_core::ownership`
//! keeps the model they produce.
//!
//! The [`Handler`] is generic over the store ([`OwnershipStore`]: DynamoDB in
//! the Lambda, the embedded store locally) and over EC2 ([`Ec2Describer`]:
//! the SDK with feature `ec2`, or [`FileDescriber`] reading describe JSON),
//! so the `dredge` CLI and the tests run exactly the Lambda's code.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use dredge_core::ownership::{MemoryStore, TagPolicy};
//! use dredge_ownership::{FileDescriber, Handler};
//!
//! let describer = FileDescriber::from_paths(&["samples/ec2-describe"])?;
//! let handler = Handler::new(MemoryStore::new(), describer, TagPolicy::default());
//! let event: serde_json::Value = serde_json::from_slice(&std::fs::read("events/ownership/run-instances.json")?)?;
//! let summary = handler.handle(event).await?;
//! println!("{}", serde_json::to_string(&summary)?);
//! # Ok(())
//! # }
//! ```
//!
//! [`OwnershipStore`]: dredge_core::ownership::OwnershipStore

pub mod aws_calls;
pub mod config;
pub mod describe;
#[cfg(feature = "ec2")]
pub mod ec2;
pub mod events;
pub mod handler;
pub mod snapshot;

pub use config::{Config, ConfigError};
pub use describe::{DescribeError, Ec2Describer, FileDescriber, FileDescriberError, TakenSnapshot};
pub use handler::{Disposition, Handled, Handler, HandlerError, Reported, Summary};
pub use snapshot::{Snapshot, SnapshotError};
