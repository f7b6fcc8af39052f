//! Kinesis-triggered functions: the event as they read it, and the
//! partial-batch response that tells Lambda where to retry from.
//!
//! The JSON Lambda sends is the one `aws_lambda_events::KinesisEvent`
//! models; [`KinesisBatch`] keeps only each record's shard (from its
//! `eventID`), sequence number, data and arrival time. Nothing is allocated for the fields it skips, and data
//! is base64-decoded straight from the event's text into its bytes.

use std::fmt;

use aws_lambda_events::event::streams::{KinesisBatchItemFailure, KinesisEventResponse};
use base64::Engine;
use serde::de::{Deserializer, Visitor};
use serde::Deserialize;

/// One record of a batch, as a function reads it.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The shard the record came from (`shardId-000000000006`); `None` when
    /// the event has no `eventID` (hand-made events).
    pub shard: Option<&'a str>,
    pub sequence_number: &'a str,
    pub data: &'a [u8],
    /// When Kinesis received it (epoch ms): the timestamp of flows that
    /// carry no start time.
    pub arrival_ms: i64,
}

/// One record to put in a hand-made event: what [`event_json`] writes.
#[derive(Debug, Clone, Copy)]
pub struct EventRecord<'a> {
    pub partition_key: &'a str,
    pub sequence_number: &'a str,
    pub data: &'a [u8],
    /// Epoch seconds.
    pub arrival: f64,
}

/// The Lambda event JSON for records of one shard of `stream`, as the
/// Kinesis event source sends it to `function` (whose role it names):
/// what `sam local invoke -e` and `dredge invoke` take. For sample events
/// and simulations.
pub fn event_json(function: &str, stream: &str, shard: &str, records: &[EventRecord<'_>]) -> serde_json::Value {
    let records: Vec<serde_json::Value> = records
        .iter()
        .map(|r| {
            serde_json::json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r.partition_key,
                    "sequenceNumber": r.sequence_number,
                    "data": base64::engine::general_purpose::STANDARD.encode(r.data),
                    "approximateArrivalTimestamp": r.arrival,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("{shard}:{}", r.sequence_number),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": format!("arn:aws:iam::123456789012:role/{function}"),
                "awsRegion": "us-east-1",
                "eventSourceARN": format!("arn:aws:kinesis:us-east-1:123456789012:stream/{stream}"),
            })
        })
        .collect();
    serde_json::json!({ "Records": records })
}

/// The response of a function invoked with `ReportBatchItemFailures`:
/// Lambda retries the batch from `retry_from` (a sequence number) on, or
/// checkpoints the whole batch when it is `None`.
pub fn batch_response(retry_from: Option<&str>) -> KinesisEventResponse {
    let mut response = KinesisEventResponse::default();
    if let Some(seq) = retry_from {
        let mut failure = KinesisBatchItemFailure::default();
        failure.item_identifier = Some(seq.to_owned());
        response.batch_item_failures.push(failure);
    }
    response
}

/// A Kinesis event source mapping's batch.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
pub struct KinesisBatch {
    #[serde(rename = "Records", default)]
    pub records: Vec<BatchRecord>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BatchRecord {
    /// `<shard id>:<sequence number>`, as Lambda writes it.
    #[serde(rename = "eventID", default)]
    pub event_id: Option<String>,
    pub kinesis: KinesisData,
}

impl BatchRecord {
    /// The shard named by `eventID`: what precedes its first `:` (the whole
    /// id if it has none).
    pub fn shard(&self) -> Option<&str> {
        let id = self.event_id.as_deref().filter(|id| !id.is_empty())?;
        Some(id.split_once(':').map_or(id, |(shard, _)| shard))
    }
}

/// One record's `kinesis` object.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KinesisData {
    pub sequence_number: String,
    #[serde(deserialize_with = "base64_bytes")]
    pub data: Vec<u8>,
    /// When Kinesis received the record: epoch seconds, fractional. Lambda
    /// sends a number; `aws_lambda_events` writes a string: both are read.
    #[serde(default, deserialize_with = "epoch_seconds")]
    pub approximate_arrival_timestamp: f64,
}

impl KinesisBatch {
    /// The records as the handler takes them, borrowing this batch.
    pub fn inputs(&self) -> Vec<Input<'_>> {
        self.records
            .iter()
            .map(|r| Input {
                shard: r.shard(),
                sequence_number: &r.kinesis.sequence_number,
                data: &r.kinesis.data,
                arrival_ms: (r.kinesis.approximate_arrival_timestamp * 1000.0).round() as i64,
            })
            .collect()
    }
}

/// Base64 text to bytes, reading the text where it lies in the event (an
/// escaped string, as `\/`, arrives unescaped in a scratch buffer instead).
fn base64_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    struct Base64;
    impl Visitor<'_> for Base64 {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("base64 text")
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Vec<u8>, E> {
            base64::engine::general_purpose::STANDARD.decode(text).map_err(|e| E::custom(format!("data: {e}")))
        }
    }
    d.deserialize_str(Base64)
}

