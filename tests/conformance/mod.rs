//! The ownership store conformance suite: what every `OwnershipStore` must
//! do, with the embedded `MemoryStore` as the reference.
//!
//! Each case is a generic async function taking a factory that builds a
//! fresh, empty store (it may be called several times per case). A test
//! target runs every case against one store type with
//! [`conformance_suite!`]:
//!
//! ```ignore
//! #[macro_use]
//! #[path = "../conformance/mod.rs"]
//! mod conformance;
//!
//! // `setup(case)` returns `Option<factory>`; `None` skips the case.
//! conformance_suite!(setup);
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;

use dredge_core::ownership::{
    AddressKey, Applier, Change, Eni, EniRecord, EniRef, EniWrite, InstanceNote, InstanceNotes, InstanceRecord,
    Interval, Mark, Outcome, Owner, OwnerKind, OwnershipStore, ReconcileStats, Resolution, Scope, Sighting,
    SnapshotScope, StoreResult, TagPolicy, Timeline, UnixTime, ASG_TAG,
};

/// Generates one `#[tokio::test]` per conformance case. `$setup` is an
/// async function `(case name) -> Option<factory>`.
macro_rules! conformance_suite {
    ($setup:path) => {
        conformance_suite!(@cases $setup;
            release_and_reuse_in_every_delivery_order,
            relabels_count_only_inside_their_enis_holding,
            fuller_version_of_a_fact_wins,
            batch_lookup_answers_in_input_order,
            history_longer_than_the_head,
            heads_agree_with_timelines,
            vpc_scopes_never_mix,
            eni_records_by_id_attachment_and_association,
            instance_records_newer_state_wins,
            applier_release_and_reuse_in_any_order,
            applier_reconcile_makes_the_table_agree,
            applier_stop_releases_only_auto_assigned_addresses,
            applier_moves_an_eni_between_applications,
            applier_a_release_learned_after_a_later_attach,
            applier_tells_who_took_an_address_from_the_latest_record,
            applier_retells_every_taking_of_an_address,
            applier_keeps_changes_for_unknown_enis,
            an_instance_end_spares_an_interface_detached_before,
            concurrent_appliers_lose_no_update,
            a_retold_owner_survives_a_lost_race,
            sightings_and_the_reconcile_horizon,
        );
    };
    (@cases $setup:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                if let Some(new_store) = $setup(stringify!($case)).await {
                    crate::conformance::$case(new_store).await;
                }
            }
        )*
    };
}

/// A realistic epoch (2023-11-14T22:13:20Z).
pub const T0: i64 = 1_700_000_000;

pub fn at(t: i64) -> UnixTime {
    UnixTime(t)
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

pub fn in_vpc(vpc: &str, address: &str) -> AddressKey {
    AddressKey::new(Scope::Vpc(vpc.into()), ip(address))
}

pub fn global(address: &str) -> AddressKey {
    AddressKey::new(Scope::Global, ip(address))
}

pub fn owner(eni: &str, app: &str) -> Owner {
    let mut o = Owner::new(eni, OwnerKind::Instance);
    o.app = Some(app.into());
    o.instance_id = Some(format!("i-{eni}"));
    o.tags.insert("team".into(), "flow".into());
    o
}

pub fn open(t: i64, eni: &str, app: &str) -> Mark {
    Mark::Open { at: at(t), owner: owner(eni, app) }
}

pub fn close(t: i64, eni: &str) -> Mark {
    Mark::close(at(t), eni)
}

/// The app of each answer (`None`: no owner).
pub fn apps(answers: &[Option<Owner>]) -> Vec<Option<String>> {
    answers.iter().map(|o| o.as_ref().map(|o| o.app.clone().unwrap_or_else(|| format!("<{}>", o.eni_id)))).collect()
}

fn app(name: &str) -> Option<String> {
    Some(name.to_owned())
}

/// Every ordering of `0..n`.
pub fn permutations(n: usize) -> Vec<Vec<usize>> {
    fn go(prefix: &mut Vec<usize>, n: usize, out: &mut Vec<Vec<usize>>) {
        if prefix.len() == n {
            out.push(prefix.clone());
            return;
        }
        for i in 0..n {
            if !prefix.contains(&i) {
                prefix.push(i);
                go(prefix, n, out);
                prefix.pop();
            }
        }
    }
    let mut out = Vec::new();
    go(&mut Vec::new(), n, &mut out);
    out
}

async fn lookup_apps<S: OwnershipStore>(store: &S, queries: &[(AddressKey, i64)]) -> Vec<Option<String>> {
    let queries: Vec<(AddressKey, UnixTime)> = queries.iter().map(|(k, t)| (k.clone(), at(*t))).collect();
    let answers = store.lookup(&queries).await.expect("lookup");
    assert_eq!(answers.len(), queries.len(), "one answer per query");
    apps(&answers)
}

/// App A (eni-a) holds an address, releases it, app B (eni-b) takes it
/// over: before the release the owner is A, after the reuse B, in the gap
/// nobody; whatever order the three facts arrive in, one at a time or in
/// one call, and however often.
pub async fn release_and_reuse_in_every_delivery_order<S, F, Fut>(new_store: F)
where
    S: OwnershipStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let key = in_vpc("vpc-1", "10.0.0.7");
    let marks = [open(T0, "eni-a", "alpha"), close(T0 + 600, "eni-a"), open(T0 + 900, "eni-b", "beta")];
    let expected = Timeline::from_marks(marks.clone());
    let probes = [
        (T0 - 1, None),
        (T0, app("alpha")),
        (T0 + 599, app("alpha")),
        (T0 + 600, None),
        (T0 + 899, None),
        (T0 + 900, app("beta")),
        (T0 + 400 * 86_400, app("beta")),
    ];
    for order in permutations(marks.len()) {
        for one_call in [false, true] {
            let store = new_store().await;
            let delivery: Vec<(AddressKey, Mark)> = order.iter().map(|i| (key.clone(), marks[*i].clone())).collect();
            if one_call {
                // Each fact twice in one call.
                let twice: Vec<_> = delivery.iter().chain(&delivery).cloned().collect();
                store.put_marks(&twice).await.expect("put_marks");
            } else {
                for m in &delivery {
                    store.put_marks(std::slice::from_ref(m)).await.expect("put_marks");
                }
                // The whole delivery replayed.
                store.put_marks(&delivery).await.expect("replay");
            }
            let queries: Vec<_> = probes.iter().map(|(t, _)| (key.clone(), *t)).collect();
            let want: Vec<_> = probes.iter().map(|(_, a)| a.clone()).collect();
            assert_eq!(lookup_apps(&store, &queries).await, want, "order {order:?}, one call: {one_call}");
            // One at a time gives the same answers as the batch.
            for (t, a) in &probes {
                assert_eq!(&lookup_apps(&store, &[(key.clone(), *t)]).await[0], a, "t={t}, order {order:?}");
            }
            assert_eq!(store.timeline(&key).await.expect("timeline"), expected, "order {order:?}");
            let owned = store.lookup(&[(key.clone(), at(T0 + 1))]).await.expect("lookup");
            assert_eq!(owned[0].as_ref(), Some(&owner("eni-a", "alpha")), "the whole owner comes back");
        }
    }
}

