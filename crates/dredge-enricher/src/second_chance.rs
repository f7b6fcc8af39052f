//! Sending deferred flows to the retry queue: grouped by how long they
//! have waited, packed into delayed messages, sent in SendMessageBatch
//! calls, with the input each message came from kept so that a message
//! that cannot be sent makes Lambda retry exactly that input.

use std::collections::BTreeMap;

use dredge_core::enrich::{DeferredBatch, DeferredFlow, WaitPolicy};
use dredge_core::ownership::UnixTime;
use dredge_core::retry_queue::{batches, QueueEntryError, QueueError, QueueMessage, RetryQueue};

/// A message body holds at most this much: four fill a SendMessageBatch
/// call's 256 KiB.
pub const MESSAGE_BYTES: usize = 64 * 1024;

/// A flow whose output's first half is larger than this is not deferred
/// (it could not fit a message): its undecided sides are settled at once.
pub const MAX_DEFERRED_HALF: usize = 32 * 1024;

/// Tries of a SendMessageBatch call (whole-call and per-entry transient
/// failures) before the inputs behind what is unsent are failed.
const SEND_ATTEMPTS: u32 = 3;

/// The queue of an enricher that has none: every undecided side is
/// settled at once.
#[derive(Debug, Clone, Copy)]
pub enum NoQueue {}

impl RetryQueue for NoQueue {
    async fn send(&self, _: &[QueueMessage]) -> Result<Vec<Result<(), QueueEntryError>>, QueueError> {
        match *self {}
    }
}

/// Flows to defer, by (first seen, attempt), each with its input index.
#[derive(Debug, Default)]
pub struct Deferrals {
    groups: BTreeMap<(UnixTime, u32), Vec<(usize, DeferredFlow)>>,
    flows: u64,
}

/// What sending deferrals did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sent {
    pub flows: u64,
    pub messages: u64,
    pub calls: u64,
    /// The earliest input behind a message not sent, and why.
    pub failed_from: Option<(usize, String)>,
}

impl Deferrals {
    /// Adds a flow that waits once more: `attempt` is the try it waits for.
    pub fn push(&mut self, first_seen: UnixTime, attempt: u32, input: usize, flow: DeferredFlow) {
        self.groups.entry((first_seen, attempt)).or_default().push((input, flow));
        self.flows += 1;
    }

    pub fn len(&self) -> u64 {
        self.flows
    }

    pub fn is_empty(&self) -> bool {
        self.flows == 0
    }

    /// Sends every deferred flow, delayed by the policy's delay.
    pub async fn send<Q: RetryQueue>(self, queue: &Q, policy: &WaitPolicy) -> Sent {
        let mut sent = Sent::default();
        let mut messages: Vec<QueueMessage> = Vec::new();
        // The earliest input behind each message, by message id.
        let mut sources: Vec<usize> = Vec::new();
        for ((first_seen, attempt), flows) in self.groups {
            let (inputs, flows): (Vec<usize>, Vec<DeferredFlow>) = flows.into_iter().unzip();
            let packed = DeferredBatch::pack(first_seen, attempt, &flows, MESSAGE_BYTES);
            // `push` refuses nothing, but a flow that fits no message is
            // never dropped: its input fails.
            for &i in &packed.too_large {
                fail(&mut sent, inputs[i], "a deferred flow fits no message".into());
            }
            for (body, held) in packed.bodies {
                let source = held.iter().map(|&i| inputs[i]).min().expect("a body holds flows");
                messages.push(QueueMessage {
                    id: format!("m{}", sources.len()),
                    body,
                    delay_seconds: policy.delay_seconds,
                });
                sources.push(source);
                sent.flows += held.len() as u64;
            }
        }
        sent.messages = messages.len() as u64;
        let packed = batches(messages);
        for m in packed.too_large {
            fail(&mut sent, sources[index_of(&m)], "a message over the call limit".into());
        }
        for call in packed.calls {
            sent.calls += 1;
            if let Err((unsent, error)) = send_call(queue, call).await {
                for m in unsent {
                    fail(&mut sent, sources[index_of(&m)], error.clone());
                }
            }
        }
        sent
    }
}

