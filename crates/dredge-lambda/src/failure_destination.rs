//! The record a Kinesis event source mapping sends its on-failure
//! destination (an SQS queue here) when it gives a batch up, after
//! `MaximumRetryAttempts` or `MaximumRecordAgeInSeconds`:
//!
//! ```json
//! {"requestContext": {"requestId": "…", "functionArn": "arn:aws:lambda:…:function:NAME",
//!                     "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 11},
//!  "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
//!  "version": "1.0", "timestamp": "2019-11-14T00:38:06.021Z",
//!  "KinesisBatchInfo": {"shardId": "shardId-000000000001", "startSequenceNumber": "4960…",
//!                       "endSequenceNumber": "4960…", "approximateArrivalOfFirstRecord": "…",
//!                       "approximateArrivalOfLastRecord": "…", "batchSize": 500,
//!                       "streamArn": "arn:aws:kinesis:…:stream/NAME"}}
//! ```
//!
//! It points into the stream and carries no data: the records must be
//! read back from the shard while the stream still retains them. Only the
//! fields a replay needs are read; `responseContext` varies (its
//! `functionError` may be `null`) and is skipped.

use serde::Deserialize;

/// One on-failure record of a Kinesis event source mapping.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KinesisFailure {
    pub request_context: RequestContext,
    /// When Lambda gave the batch up (RFC 3339).
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(rename = "KinesisBatchInfo")]
    pub batch: KinesisBatchInfo,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestContext {
    /// The function the batch failed in, possibly qualified by a version or
    /// alias (`…:function:NAME:live`).
    pub function_arn: String,
    /// `RetryAttemptsExhausted`, `RecordAgeExceeded`, ...
    #[serde(default)]
    pub condition: String,
    #[serde(default)]
    pub approximate_invoke_count: u64,
}

/// The batch given up: one shard's records from `start_sequence_number`
/// to `end_sequence_number`, both included.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KinesisBatchInfo {
    pub shard_id: String,
    pub start_sequence_number: String,
    pub end_sequence_number: String,
    #[serde(default)]
    pub approximate_arrival_of_first_record: Option<String>,
    #[serde(default)]
    pub approximate_arrival_of_last_record: Option<String>,
    pub batch_size: u64,
    pub stream_arn: String,
}

/// Why a message is not a Kinesis on-failure record.
#[derive(Debug, thiserror::Error)]
#[error("not a Kinesis on-failure record: {0}")]
pub struct NotAFailureRecord(#[from] serde_json::Error);

impl KinesisFailure {
    /// Reads a destination message's body. Anything else that lands in the
    /// queue (a DynamoDB stream's record, a message redriven from another
    /// queue) is refused, naming what is missing.
    pub fn from_json(body: &str) -> Result<KinesisFailure, NotAFailureRecord> {
        Ok(serde_json::from_str(body)?)
    }

    /// The function's name, without the ARN's prefix or qualifier.
    pub fn function_name(&self) -> &str {
        let arn = &self.request_context.function_arn;
        // arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
        arn.split(':').nth(6).unwrap_or(arn)
    }
}

impl KinesisBatchInfo {
    /// The stream's name, from its ARN (`…:stream/NAME`).
    pub fn stream_name(&self) -> &str {
        self.stream_arn.rsplit_once(":stream/").map_or(&self.stream_arn, |(_, name)| name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The record AWS documents, with an alias on the function's ARN and
    /// `functionError` null, as some records have them.
    const DOCUMENTED: &str = r#"{
        "requestContext": {"requestId": "c9b8fa9f-5a7f-4e30-8dbb-2e2a6ad8cd53",
            "functionArn": "arn:aws:lambda:us-east-2:123456789012:function:dredge-EnricherFunction-Ab12:live",
            "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 1},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": null},
        "version": "1.0", "timestamp": "2019-11-14T00:38:06.021Z",
        "KinesisBatchInfo": {"shardId": "shardId-000000000001",
            "startSequenceNumber": "49601189658422359378836298521827638475320189012309704722",
            "endSequenceNumber": "49601189658422359378836298522902373528957594348623495186",
            "approximateArrivalOfFirstRecord": "2019-11-14T00:38:04.835Z",
            "approximateArrivalOfLastRecord": "2019-11-14T00:38:05.580Z",
            "batchSize": 500, "streamArn": "arn:aws:kinesis:us-east-2:123456789012:stream/mystream"}}"#;

    #[test]
    fn reads_the_documented_record() {
        let record = KinesisFailure::from_json(DOCUMENTED).unwrap();
        assert_eq!(record.function_name(), "dredge-EnricherFunction-Ab12");
        assert_eq!(record.request_context.condition, "RetryAttemptsExhausted");
        let batch = &record.batch;
        assert_eq!((batch.shard_id.as_str(), batch.batch_size), ("shardId-000000000001", 500));
        assert!(batch.start_sequence_number.starts_with("4960118965842235937883629852182"));
        assert_eq!(batch.stream_name(), "mystream");
    }

    #[test]
    fn other_messages_are_refused_by_name() {
        // A DynamoDB stream's record, and a retry-queue message redriven here.
        let ddb = DOCUMENTED.replace("KinesisBatchInfo", "DDBStreamBatchInfo");
        let err = KinesisFailure::from_json(&ddb).unwrap_err();
        assert!(err.to_string().contains("KinesisBatchInfo"), "{err}");
        let err = KinesisFailure::from_json(r#"{"flows": []}"#).unwrap_err();
        assert!(err.to_string().starts_with("not a Kinesis on-failure record"), "{err}");
    }

    #[test]
    fn an_unqualified_arn_names_the_function() {
        let body = DOCUMENTED.replace("-Ab12:live", "-Ab12");
        assert_eq!(KinesisFailure::from_json(&body).unwrap().function_name(), "dredge-EnricherFunction-Ab12");
    }
}
