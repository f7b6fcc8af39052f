//! The Kinesis event reader (`dredge_lambda::kinesis`): a Lambda event's
//! JSON deserialized as a `KinesisBatch`, and the `Input`s a function
//! takes from it.
//!
//! Beyond "no panic":
//! - one input per record, in order, carrying that record's sequence
//!   number and data; the shard is what precedes the first `:` of a
//!   non-empty `eventID`, and no shard without one;
//! - the arrival time in milliseconds is the event's seconds, rounded;
//! - what the reader accepted survives a round trip through `event_json`
//!   (the writer of hand-made events): the same records, shards, data and
//!   arrival times read back.

#![no_main]

use dredge_lambda::kinesis::{event_json, EventRecord, KinesisBatch};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let batch: KinesisBatch = match serde_json::from_slice(data) {
        Ok(batch) => batch,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let inputs = batch.inputs();
    assert_eq!(inputs.len(), batch.records.len());
    for (input, record) in inputs.iter().zip(&batch.records) {
        assert_eq!(input.sequence_number, record.kinesis.sequence_number);
        assert_eq!(input.data, &record.kinesis.data[..]);
        let expected_shard = match record.event_id.as_deref() {
            None | Some("") => None,
            Some(id) => Some(id.split(':').next().unwrap_or(id)),
        };
        assert_eq!(input.shard, expected_shard);
        let seconds = record.kinesis.approximate_arrival_timestamp;
        if seconds.is_finite() && seconds.abs() < 9.0e15 {
            assert_eq!(input.arrival_ms, (seconds * 1000.0).round() as i64);
        }
    }

    // The round trip through `event_json`, one event per record (each
    // record has its own shard).
    for (input, record) in inputs.iter().zip(&batch.records) {
        let shard = input.shard.unwrap_or("shardId-000000000000");
        let written = event_json(
            "dredge-fuzz",
            "flows",
            shard,
            &[EventRecord {
                partition_key: "fuzz",
                sequence_number: input.sequence_number,
                data: input.data,
                arrival: record.kinesis.approximate_arrival_timestamp,
            }],
        );
        let text = serde_json::to_vec(&written).expect("a JSON value serializes");
        let again: KinesisBatch = serde_json::from_slice(&text).unwrap_or_else(|e| {
            panic!("event_json wrote an event the reader refuses ({e}): {}", String::from_utf8_lossy(&text))
        });
        let back = again.inputs();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].sequence_number, input.sequence_number);
        assert_eq!(back[0].data, input.data);
        assert_eq!(back[0].arrival_ms, input.arrival_ms);
        // A shard with a `:` cannot come back whole (the event id is `shard:sequence`).
        if !shard.is_empty() && !shard.contains(':') {
            assert_eq!(back[0].shard, Some(shard));
        }
    }
});