/// Epoch seconds as a JSON number or a string holding one. A string that
/// parses to no finite number (`"NaN"`, `"inf"`, `"1e999"`) is refused: no
/// arrival time is that, `arrival_ms` would silently become 0 or
/// `i64::MAX`, and [`event_json`] could not write it back (JSON has no
/// such numbers).
fn epoch_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    struct Seconds;
    impl Visitor<'_> for Seconds {
        type Value = f64;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("epoch seconds")
        }

        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<f64, E> {
            if v.is_finite() {
                Ok(v)
            } else {
                Err(E::custom(format!("approximateArrivalTimestamp: {v} is not a finite number")))
            }
        }

        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }

        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }

        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<f64, E> {
            match v.trim().parse::<f64>() {
                Ok(seconds) if seconds.is_finite() => Ok(seconds),
                _ => Err(E::custom(format!("approximateArrivalTimestamp: `{v}` is not a finite number"))),
            }
        }
    }
    d.deserialize_any(Seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fields_it_needs_and_skips_the_rest() {
        let json = r#"{"Records":[{
            "kinesis":{"kinesisSchemaVersion":"1.0","partitionKey":"1","sequenceNumber":"4959001",
                "data":"aGVsbG8gd29ybGQ=","approximateArrivalTimestamp":1545084650.987},
            "eventSource":"aws:kinesis","eventVersion":"1.0","eventID":"shardId-000000000006:4959001",
            "eventName":"aws:kinesis:record","invokeIdentityArn":"arn:aws:iam::123456789012:role/lambda-role",
            "awsRegion":"us-east-2","eventSourceARN":"arn:aws:kinesis:us-east-2:123456789012:stream/flows"},
            {"kinesis":{"sequenceNumber":"4959002","data":"YS9i\/\/\/+"}}]}"#;
        let batch: KinesisBatch = serde_json::from_str(json).unwrap();
        let inputs = batch.inputs();
        assert_eq!(inputs.len(), 2);
        assert_eq!((inputs[0].sequence_number, inputs[0].data), ("4959001", &b"hello world"[..]));
        assert_eq!(inputs[0].shard, Some("shardId-000000000006"));
        assert_eq!(inputs[1].shard, None, "no eventID");
        assert_eq!(inputs[0].arrival_ms, 1_545_084_650_987);
        // An escaped slash, and no arrival time.
        assert_eq!(inputs[1].data, base64::engine::general_purpose::STANDARD.decode("YS9i///+").unwrap());
        assert_eq!(inputs[1].arrival_ms, 0);
    }

    #[test]
    fn arrival_time_as_number_or_string() {
        for t in ["1545084650.987", "\"1545084650.987\"", "1545084651"] {
            let json = format!(
                r#"{{"Records":[{{"kinesis":{{"sequenceNumber":"1","data":"","approximateArrivalTimestamp":{t}}}}}]}}"#
            );
            let batch: KinesisBatch = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{t}: {e}"));
            let ms = batch.inputs()[0].arrival_ms;
            assert!((1_545_084_650_987..=1_545_084_651_000).contains(&ms), "{t}: {ms}");
        }
    }

    #[test]
    fn arrival_time_must_be_a_finite_number() {
        // Found by the kinesis_event fuzz target (fuzz/regressions/kinesis_event/):
        // "NaN" was read as NaN (arrival 0 ms), "inf" and "1e999" as infinity
        // (arrival i64::MAX ms), and event_json wrote them back as null.
        for t in ["\"NaN\"", "\"inf\"", "\"-infinity\"", "\"1e999\"", "\" nan \""] {
            let json = format!(
                r#"{{"Records":[{{"kinesis":{{"sequenceNumber":"1","data":"","approximateArrivalTimestamp":{t}}}}}]}}"#
            );
            let err = serde_json::from_str::<KinesisBatch>(&json).unwrap_err();
            assert!(err.to_string().contains("approximateArrivalTimestamp"), "{t}: {err}");
        }
    }

    #[test]
    fn what_is_read_round_trips_through_event_json() {
        for t in ["1545084650.987", "\"1545084650.987\"", "-0.0", "\"1e300\"", "0"] {
            let json = format!(
                r#"{{"Records":[{{"kinesis":{{"sequenceNumber":"7","data":"YQ==","approximateArrivalTimestamp":{t}}}}}]}}"#
            );
            let batch: KinesisBatch = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{t}: {e}"));
            let input = batch.inputs()[0];
            let record = EventRecord {
                partition_key: "k",
                sequence_number: input.sequence_number,
                data: input.data,
                arrival: batch.records[0].kinesis.approximate_arrival_timestamp,
            };
            let written = event_json("f", "s", "shardId-000000000001", &[record]);
            let again: KinesisBatch = serde_json::from_value(written).unwrap_or_else(|e| panic!("{t}: {e}"));
            let back = again.inputs()[0];
            assert_eq!((back.sequence_number, back.data, back.arrival_ms), ("7", &b"a"[..], input.arrival_ms), "{t}");
            assert_eq!(back.shard, Some("shardId-000000000001"));
        }
    }

    #[test]
    fn bad_base64_is_an_error_naming_the_field() {
        let json = r#"{"Records":[{"kinesis":{"sequenceNumber":"1","data":"not base64!"}}]}"#;
        let err = serde_json::from_str::<KinesisBatch>(json).unwrap_err();
        assert!(err.to_string().contains("data"), "{err}");
    }

    #[test]
    fn the_response_names_the_record_to_retry_from() {
        assert!(batch_response(None).batch_item_failures.is_empty());
        let r = batch_response(Some("4959002"));
        assert_eq!(r.batch_item_failures.len(), 1);
        assert_eq!(r.batch_item_failures[0].item_identifier.as_deref(), Some("4959002"));
    }

    #[test]
    fn an_event_without_records_is_empty() {
        assert!(serde_json::from_str::<KinesisBatch>("{}").unwrap().records.is_empty());
    }
}
