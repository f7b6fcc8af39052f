//! Faults (issue 13): the backends fail on command (`dredge_core::faults`)
//! while the real handlers run, and what must hold still holds:
//!
//! - the enricher's retry point (`batchItemFailures`) is always the lowest
//!   unfinished input record, whatever fails: the ownership store, the
//!   enriched stream (whole calls or some entries), the dead-letter store,
//!   or the process itself between two writes;
//! - replaying from there, as Lambda does, puts every flow on the enriched
//!   stream; the only repeats are those at-least-once delivery implies, and
//!   a repeat carries its flow's `flow_id`;
//! - through the writer too (staging and compaction failing, crashing
//!   between writes), the final Parquet holds every flow exactly once;
//! - ownership events delivered twice, out of order and failing part way
//!   give the table a clean in-order delivery gives;
//! - the same against the moto server, whose real DynamoDB, Kinesis and S3
//!   sit behind the fault wrappers (skipped without `AWS_ENDPOINT_URL`
//!   unless `CI=true`).
//!
//! Every property runs over many seeds (a small seeded generator); a
//! failure names its seed, and `FAULT_SEED=<n>` runs that seed alone.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::time::Duration;

use dredge_aws::{create_table, s3_client, DynamoOwnershipStore, KinesisSink, S3Objects};
use dredge_core::enrich::DeferredBatch;
use dredge_core::faults::{EntryFault, Fault, FaultPlan, Faulty, Rng, When};
use dredge_core::objects::{LocalObjects, ObjectListing, ObjectStore};
use dredge_core::ownership::{Applier, Change, EniRef, Interval, MemoryStore, OwnershipStore, TagPolicy, UnixTime};
use dredge_core::retry_queue::MemoryQueue;
use dredge_core::sink::{read_stream, FileStream, OutRecord};
use dredge_core::stream_data::{read_lines, Compression, DEFAULT_MAX_LINES_BYTES};
use dredge_enricher::{Enricher, EnricherConfig, Input};
use dredge_lambda::kinesis::{BatchRecord, KinesisBatch, KinesisData};
use dredge_lambda::{RetryPolicy, Vars};
use dredge_ownership::{FileDescriber, Handler};
use dredge_tests::{eni, envelope};
use dredge_writer::lambda::Writer;
use dredge_writer::{Outcome, WriterConfig, WriterEvent};

const SHARD: &str = "shardId-000000000000";
/// 2026-12-01T06:00:00Z: flows start in this hour and the next.
const HOUR: i64 = 1_796_104_800;

// ---------------------------------------------------------------- helpers

/// The fault tests' generator, each seed spread over the state space
/// first (nearby seeds, far apart streams).
fn seeded(seed: u64) -> Rng {
    Rng::new(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x5851_f42d_4c95_7f2d)
}

/// The seeds a property runs: `0..n`, or `FAULT_SEED` alone.
fn seeds(n: u64) -> Vec<u64> {
    match std::env::var("FAULT_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => vec![seed],
        None => (0..n).collect(),
    }
}

/// Runs a test body on a thread with a 64 MiB stack and its own runtime:
/// the handlers' futures are large in debug builds.
fn on_big_stack<F, Fut>(body: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let thread = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(body());
        })
        .expect("spawn");
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

/// The table the flows are attributed against: the logging ENI (api) and
/// five peers, known from well before the flows.
async fn fill_table<S: OwnershipStore>(store: &S) {
    let applier = Applier::new(store, TagPolicy::default());
    let mut changes = vec![Change::EniUp {
        at: UnixTime(HOUR - 3600),
        eni: Box::new(eni("eni-log", "i-api", "api-prod-v042", "10.0.0.1")),
    }];
    for n in 0..5 {
        let e = eni(
            &format!("eni-peer{n}"),
            &format!("i-peer{n}"),
            &format!("peer{n}-prod-v001"),
            &format!("10.0.0.{}", 5 + n),
        );
        changes.push(Change::EniUp { at: UnixTime(HOUR - 3600), eni: Box::new(e) });
    }
    for change in &changes {
        applier.apply(change).await.expect("apply");
    }
}

/// One input record of the flow-log stream and what it must become.
#[derive(Debug, Clone)]
struct Source {
    seq: String,
    data: Vec<u8>,
    /// The `flow_id` of each of its flows, by the flow's unique byte count.
    flows: BTreeMap<u64, String>,
    /// The lines that must be dead-lettered (1-based).
    rejected: Vec<usize>,
}

/// `records` input records of up to `max_lines` log events, some of them
/// lines no decoder takes; every flow has a byte count no other has.
fn sources(rng: &mut Rng, records: u64, max_lines: u64, first_seq: u64) -> Vec<Source> {
    let mut out = Vec::new();
    for r in 0..records {
        let seq = format!("4959{:036}", first_seq + r * 7);
        let n = rng.range(1, max_lines) as usize;
        let mut lines = Vec::with_capacity(n);
        let mut flows = BTreeMap::new();
        let mut rejected = Vec::new();
        for line in 1..=n {
            if rng.chance(0.02) {
                lines.push(format!("2 123456789012 eni-log not a flow at all {line}"));
                rejected.push(line);
                continue;
            }
            let bytes = 1_000_000 + (first_seq + r) * 100_000 + line as u64;
            let start = HOUR + rng.range(0, 7000) as i64;
            let (src, dst) = match rng.range(0, 3) {
                0 => ("10.0.0.1".to_owned(), format!("10.0.0.{}", rng.range(5, 9))),
                1 => (format!("10.0.0.{}", rng.range(5, 9)), "10.0.0.1".to_owned()),
                2 => ("10.0.0.1".to_owned(), "198.51.100.7".to_owned()),
                _ => ("10.0.0.1".to_owned(), format!("10.0.9.{}", rng.range(1, 200))),
            };
            lines.push(format!(
                "2 123456789012 eni-log {src} {dst} {} 443 6 10 {bytes} {start} {} ACCEPT OK",
                rng.range(1024, 65535),
                start + 60
            ));
            flows.insert(bytes, format!("{SHARD}:{seq}:{line}"));
        }
        out.push(Source { data: envelope(&lines), seq, flows, rejected });
    }
    out
}

fn record_flows(data: &[u8]) -> Vec<(String, u64)> {
    let lines = read_lines(data, DEFAULT_MAX_LINES_BYTES).expect("stream data");
    lines
        .iter()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_slice(line).expect("enriched JSON");
            (v["flow_id"].as_str().expect("flow_id").to_owned(), v["bytes"].as_u64().expect("bytes"))
        })
        .collect()
}

/// The line number that stands for "the input is kept whole, its rejected
/// lines counted" (lines are numbered from 1).
const WHOLE: usize = 0;

