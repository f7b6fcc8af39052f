//! `dredge ownership` on the embedded store, with the fixtures in
//! `events/ownership/` and the EC2 snapshot in `samples/ec2-describe/`: the
//! address-reuse story in every delivery order.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const VPC: &str = "vpc-0a1b2c3d4e5f60789";

fn events(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events/ownership").join(name)
}

/// `describe-network-interfaces` / `describe-instances` output.
fn samples(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../samples/ec2-describe").join(name)
}

fn dredge(state: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_dredge"))
        .arg("ownership")
        .arg("--state")
        .arg(state)
        .args(args)
        .env_remove("OWNERSHIP_TABLE")
        .output()
        .expect("run dredge");
    assert!(out.status.success(), "dredge {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn lookup(state: &Path, address: &str, at: &str, scope: &str) -> serde_json::Value {
    let out = dredge(state, &["lookup", address, "--at", at, "--scope", scope]);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The RunInstances fixture relaunched as another app taking 10.20.1.15
/// after api-prod's instance terminated.
fn reuse_event(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(events("run-instances.json")).unwrap();
    let text = text
        .replace("2026-11-03T14:02:", "2026-11-12T04:10:")
        .replace("i-0d4c3b2a1f0e98765", "i-0b0b0b0b0b0b0b0b0")
        .replace("api-prod-v042", "billing-prod-v007")
        .replace("eni-0a1b2c3d4e5f60001", "eni-0b0b0b0b0b0b00001")
        .replace("eni-0a1b2c3d4e5f60002", "eni-0b0b0b0b0b0b00002")
        .replace("eni-attach-0a1b2c3d4e5f6000", "eni-attach-0b0b0b0b0b0b0000");
    let path = dir.join("reuse.json");
    std::fs::write(&path, text).unwrap();
    path
}

fn app(v: &serde_json::Value) -> Option<&str> {
    v.get("app").and_then(|a| a.as_str())
}

#[test]
fn reuse_resolves_by_time_whatever_the_delivery_order() {
    let tmp = tempfile::tempdir().unwrap();
    let reuse = reuse_event(tmp.path());
    let run = events("run-instances.json");
    let terminated = events("state-change-terminated.json");
    let orders: [[&Path; 3]; 3] =
        [[&run, &terminated, &reuse], [&reuse, &terminated, &run], [&terminated, &reuse, &run]];
    for (i, order) in orders.iter().enumerate() {
        let state = tmp.path().join(format!("state-{i}"));
        // Each file applied twice: EventBridge may deliver more than once.
        for file in order.iter().chain(order.iter()) {
            dredge(&state, &["apply", file.to_str().unwrap()]);
        }
        let at = |t: &str| lookup(&state, "10.20.1.15", t, VPC);
        assert!(at("2026-11-03T14:00:00Z").is_null(), "before launch");
        assert_eq!(app(&at("2026-11-05T00:00:00Z")), Some("api"), "order {i}");
        assert_eq!(at("2026-11-05T00:00:00Z")["cluster"], "api-prod");
        assert!(at("2026-11-12T04:00:00Z").is_null(), "in the gap, order {i}");
        assert_eq!(app(&at("2026-11-12T05:00:00Z")), Some("billing"), "order {i}");
        // The same private address in another VPC is someone else's.
        assert!(lookup(&state, "10.20.1.15", "2026-11-05T00:00:00Z", "vpc-0ffffffffffffffff").is_null());
    }
}

#[test]
fn import_reconciles_and_dump_lists_intervals() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    dredge(&state, &["apply", events("run-instances.json").to_str().unwrap()]);
    let snapshot = samples("describe-network-interfaces.json");
    let instances = samples("describe-instances.json");
    let out = dredge(
        &state,
        &["import", snapshot.to_str().unwrap(), instances.to_str().unwrap(), "--at", "2026-11-20T00:00:00Z"],
    );
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(stats["enis"].as_u64().unwrap() > 0);
    assert!(stats["opened"].as_u64().unwrap() > 0);

    let dump = dredge(&state, &["dump"]);
    let intervals: Vec<serde_json::Value> =
        String::from_utf8(dump.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!intervals.is_empty());
    for i in &intervals {
        assert!(i["from"].is_i64() && i["owner"]["eni_id"].is_string(), "{i}");
        if let Some(to) = i["to"].as_i64() {
            assert!(to > i["from"].as_i64().unwrap());
        }
    }
    // Importing the same snapshot again changes nothing.
    let again = dredge(&state, &["import", snapshot.to_str().unwrap(), instances.to_str().unwrap()]);
    let stats: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(stats["opened"], 0, "{stats}");
    assert_eq!(stats["closed"], 0, "{stats}");
}

#[test]
fn private_lookups_need_a_scope_and_times_parse_both_ways() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    dredge(&state, &["apply", events("run-instances.json").to_str().unwrap()]);
    let out = Command::new(env!("CARGO_BIN_EXE_dredge"))
        .args(["ownership", "--state"])
        .arg(&state)
        .args(["lookup", "10.20.1.15"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--scope"));
    let rfc = lookup(&state, "10.20.1.15", "2026-11-05T00:00:00Z", VPC);
    let unix = lookup(&state, "10.20.1.15", "1793750400", VPC);
    assert_eq!(rfc, unix);
    assert_eq!(app(&rfc), Some("api"));
}

/// The same commands on DynamoDB (the moto server `scripts/test` starts).
#[test]
fn the_same_story_on_dynamodb() {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        assert!(std::env::var("CI").map_or(true, |v| v != "true"), "CI=true needs the moto server (scripts/test)");
        eprintln!("the_same_story_on_dynamodb: SKIPPED, no moto server (AWS_ENDPOINT_URL unset); run scripts/test");
        return;
    }
    let table = format!("cli-{}-{}", std::process::id(), std::time::UNIX_EPOCH.elapsed().unwrap().subsec_nanos());
    let run = |args: &[&str]| -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_dredge"))
            .arg("ownership")
            .args(["--table", &table])
            .args(args)
            .output()
            .expect("run dredge");
        assert!(out.status.success(), "dredge {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out
    };
    run(&["create-table"]);
    let tmp = tempfile::tempdir().unwrap();
    let reuse = reuse_event(tmp.path());
    for file in [reuse.clone(), events("state-change-terminated.json"), events("run-instances.json")] {
        run(&["apply", file.to_str().unwrap()]);
    }
    let at = |t: &str| -> serde_json::Value {
        serde_json::from_slice(&run(&["lookup", "10.20.1.15", "--at", t, "--scope", VPC]).stdout).unwrap()
    };
    assert_eq!(app(&at("2026-11-05T00:00:00Z")), Some("api"));
    assert!(at("2026-11-12T04:00:00Z").is_null());
    assert_eq!(app(&at("2026-11-12T05:00:00Z")), Some("billing"));
    let dump = run(&["dump"]);
    assert!(String::from_utf8(dump.stdout).unwrap().lines().count() >= 3);
}