/// An attach or detach relabels what the ENI holds: inside its holding it
/// changes the owner; after the ENI released the address, or another ENI
/// took it, it is void, and ends nobody's interval. Every delivery order
/// (each fact twice), through heads and the history behind them.
pub async fn relabels_count_only_inside_their_enis_holding<S, F, Fut>(new_store: F)
where
    S: OwnershipStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let relabel = |t: i64, eni: &str, app: &str| Mark::relabel(at(t), owner(eni, app));
    let key = in_vpc("vpc-1", "10.0.0.6");
    let marks = [
        open(T0, "eni-a", "bare"),
        relabel(T0 + 100, "eni-a", "alpha"),
        close(T0 + 200, "eni-a"),
        relabel(T0 + 300, "eni-a", "gamma"), // a release learned after it: void
        open(T0 + 400, "eni-b", "beta"),
        relabel(T0 + 500, "eni-a", "delta"), // b holds it: void, b keeps it
        relabel(T0 + 600, "eni-b", "beta2"),
    ];
    let expected = Timeline::from_marks(marks.clone());
    let probes = [
        (T0 + 50, app("bare")),
        (T0 + 150, app("alpha")),
        (T0 + 250, None),
        (T0 + 350, None),
        (T0 + 450, app("beta")),
        (T0 + 550, app("beta")),
        (T0 + 650, app("beta2")),
    ];
    let mut rng = 0x9e37_79b9_u64;
    for round in 0..6 {
        // In order, reversed, then shuffled.
        let mut order: Vec<usize> = (0..marks.len()).collect();
        match round {
            0 => {}
            1 => order.reverse(),
            _ => {
                for i in (1..order.len()).rev() {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    order.swap(i, (rng % (i as u64 + 1)) as usize);
                }
            }
        }
        let store = new_store().await;
        for i in order.iter().chain(&order) {
            store.put_marks(&[(key.clone(), marks[*i].clone())]).await.expect("put_marks");
        }
        assert_eq!(store.timeline(&key).await.expect("timeline"), expected, "order {order:?}");
        let queries: Vec<_> = probes.iter().map(|(t, _)| (key.clone(), *t)).collect();
        let want: Vec<_> = probes.iter().map(|(_, a)| a.clone()).collect();
        assert_eq!(lookup_apps(&store, &queries).await, want, "order {order:?}");
        for (t, a) in &probes {
            assert_eq!(&lookup_apps(&store, &[(key.clone(), *t)]).await[0], a, "t={t}, order {order:?}");
        }
    }
}

/// Two versions of one open (same address, time and ENI): the one whose
/// owner tells more wins, and between equals a fixed order decides, so any
/// arrival order stores the same fact.
pub async fn fuller_version_of_a_fact_wins<S, F, Fut>(new_store: F)
where
    S: OwnershipStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let store = new_store().await;
    let fuller = |t: i64, eni: &str, app: &str| {
        let mut owner = owner(eni, app);
        owner.tags.insert("tier".into(), "web".into());
        Mark::Open { at: at(t), owner }
    };
    let key = in_vpc("vpc-1", "10.0.0.8");
    store.put_marks(&[(key.clone(), open(T0, "eni-a", "alpha"))]).await.expect("put");
    store.put_marks(&[(key.clone(), fuller(T0, "eni-a", "alpha"))]).await.expect("put fuller");
    store.put_marks(&[(key.clone(), open(T0, "eni-a", "alpha"))]).await.expect("put again");
    assert_eq!(store.timeline(&key).await.expect("timeline"), Timeline::from_marks([fuller(T0, "eni-a", "alpha")]));
    assert_eq!(lookup_apps(&store, &[(key.clone(), T0 + 5)]).await, vec![app("alpha")]);

    // As much detail either way: the same one wins in both orders, within
    // one call and across calls.
    let (one, other) = (in_vpc("vpc-1", "10.0.0.9"), in_vpc("vpc-1", "10.0.0.10"));
    store
        .put_marks(&[(one.clone(), open(T0, "eni-b", "first")), (one.clone(), open(T0, "eni-b", "second"))])
        .await
        .expect("put both");
    store.put_marks(&[(other.clone(), open(T0, "eni-b", "second"))]).await.expect("put second");
    store.put_marks(&[(other.clone(), open(T0, "eni-b", "first"))]).await.expect("put first");
    let answers = lookup_apps(&store, &[(one.clone(), T0), (other.clone(), T0)]).await;
    assert_eq!(answers, vec![app("second"), app("second")]);
    assert_eq!(store.timeline(&one).await.expect("timeline").marks().len(), 1);
}

/// Many addresses with different histories, looked up at different times
/// in one call (more than one DynamoDB batch), with repeated and unknown
/// addresses: every answer in the place of its query.
pub async fn batch_lookup_answers_in_input_order<S, F, Fut>(new_store: F)
where
    S: OwnershipStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let store = new_store().await;
    let n: i64 = 150;
    let key = |i: i64| in_vpc("vpc-1", &format!("10.1.{}.{}", i / 200, i % 200 + 1));
    let mut marks = Vec::new();
    for i in 0..n {
        let eni = format!("eni-{i}");
        marks.push((key(i), open(T0 + i, &eni, &format!("app-{i}"))));
        match i % 3 {
            0 => marks.push((key(i), close(T0 + i + 50, &eni))),
            1 => marks.push((key(i), open(T0 + i + 100, &format!("eni-x{i}"), "other"))),
            _ => {}
        }
    }
    store.put_marks(&marks).await.expect("put_marks");

    let mut queries = Vec::new();
    let mut want = Vec::new();
    for i in 0..n {
        queries.push((key(i), T0 + i - 1));
        want.push(None);
        queries.push((key(i), T0 + i + 10));
        want.push(Some(format!("app-{i}")));
        queries.push((key(i), T0 + i + 200));
        want.push(match i % 3 {
            0 => None,
            1 => app("other"),
            _ => Some(format!("app-{i}")),
        });
    }
    for j in 0..10 {
        queries.push((in_vpc("vpc-1", &format!("10.9.9.{j}")), T0 + 10));
        want.push(None);
    }
    // A fixed shuffle, then some queries repeated.
    let len = queries.len();
    let mut order: Vec<usize> = (0..len).collect();
    order.sort_by_key(|i| (i * 7919) % len);
    let mut shuffled: Vec<(AddressKey, i64)> = order.iter().map(|i| queries[*i].clone()).collect();
    let mut expected: Vec<Option<String>> = order.iter().map(|i| want[*i].clone()).collect();
    for i in (0..len).step_by(37) {
        shuffled.push(shuffled[i].clone());
        expected.push(expected[i].clone());
    }
    assert_eq!(lookup_apps(&store, &shuffled).await, expected);
    assert_eq!(store.lookup(&[]).await.expect("empty lookup"), Vec::<Option<Owner>>::new());
}

