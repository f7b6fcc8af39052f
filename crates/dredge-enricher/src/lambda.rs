//! The Lambda entry: Kinesis event in, `batchItemFailures` out, metrics as
//! one Embedded Metric Format line.

use aws_lambda_events::event::streams::{KinesisBatchItemFailure, KinesisEventResponse};
use dredge_core::emf;
use dredge_core::objects::ObjectStore;
use dredge_core::ownership::{OwnershipStore, UnixTime};
use dredge_core::sink::RecordSink;

use crate::event::KinesisBatch;
use crate::handler::{BatchOutcome, BatchStats, Enricher};

/// Runs the enricher on one Kinesis event.
pub async fn handle<S: OwnershipStore, K: RecordSink, O: ObjectStore>(
    enricher: &Enricher<S, K, O>,
    event: &KinesisBatch,
    now: UnixTime,
) -> (KinesisEventResponse, BatchOutcome) {
    let outcome = enricher.process(&event.inputs(), now).await;
    let mut response = KinesisEventResponse::default();
    if let Some(seq) = &outcome.retry_from {
        let mut failure = KinesisBatchItemFailure::default();
        failure.item_identifier = Some(seq.clone());
        response.batch_item_failures.push(failure);
    }
    (response, outcome)
}

/// The batch's metrics as one EMF document.
pub fn metrics(stats: &BatchStats, function: &str) -> emf::Document {
    let mut doc = emf::Document::new(emf::NAMESPACE);
    doc.dimension(emf::FUNCTION_DIMENSION, function).directive(&[&[emf::FUNCTION_DIMENSION]]);
    let ratio = |n: u64, d: u64| if d == 0 { 0.0 } else { n as f64 / d as f64 };
    let out = stats.output_lines;
    doc.count("RecordsIn", stats.records_in)
        .count("PayloadErrors", stats.payload_errors)
        .count("ControlMessages", stats.control_messages)
        .count("FlowsDecoded", stats.flows)
        .count("StatusRecords", stats.status_records)
        .count("RejectedLines", stats.rejected_lines)
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
