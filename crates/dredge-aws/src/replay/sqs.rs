//! The SQS queue Kinesis on-failure records wait in.

use std::time::Duration;

use dredge_core::Failure;
use dredge_lambda::sdk_error::classify;

/// An on-failure destination queue: messages received a few at a time,
/// deleted once replayed, made visible again when kept.
#[derive(Debug, Clone)]
pub struct FailureQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

/// A message received from the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
}

impl FailureQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        FailureQueue { client, url: url.into() }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Up to `max` messages (at most 10, SQS's limit), hidden from other
    /// readers for `hidden`; waits up to `wait` for the first. Empty when
    /// the queue has nothing visible.
    pub async fn receive(&self, max: i32, hidden: Duration, wait: Duration) -> Result<Vec<QueuedMessage>, Failure> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10))
            .visibility_timeout(hidden.as_secs().min(i32::MAX as u64) as i32)
            .wait_time_seconds(wait.as_secs().min(20) as i32)
            .send()
            .await
            .map_err(|e| classify(&format!("SQS ReceiveMessage {}", self.url), &e))?;
        Ok(output
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| QueuedMessage {
                message_id: m.message_id.unwrap_or_default(),
                receipt_handle: m.receipt_handle.unwrap_or_default(),
                body: m.body.unwrap_or_default(),
            })
            .collect())
    }

    pub async fn delete(&self, message: &QueuedMessage) -> Result<(), Failure> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(&message.receipt_handle)
            .send()
            .await
            .map_err(|e| classify(&format!("SQS DeleteMessage {}", self.url), &e))?;
        Ok(())
    }

    /// Makes a received message visible again at once, for the next reader.
    pub async fn release(&self, message: &QueuedMessage) -> Result<(), Failure> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(&message.receipt_handle)
            .visibility_timeout(0)
            .send()
            .await
            .map_err(|e| classify(&format!("SQS ChangeMessageVisibility {}", self.url), &e))?;
        Ok(())
    }
}
