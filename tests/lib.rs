//! Shared helpers for Dredge's end-to-end tests.
//!
//! Tests that need AWS APIs talk to the moto server that `scripts/test`
//! starts and announces through `AWS_ENDPOINT_URL`. Outside CI a test
//! without it says so and passes; under `CI=true` it fails.

use std::path::PathBuf;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// A file under `events/`.
pub fn event_path(relative: &str) -> PathBuf {
    repo_root().join("events").join(relative)
}

/// A sample that is not a Lambda event, under `samples/` (EC2 describe
/// output, flow-log files).
pub fn sample_path(relative: &str) -> PathBuf {
    repo_root().join("samples").join(relative)
}

/// The sample fleet's VPC.
pub const VPC: &str = "vpc-0a1b2c3d4e5f60789";

/// An ENI of the sample account (us-east-1a, `VPC`) attached to `instance`
/// of ASG `asg`, holding one private `address`.
pub fn eni(id: &str, instance: &str, asg: &str, address: &str) -> dredge_core::ownership::Eni {
    let mut e = dredge_core::ownership::Eni::new(id);
    e.vpc_id = Some(VPC.into());
    e.account_id = Some("123456789012".into());
    e.region = Some("us-east-1".into());
    e.az = Some("us-east-1a".into());
    e.instance_id = Some(instance.into());
    e.tags.insert(dredge_core::ownership::ASG_TAG.into(), asg.into());
    e.private_addresses = vec![address.parse().unwrap()];
    e
}

/// A CloudWatch Logs subscription record (gzip) of the flow-log group, one
/// log event per line, with a field the decoder must ignore (`policyLevel`).
pub fn envelope(lines: &[String]) -> Vec<u8> {
    use std::io::Write;
    let doc = serde_json::json!({
        "messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": "vpc-flow-logs",
        "logStream": "eni-log-all", "subscriptionFilters": ["dredge"], "policyLevel": "ACCOUNT_LEVEL_POLICY",
        "logEvents": lines.iter().enumerate()
            .map(|(i, m)| serde_json::json!({"id": i.to_string(), "timestamp": 0, "message": m}))
            .collect::<Vec<_>>(),
    });
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(doc.to_string().as_bytes()).unwrap();
    gz.finish().unwrap()
}

/// The shared public data directory (AWS `ip-ranges.json`, ...).
pub fn shared_data() -> PathBuf {
    std::env::var_os("DREDGE_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("..").join("shared").join("data"))
}

/// The AWS SDK configuration for the moto server, or `None` (with a note on
/// stderr) when no emulator runs. Panics under `CI=true` without one: a test
/// that needs the emulator never skips silently in CI.
pub async fn moto_config(test: &str) -> Option<aws_config::SdkConfig> {
    let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") else {
        return missing(test, "no moto server (AWS_ENDPOINT_URL unset)");
    };
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into())))
        .load()
        .await;
    Some(config)
}

/// `None` with a note on stderr, for a test whose tool is missing; a panic
/// under `CI=true`, where every tool must be there.
pub fn missing<T>(test: &str, what: &str) -> Option<T> {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: {what}; run the tests through scripts/test");
    }
    eprintln!("{test}: SKIPPED, {what}; run scripts/test");
    None
}

/// `python3` from PATH (scripts/test puts `.venv/bin` first) if it can
/// import every one of `modules`.
pub fn python_with(test: &str, modules: &[&str]) -> Option<std::process::Command> {
    let imports = format!("import {}", modules.join(", "));
    let ok = std::process::Command::new("python3")
        .args(["-c", &imports])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return missing(test, &format!("python3 cannot `{imports}`"));
    }
    Some(std::process::Command::new("python3"))
}

/// A name no other test run uses, so tests can share one moto server.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{prefix}-{}-{nanos}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}
