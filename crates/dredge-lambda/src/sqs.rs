//! The SQS event as a queue-triggered function reads it (only what it
//! uses: the message id and body), a hand-made event for tests and local
//! runs, and the partial-batch response (`ReportBatchItemFailures`): SQS
//! makes the failed messages visible again and deletes the rest.

use serde::{Deserialize, Serialize};

/// An SQS event source mapping's batch.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
pub struct SqsBatch {
    #[serde(rename = "Records", default)]
    pub records: Vec<SqsRecord>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsRecord {
    pub message_id: String,
    pub body: String,
}

/// `{"batchItemFailures":[{"itemIdentifier":<message id>}]}`.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsBatchResponse {
    pub batch_item_failures: Vec<SqsItemFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsItemFailure {
    pub item_identifier: String,
}

impl SqsBatchResponse {
    pub fn failing(message_ids: impl IntoIterator<Item = String>) -> SqsBatchResponse {
        SqsBatchResponse {
            batch_item_failures: message_ids.into_iter().map(|id| SqsItemFailure { item_identifier: id }).collect(),
        }
    }
}

/// Whether a Lambda event is an SQS batch (its records come from
/// `aws:sqs`), as opposed to a Kinesis one.
pub fn is_sqs_event(event: &serde_json::Value) -> bool {
    event.pointer("/Records/0/eventSource").and_then(|s| s.as_str()) == Some("aws:sqs")
}

/// An SQS event as Lambda sends it, for `(message id, body)` pairs.
pub fn event_json(queue: &str, messages: &[(&str, &str)]) -> serde_json::Value {
    let records: Vec<serde_json::Value> = messages
        .iter()
        .map(|(id, body)| {
            serde_json::json!({
                "messageId": id,
                "receiptHandle": format!("AQEB{id}"),
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1700000000000",
                    "SenderId": "AROAEXAMPLE:dredge-enricher",
                    "ApproximateFirstReceiveTimestamp": "1700000000000"
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:{queue}"),
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::json!({ "Records": records })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_lambda_sends_and_answers_with_the_failed_ids() {
        let event = event_json("dredge-retry", &[("m-1", "{\"a\":1}"), ("m-2", "x")]);
        assert!(is_sqs_event(&event));
        assert!(!is_sqs_event(&serde_json::json!({"Records": [{"eventSource": "aws:kinesis"}]})));
        let batch: SqsBatch = serde_json::from_value(event).unwrap();
        assert_eq!(batch.records[1], SqsRecord { message_id: "m-2".into(), body: "x".into() });
        let response = serde_json::to_value(SqsBatchResponse::failing(["m-2".to_owned()])).unwrap();
        assert_eq!(response, serde_json::json!({"batchItemFailures": [{"itemIdentifier": "m-2"}]}));
    }
}
