//! The Lambda side of the enricher: a Kinesis event (flow logs) or an SQS
//! event (the retry queue's deferred flows) in, the batch's outcome as an
//! [`Invocation`] (the partial-batch response, one EMF line, one log line).

use aws_lambda_events::event::streams::KinesisEventResponse;
use dredge_core::objects::ObjectStore;
use dredge_core::ownership::{OwnershipStore, UnixTime};
use dredge_core::retry_queue::{ReceivedMessage, RetryQueue};
use dredge_core::sink::RecordSink;
use dredge_lambda::kinesis::{batch_response, KinesisBatch};
use dredge_lambda::sqs::{is_sqs_event, SqsBatch, SqsBatchResponse};
use dredge_lambda::{emf, Diagnostic, Invocation};

use crate::handler::{BatchOutcome, BatchStats, Enricher, RetryOutcome};

/// Runs the enricher on one Kinesis event: the response Lambda gets, and
/// the outcome behind it.
pub async fn handle<S: OwnershipStore, K: RecordSink, O: ObjectStore, Q: RetryQueue>(
    enricher: &Enricher<S, K, O, Q>,
    event: &KinesisBatch,
    now: UnixTime,
) -> (KinesisEventResponse, BatchOutcome) {
    let outcome = enricher.process(&event.inputs(), now).await;
    (outcome.response(), outcome)
}

/// Runs the enricher on one SQS event of the retry queue.
pub async fn handle_retries<S: OwnershipStore, K: RecordSink, O: ObjectStore, Q: RetryQueue>(
    enricher: &Enricher<S, K, O, Q>,
    event: &SqsBatch,
    now: UnixTime,
) -> RetryOutcome {
    let messages: Vec<ReceivedMessage> = event
        .records
        .iter()
        .map(|r| ReceivedMessage { message_id: r.message_id.clone(), body: r.body.clone() })
        .collect();
    enricher.retry(&messages, now).await
}

/// Either event the function is invoked with.
pub enum Invoked {
    Stream(BatchOutcome),
    Retries(RetryOutcome),
    /// An event that is neither: an invocation error (nothing to retry
    /// item by item).
    Unreadable(String),
}

/// Runs the enricher on whatever event came: SQS records (`aws:sqs`) go to
/// the second chance, anything else is read as a Kinesis batch.
pub async fn handle_any<S: OwnershipStore, K: RecordSink, O: ObjectStore, Q: RetryQueue>(
    enricher: &Enricher<S, K, O, Q>,
    event: serde_json::Value,
    now: UnixTime,
) -> Invoked {
    if is_sqs_event(&event) {
        match serde_json::from_value::<SqsBatch>(event) {
            Ok(batch) => Invoked::Retries(handle_retries(enricher, &batch, now).await),
            Err(e) => Invoked::Unreadable(format!("SQS event: {e}")),
        }
    } else {
        match serde_json::from_value::<KinesisBatch>(event) {
            Ok(batch) => Invoked::Stream(handle(enricher, &batch, now).await.1),
            Err(e) => Invoked::Unreadable(format!("Kinesis event: {e}")),
        }
    }
}

impl RetryOutcome {
    pub fn response(&self) -> SqsBatchResponse {
        SqsBatchResponse::failing(self.failed.iter().cloned())
    }
}

impl Invocation for Invoked {
    type Response = serde_json::Value;

    fn metrics(&self, function: &str) -> emf::Document {
        match self {
            Invoked::Stream(o) => o.metrics(function),
            Invoked::Retries(o) => {
                let mut doc = stats_metrics(&o.stats, function);
                doc.count("RetryMessagesFailed", o.failed.len() as u64);
                doc
            }
            Invoked::Unreadable(_) => {
                let mut doc = emf::Document::for_function(function);
                doc.count("UnreadableEvents", 1);
                doc
            }
        }
    }

    fn log(&self) {
        match self {
            Invoked::Stream(o) => o.log(),
            Invoked::Retries(o) => {
                let stats = serde_json::json!(o.stats);
                match &o.error {
                    Some(error) => {
                        tracing::warn!(error = %error, failed = ?o.failed, stats = %stats, "retries partly failed")
                    }
                    None => tracing::info!(stats = %stats, "retries done"),
                }
            }
            Invoked::Unreadable(e) => tracing::error!(error = %e, "unreadable event"),
        }
    }

    fn into_response(self) -> Result<serde_json::Value, Diagnostic> {
        let json = |v: Result<serde_json::Value, serde_json::Error>| {
            v.map_err(|e| Diagnostic { error_type: "Serialize".into(), error_message: e.to_string() })
        };
        match self {
            Invoked::Stream(o) => json(serde_json::to_value(o.response())),
            Invoked::Retries(o) => json(serde_json::to_value(o.response())),
            Invoked::Unreadable(e) => Err(Diagnostic { error_type: "UnreadableEvent".into(), error_message: e }),
        }
    }
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
        stats_metrics(&self.stats, function)
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

/// Every counter of a batch under `Function`.
fn stats_metrics(stats: &BatchStats, function: &str) -> emf::Document {
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
        .count("DeadLetterRecords", stats.dead_letter_records)
        .count("OverBudgetRecords", stats.over_budget)
        .count("OversizedLines", stats.oversized_lines)
        .count("RefusedOutputRecords", stats.refused_records)
        .count("NoStartTime", stats.no_start_time)
        .count("SrcUnattributed", stats.src_unattributed)
        .count("DstUnattributed", stats.dst_unattributed)
        .count("NotYetKnown", stats.not_yet_known)
        .count("DeferredFlows", stats.deferred_flows)
        .count("DeferredMessages", stats.deferred_messages)
        .count("OwnerAfterRetry", stats.owner_after_retry)
        .count("SettledUnattributed", stats.settled_unattributed)
        .count("HeartbeatsWritten", stats.heartbeats_written)
        .count("Rereads", stats.rereads)
        .count("HeartbeatErrors", stats.heartbeat_errors)
        .count("BadRetryMessages", stats.bad_messages)
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
