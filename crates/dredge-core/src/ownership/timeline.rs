//! The ownership history of one address as a set of marks: "ENI e opened
//! the address at t" (with its owner), "ENI e released it at t", and "from
//! t, what ENI e holds is owned by ..." (a relabel, below). Marks are
//! facts; intervals derive from them. Because a set of facts does not depend
//! on the order it was learned in, replayed, duplicated and out-of-order
//! deliveries converge to the same history.
//!
//! The owner at time t is the ENI of the latest open at or before t, unless
//! that ENI released the address between its open and t. An open therefore
//! also ends the previous owner's interval (its release may be lost).
//!
//! An attach or detach changes who an ENI's addresses belong to without the
//! ENI taking anything: that is a *relabel* ("from t, what ENI e holds is
//! owned by ..."). It says nothing of whether e holds the address, so it
//! counts only inside e's holding: a relabel after e released the address
//! (a release learned after the attach) or after another ENI took it is
//! void, and it never ends another owner's interval.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::owner::Owner;
use super::scope::Scope;
use super::time::UnixTime;

/// An address within its scope: the unit of ownership.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AddressKey {
    pub scope: Scope,
    pub address: IpAddr,
}

impl AddressKey {
    pub fn new(scope: Scope, address: IpAddr) -> Self {
        AddressKey { scope, address }
    }
}

impl std::fmt::Display for AddressKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.scope, self.address)
    }
}

