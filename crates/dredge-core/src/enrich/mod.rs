//! The enriched record: a decoded flow with both sides attributed.

mod json;
pub mod schema;
mod side;

pub use json::{write_enriched, FlowWriter, SideWriter, Sides};
pub use schema::{columns, Column, ColumnType, Cross, Side, SideField, Source, SCHEMA_VERSION, TIMESTAMP};
pub use side::{attribute, decide, Attribution, FlowFacts, LoggingEni, SideFacts, SideOwner};