/// The (sequence number, line) of every dead-lettered line in objects
/// whose key starts with `prefix`: the lines each input's entry quotes (the
/// first ten per input), and (sequence number, [`WHOLE`]) for each input
/// kept whole with the count of its rejected lines.
async fn dead_letters<O: ObjectListing>(objects: &O, prefix: &str) -> BTreeSet<(String, usize)> {
    let mut out = BTreeSet::new();
    for listed in objects.list(prefix).await.expect("list dead letters") {
        let body = objects.get(&listed.key).await.expect("get dead letter");
        for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_slice(line).expect("dead-letter JSON");
            let (Some(seq), Some(samples)) = (v["sequence_number"].as_str(), v["samples"].as_array()) else {
                continue;
            };
            if !v["data_base64"].is_string() {
                continue;
            }
            if v["rejected_lines"].as_u64().is_some_and(|n| n > 0) {
                out.insert((seq.to_owned(), WHOLE));
            }
            for n in samples.iter().filter_map(|s| s["line"].as_u64()) {
                out.insert((seq.to_owned(), n as usize));
            }
        }
    }
    out
}

/// Whether every flow of `source` is among `delivered` and every line it
/// must dead-letter among `dead`.
fn finished(source: &Source, delivered: &BTreeSet<String>, dead: &BTreeSet<(String, usize)>) -> bool {
    let kept_whole = dead.contains(&(source.seq.clone(), WHOLE));
    source.flows.values().all(|id| delivered.contains(id))
        && source.rejected.iter().all(|line| kept_whole || dead.contains(&(source.seq.clone(), *line)))
}

// ------------------------------------------------------- fault scenarios

/// What a seed injects, and whether a call may be done while its caller
/// sees it fail (then a retry point may be earlier than strictly needed).
struct Scenario {
    description: Vec<String>,
    lost_responses: bool,
}

/// Picks 1 to 3 fault kinds on the enricher's store, sink and dead-letter
/// store.
fn enricher_faults(rng: &mut Rng, plan: &FaultPlan) -> Scenario {
    let mut s = Scenario { description: Vec::new(), lost_responses: false };
    let kinds = rng.range(1, 3);
    for _ in 0..kinds {
        let seed = rng.next();
        let fault =
            rng.pick(&[Fault::Throttled, Fault::ServerError, Fault::Timeout, Fault::Permanent, Fault::LostResponse]);
        let when = match rng.range(0, 2) {
            0 => When::Next,
            1 => When::Call(rng.range(1, 4)),
            _ => When::Chance([0.1, 0.25, 0.5][rng.range(0, 2) as usize], seed),
        };
        match rng.range(0, 5) {
            0 => {
                // Reads and writes of the table.
                let target =
                    rng.pick(&["store", "store.heads", "store.enis_by_id", "store.reconciled", "store.put_seen"]);
                plan.fail(target, when, fault);
                s.description.push(format!("{target} {when:?} {fault:?}"));
                s.lost_responses |= fault == Fault::LostResponse;
            }
            1 => {
                plan.fail("sink", when, fault);
                s.description.push(format!("sink {when:?} {fault:?}"));
                s.lost_responses |= fault == Fault::LostResponse;
            }
            2 => {
                let entry = rng.pick(&[EntryFault::Throughput, EntryFault::Internal]);
                let fraction = [0.05, 0.3, 0.9][rng.range(0, 2) as usize];
                plan.fail_entries("sink", when, entry, fraction);
                s.description.push(format!("sink entries {when:?} {entry:?} {fraction}"));
            }
            3 => {
                plan.fail("dead_letter", when, fault);
                s.description.push(format!("dead_letter {when:?} {fault:?}"));
                s.lost_responses |= fault == Fault::LostResponse;
            }
            _ => {
                let (writes, ack) = (rng.range(1, 6), rng.chance(0.5));
                plan.crash_after_writes(writes, ack);
                s.description.push(format!("crash after {writes} writes (last acknowledged: {ack})"));
            }
        }
    }
    s
}

// ---------------------------------------------------------- the enricher

