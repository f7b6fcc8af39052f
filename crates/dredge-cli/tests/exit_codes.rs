//! The exit status, across commands: 0 when everything worked, 1 when
//! something failed while running (a handler's batch item failures
//! included), 2 for usage errors and nothing else.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
}

/// `dredge ARGS` with none of the environment the commands read.
fn dredge(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dredge"));
    for name in [
        "OWNERSHIP_TABLE",
        "DREDGE_STATE",
        "ENRICHED_STREAM",
        "IP_RANGES",
        "FLOW_LOG_FORMAT",
        "ENRICHED_COMPRESSION",
        "RETRY_QUEUE_URL",
        "DATA_BUCKET",
        "DATA_PREFIX",
        "DEAD_LETTER_BUCKET",
        "COMPACT_LATENESS",
        "RUST_LOG",
    ] {
        command.env_remove(name);
    }
    command.args(args).output().expect("run dredge")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn usage_errors_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let state = path(tmp.path());
    let event = repo("events/enricher/kinesis-flow-logs.json");
    let cases: &[&[&str]] = &[
        // clap's own: unknown command or option, missing or bad values.
        &["no-such-command"],
        &["replay"],
        &["replay", "--queue", "https://sqs.example/q", "--function", "compactor"],
        &["ownership", "--state", state, "lookup", "10.20.1.15", "--at", "yesterday"],
        &["invoke", "writer", "--compact", "--now", "soon", "--state", state],
        &["parquet", "--zstd-level", "99"],
        &["druid-spec", "--interval", "yesterday"],
        // What clap cannot see alone, found before anything is done.
        &["ownership", "--state", state, "lookup", "10.20.1.15"],
        &["ownership", "--state", state, "create-table"],
        &["invoke", "enricher", "--event", "/nonexistent.json", "--table", "t", "--state", state],
        &["invoke", "ownership", "--event", path(&event), "--table", "t", "--state", state],
        &["demo", "--delays", "awful", "--out", state],
        &["parse", "--format", "version bogus", "/dev/null"],
        &["athena-ddl", "--bucket", "Not_A_Bucket"],
    ];
    for args in cases {
        let out = dredge(args);
        assert_eq!(out.status.code(), Some(2), "dredge {args:?}: {}", stderr(&out));
        assert!(stdout(&out).is_empty(), "dredge {args:?} printed {}", stdout(&out));
    }
}

#[test]
fn failures_while_running_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    let not_json = tmp.path().join("event.json");
    std::fs::write(&not_json, "{ not json").unwrap();
    let a_file = tmp.path().join("a-file");
    std::fs::write(&a_file, "").unwrap();
    let state = tmp.path().join("state");
    let cases: &[&[&str]] = &[
        &["invoke", "enricher", "--event", "/nonexistent.json", "--state", path(&state)],
        &["invoke", "enricher", "--event", path(&not_json), "--state", path(&state)],
        &["parse", "/nonexistent/flow.log"],
        &["ownership", "--state", path(&a_file), "dump"],
        &["stream", "read", "enriched", "--state", path(&a_file)],
    ];
    for args in cases {
        let out = dredge(args);
        assert_eq!(out.status.code(), Some(1), "dredge {args:?}: {}", stderr(&out));
    }
}

#[test]
fn an_aws_failure_exits_1() {
    // Nothing listens on port 9: the SDK's retries run out, and that is a
    // failure met while running, not a usage error.
    let out = Command::new(env!("CARGO_BIN_EXE_dredge"))
        .args(["ownership", "--table", "ownership", "dump"])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).starts_with("dredge: "), "{}", stderr(&out));
}

/// Makes the embedded enriched stream unwritable: its file is a directory.
fn break_the_enriched_stream(state: &Path) {
    std::fs::create_dir_all(state.join("streams").join("enriched.jsonl")).unwrap();
}

#[test]
fn batch_item_failures_exit_1_and_success_0() {
    let event = repo("events/enricher/kinesis-flow-logs.json");
    let ok = tempfile::tempdir().unwrap();
    let out = dredge(&["invoke", "enricher", "--event", path(&event), "--state", path(ok.path())]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let response: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(response["batchItemFailures"], serde_json::json!([]));

    let broken = tempfile::tempdir().unwrap();
    break_the_enriched_stream(broken.path());
    let out = dredge(&["invoke", "enricher", "--event", path(&event), "--state", path(broken.path())]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // Standard output is the response alone; the handler's warning shows
    // on stderr at the default level.
    let response: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let failures = response["batchItemFailures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{response}");
    assert!(stderr(&out).contains("batch partly failed"), "{}", stderr(&out));

    // The writer, its data bucket's directory a file.
    let writer_event = repo("events/writer/kinesis-enriched.json");
    let state = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(state.path().join("s3")).unwrap();
    std::fs::write(state.path().join("s3").join("dredge-data"), "").unwrap();
    let out = dredge(&["invoke", "writer", "--event", path(&writer_event), "--state", path(state.path())]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let response: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(response["batchItemFailures"].as_array().map(Vec::len), Some(1), "{response}");
}

#[test]
fn info_logs_only_when_rust_log_asks() {
    let event = repo("events/enricher/kinesis-flow-logs.json");
    let quiet = tempfile::tempdir().unwrap();
    let out = dredge(&["invoke", "enricher", "--event", path(&event), "--state", path(quiet.path())]);
    assert!(!stderr(&out).contains("batch done"), "{}", stderr(&out));

    let chatty = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dredge"))
        .args(["invoke", "enricher", "--event", path(&event), "--state", path(chatty.path())])
        .env("RUST_LOG", "info")
        .env_remove("OWNERSHIP_TABLE")
        .env_remove("IP_RANGES")
        .env_remove("ENRICHED_STREAM")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Plain text, not JSON, and never on stdout, which is the response alone.
    let line = stderr(&out).lines().find(|l| l.contains("batch done")).map(str::to_owned);
    assert!(line.as_deref().is_some_and(|l| l.contains("INFO") && !l.starts_with('{')), "{}", stderr(&out));
    let response: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(response["batchItemFailures"], serde_json::json!([]));
}
