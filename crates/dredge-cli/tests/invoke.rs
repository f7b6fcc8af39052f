//! `dredge invoke enricher`, `dredge invoke writer` and `dredge stream`:
//! the real handlers on the sample Kinesis events, against the embedded
//! backends.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
}

fn shared_ranges() -> PathBuf {
    std::env::var_os("DREDGE_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo("../shared/data"))
        .join("aws-ip-ranges.json")
}

fn dredge(state: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_dredge"))
        .args(args)
        .arg("--state")
        .arg(state)
        .env_remove("OWNERSHIP_TABLE")
        .env_remove("ENRICHED_STREAM")
        .env_remove("IP_RANGES")
        .env_remove("FLOW_LOG_FORMAT")
        .env_remove("ENRICHED_COMPRESSION")
        .env_remove("DATA_BUCKET")
        .env_remove("DATA_PREFIX")
        .env_remove("DEAD_LETTER_BUCKET")
        .env_remove("COMPACT_LATENESS")
        .output()
        .expect("run dredge");
    assert!(out.status.success(), "dredge {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Imports the sample snapshot as taken on 2026-11-01 and again after the
/// sample's flows (which the second sighting vouches for), then runs the
/// enricher on the sample event.
fn enrich_the_sample(state: &Path) -> Output {
    let nis = repo("samples/ec2-describe/describe-network-interfaces.json");
    let instances = repo("samples/ec2-describe/describe-instances.json");
    for at in ["2026-11-01T00:00:00Z", "2026-11-18T12:00:00Z"] {
        dredge(state, &["ownership", "import", nis.to_str().unwrap(), instances.to_str().unwrap(), "--at", at]);
    }
    let event = repo("events/enricher/kinesis-flow-logs.json");
    let ranges = shared_ranges();
    dredge(state, &["invoke", "enricher", "--event", event.to_str().unwrap(), "--ip-ranges", ranges.to_str().unwrap()])
}

#[test]
fn the_sample_event_enriches_against_the_imported_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path();
    let out = enrich_the_sample(state);
    let response: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(response, serde_json::json!({"batchItemFailures": []}));
    // The EMF line on stderr carries the batch's counts.
    let stderr = String::from_utf8(out.stderr).unwrap();
    let emf: serde_json::Value = serde_json::from_str(stderr.lines().next().unwrap()).unwrap();
    assert_eq!(emf["FlowsDecoded"], 6);
    assert_eq!(emf["RejectedLines"], 1);
    assert_eq!(emf["StatusRecords"], 1);

    let read = dredge(state, &["stream", "read", "enriched"]);
    let lines: Vec<serde_json::Value> =
        String::from_utf8(read.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 6);
    let to = |dst: &str| lines.iter().find(|l| l["dstaddr"] == dst).unwrap_or_else(|| panic!("{dst}"));
    assert_eq!(to("10.20.4.10")["src_app"], "api");
    assert_eq!(to("10.20.4.10")["src_cluster"], "api-prod");
    assert_eq!(to("10.20.4.10")["dst_kind"], "load_balancer");
    assert_eq!(to("52.94.0.10")["dst_app"], "DYNAMODB");
    assert_eq!(to("10.20.17.201")["dst_kind"], "lambda");
    assert_eq!(to("10.20.17.201")["cross_az"], true);
    assert_eq!(to("10.99.0.9")["dst_attribution"], "unattributed");
    assert_eq!(to("10.20.32.12")["dst_kind"], "nat_gateway");
    assert_eq!(to("10.20.32.12")["flow_direction"], "egress");
    assert_eq!(to("10.20.32.12")["timestamp"], 1_795_000_000_000i64);
    // Every record names its source line (the event's shard and sequence number).
    assert!(lines.iter().all(|l| l["flow_id"].as_str().unwrap().starts_with("shardId-000000000000:4965916537381")));

    // Stored as Kinesis carries it: zstd, by default; `stream decode` reads
    // a record's data as a consumer gets it.
    let records = dredge_core::sink::read_stream(state, "enriched").unwrap();
    assert!(records
        .iter()
        .all(|r| dredge_core::stream_data::detect(&r.data) == dredge_core::stream_data::Encoding::Zstd));
    let data = state.join("record.bin");
    std::fs::write(&data, &records[0].data).unwrap();
    let decoded = Command::new(env!("CARGO_BIN_EXE_dredge")).args(["stream", "decode"]).arg(&data).output().unwrap();
    assert!(decoded.status.success(), "{}", String::from_utf8_lossy(&decoded.stderr));
    let first: Vec<serde_json::Value> =
        String::from_utf8(decoded.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(first[..], lines[..first.len()]);

    // The rejected line is kept where a person can find it.
    let dead: Vec<_> = std::fs::read_dir(state.join("dead-letter/rejected")).unwrap().collect();
    assert_eq!(dead.len(), 1);
}

/// The second chance locally: with only the 2026-11-01 snapshot, nothing
/// vouches for the fleet's owners at the sample's flows (2026-11-18), so
/// those flows wait in the embedded retry queue; once a later snapshot has
/// seen the same owners, `invoke retries` decides them `owner_after_retry`.
#[test]
fn flows_the_table_cannot_vouch_for_wait_and_are_decided_on_a_retry() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path();
    let nis = repo("samples/ec2-describe/describe-network-interfaces.json");
    let instances = repo("samples/ec2-describe/describe-instances.json");
    let import = |at: &str| {
        dredge(state, &["ownership", "import", nis.to_str().unwrap(), instances.to_str().unwrap(), "--at", at]);
    };
    import("2026-11-01T00:00:00Z");
    let event = repo("events/enricher/kinesis-flow-logs.json");
    let ranges = shared_ranges();
    let (event, ranges) = (event.to_str().unwrap(), ranges.to_str().unwrap());
    let now = "2026-11-18T11:10:00Z";
    dredge(state, &["invoke", "enricher", "--event", event, "--ip-ranges", ranges, "--now", now]);
    let read = |state: &Path| -> Vec<serde_json::Value> {
        let out = dredge(state, &["stream", "read", "enriched"]);
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let first = read(state);
    assert!(first.len() < 6, "some flows wait: {}", first.len());
    assert!(state.join("retry-queue.json").exists());
    // Too early: nothing is due yet.
    let out = dredge(state, &["invoke", "retries", "--ip-ranges", ranges, "--now", "2026-11-18T11:11:00Z"]);
    let response: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(response["messages"], 0);
    // A snapshot after the flows sees the same owners; the next try decides.
    import("2026-11-18T11:12:00Z");
    let out = dredge(state, &["invoke", "retries", "--ip-ranges", ranges, "--now", "2026-11-18T11:13:30Z"]);
    let response: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(response["batchItemFailures"], serde_json::json!([]));
    assert!(response["messages"].as_u64().unwrap() > 0);
    let lines = read(state);
    assert_eq!(lines.len(), 6, "every flow once");
    let retried = lines.iter().filter(|l| l["dst_attribution"] == "owner_after_retry").count();
    assert!(retried > 0, "{lines:?}");
    let to = |dst: &str| lines.iter().find(|l| l["dstaddr"] == dst).unwrap_or_else(|| panic!("{dst}"));
    assert_eq!(to("10.20.4.10")["dst_kind"], "load_balancer");
    assert_eq!(to("10.99.0.9")["dst_attribution"], "unattributed");
}

#[test]
fn the_ownership_handler_runs_locally_on_its_sample_events() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path();
    let event = repo("events/ownership/run-instances.json");
    let out = dredge(state, &["invoke", "ownership", "--event", event.to_str().unwrap()]);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["kind"], "RunInstances");
    assert_eq!(summary["result"], "applied");
    assert_eq!(summary["stats"]["opened"], 5);
    // The scheduled reconcile, with describe JSON standing in for EC2.
    let scheduled = repo("events/ownership/scheduled/scheduled-event.json");
    let snapshot = repo("samples/ec2-describe");
    let out = dredge(
        state,
        &["invoke", "ownership", "--event", scheduled.to_str().unwrap(), "--describe", snapshot.to_str().unwrap()],
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["result"], "reconciled");
    assert_eq!(summary["reconcile"]["enis"], 6);
    // The state persisted: the address is owned after the reconcile.
    let out = dredge(state, &["ownership", "lookup", "10.20.17.201", "--scope", "vpc-0a1b2c3d4e5f60789"]);
    let owner: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(owner["kind"], "lambda");
}

/// `events/writer/kinesis-enriched.json` is what the enricher writes for the
/// sample flow-log event (not written by hand), and the writer stages and
/// compacts it into one final object with its manifest.
#[test]
fn the_writer_sample_event_is_the_enrichers_output_and_compacts() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path();
    enrich_the_sample(state);
    let produced = dredge(state, &["stream", "event", "enriched"]).stdout;
    let sample = repo("events/writer/kinesis-enriched.json");
    assert!(
        std::fs::read(&sample).unwrap() == produced,
        "{} is not what the enricher writes now; regenerate it as scripts/run-local does, then\n    \
         dredge stream event enriched --state STATE > events/writer/kinesis-enriched.json",
        sample.display()
    );

    let staged = dredge(state, &["invoke", "writer", "--event", sample.to_str().unwrap()]);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&staged.stdout).unwrap()["batchItemFailures"],
        serde_json::json!([])
    );
    let compacted = dredge(state, &["invoke", "writer", "--compact", "--now", "2026-12-01T00:00:00Z"]);
    let stats: serde_json::Value = serde_json::from_slice(&compacted.stdout).unwrap();
    assert_eq!((stats["hours_compacted"].as_u64(), stats["rows_written"].as_u64()), (Some(1), Some(6)), "{stats}");
    let hour = state.join("s3/dredge-data/flows/dt=2026-11-18/hour=11");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(hour.join("_manifest.json")).unwrap()).unwrap();
    assert_eq!((manifest["rows"].as_u64(), manifest["objects"].as_array().map(Vec::len)), (Some(6), Some(1)));
    assert!(std::fs::read_dir(state.join("s3/dredge-data/staging/flows/dt=2026-11-18/hour=11"))
        .unwrap()
        .next()
        .is_none());
}
