//! `dredge parquet`, `dredge druid-spec` and `dredge athena-ddl` as a user
//! runs them. What the Parquet files hold is checked by outside readers
//! (pyarrow, DuckDB, parquet-java) in the dredge-tests crate.

use std::process::{Command, Output};

fn dredge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dredge")).args(args).output().expect("run dredge")
}

#[test]
fn parquet_writes_good_lines_and_reports_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    let out = dir.path().join("out.parquet");
    std::fs::write(
        &input,
        concat!(
            r#"{"timestamp":1800000000000,"bytes":10,"src_app":"api"}"#,
            "\n\n",
            r#"{"timestamp":1800000000000,"bytes":18446744073709551615}"#,
            "\n",
            r#"{"timestamp":1800000060000,"packets":2,"cross_az":true}"#,
            "\n",
        ),
    )
    .unwrap();
    let run = dredge(&["parquet", "--out", out.to_str().unwrap(), input.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:3: column bytes: outside the signed 64-bit range", input.display())),
        "{stderr}"
    );
    let summary: serde_json::Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    assert_eq!(summary["rows_written"], 2);
    assert_eq!(summary["rows_rejected"], 1);
    assert_eq!(summary["rejected_by_kind"]["out_of_range"], 1);
    let bytes = std::fs::read(&out).unwrap();
    assert!(bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"));
}

#[test]
fn druid_spec_shapes() {
    let run = dredge(&["druid-spec", "--bucket", "my-bucket", "--prefix", "x/y", "--rollup"]);
    assert!(run.status.success());
    let spec: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(spec["type"], "index_parallel");
    assert_eq!(spec["spec"]["ioConfig"]["inputSource"]["prefixes"][0], "s3://my-bucket/x/y/");
    assert_eq!(spec["spec"]["dataSchema"]["metricsSpec"][0]["type"], "count");

    let run = dredge(&["druid-spec", "--interval", "2026-11-30T00:00:00Z/2026-11-30T01:00:00Z"]);
    let spec: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(spec["spec"]["dataSchema"]["granularitySpec"]["rollup"], false);
    assert_eq!(spec["spec"]["ioConfig"]["inputSource"]["prefixes"][0], "s3://dredge-data/flows/dt=2026-11-30/");

    let run = dredge(&["druid-spec", "--interval", "yesterday"]);
    assert_eq!(run.status.code(), Some(2));
}

#[test]
fn athena_ddl() {
    let run = dredge(&["athena-ddl", "--bucket", "my-bucket", "--prefix", "p", "--table", "t", "--database", "d"]);
    assert!(run.status.success());
    let ddl = String::from_utf8(run.stdout).unwrap();
    assert!(ddl.starts_with("CREATE EXTERNAL TABLE IF NOT EXISTS `d`.`t` ("));
    assert!(ddl.contains("LOCATION 's3://my-bucket/p/'"));
    assert!(ddl.contains("'projection.hour.digits'='2'"));
}