/// An address reused far more often than any store keeps in a summary:
/// lookups in the distant past are still right, even when the oldest facts
/// arrive last.
pub async fn history_longer_than_the_head<S, F, Fut>(new_store: F)
where
    S: OwnershipStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let store = new_store().await;
    let key = global("54.10.20.30");
    let cycles = 40;
    let mut marks = Vec::new();
    for c in 0..cycles {
        let eni = format!("eni-{c}");
        marks.push(open(T0 + c * 100, &eni, &format!("app-{c}")));
        marks.push(close(T0 + c * 100 + 60, &eni));
    }
    // Newest first, in uneven chunks, then everything again.
    let newest_first: Vec<(AddressKey, Mark)> = marks.iter().rev().map(|m| (key.clone(), m.clone())).collect();
    for chunk in newest_first.chunks(7) {
        store.put_marks(chunk).await.expect("put_marks");
    }
    store.put_marks(&newest_first).await.expect("replay");

    let mut queries = vec![(key.clone(), T0 - 5)];
    let mut want = vec![None];
    for c in 0..cycles {
        queries.push((key.clone(), T0 + c * 100 + 30));
        want.push(Some(format!("app-{c}")));
        queries.push((key.clone(), T0 + c * 100 + 80));
        want.push(None);
    }
    assert_eq!(lookup_apps(&store, &queries).await, want);
    for c in [0, 1, 17, cycles - 1] {
        assert_eq!(lookup_apps(&store, &[(key.clone(), T0 + c * 100)]).await, vec![Some(format!("app-{c}"))]);
    }
    assert_eq!(store.timeline(&key).await.expect("timeline"), Timeline::from_marks(marks));

    // A current owner after a long history.
    store.put_marks(&[(key.clone(), open(T0 + 10_000, "eni-now", "now"))]).await.expect("put");
    let answers =
        lookup_apps(&store, &[(key.clone(), T0 + 20_000), (key.clone(), T0 + 130), (key.clone(), T0 + 170)]).await;
    assert_eq!(answers, vec![app("now"), app("app-1"), None]);
}

/// What a cache holds: each head is the latest part of the address's
/// timeline, says whether it is all of it, and resolves every time it
/// covers like the full history; an address without marks has an empty,
/// complete head.
pub async fn heads_agree_with_timelines<S, F, Fut>(new_store: F)
where
    S: OwnershipStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let store = new_store().await;
    let short = global("54.10.20.40");
    let long = global("54.10.20.41");
    let empty = global("54.10.20.42");
    store.put_marks(&[(short.clone(), open(T0, "eni-a", "a"))]).await.expect("put");
    let mut marks = Vec::new();
    for c in 0..30 {
        let eni = format!("eni-{c}");
        marks.push((long.clone(), open(T0 + c * 100, &eni, &format!("app-{c}"))));
        marks.push((long.clone(), close(T0 + c * 100 + 60, &eni)));
    }
    store.put_marks(&marks).await.expect("put");
    let heads = store.heads(&[short.clone(), long.clone(), empty.clone(), short.clone()]).await.expect("heads");
    assert_eq!(heads.len(), 4, "one head per key asked, repeats included");
    assert_eq!(heads[0], heads[3]);
    for (key, head) in [&short, &long, &empty].into_iter().zip(&heads) {
        let full = store.timeline(key).await.expect("timeline");
        let n = head.timeline.marks().len();
        assert_eq!(head.timeline.marks(), &full.marks()[full.marks().len() - n..], "{key}: the latest marks");
        assert_eq!(head.complete, n == full.marks().len(), "{key}: complete iff nothing is left out");
        for t in (T0 - 100..T0 + 3_100).step_by(10) {
            match head.timeline.resolve(at(t), head.complete) {
                Resolution::Unknown => assert!(!head.complete),
                Resolution::Owned(o) => assert_eq!(Some(o), full.owner_at(at(t)), "{key} at {t}"),
                Resolution::Free => assert_eq!(full.owner_at(at(t)), None, "{key} at {t}"),
            }
        }
    }
    assert!(heads[0].complete && heads[2].complete && heads[2].timeline.is_empty());
}

/// Private addresses repeat across VPCs: the same address in two VPCs has
/// two independent histories, and public addresses live in the global
/// scope.
pub async fn vpc_scopes_never_mix<S, F, Fut>(new_store: F)
where
    S: OwnershipStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let store = new_store().await;
    let a = in_vpc("vpc-1", "10.0.0.5");
    let b = in_vpc("vpc-2", "10.0.0.5");
    let public = global("54.1.2.3");
    store
        .put_marks(&[
            (a.clone(), open(T0, "eni-a", "alpha")),
            (b.clone(), open(T0 + 10, "eni-b", "beta")),
            (public.clone(), open(T0, "eni-c", "gamma")),
        ])
        .await
        .expect("put_marks");
    store.put_marks(&[(a.clone(), close(T0 + 100, "eni-a"))]).await.expect("close in vpc-1");
    // A close naming vpc-2's ENI in vpc-1 changes nothing in vpc-2.
    store.put_marks(&[(a.clone(), close(T0 + 150, "eni-b"))]).await.expect("stray close");

    let answers = lookup_apps(
        &store,
        &[
            (a.clone(), T0 + 50),
            (b.clone(), T0 + 50),
            (a.clone(), T0 + 200),
            (b.clone(), T0 + 200),
            (b.clone(), T0 + 5),
            (in_vpc("vpc-3", "10.0.0.5"), T0 + 50),
            (public.clone(), T0 + 50),
            (in_vpc("vpc-1", "54.1.2.3"), T0 + 50),
            (global("10.0.0.5"), T0 + 50),
        ],
    )
    .await;
    assert_eq!(answers, vec![app("alpha"), app("beta"), None, app("beta"), None, None, app("gamma"), None, None]);

    let all: BTreeMap<String, Timeline> =
        store.timelines().await.expect("timelines").into_iter().map(|(k, t)| (k.to_string(), t)).collect();
    let want: BTreeMap<String, Timeline> = [
        (
            a.to_string(),
            Timeline::from_marks([open(T0, "eni-a", "alpha"), close(T0 + 100, "eni-a"), close(T0 + 150, "eni-b")]),
        ),
        (b.to_string(), Timeline::from_marks([open(T0 + 10, "eni-b", "beta")])),
        (public.to_string(), Timeline::from_marks([open(T0, "eni-c", "gamma")])),
    ]
    .into();
    assert_eq!(all, want);
    assert_eq!(store.timeline(&in_vpc("vpc-3", "10.0.0.5")).await.expect("timeline"), Timeline::new());
}

fn eni_record(id: &str, instance: Option<&str>, attachment: Option<&str>, updated: i64) -> EniRecord {
    let mut eni = Eni::new(id);
    eni.vpc_id = Some("vpc-1".into());
    eni.subnet_id = Some("subnet-1".into());
    eni.instance_id = instance.map(str::to_owned);
    eni.attachment_id = attachment.map(str::to_owned);
    eni.private_addresses = vec![ip("10.0.0.1")];
    EniRecord::new(eni, at(updated))
}

fn sorted(mut records: Vec<EniRecord>) -> Vec<EniRecord> {
    records.sort_by(|a, b| a.eni.eni_id.cmp(&b.eni.eni_id));
    records
}

