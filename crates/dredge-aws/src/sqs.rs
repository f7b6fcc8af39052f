//! [`RetryQueue`] on an SQS queue (SendMessageBatch, with each message's
//! DelaySeconds).

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use dredge_core::retry_queue::{check_entry, check_send_batch, QueueEntryError, QueueError, QueueMessage, RetryQueue};
use dredge_lambda::sdk_error::{classify, is_transient_code};

/// Sends messages to one queue, named by its URL.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        SqsQueue { client, queue_url: queue_url.into() }
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }
}

impl RetryQueue for SqsQueue {
    /// Refuses what [`check_send_batch`] refuses without calling SQS; the
    /// entries [`check_entry`] refuses are answered here and not sent (SQS
    /// would fail them alike, but moto does not check bodies), the rest go
    /// in one SendMessageBatch call, answered back by entry id.
    async fn send(&self, batch: &[QueueMessage]) -> Result<Vec<Result<(), QueueEntryError>>, QueueError> {
        check_send_batch(batch)?;
        let mut results: Vec<Option<Result<(), QueueEntryError>>> =
            batch.iter().map(|m| check_entry(m).err().map(Err)).collect();
        let entries = batch
            .iter()
            .zip(&results)
            .filter(|(_, refused)| refused.is_none())
            .map(|(m, _)| {
                SendMessageBatchRequestEntry::builder()
                    .id(&m.id)
                    .message_body(&m.body)
                    // check_entry keeps delays within 900.
                    .delay_seconds(m.delay_seconds as i32)
                    .build()
                    .map_err(|e| QueueError::Permanent(format!("building a SendMessageBatch entry: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !entries.is_empty() {
            let output = self
                .client
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| classify(&format!("SQS SendMessageBatch {}", self.queue_url), &e))?;
            let slot = |id: &str| batch.iter().position(|m| m.id == id);
            for ok in output.successful() {
                if let Some(i) = slot(ok.id()) {
                    results[i].get_or_insert(Ok(()));
                }
            }
            for failed in output.failed() {
                if let Some(i) = slot(failed.id()) {
                    results[i].get_or_insert(Err(QueueEntryError {
                        code: failed.code().to_owned(),
                        message: failed.message().unwrap_or_default().to_owned(),
                        // SenderFault is the entry's own fault, unless SQS throttled it.
                        transient: !failed.sender_fault() || is_transient_code(Some(failed.code()), 400),
                    }));
                }
            }
        }
        Ok(results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(QueueEntryError {
                        code: "NoAnswer".into(),
                        message: "SQS SendMessageBatch answered neither Successful nor Failed for the entry".into(),
                        transient: true,
                    })
                })
            })
            .collect())
    }
}
