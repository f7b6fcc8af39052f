//! Parquet from `dredge_columnar::ParquetEncoder`, read by readers this
//! project did not write: pyarrow (schema, logical types, values), DuckDB
//! (SQL counts and sums) and parquet-java, the reader Druid is built on
//! (every row of every file read, column types). Files have several row
//! groups, nulls, escapes and the largest counter that fits; a counter
//! past `i64::MAX` in the input is rejected, not written.

use std::path::{Path, PathBuf};
use std::process::Command;

use dredge_columnar::{EncoderOptions, ParquetEncoder, SCHEMA_VERSION_KEY};
use dredge_core::enrich::{columns, ColumnType, SCHEMA_VERSION};
use serde_json::{json, Value};

const T0: i64 = 1_800_000_000_000;

/// One input line per row; `None` columns left out, as the enricher does.
fn line(i: i64) -> Value {
    let mut row = serde_json::Map::new();
    row.insert("timestamp".into(), json!(T0 + i * 1000));
    row.insert("version".into(), json!(5));
    row.insert("bytes".into(), json!(if i == 7 { i64::MAX } else { i * 7919 % 1_000_003 }));
    if i % 3 != 0 {
        row.insert("packets".into(), json!(i % 97));
    }
    row.insert("srcaddr".into(), json!(format!("10.0.{}.{}", i / 250 % 256, i % 250)));
    row.insert(
        "src_app".into(),
        json!(if i % 50 == 0 { "quote\" back\\ é 😀".to_string() } else { format!("app{}", i % 40) }),
    );
    if i % 4 != 3 {
        row.insert("cross_az".into(), json!(i % 2 == 0));
    }
    Value::Object(row)
}

struct Written {
    files: Vec<PathBuf>,
    rows: Vec<Value>,
}

fn write_files(dir: &Path) -> Written {
    let mut rows = Vec::new();
    let mut files = Vec::new();
    // Two files of several row groups each (small row groups on purpose)
    // and a one-row file.
    for (n, count) in [(0, 6000), (1, 4000), (2, 1)] {
        let path = dir.join(format!("part-{n}.parquet"));
        let options = EncoderOptions { row_group_bytes: 64 << 10, batch_rows: 1000, ..Default::default() };
        let mut enc = ParquetEncoder::new(std::fs::File::create(&path).unwrap(), options).unwrap();
        for i in 0..count {
            let row = line(rows.len() as i64);
            enc.push_line(row.to_string().as_bytes()).unwrap().unwrap();
            rows.push(row);
            if i == 10 {
                let over = format!(r#"{{"timestamp":{T0},"bytes":{}}}"#, u64::MAX);
                assert!(enc.push_line(over.as_bytes()).unwrap().is_err());
            }
        }
        let (_, summary) = enc.finish().unwrap();
        assert_eq!(summary.rows_written, count as u64);
        assert_eq!(summary.rows_rejected, u64::from(count > 10));
        files.push(path);
    }
    Written { files, rows }
}

fn sum(rows: &[Value], column: &str) -> i128 {
    rows.iter().filter_map(|r| r[column].as_i64()).map(i128::from).sum()
}

fn run(mut cmd: Command) -> String {
    let out = cmd.output().expect("run the reader");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd:?} failed:\n{stderr}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn pyarrow_and_duckdb_read_schema_types_and_values() {
    let Some(mut python) = dredge_tests::python_with("pyarrow_and_duckdb", &["pyarrow", "duckdb"]) else { return };
    let dir = tempfile::tempdir().unwrap();
    let w = write_files(dir.path());
    python.arg(dredge_tests::repo_root().join("tests/python/read_parquet.py")).arg("timestamp,bytes,src_app,cross_az");
    python.args(&w.files);
    let out: Value = serde_json::from_str(&run(python)).unwrap();

    let arrow_type = |ty: ColumnType| match ty {
        ColumnType::TimestampMillis => "timestamp[ms, tz=UTC]",
        ColumnType::Long => "int64",
        ColumnType::String => "string",
        ColumnType::Bool => "bool",
    };
    let want_fields: Vec<Value> = columns().iter().map(|c| json!([c.name, arrow_type(c.ty)])).collect();
    let files = out["files"].as_array().unwrap();
    for (file, want_rows) in files.iter().zip([6000, 4000, 1]) {
        assert_eq!(file["fields"], json!(want_fields));
        assert_eq!(file["rows"], want_rows);
        assert_eq!(file["metadata"][SCHEMA_VERSION_KEY], SCHEMA_VERSION.to_string());
    }
    assert!(files[0]["row_groups"].as_u64().unwrap() > 1, "several row groups: {}", files[0]);

    let values = &out["values"];
    let want_ts: Vec<i64> = w.rows.iter().map(|r| r["timestamp"].as_i64().unwrap()).collect();
    let got_ts: Vec<i64> = values["timestamp"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let t = time::OffsetDateTime::parse(t.as_str().unwrap(), &time::format_description::well_known::Rfc3339)
                .unwrap();
            (t.unix_timestamp_nanos() / 1_000_000) as i64
        })
        .collect();
    assert_eq!(got_ts, want_ts);
    for column in ["bytes", "src_app", "cross_az"] {
        let want: Vec<Value> = w.rows.iter().map(|r| r.get(column).cloned().unwrap_or(Value::Null)).collect();
        assert_eq!(values[column], json!(want), "{column}");
    }

    assert_eq!(out["duckdb"]["count"], w.rows.len());
    for column in ["bytes", "packets", "version"] {
        let got = out["duckdb"]["sums"][column].to_string();
        assert_eq!(got, sum(&w.rows, column).to_string(), "{column}");
    }
}

