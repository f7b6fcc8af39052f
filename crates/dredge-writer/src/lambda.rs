//! The Lambda side: a Kinesis batch or a compaction request in, an
//! [`Outcome`] out (the response, one EMF line, one log line).

use dredge_columnar::EncoderOptions;
use dredge_core::objects::{MultipartUpload, ObjectListing, ObjectStore};
use dredge_lambda::kinesis::{batch_response, KinesisBatch};
use dredge_lambda::{emf, Diagnostic, Invocation};
use serde::Deserialize;

use crate::compact::{compact, CompactStats};
use crate::config::WriterConfig;
use crate::stage::{StageStats, Staging};

/// What invokes the writer: the enriched stream's event source mapping, or
/// the compaction schedule (`{"compact": true}`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum WriterEvent {
    Compact { compact: bool },
    Kinesis(KinesisBatch),
}

/// The writer with its stores; built once per container.
pub struct Writer<S, O> {
    data: S,
    dead_letter: O,
    config: WriterConfig,
}

/// What one invocation did.
#[derive(Debug)]
pub enum Outcome {
    /// A batch was staged, or must be retried from `retry_from`.
    Staged {
        stats: StageStats,
        retry_from: Option<String>,
        error: Option<String>,
    },
    Compacted {
        stats: CompactStats,
        error: Option<String>,
    },
    /// `{"compact": false}`: nothing asked.
    Nothing,
}

impl<S: ObjectListing + MultipartUpload, O: ObjectStore> Writer<S, O> {
    pub fn new(data: S, dead_letter: O, config: WriterConfig) -> Self {
        Writer { data, dead_letter, config }
    }

    pub fn data(&self) -> &S {
        &self.data
    }

    /// Handles one event as of `now` (epoch seconds).
    pub async fn handle(&self, event: &WriterEvent, now: i64) -> Outcome {
        match event {
            WriterEvent::Compact { compact: false } => Outcome::Nothing,
            WriterEvent::Compact { compact: true } => {
                let (stats, result) = compact(&self.data, &self.config.layout, &self.config.compact, now).await;
                Outcome::Compacted { stats, error: result.err().map(|e| e.to_string()) }
            }
            WriterEvent::Kinesis(batch) => {
                let inputs = batch.inputs();
                let staging = Staging {
                    data: &self.data,
                    dead_letter: &self.dead_letter,
                    dead_letter_prefix: &self.config.dead_letter_prefix,
                    layout: &self.config.layout,
                    encoder: EncoderOptions::default(),
                };
                let (stats, result) = staging.stage(&inputs, now).await;
                // Objects are per hour, not per record: a batch is written
                // whole or retried whole (its objects are overwritten).
                let retry_from =
                    result.is_err().then(|| inputs.first().map(|i| i.sequence_number.to_owned())).flatten();
                Outcome::Staged { stats, retry_from, error: result.err().map(|e| e.to_string()) }
            }
        }
    }
}

impl Invocation for Outcome {
    type Response = serde_json::Value;

    fn metrics(&self, function: &str) -> emf::Document {
        let mut doc = emf::Document::for_function(function);
        match self {
            Outcome::Staged { stats, error, .. } => {
                doc.count("RecordsIn", stats.records_in)
                    .count("RowsWritten", stats.rows_written)
                    .count("RowsRejected", stats.rows_rejected)
                    .count("RecordsRejected", stats.records_rejected)
                    .count("ObjectsWritten", stats.objects_written)
                    .metric("BytesWritten", stats.bytes_written as f64, emf::Unit::Bytes)
                    .count("BatchesFailed", u64::from(error.is_some()));
            }
            Outcome::Compacted { stats, error } => {
                doc.count("HoursCompacted", stats.hours_compacted)
                    .count("CompactedRows", stats.rows_written)
                    .count("DuplicatesDropped", stats.duplicates_dropped)
                    .count("CompactedObjects", stats.objects_written)
                    .metric("CompactedBytes", stats.bytes_written as f64, emf::Unit::Bytes)
                    .count("LeftoversRemoved", stats.leftovers_removed)
                    .count("CompactionPasses", stats.passes)
                    .metric("CompactionLagSeconds", stats.lag_seconds as f64, emf::Unit::Seconds)
                    .count("CompactionsFailed", u64::from(error.is_some()));
            }
            Outcome::Nothing => {}
        }
        doc
    }

    fn log(&self) {
        match self {
            Outcome::Staged { stats, error: None, .. } => {
                tracing::info!(stats = %serde_json::json!(stats), "batch staged")
            }
            Outcome::Staged { stats, error: Some(e), retry_from } => {
                tracing::warn!(error = %e, retry_from = ?retry_from, stats = %serde_json::json!(stats), "batch not staged")
            }
            Outcome::Compacted { stats, error: None } => {
                tracing::info!(stats = %serde_json::json!(stats), "compacted")
            }
            Outcome::Compacted { stats, error: Some(e) } => {
                tracing::error!(error = %e, stats = %serde_json::json!(stats), "compaction stopped; the next run resumes")
            }
            Outcome::Nothing => tracing::info!("nothing to do"),
        }
    }

    /// A staging failure is a retry point (never an invocation error, which
    /// would retry the whole batch anyway); a failed compaction fails the
    /// invocation, so the schedule's retries and alarms see it.
    fn into_response(self) -> Result<serde_json::Value, Diagnostic> {
        match self {
            Outcome::Staged { retry_from, .. } => {
                Ok(serde_json::to_value(batch_response(retry_from.as_deref())).expect("a response serializes"))
            }
            Outcome::Compacted { stats, error: None } => Ok(serde_json::json!(stats)),
            Outcome::Compacted { error: Some(e), .. } => {
                Err(Diagnostic { error_type: "Dredge.CompactionFailed".into(), error_message: e })
            }
            Outcome::Nothing => Ok(serde_json::json!({})),
        }
    }
}
