//! The writer's record reader: a Kinesis record's data from the enriched
//! stream, read as the writer reads it (`dredge_core::stream_data::
//! read_lines`, which detects zstd, gzip or plain text), then each line
//! parsed into a Parquet row by `dredge_columnar::ParquetEncoder`
//! (`push_line`), the writer's line-to-row parser. The writer crate itself
//! pulls the AWS SDKs; its staging code is exactly these two calls.
//!
//! Beyond "no panic":
//! - `detect` agrees with `read_lines`; plain data reads as itself; no
//!   decompressed text exceeds the 1 MiB cap; lines are non-empty and
//!   hold no newline;
//! - the encoder's summary adds up: written + rejected + blank == lines;
//! - a line that serde_json reads as one object whose members are known
//!   columns, each once, with values of the column's type (i64, string,
//!   bool or null) and a non-null timestamp, is written, never rejected;
//! - the Parquet file holds exactly the written rows, and each row that
//!   serde_json could read holds serde_json's values (checked for one
//!   input in 16, see `WRITE_ONE_IN`).

#![no_main]

use std::collections::HashMap;
use std::fmt;

use arrow_array::{Array, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use dredge_columnar::{EncoderOptions, ParquetEncoder};
use dredge_core::enrich::{columns, ColumnType};
use dredge_core::stream_data::{detect, read_lines, Encoding, ReadError};
use libfuzzer_sys::fuzz_target;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;

const MAX: usize = 1 << 20;
/// Lines pushed per input: enough for several record batches and row
/// groups, few enough that a megabyte of tiny lines stays fast.
const MAX_LINES: usize = 500;
/// One input in this many (chosen by a hash of the input) gets an encoder
/// of its own, written to Parquet and read back. A new encoder serializes
/// the Arrow schema (flatbuffers, base64) and its file costs a zstd context
/// per column: doing that for every input ran the target at 60 inputs a
/// second. The other inputs share one long-lived encoder writing into
/// `io::Sink`, as the writer's encoder of an hour sees many records: only
/// the line checks and the summary's counts apply to them. A crash from a
/// shared-encoder input that does not reproduce alone depends on the lines
/// before it: replay the corpus.
const WRITE_ONE_IN: u64 = 16;

thread_local! {
    static SHARED: std::cell::RefCell<ParquetEncoder<std::io::Sink>> = std::cell::RefCell::new(
        ParquetEncoder::new(
            std::io::sink(),
            EncoderOptions { batch_rows: 64, row_group_bytes: 1 << 20, row_group_rows: 4096, zstd_level: 1 },
        )
        .expect("encoder"),
    );
}

fuzz_target!(|data: &[u8]| {
    let encoding = detect(data);
    let lines = match read_lines(data, MAX) {
        Ok(lines) => lines,
        Err(e) => {
            match (&e, encoding) {
                (ReadError::Zstd(_), Encoding::Zstd) | (ReadError::Gzip(_), Encoding::Gzip) => {}
                (ReadError::TooLarge { max }, Encoding::Zstd | Encoding::Gzip) => assert_eq!(*max, MAX),
                _ => panic!("{encoding:?} data refused with {e}"),
            }
            return;
        }
    };
    assert!(lines.text().len() <= MAX, "{} bytes past the cap", lines.text().len());
    if encoding == Encoding::Plain {
        assert_eq!(lines.text(), data);
    }

    if fnv1a(data) % WRITE_ONE_IN != 0 {
        SHARED.with(|shared| {
            let mut encoder = shared.borrow_mut();
            let before = encoder.summary().clone();
            let (pushed, written) = push_lines(&mut encoder, &lines);
            let after = encoder.summary();
            let delta = |f: fn(&dredge_columnar::Summary) -> u64| f(after) - f(&before);
            assert_eq!(delta(|s| s.rows_written + s.rows_rejected + s.blank_lines), pushed, "{after:?}");
            assert_eq!(delta(|s| s.rows_written), written.len() as u64);
        });
        return;
    }
    let options = EncoderOptions { batch_rows: 3, row_group_bytes: 1 << 20, row_group_rows: 7, zstd_level: 1 };
    let mut encoder = ParquetEncoder::new(Vec::new(), options).expect("encoder");
    let (pushed, written) = push_lines(&mut encoder, &lines);
    let summary = encoder.summary().clone();
    assert_eq!(summary.rows_written + summary.rows_rejected + summary.blank_lines, pushed, "{summary:?}");
    assert_eq!(summary.rows_written, written.len() as u64);
    assert_eq!(summary.rejected_by_kind.values().sum::<u64>(), summary.rows_rejected);
    let (file, summary_after) = encoder.finish().expect("finish");
    assert_eq!(summary_after, summary);
    if written.is_empty() {
        return;
    }

    // Read the file back: the written rows, in order, with their values.
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(file))
        .expect("our own file reads")
        .build()
        .unwrap();
    let mut row = 0;
    for batch in reader {
        let batch = batch.expect("our own file reads");
        for i in 0..batch.num_rows() {
            if let Some(Some(expected)) = written.get(row) {
                compare(&batch, i, expected);
            }
            row += 1;
        }
    }
    assert_eq!(row, written.len(), "rows in the file");
});

