//! The second chance: flows with a side the table cannot vouch for yet
//! wait in a delayed queue and are decided again later. A deferred flow
//! carries its output's first half as written (so the output line is the
//! same whenever it is finished) and what deciding its sides needs.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::flowlog::FlowDirection;
use crate::ownership::UnixTime;

/// One flow waiting to be decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeferredFlow {
    /// The output line's first half: `{"timestamp":…`, `flow_id` and the
    /// flow-log fields, without the closing brace.
    pub half: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst: Option<IpAddr>,
    /// The flow's start (deferred flows always have one).
    pub start: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_id: Option<String>,
    /// `flow-direction`: true for egress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<bool>,
    /// Which sides were not decided (their owner becomes
    /// `owner_after_retry` once vouched for).
    pub src_pending: bool,
    pub dst_pending: bool,
}

impl DeferredFlow {
    pub fn direction(&self) -> Option<FlowDirection> {
        self.egress.map(|e| if e { FlowDirection::Egress } else { FlowDirection::Ingress })
    }

    pub fn egress_of(direction: Option<FlowDirection>) -> Option<bool> {
        direction.map(|d| d == FlowDirection::Egress)
    }
}

/// One queue message: flows first seen together, waiting together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeferredBatch {
    /// When the enricher first processed these flows: the wait is bounded
    /// from here.
    pub first_seen: UnixTime,
    /// Second chances taken so far.
    pub attempt: u32,
    pub flows: Vec<DeferredFlow>,
}

/// Why a message body is not a deferred batch.
#[derive(Debug, thiserror::Error)]
#[error("not a deferred batch: {0}")]
pub struct BadBatch(#[from] serde_json::Error);

impl DeferredBatch {
    pub fn parse(body: &str) -> Result<DeferredBatch, BadBatch> {
        Ok(serde_json::from_str(body)?)
    }

    /// Packs flows into message bodies of at most `max_bytes` each, in
    /// order; each body comes with the indexes of the flows it holds. A
    /// flow too large for any message on its own is named in `too_large`,
    /// so the caller settles it rather than drop it.
    pub fn pack(first_seen: UnixTime, attempt: u32, flows: &[DeferredFlow], max_bytes: usize) -> Packed {
        let open = format!("{{\"first_seen\":{},\"attempt\":{attempt},\"flows\":[", first_seen.0);
        let envelope = open.len() + "]}".len();
        let mut packed = Packed::default();
        let mut body = String::new();
        let mut held: Vec<usize> = Vec::new();
        let finish = |body: &mut String, held: &mut Vec<usize>, packed: &mut Packed| {
            if !held.is_empty() {
                body.push_str("]}");
                packed.bodies.push((std::mem::take(body), std::mem::take(held)));
            }
        };
        for (i, flow) in flows.iter().enumerate() {
            let json = serde_json::to_string(flow).expect("a deferred flow serializes");
            if envelope + json.len() > max_bytes {
                packed.too_large.push(i);
                continue;
            }
            if !held.is_empty() && body.len() + 1 + json.len() + 2 > max_bytes {
                finish(&mut body, &mut held, &mut packed);
            }
            if held.is_empty() {
                body.push_str(&open);
            } else {
                body.push(',');
            }
            body.push_str(&json);
            held.push(i);
        }
        finish(&mut body, &mut held, &mut packed);
        packed
    }
}

/// Deferred flows as message bodies ([`DeferredBatch::pack`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Packed {
    /// Each body, with the indexes of the flows it holds.
    pub bodies: Vec<(String, Vec<usize>)>,
    /// Flows no message can hold.
    pub too_large: Vec<usize>,
}

/// How long undecided sides wait, and how often they are tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitPolicy {
    /// Delay before each second chance (SQS allows up to 900 s).
    pub delay_seconds: u32,
    /// The longest a flow waits from when it was first seen; after that,
    /// undecided sides are written `unattributed`.
    pub max_wait_seconds: i64,
}

impl Default for WaitPolicy {
    /// Chosen from `dredge demo` (README, "The second chance").
    fn default() -> Self {
        WaitPolicy { delay_seconds: 180, max_wait_seconds: 1200 }
    }
}

impl WaitPolicy {
    /// Whether a flow first seen at `first_seen` may wait once more at
    /// `now`: its next try still falls within the bound.
    pub fn may_wait(&self, first_seen: UnixTime, now: UnixTime) -> bool {
        self.delay_seconds > 0 && now.0 - first_seen.0 + i64::from(self.delay_seconds) <= self.max_wait_seconds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(half: &str) -> DeferredFlow {
        DeferredFlow {
            half: half.into(),
            src: Some("10.0.0.1".parse().unwrap()),
            dst: Some("10.0.0.2".parse().unwrap()),
            start: 1000,
            interface_id: Some("eni-1".into()),
            vpc_id: None,
            egress: Some(true),
            src_pending: false,
            dst_pending: true,
        }
    }

    #[test]
    fn packs_within_the_limit_and_names_what_cannot_fit() {
        let flows: Vec<_> = (0..50).map(|i| flow(&format!("{{\"timestamp\":{i}"))).collect();
        let packed = DeferredBatch::pack(UnixTime(7), 2, &flows, 1000);
        assert!(packed.too_large.is_empty());
        assert!(packed.bodies.len() > 1);
        let mut back = Vec::new();
        let mut indexes: Vec<usize> = Vec::new();
        for (body, held) in &packed.bodies {
            assert!(body.len() <= 1000, "{}", body.len());
            let batch = DeferredBatch::parse(body).unwrap();
            assert_eq!((batch.first_seen, batch.attempt, batch.flows.len()), (UnixTime(7), 2, held.len()));
            back.extend(batch.flows);
            indexes.extend(held.iter().copied());
        }
        assert_eq!(back, flows);
        assert_eq!(indexes, (0..50).collect::<Vec<_>>());
        let flows = [flow(&"x".repeat(2000)), flow("{")];
        let packed = DeferredBatch::pack(UnixTime(7), 0, &flows, 1000);
        assert_eq!((packed.bodies.len(), packed.too_large), (1, vec![0]));
        assert_eq!(packed.bodies[0].1, vec![1]);
        assert_eq!(flows[1].direction(), Some(FlowDirection::Egress));
    }

    #[test]
    fn waits_only_within_the_bound() {
        let p = WaitPolicy { delay_seconds: 300, max_wait_seconds: 900 };
        assert!(p.may_wait(UnixTime(0), UnixTime(0)));
        assert!(p.may_wait(UnixTime(0), UnixTime(600)));
        assert!(!p.may_wait(UnixTime(0), UnixTime(601)));
        assert!(!WaitPolicy { delay_seconds: 0, max_wait_seconds: 900 }.may_wait(UnixTime(0), UnixTime(0)));
        assert!(DeferredBatch::parse("{}").is_err());
    }
}
