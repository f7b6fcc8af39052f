//! Delay profiles: how late, how often twice and how often never each kind
//! of input reaches Dredge. EventBridge neither orders nor de-duplicates;
//! CloudTrail calls arrive minutes after the fact, with a tail of hours
//! from retries; flow-log records arrive minutes after their window ends.

use crate::rng::Rng;
use crate::world::Time;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    pub name: &'static str,
    pub about: &'static str,
    /// EC2 state-change notifications: seconds, uniform in the range.
    pub state_change: (Time, Time),
    /// CloudTrail calls: log-uniform in the range.
    pub cloudtrail: (Time, Time),
    /// The share of CloudTrail calls delivered after a retry, and how late.
    pub tail_share: f64,
    pub tail: (Time, Time),
    /// The share of events delivered twice (the copy later still), and of
    /// events never delivered.
    pub duplicates: f64,
    pub lost: f64,
    /// Flow-log records after their aggregation window ends.
    pub flow_logs: (Time, Time),
}

pub const PROFILES: [Profile; 3] = [
    Profile {
        name: "ideal",
        about: "every event one second after the fact, flow logs one minute after their window; nothing lost",
        state_change: (1, 2),
        cloudtrail: (1, 1),
        tail_share: 0.0,
        tail: (1, 1),
        duplicates: 0.0,
        lost: 0.0,
        flow_logs: (60, 61),
    },
    Profile {
        name: "typical",
        about: "state changes in 1-10 s, CloudTrail in 1-15 min (0.5% retried for 1-3 h), 1% duplicated, \
                0.1% lost; flow logs 1-10 min after their window",
        state_change: (1, 10),
        cloudtrail: (60, 900),
        tail_share: 0.005,
        tail: (3600, 3 * 3600),
        duplicates: 0.01,
        lost: 0.001,
        flow_logs: (60, 600),
    },
    Profile {
        name: "harsh",
        about: "state changes in 5-90 s, CloudTrail in 3-30 min (5% retried for 1-6 h), 5% duplicated, \
                1% lost; flow logs 5-20 min after their window",
        state_change: (5, 90),
        cloudtrail: (180, 1800),
        tail_share: 0.05,
        tail: (3600, 6 * 3600),
        duplicates: 0.05,
        lost: 0.01,
        flow_logs: (300, 1200),
    },
];

pub fn profile(name: &str) -> Option<&'static Profile> {
    PROFILES.iter().find(|p| p.name == name)
}

impl Profile {
    /// When one ownership event that happened at `at` is delivered: never,
    /// once or twice.
    pub fn deliveries(&self, at: Time, state_change: bool, rng: &mut Rng) -> Vec<Time> {
        if rng.chance(self.lost) {
            return Vec::new();
        }
        let once = |rng: &mut Rng| {
            if state_change {
                at + rng.between(self.state_change.0, self.state_change.1)
            } else if rng.chance(self.tail_share) {
                at + rng.log_between(self.tail.0, self.tail.1)
            } else {
                at + rng.log_between(self.cloudtrail.0, self.cloudtrail.1)
            }
        };
        let first = once(rng);
        if rng.chance(self.duplicates) {
            let second = once(rng).max(first + 1);
            vec![first, second]
        } else {
            vec![first]
        }
    }

    /// When a flow-log record whose window ended at `end` is delivered.
    pub fn flow_log(&self, end: Time, rng: &mut Rng) -> Time {
        end + rng.between(self.flow_logs.0, self.flow_logs.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_deliver_within_their_ranges() {
        let mut rng = Rng::new(9);
        let typical = profile("typical").unwrap();
        let (mut lost, mut twice, n) = (0, 0, 100_000);
        for _ in 0..n {
            let d = typical.deliveries(1000, false, &mut rng);
            match d.len() {
                0 => lost += 1,
                2 => twice += 1,
                _ => {}
            }
            assert!(d.iter().all(|t| (1060..=1000 + 3 * 3600).contains(t)), "{d:?}");
            let s = typical.deliveries(1000, true, &mut rng);
            assert!(s.iter().all(|t| (1001..=1010).contains(t)), "{s:?}");
        }
        assert!((50..200).contains(&lost), "{lost}");
        assert!((700..1300).contains(&twice), "{twice}");
        assert!(profile("ideal").unwrap().deliveries(5, false, &mut rng) == vec![6]);
        assert!(profile("nope").is_none());
    }
}