/// The enricher with its backends behind one fault plan, and a way to
/// read back what it wrote.
trait Pipeline {
    fn plan(&self) -> &FaultPlan;
    async fn process(&self, inputs: &[Input<'_>], now: UnixTime) -> dredge_enricher::BatchOutcome;
    /// The data of every record on the enriched stream, oldest first.
    async fn records(&self) -> Vec<Vec<u8>>;
    /// Dead-lettered lines in objects under `prefix`.
    async fn dead_letters(&self, prefix: &str) -> BTreeSet<(String, usize)>;
    /// The flow ids waiting in the retry queue (none without one). When
    /// there is a queue, a retry point is only checked to be safe: the
    /// queue does not tell which invocation sent what.
    fn queued(&self) -> Option<BTreeSet<String>> {
        None
    }
}

/// The embedded backends: memory table, file stream, local objects.
struct Embedded {
    enricher: Enricher<Faulty<MemoryStore>, Faulty<FileStream>, Faulty<LocalObjects>>,
    plan: FaultPlan,
    dir: tempfile::TempDir,
}

fn enricher_config() -> EnricherConfig {
    EnricherConfig {
        // No waiting between tries; plain records, so that a big batch
        // makes several of them (about 1 MiB each).
        put_retry: RetryPolicy::new(3, Duration::ZERO, Duration::ZERO),
        compression: Compression::None,
        ..EnricherConfig::default()
    }
}

impl Embedded {
    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let plan = FaultPlan::new();
        let store = MemoryStore::new();
        fill_table(&store).await;
        let enricher = Enricher::new(
            Faulty::new(store, &plan, "store"),
            Faulty::new(FileStream::new(dir.path(), "enriched"), &plan, "sink"),
            Faulty::new(LocalObjects::new(dir.path().join("dead")), &plan, "dead_letter"),
            enricher_config(),
            TagPolicy::default(),
            None,
        );
        Embedded { enricher, plan, dir }
    }
}

impl Pipeline for Embedded {
    fn plan(&self) -> &FaultPlan {
        &self.plan
    }
    async fn process(&self, inputs: &[Input<'_>], now: UnixTime) -> dredge_enricher::BatchOutcome {
        self.enricher.process(inputs, now).await
    }
    async fn records(&self) -> Vec<Vec<u8>> {
        read_stream(self.dir.path(), "enriched").expect("read stream").into_iter().map(|r| r.data).collect()
    }
    async fn dead_letters(&self, prefix: &str) -> BTreeSet<(String, usize)> {
        dead_letters(&LocalObjects::new(self.dir.path().join("dead")), prefix).await
    }
}

/// Every enriched line in `records`: its `flow_id` and byte count.
fn flows_of(records: &[Vec<u8>]) -> Vec<(String, u64)> {
    records.iter().flat_map(|r| record_flows(r)).collect()
}

/// What driving a stream through the enricher did.
#[derive(Debug, Default)]
struct Drive {
    invocations: u64,
    crashes: u64,
    retries: u64,
    /// How many invocations each source was part of.
    covered: Vec<u64>,
    /// Whether flows went through the retry queue.
    deferrals: bool,
}

/// Invokes the enricher as Lambda does over `sources`: batches of up to
/// `batch` records from the checkpoint; a batch item failure moves the
/// checkpoint to it, a crash retries the batch whole. Checks the retry
/// point of every invocation; from invocation `calm_after` on, the faults
/// stop (so that every seed ends).
async fn drive_enricher<P: Pipeline>(
    p: &P,
    sources: &[Source],
    batch: usize,
    scenario: &Scenario,
    calm_after: u64,
    context: &str,
) -> Drive {
    let mut d = Drive { covered: vec![0; sources.len()], ..Drive::default() };
    let mut from = 0;
    let mut now = HOUR + 3 * 3600;
    while from < sources.len() {
        d.invocations += 1;
        now += 1;
        assert!(d.invocations < 400, "{context}: no progress");
        if d.invocations == calm_after {
            p.plan().clear();
        }
        let end = (from + batch).min(sources.len());
        let inputs: Vec<Input<'_>> = sources[from..end]
            .iter()
            .map(|s| Input { shard: Some(SHARD), sequence_number: &s.seq, data: &s.data, arrival_ms: now * 1000 })
            .collect();
        for c in &mut d.covered[from..end] {
            *c += 1;
        }
        let records_before = p.records().await.len();
        let outcome = p.process(&inputs, UnixTime(now)).await;
        if p.plan().crashed() {
            // The process died: Lambda gets no answer and retries the batch.
            p.plan().restart();
            d.crashes += 1;
            continue;
        }
        let retry = match &outcome.retry_from {
            None => end,
            Some(seq) => {
                d.retries += 1;
                let at = sources[from..end].iter().position(|s| &s.seq == seq);
                from + at.unwrap_or_else(|| panic!("{context}: retry from {seq}, not in the batch"))
            }
        };
        // Everything before the retry point is done: on the stream, or
        // dead-lettered.
        let records = p.records().await;
        let mut delivered: BTreeSet<String> = flows_of(&records).into_iter().map(|(id, _)| id).collect();
        let queued = p.queued();
        delivered.extend(queued.iter().flatten().cloned());
        let dead_all = p.dead_letters("").await;
        for (i, source) in sources.iter().enumerate().take(retry).skip(from) {
            assert!(
                finished(source, &delivered, &dead_all),
                "{context}: invocation {} says retry from {retry} (error {:?}), but input {i} is not done",
                d.invocations,
                outcome.error
            );
        }
        // And the retry point itself was not done by this invocation (when
        // no call's answer was lost, the enricher knows what it did).
        if retry < end && !scenario.lost_responses && queued.is_none() {
            let mine: BTreeSet<String> = flows_of(&records[records_before..]).into_iter().map(|(id, _)| id).collect();
            let dead_mine = p.dead_letters(&format!("rejected/{now}-")).await;
            assert!(
                !finished(&sources[retry], &mine, &dead_mine),
                "{context}: invocation {} retries from {retry} (error {:?}), which it finished",
                d.invocations,
                outcome.error
            );
        }
        from = retry;
    }
    d
}

/// After the drive: every flow on the stream, nothing else, each at most
/// once per invocation that covered it (per PutRecords try, when an answer
/// may have been lost: the enricher puts again what it did not see taken),
/// and every copy with its own `flow_id`. The number of repeats.
fn check_stream(records: &[Vec<u8>], sources: &[Source], drive: &Drive, lost: bool, context: &str) -> usize {
    let mut per_invocation = if lost { u64::from(enricher_config().put_retry.attempts) } else { 1 };
    if drive.deferrals {
        // A flow deferred by one invocation, then written by another (or
        // deferred by two) comes back from the queue as well.
        per_invocation *= 2;
    }
    let mut want: HashMap<u64, (&str, usize)> = HashMap::new();
    for (i, s) in sources.iter().enumerate() {
        for (bytes, id) in &s.flows {
            want.insert(*bytes, (id.as_str(), i));
        }
    }
    let mut copies: HashMap<u64, u64> = HashMap::new();
    for (id, bytes) in flows_of(records) {
        let Some((want_id, source)) = want.get(&bytes) else { panic!("{context}: a flow nobody sent: {id}") };
        assert_eq!(&id, want_id, "{context}: a repeat of flow {want_id} under another flow_id");
        let n = copies.entry(bytes).or_default();
        *n += 1;
        assert!(
            *n <= drive.covered[*source] * per_invocation,
            "{context}: {id} written {n} times by {} invocations",
            drive.covered[*source]
        );
    }
    let missing: Vec<&str> = want.iter().filter(|(b, _)| !copies.contains_key(b)).map(|(_, (id, _))| *id).collect();
    assert!(
        missing.is_empty(),
        "{context}: {} flows never written, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(3)]
    );
    copies.values().map(|n| (*n - 1) as usize).sum()
}

/// One seed of the enricher property on `pipeline`: the sources, the
/// faults, the drive, the checks. The drive and the repeats.
async fn enricher_seed<P: Pipeline>(p: &P, seed: u64, big: bool, first_seq: u64) -> (Drive, usize) {
    let mut rng = seeded(seed);
    let (records, max_lines) = if big { (10, 600) } else { (rng.range(2, 12), 60) };
    let sources = sources(&mut rng, records, max_lines, first_seq);
    let scenario = if seed == 0 {
        Scenario { description: vec!["none".into()], lost_responses: false }
    } else {
        enricher_faults(&mut rng, p.plan())
    };
    let batch = rng.range(1, records) as usize;
    let context = format!("seed {seed} ({})", scenario.description.join(", "));
    let drive = drive_enricher(p, &sources, batch, &scenario, 40, &context).await;
    p.plan().clear();
    let records = p.records().await;
    let repeats = check_stream(&records, &sources, &drive, scenario.lost_responses, &context);
    if seed == 0 {
        assert_eq!((repeats, drive.retries, drive.crashes), (0, 0, 0), "no faults, no repeats");
    }
    (drive, repeats)
}

#[test]
fn the_retry_point_is_the_lowest_unfinished_record_and_replays_lose_nothing() {
    on_big_stack(|| async {
        let mut totals = (0, 0, 0, 0);
        for seed in seeds(48) {
            let p = Embedded::new().await;
            // Every sixth seed big enough for several output records (and
            // PutRecords calls) per batch.
            let (drive, repeats) = enricher_seed(&p, seed, seed % 6 == 5, 0).await;
            totals.0 += drive.invocations;
            totals.1 += drive.retries;
            totals.2 += drive.crashes;
            totals.3 += repeats;
        }
        eprintln!(
            "enricher: {} invocations, {} retry points, {} crashes, {} repeated flows",
            totals.0, totals.1, totals.2, totals.3
        );
    });
}

// ------------------------------------------------- across both functions

/// The writer's faults: its data store failing (a kind or two), and maybe
/// a crash planned during some compactions.
fn writer_faults(rng: &mut Rng, plan: &FaultPlan) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..rng.range(1, 2) {
        let seed = rng.next();
        let fault =
            rng.pick(&[Fault::Throttled, Fault::ServerError, Fault::Timeout, Fault::Permanent, Fault::LostResponse]);
        let target = rng.pick(&[
            "data",
            "data.put",
            "data.get",
            "data.list",
            "data.delete",
            "data.start_upload",
            "data.upload_part",
            "data.complete_upload",
        ]);
        let when = match rng.range(0, 2) {
            0 => When::Next,
            1 => When::Call(rng.range(1, 6)),
            _ => When::Chance([0.05, 0.2][rng.range(0, 1) as usize], seed),
        };
        plan.fail(target, when, fault);
        out.push(format!("{target} {when:?} {fault:?}"));
    }
    out
}

fn kinesis_batch(records: &[OutRecord], seqs: &[String], now: i64) -> KinesisBatch {
    KinesisBatch {
        records: records
            .iter()
            .zip(seqs)
            .map(|(r, seq)| BatchRecord {
                event_id: Some(format!("{SHARD}:{seq}")),
                kinesis: KinesisData {
                    sequence_number: seq.clone(),
                    data: r.data.clone(),
                    approximate_arrival_timestamp: now as f64,
                },
            })
            .collect(),
    }
}

/// What compaction runs did, over a test.
#[derive(Debug, Default)]
struct Compacted {
    leftovers_removed: u64,
    duplicates_dropped: u64,
    failed: u64,
}

thread_local! {
    static COMPACTED: std::cell::RefCell<Compacted> = std::cell::RefCell::new(Compacted::default());
}

/// Compacts until a run succeeds; some runs crash part way (`crash_chance`).
/// The runs made.
async fn compact_until_done<S, O>(
    writer: &Writer<Faulty<S>, O>,
    plan: &FaultPlan,
    rng: &mut Rng,
    now: &mut i64,
    crash_chance: f64,
    context: &str,
) -> u64
where
    S: ObjectListing + dredge_core::objects::MultipartUpload,
    O: ObjectStore,
{
    for run in 1..=60 {
        *now += 60;
        if run == 30 {
            plan.clear();
        }
        if rng.chance(crash_chance) {
            plan.crash_after_writes(rng.range(1, 10), rng.chance(0.5));
        }
        let outcome = writer.handle(&WriterEvent::Compact { compact: true }, *now).await;
        let crashed = plan.crashed();
        plan.restart();
        match outcome {
            Outcome::Compacted { stats, error } => {
                COMPACTED.with(|c| {
                    let mut c = c.borrow_mut();
                    c.leftovers_removed += stats.leftovers_removed;
                    c.duplicates_dropped += stats.duplicates_dropped;
                    c.failed += u64::from(error.is_some() || crashed);
                });
                if error.is_none() && !crashed {
                    return run;
                }
            }
            other => panic!("{context}: compaction answered {other:?}"),
        }
    }
    panic!("{context}: compaction never succeeded")
}

/// The flow ids of every final object the manifests list; checks that no
/// final object is left unlisted and nothing is left staged.
async fn final_flow_ids<S: ObjectListing>(store: &S, prefix: &str, context: &str) -> Vec<String> {
    use arrow_array::{Array, StringArray};
    let listed = store.list("").await.expect("list");
    let staged: Vec<&str> = listed.iter().map(|l| l.key.as_str()).filter(|k| k.starts_with("staging/")).collect();
    assert!(staged.is_empty(), "{context}: left staged: {staged:?}");
    let mut in_manifests = BTreeSet::new();
    for manifest in listed.iter().filter(|l| l.key.ends_with("_manifest.json")) {
        let body: serde_json::Value = serde_json::from_slice(&store.get(&manifest.key).await.unwrap()).unwrap();
        for object in body["objects"].as_array().expect("objects") {
            in_manifests.insert(object["key"].as_str().unwrap().to_owned());
        }
    }
    let finals: BTreeSet<String> = listed
        .iter()
        .map(|l| l.key.clone())
        .filter(|k| k.starts_with(&format!("{prefix}/")) && k.ends_with(".parquet"))
        .collect();
    assert_eq!(finals, in_manifests, "{context}: final objects and manifests disagree");
    let mut ids = Vec::new();
    for key in &in_manifests {
        let body = bytes::Bytes::from(store.get(key).await.expect("get final"));
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(body)
            .expect("a Parquet object")
            .build()
            .expect("reader");
        for batch in reader {
            let batch = batch.expect("batch");
            let column = batch.column_by_name("flow_id").expect("flow_id column");
            let column = column.as_any().downcast_ref::<StringArray>().expect("flow_id is a string");
            ids.extend((0..column.len()).map(|i| column.value(i).to_owned()));
        }
    }
    ids
}

#[test]
fn every_flow_exactly_once_from_flow_logs_to_final_parquet() {
    on_big_stack(|| async {
        let mut totals = (0u64, 0usize, 0u64, 0u64);
        let mut abandoned_uploads = 0;
        for seed in seeds(10) {
            let mut rng = seeded(1000 + seed);
            // The enricher, failing as in the property above.
            let p = Embedded::new().await;
            let records = rng.range(4, 10);
            let sources = sources(&mut rng, records, 120, 0);
            let scenario = enricher_faults(&mut rng, p.plan());
            let context = format!("seed {seed} (enricher: {})", scenario.description.join(", "));
            let batch = rng.range(1, sources.len() as u64) as usize;
            let drive = drive_enricher(&p, &sources, batch, &scenario, 40, &context).await;
            p.plan().clear();
            let enriched = read_stream(p.dir.path(), "enriched").expect("stream");
            totals.1 += check_stream(&p.records().await, &sources, &drive, scenario.lost_responses, &context);

            // The writer, its data store failing and crashing.
            let dir = tempfile::tempdir().expect("tempdir");
            let plan = FaultPlan::new();
            let described = writer_faults(&mut rng, &plan);
            let context = format!("{context}, writer: {}", described.join(", "));
            let mut config = WriterConfig::from_vars(&Vars::new(|_: &str| None), Some("dredge-data")).unwrap();
            // Small final objects (several per hour), and sometimes passes
            // over hash ranges of the ids.
            config.compact.sizes.target_bytes = 16 * 1024;
            if rng.chance(0.5) {
                config.compact.max_flow_ids = 1000;
            }
            let prefix = config.layout.prefix().to_owned();
            let writer = Writer::new(
                Faulty::new(LocalObjects::new(dir.path().join("data")), &plan, "data"),
                LocalObjects::new(dir.path().join("dead")),
                config,
            );
            let seqs: Vec<String> = (0..enriched.len()).map(|i| format!("4960{:036}", i)).collect();
            let mut now = HOUR + 4 * 3600;
            let (mut from, mut invocations) = (0, 0);
            while from < enriched.len() {
                invocations += 1;
                now += 10;
                assert!(invocations < 300, "{context}: the writer makes no progress");
                if invocations == 40 {
                    plan.clear();
                }
                let end = (from + rng.range(1, 4) as usize).min(enriched.len());
                let event = WriterEvent::Kinesis(kinesis_batch(&enriched[from..end], &seqs[from..end], now));
                let outcome = writer.handle(&event, now).await;
                if plan.crashed() {
                    plan.restart();
                    continue;
                }
                match outcome {
                    Outcome::Staged { retry_from: Some(seq), .. } => assert_eq!(seq, seqs[from], "{context}"),
                    Outcome::Staged { retry_from: None, error: None, .. } => {
                        // At least once: Lambda may hand records over again,
                        // in another batch.
                        from = if rng.chance(0.2) { end.saturating_sub(rng.range(1, 3) as usize) } else { end };
                        if from == 0 && end == enriched.len() {
                            from = end;
                        }
                    }
                    other => panic!("{context}: staging answered {other:?}"),
                }
                if rng.chance(0.25) {
                    totals.2 += compact_until_done(&writer, &plan, &mut rng, &mut now, 0.4, &context).await;
                }
            }
            totals.2 += compact_until_done(&writer, &plan, &mut rng, &mut now, 0.4, &context).await;
            plan.clear();
            totals.3 += plan.crashes();
            let ids = final_flow_ids(writer.data().inner(), &prefix, &context).await;
            let mut seen = BTreeSet::new();
            for id in &ids {
                assert!(seen.insert(id.as_str()), "{context}: {id} is in the final Parquet twice");
            }
            let want: BTreeSet<&str> = sources.iter().flat_map(|s| s.flows.values().map(String::as_str)).collect();
            assert_eq!(seen, want, "{context}: the final Parquet's flows");
            totals.0 += ids.len() as u64;
            // Uploads a failed run neither completed nor aborted (S3: until
            // the bucket's lifecycle rule removes them).
            let uploads = std::fs::read_dir(dir.path().join("data").join(".multipart")).map_or(0, |d| d.count());
            abandoned_uploads += uploads;
        }
        eprintln!(
            "end to end: {} final rows, {} repeats on the enriched stream, {} compaction runs, {} writer crashes",
            totals.0, totals.1, totals.2, totals.3
        );
        COMPACTED.with(|c| {
            let c = c.borrow();
            eprintln!(
                "compaction: {} failed or crashed runs, {} leftover final objects removed, {} repeats dropped, \
                 {abandoned_uploads} multipart uploads left behind",
                c.failed, c.leftovers_removed, c.duplicates_dropped
            );
        });
    });
}

// ------------------------------------------------------------ ownership

/// The sample events, with the time of each.
fn ownership_events() -> Vec<(String, serde_json::Value, String)> {
    let dir = dredge_tests::event_path("ownership");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("events/ownership") {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let event: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let time = event["detail"]["eventTime"].as_str().or(event["time"].as_str()).unwrap_or_default().to_owned();
        out.push((path.file_name().unwrap().to_string_lossy().into_owned(), event, time));
    }
    out.sort_by(|a, b| (&a.2, &a.0).cmp(&(&b.2, &b.0)));
    out
}

fn describer() -> FileDescriber {
    FileDescriber::from_paths(&[dredge_tests::sample_path("ec2-describe")]).expect("snapshot")
}

/// Every interval of the table, in order.
async fn intervals<S: OwnershipStore>(store: &S) -> Vec<Interval> {
    let mut out: Vec<Interval> =
        store.timelines().await.expect("timelines").iter().flat_map(|(key, t)| t.intervals(key)).collect();
    out.sort_by_key(|i| serde_json::to_string(i).unwrap());
    out
}

/// The intervals `got` has and `want` has not, and the other way round.
fn assert_same_intervals(got: &[Interval], want: &[Interval], context: &str) {
    let show = |i: &Interval| {
        let to = i.to.map_or("now".to_owned(), |t| t.0.to_string());
        format!("{} {}..{to} {} {:?}", i.address, i.from.0, i.owner.eni_id, i.owner.app)
    };
    let extra: Vec<String> = got.iter().filter(|i| !want.contains(i)).map(show).collect();
    let missing: Vec<String> = want.iter().filter(|i| !got.contains(i)).map(show).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "{context}: the table differs from a clean in-order delivery's:\n  only here: {extra:#?}\n  only in order: {missing:#?}"
    );
}

