//! The Lambda side of the enricher: a Kinesis event in, the batch's
//! outcome as an [`Invocation`] (the partial-batch response, one EMF line,
//! one log line).

use aws_lambda_events::event::streams::KinesisEventResponse;
use dredge_core::objects::ObjectStore;
use dredge_core::ownership::{OwnershipStore, UnixTime};
use dredge_core::sink::RecordSink;
use dredge_lambda::kinesis::{batch_response, KinesisBatch};
use dredge_lambda::{emf, Diagnostic, Invocation};

use crate::handler::{BatchOutcome, Enricher};

/// Runs the enricher on one Kinesis event: the response Lambda gets, and
/// the outcome behind it.
pub async fn handle<S: OwnershipStore, K: RecordSink, O: ObjectStore>(
    enricher: &Enricher<S, K, O>,
    event: &KinesisBatch,
    now: UnixTime,
) -> (KinesisEventResponse, BatchOutcome) {
    let outcome = enricher.process(&event.inputs(), now).await;
    (outcome.response(), outcome)
}

impl BatchOutcome {
    /// `batchItemFailures` naming the record to retry from, if any.
    pub fn response(&self) -> KinesisEventResponse {
        batch_response(self.retry_from.as_deref())
    }
}

impl Invocation for BatchOutcome {
    type Response = KinesisEventResponse;

    /// Every counter of the batch under `Function`.
    fn metrics(&self, function: &str) -> emf::Document {
        let stats = &self.stats;
        let mut doc = emf::Document::for_function(function);
        let ratio = |n: u64, d: u64| if d == 0 { 0.0 } else { n as f64 / d as f64 };
        let out = stats.output_lines;
        doc.count("RecordsIn", stats.records_in)
            .count("PayloadErrors", stats.payload_errors)
            .count("ControlMessages", stats.control_messages)
            .count("FlowsDecoded", stats.flows)
            .count("StatusRecords", stats.status_records)
            .count("RejectedLines", stats.rejected_lines)
            .metric("FlowLogBytes", stats.flow_log_bytes as f64, emf::Unit::Bytes)
            .count("DeadLetterLines", stats.dead_letter_lines)
            .count("NoStartTime", stats.no_start_time)
            .count("SrcUnattributed", stats.src_unattributed)
            .count("DstUnattributed", stats.dst_unattributed)
            .metric("SrcUnattributedRatio", ratio(stats.src_unattributed, out), emf::Unit::None)
            .metric("DstUnattributedRatio", ratio(stats.dst_unattributed, out), emf::Unit::None)
            .count("CacheHits", stats.cache_hits)
            .count("CacheMisses", stats.cache_misses)
            .metric("CacheHitRatio", ratio(stats.cache_hits, stats.cache_hits + stats.cache_misses), emf::Unit::None)
            .count("StoreCalls", stats.store_calls)
            .count("EniLookups", stats.eni_lookups)
            .count("OutputLines", stats.output_lines)
            .count("OutputRecords", stats.output_records)
            .metric("OutputBytes", stats.output_bytes as f64, emf::Unit::Bytes)
            .count("PutCalls", stats.put_calls)
            .count("PutRetried", stats.put_retried)
            .metric("DecodeTime", stats.decode_ms, emf::Unit::Milliseconds)
            .metric("LookupTime", stats.lookup_ms, emf::Unit::Milliseconds)
            .metric("WriteTime", stats.write_ms, emf::Unit::Milliseconds);
        doc
    }

    fn log(&self) {
        let stats = serde_json::json!(self.stats);
        match &self.error {
            Some(error) => {
                tracing::warn!(error = %error, retry_from = ?self.retry_from, stats = %stats, "batch partly failed")
            }
            None => tracing::info!(stats = %stats, "batch done"),
        }
    }

    /// Always a response: a failure is a retry point in it, never an
    /// invocation error (which would retry the whole batch).
    fn into_response(self) -> Result<KinesisEventResponse, Diagnostic> {
        Ok(self.response())
    }
}
