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
use dredge_core::flowlog::{DecodeOptions, Decoder, Field, FlowDirection, Inflater, Item, Record};
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
use crate::config::EnricherConfig;
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
    pub dead_letter_lines: u64,
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

/// 1 MiB buffers kept between batches: enough for the flow halves of a
/// batch of a full 6 MB event and the output records in flight.
const KEEP_BUFFERS: usize = 64;

/// What the table knows of one logging ENI.
#[derive(Debug)]
struct EniInfo {
    owner: Owner,
    addresses: Vec<IpAddr>,
    deleted_at: Option<UnixTime>,
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
                    })
                });
                enis.insert(name, (info.clone(), now));
                *slot = Some(info);
            }
        }
        Ok(out.into_iter().map(Option::flatten).collect())
    }

    /// Processes one batch: decode → look up → attribute, encode and
    /// deliver → keep what was rejected. `now` is the wall clock (a
    /// parameter so tests control cache ages).
    pub async fn process(&self, inputs: &[Input<'_>], now: UnixTime) -> BatchOutcome {
        let mut stats = BatchStats { records_in: inputs.len() as u64, ..BatchStats::default() };
        let mut pass = Instant::now();
        let decoded = self.decode(inputs, &mut stats);
        stats.decode_ms = lap(&mut pass);
        match self.finish(decoded, inputs, now, pass, &mut stats).await {
            Some((index, error)) => BatchOutcome::retry(stats, inputs, index, error),
            None => BatchOutcome { stats, retry_from: None, error: None },
        }
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
        let mut pass = Instant::now();
        let decoded = self.decode_deferred(&inputs, &mut stats);
        stats.decode_ms = lap(&mut pass);
        match self.finish(decoded, &inputs, now, pass, &mut stats).await {
            Some((index, error)) => RetryOutcome {
                stats,
                failed: messages[index..].iter().map(|m| m.message_id.clone()).collect(),
                error: Some(error),
            },
            None => RetryOutcome { stats, failed: Vec::new(), error: None },
        }
    }

    /// Passes 2 and 3 and what follows: look up, decide, deliver, defer,
    /// keep rejects. The earliest input to retry from, and why.
    async fn finish(
        &self,
        mut decoded: Decoded<'_>,
        inputs: &[Input<'_>],
        now: UnixTime,
        mut pass: Instant,
        stats: &mut BatchStats,
    ) -> Option<(usize, String)> {
        let lookups = match self.look_up(&mut decoded, now, stats).await {
            Ok(l) => l,
            Err(e) => return Some((0, format!("ownership store: {e}"))),
        };
        stats.lookup_ms = lap(&mut pass);

        let seed = inputs.first().map_or("", |i| i.sequence_number);
        let mut deferrals = Deferrals::default();
        let delivery = self.attribute_and_deliver(&decoded, &lookups, seed, now, &mut deferrals, stats).await;
        let mut retry: Option<(usize, String)> = None;
        let mut fail = |index: usize, error: String| {
            if retry.as_ref().is_none_or(|(r, _)| index < *r) {
                retry = Some((index, error));
            }
        };
        if let (Some(queue), false) = (&self.queue, deferrals.is_empty()) {
            let sent = deferrals.send(queue, &self.config.second_chance).await;
            stats.deferred_flows = sent.flows;
            stats.deferred_messages = sent.messages;
            if let Some((index, error)) = sent.failed_from {
                fail(index, error);
            }
        }
        stats.write_ms = lap(&mut pass);

        // Rejected input goes to the dead-letter store before anything is
        // reported done: it is never dropped.
        if let Some((index, error)) = self.keep_rejects(&decoded.rejects, inputs, now, seed, stats).await {
            fail(index, error);
        }
        stats.output_records = delivery.records;
        stats.output_bytes = delivery.bytes;
        stats.put_calls = delivery.calls;
        stats.put_retried = delivery.retried;
        if let Some(index) = delivery.failed_from {
            fail(index, "enriched stream: entries still failing after retries".into());
        }
        retry
    }

    /// Pass 1: decodes every payload, writes each kept flow's first half of
    /// output, and collects what to look up and what was rejected.
    fn decode(&self, inputs: &[Input<'_>], stats: &mut BatchStats) -> Decoded<'_> {
        let mut d = Decoded::new(&self.buffers);
        let mut flow_writer = FlowWriter::new();
        let mut inflater = Inflater::new();
        for (index, input) in inputs.iter().enumerate() {
            let mut rejected_here = false;
            let outcome = self.decoder.decode_with(input.data, &mut inflater, &mut |item| match item {
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
                            Some(_) => record
                                .text(Field::InstanceId)
                                .map_or(SeenAs::Nothing, |i| SeenAs::To(d.instances.id(i))),
                        },
                        retry: None,
                        src_query: None,
                        dst_query: None,
                        input: index as u32,
                        half,
                    });
                }
                Item::Rejected { line, error } => {
                    rejected_here = true;
                    d.rejects.line(input, line, &error);
                }
            });
            match outcome {
                Ok((_, s)) => {
                    stats.control_messages += s.control_messages;
                    stats.rejected_lines += s.rejected;
                    stats.flow_log_bytes += s.text_bytes;
                }
                Err(e) => {
                    stats.payload_errors += 1;
                    rejected_here = true;
                    d.rejects.line(input, 0, &e);
                }
            }
            if rejected_here {
                d.rejects.inputs.push(index);
            }
        }
        d
    }

    /// Pass 1 for the retry queue: each message is a deferred batch; one
    /// that is not is rejected whole.
    fn decode_deferred(&self, inputs: &[Input<'_>], stats: &mut BatchStats) -> Decoded<'_> {
        let mut d = Decoded::new(&self.buffers);
        for (index, input) in inputs.iter().enumerate() {
            let batch = match std::str::from_utf8(input.data)
                .map_err(|e| e.to_string())
                .and_then(|body| DeferredBatch::parse(body).map_err(|e| e.to_string()))
            {
                Ok(batch) => batch,
                Err(e) => {
                    stats.bad_messages += 1;
                    d.rejects.line(input, 0, &e);
                    d.rejects.inputs.push(index);
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
        // The reconcile horizon: one read per batch (it only moves forward,
        // every 15 minutes or so).
        let calls_before = self.store.calls();
        let horizon = horizon(&self.store.reconciled().await?);
        stats.store_calls += self.store.calls().saturating_sub(calls_before);
        let before = self.cache.stats();
        let owners = self.cache.lookup(&self.store, &keys, &queries, &heartbeats, horizon, now).await?;
        let after = self.cache.stats();
        stats.cache_hits = after.hits - before.hits;
        stats.cache_misses = after.misses - before.misses;
        stats.store_calls += after.store_calls - before.store_calls;
        stats.rereads = after.rereads - before.rereads;
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

    /// Pass 3: attributes both sides of every flow, completes its output
    /// line, and delivers output records as they fill. Stops at the first
    /// delivery that fails for good: Lambda retries from the earliest
    /// failed input, which is no later than this flow's.
    async fn attribute_and_deliver(
        &self,
        decoded: &Decoded<'_>,
        lookups: &Lookups,
        seed: &str,
        now: UnixTime,
        deferrals: &mut Deferrals,
        stats: &mut BatchStats,
    ) -> Delivery {
        let mut encoder = self.take_encoder();
        let delivery = self.pack_and_deliver(decoded, lookups, seed, now, deferrals, &mut encoder, stats).await;
        *self.encoder.lock().unwrap_or_else(|p| p.into_inner()) = Some(encoder);
        delivery
    }

    /// The kept encoder, or a new one (first batch, or one in flight on
    /// another task).
    fn take_encoder(&self) -> RecordEncoder {
        let kept = self.encoder.lock().unwrap_or_else(|p| p.into_inner()).take();
        kept.unwrap_or_else(|| RecordEncoder::new(self.config.compression))
    }

    #[allow(clippy::too_many_arguments)]
    async fn pack_and_deliver(
        &self,
        decoded: &Decoded<'_>,
        lookups: &Lookups,
        seed: &str,
        now: UnixTime,
        deferrals: &mut Deferrals,
        encoder: &mut RecordEncoder,
        stats: &mut BatchStats,
    ) -> Delivery {
        let owners = lookups.owners.all();
        let mut packer = Packer::new(seed, &self.buffers, &self.staging, encoder);
        let mut side_writer = SideWriter::new();
        let mut delivery = Delivery::default();
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
            stats.count_sides(flow, &sides);
            packer.push_with(flow.input as usize, |out| {
                out.extend_from_slice(decoded.halves.get(flow.half));
                side_writer.write(&sides, out);
            });
            if packer.ready() >= DELIVER_EVERY {
                delivery.add(deliver(&self.sink, packer.take_ready(), &self.config.put_retry, &self.buffers).await);
                if delivery.failed_from.is_some() {
                    return delivery;
                }
            }
        }
        delivery.add(deliver(&self.sink, packer.finish(), &self.config.put_retry, &self.buffers).await);
        delivery
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

    /// Writes the batch's rejected lines and records to the dead-letter
    /// store; on failure, the input to retry from and why.
    async fn keep_rejects(
        &self,
        rejects: &Rejects,
        inputs: &[Input<'_>],
        now: UnixTime,
        seed: &str,
        stats: &mut BatchStats,
    ) -> Option<(usize, String)> {
        if rejects.lines.is_empty() {
            return None;
        }
        stats.dead_letter_lines = rejects.lines.len() as u64;
        let body = rejects.body(inputs);
        let key = format!("{}/{}-{}.jsonl", self.config.dead_letter_prefix.trim_end_matches('/'), now.0, seed);
        match self.dead_letter.put(&key, body).await {
            Ok(()) => None,
            Err(e) => Some((rejects.inputs.first().copied().unwrap_or(0), format!("dead-letter store: {e}"))),
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
    rejects: Rejects,
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
            rejects: Rejects::default(),
        }
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

/// What was rejected: one JSON line per rejected line, and the input
/// records they came from.
#[derive(Default)]
struct Rejects {
    lines: Vec<serde_json::Value>,
    /// Indexes of affected inputs, in order.
    inputs: Vec<usize>,
}

impl Rejects {
    fn line(&mut self, input: &Input<'_>, line: usize, reason: &dyn std::fmt::Display) {
        self.lines.push(serde_json::json!({
            "sequence_number": input.sequence_number, "line": line, "reason": reason.to_string(),
        }));
    }

    /// One JSON line per rejected line, then each affected input record
    /// whole (base64), so the exact bytes can be replayed.
    fn body(&self, inputs: &[Input<'_>]) -> Vec<u8> {
        let mut body = Vec::new();
        for r in &self.lines {
            serde_json::to_writer(&mut body, r).expect("JSON into a Vec");
            body.push(b'\n');
        }
        for &i in &self.inputs {
            let record = serde_json::json!({
                "sequence_number": inputs[i].sequence_number,
                "data_base64": base64::engine::general_purpose::STANDARD.encode(inputs[i].data),
            });
            serde_json::to_writer(&mut body, &record).expect("JSON into a Vec");
            body.push(b'\n');
        }
        body
    }
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