/// ENI records are found by id, by their current attachment and public IP
/// association, and by the instance they are attached to; stale
/// attachments and associations find nothing.
pub async fn eni_records_by_id_attachment_and_association<S, F, Fut>(new_store: F)
where
    S: OwnershipStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let store = new_store().await;
    let mut r1 = eni_record("eni-1", Some("i-1"), Some("eni-attach-1"), T0);
    r1.associations.insert("eipassoc-1".into(), ip("54.0.0.1"));
    r1.eni.public_addresses = vec![ip("54.0.0.1")];
    r1.eni.tags.insert(ASG_TAG.into(), "api-prod-v001".into());
    let mut r2 = eni_record("eni-2", Some("i-1"), Some("eni-attach-2"), T0 + 1);
    let mut r3 = eni_record("eni-3", None, None, T0 + 2);
    for r in [&mut r1, &mut r2, &mut r3] {
        assert_eq!(store.put_eni(r).await.expect("put_eni"), EniWrite::Written);
        // Stored as the next version.
        r.version += 1;
    }
    let by = |r: EniRef| {
        let store = &store;
        async move { store.eni(&r).await.expect("eni") }
    };
    assert_eq!(by(EniRef::Id("eni-1".into())).await, Some(r1.clone()));
    assert_eq!(by(EniRef::Id("eni-3".into())).await, Some(r3.clone()));
    assert_eq!(by(EniRef::Attachment("eni-attach-2".into())).await, Some(r2.clone()));
    assert_eq!(by(EniRef::Association("eipassoc-1".into())).await, Some(r1.clone()));
    assert_eq!(by(EniRef::Id("eni-404".into())).await, None);
    assert_eq!(by(EniRef::Attachment("eni-attach-404".into())).await, None);
    assert_eq!(by(EniRef::Association("eipassoc-404".into())).await, None);
    assert_eq!(sorted(store.enis_of_instance("i-1").await.expect("of i-1")), vec![r1.clone(), r2.clone()]);
    assert_eq!(store.enis_of_instance("i-2").await.expect("of i-2"), vec![]);
    assert_eq!(sorted(store.enis().await.expect("enis")), vec![r1.clone(), r2.clone(), r3.clone()]);

    // eni-1 moves to i-2 under a new attachment and loses its association;
    // eni-2 is detached; eni-3 is deleted.
    let mut moved = r1.clone();
    moved.eni.instance_id = Some("i-2".into());
    moved.eni.attachment_id = Some("eni-attach-9".into());
    moved.associations.clear();
    moved.eni.public_addresses.clear();
    moved.updated_at = at(T0 + 100);
    let mut detached = r2.clone();
    detached.eni.instance_id = None;
    detached.eni.attachment_id = None;
    detached.updated_at = at(T0 + 100);
    let mut deleted = r3.clone();
    deleted.deleted_at = Some(at(T0 + 200));
    for r in [&mut moved, &mut detached, &mut deleted] {
        assert_eq!(store.put_eni(r).await.expect("put_eni"), EniWrite::Written);
        r.version += 1;
    }
    // A write over a version no longer stored changes nothing.
    let stale = EniRecord { updated_at: at(T0 + 300), ..r1.clone() };
    assert_eq!(store.put_eni(&stale).await.expect("stale put_eni"), EniWrite::Conflict);
    let fresh = EniRecord { version: 0, ..eni_record("eni-1", None, None, T0 + 300) };
    assert_eq!(store.put_eni(&fresh).await.expect("put_eni as new"), EniWrite::Conflict, "it exists");
    assert_eq!(by(EniRef::Id("eni-1".into())).await, Some(moved.clone()));
    assert_eq!(by(EniRef::Attachment("eni-attach-1".into())).await, None, "old attachment");
    assert_eq!(by(EniRef::Attachment("eni-attach-2".into())).await, None, "detached");
    assert_eq!(by(EniRef::Attachment("eni-attach-9".into())).await, Some(moved.clone()));
    assert_eq!(by(EniRef::Association("eipassoc-1".into())).await, None, "disassociated");
    assert_eq!(by(EniRef::Id("eni-3".into())).await, Some(deleted.clone()));
    assert_eq!(store.enis_of_instance("i-1").await.expect("of i-1"), vec![]);
    assert_eq!(store.enis_of_instance("i-2").await.expect("of i-2"), vec![moved.clone()]);
    let ids: Vec<String> = ["eni-3", "eni-unknown", "eni-1", "eni-3"].map(String::from).into();
    assert_eq!(
        store.enis_by_id(&ids).await.expect("enis_by_id"),
        vec![Some(deleted.clone()), None, Some(moved.clone()), Some(deleted.clone())],
        "in order, unknown as None, repeats allowed"
    );
    assert_eq!(sorted(store.enis().await.expect("enis")), vec![moved, detached, deleted]);
}

/// An instance record keeps the newest running state, and the earliest
/// end once the instance goes away.
pub async fn instance_records_newer_state_wins<S, F, Fut>(new_store: F)
where
    S: OwnershipStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let store = new_store().await;
    let rec = |running: bool, t: i64| InstanceRecord { instance_id: "i-1".into(), running, changed_at: at(t) };
    assert_eq!(store.instance("i-1").await.expect("instance"), None);
    store.put_instance(&rec(true, T0)).await.expect("put");
    assert_eq!(store.instance("i-1").await.expect("instance"), Some(rec(true, T0)));
    store.put_instance(&rec(true, T0 + 100)).await.expect("put newer running");
    store.put_instance(&rec(true, T0 + 50)).await.expect("put older running");
    assert_eq!(store.instance("i-1").await.expect("instance"), Some(rec(true, T0 + 100)));
    store.put_instance(&rec(false, T0 + 200)).await.expect("put down");
    store.put_instance(&rec(true, T0 + 250)).await.expect("put running after down");
    store.put_instance(&rec(false, T0 + 200)).await.expect("replay");
    assert_eq!(store.instance("i-1").await.expect("instance"), Some(rec(false, T0 + 200)), "going away is final");
    // `shutting-down` learned after `terminated`: the earliest end wins.
    store.put_instance(&rec(false, T0 + 150)).await.expect("put earlier down");
    store.put_instance(&rec(false, T0 + 300)).await.expect("put later down");
    assert_eq!(store.instance("i-1").await.expect("instance"), Some(rec(false, T0 + 150)));
    assert_eq!(store.instance("i-2").await.expect("other instance"), None);
}

fn instance_eni(id: &str, instance: &str, asg: &str, address: &str) -> Eni {
    let mut eni = Eni::new(id);
    eni.account_id = Some("111111111111".into());
    eni.region = Some("us-east-1".into());
    eni.az = Some("us-east-1a".into());
    eni.vpc_id = Some("vpc-1".into());
    eni.subnet_id = Some("subnet-1".into());
    eni.interface_type = Some("interface".into());
    eni.instance_id = Some(instance.into());
    eni.attachment_id = Some(format!("eni-attach-{id}"));
    eni.private_addresses = vec![ip(address)];
    eni.tags.insert(ASG_TAG.into(), asg.into());
    eni.tags.insert("team".into(), "flow".into());
    eni
}

/// The ownership logic end to end: app alpha's instance comes up, is
/// terminated, and beta's new instance gets the same address, whatever
/// order the events are processed in and however often.
pub async fn applier_release_and_reuse_in_any_order<S, F, Fut>(new_store: F)
where
    S: OwnershipStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let address = "10.0.0.9";
    let key = in_vpc("vpc-1", address);
    let changes = [
        Change::EniUp { at: at(T0), eni: Box::new(instance_eni("eni-a", "i-a", "alpha-prod-v001", address)) },
        Change::InstanceDown { at: at(T0 + 600), instance_id: "i-a".into() },
        Change::EniUp { at: at(T0 + 900), eni: Box::new(instance_eni("eni-b", "i-b", "beta-prod-v002", address)) },
    ];
    let mut reference: Option<Timeline> = None;
    for order in permutations(changes.len()) {
        let store = new_store().await;
        let applier = Applier::new(&store, TagPolicy::default());
        let mut outcomes = Vec::new();
        for i in &order {
            outcomes.push((*i, applier.apply(&changes[*i]).await.expect("apply")));
        }
        if order == [0, 1, 2] {
            let applied = |opened, closed| Outcome::Applied { opened, closed, unscoped: 0 };
            let got: Vec<_> = outcomes.iter().map(|(_, o)| o.clone()).collect();
            assert_eq!(got, vec![applied(1, 0), applied(0, 1), applied(1, 0)]);
        }
        // Everything again: changes nothing.
        for change in &changes {
            applier.apply(change).await.expect("replay");
        }
        let answers = lookup_apps(
            &store,
            &[(key.clone(), T0 - 1), (key.clone(), T0 + 1), (key.clone(), T0 + 700), (key.clone(), T0 + 1000)],
        )
        .await;
        assert_eq!(answers, vec![None, app("alpha"), None, app("beta")], "order {order:?}");
        let now = store.lookup(&[(key.clone(), at(T0 + 1000))]).await.expect("lookup")[0].clone().expect("owner");
        assert_eq!(
            (now.eni_id.as_str(), now.cluster.as_deref(), now.instance_id.as_deref(), now.kind),
            ("eni-b", Some("beta-prod"), Some("i-b"), OwnerKind::Instance)
        );
        assert_eq!(
            store.instance("i-a").await.expect("instance").map(|r| (r.running, r.changed_at)),
            Some((false, at(T0 + 600)))
        );
        assert_eq!(
            store
                .enis_of_instance("i-a")
                .await
                .expect("enis_of_instance")
                .iter()
                .map(|r| r.eni.eni_id.clone())
                .collect::<Vec<_>>(),
            vec!["eni-a".to_owned()]
        );
        let timeline = store.timeline(&key).await.expect("timeline");
        match &reference {
            None => reference = Some(timeline),
            Some(r) => assert_eq!(&timeline, r, "order {order:?} converges"),
        }
    }
}

