//! When marks stop being needed, for the TTL attribute.
//!
//! A close explains times from its own time on, until the next open: it
//! expires `retention` after its time. An open explains times from its time
//! until it is *ended*: by the first later open (of any ENI: the later open
//! answers from then on) or the first later close of its own ENI. It expires
//! `retention` after that end; an open that nothing ended yet (the current
//! owner) never expires.

use dredge_core::ownership::{Mark, Resolution, Timeline, UnixTime};

/// For each ended open in `marks` (sorted by key, a suffix of one address's
/// history): its index and the index of the mark that ends it.
pub(crate) fn ended_opens(marks: &[Mark]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    // Only the latest open can still be running: every earlier one was
    // ended by it at the latest.
    let mut pending: Option<usize> = None;
    for (i, mark) in marks.iter().enumerate() {
        match mark {
            Mark::Open { .. } => {
                if let Some(p) = pending {
                    out.push((p, i));
                }
                pending = Some(i);
            }
            Mark::Close { .. } => {
                let ends = |p: &usize| matches!(&marks[*p], Mark::Open { owner, .. } if mark.ends(owner));
                if let Some(p) = pending.filter(ends) {
                    out.push((p, i));
                    pending = None;
                }
            }
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