/// Delivers `event` until the handler takes it, as Lambda's retries (and
/// the process restarting after a crash) do. The tries.
async fn deliver_until_done<S: OwnershipStore>(
    handler: &Handler<Faulty<S>, FileDescriber>,
    plan: &FaultPlan,
    event: &serde_json::Value,
    context: &str,
) -> u64 {
    for attempt in 1..=60 {
        if attempt == 30 {
            plan.clear();
        }
        let result = handler.handle(event.clone()).await;
        let crashed = plan.crashed();
        plan.restart();
        match result {
            Ok(summary) if !crashed => {
                assert!(summary.errors.is_empty(), "{context}: {:?}", summary.errors);
                return attempt;
            }
            _ => continue,
        }
    }
    panic!("{context}: never handled")
}

/// Transient faults only: a permanent store error drops the change by
/// design (logged, counted, not retried).
fn ownership_faults(rng: &mut Rng, plan: &FaultPlan) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..rng.range(1, 3) {
        let seed = rng.next();
        let fault = rng.pick(&[Fault::Throttled, Fault::ServerError, Fault::Timeout, Fault::LostResponse]);
        let target = rng.pick(&[
            "store",
            "store.put_marks",
            "store.put_eni",
            "store.eni",
            "store.pending",
            "store.forget_pending",
            "store.put_pending",
            "store.note_instance",
            "store.put_instance",
        ]);
        let when = match rng.range(0, 1) {
            0 => When::Call(rng.range(1, 8)),
            _ => When::Chance([0.05, 0.15, 0.3][rng.range(0, 2) as usize], seed),
        };
        plan.fail(target, when, fault);
        out.push(format!("{target} {when:?} {fault:?}"));
    }
    out
}