/// One fact about an address.
// Most marks are opens, so boxing the owner would add an allocation per
// mark without saving memory.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mark", rename_all = "snake_case")]
pub enum Mark {
    Open {
        at: UnixTime,
        owner: Owner,
    },
    /// From `at`, what the owner's ENI holds is owned by `owner` (an
    /// attach or detach): counts only while that ENI holds the address.
    Relabel {
        at: UnixTime,
        owner: Owner,
        /// What the owner was told from: 0 for an attach or detach, the
        /// version of the ENI's record for a label that retells who took
        /// an address then (`Applier::relabel_retold`). Of two labels for
        /// one second, the one told from the later record wins.
        #[serde(default, skip_serializing_if = "is_zero")]
        basis: u64,
    },
    /// The ENI released the address; with `instance_id`, only if it was
    /// attached to that instance then (an instance's end does not reach an
    /// interface detached from it before).
    Close {
        at: UnixTime,
        eni_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        instance_id: Option<String>,
        /// A reconcile found the address gone: released at or before `at`,
        /// when exactly unknown. Ends the interval, but is no evidence that
        /// the holding lasted until `at` (`ownership::known_at`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        found_gone: bool,
        /// The instance's end did not reach the interface: a detach seen
        /// after it shows the interface outlived it (EC2 detaches what it
        /// does not delete). Replaces that instance's close and ends
        /// nothing.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        spared: bool,
    },
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Mark {
    /// An attach's or a detach's label (see [`Mark::Relabel`]).
    pub fn relabel(at: UnixTime, owner: Owner) -> Mark {
        Mark::Relabel { at, owner, basis: 0 }
    }

    pub fn at(&self) -> UnixTime {
        match self {
            Mark::Open { at, .. } | Mark::Relabel { at, .. } | Mark::Close { at, .. } => *at,
        }
    }

    pub fn eni_id(&self) -> &str {
        match self {
            Mark::Open { owner, .. } | Mark::Relabel { owner, .. } => &owner.eni_id,
            Mark::Close { eni_id, .. } => eni_id,
        }
    }

    /// The owner an open or a relabel names.
    pub fn owner(&self) -> Option<&Owner> {
        match self {
            Mark::Open { owner, .. } | Mark::Relabel { owner, .. } => Some(owner),
            Mark::Close { .. } => None,
        }
    }

    /// An open: the ENI took the address (a relabel is not one).
    pub fn is_open(&self) -> bool {
        matches!(self, Mark::Open { .. })
    }

    /// The same open or relabel naming `owner` (completed with what was
    /// learned later); a close names no owner and stays as it is.
    pub fn with_owner(&self, owner: Owner) -> Mark {
        match self {
            Mark::Open { at, .. } => Mark::Open { at: *at, owner },
            Mark::Relabel { at, basis, .. } => Mark::Relabel { at: *at, owner, basis: *basis },
            Mark::Close { .. } => self.clone(),
        }
    }

    /// A close of `eni_id` at `at`, whatever it is attached to.
    pub fn close(at: UnixTime, eni_id: impl Into<String>) -> Mark {
        Mark::Close { at, eni_id: eni_id.into(), instance_id: None, found_gone: false, spared: false }
    }

    /// What a reconcile writes for an address it found gone.
    pub fn found_gone(at: UnixTime, eni_id: impl Into<String>) -> Mark {
        Mark::Close { at, eni_id: eni_id.into(), instance_id: None, found_gone: true, spared: false }
    }

    /// A close at the release's own time (from an event), not a reconcile's
    /// upper bound.
    pub fn is_exact_close(&self) -> bool {
        matches!(self, Mark::Close { found_gone: false, spared: false, .. })
    }

    /// Whether this is a close that ends `owner`'s interval.
    pub fn ends(&self, owner: &Owner) -> bool {
        match self {
            Mark::Close { spared: true, .. } => false,
            Mark::Close { eni_id, instance_id, .. } => {
                *eni_id == owner.eni_id && instance_id.as_ref().is_none_or(|i| owner.instance_id.as_ref() == Some(i))
            }
            Mark::Open { .. } | Mark::Relabel { .. } => false,
        }
    }

    /// Whether this version of a fact (same [`Mark::key`]) replaces
    /// `stored`: an open whose owner tells more ([`Owner::supersedes`]); a
    /// relabel told from a later record, else whose owner tells more; a
    /// spared instance's close over that instance's close (but not over a
    /// close of the ENI whatever it is attached to); a
    /// close from an event over a reconcile's, then a close of the ENI
    /// whatever it is attached to over one for a single instance. A total
    /// order, so any arrival order keeps the same one.
    pub fn supersedes(&self, stored: &Mark) -> bool {
        match (self, stored) {
            (Mark::Open { owner, .. }, Mark::Open { owner: old, .. }) => owner.supersedes(old),
            (Mark::Relabel { owner, basis, .. }, Mark::Relabel { owner: old, basis: old_basis, .. }) => {
                basis > old_basis || (basis == old_basis && owner.supersedes(old))
            }
            (
                Mark::Close { instance_id: new, found_gone: new_gone, spared: new_spared, .. },
                Mark::Close { instance_id: old, found_gone: old_gone, spared: old_spared, .. },
            ) => {
                let rank = |gone: bool, instance: &Option<String>, spared: bool| {
                    (!gone, instance.is_none(), spared, instance.clone())
                };
                rank(*new_gone, new, *new_spared) > rank(*old_gone, old, *old_spared)
            }
            _ => false,
        }
    }

    /// Identity and order: time, then closes before opens (an ENI that
    /// releases and re-takes an address in the same second holds it) before
    /// relabels (an attach in the second the ENI takes the address labels
    /// it; in the second it releases it, the relabel is void), then ENI.
    /// Two marks with the same key are the same fact.
    pub fn key(&self) -> (UnixTime, u8, &str) {
        let rank = match self {
            Mark::Close { .. } => 0,
            Mark::Open { .. } => 1,
            Mark::Relabel { .. } => 2,
        };
        (self.at(), rank, self.eni_id())
    }

    /// A sortable string form of [`Mark::key`], for stores that order keys
    /// as strings (the DynamoDB sort key). Times before 1970 are not used.
    pub fn sort_key(&self) -> String {
        let (at, rank, eni) = self.key();
        format!("{:012}#{rank}#{eni}", at.0.max(0))
    }
}

/// One ownership interval `[from, to)`; `to` is `None` while current.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interval {
    pub scope: Scope,
    pub address: IpAddr,
    pub from: UnixTime,
    pub to: Option<UnixTime>,
    pub owner: Owner,
}

/// What a (possibly partial) timeline says about one time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution<'a> {
    Owned(&'a Owner),
    /// Known to be unowned at that time.
    Free,
    /// The marks held do not reach back far enough to tell.
    Unknown,
}

/// [`Resolution`] by position: the index of the mark naming the owner (an
/// open, or a relabel of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Located {
    Open(usize),
    Free,
    Unknown,
}

/// The marks of one address, sorted by [`Mark::key`], without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timeline {
    marks: Vec<Mark>,
}

impl Timeline {
    pub fn new() -> Self {
        Timeline::default()
    }

    /// Builds a timeline from marks in any order, dropping duplicates.
    pub fn from_marks(marks: impl IntoIterator<Item = Mark>) -> Self {
        let mut t = Timeline::new();
        for m in marks {
            t.insert(m);
        }
        t
    }

    pub fn marks(&self) -> &[Mark] {
        &self.marks
    }

