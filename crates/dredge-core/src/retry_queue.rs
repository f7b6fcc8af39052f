//! The retry queue: messages to be handed back later, after a delivery
//! delay (an SQS queue and its `DelaySeconds` in AWS; the enricher defers
//! flows it cannot attribute yet and consumes them again). A queue only
//! carries one SendMessageBatch-sized call and says, entry by entry, what
//! happened; [`batches`] packs messages into such calls.
//!
//! SQS refuses some mistakes for the whole call ([`check_send_batch`]: no
//! entries, too many, bad or repeated entry ids, too many bytes) and others
//! entry by entry, sending the rest ([`check_entry`]: a delay over 15
//! minutes, an empty body, characters SQS does not carry). Both
//! [`MemoryQueue`] and the SQS adapter refuse exactly these, the same way.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::ownership::UnixTime;

/// SendMessageBatch limits: entries per call, and body bytes per call. SQS
/// and moto now take 1 MiB per call; we keep to the classic 256 KiB.
pub const MAX_BATCH_ENTRIES: usize = 10;
pub const MAX_BATCH_BYTES: usize = 256 * 1024;
/// The longest delivery delay SQS takes: 15 minutes.
pub const MAX_DELAY_SECONDS: u32 = 900;
/// Entry ids are 1 to 80 characters of `[A-Za-z0-9_-]`.
pub const MAX_ENTRY_ID_CHARS: usize = 80;

/// One entry of a SendMessageBatch call.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QueueMessage {
    /// Names the entry in the call's answer; distinct within a call.
    pub id: String,
    pub body: String,
    /// How long the message stays invisible after it is sent, at most
    /// [`MAX_DELAY_SECONDS`].
    pub delay_seconds: u32,
}

impl QueueMessage {
    /// What the message counts for against [`MAX_BATCH_BYTES`]: its body
    /// in UTF-8 bytes (we send no message attributes).
    pub fn size(&self) -> usize {
        self.body.len()
    }
}

/// A message handed back by the queue once its delay is over.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReceivedMessage {
    /// The queue's own id for the message, unique per message sent.
    pub message_id: String,
    pub body: String,
}

/// The whole call failed: [`Failure`](crate::Failure), `Transient` or
/// `Permanent`.
pub type QueueError = crate::Failure;

/// Why one entry of a call was not accepted, as SQS says it in the
/// answer's `Failed` list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct QueueEntryError {
    pub code: String,
    pub message: String,
    /// Worth sending again: the failure was SQS's (no `SenderFault`) or a
    /// throttle. Otherwise the entry itself is wrong and fails again.
    pub transient: bool,
}

impl QueueEntryError {
    /// The entry itself is wrong: sending it again changes nothing.
    pub fn sender(code: &str, message: impl Into<String>) -> Self {
        QueueEntryError { code: code.to_owned(), message: message.into(), transient: false }
    }

    pub fn is_transient(&self) -> bool {
        self.transient
    }
}

/// A queue that takes batches of messages.
pub trait RetryQueue: Send + Sync {
    /// Sends one call's worth of messages ([`check_send_batch`] refuses
    /// anything bigger). The result has one entry per message, in order:
    /// entries can fail ([`check_entry`], or SQS's own trouble) while
    /// others are sent.
    fn send(
        &self,
        batch: &[QueueMessage],
    ) -> impl Future<Output = Result<Vec<Result<(), QueueEntryError>>, QueueError>> + Send;
}