/// Delivers `order` once each to a clean store: the intervals.
async fn clean_intervals(events: &[(String, serde_json::Value, String)], order: &[usize]) -> Vec<Interval> {
    let clean = Handler::new(MemoryStore::new(), describer(), TagPolicy::default());
    for i in order {
        let (name, event, _) = &events[*i];
        let summary = clean.handle(event.clone()).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(summary.errors.is_empty(), "{name}: {:?}", summary.errors);
    }
    intervals(clean.store()).await
}

/// Failures (throttling, 5xx, timeouts, lost answers, crashes between
/// writes) retried as Lambda retries, events delivered twice, and in any
/// order: the table is the one the same events make delivered once each,
/// in order, without failures.
#[test]
fn ownership_converges_under_repeats_reordering_and_failures() {
    on_big_stack(|| async {
        let events = ownership_events();
        assert!(events.len() >= 15, "the sample events: {}", events.len());
        let in_order = clean_intervals(&events, &(0..events.len()).collect::<Vec<_>>()).await;
        assert!(in_order.len() >= 5, "the events make intervals: {in_order:?}");
        let (mut tries, mut deliveries) = (0, 0);
        for seed in seeds(60) {
            let mut rng = seeded(2000 + seed);
            let plan = FaultPlan::new();
            let handler =
                Handler::new(Faulty::new(MemoryStore::new(), &plan, "store"), describer(), TagPolicy::default());
            // Each event once or more, in any order (every other seed in
            // order, repeats right after the first delivery).
            let mut order: Vec<usize> = Vec::new();
            for i in 0..events.len() {
                order.push(i);
                if rng.chance(0.4) {
                    order.push(i);
                }
            }
            if seed % 2 == 1 {
                for i in (1..order.len()).rev() {
                    order.swap(i, rng.range(0, i as u64) as usize);
                }
            }
            let names: Vec<&str> = order.iter().map(|i| events[*i].0.as_str()).collect();
            let want = clean_intervals(&events, &order).await;
            assert_same_intervals(&want, &in_order, &format!("seed {seed}, no failures, order {names:?}"));
            let described = if seed == 0 { vec!["none".into()] } else { ownership_faults(&mut rng, &plan) };
            if seed % 3 == 1 {
                plan.crash_after_writes(rng.range(1, 40), rng.chance(0.5));
            }
            let context = format!("seed {seed} ({}), order {names:?}", described.join(", "));
            for i in &order {
                tries += deliver_until_done(&handler, &plan, &events[*i].1, &context).await;
                deliveries += 1;
                if seed % 3 == 1 && !plan.crashed() && rng.chance(0.1) {
                    plan.crash_after_writes(rng.range(1, 20), rng.chance(0.5));
                }
            }
            plan.clear();
            let got = intervals(handler.store().inner()).await;
            assert_same_intervals(&got, &want, &context);
        }
        eprintln!("ownership: {deliveries} deliveries, {tries} invocations");
    });
}