/// Pushes the lines (up to `MAX_LINES`); returns how many, and for each
/// written row serde_json's reading of it, when it has one.
fn push_lines<W: std::io::Write + Send>(
    encoder: &mut ParquetEncoder<W>,
    lines: &dredge_core::stream_data::Lines<'_>,
) -> (u64, Vec<Option<Row>>) {
    let mut pushed = 0u64;
    let mut written: Vec<Option<Row>> = Vec::new();
    for line in lines.iter().take(MAX_LINES) {
        assert!(!line.is_empty() && !line.contains(&b'\n'));
        pushed += 1;
        let model = model(line);
        let blank = line.iter().all(u8::is_ascii_whitespace);
        match encoder.push_line(line).expect("an in-memory output cannot fail") {
            Ok(()) if blank => {}
            Ok(()) => written.push(model.ok()),
            Err(e) => {
                let _ = e.to_string();
                if let Ok(row) = model {
                    panic!("rejected ({e}) a line serde_json reads as a valid row {row:?}: {:?}", show(line));
                }
            }
        }
    }
    (pushed, written)
}

/// A row as serde_json reads it: column index to value (null included).
#[derive(Debug)]
struct Row(HashMap<usize, Value>);

/// Why a line is not a valid row for serde_json (then the encoder may
/// write or reject it: it is more lenient than JSON, e.g. on leading
/// zeros and raw control characters, and that is fine).
#[derive(Debug)]
struct NotARow;

fn model(line: &[u8]) -> Result<Row, NotARow> {
    let members = Members::parse(line).ok_or(NotARow)?;
    let cols = columns();
    let mut row = HashMap::new();
    for (key, value) in members.0 {
        let column = cols.iter().position(|c| c.name == key).ok_or(NotARow)?;
        let ok = match (&value, cols[column].ty) {
            (Value::Null, _) => true,
            (Value::Number(n), ColumnType::Long | ColumnType::TimestampMillis) => n.as_i64().is_some(),
            (Value::String(_), ColumnType::String) => true,
            (Value::Bool(_), ColumnType::Bool) => true,
            _ => false,
        };
        if !ok || row.insert(column, value).is_some() {
            return Err(NotARow);
        }
    }
    let timestamp = cols.iter().position(|c| c.ty == ColumnType::TimestampMillis).expect("a timestamp column");
    match row.get(&timestamp) {
        Some(Value::Number(_)) => Ok(Row(row)),
        _ => Err(NotARow),
    }
}

fn compare(batch: &RecordBatch, i: usize, expected: &Row) {
    for (column, spec) in columns().iter().enumerate() {
        let array = batch.column(column);
        let want = expected.0.get(&column).unwrap_or(&Value::Null);
        if want.is_null() {
            assert!(array.is_null(i), "{}: expected null", spec.name);
            continue;
        }
        assert!(array.is_valid(i), "{}: expected {want}, found null", spec.name);
        let got = match spec.ty {
            ColumnType::TimestampMillis => {
                Value::from(array.as_any().downcast_ref::<TimestampMillisecondArray>().unwrap().value(i))
            }
            ColumnType::Long => Value::from(array.as_any().downcast_ref::<Int64Array>().unwrap().value(i)),
            ColumnType::String => Value::from(array.as_any().downcast_ref::<StringArray>().unwrap().value(i)),
            ColumnType::Bool => Value::from(array.as_any().downcast_ref::<BooleanArray>().unwrap().value(i)),
        };
        assert_eq!(&got, want, "column {}", spec.name);
    }
}

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

fn show(line: &[u8]) -> String {
    String::from_utf8_lossy(line).into_owned()
}

/// A JSON object's members in order, duplicates kept (serde_json's `Map`
/// would keep only the last; the encoder refuses duplicates).
struct Members(Vec<(String, Value)>);

impl Members {
    fn parse(line: &[u8]) -> Option<Members> {
        let mut de = serde_json::Deserializer::from_slice(line);
        let members = de.deserialize_map(MembersVisitor).ok()?;
        de.end().ok()?;
        Some(members)
    }
}

struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Members;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
        let mut members = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Value>()? {
            members.push((key, value));
        }
        Ok(Members(members))
    }
}
