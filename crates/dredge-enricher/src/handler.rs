//! The enricher: decode a batch of Kinesis records, attribute both sides of
//! every flow at its start time, put the enriched records on the output
//! stream, keep rejected input in the dead-letter store, and say which input
//! record Lambda must retry from.
//!
//! A batch is decoded once, in three passes: the first decodes every
//! payload, writes each flow's first half of output (timestamp and flow-log
//! fields) and collects what to look up; the second looks everything up at
//! once (cache, then store); the third decides both sides of every flow and
//! completes its output line, delivering full output records as it goes.
//!
//! A flow is also evidence: its logging ENI held its own address at the
//! flow's start. The second pass merges that evidence (heartbeats) into the
//! cache before anything is decided and stores it, coalesced. A side whose
//! owner the table cannot vouch for yet waits in the retry queue
//! ([`second_chance`](crate::second_chance)); [`Enricher::retry`] decides
//! it again when the queue hands it back.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use base64::Engine;
use dredge_core::enrich::{
    attribute, DeferredBatch, DeferredFlow, FlowFacts, FlowId, FlowWriter, LoggingEni, SideOwner, SideWriter, Sides,
};
use dredge_core::flowlog::{is_id, DecodeOptions, Decoder, Field, FlowDirection, Inflater, Item, PayloadError, Record};
use dredge_core::ipranges::IpRanges;
use dredge_core::objects::ObjectStore;
use dredge_core::ownership::{
    horizon, is_private, make_room, AddressKey, Attached, Owner, OwnerCache, Owners, OwnershipStore, Scope, Sighting,
    StoreError, TagPolicy, UnixTime,
};
use dredge_core::retry_queue::{ReceivedMessage, RetryQueue};
use dredge_core::sink::RecordSink;
use dredge_core::stream_data::RecordEncoder;
use dredge_core::FastHashMap;
use dredge_lambda::kinesis::Input;
use serde::Serialize;

use crate::buffers::{BufferPool, Chunks, Span};
use crate::config::{BatchBudget, EnricherConfig};
use crate::output::{deliver, Delivery, Packer, RECORD_BUFFER, STAGING_BUFFER};
use crate::second_chance::{Deferrals, NoQueue, MAX_DEFERRED_HALF};

/// What one batch did: the counters behind the metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize)]
pub struct BatchStats {
    pub records_in: u64,
    /// Input records refused whole (bad gzip, too large, bad JSON).
    pub payload_errors: u64,
    pub control_messages: u64,
    pub flows: u64,
    /// NODATA and SKIPDATA records (forwarded only when configured).
    pub status_records: u64,
    pub rejected_lines: u64,
    /// Flow-log text decoded, in bytes (decompressed, each line with its
    /// newline): what `output_bytes` compares with.
    pub flow_log_bytes: u64,
    /// Flows without a start time: timestamped on arrival, unattributed.
    pub no_start_time: u64,
    pub src_unattributed: u64,
    pub dst_unattributed: u64,
    /// Sides whose owner the table could not vouch for yet when their flow
    /// was decided (deferred, or settled `unattributed`).
    pub not_yet_known: u64,
    /// Flows sent to the retry queue, and its messages.
    pub deferred_flows: u64,
    pub deferred_messages: u64,
    /// Sides decided on a second chance (`owner_after_retry`), and sides
    /// written `unattributed` because their wait ran out.
    pub owner_after_retry: u64,
    pub settled_unattributed: u64,
    /// Heartbeats stored (coalesced), and failed attempts to store them
    /// (evidence lost, nothing else: knowing less is safe).
    pub heartbeats_written: u64,
    /// Cached heads read again because they could not vouch for a side.
    pub rereads: u64,
    pub heartbeat_errors: u64,
    /// Input records not decoded because the batch's budget was spent
    /// (kept whole in the dead-letter store).
    pub over_budget: u64,
    /// Flows whose enriched line would not fit a Kinesis record (their
    /// input is kept whole in the dead-letter store).
    pub oversized_lines: u64,
    /// Output records the stream refused for their content (kept whole in
    /// the dead-letter store).
    pub refused_records: u64,
    /// Retry-queue messages that were not deferred batches (kept in the
    /// dead-letter store).
    pub bad_messages: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub store_calls: u64,
    pub eni_lookups: u64,
    pub output_lines: u64,
    pub output_records: u64,
    /// Record data put on the enriched stream (compressed, when it is),
    /// counted once per record however often its put was retried.
    pub output_bytes: u64,
    pub put_calls: u64,
    pub put_retried: u64,
    /// Rejected lines (and inputs refused whole) in the dead-letter store,
    /// and the records kept there (inputs and refused output records).
    pub dead_letter_lines: u64,
    pub dead_letter_records: u64,
    /// Wall time of each pass: decoding (with inflating and the flow
    /// fields' output), lookups (cache and store), writing (deciding,
    /// completing and delivering output).
    pub decode_ms: f64,
    pub lookup_ms: f64,
    pub write_ms: f64,
}

/// The batch's result: the counters, and the input record Lambda must
/// restart from (none when everything was processed).
#[derive(Debug, Clone)]
pub struct BatchOutcome {
    pub stats: BatchStats,
    pub retry_from: Option<String>,
    /// Why a retry is asked for.
    pub error: Option<String>,
}

/// Output records are delivered as soon as this many are full (about
/// 10 MiB, two PutRecords calls of 5 MB), so a batch's output is never all
/// held at once.
const DELIVER_EVERY: usize = 10;

/// 1 MiB buffers kept between batches: enough for one chunk's flow halves
/// and the output records in flight.
const KEEP_BUFFERS: usize = 32;

/// Flows decoded before they are looked up, attributed and delivered: a
/// batch holds one chunk at a time, whatever the batch holds. Each chunk
/// writes its side owners' columns afresh, so chunks are as large as the
/// memory budget comfortably allows (about 40 MB of flows, halves and
/// lookups).
const CHUNK_FLOWS: usize = 64 * 1024;

/// ... or this many bytes of their output's first halves.
const CHUNK_BYTES: usize = 24 * 1024 * 1024;

/// Lines decoded between two checks of the chunk's size.
const DECODE_STEP: usize = 256;

/// What the table knows of one logging ENI.
#[derive(Debug)]
struct EniInfo {
    owner: Owner,
    addresses: Vec<IpAddr>,
    deleted_at: Option<UnixTime>,
    since: UnixTime,
}

/// Logging ENIs looked up, with when: `None` when the table knows nothing.
type EniCache = HashMap<String, (Option<Arc<EniInfo>>, UnixTime)>;

