//! One enriched line read straight into the columns of the batch being
//! built: the scanner appends each value to its column as it reads it, and
//! a bad value takes the line back out of every column, so a rejected row
//! leaves the batch as it was.
//!
//! A column may lag behind the rows: the nulls of keys a line leaves out
//! are added in bulk when the column is next written (or when the batch is
//! finished), so the many columns a flow never has cost nothing per row.

use std::sync::Arc;

use arrow_array::types::{Int64Type, TimestampMillisecondType};
use arrow_array::{ArrayRef, BooleanArray, PrimitiveArray, RecordBatch, StringArray};
use arrow_buffer::{BooleanBufferBuilder, Buffer, NullBufferBuilder, OffsetBuffer, ScalarBuffer};
use arrow_schema::{ArrowError, SchemaRef};
use dredge_core::enrich::{Column, ColumnType};
/// Why a line was not written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    #[error("not UTF-8")]
    NotUtf8,
    #[error("invalid JSON at byte {at}: {what}")]
    Syntax { at: usize, what: &'static str },
    #[error("unknown column {0:?}")]
    UnknownColumn(String),
    #[error("column {0} appears twice")]
    Duplicate(&'static str),
    #[error("column {column}: not a {expected}")]
    WrongType { column: &'static str, expected: &'static str },
    #[error("column {0}: not an integer")]
    NotInteger(&'static str),
    #[error("column {0}: outside the signed 64-bit range")]
    OutOfRange(&'static str),
    #[error("no timestamp")]
    MissingTimestamp,
}

impl RowError {
    /// A short name of the reason, for counting rejections by kind.
    pub fn kind(&self) -> &'static str {
        match self {
            RowError::NotUtf8 => "not_utf8",
            RowError::Syntax { .. } => "syntax",
            RowError::UnknownColumn(_) => "unknown_column",
            RowError::Duplicate(_) => "duplicate_column",
            RowError::WrongType { .. } => "wrong_type",
            RowError::NotInteger(_) => "not_an_integer",
            RowError::OutOfRange(_) => "out_of_range",
            RowError::MissingTimestamp => "missing_timestamp",
        }
    }
}

/// One column's values, typed as the column is.
#[derive(Debug)]
enum Values {
    /// Longs and timestamps (epoch milliseconds).
    Int(Vec<i64>),
    Bool(BooleanBufferBuilder),
    /// Arrow's string layout: `offsets` has one more entry than values.
    Text {
        offsets: Vec<i32>,
        bytes: Vec<u8>,
    },
}

/// One column of the batch: its values, a placeholder under each null.
#[derive(Debug)]
struct Builder {
    ty: ColumnType,
    values: Values,
    nulls: NullBufferBuilder,
    len: usize,
}

impl Builder {
    fn new(ty: ColumnType, capacity: usize) -> Self {
        let values = match ty {
            ColumnType::TimestampMillis | ColumnType::Long => Values::Int(Vec::with_capacity(capacity)),
            ColumnType::Bool => Values::Bool(BooleanBufferBuilder::new(capacity)),
            ColumnType::String => Values::Text { offsets: offsets(capacity), bytes: Vec::with_capacity(capacity * 8) },
        };
        Builder { ty, values, nulls: NullBufferBuilder::new(capacity), len: 0 }
    }

    /// Nulls up to `rows`, for the rows that left this column out.
    #[inline(always)]
    fn pad(&mut self, rows: usize) {
        if self.len < rows {
            self.pad_cold(rows);
        }
    }

    #[cold]
    fn pad_cold(&mut self, rows: usize) {
        let n = rows - self.len;
        match &mut self.values {
            Values::Int(v) => v.resize(rows, 0),
            Values::Bool(v) => v.append_n(n, false),
            Values::Text { offsets, .. } => offsets.resize(rows + 1, *offsets.last().expect("offsets start at 0")),
        }
        self.nulls.append_n_nulls(n);
        self.len = rows;
    }

    /// Back to `rows` values (from at most one more).
    fn truncate(&mut self, rows: usize) {
        if self.len <= rows {
            return;
        }
        match &mut self.values {
            Values::Int(v) => v.truncate(rows),
            Values::Bool(v) => v.truncate(rows),
            Values::Text { offsets, bytes } => {
                offsets.truncate(rows + 1);
                bytes.truncate(offsets[rows] as usize);
            }
        }
        self.nulls.truncate(rows);
        self.len = rows;
    }

    /// The column as an array of `rows` values; the builder starts empty,
    /// with room for as many as this batch held.
    fn finish(&mut self, rows: usize) -> Result<ArrayRef, ArrowError> {
        self.pad(rows);
        self.len = 0;
        let nulls = self.nulls.finish();
        Ok(match &mut self.values {
            Values::Int(v) => {
                let values = ScalarBuffer::from(refill(v));
                match self.ty {
                    ColumnType::TimestampMillis => Arc::new(
                        PrimitiveArray::<TimestampMillisecondType>::try_new(values, nulls)?.with_timezone("UTC"),
                    ),
                    _ => Arc::new(PrimitiveArray::<Int64Type>::try_new(values, nulls)?),
                }
            }
            Values::Bool(v) => Arc::new(BooleanArray::new(v.finish(), nulls)),
            Values::Text { offsets: o, bytes } => {
                let full = std::mem::replace(o, offsets(o.len()));
                let offsets = OffsetBuffer::new(ScalarBuffer::from(full));
                Arc::new(StringArray::try_new(offsets, Buffer::from_vec(refill(bytes)), nulls)?)
            }
        })
    }
}

/// String offsets with room for `capacity` values, starting at 0.
fn offsets(capacity: usize) -> Vec<i32> {
    let mut offsets = Vec::with_capacity(capacity + 1);
    offsets.push(0);
    offsets
}

/// What `v` holds, leaving it empty with as much room: the next batch
/// is about as large, and grows no buffer from zero.
fn refill<T>(v: &mut Vec<T>) -> Vec<T> {
    std::mem::replace(v, Vec::with_capacity(v.len()))
}

/// The columns of one record batch.
#[derive(Debug)]
pub(crate) struct Columns {
    schema: SchemaRef,
    columns: Vec<Builder>,
    rows: usize,
}

impl Columns {
    pub(crate) fn new(schema: SchemaRef, columns: &[Column], capacity: usize) -> Self {
        let columns = columns.iter().map(|c| Builder::new(c.ty, capacity)).collect();
        Columns { schema, columns, rows: 0 }
    }

    /// Rows ended so far.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// `column` already has a value (or null) in the row being read.
    #[inline(always)]
    pub(crate) fn has(&self, column: usize) -> bool {
        self.columns[column].len > self.rows
    }

    /// `column` has a value other than null in the row being read.
    pub(crate) fn has_value(&self, column: usize) -> bool {
        self.has(column) && self.columns[column].nulls.is_valid(self.rows)
    }

    /// The builder of `column`, padded to the row being read, with the
    /// value about to be pushed counted (the caller pushes it).
    #[inline(always)]
    fn at(&mut self, column: usize) -> &mut Builder {
        let rows = self.rows;
        let b = &mut self.columns[column];
        b.pad(rows);
        b.nulls.append_non_null();
        b.len += 1;
        b
    }

    pub(crate) fn push_null(&mut self, column: usize) {
        let rows = self.rows;
        self.columns[column].pad_cold(rows + 1);
    }

    #[inline(always)]
    pub(crate) fn push_int(&mut self, column: usize, value: i64) {
        match &mut self.at(column).values {
            Values::Int(v) => v.push(value),
            _ => unreachable!("the scanner reads each column as its type"),
        }
    }

    #[inline(always)]
    pub(crate) fn push_bool(&mut self, column: usize, value: bool) {
        match &mut self.at(column).values {
            Values::Bool(v) => v.append(value),
            _ => unreachable!("the scanner reads each column as its type"),
        }
    }

    #[inline(always)]
    /// `value` is UTF-8 (the scanner reads it from a `str`; the array
    /// checks it again).
    pub(crate) fn push_str(&mut self, column: usize, value: &[u8]) {
        match &mut self.at(column).values {
            Values::Text { offsets, bytes } => {
                bytes.extend_from_slice(value);
                offsets.push(i32::try_from(bytes.len()).expect("a batch's strings fit in 2 GiB"));
            }
            _ => unreachable!("the scanner reads each column as its type"),
        }
    }

    /// The row being read is complete.
    pub(crate) fn end_row(&mut self) {
        self.rows += 1;
    }

    /// The row being read is rejected: out of every column it reached.
    #[cold]
    pub(crate) fn discard_row(&mut self) {
        let rows = self.rows;
        self.columns.iter_mut().for_each(|b| b.truncate(rows));
    }

    /// The rows ended so far as one batch; the columns start empty again.
    pub(crate) fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let rows = std::mem::take(&mut self.rows);
        let arrays = self.columns.iter_mut().map(|b| b.finish(rows)).collect::<Result<Vec<_>, _>>()?;
        RecordBatch::try_new(self.schema.clone(), arrays)
    }
}