/// Why SQS would refuse a SendMessageBatch call whole, as it says it.
pub fn check_send_batch(batch: &[QueueMessage]) -> Result<(), QueueError> {
    let refuse = |code: &str, message: String| Err(QueueError::Permanent(format!("{code}: {message}")));
    if batch.is_empty() {
        return refuse(
            "AWS.SimpleQueueService.EmptyBatchRequest",
            "There should be at least one SendMessageBatchRequestEntry in the request.".into(),
        );
    }
    if batch.len() > MAX_BATCH_ENTRIES {
        return refuse(
            "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
            format!("Maximum number of entries per request are {MAX_BATCH_ENTRIES}. You have sent {}.", batch.len()),
        );
    }
    if let Some(bad) = batch.iter().find(|m| !valid_entry_id(&m.id)) {
        return refuse(
            "AWS.SimpleQueueService.InvalidBatchEntryId",
            format!(
                "A batch entry id can only contain alphanumeric characters, hyphens and underscores. \
                 It can be at most {MAX_ENTRY_ID_CHARS} letters long. (got {:?})",
                bad.id
            ),
        );
    }
    for (i, m) in batch.iter().enumerate() {
        if batch[..i].iter().any(|earlier| earlier.id == m.id) {
            return refuse("AWS.SimpleQueueService.BatchEntryIdsNotDistinct", format!("Id {} repeated.", m.id));
        }
    }
    let total: usize = batch.iter().map(QueueMessage::size).sum();
    if total > MAX_BATCH_BYTES {
        return refuse(
            "AWS.SimpleQueueService.BatchRequestTooLong",
            format!("Batch requests cannot be longer than {MAX_BATCH_BYTES} bytes. You have sent {total} bytes."),
        );
    }
    Ok(())
}

/// Why SQS would refuse one entry of a call it takes (listed under
/// `Failed`, `SenderFault` true, while the other entries are sent).
pub fn check_entry(message: &QueueMessage) -> Result<(), QueueEntryError> {
    if message.delay_seconds > MAX_DELAY_SECONDS {
        return Err(QueueEntryError::sender(
            "InvalidParameterValue",
            format!(
                "Value {} for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= \
                 {MAX_DELAY_SECONDS}.",
                message.delay_seconds
            ),
        ));
    }
    if message.body.is_empty() {
        return Err(QueueEntryError::sender(
            "InvalidParameterValue",
            "Value for parameter MessageBody is invalid. Reason: Message must be at least one character.",
        ));
    }
    if let Some(c) = message.body.chars().find(|&c| !allowed_body_char(c)) {
        return Err(QueueEntryError::sender(
            "InvalidMessageContents",
            format!(
                "Invalid binary character '#x{:X}' was found in the message body, the set of allowed characters \
                 is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF",
                c as u32
            ),
        ));
    }
    Ok(())
}

fn valid_entry_id(id: &str) -> bool {
    (1..=MAX_ENTRY_ID_CHARS).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `#x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF`; a
/// `char` is never a surrogate, so only controls, U+FFFE and U+FFFF fail.
fn allowed_body_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

/// Messages packed into calls by [`batches`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batches {
    /// Calls of at most [`MAX_BATCH_ENTRIES`] messages and
    /// [`MAX_BATCH_BYTES`] bytes, ids distinct within each, in the order
    /// the messages came.
    pub calls: Vec<Vec<QueueMessage>>,
    /// Messages whose body alone is over [`MAX_BATCH_BYTES`]: no call can
    /// carry them, so the caller keeps them elsewhere.
    pub too_large: Vec<QueueMessage>,
}

/// Packs messages, in order, into as few calls as fit the limits. A call
/// ends early rather than repeat an id. Ids, delays and bodies are not
/// checked: [`check_send_batch`] and [`check_entry`] refuse those.
pub fn batches(messages: Vec<QueueMessage>) -> Batches {
    let mut packed = Batches::default();
    let mut call: Vec<QueueMessage> = Vec::new();
    let mut bytes = 0;
    for m in messages {
        if m.size() > MAX_BATCH_BYTES {
            packed.too_large.push(m);
            continue;
        }
        let full =
            call.len() == MAX_BATCH_ENTRIES || bytes + m.size() > MAX_BATCH_BYTES || call.iter().any(|c| c.id == m.id);
        if full {
            packed.calls.push(std::mem::take(&mut call));
            bytes = 0;
        }
        bytes += m.size();
        call.push(m);
    }
    if !call.is_empty() {
        packed.calls.push(call);
    }
    packed
}

/// The embedded queue: messages held in memory, each visible from its send
/// time plus its delay on the queue's own clock ([`set_now`](Self::set_now);
/// it starts at `UnixTime(0)` and never moves by itself). Refuses what SQS
/// refuses ([`check_send_batch`], [`check_entry`]). Optionally kept in a
/// file under a state directory ([`MemoryQueue::open`]) for the CLI.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    state: Mutex<State>,
    path: Option<PathBuf>,
}

