//! One history for any delivery order: the events of every sample scenario
//! in `events/ownership/`, and the demo's own event streams, applied in many
//! random orders with duplicates, give the same intervals every time.

use std::path::Path;

use dredge_core::ownership::{Applier, Change, Interval, MemoryStore, OwnershipStore, TagPolicy};
use dredge_demo::rng::Rng;
use dredge_demo::run::START;
use dredge_demo::wire;
use dredge_demo::world::{self, World};
use dredge_ownership::events::parse_event;

/// How many shuffled deliveries each stream is tried in. Deeper runs
/// (hundreds of orders, more seeds) pass too; these keep the debug test
/// under half a minute.
const ORDERS: usize = 40;
/// The sample scenarios are small: many more orders.
const SAMPLE_ORDERS: usize = 400;

fn samples() -> Vec<Change> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/ownership");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    let mut changes = Vec::new();
    for path in names {
        let event: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let parsed = parse_event(&event).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        changes.extend(parsed.into_changes());
    }
    changes
}

fn demo_changes(seed: u64, churn: f64) -> Vec<Change> {
    let world = World::build(&world::Options { seed, churn, start: START, end: START + 3 * 3600 });
    world
        .events
        .iter()
        .flat_map(|e| parse_event(&wire::event(&world, e)).expect("the demo's events parse").into_changes())
        .collect()
}

/// Every interval of every address, after applying `changes` in `order`.
async fn history(changes: &[Change], order: &[usize]) -> Vec<Interval> {
    let store = MemoryStore::new();
    let applier = Applier::new(&store, TagPolicy::default());
    for &i in order {
        applier.apply(&changes[i]).await.unwrap();
    }
    let mut out = Vec::new();
    for (key, timeline) in store.timelines().await.unwrap() {
        out.extend(timeline.intervals(&key));
    }
    out
}

/// A random order of `0..n` with about one in five changes delivered twice.
fn shuffled(n: usize, rng: &mut Rng) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    for _ in 0..n / 5 {
        order.push(rng.index(n));
    }
    for i in (1..order.len()).rev() {
        order.swap(i, rng.index(i + 1));
    }
    order
}

async fn assert_order_free(name: &str, changes: &[Change], seed: u64, orders: usize) {
    assert!(!changes.is_empty(), "{name}: no changes");
    let in_time: Vec<usize> = {
        let mut o: Vec<usize> = (0..changes.len()).collect();
        o.sort_by_key(|&i| changes[i].at());
        o
    };
    let want = history(changes, &in_time).await;
    assert!(!want.is_empty(), "{name}: no intervals");
    let mut rng = Rng::new(seed);
    for attempt in 0..orders {
        let order = shuffled(changes.len(), &mut rng);
        let got = history(changes, &order).await;
        if got != want {
            let brief = |i: &Interval| {
                let o = &i.owner;
                format!(
                    "{} [{}, {:?}) {} {:?} {:?}",
                    i.address,
                    i.from,
                    i.to.map(|t| t.0),
                    o.eni_id,
                    o.instance_id,
                    o.app
                )
            };
            let missing: Vec<_> = want.iter().filter(|i| !got.contains(i)).map(brief).take(4).collect();
            let extra: Vec<_> = got.iter().filter(|i| !want.contains(i)).map(brief).take(4).collect();
            if std::env::var_os("ANY_ORDER_TRACE").is_some() {
                for &i in &order {
                    eprintln!("{}", serde_json::to_string(&changes[i]).unwrap().chars().take(300).collect::<String>());
                }
            }
            panic!("{name}: order {attempt} differs\n in time order only: {missing:#?}\n this order only: {extra:#?}");
        }
    }
}

#[tokio::test]
async fn the_sample_scenarios_give_one_history_in_any_order() {
    assert_order_free("events/ownership", &samples(), 1, SAMPLE_ORDERS).await;
}

#[tokio::test]
async fn the_demo_event_streams_give_one_history_in_any_order() {
    for (seed, churn) in [(1, 1.0), (2, 2.0), (3, 3.0)] {
        let changes = demo_changes(seed, churn);
        assert_order_free(&format!("demo seed {seed} churn {churn}"), &changes, seed, ORDERS).await;
    }
}
