//! The enriched record: a decoded flow with both sides attributed.

mod deferred;
mod flow_id;
mod json;
pub mod schema;
mod side;

pub use deferred::{BadBatch, DeferredBatch, DeferredFlow, Packed, WaitPolicy};
pub use flow_id::{FlowId, FlowIdWriter, UNKNOWN_SHARD};
pub use json::{write_enriched, FlowWriter, SideWriter, Sides};
pub use schema::{columns, Column, ColumnType, Cross, Side, SideField, Source, FLOW_ID, SCHEMA_VERSION, TIMESTAMP};
pub use side::{attribute, decide, logging_side, Attribution, FlowFacts, LoggingEni, SideFacts, SideOwner};