#[test]
fn parquet_java_reads_every_row() {
    let test = "parquet_java_reads_every_row";
    let Some(mut python) = dredge_tests::python_with(test, &["pyspark"]) else { return };
    python.args(["-c", "import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), 'jars'))"]);
    let jars = run(python).trim().to_string();
    if !Command::new("java").arg("-version").output().is_ok_and(|o| o.status.success()) {
        return dredge_tests::missing(test, "no `java` on PATH").unwrap_or(());
    }
    let dir = tempfile::tempdir().unwrap();
    let w = write_files(dir.path());
    let mut java = Command::new("java");
    java.arg("-cp").arg(format!("{jars}/*")).arg(dredge_tests::repo_root().join("tests/java/ReadParquet.java"));
    java.args(&w.files);
    let out = run(java);

    let mut files = Vec::new();
    let mut types = Vec::new();
    let mut sums = std::collections::BTreeMap::new();
    for l in out.lines() {
        let parts: Vec<&str> = l.split(' ').collect();
        match parts[..] {
            ["FILE", _, rows, footer] => files.push((rows.parse::<u64>().unwrap(), footer.parse::<u64>().unwrap())),
            ["COLUMN", name, physical, logical] if files.len() == 1 => {
                types.push((name.to_string(), physical.to_string(), logical.to_string()))
            }
            ["SUM", name, s] => *sums.entry(name.to_string()).or_insert(0i64) += s.parse::<i64>().unwrap(),
            _ => {}
        }
    }
    assert_eq!(files, [(6000, 6000), (4000, 4000), (1, 1)], "{out}");
    let want: Vec<(String, String, String)> = columns()
        .iter()
        .map(|c| {
            let (physical, logical) = match c.ty {
                ColumnType::TimestampMillis => ("INT64", "TIMESTAMP(MILLIS,true)"),
                ColumnType::Long => ("INT64", "-"),
                ColumnType::String => ("BINARY", "STRING"),
                ColumnType::Bool => ("BOOLEAN", "-"),
            };
            (c.name.clone(), physical.into(), logical.into())
        })
        .collect();
    assert_eq!(types, want);
    // Java sums in i64 and wraps past i64::MAX: so does the expectation.
    let wrapped = |column: &str| w.rows.iter().filter_map(|r| r[column].as_i64()).fold(0i64, i64::wrapping_add);
    for column in ["timestamp", "bytes", "packets"] {
        assert_eq!(sums[column], wrapped(column), "{column}");
    }
}
