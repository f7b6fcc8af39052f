//! The event fixtures (`events/ownership/`) and helpers the tests share.

use std::net::IpAddr;

use dredge_core::ownership::{Change, Eni, UnixTime};
use serde_json::Value;

use super::{parse_event, parse_event_slice, Outcome};

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/ownership/", $name))
    };
}

pub(super) const RUN_INSTANCES: &str = fixture!("run-instances.json");
pub(super) const RUN_INSTANCES_MIXED: &str = fixture!("run-instances-item-and-items.json");
pub(super) const RUN_INSTANCES_ERROR: &str = fixture!("run-instances-error.json");
pub(super) const RUNNING: &str = fixture!("state-change-running.json");
pub(super) const TERMINATED: &str = fixture!("state-change-terminated.json");
pub(super) const TERMINATE: &str = fixture!("terminate-instances.json");
pub(super) const CREATE: &str = fixture!("create-network-interface.json");
pub(super) const CREATE_DRY_RUN: &str = fixture!("create-network-interface-dry-run.json");
pub(super) const DELETE: &str = fixture!("delete-network-interface.json");
pub(super) const ATTACH: &str = fixture!("attach-network-interface.json");
pub(super) const DETACH: &str = fixture!("detach-network-interface.json");
pub(super) const ASSIGN: &str = fixture!("assign-private-ip-addresses.json");
pub(super) const UNASSIGN: &str = fixture!("unassign-private-ip-addresses.json");
pub(super) const ASSIGN6: &str = fixture!("assign-ipv6-addresses.json");
pub(super) const UNASSIGN6: &str = fixture!("unassign-ipv6-addresses.json");
pub(super) const ASSOCIATE: &str = fixture!("associate-address.json");
pub(super) const DISASSOCIATE: &str = fixture!("disassociate-address.json");

pub(super) const INSTANCE: &str = "i-0d4c3b2a1f0e98765";
pub(super) const ENI1: &str = "eni-0a1b2c3d4e5f60001";
pub(super) const ENI2: &str = "eni-0a1b2c3d4e5f60002";
pub(super) const STANDBY: &str = "eni-0c3d4e5f6a7b80003";

pub(super) fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

pub(super) fn t(s: &str) -> UnixTime {
    UnixTime::parse_rfc3339(s).unwrap()
}

pub(super) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub(super) fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| ip(s)).collect()
}

pub(super) fn changes(text: &str) -> Vec<Change> {
    let parsed = parse_event_slice(text.as_bytes()).unwrap();
    match parsed.outcome {
        Outcome::Changes { changes, skipped } => {
            assert!(skipped.is_empty(), "{skipped:?}");
            changes
        }
        other => panic!("{}: {other:?}", parsed.kind),
    }
}

pub(super) fn one(text: &str) -> Change {
    let mut all = changes(text);
    assert_eq!(all.len(), 1, "{all:?}");
    all.pop().unwrap()
}

pub(super) fn first(event: &Value) -> Change {
    parse_event(event).unwrap().into_changes().remove(0)
}

pub(super) fn outcome(value: &Value) -> Outcome {
    parse_event(value).unwrap().outcome
}

pub(super) fn eni_ups(changes: Vec<Change>) -> Vec<(UnixTime, Eni)> {
    changes
        .into_iter()
        .map(|c| match c {
            Change::EniUp { at, eni } => (at, *eni),
            other => panic!("not EniUp: {other:?}"),
        })
        .collect()
}
