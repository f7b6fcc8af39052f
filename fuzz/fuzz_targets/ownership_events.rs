//! The EventBridge and CloudTrail event decoders
//! (`dredge_ownership::events`): instance state changes and the CloudTrail
//! API calls that move addresses, from arbitrary JSON.
//!
//! Beyond "no panic":
//! - parsing the text and parsing its JSON value agree (same outcome, or
//!   the same error);
//! - every change of one event carries that event's one time, and that
//!   time survives its own RFC 3339 rendering;
//! - identifiers in changes are never empty (an empty string is absent),
//!   address lists are never empty and hold each address once;
//! - an event that changed nothing (failed, DryRun, unknown) has no
//!   changes.

#![no_main]

use dredge_core::ownership::{Change, UnixTime};
use dredge_ownership::events::{parse_event, parse_event_slice, Outcome};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let from_text = parse_event_slice(data);
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        assert!(from_text.is_err(), "parsed text that is not JSON");
        return;
    };
    let from_value = parse_event(&value);
    let parsed = match (from_text, from_value) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b);
            a
        }
        (Err(a), Err(b)) => {
            assert_eq!(a.to_string(), b.to_string());
            return;
        }
        (a, b) => panic!("text and value parse differently: {a:?} / {b:?}"),
    };
    match &parsed.outcome {
        Outcome::Changes { changes, skipped } => {
            for why in skipped {
                assert!(!why.is_empty());
            }
            let Some(first) = changes.first() else { return };
            let at = first.at();
            let rendered = at.to_string();
            if let Ok(again) = UnixTime::parse_rfc3339(&rendered) {
                assert_eq!(again, at, "{rendered}");
            }
            for change in changes {
                assert_eq!(change.at(), at, "one event, one time: {changes:?}");
                check_change(change);
            }
        }
        Outcome::Ignored(ignored) => {
            let _ = ignored.label();
            assert!(parsed.changes().is_empty());
        }
        Outcome::Unknown => assert!(parsed.changes().is_empty()),
    }
});

fn present(id: &str, what: &str) {
    assert!(!id.is_empty(), "empty {what}");
}

fn check_change(change: &Change) {
    match change {
        Change::EniUp { eni, .. } => {
            present(&eni.eni_id, "eni_id");
            for id in [&eni.instance_id, &eni.attachment_id, &eni.account_id, &eni.region, &eni.vpc_id, &eni.subnet_id]
                .into_iter()
                .flatten()
            {
                present(id, "ENI field");
            }
            for (i, a) in eni.private_addresses.iter().enumerate() {
                assert!(!eni.private_addresses[..i].contains(a), "{a} listed twice");
            }
        }
        Change::EniDeleted { eni_id, .. } => present(eni_id, "eni_id"),
        Change::Attached { eni_id, instance_id, attachment_id, .. } => {
            present(eni_id, "eni_id");
            present(instance_id, "instance_id");
            if let Some(a) = attachment_id {
                present(a, "attachment_id");
            }
        }
        Change::Detached { attachment_id, .. } => present(attachment_id, "attachment_id"),
        Change::AddressesAssigned { eni_id, addresses, .. } | Change::AddressesUnassigned { eni_id, addresses, .. } => {
            present(eni_id, "eni_id");
            assert!(!addresses.is_empty(), "an address change without addresses");
            for (i, a) in addresses.iter().enumerate() {
                assert!(!addresses[..i].contains(a), "{a} listed twice");
            }
        }
        Change::PublicAssociated { public_ip, allocation_id, association_id, eni_id, instance_id, .. } => {
            assert!(eni_id.is_some() || instance_id.is_some(), "associated to nothing");
            assert!(public_ip.is_some() || allocation_id.is_some(), "associated nothing");
            for id in [allocation_id, association_id, eni_id, instance_id].into_iter().flatten() {
                present(id, "association field");
            }
        }
        Change::PublicDisassociated { association_id, public_ip, .. } => {
            assert!(association_id.is_some() || public_ip.is_some(), "disassociated nothing");
            if let Some(a) = association_id {
                present(a, "association_id");
            }
        }
        Change::InstanceDown { instance_id, .. }
        | Change::InstanceStopped { instance_id, .. }
        | Change::InstanceUp { instance_id, .. } => present(instance_id, "instance_id"),
    }
}
