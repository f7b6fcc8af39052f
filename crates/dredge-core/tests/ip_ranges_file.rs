//! The real `ip-ranges.json` (2026-08-22) from the shared data directory.

use std::path::PathBuf;

use dredge_core::ipranges::{IpRanges, AMAZON};

fn shared_file() -> PathBuf {
    std::env::var_os("DREDGE_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
        .join("aws-ip-ranges.json")
}

#[test]
fn the_published_file_loads_and_answers() {
    let path = shared_file();
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let ranges = IpRanges::from_json(&bytes).unwrap();
    assert_eq!(ranges.len(), 10_668 + 6_160);
    assert_eq!(ranges.create_date, "2026-08-22-15-17-05");

    // Every listed prefix's first address resolves to a range that contains
    // it, and never to AMAZON when a specific service lists the same block.
    let specific: std::collections::HashSet<&str> =
        ranges.ranges().iter().filter(|r| r.service != AMAZON).map(|r| r.prefix.as_str()).collect();
    for r in ranges.ranges() {
        let first: std::net::IpAddr = r.prefix.split('/').next().unwrap().parse().unwrap();
        let found = ranges.lookup(first).unwrap_or_else(|| panic!("{} not found", r.prefix));
        if specific.contains(r.prefix.as_str()) {
            assert_ne!(found.service, AMAZON, "{}", r.prefix);
        }
    }
    assert!(ranges.lookup("10.1.2.3".parse().unwrap()).is_none());
    assert!(ranges.lookup("192.168.0.1".parse().unwrap()).is_none());
}
