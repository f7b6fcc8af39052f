//! Enriched NDJSON to zstd Parquet, a line at a time: lines are read into
//! Arrow builders, handed to the Parquet writer every `batch_rows` rows,
//! and the writer closes a row group whenever its encoded size reaches
//! `row_group_bytes`. Memory is bounded by those two, never by the input.

use std::collections::BTreeMap;
use std::io::Write;

use arrow_schema::ArrowError;
use dredge_core::enrich::{columns, FLOW_ID, SCHEMA_VERSION};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::row::{Columns, RowError};
use crate::scan::Scanner;
use crate::schema::{arrow_schema, SCHEMA_VERSION_KEY};

/// Failures of the output, not of a line (those are [`RowError`]s).
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("parquet: {0}")]
    Parquet(#[from] ParquetError),
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
}

/// How the encoder sizes its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderOptions {
    /// Rows per Arrow record batch handed to the writer.
    pub batch_rows: usize,
    /// A row group is closed once its encoded size reaches this.
    pub row_group_bytes: usize,
    /// ... or once it holds this many rows.
    pub row_group_rows: usize,
    /// zstd level (1 to 22).
    pub zstd_level: i32,
}

impl Default for EncoderOptions {
    fn default() -> Self {
        EncoderOptions {
            batch_rows: 8192,
            // Druid and Athena both read whole row groups; 128 MiB is
            // parquet-java's own default block size.
            row_group_bytes: 128 << 20,
            row_group_rows: 1 << 20,
            zstd_level: 3,
        }
    }
}

/// What one file received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub rows_written: u64,
    pub rows_rejected: u64,
    /// Rejected rows by [`RowError::kind`].
    pub rejected_by_kind: BTreeMap<&'static str, u64>,
    /// Whitespace-only lines: nothing to write.
    pub blank_lines: u64,
}

/// Dictionary page limit of the columns whose values rarely repeat.
const UNIQUE_DICTIONARY_BYTES: usize = 8 << 10;

/// The writer properties every file gets.
///
/// Page-level statistics and the page indexes are off: parquet-java (Druid,
/// Spark, Hive, Trino and so Athena) reads files from `parquet` 58.3 and
/// later with page indexes as having no rows (apache/arrow-rs#10316).
/// Column-chunk statistics stay: they are in the footer every reader uses.
pub fn writer_properties(options: &EncoderOptions) -> Result<WriterProperties, EncodeError> {
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(options.zstd_level)?))
        .set_dictionary_enabled(true)
        // A dictionary past 512 KiB (tens of thousands of distinct values)
        // does not pay for itself: random counters such as `bytes` fall back
        // to plain sooner, which zstd packs better (smaller files than with
        // the 1 MiB default, and than DuckDB's, on enriched flows).
        .set_dictionary_page_size_limit(512 << 10)
        // Columns with a value per row (`flow_id`) or near enough (the
        // `bytes` counter) keep a dictionary only for their first page's
        // worth: 512 KiB of them cost interning work and a longer index per
        // value than plain values cost (on 200,000 enriched flows, 150 kB
        // smaller files, and smaller than DuckDB's).
        .set_column_dictionary_page_size_limit(ColumnPath::from(FLOW_ID), UNIQUE_DICTIONARY_BYTES)
        .set_column_dictionary_page_size_limit(ColumnPath::from("bytes"), UNIQUE_DICTIONARY_BYTES)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_offset_index_disabled(true)
        .set_max_row_group_bytes(Some(options.row_group_bytes.max(1)))
        .set_max_row_group_row_count(Some(options.row_group_rows.max(1)))
        .set_key_value_metadata(Some(vec![KeyValue::new(SCHEMA_VERSION_KEY.into(), SCHEMA_VERSION.to_string())]))
        .build())
}

/// Writes enriched NDJSON lines as one Parquet file into `W`.
pub struct ParquetEncoder<W: Write + Send> {
    scanner: Scanner,
    columns: Columns,
    scratch: String,
    batch_rows: usize,
    writer: ArrowWriter<W>,
    summary: Summary,
}

impl<W: Write + Send> ParquetEncoder<W> {
    pub fn new(out: W, options: EncoderOptions) -> Result<Self, EncodeError> {
        let schema = arrow_schema();
        let batch_rows = options.batch_rows.max(1);
        let writer = ArrowWriter::try_new(out, schema.clone(), Some(writer_properties(&options)?))?;
        Ok(ParquetEncoder {
            scanner: Scanner::new(columns()),
            columns: Columns::new(schema, columns(), batch_rows),
            scratch: String::new(),
            batch_rows,
            writer,
            summary: Summary::default(),
        })
    }

    /// Adds one line (its newline may be included). A line that cannot be
    /// written exactly is not written: its reason is returned and counted,
    /// and the encoder goes on with the next line.
    pub fn push_line(&mut self, line: &[u8]) -> Result<Result<(), RowError>, EncodeError> {
        if line.iter().all(u8::is_ascii_whitespace) {
            self.summary.blank_lines += 1;
            return Ok(Ok(()));
        }
        let scanned = std::str::from_utf8(line)
            .map_err(|_| RowError::NotUtf8)
            .and_then(|line| self.scanner.scan(line, &mut self.columns, &mut self.scratch));
        match scanned {
            Ok(()) => {
                self.summary.rows_written += 1;
                if self.columns.rows() >= self.batch_rows {
                    self.flush_batch()?;
                }
                Ok(Ok(()))
            }
            Err(e) => {
                self.summary.rows_rejected += 1;
                *self.summary.rejected_by_kind.entry(e.kind()).or_default() += 1;
                Ok(Err(e))
            }
        }
    }

    fn flush_batch(&mut self) -> Result<(), EncodeError> {
        if self.columns.rows() > 0 {
            let batch = self.columns.finish()?;
            self.writer.write(&batch)?;
        }
        Ok(())
    }

    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Writes what is left and the footer; returns the output.
    pub fn finish(mut self) -> Result<(W, Summary), EncodeError> {
        self.flush_batch()?;
        let out = self.writer.into_inner()?;
        Ok((out, self.summary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_dictionaries_name_real_columns() {
        let props = writer_properties(&EncoderOptions::default()).unwrap();
        for name in [FLOW_ID, "bytes"] {
            assert!(columns().iter().any(|c| c.name == name), "{name}");
            assert_eq!(props.column_dictionary_page_size_limit(&ColumnPath::from(name)), UNIQUE_DICTIONARY_BYTES);
        }
        assert_eq!(props.column_dictionary_page_size_limit(&ColumnPath::from("srcport")), 512 << 10);
    }
}