/// Without faults, many more orders: the sample events through the handler,
/// which describes instances as the Lambda does (the file describer
/// standing in for EC2), shuffled with duplicates, give the in-order table.
#[test]
fn the_sample_events_with_describes_give_one_history_in_any_order() {
    on_big_stack(|| async {
        let events = ownership_events();
        let in_order = clean_intervals(&events, &(0..events.len()).collect::<Vec<_>>()).await;
        for seed in seeds(400) {
            let mut rng = seeded(5000 + seed);
            let mut order: Vec<usize> = (0..events.len()).collect();
            for _ in 0..events.len() / 4 {
                order.push(rng.range(0, events.len() as u64 - 1) as usize);
            }
            for i in (1..order.len()).rev() {
                order.swap(i, rng.range(0, i as u64) as usize);
            }
            let names: Vec<&str> = order.iter().map(|i| events[*i].0.as_str()).collect();
            let got = clean_intervals(&events, &order).await;
            assert_same_intervals(&got, &in_order, &format!("seed {seed}, order {names:?}"));
        }
    });
}

/// Found by the convergence property (minimized from a shuffled
/// delivery): an IPv6 address assigned (2026-11-06 16:20) and unassigned
/// (18:02) on eni-0002, delivered after an attach of another interface to
/// its instance (2026-11-09 13:13), which made the table describe the
/// instance and learn eni-0002 then. In order, the address is eni-0002's
/// from 16:20 to 18:02. Attach first: the assign, learned late, also
/// labels the address at each attachment the record remembers after it
/// (11-09 13:13), and the unassign, learned after that, closes it at
/// 18:02. That label used to be an open, so the table said eni-0002 (app
/// api) held the address again from the 9th on: a wrong owner. It is a
/// relabel now, which counts only while the ENI holds the address.
#[test]
fn an_unassign_learned_after_a_later_attach_ends_the_address_at_its_time() {
    on_big_stack(|| async {
        let events = ownership_events();
        let index = |name: &str| events.iter().position(|e| e.0 == name).unwrap();
        let order: Vec<usize> = [
            "attach-network-interface.json",
            "assign-ipv6-addresses.json",
            "unassign-ipv6-addresses.json",
            "run-instances.json",
        ]
        .map(index)
        .into();
        let ipv6 = |intervals: Vec<Interval>| -> Vec<Interval> {
            intervals.into_iter().filter(|i| i.address.is_ipv6()).collect()
        };
        let mut sorted = order.clone();
        sorted.sort();
        let want = ipv6(clean_intervals(&events, &sorted).await);
        let got = ipv6(clean_intervals(&events, &order).await);
        assert_same_intervals(&got, &want, "attach learned before the assign and unassign");
    });
}

/// The bug the fault tests found: a change kept for an unknown ENI is
/// applied by the delivery that makes the ENI known; when that delivery
/// failed after writing the ENI but before applying what was kept, the
/// retry found the ENI known and the kept change stayed kept for ever.
#[test]
fn a_kept_change_is_applied_when_the_delivery_that_made_its_eni_known_is_retried() {
    on_big_stack(|| async {
        let read = |name: &str| -> serde_json::Value {
            serde_json::from_slice(&std::fs::read(dredge_tests::event_path(&format!("ownership/{name}"))).unwrap())
                .unwrap()
        };
        let (assign, run) = (read("assign-private-ip-addresses.json"), read("run-instances.json"));
        let eni = EniRef::Id("eni-0a1b2c3d4e5f60001".into());
        let mut windows = 0;
        // The n-th PutMarks fails: find the ones after the ENI's record is
        // written and before the kept change is applied.
        for n in 1..=8 {
            let plan = FaultPlan::new();
            let handler = Handler::new(
                Faulty::new(MemoryStore::new(), &plan, "store"),
                FileDescriber::empty(),
                TagPolicy::default(),
            );
            let store = handler.store().inner();
            handler.handle(assign.clone()).await.expect("kept");
            assert_eq!(store.pending(&eni).await.unwrap().len(), 1, "kept for the unknown ENI");
            plan.fail("store.put_marks", When::Call(n), Fault::Throttled);
            if handler.handle(run.clone()).await.is_ok() {
                continue;
            }
            if store.eni(&eni).await.unwrap().is_none() || store.pending(&eni).await.unwrap().is_empty() {
                handler.handle(run.clone()).await.expect("retried");
                continue;
            }
            windows += 1;
            handler.handle(run.clone()).await.expect("retried");
            let owned: Vec<String> = intervals(store)
                .await
                .into_iter()
                .filter(|i| i.owner.eni_id == "eni-0a1b2c3d4e5f60001")
                .map(|i| i.address.to_string())
                .collect();
            for ip in ["10.20.1.40", "10.20.1.41"] {
                assert!(owned.iter().any(|a| a == ip), "PutMarks {n} failed: {ip} never owned ({owned:?})");
            }
            assert!(store.pending(&eni).await.unwrap().is_empty(), "applied, then forgotten");
        }
        assert!(windows > 0, "no failure fell between the ENI becoming known and the kept change");
    });
}

