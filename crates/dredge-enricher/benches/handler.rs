//! The whole enricher path on one warm, realistic batch: the Lambda event's
//! JSON parsed into a `KinesisBatch`, every record base64-decoded (by the
//! event's deserializer), gunzipped, decoded, both sides of every flow
//! attributed from a warm owner cache, enriched JSON written, packed and
//! put to a sink that only counts. 10,000 records of 20 CloudWatch Logs
//! events each (`DREDGE_BENCH_RECORDS`, `DREDGE_BENCH_LOG_EVENTS` to change
//! them); see `support/batch.rs` for what the batch holds.
//!
//! `cargo bench -p dredge-enricher --bench handler -- --warm-up-time 2 --measurement-time 10 --sample-size 10`
//!
//! Three measurements, each in flows per second:
//! - `parse_and_handle`: `serde_json::from_slice::<KinesisBatch>` then
//!   `lambda::handle` (what one invocation costs, minus the runtime's I/O);
//! - `handle`: `lambda::handle` on an already parsed event;
//! - `inflate_and_decode`: every payload inflated and decoded, nothing
//!   looked up or written (the floor under `handle`);
//! - `parse_event`: the event's JSON alone.

#[path = "support/batch.rs"]
mod batch;

use std::hint::black_box;
use std::sync::atomic::Ordering;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use dredge_core::flowlog::{DecodeOptions, Decoder, Field, Inflater, Item};
use dredge_enricher::lambda::handle;
use dredge_enricher::KinesisBatch;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let log_events = batch::log_events_per_record();
    let fixture = rt.block_on(batch::build(batch::records(), log_events));
    let enricher = batch::enricher(fixture.store, fixture.ranges);
    let event_json = fixture.event_json;

    // The cold run fills the owner and ENI caches; the fixed clock keeps
    // them valid for every run after it.
    let parsed: KinesisBatch = serde_json::from_slice(&event_json).unwrap();
    let (_, cold) = rt.block_on(handle(&enricher, &parsed, batch::NOW));
    assert_eq!(cold.retry_from, None, "{:?}", cold.error);
    let (_, warm) = rt.block_on(handle(&enricher, &parsed, batch::NOW));
    let s = warm.stats;
    // Warm: only the reconcile horizon is read (one GetItem per batch).
    assert_eq!((s.store_calls, s.eni_lookups, s.cache_misses), (1, 0, 0), "warm cache: {s:?}");
    assert_eq!(s.not_yet_known, 0, "every side vouched for: {s:?}");
    assert_eq!(s.flows, fixture.lines);
    let flows = s.flows;
    eprintln!(
        "batch: {} records x {log_events} log events = {flows} flows; event JSON {:.1} MB, gzip payloads {:.1} MB; \
         {} output records, {:.1} MB enriched; cold run: {} store calls, {} ENI lookups; \
         warm: {} cache hits; unattributed src {} dst {}",
        fixture.records,
        event_json.len() as f64 / 1e6,
        fixture.payload_bytes as f64 / 1e6,
        s.output_records,
        s.output_bytes as f64 / 1e6,
        cold.stats.store_calls,
        cold.stats.eni_lookups,
        s.cache_hits,
        s.src_unattributed,
        s.dst_unattributed,
    );
    let before = enricher.sink().bytes.load(Ordering::Relaxed);

    let mut group = c.benchmark_group("enricher_batch");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(flows));
    group.bench_function("parse_and_handle", |b| {
        b.iter(|| {
            rt.block_on(async {
                let event: KinesisBatch = serde_json::from_slice(black_box(&event_json)).unwrap();
                let (response, outcome) = handle(&enricher, &event, batch::NOW).await;
                assert!(outcome.retry_from.is_none());
                black_box((response, outcome.stats.output_records))
            })
        })
    });
    group.bench_function("handle", |b| {
        b.iter(|| {
            rt.block_on(async {
                let (response, outcome) = handle(&enricher, black_box(&parsed), batch::NOW).await;
                black_box((response, outcome.stats.output_records))
            })
        })
    });
    // The floor under `handle`: inflating and decoding every payload, with
    // no lookups and no output. What the decoder alone costs per flow.
    let decoder = Decoder::new(DecodeOptions::default());
    group.bench_function("inflate_and_decode", |b| {
        let mut inflater = Inflater::new();
        b.iter(|| {
            let mut n = 0u64;
            for r in &parsed.records {
                decoder
                    .decode_with(black_box(&r.kinesis.data), &mut inflater, &mut |item| {
                        if let Item::Record { record, .. } = item {
                            n += u64::from(record.u64(Field::Start).is_some());
                        }
                    })
                    .unwrap();
            }
            assert_eq!(n, flows);
            n
        })
    });
    group.bench_function("parse_event", |b| {
        b.iter(|| black_box(serde_json::from_slice::<KinesisBatch>(black_box(&event_json)).unwrap()))
    });
    group.finish();
    assert!(enricher.sink().bytes.load(Ordering::Relaxed) > before, "the sink saw the output");
}

criterion_group!(benches, bench);
criterion_main!(benches);