/// Reconciling with a snapshot that disagrees with the table: addresses the
/// table lacks or gives another owner are opened, owners the snapshot no
/// longer has are closed (only inside the snapshot's account), agreeing ones
/// are left alone; a second run changes nothing.
pub async fn applier_reconcile_makes_the_table_agree<S, F, Fut>(new_store: F)
where
    S: OwnershipStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let store = new_store().await;
    let applier = Applier::new(&store, TagPolicy::default());
    let keep = instance_eni("eni-keep", "i-1", "keep-prod-v001", "10.0.0.1");
    let gone = instance_eni("eni-gone", "i-2", "gone-prod-v001", "10.0.0.2");
    let moved_old = instance_eni("eni-old", "i-3", "old-prod-v001", "10.0.0.3");
    let mut foreign = instance_eni("eni-foreign", "i-4", "foreign-prod-v001", "10.0.0.5");
    foreign.account_id = Some("222222222222".into());
    for eni in [&keep, &gone, &moved_old, &foreign] {
        applier.apply(&Change::EniUp { at: at(T0), eni: Box::new(eni.clone()) }).await.expect("seed");
    }
    let new = instance_eni("eni-new", "i-5", "new-prod-v001", "10.0.0.4");
    let moved_new = instance_eni("eni-moved", "i-6", "moved-prod-v001", "10.0.0.3");
    let snapshot = vec![keep.clone(), new.clone(), moved_new.clone()];
    let scope = SnapshotScope { account_id: Some("111111111111".into()), region: Some("us-east-1".into()) };
    let t1 = T0 + 3600;

    let stats = applier.reconcile(&snapshot, at(t1), &scope).await.expect("reconcile");
    assert_eq!(stats, ReconcileStats { enis: 3, addresses: 3, unchanged: 1, opened: 2, closed: 1, unscoped: 0 });

    let k = |a: &str| in_vpc("vpc-1", a);
    let answers = lookup_apps(
        &store,
        &[
            (k("10.0.0.1"), t1),
            (k("10.0.0.2"), t1),
            (k("10.0.0.3"), t1),
            (k("10.0.0.4"), t1),
            (k("10.0.0.5"), t1),
            (k("10.0.0.2"), T0 + 10),
            (k("10.0.0.3"), T0 + 10),
            (k("10.0.0.4"), T0 + 10),
        ],
    )
    .await;
    assert_eq!(
        answers,
        vec![app("keep"), None, app("moved"), app("new"), app("foreign"), app("gone"), app("old"), None]
    );
    let record = store.eni(&EniRef::Id("eni-new".into())).await.expect("eni").expect("recorded");
    assert_eq!((record.eni, record.updated_at), (new.clone(), at(t1)));
    assert_eq!(store.timeline(&k("10.0.0.1")).await.expect("timeline").marks().len(), 1, "agreeing address untouched");

    let again = applier.reconcile(&snapshot, at(t1 + 60), &scope).await.expect("reconcile again");
    assert_eq!(again, ReconcileStats { enis: 3, addresses: 3, unchanged: 3, opened: 0, closed: 0, unscoped: 0 });
}

/// A stop gives the auto-assigned public address back to Amazon; the
/// private address and the Elastic IP stay; the restart does not bring the
/// released address back.
pub async fn applier_stop_releases_only_auto_assigned_addresses<S, F, Fut>(new_store: F)
where
    S: OwnershipStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let store = new_store().await;
    let applier = Applier::new(&store, TagPolicy::default());
    let mut eni = instance_eni("eni-s", "i-s", "stop-prod-v001", "10.0.0.40");
    eni.public_addresses = vec![ip("54.0.0.40"), ip("3.0.0.40")];
    eni.elastic_addresses = vec![ip("3.0.0.40")];
    applier.apply(&Change::EniUp { at: at(T0), eni: Box::new(eni) }).await.expect("up");
    let stop = Change::InstanceStopped { at: at(T0 + 100), instance_id: "i-s".into() };
    assert_eq!(applier.apply(&stop).await.expect("stop"), Outcome::Applied { opened: 0, closed: 1, unscoped: 0 });
    let start = Change::InstanceUp { at: at(T0 + 200), instance_id: "i-s".into() };
    assert_eq!(applier.apply(&start).await.expect("start"), Outcome::NeedsDescribe { instance_id: "i-s".into() });
    let public = |a: &str| AddressKey::new(Scope::Global, ip(a));
    let answers = lookup_apps(
        &store,
        &[
            (public("54.0.0.40"), T0 + 50),
            (public("54.0.0.40"), T0 + 150),
            (public("54.0.0.40"), T0 + 250),
            (public("3.0.0.40"), T0 + 150),
            (in_vpc("vpc-1", "10.0.0.40"), T0 + 150),
        ],
    )
    .await;
    let stop_app = Some("stop".to_owned());
    assert_eq!(answers, vec![stop_app.clone(), None, None, stop_app.clone(), stop_app]);
}

/// A floating ENI attached to one application's instance, detached, then
/// attached to another's: each owner from its attach, none in between,
/// whatever order the events arrive in (the ENI's creation last, the
/// detach before its attach, the second attach first).
pub async fn applier_moves_an_eni_between_applications<S, F, Fut>(new_store: F)
where
    S: OwnershipStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let changes = [
        floating(T0 + 10, "eni-f", "10.0.0.43"),
        attach(T0 + 100, "eni-f", "i-a", "att-f1"),
        Change::Detached { at: at(T0 + 200), attachment_id: "att-f1".into() },
        attach(T0 + 300, "eni-f", "i-b", "att-f2"),
    ];
    for order in [[0, 1, 2, 3], [3, 2, 1, 0], [2, 3, 0, 1], [1, 3, 2, 0]] {
        let store = new_store().await;
        let applier = Applier::new(&store, TagPolicy::default());
        for (id, instance, asg, address) in
            [("eni-a", "i-a", "alpha-prod-v001", "10.0.0.41"), ("eni-b", "i-b", "beta-prod-v001", "10.0.0.42")]
        {
            let mut eni = instance_eni(id, instance, asg, address);
            eni.tags.insert("app".into(), asg.split('-').next().unwrap_or_default().into());
            applier.apply(&Change::EniUp { at: at(T0), eni: Box::new(eni) }).await.expect("up");
        }
        for i in order {
            applier.apply(&changes[i]).await.expect("apply");
        }
        let k = in_vpc("vpc-1", "10.0.0.43");
        let answers = lookup_apps(&store, &[(k.clone(), T0 + 150), (k.clone(), T0 + 250), (k, T0 + 350)]).await;
        // Detached, the ENI holds its address as a bare interface: no app.
        let want = vec![Some("alpha".to_owned()), Some("<eni-f>".to_owned()), Some("beta".to_owned())];
        assert_eq!(answers, want, "order {order:?}");
    }
}