/// What a flow log says of the logging ENI's attachment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum SeenAs {
    /// The format has no `instance-id`.
    Unknown,
    /// `instance-id` is `-`.
    Nothing,
    /// Interned instance id.
    To(u32),
}

/// A flow being decided again: its message's wait (index into
/// `Decoded::waits`) and which sides were undecided.
#[derive(Debug, Clone, Copy)]
struct Retry {
    wait: u32,
    src_pending: bool,
    dst_pending: bool,
}

/// Interns strings seen during a batch, so flows carry small ids.
#[derive(Default)]
struct Interner {
    ids: FastHashMap<String, u32>,
    names: Vec<String>,
}

impl Interner {
    fn id(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.names.len() as u32;
        self.ids.insert(s.to_owned(), id);
        self.names.push(s.to_owned());
        id
    }
}

/// What the first pass keeps of a flow.
#[derive(Debug, Clone, Copy)]
struct Flow {
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    start: Option<i64>,
    /// Interned logging ENI id.
    eni: Option<u32>,
    /// Interned VPC id (formats with `vpc-id`).
    vpc: Option<u32>,
    direction: Option<FlowDirection>,
    seen_as: SeenAs,
    /// `Some` when the flow comes back from the retry queue.
    retry: Option<Retry>,
    /// Query indexes of each side's table lookup.
    src_query: Option<u32>,
    dst_query: Option<u32>,
    /// The input record it came from.
    input: u32,
    /// Its output's first half (timestamp and flow fields).
    half: Span,
}

/// The enricher with its backends; built once per container. Without a
/// retry queue (`Q` = [`NoQueue`]), sides the table cannot vouch for yet
/// are written `unattributed` at once.
pub struct Enricher<S, K, O, Q = NoQueue> {
    store: S,
    sink: K,
    dead_letter: O,
    queue: Option<Q>,
    config: EnricherConfig,
    policy: TagPolicy,
    ranges: Option<Arc<IpRanges>>,
    decoder: Decoder,
    cache: OwnerCache,
    enis: Mutex<EniCache>,
    buffers: BufferPool,
    /// The compressing packer's line buffer, kept between batches.
    staging: BufferPool,
    /// The output's encoder (its zstd context), kept between batches.
    encoder: Mutex<Option<RecordEncoder>>,
}

impl<S: OwnershipStore, K: RecordSink, O: ObjectStore> Enricher<S, K, O, NoQueue> {
    pub fn new(
        store: S,
        sink: K,
        dead_letter: O,
        config: EnricherConfig,
        policy: TagPolicy,
        ranges: Option<Arc<IpRanges>>,
    ) -> Self {
        let decoder =
            Decoder::new(DecodeOptions { format: config.format.clone(), max_decompressed: config.max_decompressed });
        let cache = OwnerCache::new(config.cache);
        Enricher {
            store,
            sink,
            dead_letter,
            queue: None,
            config,
            policy,
            ranges,
            decoder,
            cache,
            enis: Mutex::new(HashMap::new()),
            buffers: BufferPool::new(RECORD_BUFFER, KEEP_BUFFERS),
            staging: BufferPool::new(STAGING_BUFFER, 1),
            encoder: Mutex::new(None),
        }
    }

    /// The same enricher, deferring undecided sides to `queue` (`None`:
    /// settling them at once, as without one).
    pub fn with_queue<Q: RetryQueue>(self, queue: Option<Q>) -> Enricher<S, K, O, Q> {
        Enricher {
            store: self.store,
            sink: self.sink,
            dead_letter: self.dead_letter,
            queue,
            config: self.config,
            policy: self.policy,
            ranges: self.ranges,
            decoder: self.decoder,
            cache: self.cache,
            enis: self.enis,
            buffers: self.buffers,
            staging: self.staging,
            encoder: self.encoder,
        }
    }
}

impl<S: OwnershipStore, K: RecordSink, O: ObjectStore, Q: RetryQueue> Enricher<S, K, O, Q> {
    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn sink(&self) -> &K {
        &self.sink
    }

    pub fn queue(&self) -> Option<&Q> {
        self.queue.as_ref()
    }

    fn keep(&self, r: &Record<'_, '_>) -> bool {
        self.config.forward_status_records || !r.is_status_only()
    }

    /// What the table knows of these ENIs (cached for the cache TTL); the
    /// ones not cached are read in one batch.
    async fn eni_infos(
        &self,
        names: &[String],
        now: UnixTime,
        stats: &mut BatchStats,
    ) -> Result<Vec<Option<Arc<EniInfo>>>, StoreError> {
        let mut out: Vec<Option<Option<Arc<EniInfo>>>> = {
            let enis = self.enis.lock().unwrap_or_else(|p| p.into_inner());
            names
                .iter()
                .map(|name| {
                    enis.get(name)
                        .filter(|(_, at)| now.0 - at.0 <= self.config.cache.ttl_seconds)
                        .map(|(i, _)| i.clone())
                })
                .collect()
        };
        let missing: Vec<String> =
            names.iter().zip(&out).filter(|(_, cached)| cached.is_none()).map(|(n, _)| n.clone()).collect();
        if !missing.is_empty() {
            stats.eni_lookups += missing.len() as u64;
            let calls_before = self.store.calls();
            let records = self.store.enis_by_id(&missing).await;
            stats.store_calls += self.store.calls().saturating_sub(calls_before);
            let records = records?;
            let mut enis = self.enis.lock().unwrap_or_else(|p| p.into_inner());
            make_room(&mut enis, missing.len(), self.config.cache.capacity, self.config.cache.ttl_seconds, now, |e| {
                e.1
            });
            let mut fetched = missing.into_iter().zip(records);
            for slot in out.iter_mut().filter(|s| s.is_none()) {
                let (name, record) = fetched.next().expect("one record per missing ENI");
                let info = record.map(|r| {
                    Arc::new(EniInfo {
                        owner: r.eni.owner(&self.policy),
                        addresses: r.eni.addresses().collect(),
                        deleted_at: r.deleted_at,
                        since: r.attached_since(),
                    })
                });
                enis.insert(name, (info.clone(), now));
                *slot = Some(info);
            }
        }
        Ok(out.into_iter().map(Option::flatten).collect())
    }