fn index_of(m: &QueueMessage) -> usize {
    m.id[1..].parse().expect("ids are m<index>")
}

fn fail(sent: &mut Sent, input: usize, error: String) {
    if sent.failed_from.as_ref().is_none_or(|(i, _)| input < *i) {
        sent.failed_from = Some((input, error));
    }
}

/// One call, retrying what failed for a transient reason; what is still
/// unsent, and why.
async fn send_call<Q: RetryQueue>(queue: &Q, mut call: Vec<QueueMessage>) -> Result<(), (Vec<QueueMessage>, String)> {
    let mut error = String::new();
    for attempt in 1..=SEND_ATTEMPTS {
        match queue.send(&call).await {
            Ok(results) => {
                let mut again = Vec::new();
                for (m, r) in call.into_iter().zip(results) {
                    if let Err(e) = r {
                        if !e.is_transient() {
                            return Err((vec![m], format!("retry queue refused a message: {e}")));
                        }
                        error = format!("retry queue: {e}");
                        again.push(m);
                    }
                }
                if again.is_empty() {
                    return Ok(());
                }
                call = again;
            }
            Err(QueueError::Transient(e)) => error = format!("retry queue: {e}"),
            Err(QueueError::Permanent(e) | QueueError::Invalid(e)) => return Err((call, format!("retry queue: {e}"))),
        }
        if attempt < SEND_ATTEMPTS {
            tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
        }
    }
    Err((call, error))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dredge_core::retry_queue::MemoryQueue;

    fn flow(start: i64) -> DeferredFlow {
        DeferredFlow {
            half: format!("{{\"timestamp\":{start}"),
            src: None,
            dst: Some("10.0.0.2".parse().unwrap()),
            start,
            interface_id: None,
            vpc_id: None,
            egress: None,
            src_pending: false,
            dst_pending: true,
        }
    }

    #[tokio::test]
    async fn deferred_flows_arrive_after_the_delay_grouped_by_their_wait() {
        let queue = MemoryQueue::new();
        queue.set_now(UnixTime(1000));
        let mut d = Deferrals::default();
        d.push(UnixTime(1000), 1, 0, flow(1));
        d.push(UnixTime(400), 3, 1, flow(2));
        d.push(UnixTime(1000), 1, 2, flow(3));
        let policy = WaitPolicy { delay_seconds: 60, max_wait_seconds: 600 };
        let sent = d.send(&queue, &policy).await;
        assert_eq!((sent.flows, sent.messages, sent.calls, sent.failed_from), (3, 2, 1, None));
        assert!(queue.due().is_empty(), "not before the delay");
        queue.set_now(UnixTime(1060));
        let mut got: Vec<(UnixTime, u32, Vec<i64>)> = queue
            .due()
            .iter()
            .map(|m| {
                let b = DeferredBatch::parse(&m.body).unwrap();
                (b.first_seen, b.attempt, b.flows.iter().map(|f| f.start).collect())
            })
            .collect();
        got.sort();
        assert_eq!(got, vec![(UnixTime(400), 3, vec![2]), (UnixTime(1000), 1, vec![1, 3])]);
    }

    #[tokio::test]
    async fn a_queue_that_keeps_failing_fails_the_earliest_input_behind_it() {
        let queue = MemoryQueue::new();
        queue.fail_next(SEND_ATTEMPTS);
        let mut d = Deferrals::default();
        d.push(UnixTime(0), 1, 4, flow(1));
        d.push(UnixTime(0), 1, 2, flow(2));
        let sent = d.send(&queue, &WaitPolicy::default()).await;
        let (input, error) = sent.failed_from.unwrap();
        assert_eq!(input, 2);
        assert!(error.contains("injected"), "{error}");
        assert!(queue.is_empty());
        // One transient failure is retried.
        queue.fail_next(1);
        let mut d = Deferrals::default();
        d.push(UnixTime(0), 1, 0, flow(1));
        assert_eq!(d.send(&queue, &WaitPolicy::default()).await.failed_from, None);
        assert_eq!(queue.len(), 1);
    }
}