// ----------------------------------------------------------------- moto

/// The enricher on the moto server: a DynamoDB table, a Kinesis stream and
/// an S3 bucket, each behind the fault wrappers; what was written is read
/// back from the server.
struct OnMoto {
    enricher: Enricher<Faulty<DynamoOwnershipStore>, Faulty<KinesisSink>, Faulty<S3Objects>>,
    plan: FaultPlan,
    kinesis: aws_sdk_kinesis::Client,
    stream: String,
    dead: S3Objects,
}

impl OnMoto {
    async fn new(config: &aws_config::SdkConfig) -> OnMoto {
        let ddb = aws_sdk_dynamodb::Client::new(config);
        let kinesis = aws_sdk_kinesis::Client::new(config);
        let s3 = s3_client(config);
        let (table, stream) = (dredge_tests::unique_name("faults"), dredge_tests::unique_name("enriched"));
        let bucket = dredge_tests::unique_name("dead").to_lowercase();
        create_table(&ddb, &table).await.expect("create table");
        kinesis.create_stream().stream_name(&stream).shard_count(1).send().await.expect("create_stream");
        s3.create_bucket().bucket(&bucket).send().await.expect("create_bucket");
        let store = DynamoOwnershipStore::new(ddb, &table);
        fill_table(&store).await;
        let plan = FaultPlan::new();
        let enricher = Enricher::new(
            Faulty::new(store, &plan, "store"),
            Faulty::new(KinesisSink::new(kinesis.clone(), &stream), &plan, "sink"),
            Faulty::new(S3Objects::new(s3.clone(), &bucket, ""), &plan, "dead_letter"),
            enricher_config(),
            TagPolicy::default(),
            None,
        );
        OnMoto { enricher, plan, kinesis, stream, dead: S3Objects::new(s3, &bucket, "") }
    }
}

