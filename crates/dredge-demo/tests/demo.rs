//! A small seeded demo run end to end: the real handlers, the final
//! Parquet, the score.

use dredge_demo::delays::profile;
use dredge_demo::run::{run, Options};
use dredge_demo::summary::{Counts, Summary};

async fn demo(seed: u64, out: &std::path::Path) -> Summary {
    let options =
        Options { seed, flows: 3_000, churn: 1.0, hours: 2, delays: profile("harsh").unwrap(), out: out.to_path_buf() };
    let mut last = 0;
    let summary = run(&options, &mut |p| {
        assert!(p.flows_done >= last && p.flows_done <= p.flows);
        last = p.flows_done;
    })
    .await
    .unwrap();
    assert_eq!(last, 3_000, "progress reached every flow");
    summary
}

fn sum<'a>(parts: impl Iterator<Item = &'a Counts>) -> Counts {
    let mut total = Counts::default();
    parts.for_each(|c| total.add(c));
    total
}

/// The knowledge horizon and the second chance: on a seeded run with the
/// typical delays, no side gets a wrong owner, and at most 0.5% of the
/// knowable sides are left unattributed.
#[tokio::test]
async fn a_typical_run_gives_no_wrong_owner_and_leaves_few_knowable_sides_unattributed() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        seed: 1,
        flows: 20_000,
        churn: 0.5,
        hours: 4,
        delays: profile("typical").unwrap(),
        out: dir.path().join("typical"),
    };
    let s = run(&options, &mut |_| {}).await.unwrap();
    assert_eq!(s.score.misattributed, 0, "{:?}", s.causes);
    assert!(s.score.knowable > 30_000);
    assert!(s.score.knowable_unattributed * 200 <= s.score.knowable, "{:?}", s.score);
    // The second chance did decide sides, and every wait ended.
    assert!(s.pipeline.owner_after_retry > 0 && s.pipeline.deferred_flows > 0, "{:?}", s.pipeline);
    assert!(s.by_attribution.get("owner_after_retry").is_some_and(|c| c.correct == s.pipeline.owner_after_retry));
    assert!(s.pipeline.heartbeats_written > 0);
}

#[tokio::test]
async fn every_flow_is_scored_once_and_the_score_adds_up() {
    let dir = tempfile::tempdir().unwrap();
    let s = demo(7, &dir.path().join("a")).await;
    // Scoring fails unless the final Parquet holds every flow exactly once.
    assert_eq!(s.rate.flows, 3_000);
    assert_eq!(s.rate.rows, 3_000);
    assert_eq!(s.score.total(), 6_000, "two sides per flow");
    assert_eq!(s.by_side["src"].total(), 3_000);
    assert_eq!(s.by_side["dst"].total(), 3_000);
    for part in [&s.by_side, &s.by_attribution, &s.by_truth] {
        assert_eq!(sum(part.values()), s.score);
    }
    assert_eq!(s.causes.values().sum::<u64>(), s.score.misattributed);
    assert_eq!(s.misattribution_timeline.iter().map(|(_, n)| n).sum::<u64>(), s.score.misattributed);
    assert!(s.score.knowable_unattributed <= s.score.unattributed.min(s.score.knowable));
    assert!(s.setup.events_generated > 0 && s.setup.reconciles > 0 && s.setup.compactions > 0);
    for kind in ["instance", "eni", "aws_service", "internet"] {
        assert!(s.by_truth.get(kind).is_some_and(|c| c.total() > 0), "no {kind} sides");
    }
    assert!(!s.top_pairs.is_empty() && !s.regions.is_empty() && !s.cross_az.is_empty());
    let json = s.score_json();
    for key in ["correct", "unattributed", "misattributed", "knowable", "knowable_unattributed"] {
        assert!(json[key].is_u64(), "{key} is a top-level integer");
    }
    assert_eq!(json["correct"].as_u64(), Some(s.score.correct));

    // The same seed gives the same score.
    let again = demo(7, &dir.path().join("b")).await;
    assert_eq!(again.score, s.score);
    assert_eq!(again.causes, s.causes);
    assert_eq!(again.top_pairs, s.top_pairs);
}

#[tokio::test]
async fn a_folder_that_is_not_a_demo_output_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Cargo.toml"), "[package]").unwrap();
    let options = Options {
        seed: 1,
        flows: 10,
        churn: 0.0,
        hours: 1,
        delays: profile("ideal").unwrap(),
        out: dir.path().to_path_buf(),
    };
    let e = run(&options, &mut |_| {}).await.unwrap_err().to_string();
    assert!(e.contains("refusing to replace"), "{e}");
    assert!(dir.path().join("Cargo.toml").exists());
}
