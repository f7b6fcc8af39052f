//! When marks stop being needed, for the TTL attribute.
//!
//! A close explains times from its own time on, until the next open: it
//! expires `retention` after its time. An open explains times from its time
//! until it is *ended*: by the first later open (of any ENI: the later open
//! answers from then on) or the first later close of its own ENI (as
//! labelled then). A relabel explains times until its ENI's next open or
//! relabel, another ENI's open, or a close of it. Each expires `retention`
//! after that end; one that nothing ended yet (the current owner) never
//! expires. A relabel that is void (its ENI did not hold the address then)
//! is dated the same way: it may turn valid when a late open arrives, and
//! an end may only move earlier.
//!
//! An open's end can move later: a close for an instance ends an open only
//! while its ENI was attached to that instance, and a detach learned after
//! the close (a relabel between them) shows it was not. The open whose
//! holding a new relabel falls in is therefore dated afresh, later or
//! earlier or not at all ([`relabelled_opens`]).

use std::collections::BTreeMap;

use dredge_core::ownership::{Mark, Resolution, Timeline, UnixTime};

/// For each ended open and relabel in `marks` (sorted by key, a suffix of
/// one address's history): its index and the index of the mark that ends
/// it.
pub(crate) fn ended_opens(marks: &[Mark]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    // Only the latest open can still be running: every earlier one was
    // ended by it at the latest. Likewise the latest relabel of each ENI
    // since that open.
    let mut open: Option<usize> = None;
    let mut relabels: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, mark) in marks.iter().enumerate() {
        match mark {
            Mark::Open { .. } => {
                out.extend(open.map(|p| (p, i)));
                out.extend(relabels.values().map(|r| (*r, i)));
                relabels.clear();
                open = Some(i);
            }
            Mark::Relabel { owner, .. } => {
                out.extend(relabels.insert(&owner.eni_id, i).map(|r| (r, i)));
            }
            Mark::Close { eni_id, .. } => {
                let own_open = open.filter(|p| marks[*p].eni_id() == eni_id);
                let label = relabels.get(eni_id.as_str()).copied().or(own_open);
                if label.is_some_and(|l| marks[l].owner().is_some_and(|o| mark.ends(o))) {
                    out.extend(relabels.remove(eni_id.as_str()).map(|r| (r, i)));
                    if let Some(p) = own_open {
                        out.push((p, i));
                        open = None;
                    }
                }
            }
        }
    }
    out
}

/// The opens in `marks` (sorted by key) whose holding a relabel among
/// `inputs` falls in, each with the index of the mark that ends it now
/// (`None`: nothing does). The relabel may have moved that end either way:
/// an instance's close dated before it may no longer reach the open.
pub(crate) fn relabelled_opens(marks: &[Mark], inputs: &[Mark]) -> Vec<(usize, Option<usize>)> {
    let ended = ended_opens(marks);
    let mut out: Vec<(usize, Option<usize>)> = Vec::new();
    for input in inputs.iter().filter(|m| matches!(m, Mark::Relabel { .. })) {
        let before = marks.partition_point(|m| m.key() < input.key());
        let Some(open) = marks[..before].iter().rposition(Mark::is_open) else { continue };
        if marks[open].eni_id() == input.eni_id() && out.iter().all(|(o, _)| *o != open) {
            let end = ended.iter().find(|(o, _)| *o == open).map(|(_, e)| *e);
            out.push((open, end));
        }
    }
    out
}

/// The expiry of a head item holding `marks`: never while the address may
/// have an owner, else `retention` after its last mark (no mark of the
/// address outlives that).
pub(crate) fn head_expiry(marks: &Timeline, complete: bool, retention: i64) -> Option<i64> {
    match marks.resolve(UnixTime(i64::MAX), complete) {
        Resolution::Free => marks.marks().last().map(|m| m.at().0.saturating_add(retention)),
        Resolution::Owned(_) | Resolution::Unknown => None,
    }
}