    pub fn is_empty(&self) -> bool {
        self.marks.is_empty()
    }

    /// Adds a fact; `false` when it was already known. Of two versions of
    /// one fact, [`Mark::supersedes`] decides, whatever the order they came
    /// in.
    pub fn insert(&mut self, mark: Mark) -> bool {
        match self.marks.binary_search_by(|m| m.key().cmp(&mark.key())) {
            Ok(i) if mark.supersedes(&self.marks[i]) => {
                self.marks[i] = mark;
                true
            }
            Ok(_) => false,
            Err(i) => {
                self.marks.insert(i, mark);
                true
            }
        }
    }

    /// The owner at `at`, treating the marks held as the complete history
    /// (`complete`) or as only its latest part.
    pub fn resolve(&self, at: UnixTime, complete: bool) -> Resolution<'_> {
        match self.locate(at, complete) {
            Located::Open(i) => Resolution::Owned(self.marks[i].owner().expect("locate names opens and relabels")),
            Located::Free => Resolution::Free,
            Located::Unknown => Resolution::Unknown,
        }
    }

    /// [`Timeline::resolve`], naming the mark that names the owner (its
    /// open, or its latest relabel) by its index in [`Timeline::marks`].
    pub fn locate(&self, at: UnixTime, complete: bool) -> Located {
        // The newest open at or before `at`, as its ENI's relabels since
        // label it, unless a close of the ENI (as labelled then) came after.
        let upto = self.marks.partition_point(|m| m.at() <= at);
        match self.marks[..upto].iter().rposition(Mark::is_open) {
            Some(open) => match self.holding(open, upto) {
                (label, None) => Located::Open(label),
                (_, Some(_)) => Located::Free,
            },
            None if complete => Located::Free,
            None => Located::Unknown,
        }
    }

    /// Follows the holding that the open or relabel `marks[from]` belongs
    /// to through the marks before `upto`: the index of the mark that
    /// labels it last, and of the mark that ends it, if any (a close of its
    /// ENI as labelled then, or another ENI's open).
    fn holding(&self, from: usize, upto: usize) -> (usize, Option<usize>) {
        let eni = self.marks[from].eni_id();
        let mut label = from;
        for (i, m) in self.marks.iter().enumerate().take(upto).skip(from + 1) {
            let ends = match m {
                Mark::Open { owner, .. } | Mark::Relabel { owner, .. } if owner.eni_id == eni => {
                    label = i;
                    false
                }
                Mark::Open { .. } => true,
                Mark::Relabel { .. } => false,
                Mark::Close { .. } => self.marks[label].owner().is_some_and(|o| m.ends(o)),
            };
            if ends {
                return (label, Some(i));
            }
        }
        (label, None)
    }

    /// Where the holding that the open or relabel `marks()[from]` belongs
    /// to ends, as far as these marks tell: the index of its ENI's close,
    /// or of another ENI's open.
    pub fn end_of_holding(&self, from: usize) -> Option<usize> {
        self.holding(from, self.marks.len()).1
    }

    /// The owner at `at`, the timeline being the complete history.
    pub fn owner_at(&self, at: UnixTime) -> Option<&Owner> {
        match self.resolve(at, true) {
            Resolution::Owned(o) => Some(o),
            _ => None,
        }
    }

    /// The current owner, if any.
    pub fn current(&self) -> Option<&Owner> {
        self.owner_at(UnixTime(i64::MAX))
    }

    /// When the current owner's ENI took the address: the latest open.
    pub fn current_since(&self) -> Option<UnixTime> {
        self.current()?;
        self.marks.iter().rev().find(|m| m.is_open()).map(Mark::at)
    }

    /// The intervals the marks describe, oldest first: one per owner for as
    /// long as it holds, whatever marks say so (consecutive opens and
    /// relabels of the same owner, a close and a re-open in one second);
    /// none of no length.
    pub fn intervals(&self, key: &AddressKey) -> Vec<Interval> {
        let mut out: Vec<Interval> = Vec::new();
        let mut current: Option<(UnixTime, &Owner)> = None;
        let finish = |from: UnixTime, to: Option<UnixTime>, owner: &Owner, out: &mut Vec<Interval>| {
            if to == Some(from) {
                return;
            }
            match out.last_mut() {
                Some(last) if last.to == Some(from) && last.owner == *owner => last.to = to,
                _ => out.push(Interval {
                    scope: key.scope.clone(),
                    address: key.address,
                    from,
                    to,
                    owner: owner.clone(),
                }),
            }
        };
        for mark in &self.marks {
            match mark {
                Mark::Open { at, owner } => {
                    match current {
                        Some((_, cur)) if cur == owner => continue,
                        Some((from, cur)) => finish(from, Some(*at), cur, &mut out),
                        None => {}
                    }
                    current = Some((*at, owner));
                }
                // Inside its ENI's holding only; else void.
                Mark::Relabel { at, owner, .. } => match current {
                    Some((_, cur)) if cur == owner => {}
                    Some((from, cur)) if cur.eni_id == owner.eni_id => {
                        finish(from, Some(*at), cur, &mut out);
                        current = Some((*at, owner));
                    }
                    _ => {}
                },
                Mark::Close { at, .. } => {
                    if let Some((from, cur)) = current {
                        if mark.ends(cur) {
                            finish(from, Some(*at), cur, &mut out);
                            current = None;
                        }
                    }
                }
            }
        }
        if let Some((from, cur)) = current {
            finish(from, None, cur, &mut out);
        }
        out
    }

    /// Keeps only the latest `n` marks (a store's summary of the history).
    pub fn latest(&self, n: usize) -> Timeline {
        Timeline { marks: self.marks[self.marks.len().saturating_sub(n)..].to_vec() }
    }

    /// Drops marks that only describe intervals ended before `cutoff`
    /// (retention). The current interval and anything after `cutoff` stay.
    pub fn expire_before(&mut self, cutoff: UnixTime) {
        // The latest open at or before the cutoff still explains times after
        // it; everything older goes.
        let upto = self.marks.partition_point(|m| m.at() < cutoff);
        if let Some(keep_from) = self.marks[..upto].iter().rposition(Mark::is_open) {
            self.marks.drain(..keep_from);
        } else {
            self.marks.drain(..upto);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ownership::OwnerKind;

    fn owner(eni: &str, app: &str) -> Owner {
        let mut o = Owner::new(eni, OwnerKind::Instance);
        o.app = Some(app.into());
        o
    }

    fn open(at: i64, eni: &str, app: &str) -> Mark {
        Mark::Open { at: UnixTime(at), owner: owner(eni, app) }
    }

    fn close(at: i64, eni: &str) -> Mark {
        Mark::close(UnixTime(at), eni)
    }

    fn app_at(t: &Timeline, at: i64) -> Option<&str> {
        t.owner_at(UnixTime(at)).and_then(|o| o.app.as_deref())
    }

    #[test]
    fn a_close_for_an_instance_spares_the_interface_detached_from_it() {
        let mut attached = owner("eni-a", "x");
        attached.instance_id = Some("i-1".into());
        let bare = owner("eni-a", "bare");
        let scoped = |at| Mark::Close {
            at: UnixTime(at),
            eni_id: "eni-a".into(),
            instance_id: Some("i-1".into()),
            found_gone: false,
            spared: false,
        };
        let t = Timeline::from_marks([
            Mark::Open { at: UnixTime(100), owner: attached.clone() },
            Mark::Open { at: UnixTime(200), owner: bare },
            scoped(300),
        ]);
        assert_eq!(app_at(&t, 350), Some("bare"), "detached before the instance ended");
        let t = Timeline::from_marks([Mark::Open { at: UnixTime(100), owner: attached }, scoped(300)]);
        assert_eq!(app_at(&t, 350), None, "attached when the instance ended");
        // Of two closes at one time, the one for any attachment wins.
        let mut both = Timeline::from_marks([scoped(300)]);
        assert!(both.insert(close(300, "eni-a")));
        assert!(!both.insert(scoped(300)));
        assert_eq!(both.marks(), [close(300, "eni-a")]);
    }

    fn relabel(at: i64, eni: &str, app: &str) -> Mark {
        Mark::relabel(UnixTime(at), owner(eni, app))
    }

    /// Owners and intervals tell the same history.
    fn spans(t: &Timeline) -> Vec<(i64, Option<i64>, String)> {
        let key = AddressKey::new(Scope::Vpc("vpc-1".into()), "10.0.0.1".parse().unwrap());
        let spans: Vec<_> = t
            .intervals(&key)
            .iter()
            .map(|i| (i.from.0, i.to.map(|t| t.0), i.owner.app.clone().unwrap_or_default()))
            .collect();
        for at in 0..1_000 {
            let from_spans = spans.iter().find(|(f, to, _)| *f <= at && to.is_none_or(|to| at < to));
            assert_eq!(app_at(t, at), from_spans.map(|s| s.2.as_str()), "at {at}");
        }
        spans
    }

    #[test]
    fn a_relabel_counts_only_while_its_eni_holds_the_address() {
        // Attached (x), detached (bare), attached elsewhere (y): the
        // holding relabelled at each.
        let t = Timeline::from_marks([
            open(100, "eni-a", "bare"),
            relabel(200, "eni-a", "x"),
            relabel(300, "eni-a", "bare"),
            relabel(400, "eni-a", "y"),
        ]);
        let want = [(100, Some(200), "bare"), (200, Some(300), "x"), (300, Some(400), "bare"), (400, None, "y")];
        assert_eq!(spans(&t), want.map(|(f, to, a)| (f, to, a.to_owned())));
        // The address released before the attach (learned after it): the
        // attach gives it back to nobody.
        let t = Timeline::from_marks([open(100, "eni-a", "bare"), close(150, "eni-a"), relabel(200, "eni-a", "x")]);
        assert_eq!(spans(&t), [(100, Some(150), "bare".to_owned())]);
        // Released in the second of the attach: released.
        let t = Timeline::from_marks([open(100, "eni-a", "bare"), relabel(200, "eni-a", "x"), close(200, "eni-a")]);
        assert_eq!(spans(&t), [(100, Some(200), "bare".to_owned())]);
        // Taken by another ENI since: the relabel neither gives it back nor
        // ends the new owner's interval.
        let t = Timeline::from_marks([open(100, "eni-a", "bare"), open(150, "eni-b", "z"), relabel(200, "eni-a", "x")]);
        assert_eq!(spans(&t), [(100, Some(150), "bare".to_owned()), (150, None, "z".to_owned())]);
        // Taken back later: the next relabel counts again.
        let t = Timeline::from_marks([
            open(100, "eni-a", "bare"),
            close(150, "eni-a"),
            relabel(200, "eni-a", "x"),
            open(300, "eni-a", "bare"),
            relabel(400, "eni-a", "y"),
        ]);
        let want = [(100, Some(150), "bare"), (300, Some(400), "bare"), (400, None, "y")];
        assert_eq!(spans(&t), want.map(|(f, to, a)| (f, to, a.to_owned())));
    }

    #[test]
    fn an_instance_close_follows_the_relabelled_owner() {
        let mut attached = owner("eni-a", "x");
        attached.instance_id = Some("i-1".into());
        let stop = Mark::Close {
            at: UnixTime(300),
            eni_id: "eni-a".into(),
            instance_id: Some("i-1".into()),
            found_gone: false,
            spared: false,
        };
        let t =
            Timeline::from_marks([open(100, "eni-a", "bare"), Mark::relabel(UnixTime(200), attached), stop.clone()]);
        assert_eq!(app_at(&t, 250), Some("x"));
        assert_eq!(app_at(&t, 350), None, "attached to the instance when it ended");
        assert_eq!(t.end_of_holding(0), Some(2));
        let detached = Timeline::from_marks([open(100, "eni-a", "bare"), stop]);
        assert_eq!(app_at(&detached, 350), Some("bare"));
        assert_eq!(detached.end_of_holding(0), None);
    }

    #[test]
    fn release_and_reuse_in_any_order_with_duplicates() {
        let marks = vec![open(100, "eni-a", "x"), close(200, "eni-a"), open(300, "eni-b", "y")];
        let expected = Timeline::from_marks(marks.clone());
        // Every permutation, each fact delivered twice.
        let orders = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
        for order in orders {
            let mut t = Timeline::new();
            for i in order.iter().chain(order.iter()) {
                t.insert(marks[*i].clone());
            }
            assert_eq!(t, expected);
            assert_eq!(app_at(&t, 99), None);
            assert_eq!(app_at(&t, 100), Some("x"));
            assert_eq!(app_at(&t, 199), Some("x"));
            assert_eq!(app_at(&t, 200), None);
            assert_eq!(app_at(&t, 299), None);
            assert_eq!(app_at(&t, 300), Some("y"));
            assert_eq!(t.current().unwrap().app.as_deref(), Some("y"));
        }
    }

    #[test]
    fn an_open_ends_the_previous_owner_whose_release_was_lost() {
        let t = Timeline::from_marks([open(100, "eni-a", "x"), open(200, "eni-b", "y"), close(300, "eni-b")]);
        assert_eq!(app_at(&t, 150), Some("x"));
        assert_eq!(app_at(&t, 250), Some("y"));
        // b released it; a's older open does not come back.
        assert_eq!(app_at(&t, 350), None);
    }

    #[test]
    fn a_late_close_of_an_old_owner_does_not_end_the_new_one() {
        let t = Timeline::from_marks([open(100, "eni-a", "x"), open(150, "eni-b", "y"), close(200, "eni-a")]);
        assert_eq!(app_at(&t, 250), Some("y"));
    }

    #[test]
    fn reopening_after_a_close_owns_again() {
        let t = Timeline::from_marks([open(100, "eni-a", "x"), close(200, "eni-a"), open(300, "eni-a", "x")]);
        assert_eq!(app_at(&t, 250), None);
        assert_eq!(app_at(&t, 300), Some("x"));
        // Same second: close then open, the ENI holds it.
        let t = Timeline::from_marks([open(100, "eni-a", "x"), open(200, "eni-a", "x"), close(200, "eni-a")]);
        assert_eq!(app_at(&t, 200), Some("x"));
    }

    #[test]
    fn partial_timelines_know_when_they_cannot_tell() {
        let t = Timeline::from_marks([open(100, "eni-a", "x"), close(200, "eni-a"), open(300, "eni-b", "y")]);
        let head = t.latest(1);
        assert!(matches!(head.resolve(UnixTime(350), false), Resolution::Owned(_)));
        assert_eq!(head.resolve(UnixTime(150), false), Resolution::Unknown);
        assert_eq!(head.resolve(UnixTime(150), true), Resolution::Free);
    }

    #[test]
    fn intervals_merge_repeated_opens_and_end_at_the_next_owner() {
        let key = AddressKey::new(Scope::Vpc("vpc-1".into()), "10.0.0.1".parse().unwrap());
        let t = Timeline::from_marks([
            open(100, "eni-a", "x"),
            open(120, "eni-a", "x"),
            open(200, "eni-b", "y"),
            close(300, "eni-b"),
            open(400, "eni-c", "z"),
        ]);
        let spans: Vec<_> =
            t.intervals(&key).iter().map(|i| (i.from.0, i.to.map(|t| t.0), i.owner.app.clone().unwrap())).collect();
        assert_eq!(
            spans,
            vec![(100, Some(200), "x".to_owned()), (200, Some(300), "y".to_owned()), (400, None, "z".to_owned())]
        );
        assert_eq!(t.current_since(), Some(UnixTime(400)));
    }

    #[test]
    fn expiry_keeps_what_explains_later_times() {
        let mut t = Timeline::from_marks([
            open(100, "eni-a", "x"),
            close(200, "eni-a"),
            open(300, "eni-b", "y"),
            open(500, "eni-c", "z"),
        ]);
        t.expire_before(UnixTime(400));
        assert_eq!(t.marks().len(), 2);
        assert_eq!(app_at(&t, 450), Some("y"));
        assert_eq!(app_at(&t, 150), None);
    }

    #[test]
    fn a_spared_instance_end_ends_nothing_in_any_order() {
        let mut attached = owner("eni-a", "x");
        attached.instance_id = Some("i-1".into());
        let end = |spared: bool, instance: Option<&str>| Mark::Close {
            at: UnixTime(200),
            eni_id: "eni-a".into(),
            instance_id: instance.map(str::to_owned),
            found_gone: false,
            spared,
        };
        let instance = attached.instance_id.as_deref();
        for marks in [[end(false, instance), end(true, instance)], [end(true, instance), end(false, instance)]] {
            let mut t = Timeline::from_marks([Mark::Open { at: UnixTime(100), owner: attached.clone() }]);
            for m in marks {
                t.insert(m);
            }
            assert_eq!(app_at(&t, 250), Some("x"), "the spared end wins");
        }
        // A close of the ENI whatever it is attached to still ends it.
        let mut t = Timeline::from_marks([Mark::Open { at: UnixTime(100), owner: attached.clone() }, end(false, None)]);
        t.insert(end(true, instance));
        assert_eq!(app_at(&t, 250), None);
    }

    #[test]
    fn sort_keys_order_like_keys() {
        let a = close(99, "eni-z");
        let b = open(99, "eni-z", "x");
        let c = relabel(99, "eni-a", "x");
        let d = open(100, "eni-a", "x");
        assert!(a.key() < b.key() && b.key() < c.key() && c.key() < d.key());
        assert!(a.sort_key() < b.sort_key() && b.sort_key() < c.sort_key() && c.sort_key() < d.sort_key());
    }
}
