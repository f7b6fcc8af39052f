//! The enriched record in columns, all derived from the one schema
//! (`dredge_core::enrich::columns`): the Arrow schema and the Parquet
//! encoding of enriched NDJSON ([`ParquetEncoder`]), the object layout on
//! S3 ([`layout`]), the Druid ingestion specs ([`druid`]) and the Athena
//! table ([`athena`]).
//!
//! A crate of its own rather than a feature of `dredge-core`: Cargo unifies
//! features across a workspace build, so a `parquet` feature enabled by the
//! CLI would compile arrow and parquet into every `dredge-core` build,
//! the enricher's included (or compile `dredge-core` twice). Here only what
//! depends on this crate (the CLI, the writer function to come) pays for
//! them. No AWS SDK, as for the rest of the domain.

pub mod athena;
pub mod druid;
mod encode;
pub mod layout;
mod row;
mod scan;
mod schema;

pub use encode::{writer_properties, EncodeError, EncoderOptions, ParquetEncoder, Summary};
pub use row::RowError;
pub use schema::{arrow_schema, SCHEMA_VERSION_KEY};