/// An address assigned to a floating ENI and unassigned, and the ENI then
/// attached to an application's instance: the attach, learned before the
/// unassign (or before the assign), does not give the address back. Every
/// delivery order.
pub async fn applier_a_release_learned_after_a_later_attach<S, F, Fut>(new_store: F)
where
    S: OwnershipStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let secondary = ip("10.0.0.45");
    let changes = [
        floating(T0 + 10, "eni-g", "10.0.0.44"),
        Change::AddressesAssigned { at: at(T0 + 50), eni_id: "eni-g".into(), addresses: vec![secondary] },
        Change::AddressesUnassigned { at: at(T0 + 150), eni_id: "eni-g".into(), addresses: vec![secondary] },
        attach(T0 + 200, "eni-g", "i-a", "att-g1"),
    ];
    let (primary, second) = (in_vpc("vpc-1", "10.0.0.44"), in_vpc("vpc-1", "10.0.0.45"));
    let probes = [
        (primary.clone(), T0 + 100),
        (primary.clone(), T0 + 250),
        (second.clone(), T0 + 100),
        (second.clone(), T0 + 160),
        (second.clone(), T0 + 250),
    ];
    let setup = [app_instance("eni-a", "i-a", "alpha", "10.0.0.41")];
    let want = [app("<eni-g>"), app("alpha"), app("<eni-g>"), None, None];
    let orders = permutations(changes.len());
    assert_order_free(new_store, &setup, &changes, orders, &probes, &want, &[primary, second]).await;
}

/// An address assigned to an interface between two instances (detached
/// from one, not yet attached to the next), with a description that shows
/// only the second attachment: whatever the order, the owner it was taken
/// by is the bare interface, told again by each record that changes the
/// answer, and the last telling wins (its basis).
pub async fn applier_tells_who_took_an_address_from_the_latest_record<S, F, Fut>(new_store: F)
where
    S: OwnershipStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let secondary = ip("10.0.0.45");
    let changes = [
        floating(T0 + 10, "eni-g", "10.0.0.44"),
        attach(T0 + 20, "eni-g", "i-a", "att-g1"),
        Change::Detached { at: at(T0 + 40), attachment_id: "att-g1".into() },
        Change::AddressesAssigned { at: at(T0 + 50), eni_id: "eni-g".into(), addresses: vec![secondary] },
        attach(T0 + 100, "eni-g", "i-b", "att-g2"),
        described_attached(T0 + 300, "eni-g", &[ip("10.0.0.44"), secondary], "i-b", "att-g2"),
    ];
    let (primary, second) = (in_vpc("vpc-1", "10.0.0.44"), in_vpc("vpc-1", "10.0.0.45"));
    let probes = [
        (primary.clone(), T0 + 30),
        (primary.clone(), T0 + 45),
        (second.clone(), T0 + 45),
        (second.clone(), T0 + 60),
        (second.clone(), T0 + 150),
    ];
    let setup = [app_instance("eni-a", "i-a", "alpha", "10.0.1.1"), app_instance("eni-b", "i-b", "beta", "10.0.1.2")];
    let want = [app("alpha"), app("<eni-g>"), None, app("<eni-g>"), app("beta")];
    // A sample of the 720 orders, the same every run.
    let orders = permutations(changes.len()).into_iter().step_by(23);
    assert_order_free(new_store, &setup, &changes, orders, &probes, &want, &[primary, second]).await;
}

/// An address assigned, released and assigned again to an interface
/// attached to an application's instance only later, with a description
/// that shows the attachment: an attach learned after both assigns retells
/// each (the record keeps every taking, not only the latest), so both
/// holdings are the bare interface's, in every order.
pub async fn applier_retells_every_taking_of_an_address<S, F, Fut>(new_store: F)
where
    S: OwnershipStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let secondary = ip("10.0.0.45");
    let assign =
        |t: i64| Change::AddressesAssigned { at: at(T0 + t), eni_id: "eni-g".into(), addresses: vec![secondary] };
    let changes = [
        assign(50),
        Change::AddressesUnassigned { at: at(T0 + 100), eni_id: "eni-g".into(), addresses: vec![secondary] },
        assign(150),
        attach(T0 + 200, "eni-g", "i-a", "att-g1"),
        described_attached(T0 + 300, "eni-g", &[ip("10.0.0.44"), secondary], "i-a", "att-g1"),
    ];
    let second = in_vpc("vpc-1", "10.0.0.45");
    let probes =
        [(second.clone(), T0 + 60), (second.clone(), T0 + 120), (second.clone(), T0 + 160), (second.clone(), T0 + 250)];
    let setup = [app_instance("eni-a", "i-a", "alpha", "10.0.1.1"), floating(T0 + 10, "eni-g", "10.0.0.44")];
    let want = [app("<eni-g>"), None, app("<eni-g>"), app("alpha")];
    // A sample of the 120 orders, the same every run.
    let orders = permutations(changes.len()).into_iter().step_by(7);
    assert_order_free(new_store, &setup, &changes, orders, &probes, &want, &[second]).await;
}

/// An application's instance and its interface, up at `T0`: attached
/// owners take its app.
fn app_instance(id: &str, instance: &str, app: &str, address: &str) -> Change {
    let mut eni = instance_eni(id, instance, &format!("{app}-prod-v001"), address);
    eni.tags.insert("app".into(), app.into());
    Change::EniUp { at: at(T0), eni: Box::new(eni) }
}

/// Applies `setup`, then `changes` in each of `orders`, each on a fresh
/// store: every order answers `probes` with `want` and gives the same
/// intervals for `keys`.
async fn assert_order_free<S, F, Fut>(
    new_store: F,
    setup: &[Change],
    changes: &[Change],
    orders: impl IntoIterator<Item = Vec<usize>>,
    probes: &[(AddressKey, i64)],
    want: &[Option<String>],
    keys: &[AddressKey],
) where
    S: OwnershipStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let mut histories: Vec<(Vec<usize>, Vec<Vec<Interval>>)> = Vec::new();
    for order in orders {
        let store = new_store().await;
        let applier = Applier::new(&store, TagPolicy::default());
        for change in setup.iter().chain(order.iter().map(|i| &changes[*i])) {
            applier.apply(change).await.expect("apply");
        }
        assert_eq!(lookup_apps(&store, probes).await, want, "order {order:?}");
        let mut history = Vec::new();
        for key in keys {
            history.push(store.timeline(key).await.expect("timeline").intervals(key));
        }
        histories.push((order, history));
    }
    for (order, h) in &histories {
        assert_eq!(h, &histories[0].1, "order {order:?} gives the same intervals as {:?}", histories[0].0);
    }
}

/// A bare interface in `vpc-1` holding `address`, created at `t`.
fn floating(t: i64, id: &str, address: &str) -> Change {
    let mut eni = Eni::new(id);
    eni.vpc_id = Some("vpc-1".into());
    eni.private_addresses = vec![ip(address)];
    Change::EniUp { at: at(t), eni: Box::new(eni) }
}

