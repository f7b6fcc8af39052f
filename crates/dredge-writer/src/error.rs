//! What can go wrong writing objects.

use arrow_schema::ArrowError;
use dredge_columnar::EncodeError;
use dredge_core::Failure;
use parquet::errors::ParquetError;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("object store: {0}")]
    Store(#[from] Failure),
    #[error("parquet: {0}")]
    Parquet(#[from] ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
    #[error("{0}")]
    Encode(#[from] EncodeError),
    #[error("{key}: {reason}")]
    BadObject { key: String, reason: String },
}

impl WriteError {
    /// Worth retrying: the object store's transient failures only.
    pub fn is_transient(&self) -> bool {
        matches!(self, WriteError::Store(f) if f.is_transient())
    }
}
