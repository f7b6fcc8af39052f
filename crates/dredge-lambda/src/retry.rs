//! The one retry policy: how many tries, and how long to wait between
//! them. Every retry loop in Dredge (DynamoDB unprocessed keys and head
//! conflicts, Kinesis entries, EC2, the ip-ranges fetch) asks a
//! [`RetryPolicy`], so all of them back off exponentially with jitter:
//! callers that fail together do not retry together.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Exponential backoff with "equal jitter": the wait before retry `n` is
/// `base * 2^(n-1)` capped at `max`, of which the first half is fixed and
/// the second half random.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included (at least 1).
    pub attempts: u32,
    /// The wait before the first retry (before jitter).
    pub base: Duration,
    /// The longest wait (before jitter).
    pub max: Duration,
}

impl RetryPolicy {
    pub const fn new(attempts: u32, base: Duration, max: Duration) -> RetryPolicy {
        RetryPolicy { attempts: if attempts == 0 { 1 } else { attempts }, base, max }
    }

    /// Whether another try may follow `tried` tries.
    pub fn retries_after(&self, tried: u32) -> bool {
        tried < self.attempts
    }

    /// The wait before retry `retry` (1 for the first retry).
    pub fn delay(&self, retry: u32) -> Duration {
        let exponential = self.base.saturating_mul(1u32 << retry.saturating_sub(1).min(20)).min(self.max);
        let half = exponential / 2;
        let spread = u64::try_from((exponential - half).as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(if spread == 0 { 0 } else { random() % (spread + 1) })
    }

    /// Sleeps for [`delay`](Self::delay)`(retry)`.
    pub async fn pause(&self, retry: u32) {
        let delay = self.delay(retry);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
}

/// A random number: std's per-process random hash keys, advanced per call.
/// Jitter needs spread, not cryptographic quality.
fn random() -> u64 {
    std::collections::hash_map::RandomState::new().build_hasher().finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_are_jittered() {
        let p = RetryPolicy::new(10, Duration::from_millis(100), Duration::from_millis(1000));
        for (retry, full) in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1000), (30, 1000)] {
            for _ in 0..50 {
                let d = p.delay(retry).as_millis() as u64;
                assert!((full / 2..=full).contains(&d), "retry {retry}: {d} ms outside {}..={full}", full / 2);
            }
        }
        let waits: std::collections::BTreeSet<Duration> = (0..50).map(|_| p.delay(3)).collect();
        assert!(waits.len() > 10, "jitter spreads the waits: {waits:?}");
    }

    #[test]
    fn attempts_count_the_first_try() {
        let p = RetryPolicy::new(3, Duration::ZERO, Duration::ZERO);
        assert_eq!((1..=4).map(|t| p.retries_after(t)).collect::<Vec<_>>(), [true, true, false, false]);
        assert_eq!(RetryPolicy::new(0, Duration::ZERO, Duration::ZERO).attempts, 1);
        assert_eq!(p.delay(5), Duration::ZERO);
    }
}
