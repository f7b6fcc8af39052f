//! One enriched line read into typed slots, one per column, then appended
//! to Arrow builders only once the whole line is known to be good: a bad
//! value rejects its row and leaves every column as it was.

use arrow_array::builder::{BooleanBuilder, Int64Builder, StringBuilder, TimestampMillisecondBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, SchemaRef};
use dredge_core::enrich::{Column, ColumnType};
use std::sync::Arc;

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

/// Where a string value is: unescaped strings are borrowed from the line,
/// strings with escapes are decoded into the row's scratch buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Text {
    Line(usize, usize),
    Scratch(usize, usize),
}

/// One column's value in the line being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// The key is not in the line.
    Absent,
    /// The key is, with `null`.
    Null,
    Int(i64),
    Bool(bool),
    Text(Text),
}

/// The slots of one line, reused from line to line.
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) slots: Vec<Slot>,
    pub(crate) scratch: String,
}

impl Row {
    pub(crate) fn new(columns: usize) -> Self {
        Row { slots: vec![Slot::Absent; columns], scratch: String::new() }
    }

    pub(crate) fn clear(&mut self) {
        self.slots.fill(Slot::Absent);
        self.scratch.clear();
    }

    pub(crate) fn text<'a>(&'a self, line: &'a str, text: Text) -> &'a str {
        match text {
            Text::Line(from, to) => &line[from..to],
            Text::Scratch(from, to) => &self.scratch[from..to],
        }
    }
}

/// One Arrow builder per column, typed as the column is.
#[derive(Debug)]
enum Builder {
    Timestamp(TimestampMillisecondBuilder),
    Long(Int64Builder),
    String(StringBuilder),
    Bool(BooleanBuilder),
}

/// The Arrow builders of one record batch.
#[derive(Debug)]
pub(crate) struct Builders {
    schema: SchemaRef,
    columns: Vec<Builder>,
    rows: usize,
}

impl Builders {
    pub(crate) fn new(schema: SchemaRef, columns: &[Column], capacity: usize) -> Self {
        let columns = columns
            .iter()
            .map(|c| match c.ty {
                ColumnType::TimestampMillis => {
                    Builder::Timestamp(TimestampMillisecondBuilder::with_capacity(capacity).with_timezone("UTC"))
                }
                ColumnType::Long => Builder::Long(Int64Builder::with_capacity(capacity)),
                ColumnType::String => Builder::String(StringBuilder::with_capacity(capacity, capacity * 8)),
                ColumnType::Bool => Builder::Bool(BooleanBuilder::with_capacity(capacity)),
            })
            .collect();
        Builders { schema, columns, rows: 0 }
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Appends a row the scanner read without error.
    pub(crate) fn append(&mut self, row: &Row, line: &str) {
        for (builder, slot) in self.columns.iter_mut().zip(&row.slots) {
            match (builder, *slot) {
                (Builder::Timestamp(b), Slot::Int(v)) => b.append_value(v),
                (Builder::Long(b), Slot::Int(v)) => b.append_value(v),
                (Builder::String(b), Slot::Text(t)) => b.append_value(row.text(line, t)),
                (Builder::Bool(b), Slot::Bool(v)) => b.append_value(v),
                (Builder::Timestamp(b), Slot::Absent | Slot::Null) => b.append_null(),
                (Builder::Long(b), Slot::Absent | Slot::Null) => b.append_null(),
                (Builder::String(b), Slot::Absent | Slot::Null) => b.append_null(),
                (Builder::Bool(b), Slot::Absent | Slot::Null) => b.append_null(),
                (_, slot) => unreachable!("the scanner reads each column as its type, not {slot:?}"),
            }
        }
        self.rows += 1;
    }

    /// The rows appended so far as one batch; the builders start empty again.
    pub(crate) fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|b| -> ArrayRef {
                match b {
                    Builder::Timestamp(b) => Arc::new(b.finish()),
                    Builder::Long(b) => Arc::new(b.finish()),
                    Builder::String(b) => Arc::new(b.finish()),
                    Builder::Bool(b) => Arc::new(b.finish()),
                }
            })
            .collect();
        self.rows = 0;
        RecordBatch::try_new(self.schema.clone(), arrays)
    }
}
