//! The run: every input delivered to the real handlers at the simulated
//! time its delay implies, minute by minute, as Lambda's event sources
//! would (ownership events one by one, reconciles and compactions on the
//! template's schedules, flow-log records in batches to the enricher, the
//! enriched stream in batches to the writer). Then the final Parquet is
//! scored.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use dredge_core::enrich::DeferredBatch;
use dredge_core::ipranges::IpRanges;
use dredge_core::objects::LocalObjects;
use dredge_core::ownership::{AddressKey, Eni, MemoryStore, OwnershipStore, TagPolicy, Timeline, UnixTime};
use dredge_core::retry_queue::MemoryQueue;
use dredge_core::sink::{check_put_records, EntryError, OutRecord, RecordSink, SinkError};
use dredge_enricher::{BatchStats, Enricher, EnricherConfig, KinesisBatch, RangesSource};
use dredge_lambda::sqs::SqsBatch;
use dredge_lambda::Vars;
use dredge_ownership::{DescribeError, Ec2Describer, Handler, Snapshot, TakenSnapshot};
use dredge_writer::lambda::Writer;
use dredge_writer::{Outcome, WriterConfig, WriterEvent};
use serde_json::json;

use crate::delays::Profile;
use crate::rng::Rng;
use crate::score::{self, Knowledge};
use crate::summary::{Pipeline, Setup, Summary};
use crate::traffic::{self, Flow};
use crate::wire;
use crate::world::{self, Time, World, ACCOUNTS, REGIONS};

/// 2026-11-30T06:00:00Z: the simulated clock's start.
pub const START: Time = 1_796_018_400;
/// The template's schedules: reconcile every 15 minutes, compaction every 20.
pub const RECONCILE_EVERY: Time = 900;
pub const COMPACT_EVERY: Time = 1200;
/// Event sources deliver at most this often (the enricher's and writer's
/// batching windows).
pub const STEP: Time = 60;
const SHARD: &str = "shardId-000000000000";
/// The bucket the writer writes to, under `<out>/s3/`.
pub const DATA_BUCKET: &str = "dredge-data";
const MAX_EVENT_RECORDS: usize = 500;

#[derive(Debug, Clone)]
pub struct Options {
    pub seed: u64,
    pub flows: u64,
    pub churn: f64,
    pub hours: u32,
    pub delays: &'static Profile,
    pub out: PathBuf,
}

/// How far the run is, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub flows_done: u64,
    pub flows: u64,
    pub now: Time,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{what}: {detail}")]
    Pipeline { what: &'static str, detail: String },
    #[error("reading the final Parquet: {0}")]
    Score(String),
}

fn failed(what: &'static str, detail: impl std::fmt::Display) -> DemoError {
    DemoError::Pipeline { what, detail: detail.to_string() }
}

/// The enriched stream, in memory: what the enricher puts, until the
/// writer's event source takes it. Refuses what Kinesis refuses.
#[derive(Debug, Default)]
pub struct MemoryStream {
    records: Mutex<Vec<OutRecord>>,
}