/// File name of the persisted queue inside the state directory.
pub const QUEUE_FILE: &str = "retry-queue.json";

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct State {
    now: UnixTime,
    /// Messages sent so far: orders messages visible at the same time and
    /// numbers their ids.
    sent: u64,
    held: Vec<Held>,
    #[serde(skip)]
    fail_next: u32,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Held {
    visible_at: UnixTime,
    seq: u64,
    message: ReceivedMessage,
}

impl MemoryQueue {
    pub fn new() -> Self {
        MemoryQueue::default()
    }

    /// Loads the queue kept in `dir` (empty when there is none yet);
    /// [`MemoryQueue::save`] writes it back.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        let path = dir.join(QUEUE_FILE);
        let state = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(e),
        };
        Ok(MemoryQueue { state: Mutex::new(state), path: Some(path) })
    }

    /// Writes the queue atomically (temporary file, then rename); nothing
    /// for a queue that lives only in memory.
    pub fn save(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else { return Ok(()) };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec(&*self.lock()).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(tmp, path)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the queue's clock.
    pub fn set_now(&self, now: UnixTime) {
        self.lock().now = now;
    }

    pub fn now(&self) -> UnixTime {
        self.lock().now
    }

    /// The next `n` calls to [`send`](RetryQueue::send) that pass
    /// [`check_send_batch`] fail whole, transient, sending nothing.
    pub fn fail_next(&self, n: u32) {
        self.lock().fail_next = n;
    }

    /// Takes every message visible now: by visible-at time, then in the
    /// order sent.
    pub fn due(&self) -> Vec<ReceivedMessage> {
        let mut state = self.lock();
        let now = state.now;
        let (mut due, held): (Vec<Held>, Vec<Held>) = state.held.drain(..).partition(|h| h.visible_at <= now);
        state.held = held;
        due.sort_by_key(|h| (h.visible_at, h.seq));
        due.into_iter().map(|h| h.message).collect()
    }

    /// Hands messages taken by [`due`](Self::due) back, visible at once:
    /// what SQS does with a message a consumer failed (after its visibility
    /// timeout).
    pub fn put_back(&self, messages: impl IntoIterator<Item = ReceivedMessage>) {
        let mut state = self.lock();
        let now = state.now;
        for message in messages {
            let seq = state.sent;
            state.sent += 1;
            state.held.push(Held { visible_at: now, seq, message });
        }
    }

    /// Messages held, visible or not.
    pub fn len(&self) -> usize {
        self.lock().held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl RetryQueue for MemoryQueue {
    async fn send(&self, batch: &[QueueMessage]) -> Result<Vec<Result<(), QueueEntryError>>, QueueError> {
        check_send_batch(batch)?;
        let mut state = self.lock();
        if state.fail_next > 0 {
            state.fail_next -= 1;
            return Err(QueueError::Transient(
                "SQS SendMessageBatch (memory queue): ServiceUnavailable: injected failure".into(),
            ));
        }
        let results = batch.iter().map(check_entry).collect::<Vec<_>>();
        for (m, result) in batch.iter().zip(&results) {
            if result.is_ok() {
                let seq = state.sent;
                state.sent += 1;
                let visible_at = UnixTime(state.now.0 + i64::from(m.delay_seconds));
                let message_id = format!("00000000-0000-4000-8000-{seq:012x}");
                state.held.push(Held {
                    visible_at,
                    seq,
                    message: ReceivedMessage { message_id, body: m.body.clone() },
                });
            }
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(id: &str, body: &str, delay_seconds: u32) -> QueueMessage {
        QueueMessage { id: id.into(), body: body.into(), delay_seconds }
    }

    fn sized(id: &str, size: usize) -> QueueMessage {
        msg(id, &"x".repeat(size), 0)
    }

    fn send(queue: &MemoryQueue, batch: &[QueueMessage]) -> Result<Vec<Result<(), QueueEntryError>>, QueueError> {
        crate::ownership::testing::ready(queue.send(batch))
    }

    fn bodies(received: &[ReceivedMessage]) -> Vec<&str> {
        received.iter().map(|r| r.body.as_str()).collect()
    }

    #[test]
    fn refuses_whole_calls_as_sqs_does() {
        let queue = MemoryQueue::new();
        let refused = |batch: &[QueueMessage], code: &str| {
            let err = send(&queue, batch).unwrap_err();
            assert!(!err.is_transient(), "{err}");
            assert!(err.message().starts_with(&format!("AWS.SimpleQueueService.{code}: ")), "{err}");
        };
        refused(&[], "EmptyBatchRequest");
        let eleven: Vec<_> = (0..11).map(|i| msg(&i.to_string(), "b", 0)).collect();
        refused(&eleven, "TooManyEntriesInBatchRequest");
        for bad in ["", "has space", "dot.ted", "é", &"a".repeat(81)] {
            refused(&[msg("ok", "b", 0), msg(bad, "b", 0)], "InvalidBatchEntryId");
        }
        refused(&[msg("a", "1", 0), msg("b", "2", 0), msg("a", "3", 0)], "BatchEntryIdsNotDistinct");
        refused(&[sized("a", MAX_BATCH_BYTES / 2), sized("b", MAX_BATCH_BYTES / 2 + 1)], "BatchRequestTooLong");
        // Bytes, not characters: 'é' is two.
        refused(&[msg("a", &"é".repeat(MAX_BATCH_BYTES / 2 + 1), 0)], "BatchRequestTooLong");
        assert!(queue.is_empty(), "nothing of a refused call is kept");

        // At the limits exactly: sent.
        let ten: Vec<_> = (0..10).map(|i| msg(&format!("id-{i}_x"), "b", MAX_DELAY_SECONDS)).collect();
        assert_eq!(send(&queue, &ten).unwrap(), vec![Ok(()); 10]);
        assert!(send(&queue, &[msg(&"Z9".repeat(40), "b", 0)]).is_ok());
        assert!(send(&queue, &[sized("a", MAX_BATCH_BYTES / 2), sized("b", MAX_BATCH_BYTES / 2)]).is_ok());
        assert_eq!(queue.len(), 13);
    }

    #[test]
    fn refuses_bad_entries_and_sends_the_rest() {
        let queue = MemoryQueue::new();
        let batch = [
            msg("ok1", "fine", 0),
            msg("late", "b", MAX_DELAY_SECONDS + 1),
            msg("empty", "", 0),
            msg("nul", "a\u{0}b", 0),
            msg("bom", "a\u{FFFF}", 0),
            msg("ok2", "tab\tlf\ncr\r \u{D7FF}\u{E000}\u{FFFD}\u{10000}\u{10FFFF}", 0),
        ];
        let results = send(&queue, &batch).unwrap();
        assert_eq!(results.len(), batch.len());
        assert_eq!(results[0], Ok(()));
        assert_eq!(results[5], Ok(()));
        let code = |i: usize| results[i].as_ref().unwrap_err().code.clone();
        assert_eq!(code(1), "InvalidParameterValue");
        assert!(results[1].as_ref().unwrap_err().message.contains("Value 901 for parameter DelaySeconds is invalid"));
        assert_eq!(code(2), "InvalidParameterValue");
        assert_eq!(code(3), "InvalidMessageContents");
        assert!(results[3].as_ref().unwrap_err().message.contains("'#x0'"));
        assert_eq!(code(4), "InvalidMessageContents");
        assert!(results.iter().flatten().count() == 2);
        assert!(results.iter().filter_map(|r| r.as_ref().err()).all(|e| !e.is_transient()));
        assert_eq!(bodies(&queue.due()), vec!["fine", batch[5].body.as_str()]);
    }

    #[test]
    fn delays_hide_messages_until_due_in_visible_then_send_order() {
        let queue = MemoryQueue::new();
        queue.set_now(UnixTime(1_000));
        send(&queue, &[msg("a", "a+5", 5), msg("b", "b+0", 0), msg("c", "c+2", 2)]).unwrap();
        queue.set_now(UnixTime(1_001));
        send(&queue, &[msg("a", "d+1", 1), msg("b", "e+4", 4)]).unwrap();
        assert_eq!(queue.len(), 5);
        assert_eq!(bodies(&queue.due()), vec!["b+0"]);
        assert!(queue.due().is_empty(), "taken messages are gone");
        // c and d both at 1002: c was sent first.
        queue.set_now(UnixTime(1_002));
        assert_eq!(bodies(&queue.due()), vec!["c+2", "d+1"]);
        queue.set_now(UnixTime(1_004));
        assert!(queue.due().is_empty());
        // Taken late: a and e are both visible at 1005, and a was sent first.
        queue.set_now(UnixTime(1_100));
        assert_eq!(bodies(&queue.due()), vec!["a+5", "e+4"]);
        assert!(queue.is_empty());
    }

    #[test]
    fn message_ids_are_fresh() {
        let queue = MemoryQueue::new();
        send(&queue, &[msg("a", "same", 0), msg("b", "same", 0)]).unwrap();
        send(&queue, &[msg("a", "same", 0)]).unwrap();
        let ids: Vec<_> = queue.due().into_iter().map(|r| r.message_id).collect();
        assert_eq!(ids.len(), 3);
        assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2], "{ids:?}");
        assert!(ids.iter().all(|id| id.len() == 36 && id.matches('-').count() == 4), "{ids:?}");
    }

    #[test]
    fn injected_failures_are_transient_and_send_nothing() {
        let queue = MemoryQueue::new();
        queue.fail_next(2);
        // A call SQS would refuse anyway is refused first, and uses up nothing.
        assert!(!send(&queue, &[]).unwrap_err().is_transient());
        assert!(send(&queue, &[msg("a", "1", 0)]).unwrap_err().is_transient());
        assert!(send(&queue, &[msg("a", "1", 0)]).unwrap_err().is_transient());
        assert!(queue.is_empty());
        assert_eq!(send(&queue, &[msg("a", "1", 0)]).unwrap(), vec![Ok(())]);
        assert_eq!(queue.len(), 1);
    }

    #[test]
    fn packs_within_entries_and_bytes_in_order() {
        let ids = |calls: &[Vec<QueueMessage>]| -> Vec<Vec<String>> {
            calls.iter().map(|c| c.iter().map(|m| m.id.clone()).collect()).collect()
        };
        assert_eq!(batches(Vec::new()), Batches::default());

        // 23 small messages: 10, 10, 3.
        let small: Vec<_> = (0..23).map(|i| msg(&format!("m{i}"), "b", 0)).collect();
        let packed = batches(small.clone());
        assert_eq!(packed.calls.iter().map(Vec::len).collect::<Vec<_>>(), vec![10, 10, 3]);
        assert_eq!(packed.calls.concat(), small);
        assert!(packed.too_large.is_empty());

        // Bytes: a quarter each fits four to a call; one over the limit is
        // set aside, not dropped, and the order of the rest is kept.
        let quarter = MAX_BATCH_BYTES / 4;
        let messages = vec![
            sized("a", quarter),
            sized("b", quarter),
            sized("c", quarter),
            sized("huge", MAX_BATCH_BYTES + 1),
            sized("d", quarter),
            sized("e", 1),
            sized("f", MAX_BATCH_BYTES),
            sized("g", 1),
        ];
        let packed = batches(messages);
        assert_eq!(ids(&packed.calls), vec![vec!["a", "b", "c", "d"], vec!["e"], vec!["f"], vec!["g"]]);
        assert_eq!(packed.too_large.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), vec!["huge"]);

        // A repeated id starts a new call.
        let packed = batches(vec![msg("x", "1", 0), msg("y", "2", 0), msg("x", "3", 0), msg("z", "4", 0)]);
        assert_eq!(ids(&packed.calls), vec![vec!["x", "y"], vec!["x", "z"]]);

        // Every call packed passes the whole-call checks.
        let mixed: Vec<_> =
            (0..40).map(|i| sized(&format!("k{}", i % 7), (i * 9_973) % (MAX_BATCH_BYTES / 3))).collect();
        let packed = batches(mixed.clone());
        assert_eq!(packed.calls.concat(), mixed);
        assert!(packed.calls.iter().all(|c| check_send_batch(c).is_ok()));
    }

    #[test]
    fn a_kept_queue_survives_reopening() {
        let dir = std::env::temp_dir().join(format!("dredge-queue-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let q = MemoryQueue::open(&dir).unwrap();
        q.set_now(UnixTime(100));
        let m = QueueMessage { id: "a".into(), body: "x".into(), delay_seconds: 60 };
        send(&q, &[m]).unwrap();
        q.save().unwrap();
        let again = MemoryQueue::open(&dir).unwrap();
        assert_eq!(again.len(), 1);
        assert!(again.due().is_empty(), "the clock is kept too");
        again.set_now(UnixTime(160));
        assert_eq!(again.due()[0].body, "x");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
