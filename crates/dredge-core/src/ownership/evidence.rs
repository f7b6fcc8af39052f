//! How far the table's knowledge of an address reaches. An open says when
//! an ENI took an address, never how long it kept it: a release or a reuse
//! may still be on its way. An owner is believed for a time only with
//! evidence at or after it that the same holding lasted that long:
//! - a [`Sighting`]: a reconcile saw the ENI holding the address, or the ENI
//!   logged a flow from it (a heartbeat);
//! - a close of that holding after the time (the holding is bounded).
//!
//! "Nobody held it" is believed only up to the reconcile horizon: the time
//! by which every part of the fleet was last described by a snapshot
//! ([`horizon`]). Before it, an address no snapshot showed held was free;
//! after it, a new holder may not have reached the table yet, whether or
//! not the fleet held the address before (an Elastic IP's first
//! association, an auto-assigned public address that comes with no event).

use serde::{Deserialize, Serialize};

use super::owner::{Owner, OwnerKind};
use super::time::UnixTime;
use super::timeline::{Mark, Timeline};

/// What a sighting knows of the instance the ENI was attached to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "attached", content = "instance_id", rename_all = "snake_case")]
pub enum Attached {
    /// Attached to this instance (a reconcile, or a flow log with
    /// `instance-id`).
    To(String),
    /// Attached to no instance.
    Nothing,
    /// Not said: a flow log without `instance-id` shows the ENI held the
    /// address, not what it was attached to.
    Unknown,
}

/// Evidence that an ENI held an address at a time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Sighting {
    pub eni_id: String,
    pub attached: Attached,
    pub at: UnixTime,
}

/// Sightings kept per address: the latest per ENI and attachment, the
/// newest few (older ones only ever confirm older flows).
pub const MAX_SIGHTINGS: usize = 4;

impl Sighting {
    /// Whether this sighting is evidence for `owner`: the same ENI, and the
    /// same attachment. A sighting without the attachment confirms any
    /// owner of the ENI but a detached one; its one blind spot is a
    /// secondary ENI moved to another instance while both the detach and
    /// the attach are still on their way.
    pub fn confirms(&self, owner: &Owner) -> bool {
        if self.eni_id != owner.eni_id {
            return false;
        }
        match &self.attached {
            Attached::To(instance) => owner.instance_id.as_ref() == Some(instance),
            Attached::Nothing => owner.instance_id.is_none(),
            // A detached interface logs no traffic: a flow from one the
            // table calls detached means an attach it has not learned yet.
            Attached::Unknown => owner.kind != OwnerKind::Interface,
        }
    }

    /// Adds `new` to `seen`: one per ENI and attachment (the latest), the
    /// newest [`MAX_SIGHTINGS`]. Returns whether anything changed.
    pub fn merge(seen: &mut Vec<Sighting>, new: Sighting) -> bool {
        if let Some(s) = seen.iter_mut().find(|s| s.eni_id == new.eni_id && s.attached == new.attached) {
            if s.at >= new.at {
                return false;
            }
            s.at = new.at;
        } else {
            seen.push(new);
        }
        seen.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| (&a.eni_id, &a.attached).cmp(&(&b.eni_id, &b.attached))));
        seen.truncate(MAX_SIGHTINGS);
        true
    }
}

/// Whether the owner that `timeline.marks()[open]` (an open or relabel) names is known to
/// still hold the address at `at`: a sighting of it at or after `at`, or a
/// close of its holding after `at` at the release's own time (a
/// reconcile's close only says the release came before it), or an attach
/// or detach of its ENI after `at` (at its own time too).
pub fn known_at(timeline: &Timeline, open: usize, seen: &[Sighting], at: UnixTime) -> bool {
    let marks = timeline.marks();
    let Some(owner) = marks[open].owner() else { return false };
    // Where this holding ends as far as the table knows: its close, or
    // another ENI's open. A sighting from after that is of a later holding
    // by the same ENI, and says nothing of this one.
    let end = timeline.end_of_holding(open);
    // Where the ENI is labelled otherwise within it (another attachment,
    // or none). A relabel is an attach's or a detach's own time; a
    // snapshot's open says only that the change came before it, and a
    // close after it tells nothing of this label.
    let change = marks[open + 1..end.unwrap_or(marks.len())]
        .iter()
        .find(|m| m.owner().is_some_and(|o| o.eni_id == owner.eni_id && o.instance_id != owner.instance_id));
    let bound = match change {
        Some(m) => m.at() > at && !m.is_open(),
        None => end.is_some_and(|i| marks[i].at() > at && marks[i].is_exact_close()),
    };
    if bound {
        return true;
    }
    let until = change.or(end.map(|i| &marks[i])).map(Mark::at);
    seen.iter().any(|s| s.at >= at && until.is_none_or(|u| s.at < u) && s.confirms(owner))
}