impl MemoryStream {
    pub fn take(&self) -> Vec<OutRecord> {
        std::mem::take(&mut *self.records.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl RecordSink for MemoryStream {
    async fn put_records(&self, records: &[OutRecord]) -> Result<Vec<Result<(), EntryError>>, SinkError> {
        check_put_records(records)?;
        self.records.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(records);
        Ok(vec![Ok(()); records.len()])
    }
}

/// EC2 as the simulated world answers it at the run's current time, for
/// the account and region being reconciled.
pub struct SimulatedEc2 {
    world: Arc<World>,
    now: AtomicI64,
    scope: AtomicUsize,
}

impl SimulatedEc2 {
    fn at(&self, t: Time) {
        self.now.store(t, Ordering::Relaxed);
    }

    fn snapshot_of(&self, account: usize, region: usize) -> Result<Snapshot, DescribeError> {
        let docs = wire::describe(&self.world, self.now.load(Ordering::Relaxed), account, region);
        Snapshot::from_documents(docs.iter().map(|d| d.to_string()))
            .map_err(|e| DescribeError::Permanent(format!("simulated snapshot: {e}")))
    }
}

impl Ec2Describer for SimulatedEc2 {
    fn describe_instance(&self, instance_id: &str) -> impl Future<Output = Result<Vec<Eni>, DescribeError>> + Send {
        let result = (|| {
            let Some(instance) = self.world.instances.iter().find(|i| i.id == instance_id) else {
                return Ok(Vec::new());
            };
            let vpc = &self.world.vpcs[self.world.subnets[instance.subnet].vpc];
            let mut snapshot = self.snapshot_of(vpc.account, vpc.region)?;
            snapshot.merge_instance_tags();
            Ok(snapshot.enis.into_iter().filter(|e| e.instance_id.as_deref() == Some(instance_id)).collect())
        })();
        std::future::ready(result)
    }

    fn reads_at(&self) -> Option<UnixTime> {
        Some(UnixTime(self.now.load(Ordering::Relaxed)))
    }

    fn snapshot(&self) -> impl Future<Output = Result<TakenSnapshot, DescribeError>> + Send {
        let scope = self.scope.load(Ordering::Relaxed);
        let result = self
            .snapshot_of(scope / REGIONS.len(), scope % REGIONS.len())
            .map(|snapshot| TakenSnapshot { snapshot, taken_at: Some(UnixTime(self.now.load(Ordering::Relaxed))) });
        std::future::ready(result)
    }
}

/// One Kinesis record of flow logs: the lines of one interface's window.
struct FlowRecord {
    delivered: Time,
    eni: usize,
    flows: Vec<usize>,
}

/// Where each flow went: its record's sequence number and line.
pub struct Delivered {
    pub flow_ids: Vec<String>,
    /// When the enricher processed each flow.
    pub processed_at: Vec<Option<Time>>,
}

pub async fn run(options: &Options, progress: &mut dyn FnMut(Progress)) -> Result<Summary, DemoError> {
    let started = Instant::now();
    let mut rng = Rng::new(options.seed);
    let end = START + Time::from(options.hours) * 3600;
    let world = Arc::new(World::build(&world::Options { seed: options.seed, churn: options.churn, start: START, end }));
    let flows = traffic::generate(&world, options.flows, &mut rng.fork(3));
    let mut delay_rng = rng.fork(4);

    // What reaches the ownership function, when.
    let mut deliveries: Vec<(Time, usize)> = Vec::new();
    let mut first_delivery = vec![None; world.events.len()];
    for (i, e) in world.events.iter().enumerate() {
        for t in options.delays.deliveries(e.at, e.spec.is_state_change(), &mut delay_rng) {
            deliveries.push((t, i));
            first_delivery[i] = Some(first_delivery[i].map_or(t, |f: Time| f.min(t)));
        }
    }
    deliveries.sort();
    let lost = first_delivery.iter().filter(|d| d.is_none()).count() as u64;

    // What reaches the flow-log stream, when: one record per interface
    // and window.
    let mut records = group_records(&flows, options.delays, &mut delay_rng);
    records.sort_by_key(|r| (r.delivered, r.eni, flows[r.flows[0]].start));
    let mut flow_ids = vec![String::new(); flows.len()];
    let sequences: Vec<String> = (0..records.len()).map(|k| format!("4960{k:052}")).collect();
    for (k, r) in records.iter().enumerate() {
        for (line, &f) in r.flows.iter().enumerate() {
            flow_ids[f] = format!("{SHARD}:{}:{}", sequences[k], line + 1);
        }
    }
    let last_delivery = records.iter().map(|r| r.delivered).max().unwrap_or(end);

    clear_output(&options.out)?;
    // Saved under `<out>/ownership/` at the end, for `dredge ownership
    // --state <out>/ownership lookup|dump`.
    let store = MemoryStore::open(&options.out.join("ownership"))?;
    let ec2 = SimulatedEc2 { world: world.clone(), now: AtomicI64::new(START), scope: AtomicUsize::new(0) };
    let ownership = Handler::new(&store, ec2, TagPolicy::default());
    let ranges = IpRanges::from_json(wire::ip_ranges_json().as_bytes()).map_err(|e| failed("ip ranges", e))?;
    let config = EnricherConfig { ranges: RangesSource::None, ..EnricherConfig::default() };
    // The second chance's queue, on the simulated clock.
    let enricher = Enricher::new(
        &store,
        MemoryStream::default(),
        LocalObjects::new(options.out.join("dead-letter")),
        config,
        TagPolicy::default(),
        Some(Arc::new(ranges)),
    )
    .with_queue(Some(MemoryQueue::new()));
    let flow_index: HashMap<&str, usize> = flow_ids.iter().enumerate().map(|(f, id)| (id.as_str(), f)).collect();
    let mut first_processed: Vec<Option<Time>> = vec![None; flows.len()];
    let mut pipeline = Pipeline::default();
    let (writer, final_prefix) = writer(&options.out)?;

    let mut processed_at = vec![None; flows.len()];
    let mut reconciles = Vec::new();
    let mut compactions = 0u64;
    let mut enriched_sequence = 0u64;
    let (mut next_event, mut next_record) = (0, 0);
    let mut flows_done = 0u64;
    let mut t = START;
    // Deployed into a running fleet: the first reconcile seeds the table.
    reconcile(&ownership, t, &mut reconciles).await?;
    while t <= last_delivery + 2 * STEP || !enricher.queue().is_none_or(MemoryQueue::is_empty) {
        t += STEP;
        enricher.queue().expect("the demo's enricher has a queue").set_now(UnixTime(t));
        while next_event < deliveries.len() && deliveries[next_event].0 <= t {
            let (at, i) = deliveries[next_event];
            ownership.describer().at(at);
            let event = wire::event(&world, &world.events[i]);
            // A failed invocation would be retried by EventBridge; the
            // memory store does not fail, so none is expected.
            Box::pin(ownership.handle(event)).await.map_err(|e| failed("ownership", e))?;
            next_event += 1;
        }
        if (t - START) % RECONCILE_EVERY == 0 {
            reconcile(&ownership, t, &mut reconciles).await?;
        }
        let first = next_record;
        while next_record < records.len() && records[next_record].delivered <= t {
            next_record += 1;
        }
        for chunk in (first..next_record).collect::<Vec<_>>().chunks(MAX_EVENT_RECORDS) {
            let data: Vec<(String, Vec<u8>, Time)> = chunk
                .iter()
                .map(|&k| {
                    let r = &records[k];
                    let lines: Vec<(Time, String)> =
                        r.flows.iter().map(|&f| (flows[f].end, flows[f].line(&world))).collect();
                    let account = ACCOUNTS[world.vpcs[world.vpc_of_eni(r.eni)].account];
                    (
                        sequences[k].clone(),
                        wire::flow_log_record(account, &world.enis[r.eni].id, &lines, k as u64 * 1000),
                        r.delivered,
                    )
                })
                .collect();
            let refs: Vec<(String, &[u8], Time)> = data.iter().map(|(s, d, a)| (s.clone(), &d[..], *a)).collect();
            let batch: KinesisBatch =
                serde_json::from_value(wire::kinesis_event("dredge-enricher", "dredge-flow-logs", SHARD, &refs))
                    .map_err(|e| failed("flow-log event", e))?;
            let (response, outcome) = Box::pin(dredge_enricher::lambda::handle(&enricher, &batch, UnixTime(t))).await;
            if !response.batch_item_failures.is_empty() {
                return Err(failed("enricher", outcome.error.unwrap_or_else(|| "a record failed".into())));
            }
            pipeline.add(&outcome.stats, false);
            for &k in chunk {
                for &f in &records[k].flows {
                    processed_at[f] = Some(t);
                    first_processed[f] = Some(t);
                }
                flows_done += records[k].flows.len() as u64;
            }
        }
        // The retry queue's event source: what is due now, ten messages
        // per invocation as Lambda's SQS batch size.
        let due = enricher.queue().expect("the demo's enricher has a queue").due();
        for chunk in due.chunks(10) {
            let pairs: Vec<(&str, &str)> = chunk.iter().map(|m| (m.message_id.as_str(), m.body.as_str())).collect();
            let batch: SqsBatch = serde_json::from_value(dredge_lambda::sqs::event_json("dredge-retry", &pairs))
                .map_err(|e| failed("retry event", e))?;
            let outcome = Box::pin(dredge_enricher::lambda::handle_retries(&enricher, &batch, UnixTime(t))).await;
            if !outcome.failed.is_empty() {
                return Err(failed("enricher retries", outcome.error.unwrap_or_else(|| "a message failed".into())));
            }
            pipeline.add(&outcome.stats, true);
            // Each flow is decided when it is last handed back.
            for m in chunk {
                let batch = DeferredBatch::parse(&m.body).map_err(|e| failed("retry message", e))?;
                for flow in &batch.flows {
                    let id = flow_id_of(&flow.half).ok_or_else(|| failed("retry message", "a flow without flow_id"))?;
                    let f = *flow_index.get(id.as_str()).ok_or_else(|| failed("retry message", id.clone()))?;
                    processed_at[f] = Some(t);
                }
            }
        }
        let enriched = enricher.sink().take();
        if !enriched.is_empty() {
            let data: Vec<(String, &[u8], Time)> = enriched
                .iter()
                .map(|r| {
                    enriched_sequence += 1;
                    (format!("4970{enriched_sequence:052}"), &r.data[..], t)
                })
                .collect();
            let batch: KinesisBatch =
                serde_json::from_value(wire::kinesis_event("dredge-writer", "dredge-enriched", SHARD, &data))
                    .map_err(|e| failed("enriched event", e))?;
            match Box::pin(writer.handle(&WriterEvent::Kinesis(batch), t)).await {
                Outcome::Staged { error: None, .. } => {}
                Outcome::Staged { error: Some(e), .. } | Outcome::Compacted { error: Some(e), .. } => {
                    return Err(failed("writer", e))
                }
                _ => {}
            }
        }
        if (t - START) % COMPACT_EVERY == 0 {
            compact(&writer, t).await?;
            compactions += 1;
        }
        progress(Progress { flows_done, flows: flows.len() as u64, now: t });
    }
    // Every hour closed and past its lateness: the last compaction.
    compact(&writer, t + 2 * 3600).await?;
    compactions += 1;

    store.save()?;
    let table: HashMap<AddressKey, Timeline> =
        store.timelines().await.map_err(|e| failed("ownership", e))?.into_iter().collect();
    let knowledge =
        Knowledge { world: &world, first_delivery: &first_delivery, reconciles: &reconciles, table: &table };
    pipeline.latency(&first_processed, &processed_at);
    drop(flow_index);
    let delivered = Delivered { flow_ids, processed_at };
    let mut summary = score::score(&world, &flows, &delivered, &knowledge, &final_prefix)?;
    let elapsed = started.elapsed().as_secs_f64();
    summary.rate.elapsed_seconds = (elapsed * 1000.0).round() / 1000.0;
    summary.rate.flows_per_second = (flows.len() as f64 / elapsed).round();
    summary.pipeline = pipeline;
    summary.setup = Setup {
        seed: options.seed,
        flows: flows.len() as u64,
        churn: options.churn,
        delays: options.delays.name.to_owned(),
        start: START,
        end,
        accounts: ACCOUNTS.len() as u32,
        regions: REGIONS.len() as u32,
        vpcs: world.vpcs.len() as u32,
        apps: world.apps.len() as u32,
        instances: world.instances.len() as u32,
        standalone_enis: world.enis.iter().filter(|e| matches!(e.role, world::Role::Service { .. })).count() as u32,
        events_generated: world.events.len() as u64,
        events_delivered: deliveries.len() as u64,
        events_lost: lost,
        reconciles: reconciles.len() as u64,
        compactions,
    };
    Ok(summary)
}

/// The `flow_id` in a deferred flow's output half.
fn flow_id_of(half: &str) -> Option<String> {
    let line: serde_json::Value = serde_json::from_str(&format!("{half}}}")).ok()?;
    Some(line.get("flow_id")?.as_str()?.to_owned())
}

impl Pipeline {
    fn add(&mut self, stats: &BatchStats, retry: bool) {
        if retry {
            self.retry_invocations += 1;
        } else {
            self.stream_invocations += 1;
        }
        self.store_calls += stats.store_calls;
        self.heartbeats_written += stats.heartbeats_written;
        self.rereads += stats.rereads;
        self.not_yet_known += stats.not_yet_known;
        self.deferred_flows += stats.deferred_flows;
        self.deferred_messages += stats.deferred_messages;
        self.owner_after_retry += stats.owner_after_retry;
        self.settled_unattributed += stats.settled_unattributed;
    }

    /// How much later than first processed the deferred flows were decided.
    fn latency(&mut self, first: &[Option<Time>], last: &[Option<Time>]) {
        let waits: Vec<i64> =
            first.iter().zip(last).filter_map(|(f, l)| Some(l.as_ref()? - f.as_ref()?)).filter(|w| *w > 0).collect();
        self.waited_flows = waits.len() as u64;
        self.wait_mean_seconds =
            if waits.is_empty() { 0.0 } else { waits.iter().sum::<i64>() as f64 / waits.len() as f64 };
        self.wait_max_seconds = waits.iter().copied().max().unwrap_or(0);
    }
}

/// What a demo run leaves in its output folder: only a folder holding
/// nothing else is replaced, so a mistyped `--out` never deletes a project.
const OUTPUTS: [&str; 5] = ["report.html", "score.json", "s3", "ownership", "dead-letter"];

fn clear_output(out: &Path) -> Result<(), DemoError> {
    if out.exists() {
        for entry in std::fs::read_dir(out)? {
            let name = entry?.file_name();
            if !OUTPUTS.iter().any(|o| name == *o) {
                return Err(failed(
                    "--out",
                    format!(
                        "{} holds {} (not a demo's output): refusing to replace it",
                        out.display(),
                        name.to_string_lossy()
                    ),
                ));
            }
        }
        std::fs::remove_dir_all(out)?;
    }
    std::fs::create_dir_all(out)?;
    Ok(())
}

fn group_records(flows: &[Flow], delays: &Profile, rng: &mut Rng) -> Vec<FlowRecord> {
    let mut groups: std::collections::BTreeMap<(usize, Time), Vec<usize>> = std::collections::BTreeMap::new();
    for (i, f) in flows.iter().enumerate() {
        groups.entry((f.eni, f.start)).or_default().push(i);
    }
    groups
        .into_iter()
        .map(|((eni, _), list)| FlowRecord { delivered: delays.flow_log(flows[list[0]].end, rng), eni, flows: list })
        .collect()
}

async fn reconcile(
    ownership: &Handler<&MemoryStore, SimulatedEc2>,
    t: Time,
    reconciles: &mut Vec<Time>,
) -> Result<(), DemoError> {
    ownership.describer().at(t);
    for (a, account) in ACCOUNTS.iter().enumerate() {
        for (r, region) in REGIONS.iter().enumerate() {
            ownership.describer().scope.store(a * REGIONS.len() + r, Ordering::Relaxed);
            let event =
                json!({"reconcile": true, "at": UnixTime(t).to_string(), "account": account, "region": region.name});
            Box::pin(ownership.handle(event)).await.map_err(|e| failed("reconcile", e))?;
        }
    }
    reconciles.push(t);
    Ok(())
}

type DemoWriter = Writer<LocalObjects, LocalObjects>;

/// The writer, and the folder its final objects go to.
fn writer(out: &Path) -> Result<(DemoWriter, PathBuf), DemoError> {
    let vars = Vars::new(|name: &str| match name {
        "DEAD_LETTER_BUCKET" => Some("dredge-dead-letter".to_owned()),
        _ => None,
    });
    let config = WriterConfig::from_vars(&vars, Some(DATA_BUCKET)).map_err(|e| failed("writer config", e))?;
    let data = LocalObjects::new(out.join("s3").join(&config.data_bucket));
    let dead = LocalObjects::new(out.join("s3").join(&config.dead_letter_bucket));
    let final_prefix = out.join("s3").join(&config.data_bucket).join(config.layout.prefix());
    Ok((Writer::new(data, dead, config), final_prefix))
}

async fn compact(writer: &DemoWriter, t: Time) -> Result<(), DemoError> {
    match Box::pin(writer.handle(&WriterEvent::Compact { compact: true }, t)).await {
        Outcome::Compacted { error: Some(e), .. } => Err(failed("compaction", e)),
        _ => Ok(()),
    }
}