    /// Processes one batch, a chunk of flows at a time: decode → look up →
    /// attribute, encode and deliver → the next chunk; then keep what was
    /// rejected. `now` is the wall clock (a parameter so tests control
    /// cache ages).
    pub async fn process(&self, inputs: &[Input<'_>], now: UnixTime) -> BatchOutcome {
        let mut stats = BatchStats { records_in: inputs.len() as u64, ..BatchStats::default() };
        let mut encoder = self.take_encoder();
        let failed = self.run_batch(inputs, now, &mut encoder, &mut stats).await;
        self.keep_encoder(encoder);
        match failed {
            Some((index, error)) => BatchOutcome::retry(stats, inputs, index, error),
            None => BatchOutcome { stats, retry_from: None, error: None },
        }
    }

    async fn run_batch(
        &self,
        inputs: &[Input<'_>],
        now: UnixTime,
        encoder: &mut RecordEncoder,
        stats: &mut BatchStats,
    ) -> Option<(usize, String)> {
        let mut out = match self.open_output(inputs, now, encoder, stats).await {
            Ok(out) => out,
            Err(failed) => return Some(failed),
        };
        let mut rejects = Rejects::default();
        let mut budget = Budget::new(self.config.budget);
        let mut inflater = Inflater::new();
        let mut chunk = Decoded::new(&self.buffers);
        let mut flow_writer = FlowWriter::new();
        let mut pass = Instant::now();
        'inputs: for (index, input) in inputs.iter().enumerate() {
            if let Some(spent) = budget.spent() {
                stats.over_budget += 1;
                rejects.whole(index, "over_budget", &spent);
                continue;
            }
            let mut payload = match self.decoder.open(input.data, &mut inflater) {
                Ok(p) => p,
                Err(e) => {
                    if let PayloadError::TooLarge { max } = e {
                        budget.charge(max as u64);
                    }
                    stats.payload_errors += 1;
                    rejects.whole(index, e.kind(), &e);
                    continue;
                }
            };
            let payload_stats = payload.stats();
            if let Err(spent) = budget.spend(payload_stats.text_bytes, payload.line_count() as u64) {
                stats.over_budget += 1;
                rejects.whole(index, "over_budget", &spent);
                continue;
            }
            stats.control_messages += payload_stats.control_messages;
            stats.flow_log_bytes += payload_stats.text_bytes;
            loop {
                let done = payload.decode_lines(DECODE_STEP, &mut |item| {
                    self.take(item, index, input, &mut chunk, &mut flow_writer, &mut rejects, stats)
                });
                if chunk.is_full() {
                    stats.decode_ms += lap(&mut pass);
                    let failed = self.run_chunk(&mut chunk, inputs, &mut out, &mut rejects, stats).await;
                    if let Some(failed) = failed {
                        out.fail(failed);
                        break 'inputs;
                    }
                    // The next chunk reuses this one's memory.
                    chunk.reset();
                    pass = Instant::now();
                }
                if done {
                    break;
                }
            }
        }
        if out.failed.is_none() && !chunk.flows.is_empty() {
            stats.decode_ms += lap(&mut pass);
            if let Some(failed) = self.run_chunk(&mut chunk, inputs, &mut out, &mut rejects, stats).await {
                out.fail(failed);
            }
        }
        drop(chunk);
        self.close(out, rejects, inputs, stats).await
    }

    /// Ends a batch: delivers what is still packed, then keeps its rejects.
    /// Rejected input goes to the dead-letter store before anything is
    /// reported done: it is never dropped. Inputs Lambda will hand back are
    /// kept by the try that finishes them. The input to retry from.
    async fn close(
        &self,
        out: Output<Packer<'_, '_>>,
        mut rejects: Rejects,
        inputs: &[Input<'_>],
        stats: &mut BatchStats,
    ) -> Option<(usize, String)> {
        let now = out.now;
        let mut pass = Instant::now();
        let mut failed = self.finish_output(out, &mut rejects, stats).await;
        stats.write_ms += lap(&mut pass);
        if let Some((from, _)) = &failed {
            rejects.forget_from(*from);
        }
        if let Some(f) = self.keep_rejects(&rejects, inputs, now, batch_seed(inputs), stats).await {
            if failed.as_ref().is_none_or(|(r, _)| f.0 < *r) {
                failed = Some(f);
            }
        }
        failed
    }

    /// Delivers what the packer still holds; the input to retry from.
    async fn finish_output(
        &self,
        out: Output<Packer<'_, '_>>,
        rejects: &mut Rejects,
        stats: &mut BatchStats,
    ) -> Option<(usize, String)> {
        let Output { packer, delivery, failed, horizon, now, refused_records } = out;
        let mut out = Output { packer: (), delivery, failed, horizon, now, refused_records };
        // What is packed was decided: delivered even after a failure, so
        // that Lambda's retry repeats as little as it can.
        let delivery = deliver(&self.sink, packer.finish(), &self.config.put_retry, &self.buffers).await;
        out.delivered(delivery, rejects);
        stats.output_records = out.delivery.records;
        stats.output_bytes = out.delivery.bytes;
        stats.put_calls = out.delivery.calls;
        stats.put_retried = out.delivery.retried;
        stats.refused_records = out.refused_records;
        out.failed
    }

    /// Takes one decoded item into the chunk: a flow's first half of output
    /// and what to look up, or a rejected line.
    #[allow(clippy::too_many_arguments)]
    fn take(
        &self,
        item: Item<'_, '_>,
        index: usize,
        input: &Input<'_>,
        d: &mut Decoded<'_>,
        flow_writer: &mut FlowWriter,
        rejects: &mut Rejects,
        stats: &mut BatchStats,
    ) {
        match item {
            Item::Record { record, line } => {
                if record.is_status_only() {
                    stats.status_records += 1;
                } else {
                    stats.flows += 1;
                }
                if !self.keep(&record) {
                    return;
                }
                let start = record.u64(Field::Start).and_then(|s| i64::try_from(s).ok());
                // Flows without a start are timestamped on arrival.
                let timestamp = start.map_or(input.arrival_ms, |s| s.saturating_mul(1000));
                let id = FlowId { shard: input.shard, sequence_number: input.sequence_number, line };
                let half = d.halves.write(|out| flow_writer.write(&record, timestamp, &id, out));
                d.flows.push(Flow {
                    src: record.addr(Field::Srcaddr),
                    dst: record.addr(Field::Dstaddr),
                    start,
                    eni: record.text(Field::InterfaceId).map(|e| d.enis.id(e)),
                    vpc: record.text(Field::VpcId).map(|v| d.vpcs.id(v)),
                    direction: record.flow_direction(),
                    seen_as: match record.get(Field::InstanceId) {
                        None => SeenAs::Unknown,
                        Some(_) => {
                            record.text(Field::InstanceId).map_or(SeenAs::Nothing, |i| SeenAs::To(d.instances.id(i)))
                        }
                    },
                    retry: None,
                    src_query: None,
                    dst_query: None,
                    input: index as u32,
                    half,
                });
            }
            Item::Rejected { line, error, text } => {
                stats.rejected_lines += 1;
                rejects.line(index, line, error.kind(), &error, text);
            }
        }
    }

    /// Looks a chunk up, decides, delivers and defers its flows. The input
    /// to retry from, and why, if something failed for good.
    async fn run_chunk(
        &self,
        chunk: &mut Decoded<'_>,
        inputs: &[Input<'_>],
        out: &mut Output<Packer<'_, '_>>,
        rejects: &mut Rejects,
        stats: &mut BatchStats,
    ) -> Option<(usize, String)> {
        let mut pass = Instant::now();
        let lookups = match self.look_up(chunk, out.horizon, out.now, stats).await {
            Ok(l) => l,
            Err(e) if e.is_invalid() && chunk.inputs() > 1 => {
                // Something in one input's flows made the store refuse the
                // request: each input alone, so only that one is kept aside.
                stats.lookup_ms += lap(&mut pass);
                for mut part in chunk.split_by_input(&self.buffers) {
                    if let Some(failed) = Box::pin(self.run_chunk(&mut part, inputs, out, rejects, stats)).await {
                        return Some(failed);
                    }
                }
                return None;
            }
            Err(e) if e.is_invalid() => {
                let index = chunk.flows[0].input as usize;
                rejects.whole(index, "store_refused", &e);
                return None;
            }
            Err(e) => return Some((chunk.first_input(), format!("ownership store: {e}"))),
        };
        stats.lookup_ms += lap(&mut pass);
        let mut deferrals = Deferrals::default();
        self.pack_and_deliver(chunk, &lookups, out, &mut deferrals, rejects, stats).await;
        if let (Some(queue), false) = (&self.queue, deferrals.is_empty()) {
            let sent = deferrals.send(queue, &self.config.second_chance).await;
            stats.deferred_flows += sent.flows;
            stats.deferred_messages += sent.messages;
            if let Some(failed) = sent.failed_from {
                out.fail(failed);
            }
        }
        stats.write_ms += lap(&mut pass);
        out.failed.clone()
    }

    /// Decides again the flows the retry queue hands back: each message is
    /// one input; the messages to be handed back again (a failure) are
    /// named in the outcome.
    pub async fn retry(&self, messages: &[ReceivedMessage], now: UnixTime) -> RetryOutcome {
        let inputs: Vec<Input<'_>> = messages
            .iter()
            .map(|m| Input {
                shard: Some(RETRY_SHARD),
                sequence_number: &m.message_id,
                data: m.body.as_bytes(),
                arrival_ms: now.0.saturating_mul(1000),
            })
            .collect();
        let mut stats = BatchStats { records_in: inputs.len() as u64, ..BatchStats::default() };
        let mut encoder = self.take_encoder();
        let failed = self.run_retries(&inputs, now, &mut encoder, &mut stats).await;
        self.keep_encoder(encoder);
        match failed {
            Some((index, error)) => RetryOutcome {
                stats,
                failed: messages[index..].iter().map(|m| m.message_id.clone()).collect(),
                error: Some(error),
            },
            None => RetryOutcome { stats, failed: Vec::new(), error: None },
        }
    }

    /// The retry queue's messages as one chunk (a receive is at most ten
    /// messages of 256 KiB).
    async fn run_retries(
        &self,
        inputs: &[Input<'_>],
        now: UnixTime,
        encoder: &mut RecordEncoder,
        stats: &mut BatchStats,
    ) -> Option<(usize, String)> {
        let mut out = match self.open_output(inputs, now, encoder, stats).await {
            Ok(out) => out,
            Err(failed) => return Some(failed),
        };
        let mut rejects = Rejects::default();
        let mut pass = Instant::now();
        let mut decoded = self.decode_deferred(inputs, &mut rejects, stats);
        stats.decode_ms = lap(&mut pass);
        if !decoded.flows.is_empty() {
            if let Some(failed) = self.run_chunk(&mut decoded, inputs, &mut out, &mut rejects, stats).await {
                out.fail(failed);
            }
        }
        self.close(out, rejects, inputs, stats).await
    }

    /// Decoding for the retry queue: each message is a deferred batch; one
    /// that is not (or that names ids no flow log could) is rejected whole.
    fn decode_deferred(&self, inputs: &[Input<'_>], rejects: &mut Rejects, stats: &mut BatchStats) -> Decoded<'_> {
        let mut d = Decoded::new(&self.buffers);
        for (index, input) in inputs.iter().enumerate() {
            let batch = match std::str::from_utf8(input.data)
                .map_err(|e| e.to_string())
                .and_then(|body| DeferredBatch::parse(body).map_err(|e| e.to_string()))
                .and_then(|batch| {
                    let bad = batch.flows.iter().find(|f| {
                        f.interface_id.as_deref().is_some_and(|e| !is_id("eni-", e))
                            || f.vpc_id.as_deref().is_some_and(|v| !is_id("vpc-", v))
                    });
                    match bad {
                        Some(_) => Err("a deferred flow with a malformed ENI or VPC id".to_owned()),
                        None => Ok(batch),
                    }
                }) {
                Ok(batch) => batch,
                Err(e) => {
                    stats.bad_messages += 1;
                    rejects.whole(index, "bad_message", &e);
                    continue;
                }
            };
            let wait = d.waits.len() as u32;
            d.waits.push((batch.first_seen, batch.attempt));
            for f in batch.flows {
                stats.flows += 1;
                let half = d.halves.write(|out| out.extend_from_slice(f.half.as_bytes()));
                d.flows.push(Flow {
                    src: f.src,
                    dst: f.dst,
                    start: Some(f.start),
                    eni: f.interface_id.as_deref().map(|e| d.enis.id(e)),
                    vpc: f.vpc_id.as_deref().map(|v| d.vpcs.id(v)),
                    direction: f.direction(),
                    seen_as: SeenAs::Unknown,
                    retry: Some(Retry { wait, src_pending: f.src_pending, dst_pending: f.dst_pending }),
                    src_query: None,
                    dst_query: None,
                    input: index as u32,
                    half,
                });
            }
        }
        d
    }

    /// Pass 2: the logging ENIs, then every side of every flow, looked up
    /// at once: each distinct (VPC, address) is one key, each side of each
    /// flow one query of a key at the flow's start.
    async fn look_up(
        &self,
        decoded: &mut Decoded<'_>,
        horizon: Option<UnixTime>,
        now: UnixTime,
        stats: &mut BatchStats,
    ) -> Result<Lookups, StoreError> {
        let enis = self.eni_infos(&decoded.enis.names, now, stats).await?;
        let vpcs = &mut decoded.vpcs;
        // The VPC of each logging ENI, for formats without `vpc-id`.
        let eni_vpcs: Vec<Option<u32>> =
            enis.iter().map(|i| i.as_ref().and_then(|i| i.owner.vpc_id.as_deref()).map(|v| vpcs.id(v))).collect();
        let mut keys: Vec<AddressKey> = Vec::new();
        let mut key_ids: FastHashMap<(Option<u32>, IpAddr), Option<u32>> = FastHashMap::default();
        let mut queries: Vec<(u32, UnixTime)> = Vec::with_capacity(2 * decoded.flows.len());
        for flow in &mut decoded.flows {
            let Some(start) = flow.start else { continue };
            let vpc = flow.vpc.or_else(|| flow.eni.and_then(|e| eni_vpcs[e as usize]));
            let mut query = |addr: Option<IpAddr>| -> Option<u32> {
                let addr = addr?;
                // A public address has one (global) key whatever the VPC.
                let vpc = if is_private(addr) { vpc } else { None };
                let key = (*key_ids.entry((vpc, addr)).or_insert_with(|| {
                    let scope = Scope::of(addr, vpc.map(|v| vpcs.names[v as usize].as_str()))?;
                    keys.push(AddressKey::new(scope, addr));
                    Some(keys.len() as u32 - 1)
                }))?;
                queries.push((key, UnixTime(start)));
                Some(queries.len() as u32 - 1)
            };
            flow.src_query = query(flow.src);
            flow.dst_query = query(flow.dst);
        }
        drop(key_ids);
        let heartbeats = heartbeats(decoded, &enis, &queries);
        let before = self.cache.stats();
        let owners = self.cache.lookup(&self.store, &keys, &queries, &heartbeats, horizon, now).await?;
        let after = self.cache.stats();
        stats.cache_hits += after.hits - before.hits;
        stats.cache_misses += after.misses - before.misses;
        stats.store_calls += after.store_calls - before.store_calls;
        stats.rereads += after.rereads - before.rereads;
        if !owners.evidence.is_empty() {
            let calls_before = self.store.calls();
            match self.store.put_seen(&owners.evidence).await {
                Ok(()) => stats.heartbeats_written += owners.evidence.len() as u64,
                Err(e) => {
                    stats.heartbeat_errors += 1;
                    tracing::warn!(error = %e, heartbeats = owners.evidence.len(), "heartbeats not stored");
                }
            }
            stats.store_calls += self.store.calls().saturating_sub(calls_before);
        }
        Ok(Lookups { enis, owners })
    }

    /// The kept encoder, or a new one (first batch, or one in flight on
    /// another task).
    fn take_encoder(&self) -> RecordEncoder {
        let kept = self.encoder.lock().unwrap_or_else(|p| p.into_inner()).take();
        kept.unwrap_or_else(|| RecordEncoder::new(self.config.compression))
    }

    fn keep_encoder(&self, encoder: RecordEncoder) {
        *self.encoder.lock().unwrap_or_else(|p| p.into_inner()) = Some(encoder);
    }

    /// The reconcile horizon: one read per batch (it only moves forward,
    /// every 15 minutes or so).
    /// A batch's output, opened once the horizon is read (once per batch):
    /// the packer seeded from the first input. Without a horizon nothing
    /// can be decided, so the whole batch is retried.
    async fn open_output<'p, 'e>(
        &'p self,
        inputs: &[Input<'_>],
        now: UnixTime,
        encoder: &'e mut RecordEncoder,
        stats: &mut BatchStats,
    ) -> Result<Output<Packer<'p, 'e>>, (usize, String)> {
        let horizon = self.horizon(stats).await.map_err(|e| (0, format!("ownership store: {e}")))?;
        Ok(Output::new(Packer::new(batch_seed(inputs), &self.buffers, &self.staging, encoder), horizon, now))
    }

    async fn horizon(&self, stats: &mut BatchStats) -> Result<Option<UnixTime>, StoreError> {
        let calls_before = self.store.calls();
        let reconciled = self.store.reconciled().await;
        stats.store_calls += self.store.calls().saturating_sub(calls_before);
        Ok(horizon(&reconciled?))
    }

    /// Attributes both sides of every flow of a chunk, completes its output
    /// line, and delivers output records as they fill. Stops at the first
    /// delivery that fails for good: Lambda retries from the earliest
    /// failed input, which is no later than this flow's.
    async fn pack_and_deliver(
        &self,
        decoded: &Decoded<'_>,
        lookups: &Lookups,
        out: &mut Output<Packer<'_, '_>>,
        deferrals: &mut Deferrals,
        rejects: &mut Rejects,
        stats: &mut BatchStats,
    ) {
        let now = out.now;
        let owners = lookups.owners.all();
        let mut side_writer = SideWriter::new();
        for flow in &decoded.flows {
            let info = flow.eni.and_then(|e| lookups.enis[e as usize].as_deref());
            let mut sides = attribute(
                &FlowFacts {
                    src: flow.src,
                    dst: flow.dst,
                    start: flow.start.map(UnixTime),
                    interface_id: flow.eni.map(|e| decoded.enis.names[e as usize].as_str()),
                    direction: flow.direction,
                    logging_eni: info.map(|i| LoggingEni {
                        owner: &i.owner,
                        addresses: &i.addresses,
                        deleted_at: i.deleted_at,
                        since: i.since,
                    }),
                    src_owner: flow.src_query.and_then(|q| owners[q as usize].0),
                    dst_owner: flow.dst_query.and_then(|q| owners[q as usize].0),
                    src_known: flow.src_query.is_none_or(|q| owners[q as usize].1),
                    dst_known: flow.dst_query.is_none_or(|q| owners[q as usize].1),
                },
                self.ranges.as_deref(),
            );
            if let Some(r) = flow.retry {
                if r.src_pending {
                    sides.src = sides.src.retried();
                }
                if r.dst_pending {
                    sides.dst = sides.dst.retried();
                }
            }
            if sides.src.is_pending() || sides.dst.is_pending() {
                let pending = u64::from(sides.src.is_pending()) + u64::from(sides.dst.is_pending());
                stats.not_yet_known += pending;
                if let Some(deferred) = self.deferral(decoded, flow, &sides, now) {
                    let (first_seen, attempt) = match flow.retry {
                        Some(r) => decoded.waits[r.wait as usize],
                        None => (now, 0),
                    };
                    deferrals.push(first_seen, attempt + 1, flow.input as usize, deferred);
                    continue;
                }
                stats.settled_unattributed += pending;
                sides = Sides { src: sides.src.settled(), dst: sides.dst.settled() };
            }
            let pushed = out.packer.push_with(flow.input as usize, |line| {
                line.extend_from_slice(decoded.halves.get(flow.half));
                side_writer.write(&sides, line);
            });
            if let Err(too_long) = pushed {
                // Never sent as a record Kinesis would refuse: the input
                // it came from is kept whole instead.
                stats.oversized_lines += 1;
                let index = flow.input as usize;
                rejects.line(index, 0, "oversized_output", &too_long, b"");
                continue;
            }
            stats.count_sides(flow, &sides);
            if out.packer.ready() >= DELIVER_EVERY {
                let records = out.packer.take_ready();
                let delivery = deliver(&self.sink, records, &self.config.put_retry, &self.buffers).await;
                out.delivered(delivery, rejects);
                if out.failed.is_some() {
                    return;
                }
            }
        }
    }

    /// The flow as it waits in the retry queue, if it may wait once more:
    /// there is a queue, its wait stays within the bound, and it fits a
    /// message.
    fn deferral(&self, decoded: &Decoded<'_>, flow: &Flow, sides: &Sides<'_>, now: UnixTime) -> Option<DeferredFlow> {
        self.queue.as_ref()?;
        let first_seen = flow.retry.map_or(now, |r| decoded.waits[r.wait as usize].0);
        let half = decoded.halves.get(flow.half);
        if !self.config.second_chance.may_wait(first_seen, now) || half.len() > MAX_DEFERRED_HALF {
            return None;
        }
        Some(DeferredFlow {
            half: String::from_utf8_lossy(half).into_owned(),
            src: flow.src,
            dst: flow.dst,
            start: flow.start?,
            interface_id: flow.eni.map(|e| decoded.enis.names[e as usize].clone()),
            vpc_id: flow.vpc.map(|v| decoded.vpcs.names[v as usize].clone()),
            egress: DeferredFlow::egress_of(flow.direction),
            src_pending: sides.src.is_pending(),
            dst_pending: sides.dst.is_pending(),
        })
    }

    /// Writes the batch's rejects to the dead-letter store; on failure, the
    /// input to retry from and why.
    async fn keep_rejects(
        &self,
        rejects: &Rejects,
        inputs: &[Input<'_>],
        now: UnixTime,
        seed: &str,
        stats: &mut BatchStats,
    ) -> Option<(usize, String)> {
        let first = rejects.first_input()?;
        stats.dead_letter_lines = rejects.lines();
        stats.dead_letter_records = (rejects.inputs.len() + rejects.outputs.len()) as u64;
        let body = rejects.body(inputs);
        let key = format!("{}/{}-{}.jsonl", self.config.dead_letter_prefix.trim_end_matches('/'), now.0, seed);
        match self.dead_letter.put(&key, body).await {
            Ok(()) => None,
            Err(e) => Some((first, format!("dead-letter store: {e}"))),
        }
    }
}

/// The shard the retry queue's messages are named under as inputs (a
/// retried flow keeps the flow id it was given from its Kinesis record).
const RETRY_SHARD: &str = "retry-queue";

/// Pass 1's result.
struct Decoded<'p> {
    flows: Vec<Flow>,
    /// Each flow's first half of output.
    halves: Chunks<'p>,
    /// Logging ENI, VPC and instance ids, interned.
    enis: Interner,
    vpcs: Interner,
    instances: Interner,
    /// Per retry-queue message: when its flows were first seen, and the
    /// tries so far.
    waits: Vec<(UnixTime, u32)>,
}

impl<'p> Decoded<'p> {
    fn new(buffers: &'p BufferPool) -> Self {
        Decoded {
            flows: Vec::new(),
            halves: Chunks::new(buffers),
            enis: Interner::default(),
            vpcs: Interner::default(),
            instances: Interner::default(),
            waits: Vec::new(),
        }
    }

    /// Empties the chunk for the next, keeping its vectors' capacity.
    fn reset(&mut self) {
        self.flows.clear();
        self.halves.clear();
        for interner in [&mut self.enis, &mut self.vpcs, &mut self.instances] {
            interner.ids.clear();
            interner.names.clear();
        }
        self.waits.clear();
    }

    /// Whether the chunk should be looked up and delivered before more is
    /// decoded.
    fn is_full(&self) -> bool {
        self.flows.len() >= CHUNK_FLOWS || self.halves.len() >= CHUNK_BYTES
    }

    /// The earliest input with flows in the chunk (flows are in input order).
    fn first_input(&self) -> usize {
        self.flows.first().map_or(0, |f| f.input as usize)
    }

    /// How many inputs have flows in the chunk.
    fn inputs(&self) -> usize {
        let mut inputs: Vec<u32> = self.flows.iter().map(|f| f.input).collect();
        inputs.dedup();
        inputs.len()
    }

    /// The chunk as one chunk per input, in order.
    fn split_by_input(&self, buffers: &'p BufferPool) -> Vec<Decoded<'p>> {
        let mut parts: Vec<Decoded<'p>> = Vec::new();
        let mut current: Option<u32> = None;
        for flow in &self.flows {
            if current != Some(flow.input) {
                current = Some(flow.input);
                let mut part = Decoded::new(buffers);
                part.waits = self.waits.clone();
                parts.push(part);
            }
            let part = parts.last_mut().expect("a part per input");
            let half = part.halves.write(|out| out.extend_from_slice(self.halves.get(flow.half)));
            part.flows.push(Flow {
                eni: flow.eni.map(|e| part.enis.id(&self.enis.names[e as usize])),
                vpc: flow.vpc.map(|v| part.vpcs.id(&self.vpcs.names[v as usize])),
                seen_as: match flow.seen_as {
                    SeenAs::To(i) => SeenAs::To(part.instances.id(&self.instances.names[i as usize])),
                    other => other,
                },
                src_query: None,
                dst_query: None,
                half,
                ..*flow
            });
        }
        parts
    }
}

/// The batch's flows as evidence: each first-seen flow whose logging ENI
/// the table knows to hold one of its private addresses says the ENI held
/// it at the flow's start. One heartbeat per address, ENI and attachment: the
/// latest.
fn heartbeats(
    decoded: &Decoded<'_>,
    enis: &[Option<Arc<EniInfo>>],
    queries: &[(u32, UnixTime)],
) -> Vec<(u32, Sighting)> {
    let mut latest: FastHashMap<(u32, u32, SeenAs), i64> = FastHashMap::default();
    for flow in decoded.flows.iter().filter(|f| f.retry.is_none()) {
        let (Some(start), Some(eni)) = (flow.start, flow.eni) else { continue };
        let Some(info) = enis[eni as usize].as_deref() else { continue };
        // Only private addresses: an ENI's own side in its flow logs is its
        // private address, and a public one its record still lists may be
        // its former address, now someone else's and the flow's remote
        // side. Both sides listed: the record is stale, nothing is told.
        let holds = |a: Option<IpAddr>| a.is_some_and(|a| is_private(a) && info.addresses.contains(&a));
        let query = match (holds(flow.src), holds(flow.dst)) {
            (true, false) => flow.src_query,
            (false, true) => flow.dst_query,
            _ => None,
        };
        let Some(q) = query else { continue };
        let at = latest.entry((queries[q as usize].0, eni, flow.seen_as)).or_insert(start);
        *at = (*at).max(start);
    }
    latest
        .into_iter()
        .map(|((key, eni, seen_as), at)| {
            let attached = match seen_as {
                SeenAs::Unknown => Attached::Unknown,
                SeenAs::Nothing => Attached::Nothing,
                SeenAs::To(i) => Attached::To(decoded.instances.names[i as usize].clone()),
            };
            (key, Sighting { eni_id: decoded.enis.names[eni as usize].clone(), attached, at: UnixTime(at) })
        })
        .collect()
}

/// Pass 2's result: what the table knows of each logging ENI (by interned
/// id) and the owner of each query.
struct Lookups {
    enis: Vec<Option<Arc<EniInfo>>>,
    owners: Owners,
}

/// Rejected lines quoted per input, at most: enough to see what is wrong.
const SAMPLES_PER_INPUT: usize = 10;

/// Rejected lines quoted per batch, at most.
const SAMPLES_PER_BATCH: usize = 100;

/// How much of a rejected line is quoted.
const SAMPLE_BYTES: usize = 1024;

/// What was rejected, compactly: per affected input, counts per reason and
/// the first lines quoted; the input itself is kept by reference (its
/// index) and written whole, so memory grows with the inputs affected, never
/// with the lines rejected.
#[derive(Default)]
struct Rejects {
    inputs: Vec<Rejected>,
    samples: usize,
    /// Output records the stream refused for their content, kept whole.
    outputs: Vec<RefusedOutput>,
}

/// Output records refused for their content that a batch keeps; more than
/// that is not one bad record but something wrong, and fails the batch.
const MAX_REFUSED_OUTPUTS: usize = 4;

struct RefusedOutput {
    /// The earliest input with lines in it.
    source: usize,
    data: Vec<u8>,
    reason: String,
}

/// One input's rejects.
struct Rejected {
    index: usize,
    /// Lines rejected, by reason (a handful of kinds).
    reasons: Vec<(&'static str, u64)>,
    samples: Vec<Sample>,
    /// Why the input was refused whole (payload, budget, store), if it was.
    refused: Option<String>,
}

#[derive(Serialize)]
struct Sample {
    line: usize,
    reason: String,
    /// The line's first [`SAMPLE_BYTES`] bytes (lossy UTF-8).
    text: String,
}

impl Rejects {
    fn entry(&mut self, index: usize) -> &mut Rejected {
        // Inputs come in order: the entry is the last one, or a new one.
        match self.inputs.iter().rposition(|r| r.index == index) {
            Some(i) => &mut self.inputs[i],
            None => {
                self.inputs.push(Rejected { index, reasons: Vec::new(), samples: Vec::new(), refused: None });
                self.inputs.last_mut().expect("just pushed")
            }
        }
    }

    /// A rejected line (`line` 0: something of the input's output).
    fn line(&mut self, index: usize, line: usize, kind: &'static str, reason: &dyn std::fmt::Display, text: &[u8]) {
        let quote = self.samples < SAMPLES_PER_BATCH;
        let entry = self.entry(index);
        match entry.reasons.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => entry.reasons.push((kind, 1)),
        }
        if quote && entry.samples.len() < SAMPLES_PER_INPUT {
            let text = &text[..text.len().min(SAMPLE_BYTES)];
            entry.samples.push(Sample {
                line,
                reason: reason.to_string(),
                text: String::from_utf8_lossy(text).into_owned(),
            });
            self.samples += 1;
        }
    }

    /// An input refused whole.
    fn whole(&mut self, index: usize, kind: &'static str, reason: &dyn std::fmt::Display) {
        let entry = self.entry(index);
        entry.reasons.push((kind, 1));
        entry.refused = Some(reason.to_string());
    }

    fn first_input(&self) -> Option<usize> {
        self.inputs.iter().map(|r| r.index).chain(self.outputs.iter().map(|o| o.source)).min()
    }

    /// Lines rejected (inputs refused whole count as one).
    fn lines(&self) -> u64 {
        self.inputs.iter().flat_map(|r| &r.reasons).map(|(_, n)| n).sum()
    }

    /// Drops what inputs from `index` on were rejected for: Lambda hands
    /// them back, and the try that finishes them keeps their rejects.
    fn forget_from(&mut self, index: usize) {
        self.inputs.retain(|r| r.index < index);
        self.outputs.retain(|o| o.source < index);
    }

    /// One JSON line per affected input record: the counts by reason, the
    /// first rejected lines quoted, and the record whole (base64), so the
    /// exact bytes can be replayed.
    fn body(&self, inputs: &[Input<'_>]) -> Vec<u8> {
        #[derive(Serialize)]
        struct Entry<'a> {
            sequence_number: &'a str,
            shard: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            refused: Option<&'a str>,
            rejected_lines: u64,
            reasons: std::collections::BTreeMap<&'static str, u64>,
            samples: &'a [Sample],
            data_base64: String,
        }
        let mut body = Vec::new();
        let mut affected: Vec<&Rejected> = self.inputs.iter().collect();
        affected.sort_by_key(|r| r.index);
        for r in affected {
            let input = &inputs[r.index];
            let entry = Entry {
                sequence_number: input.sequence_number,
                shard: input.shard,
                refused: r.refused.as_deref(),
                rejected_lines: if r.refused.is_some() { 0 } else { r.reasons.iter().map(|(_, n)| n).sum() },
                reasons: r.reasons.iter().copied().collect(),
                samples: &r.samples,
                data_base64: base64::engine::general_purpose::STANDARD.encode(input.data),
            };
            serde_json::to_writer(&mut body, &entry).expect("JSON into a Vec");
            body.push(b'\n');
        }
        for o in &self.outputs {
            let entry = serde_json::json!({
                "refused_output": {
                    "first_sequence_number": inputs[o.source].sequence_number,
                    "reason": o.reason,
                    "data_base64": base64::engine::general_purpose::STANDARD.encode(&o.data),
                }
            });
            serde_json::to_writer(&mut body, &entry).expect("JSON into a Vec");
            body.push(b'\n');
        }
        body
    }
}

/// What a batch may still decode.
struct Budget {
    left: BatchBudget,
}

impl Budget {
    fn new(budget: BatchBudget) -> Self {
        Budget { left: budget }
    }

    /// Why no more input may be decoded, once the budget is spent.
    fn spent(&self) -> Option<String> {
        (self.left.text_bytes == 0 || self.left.lines == 0).then(|| "the batch's decoding budget is spent".to_owned())
    }

    /// Takes one payload's text from the budget, or says why it does not
    /// fit. Its bytes are charged either way: inflating them cost the same.
    fn spend(&mut self, text_bytes: u64, lines: u64) -> Result<(), String> {
        let fits = text_bytes <= self.left.text_bytes && lines <= self.left.lines;
        let left = self.left;
        self.left.text_bytes = left.text_bytes.saturating_sub(text_bytes);
        if !fits {
            return Err(format!(
                "over the batch's decoding budget: {text_bytes} bytes and {lines} lines, with {} bytes and {} lines left",
                left.text_bytes, left.lines
            ));
        }
        self.left.lines -= lines;
        Ok(())
    }

    /// Charges bytes inflated for a payload refused while inflating.
    fn charge(&mut self, bytes: u64) {
        self.left.text_bytes = self.left.text_bytes.saturating_sub(bytes);
    }
}

/// The batch's output as its chunks go: the packer (kept across chunks, so
/// records stay full), what was delivered, and the first failure.
struct Output<P> {
    packer: P,
    delivery: Delivery,
    horizon: Option<UnixTime>,
    now: UnixTime,
    /// The earliest input to retry from, and why.
    failed: Option<(usize, String)>,
    /// Records the stream refused for their content (`delivered` moves
    /// them out of each delivery into the rejects).
    refused_records: u64,
}

impl<P> Output<P> {
    fn new(packer: P, horizon: Option<UnixTime>, now: UnixTime) -> Self {
        Output { packer, delivery: Delivery::default(), horizon, now, failed: None, refused_records: 0 }
    }

    fn fail(&mut self, (index, error): (usize, String)) {
        if self.failed.as_ref().is_none_or(|(r, _)| index < *r) {
            self.failed = Some((index, error));
        }
    }

    /// Adds a delivery: records the stream refused for their content are
    /// kept with their inputs' rejects; entries that failed for good fail
    /// their earliest input.
    fn delivered(&mut self, mut delivery: Delivery, rejects: &mut Rejects) {
        self.refused_records += delivery.refused.len() as u64;
        for (source, data, error) in std::mem::take(&mut delivery.refused) {
            if rejects.outputs.len() < MAX_REFUSED_OUTPUTS {
                rejects.outputs.push(RefusedOutput { source, data, reason: error });
            } else {
                self.fail((
                    source,
                    format!("enriched stream refused more than {MAX_REFUSED_OUTPUTS} records: {error}"),
                ));
            }
        }
        if let Some(index) = delivery.failed_from {
            self.fail((index, "enriched stream: entries still failing after retries".into()));
        }
        self.delivery.add(delivery);
    }
}

/// What names a batch's output records and dead-letter object: its first
/// input's sequence number, the same on every retry of the batch.
fn batch_seed<'a>(inputs: &[Input<'a>]) -> &'a str {
    inputs.first().map_or("", |i| i.sequence_number)
}

impl BatchStats {
    fn count_sides(&mut self, flow: &Flow, sides: &Sides<'_>) {
        if flow.start.is_none() {
            self.no_start_time += 1;
        }
        if sides.src == SideOwner::Unattributed {
            self.src_unattributed += 1;
        }
        if sides.dst == SideOwner::Unattributed {
            self.dst_unattributed += 1;
        }
        for side in [&sides.src, &sides.dst] {
            if matches!(side, SideOwner::OwnedAfterRetry(_)) {
                self.owner_after_retry += 1;
            }
        }
        self.output_lines += 1;
    }
}

/// What deciding the retry queue's messages again did: the counters, and
/// the messages the queue must hand back again.
#[derive(Debug, Clone)]
pub struct RetryOutcome {
    pub stats: BatchStats,
    pub failed: Vec<String>,
    pub error: Option<String>,
}

impl BatchOutcome {
    /// A batch that Lambda must retry from input `index` on.
    fn retry(stats: BatchStats, inputs: &[Input<'_>], index: usize, error: String) -> BatchOutcome {
        BatchOutcome { stats, retry_from: inputs.get(index).map(|i| i.sequence_number.to_owned()), error: Some(error) }
    }
}

/// The time since `since`, in milliseconds; `since` moves to now.
fn lap(since: &mut Instant) -> f64 {
    let now = Instant::now();
    let ms = now.duration_since(*since).as_secs_f64() * 1000.0;
    *since = now;
    ms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_records_are_counted_across_deliveries_and_kept_up_to_the_cap() {
        let mut out = Output::new((), None, UnixTime(0));
        let mut rejects = Rejects::default();
        let refused = |n: usize| Delivery {
            records: 1,
            refused: (0..n).map(|i| (i, vec![b'x'], "ValidationException".to_string())).collect(),
            ..Delivery::default()
        };
        out.delivered(refused(1), &mut rejects);
        out.delivered(refused(MAX_REFUSED_OUTPUTS), &mut rejects);
        // Counted after being moved into the rejects (RefusedOutputRecords).
        assert_eq!(out.refused_records, 1 + MAX_REFUSED_OUTPUTS as u64);
        assert_eq!(rejects.outputs.len(), MAX_REFUSED_OUTPUTS, "kept whole up to the cap");
        assert!(out.failed.is_some(), "past the cap the batch fails");
        assert_eq!(out.delivery.records, 2);
    }
}