/// Whether "nobody held the address at `at`" (the timeline's answer) is
/// known: the reconcile horizon reaches `at`, and no snapshot between `at`
/// and the horizon found a holder (its open is dated at the snapshot, not
/// when the holding began).
pub fn known_free_at(timeline: &Timeline, at: UnixTime, horizon: Option<UnixTime>) -> bool {
    let Some(horizon) = horizon.filter(|h| *h >= at) else { return false };
    !timeline.marks().iter().any(|m| m.is_open() && m.at() > at && m.at() <= horizon)
}

/// The label a reconcile's scope is noted under: `<account>#<region>`,
/// `*` for either when the snapshot covers every one.
pub fn scope_label(account_id: Option<&str>, region: Option<&str>) -> String {
    format!("{}#{}", account_id.unwrap_or("*"), region.unwrap_or("*"))
}

/// The reconcile horizon from every scope's latest reconcile: the latest
/// unscoped one (`*#*`) or, when later, the earliest of the scoped ones
/// (they are taken to cover the fleet between them).
pub fn horizon(reconciled: &[(String, UnixTime)]) -> Option<UnixTime> {
    let everything = reconciled.iter().filter(|(l, _)| l == "*#*").map(|(_, t)| *t).max();
    let scoped = reconciled.iter().filter(|(l, _)| l != "*#*").map(|(_, t)| *t).min();
    everything.max(scoped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ownership::Mark;

    fn owner(eni: &str, instance: Option<&str>, kind: OwnerKind) -> Owner {
        let mut o = Owner::new(eni, kind);
        o.instance_id = instance.map(Into::into);
        o
    }

    fn seen(eni: &str, attached: Attached, at: i64) -> Sighting {
        Sighting { eni_id: eni.into(), attached, at: UnixTime(at) }
    }

    #[test]
    fn a_sighting_confirms_only_the_same_holding() {
        let on_i1 = owner("eni-a", Some("i-1"), OwnerKind::Instance);
        let detached = owner("eni-a", None, OwnerKind::Interface);
        let lambda = owner("eni-l", None, OwnerKind::Lambda);
        assert!(seen("eni-a", Attached::To("i-1".into()), 1).confirms(&on_i1));
        assert!(!seen("eni-a", Attached::To("i-2".into()), 1).confirms(&on_i1), "moved to another instance");
        assert!(!seen("eni-b", Attached::To("i-1".into()), 1).confirms(&on_i1));
        assert!(seen("eni-a", Attached::Nothing, 1).confirms(&detached));
        assert!(!seen("eni-a", Attached::Nothing, 1).confirms(&on_i1));
        assert!(seen("eni-a", Attached::Unknown, 1).confirms(&on_i1));
        assert!(!seen("eni-a", Attached::Unknown, 1).confirms(&detached), "a detached ENI logs nothing");
        assert!(seen("eni-l", Attached::Unknown, 1).confirms(&lambda));
    }

    #[test]
    fn merge_keeps_the_latest_per_holding_and_the_newest_few() {
        let mut s = Vec::new();
        assert!(Sighting::merge(&mut s, seen("eni-a", Attached::Unknown, 100)));
        assert!(!Sighting::merge(&mut s, seen("eni-a", Attached::Unknown, 90)), "older: nothing new");
        assert!(Sighting::merge(&mut s, seen("eni-a", Attached::Unknown, 160)));
        assert_eq!(s, [seen("eni-a", Attached::Unknown, 160)]);
        for (i, at) in [(1, 10), (2, 20), (3, 30), (4, 40)] {
            Sighting::merge(&mut s, seen(&format!("eni-{i}"), Attached::Nothing, at));
        }
        assert_eq!(s.len(), MAX_SIGHTINGS);
        assert_eq!(s[0].at, UnixTime(160));
        assert!(s.iter().all(|x| x.eni_id != "eni-1"), "the oldest went: {s:?}");
    }

    #[test]
    fn nobody_is_believed_up_to_the_reconcile_horizon() {
        let a = owner("eni-a", None, OwnerKind::Lambda);
        let t = Timeline::from_marks([
            Mark::Open { at: UnixTime(100), owner: a.clone() },
            Mark::close(UnixTime(200), "eni-a"),
        ]);
        assert!(!known_free_at(&t, UnixTime(250), None), "no reconcile yet");
        assert!(!known_free_at(&t, UnixTime(250), Some(UnixTime(240))), "someone may have taken it since");
        assert!(known_free_at(&t, UnixTime(250), Some(UnixTime(300))));
        assert!(known_free_at(&Timeline::new(), UnixTime(250), Some(UnixTime(300))), "never held");
        // A snapshot at 280 found a holder: since when, it cannot say.
        let found = Timeline::from_marks([Mark::Open { at: UnixTime(280), owner: a }]);
        assert!(!known_free_at(&found, UnixTime(250), Some(UnixTime(300))));
        assert!(!known_free_at(&Timeline::new(), UnixTime(250), None));
    }

    #[test]
    fn the_horizon_is_the_earliest_scope_unless_everything_was_described_later() {
        let r = |l: &str, t: i64| (l.to_owned(), UnixTime(t));
        assert_eq!(horizon(&[]), None);
        assert_eq!(horizon(&[r("1#us-east-1", 900), r("1#eu-west-1", 800)]), Some(UnixTime(800)));
        assert_eq!(horizon(&[r("1#us-east-1", 900), r("*#*", 850)]), Some(UnixTime(900)));
        assert_eq!(horizon(&[r("1#us-east-1", 700), r("*#*", 850)]), Some(UnixTime(850)));
        assert_eq!(scope_label(Some("1"), None), "1#*");
    }

    #[test]
    fn knowledge_reaches_a_time_only_with_evidence_at_or_after_it() {
        let a = owner("eni-a", Some("i-1"), OwnerKind::Instance);
        let open = Mark::Open { at: UnixTime(100), owner: a.clone() };
        let t = Timeline::from_marks([open.clone()]);
        assert!(!known_at(&t, 0, &[], UnixTime(150)), "an open alone says nothing of how long");
        let s = [seen("eni-a", Attached::To("i-1".into()), 200)];
        assert!(known_at(&t, 0, &s, UnixTime(150)));
        assert!(known_at(&t, 0, &s, UnixTime(200)));
        assert!(!known_at(&t, 0, &s, UnixTime(201)));
        // A close of the holding bounds it; a close of another ENI does not.
        let t = Timeline::from_marks([open.clone(), Mark::close(UnixTime(300), "eni-b")]);
        assert!(!known_at(&t, 0, &[], UnixTime(150)));
        let t = Timeline::from_marks([open.clone(), Mark::close(UnixTime(300), "eni-a")]);
        assert!(known_at(&t, 0, &[], UnixTime(150)));
        assert!(known_at(&t, 0, &[], UnixTime(299)));
        // A sighting from after the holding ended is of a later one.
        let t = Timeline::from_marks([
            open.clone(),
            Mark::found_gone(UnixTime(300), "eni-a"),
            Mark::Open { at: UnixTime(400), owner: a.clone() },
        ]);
        let later = [seen("eni-a", Attached::To("i-1".into()), 450)];
        assert!(!known_at(&t, 0, &later, UnixTime(150)));
        assert!(known_at(&t, 2, &later, UnixTime(420)));
        // An instance's end bounds the label it closes, not an earlier one
        // of the ENI's: a snapshot found it attached since some time.
        let bare = owner("eni-a", None, OwnerKind::Interface);
        let t = Timeline::from_marks([
            Mark::Open { at: UnixTime(100), owner: bare.clone() },
            Mark::Open { at: UnixTime(400), owner: a.clone() },
            Mark::Close {
                at: UnixTime(500),
                eni_id: "eni-a".into(),
                instance_id: Some("i-1".into()),
                found_gone: false,
                spared: false,
            },
        ]);
        assert!(!known_at(&t, 0, &[], UnixTime(150)), "bare until some time before 400");
        assert!(known_at(&t, 1, &[], UnixTime(450)));
        let bare_seen = [seen("eni-a", Attached::Nothing, 300), seen("eni-a", Attached::Nothing, 450)];
        assert!(known_at(&t, 0, &bare_seen, UnixTime(150)), "seen bare at 300");
        assert!(!known_at(&t, 0, &bare_seen[1..], UnixTime(150)), "a bare sighting after the attach is of later");
        // An attach event's relabel bounds the label before it.
        let t = Timeline::from_marks([
            Mark::Open { at: UnixTime(100), owner: bare.clone() },
            Mark::relabel(UnixTime(400), a.clone()),
        ]);
        assert!(known_at(&t, 0, &[], UnixTime(150)));
        assert!(!known_at(&t, 1, &[], UnixTime(450)), "the attached label: nothing bounds it yet");
        // A reconcile that found it gone at 300 says only "before 300".
        let t = Timeline::from_marks([open, Mark::found_gone(UnixTime(300), "eni-a")]);
        assert!(!known_at(&t, 0, &[], UnixTime(150)));
        assert_eq!(t.owner_at(UnixTime(300)), None, "it still ends the interval");
    }
}