/// Whether `ctx`, a head merged with new marks, shows everything needed to
/// date the marks `inputs` end and the ends of `inputs` themselves. The head
/// is the latest part of the history, starting at `window_start` (`None`
/// when it is the whole history): an input older than the head, or with no
/// open before it inside the head, needs the full history.
pub(crate) fn head_explains(ctx: &Timeline, window_start: Option<&Mark>, inputs: &[Mark]) -> bool {
    let Some(start) = window_start else { return true };
    inputs
        .iter()
        .all(|input| input.key() >= start.key() && ctx.marks().iter().any(|m| m.is_open() && m.key() < input.key()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dredge_core::ownership::{Owner, OwnerKind};

    fn open(at: i64, eni: &str) -> Mark {
        Mark::Open { at: UnixTime(at), owner: Owner::new(eni, OwnerKind::Interface) }
    }

    fn close(at: i64, eni: &str) -> Mark {
        Mark::close(UnixTime(at), eni)
    }

    #[test]
    fn opens_end_at_the_next_open_or_their_own_close() {
        let t = Timeline::from_marks([
            open(100, "a"),
            close(150, "x"), // someone else's late close: ends nothing
            open(200, "a"),  // re-open: the later open answers from here
            close(300, "a"),
            open(400, "b"),
            open(500, "c"),
            close(600, "b"), // b already ended by c
        ]);
        let ends: Vec<(i64, i64)> =
            ended_opens(t.marks()).into_iter().map(|(o, e)| (t.marks()[o].at().0, t.marks()[e].at().0)).collect();
        assert_eq!(ends, vec![(100, 200), (200, 300), (400, 500)]);
    }

    #[test]
    fn relabels_end_at_their_enis_next_label_or_the_end_of_its_holding() {
        let relabel = |at: i64, eni: &str, instance: Option<&str>| {
            let mut owner = Owner::new(eni, OwnerKind::Instance);
            owner.instance_id = instance.map(str::to_owned);
            Mark::relabel(UnixTime(at), owner)
        };
        let stop = |at: i64, instance: &str| Mark::Close {
            at: UnixTime(at),
            eni_id: "a".into(),
            instance_id: Some(instance.into()),
            found_gone: false,
            spared: false,
        };
        let t = Timeline::from_marks([
            open(100, "a"),
            relabel(150, "a", Some("i-1")), // attached
            relabel(160, "x", None),        // another ENI's, void: ends nothing
            stop(170, "i-2"),               // another instance's end: ends nothing
            relabel(200, "a", None),        // detached: the next label
            relabel(250, "a", Some("i-2")), // attached again
            stop(300, "i-2"),               // its instance's end ends the holding and the label
            relabel(350, "a", Some("i-3")), // void: a released the address
            open(400, "b"),                 // ends everything before it
        ]);
        let ends: Vec<(i64, i64)> =
            ended_opens(t.marks()).into_iter().map(|(o, e)| (t.marks()[o].at().0, t.marks()[e].at().0)).collect();
        assert_eq!(ends, vec![(150, 200), (200, 250), (250, 300), (100, 300), (350, 400), (160, 400)]);
    }

    #[test]
    fn a_detach_learned_after_an_instance_close_dates_the_open_afresh() {
        let attached = |instance: Option<&str>| {
            let mut owner = Owner::new("a", OwnerKind::Instance);
            owner.instance_id = instance.map(str::to_owned);
            owner
        };
        let open = Mark::Open { at: UnixTime(100), owner: attached(Some("i-1")) };
        let end = Mark::Close {
            at: UnixTime(300),
            eni_id: "a".into(),
            instance_id: Some("i-1".into()),
            found_gone: false,
            spared: false,
        };
        let before = Timeline::from_marks([open.clone(), end.clone()]);
        assert_eq!(ended_opens(before.marks()), vec![(0, 1)], "dated by the instance's end");
        let detach = Mark::relabel(UnixTime(200), attached(None));
        let after = Timeline::from_marks([open, detach.clone(), end]);
        assert!(ended_opens(after.marks()).is_empty(), "detached first: the instance's end spares it");
        assert_eq!(relabelled_opens(after.marks(), std::slice::from_ref(&detach)), vec![(0, None)]);
        // Ended later than dated: by a reconcile's open of the bare interface.
        let mut later = after.clone();
        later.insert(Mark::Open { at: UnixTime(800), owner: attached(None) });
        assert_eq!(relabelled_opens(later.marks(), std::slice::from_ref(&detach)), vec![(0, Some(3))]);
        // A relabel of another ENI dates nothing; one after the holding
        // ended dates the open by that end.
        let other = Mark::relabel(UnixTime(200), Owner::new("b", OwnerKind::Instance));
        assert!(relabelled_opens(after.marks(), &[other]).is_empty());
        let gone = Timeline::from_marks([
            Mark::Open { at: UnixTime(100), owner: attached(None) },
            Mark::close(UnixTime(150), "a"),
            detach.clone(),
        ]);
        assert_eq!(relabelled_opens(gone.marks(), &[detach]), vec![(0, Some(1))]);
    }

    #[test]
    fn heads_expire_only_once_nobody_owns_the_address() {
        let owned = Timeline::from_marks([open(100, "a")]);
        assert_eq!(head_expiry(&owned, true, 10), None);
        let released = Timeline::from_marks([open(100, "a"), close(200, "a")]);
        assert_eq!(head_expiry(&released, true, 10), Some(210));
        // Only closes of others in a partial head: the owner is not known.
        let partial = Timeline::from_marks([close(200, "x")]);
        assert_eq!(head_expiry(&partial, false, 10), None);
    }

    #[test]
    fn a_partial_head_explains_only_marks_after_an_open_it_holds() {
        let head = Timeline::from_marks([close(200, "x"), open(300, "b"), close(400, "b")]);
        let start = head.marks()[0].clone();
        let mut ctx = head.clone();
        let late = open(350, "c");
        ctx.insert(late.clone());
        assert!(head_explains(&ctx, Some(&start), std::slice::from_ref(&late)));
        // Before the head's window, or with no open before it in the head.
        assert!(!head_explains(&ctx, Some(&start), &[open(100, "a")]));
        assert!(!head_explains(&ctx, Some(&start), &[close(250, "a")]));
        assert!(head_explains(&ctx, None, &[open(100, "a")]));
    }
}