impl Pipeline for OnMoto {
    fn plan(&self) -> &FaultPlan {
        &self.plan
    }
    async fn process(&self, inputs: &[Input<'_>], now: UnixTime) -> dredge_enricher::BatchOutcome {
        self.enricher.process(inputs, now).await
    }
    async fn records(&self) -> Vec<Vec<u8>> {
        let shards = self.kinesis.list_shards().stream_name(&self.stream).send().await.expect("list_shards");
        let shard = shards.shards()[0].shard_id().to_owned();
        let mut iterator = self
            .kinesis
            .get_shard_iterator()
            .stream_name(&self.stream)
            .shard_id(shard)
            .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("get_shard_iterator")
            .shard_iterator;
        let mut out = Vec::new();
        while let Some(it) = iterator {
            let page = self.kinesis.get_records().shard_iterator(it).limit(10_000).send().await.expect("get_records");
            if page.records().is_empty() {
                break;
            }
            out.extend(page.records().iter().map(|r| r.data().as_ref().to_vec()));
            iterator = page.next_shard_iterator;
        }
        out
    }
    async fn dead_letters(&self, prefix: &str) -> BTreeSet<(String, usize)> {
        dead_letters(&self.dead, prefix).await
    }
}

#[test]
fn on_moto_the_retry_point_is_the_lowest_unfinished_record_and_replays_lose_nothing() {
    on_big_stack(|| async {
        let test = "on_moto_the_retry_point_is_the_lowest_unfinished_record_and_replays_lose_nothing";
        let Some(config) = dredge_tests::moto_config(test).await else { return };
        let mut totals = (0, 0, 0);
        for seed in seeds(6) {
            let p = OnMoto::new(&config).await;
            let (drive, repeats) = enricher_seed(&p, seed, false, 0).await;
            totals.0 += drive.invocations;
            totals.1 += drive.retries + drive.crashes;
            totals.2 += repeats;
        }
        eprintln!("moto enricher: {} invocations, {} retries, {} repeated flows", totals.0, totals.1, totals.2);
    });
}

/// A fault moto expresses itself: the dead-letter bucket does not exist
/// (S3's `NoSuchBucket`, permanent by the SDK classifier). The retry point
/// is the first record with a rejected line; once the bucket exists, the
/// replay finishes, and nothing before the retry point is written twice.
#[test]
fn on_moto_a_missing_dead_letter_bucket_is_a_retry_point() {
    on_big_stack(|| async {
        let test = "on_moto_a_missing_dead_letter_bucket_is_a_retry_point";
        let Some(config) = dredge_tests::moto_config(test).await else { return };
        let p = OnMoto::new(&config).await;
        let bucket = dredge_tests::unique_name("missing").to_lowercase();
        let s3 = s3_client(&config);
        let enricher = Enricher::new(
            Faulty::new(p.enricher.store().inner(), &p.plan, "store"),
            Faulty::new(KinesisSink::new(p.kinesis.clone(), &p.stream), &p.plan, "sink"),
            Faulty::new(S3Objects::new(s3.clone(), &bucket, ""), &p.plan, "dead_letter"),
            enricher_config(),
            TagPolicy::default(),
            None,
        );
        let mut rng = seeded(7);
        let mut sources = sources(&mut rng, 5, 20, 0);
        // Records 2 and 4 have a line no decoder takes.
        for i in [2, 4] {
            let mut lines: Vec<String> = sources[i]
                .flows
                .keys()
                .map(|b| {
                    format!("2 123456789012 eni-log 10.0.0.1 10.0.0.5 1234 443 6 10 {b} {HOUR} {} ACCEPT OK", HOUR + 60)
                })
                .collect();
            lines.push("2 123456789012 eni-log no flow here".into());
            sources[i].flows = sources[i]
                .flows
                .keys()
                .enumerate()
                .map(|(n, b)| (*b, format!("{SHARD}:{}:{}", sources[i].seq, n + 1)))
                .collect();
            sources[i].rejected = vec![lines.len()];
            sources[i].data = envelope(&lines);
        }
        let inputs: Vec<Input<'_>> = sources
            .iter()
            .map(|s| Input { shard: Some(SHARD), sequence_number: &s.seq, data: &s.data, arrival_ms: HOUR * 1000 })
            .collect();
        let first_rejected = sources.iter().position(|s| !s.rejected.is_empty()).unwrap();
        let outcome = enricher.process(&inputs, UnixTime(HOUR + 7200)).await;
        assert_eq!(outcome.retry_from.as_deref(), Some(sources[first_rejected].seq.as_str()), "{:?}", outcome.error);
        assert!(outcome.error.as_deref().is_some_and(|e| e.contains("dead-letter")), "{:?}", outcome.error);
        s3.create_bucket().bucket(&bucket).send().await.expect("create_bucket");
        let outcome = enricher.process(&inputs[first_rejected..], UnixTime(HOUR + 7201)).await;
        assert_eq!(outcome.retry_from, None, "{:?}", outcome.error);
        let records = p.records().await;
        let drive = Drive {
            covered: (0..sources.len()).map(|i| if i < first_rejected { 1 } else { 2 }).collect(),
            ..Drive::default()
        };
        check_stream(&records, &sources, &drive, false, test);
        let dead = dead_letters(&S3Objects::new(s3, &bucket, ""), "").await;
        for s in &sources {
            for line in &s.rejected {
                assert!(dead.contains(&(s.seq.clone(), *line)), "{} line {line} dead-lettered", s.seq);
            }
        }
    });
}

#[test]
fn on_moto_ownership_converges_under_repeats_reordering_and_failures() {
    on_big_stack(|| async {
        let test = "on_moto_ownership_converges_under_repeats_reordering_and_failures";
        let Some(config) = dredge_tests::moto_config(test).await else { return };
        let ddb = aws_sdk_dynamodb::Client::new(&config);
        let events = ownership_events();
        let clean = Handler::new(MemoryStore::new(), describer(), TagPolicy::default());
        for (name, event, _) in &events {
            clean.handle(event.clone()).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let want = intervals(clean.store()).await;
        for seed in seeds(3) {
            let mut rng = seeded(3000 + seed);
            let table = dredge_tests::unique_name("faults-ownership");
            create_table(&ddb, &table).await.expect("create table");
            let plan = FaultPlan::new();
            let store = Faulty::new(DynamoOwnershipStore::new(ddb.clone(), &table), &plan, "store");
            let handler = Handler::new(store, describer(), TagPolicy::default());
            let mut order: Vec<usize> = (0..events.len()).chain(0..events.len()).collect();
            for i in (1..order.len()).rev() {
                order.swap(i, rng.range(0, i as u64) as usize);
            }
            let described = ownership_faults(&mut rng, &plan);
            let context = format!("moto seed {seed} ({})", described.join(", "));
            for i in &order {
                deliver_until_done(&handler, &plan, &events[*i].1, &context).await;
                if rng.chance(0.1) {
                    plan.crash_after_writes(rng.range(1, 20), rng.chance(0.5));
                }
            }
            plan.clear();
            assert_same_intervals(&intervals(handler.store().inner()).await, &want, &context);
        }
    });
}

// ------------------------------------------------------ the retry queue

/// The enricher with a retry queue (the second chance) behind the fault
/// wrappers too: sides the table cannot vouch for yet (addresses it has
/// never seen) wait in the queue.
struct WithQueue {
    enricher: Enricher<Faulty<MemoryStore>, Faulty<FileStream>, Faulty<LocalObjects>, Faulty<MemoryQueue>>,
    plan: FaultPlan,
    dir: tempfile::TempDir,
}

impl WithQueue {
    async fn new() -> Self {
        let e = Embedded::new().await;
        let queue = Faulty::new(MemoryQueue::new(), &e.plan, "queue");
        WithQueue { enricher: e.enricher.with_queue(Some(queue)), plan: e.plan, dir: e.dir }
    }

    fn queue(&self) -> &MemoryQueue {
        self.enricher.queue().expect("a queue").inner()
    }
}

/// The `flow_id` in a deferred flow's first half of output.
fn flow_id_in(half: &str) -> String {
    let at = half.find("\"flow_id\":\"").expect("a flow_id") + "\"flow_id\":\"".len();
    half[at..].split('"').next().unwrap().to_owned()
}

impl Pipeline for WithQueue {
    fn plan(&self) -> &FaultPlan {
        &self.plan
    }
    async fn process(&self, inputs: &[Input<'_>], now: UnixTime) -> dredge_enricher::BatchOutcome {
        self.enricher.process(inputs, now).await
    }
    async fn records(&self) -> Vec<Vec<u8>> {
        read_stream(self.dir.path(), "enriched").expect("read stream").into_iter().map(|r| r.data).collect()
    }
    async fn dead_letters(&self, prefix: &str) -> BTreeSet<(String, usize)> {
        dead_letters(&LocalObjects::new(self.dir.path().join("dead")), prefix).await
    }
    fn queued(&self) -> Option<BTreeSet<String>> {
        // Every message, visible or not, handed back at once.
        let queue = self.queue();
        let now = queue.now();
        queue.set_now(UnixTime(i64::MAX / 2));
        let held = queue.due();
        queue.set_now(now);
        let ids = held
            .iter()
            .flat_map(|m| DeferredBatch::parse(&m.body).expect("a deferred batch").flows)
            .map(|f| flow_id_in(&f.half))
            .collect();
        queue.put_back(held);
        Some(ids)
    }
}

#[test]
fn deferred_flows_survive_retry_queue_faults() {
    on_big_stack(|| async {
        let (mut deferred, mut retries) = (0, 0);
        for seed in seeds(24) {
            let mut rng = seeded(4000 + seed);
            let p = WithQueue::new().await;
            let records = rng.range(2, 10);
            let sources = sources(&mut rng, records, 80, 0);
            let mut scenario = enricher_faults(&mut rng, &p.plan);
            // And the queue's own: whole calls, or some entries.
            let chance_seed = rng.next();
            let when = rng.pick(&[When::Next, When::Call(2), When::Chance(0.3, chance_seed)]);
            if rng.chance(0.5) {
                let fault = rng.pick(&[Fault::Throttled, Fault::Timeout, Fault::Permanent, Fault::LostResponse]);
                p.plan.fail("queue", when, fault);
                scenario.description.push(format!("queue {when:?} {fault:?}"));
                scenario.lost_responses |= fault == Fault::LostResponse;
            } else {
                p.plan.fail_entries("queue", when, EntryFault::Throughput, 0.5);
                scenario.description.push(format!("queue entries {when:?}"));
            }
            let batch = rng.range(1, records) as usize;
            let context = format!("seed {seed} ({})", scenario.description.join(", "));
            let mut drive = drive_enricher(&p, &sources, batch, &scenario, 40, &context).await;
            // The queue hands the flows back after their wait is over: they
            // are decided (settled) and written, failing as they may.
            let mut now = HOUR + 6 * 3600;
            for round in 1..=60 {
                if round == 30 {
                    p.plan.clear();
                }
                now += 60;
                p.queue().set_now(UnixTime(now));
                let messages = p.queue().due();
                if messages.is_empty() {
                    break;
                }
                deferred += messages.len();
                let outcome = p.enricher.retry(&messages, UnixTime(now)).await;
                let crashed = p.plan.crashed();
                p.plan.restart();
                retries += 1;
                for s in &mut drive.covered {
                    *s += 1;
                }
                let failed: BTreeSet<&String> = outcome.failed.iter().collect();
                p.queue().put_back(messages.into_iter().filter(|m| crashed || failed.contains(&m.message_id)));
            }
            assert!(p.queue().is_empty(), "{context}: the queue never emptied");
            drive.deferrals = true;
            p.plan.clear();
            check_stream(&p.records().await, &sources, &drive, scenario.lost_responses, &context);
        }
        eprintln!("retry queue: {deferred} messages handed back, {retries} retry invocations");
    });
}
