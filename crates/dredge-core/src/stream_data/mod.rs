//! The enriched stream's record data: newline-delimited JSON objects, one
//! enriched record per line, compressed as one zstd frame per Kinesis
//! record or plain. Writers encode with [`RecordEncoder`]; every consumer
//! reads with [`read_lines`], which tells the encoding from the bytes, so
//! readers need no configuration and a stream may change encodings.

mod encode;
mod read;

pub use encode::{Compression, DoesNotFit, RecordEncoder, ZSTD_LEVEL};
pub use read::{detect, read_lines, Encoding, Lines, ReadError, DEFAULT_MAX_LINES_BYTES};
