//! The ownership history of one address as a set of marks: "ENI e opened
//! the address at t" (with its owner) and "ENI e released it at t". Marks are
//! facts; intervals derive from them. Because a set of facts does not depend
//! on the order it was learned in, replayed, duplicated and out-of-order
//! deliveries converge to the same history.
//!
//! The owner at time t is the ENI of the latest open at or before t, unless
//! that ENI released the address between its open and t. An open therefore
//! also ends the previous owner's interval (its release event may be lost).

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
    },
}

impl Mark {
    pub fn at(&self) -> UnixTime {
        match self {
            Mark::Open { at, .. } | Mark::Close { at, .. } => *at,
        }
    }

    pub fn eni_id(&self) -> &str {
        match self {
            Mark::Open { owner, .. } => &owner.eni_id,
            Mark::Close { eni_id, .. } => eni_id,
        }
    }

    pub fn is_open(&self) -> bool {
        matches!(self, Mark::Open { .. })
    }

    /// A close of `eni_id` at `at`, whatever it is attached to.
    pub fn close(at: UnixTime, eni_id: impl Into<String>) -> Mark {
        Mark::Close { at, eni_id: eni_id.into(), instance_id: None, found_gone: false }
    }

    /// What a reconcile writes for an address it found gone.
    pub fn found_gone(at: UnixTime, eni_id: impl Into<String>) -> Mark {
        Mark::Close { at, eni_id: eni_id.into(), instance_id: None, found_gone: true }
    }

    /// A close at the release's own time (from an event), not a reconcile's
    /// upper bound.
    pub fn is_exact_close(&self) -> bool {
        matches!(self, Mark::Close { found_gone: false, .. })
    }

    /// Whether this is a close that ends `owner`'s interval.
    pub fn ends(&self, owner: &Owner) -> bool {
        match self {
            Mark::Close { eni_id, instance_id, .. } => {
                *eni_id == owner.eni_id && instance_id.as_ref().is_none_or(|i| owner.instance_id.as_ref() == Some(i))
            }
            Mark::Open { .. } => false,
        }
    }

    /// Whether this version of a fact (same [`Mark::key`]) replaces
    /// `stored`: an open whose owner tells more ([`Owner::supersedes`]); a
    /// close from an event over a reconcile's, then a close of the ENI
    /// whatever it is attached to over one for a single instance. A total
    /// order, so any arrival order keeps the same one.
    pub fn supersedes(&self, stored: &Mark) -> bool {
        match (self, stored) {
            (Mark::Open { owner, .. }, Mark::Open { owner: old, .. }) => owner.supersedes(old),
            (
                Mark::Close { instance_id: new, found_gone: new_gone, .. },
                Mark::Close { instance_id: old, found_gone: old_gone, .. },
            ) => {
                let rank = |gone: bool, instance: &Option<String>| (!gone, instance.is_none(), instance.clone());
                rank(*new_gone, new) > rank(*old_gone, old)
            }
            _ => false,
        }
    }

    /// Identity and order: time, then closes before opens (an ENI that
    /// releases and re-takes an address in the same second holds it), then
    /// ENI. Two marks with the same key are the same fact.
    pub fn key(&self) -> (UnixTime, u8, &str) {
        (self.at(), u8::from(self.is_open()), self.eni_id())
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

/// [`Resolution`] by position: the index of the owner's open mark.
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
            Located::Open(i) => match &self.marks[i] {
                Mark::Open { owner, .. } => Resolution::Owned(owner),
                Mark::Close { .. } => unreachable!("locate names open marks"),
            },
            Located::Free => Resolution::Free,
            Located::Unknown => Resolution::Unknown,
        }
    }

    /// [`Timeline::resolve`], naming the owner's open mark by its index in
    /// [`Timeline::marks`].
    pub fn locate(&self, at: UnixTime, complete: bool) -> Located {
        // The newest open mark at or before `at`, unless a close of the same
        // ENI came after it.
        let upto = self.marks.partition_point(|m| m.at() <= at);
        for i in (0..upto).rev() {
            if let Mark::Open { owner, .. } = &self.marks[i] {
                let closed = self.marks[i + 1..upto].iter().any(|m| m.ends(owner));
                return if closed { Located::Free } else { Located::Open(i) };
            }
        }
        if complete {
            Located::Free
        } else {
            Located::Unknown
        }
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

    /// The open mark that starts the current interval.
    pub fn current_since(&self) -> Option<UnixTime> {
        let owner = self.current()?;
        self.marks.iter().rev().find(|m| m.is_open() && m.eni_id() == owner.eni_id).map(Mark::at)
    }

    /// The intervals the marks describe, oldest first. Consecutive opens of
    /// the same owner merge into one interval.
    pub fn intervals(&self, key: &AddressKey) -> Vec<Interval> {
        let mut out: Vec<Interval> = Vec::new();
        let mut current: Option<(UnixTime, &Owner)> = None;
        let finish = |from: UnixTime, to: Option<UnixTime>, owner: &Owner, out: &mut Vec<Interval>| {
            out.push(Interval { scope: key.scope.clone(), address: key.address, from, to, owner: owner.clone() });
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
    fn sort_keys_order_like_keys() {
        let a = close(99, "eni-z");
        let b = open(99, "eni-a", "x");
        let c = open(100, "eni-a", "x");
        assert!(a.key() < b.key() && b.key() < c.key());
        assert!(a.sort_key() < b.sort_key() && b.sort_key() < c.sort_key());
    }
}