/// `id` in `vpc-1` described at `t` holding `addresses`, attached to
/// `instance` by `attachment`.
fn described_attached(t: i64, id: &str, addresses: &[IpAddr], instance: &str, attachment: &str) -> Change {
    let mut eni = Eni::new(id);
    eni.vpc_id = Some("vpc-1".into());
    eni.private_addresses = addresses.to_vec();
    eni.instance_id = Some(instance.into());
    eni.attachment_id = Some(attachment.into());
    Change::EniUp { at: at(t), eni: Box::new(eni) }
}

fn attach(t: i64, eni: &str, instance: &str, attachment: &str) -> Change {
    Change::Attached {
        at: at(t),
        eni_id: eni.into(),
        instance_id: instance.into(),
        attachment_id: Some(attachment.into()),
    }
}

/// An instance's termination ends its interfaces' addresses, but not an
/// interface's that was detached from it before, even when the
/// termination is learned first.
pub async fn an_instance_end_spares_an_interface_detached_before<S, F, Fut>(new_store: F)
where
    S: OwnershipStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let changes = [
        floating(T0 + 10, "eni-d", "10.0.0.45"),
        attach(T0 + 100, "eni-d", "i-end", "att-d"),
        Change::Detached { at: at(T0 + 200), attachment_id: "att-d".into() },
        Change::InstanceDown { at: at(T0 + 300), instance_id: "i-end".into() },
    ];
    for order in [[0, 1, 2, 3], [3, 0, 1, 2], [3, 2, 1, 0], [0, 3, 1, 2]] {
        let store = new_store().await;
        let applier = Applier::new(&store, TagPolicy::default());
        let main = instance_eni("eni-m", "i-end", "end-prod-v001", "10.0.0.44");
        applier.apply(&Change::EniUp { at: at(T0), eni: Box::new(main) }).await.expect("up");
        for i in order {
            applier.apply(&changes[i]).await.expect("apply");
        }
        let (d, m) = (in_vpc("vpc-1", "10.0.0.45"), in_vpc("vpc-1", "10.0.0.44"));
        let answers =
            lookup_apps(&store, &[(d.clone(), T0 + 150), (d, T0 + 350), (m.clone(), T0 + 250), (m, T0 + 350)]).await;
        let want = vec![Some("end".to_owned()), Some("<eni-d>".to_owned()), Some("end".to_owned()), None];
        assert_eq!(answers, want, "order {order:?}");
    }
}

/// Changes for an ENI the table does not know yet are kept, and applied
/// when it becomes known; applied, they are forgotten.
pub async fn applier_keeps_changes_for_unknown_enis<S, F, Fut>(new_store: F)
where
    S: OwnershipStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let store = new_store().await;
    let applier = Applier::new(&store, TagPolicy::default());
    let assign =
        Change::AddressesAssigned { at: at(T0 + 100), eni_id: "eni-k".into(), addresses: vec![ip("10.0.0.51")] };
    let unassign =
        Change::AddressesUnassigned { at: at(T0 + 200), eni_id: "eni-k".into(), addresses: vec![ip("10.0.0.51")] };
    for change in [&unassign, &assign, &assign] {
        let outcome = applier.apply(change).await.expect("kept");
        assert_eq!(outcome, Outcome::Deferred { reference: "eni-k".into() });
    }
    assert_eq!(store.pending(&EniRef::Id("eni-k".into())).await.expect("pending").len(), 2, "kept once each");
    let eni = instance_eni("eni-k", "i-k", "keep-prod-v001", "10.0.0.50");
    applier.apply(&Change::EniUp { at: at(T0), eni: Box::new(eni) }).await.expect("up");
    let k = in_vpc("vpc-1", "10.0.0.51");
    let answers = lookup_apps(&store, &[(k.clone(), T0 + 50), (k.clone(), T0 + 150), (k, T0 + 250)]).await;
    assert_eq!(answers, vec![None, Some("keep".to_owned()), None]);
    assert_eq!(store.pending(&EniRef::Id("eni-k".into())).await.expect("pending"), vec![], "forgotten once applied");
    let record = store.eni(&EniRef::Id("eni-k".into())).await.expect("eni").expect("known");
    assert_eq!(record.eni.private_addresses, vec![ip("10.0.0.50")], "the later unassign wins over the assign");
}

/// Concurrent appliers on one ENI (each assigning its own address, and a
/// stop) lose no update: every address ends in the record, and the stop
/// releases the public address the record held.
pub async fn concurrent_appliers_lose_no_update<S, F, Fut>(new_store: F)
where
    S: OwnershipStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let store = new_store().await;
    let applier = Applier::new(&store, TagPolicy::default());
    let mut eni = instance_eni("eni-c", "i-c", "conc-prod-v001", "10.0.0.60");
    eni.public_addresses = vec![ip("54.0.0.60")];
    applier.apply(&Change::EniUp { at: at(T0), eni: Box::new(eni) }).await.expect("up");
    let added: Vec<IpAddr> = (1..=8).map(|i| ip(&format!("10.0.0.{}", 60 + i))).collect();
    let assigns: Vec<Change> = added
        .iter()
        .enumerate()
        .map(|(i, a)| Change::AddressesAssigned {
            at: at(T0 + 10 + i as i64),
            eni_id: "eni-c".into(),
            addresses: vec![*a],
        })
        .collect();
    let stop = Change::InstanceStopped { at: at(T0 + 100), instance_id: "i-c".into() };
    let yielding = Yielding(&store);
    let appliers: Vec<_> = (0..assigns.len() + 1).map(|_| Applier::new(&yielding, TagPolicy::default())).collect();
    let runs = appliers.iter().zip(assigns.iter().chain([&stop])).map(|(a, c)| a.apply(c));
    for outcome in join_all(runs).await {
        outcome.expect("applied despite conflicts");
    }
    let record = store.eni(&EniRef::Id("eni-c".into())).await.expect("eni").expect("known");
    let mut want = vec![ip("10.0.0.60")];
    want.extend(&added);
    let mut have = record.eni.private_addresses.clone();
    have.sort();
    assert_eq!(have, want, "every assign kept");
    assert_eq!(record.eni.public_addresses, Vec::<IpAddr>::new(), "the stop's release kept");
    let answers =
        lookup_apps(&store, &[(global("54.0.0.60"), T0 + 150), (in_vpc("vpc-1", "10.0.0.68"), T0 + 150)]).await;
    assert_eq!(answers, vec![None, Some("conc".to_owned())]);
}

/// Two attaches learned late, applied concurrently, each retelling who an
/// earlier assign's address was taken by: the one that loses the record
/// write retells again from the winner's record, so its first attempt's
/// label (told from the same version as the winner's) does not stay.
pub async fn a_retold_owner_survives_a_lost_race<S, F, Fut>(new_store: F)
where
    S: OwnershipStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let store = new_store().await;
    let applier = Applier::new(&store, TagPolicy::default());
    for setup in [
        app_instance("eni-3", "i-3", "three", "10.0.1.3"),
        app_instance("eni-9", "i-9", "nine", "10.0.1.9"),
        app_instance("eni-2", "i-2", "two", "10.0.1.2"),
    ] {
        applier.apply(&setup).await.expect("up");
    }
    let secondary = ip("10.0.0.81");
    for change in [
        floating(T0 + 10, "eni-r", "10.0.0.80"),
        described_attached(T0 + 300, "eni-r", &[ip("10.0.0.80"), secondary], "i-2", "att-2"),
        Change::AddressesAssigned { at: at(T0 + 50), eni_id: "eni-r".into(), addresses: vec![secondary] },
    ] {
        applier.apply(&change).await.expect("apply");
    }
    let yielding = Yielding(&store);
    let (first, second) =
        (Applier::new(&yielding, TagPolicy::default()), Applier::new(&yielding, TagPolicy::default()));
    let (w, l) = (attach(T0 + 45, "eni-r", "i-3", "att-3"), attach(T0 + 30, "eni-r", "i-9", "att-9"));
    for outcome in join_all([first.apply(&w), second.apply(&l)]).await {
        outcome.expect("applied despite the conflict");
    }
    let key = in_vpc("vpc-1", "10.0.0.81");
    assert_eq!(lookup_apps(&store, &[(key, T0 + 60)]).await, vec![app("three")], "attached to i-3 since 45");
}

