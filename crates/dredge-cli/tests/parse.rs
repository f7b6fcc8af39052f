//! `dredge parse` as a user runs it: the real binary on the sample files.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn events(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../samples/flow-logs").join(name)
}

fn dredge(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dredge"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run dredge");
    let mut pipe = child.stdin.take().unwrap();
    if let Some(input) = stdin {
        pipe.write_all(input).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn json_lines(out: &Output) -> Vec<serde_json::Map<String, serde_json::Value>> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap().as_object().unwrap().clone())
        .collect()
}

fn path(name: &str) -> String {
    events(name).display().to_string()
}

#[test]
fn default_format_file() {
    let out = dredge(&["parse", &path("default-v2.log")], None);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let records = json_lines(&out);
    assert_eq!(records.len(), 5);
    let first = &records[0];
    assert_eq!(first.len(), 14);
    assert_eq!(first["account_id"], "123456789010");
    assert_eq!(first["srcaddr"], "172.31.16.139");
    assert_eq!(first["dstport"], 22);
    assert_eq!(first["bytes"], 4249);
    assert_eq!(first["action"], "ACCEPT");
    let nodata = &records[2];
    assert_eq!(nodata["log_status"], "NODATA");
    for key in ["srcaddr", "dstaddr", "srcport", "dstport", "protocol", "packets", "bytes", "action"] {
        assert!(nodata[key].is_null(), "{key} should be null");
    }
    assert_eq!(records[4]["dstaddr"], "2001:db8:1234:a102:3304:8879:34cf:4071");
}

#[test]
fn header_line_sets_the_format() {
    let out = dredge(&["parse", &path("s3-v5-with-header.log")], None);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let records = json_lines(&out);
    assert_eq!(records.len(), 4);
    assert_eq!(records[0].len(), 29);
    assert_eq!(records[0]["flow_direction"], "egress");
    assert_eq!(records[0]["traffic_path"], 1);
    assert_eq!(records[0]["tcp_flags"], 19);
    assert!(records[1]["traffic_path"].is_null());
    assert_eq!(records[2]["pkt_dst_aws_service"], "DYNAMODB");
}

#[test]
fn cloudwatch_documents_plain_and_gzip_decode_like_the_text() {
    let text = dredge(&["parse", &path("default-v2.log")], None);
    for doc in ["cloudwatch-subscription.json", "cloudwatch-subscription.json.gz"] {
        let out = dredge(&["parse", &path(doc)], None);
        assert_eq!(out.status.code(), Some(0), "{doc}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.stdout, text.stdout, "{doc}");
    }
}

#[test]
fn control_messages_produce_nothing() {
    let out = dredge(&["parse", &path("cloudwatch-control-message.json")], None);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
}

#[test]
fn rejected_lines_go_to_stderr_and_exit_1_after_the_good_ones() {
    let source = path("malformed.log");
    let out = dredge(&["parse", &source], None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json_lines(&out).len(), 1);
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{stderr}");
    assert!(lines[0].starts_with(&format!("{source}:2: field `dstport`")), "{}", lines[0]);
    assert!(lines[1].starts_with(&format!("{source}:3: field `srcaddr`")), "{}", lines[1]);
    assert_eq!(lines[2], format!("{source}:4: expected 14 fields, found 13"));
    assert!(lines[3].starts_with(&format!("{source}:5: field `action`")), "{}", lines[3]);
}

#[test]
fn reads_stdin_with_a_custom_format() {
    let out = dredge(
        &["parse", "--format", "${srcaddr} ${dstaddr} ${bytes}"],
        Some(b"10.0.0.1 10.0.0.2 100\n10.0.0.3 - -\n"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let records = json_lines(&out);
    assert_eq!(records.len(), 2);
    // Keys in the format's order, not alphabetical.
    let first_line = String::from_utf8(out.stdout.clone()).unwrap().lines().next().unwrap().to_owned();
    assert_eq!(first_line, r#"{"srcaddr":"10.0.0.1","dstaddr":"10.0.0.2","bytes":100}"#);
    assert_eq!(records[0]["bytes"], 100);
    assert!(records[1]["dstaddr"].is_null());
}

#[test]
fn stdin_errors_are_named_after_dash() {
    let out = dredge(&["parse", "-"], Some(b"not a flow log\n"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr).unwrap().starts_with("-:1: "));
}

#[test]
fn missing_file_is_reported_and_others_still_decode() {
    let out = dredge(&["parse", "/nonexistent/flow.log", &path("default-v2.log")], None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json_lines(&out).len(), 5);
    assert!(String::from_utf8(out.stderr).unwrap().starts_with("/nonexistent/flow.log:0: "));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(dredge(&["parse", "--format", "version bogus"], Some(b"")).status.code(), Some(2));
    assert_eq!(dredge(&["parse", "--no-such-flag"], None).status.code(), Some(2));
    assert_eq!(dredge(&["no-such-command"], None).status.code(), Some(2));
}

#[test]
fn oversized_gzip_is_refused() {
    let out = dredge(&["parse", "--max-decompressed", "100", &path("cloudwatch-subscription.json.gz")], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8(out.stderr).unwrap().contains("decompresses to more than 100 bytes"));
}

/// `dredge parse` streams raw text: memory stays flat whatever the file's
/// size (it read files whole: 251 MB of RSS for a 250 MB file). The child's
/// peak RSS, from getrusage, stays far under the file's size.
#[cfg(target_os = "linux")]
#[test]
fn a_large_file_is_parsed_in_flat_memory() {
    use std::io::BufRead;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("large.log");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    let line = "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK\n";
    let lines = (64 << 20) / line.len();
    for _ in 0..lines {
        out.write_all(line.as_bytes()).unwrap();
    }
    out.write_all(b"not a flow\n").unwrap();
    drop(out);
    let size = std::fs::metadata(&file).unwrap().len();

    let mut child = Command::new(env!("CARGO_BIN_EXE_dredge"))
        .args(["parse", &file.display().to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let records = std::io::BufReader::new(child.stdout.take().unwrap()).lines().count();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "one line rejected");
    assert_eq!(records, lines);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains(&format!(":{}: ", lines + 1)), "{stderr}");

    let max_rss = {
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) }, 0);
        usage.ru_maxrss as u64 * 1024
    };
    // Every child of this test binary counts; none of them holds a file.
    assert!(max_rss < size / 2, "peak RSS {max_rss} bytes for a {size}-byte file");
}

/// Gzip'd text streams too; a header line sets the format for the lines
/// after it, and a line longer than any flow-log line is rejected without
/// being held, the numbering of the lines after it intact.
#[test]
fn gzip_text_streams_with_headers_and_overlong_lines() {
    let mut text = String::from("version srcaddr dstaddr\n5 10.0.0.1 10.0.0.2\n");
    text.push_str(&"9".repeat(3 << 20));
    text.push_str("\n5 10.0.0.3 10.0.0.4\n");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes()).unwrap();
    let out = dredge(&["parse", "-"], Some(&gz.finish().unwrap()));
    assert_eq!(out.status.code(), Some(1));
    let records = json_lines(&out);
    assert_eq!(records.len(), 2);
    assert_eq!(records[1]["srcaddr"], "10.0.0.3");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("-:3: line of 3145728 bytes"), "{stderr}");
}