/// Polls futures together until all are done, each answer in its place:
/// enough of `join_all` for these tests.
async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut waiting = false;
        for (i, f) in pending.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => waiting = true,
                }
            }
        }
        if waiting {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.expect("every future finished")).collect()
}

/// A store that yields to the scheduler before every call, so that
/// concurrent appliers interleave between their reads and writes even on
/// the embedded store (whose calls never wait).
struct Yielding<'a, S>(&'a S);

impl<S: OwnershipStore> OwnershipStore for Yielding<'_, S> {
    async fn put_marks(&self, marks: &[(AddressKey, Mark)]) -> StoreResult<()> {
        tokio::task::yield_now().await;
        self.0.put_marks(marks).await
    }
    async fn lookup(&self, queries: &[(AddressKey, UnixTime)]) -> StoreResult<Vec<Option<Owner>>> {
        tokio::task::yield_now().await;
        self.0.lookup(queries).await
    }
    async fn put_seen(&self, seen: &[(AddressKey, Sighting)]) -> StoreResult<()> {
        tokio::task::yield_now().await;
        self.0.put_seen(seen).await
    }
    async fn note_reconciled(&self, scope: &str, at: UnixTime) -> StoreResult<()> {
        tokio::task::yield_now().await;
        self.0.note_reconciled(scope, at).await
    }
    async fn reconciled(&self) -> StoreResult<Vec<(String, UnixTime)>> {
        tokio::task::yield_now().await;
        self.0.reconciled().await
    }
    async fn timeline(&self, key: &AddressKey) -> StoreResult<Timeline> {
        tokio::task::yield_now().await;
        self.0.timeline(key).await
    }
    async fn timelines(&self) -> StoreResult<Vec<(AddressKey, Timeline)>> {
        tokio::task::yield_now().await;
        self.0.timelines().await
    }
    async fn eni(&self, by: &EniRef) -> StoreResult<Option<EniRecord>> {
        tokio::task::yield_now().await;
        self.0.eni(by).await
    }
    async fn enis_of_instance(&self, instance_id: &str) -> StoreResult<Vec<EniRecord>> {
        tokio::task::yield_now().await;
        self.0.enis_of_instance(instance_id).await
    }
    async fn enis(&self) -> StoreResult<Vec<EniRecord>> {
        tokio::task::yield_now().await;
        self.0.enis().await
    }
    async fn put_eni(&self, record: &EniRecord) -> StoreResult<EniWrite> {
        tokio::task::yield_now().await;
        self.0.put_eni(record).await
    }
    async fn put_pending(&self, reference: &EniRef, change: &Change) -> StoreResult<()> {
        tokio::task::yield_now().await;
        self.0.put_pending(reference, change).await
    }
    async fn pending(&self, reference: &EniRef) -> StoreResult<Vec<Change>> {
        tokio::task::yield_now().await;
        self.0.pending(reference).await
    }
    async fn forget_pending(&self, reference: &EniRef, changes: &[Change]) -> StoreResult<()> {
        tokio::task::yield_now().await;
        self.0.forget_pending(reference, changes).await
    }
    async fn note_instance(&self, instance_id: &str, note: &InstanceNote) -> StoreResult<()> {
        tokio::task::yield_now().await;
        self.0.note_instance(instance_id, note).await
    }
    async fn instance_notes(&self, instance_id: &str) -> StoreResult<InstanceNotes> {
        tokio::task::yield_now().await;
        self.0.instance_notes(instance_id).await
    }
    async fn instance(&self, instance_id: &str) -> StoreResult<Option<InstanceRecord>> {
        tokio::task::yield_now().await;
        self.0.instance(instance_id).await
    }
    async fn put_instance(&self, record: &InstanceRecord) -> StoreResult<()> {
        tokio::task::yield_now().await;
        self.0.put_instance(record).await
    }
}

/// Sightings: the latest per ENI and attachment, kept with the head (a
/// write of marks keeps them), never for an address without history; a
/// reconcile's close found-gone round-trips; each scope's reconcile time
/// only moves forward.
pub async fn sightings_and_the_reconcile_horizon<S, F, Fut>(new_store: F)
where
    S: OwnershipStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    use dredge_core::ownership::{horizon, Attached};
    let store = new_store().await;
    let key = in_vpc("vpc-1", "10.0.0.1");
    let seen = |eni: &str, attached: Attached, t: i64| Sighting { eni_id: eni.into(), attached, at: at(T0 + t) };
    store.put_marks(&[(key.clone(), open(T0, "eni-a", "a"))]).await.expect("put_marks");
    store
        .put_seen(&[
            (key.clone(), seen("eni-a", Attached::Unknown, 100)),
            (key.clone(), seen("eni-a", Attached::Unknown, 50)),
            (key.clone(), seen("eni-a", Attached::To("i-eni-a".into()), 60)),
            (in_vpc("vpc-1", "10.0.0.99"), seen("eni-z", Attached::Unknown, 100)),
        ])
        .await
        .expect("put_seen");
    // An older sighting later changes nothing.
    store.put_seen(&[(key.clone(), seen("eni-a", Attached::Unknown, 70))]).await.expect("put_seen");
    // Marks written after the sightings keep them.
    store.put_marks(&[(key.clone(), Mark::found_gone(at(T0 + 200), "eni-a"))]).await.expect("put_marks");
    let heads = store.heads(&[key.clone(), in_vpc("vpc-1", "10.0.0.99")]).await.expect("heads");
    let mut got = heads[0].seen.clone();
    got.sort_by_key(|s| s.at);
    assert_eq!(got, vec![seen("eni-a", Attached::To("i-eni-a".into()), 60), seen("eni-a", Attached::Unknown, 100)]);
    assert!(heads[1].seen.is_empty(), "no history, no sightings");
    assert_eq!(heads[0].timeline.marks().last(), Some(&Mark::found_gone(at(T0 + 200), "eni-a")));
    assert_eq!(store.timeline(&key).await.expect("timeline").owner_at(at(T0 + 250)), None);

    assert_eq!(horizon(&store.reconciled().await.expect("reconciled")), None);
    store.note_reconciled("1#us-east-1", at(T0 + 900)).await.expect("note");
    store.note_reconciled("1#eu-west-1", at(T0 + 800)).await.expect("note");
    store.note_reconciled("1#us-east-1", at(T0 + 100)).await.expect("note");
    let mut reconciled = store.reconciled().await.expect("reconciled");
    reconciled.sort();
    assert_eq!(reconciled, vec![("1#eu-west-1".to_owned(), at(T0 + 800)), ("1#us-east-1".to_owned(), at(T0 + 900))]);
    assert_eq!(horizon(&reconciled), Some(at(T0 + 800)));
}
