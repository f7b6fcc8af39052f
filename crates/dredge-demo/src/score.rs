//! Scoring: every side of every flow in the final Parquet, against the
//! simulator's truth.
//!
//! - **correct**: the reported owner is the true one: the same ENI and the
//!   same instance (none for a detached or service ENI) for an address of
//!   the fleet, the same service for an AWS range, `internet` for anyone
//!   else;
//! - **unattributed**: reported `unattributed`;
//! - **misattributed**: anything else: a wrong owner.
//!
//! A side is **knowable** when, by the time the enricher processed its
//! flow, what had reached the ownership function determined the owner:
//! - for an address of the fleet: an event that told of the holding's start
//!   had been delivered, or a reconcile had run while the holding lasted;
//! - for an AWS service or internet address: every earlier holding of that
//!   address by the fleet was known to have ended (an event of its end
//!   delivered, or a reconcile after it).
//!
//! Events that tell nothing the handler uses still count as delivered: the
//! definition measures what was knowable, not what Dredge makes of it.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::{Array, BooleanArray, Int64Array, RecordBatch, StringArray};
use std::net::IpAddr;

use dredge_core::ownership::{AddressKey, Scope, Timeline, UnixTime};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use crate::run::{Delivered, DemoError};
use crate::summary::{Counts, Misattribution, Pair, Rate, Summary, TIMELINE_BUCKET_SECONDS};
use crate::traffic::{Flow, Side, Truth};
use crate::world::{Segment, Time, World};

/// At most this many misattributions are listed with their events.
const SAMPLES: usize = 200;
const TOP_PAIRS: usize = 15;

/// What had reached the ownership function, and when.
pub struct Knowledge<'a> {
    pub world: &'a World,
    /// Per event: its first delivery (`None`: lost).
    pub first_delivery: &'a [Option<Time>],
    /// When reconciles ran, in order.
    pub reconciles: &'a [Time],
    /// The ownership table once every event was applied: tells a history
    /// the table got wrong from one it got right too late for a flow.
    pub table: &'a HashMap<AddressKey, Timeline>,
}

impl Knowledge<'_> {
    fn delivered(&self, events: &[usize], by: Time) -> bool {
        events.iter().any(|&e| self.first_delivery[e].is_some_and(|d| d <= by))
    }

    /// A reconcile in `[from, until)` at or before `by`.
    fn reconciled(&self, from: Time, until: Option<Time>, by: Time) -> bool {
        let i = self.reconciles.partition_point(|&r| r < from);
        self.reconciles.get(i).is_some_and(|&r| r <= by && until.is_none_or(|u| r < u))
    }

    fn start_known(&self, s: &Segment, by: Time) -> bool {
        self.delivered(&s.opened_by, by) || self.reconciled(s.from, s.to, by)
    }

    fn end_known(&self, s: &Segment, by: Time) -> bool {
        let Some(to) = s.to else { return false };
        self.delivered(&s.closed_by, by) || self.reconciled(to, None, by)
    }

    pub fn knowable(&self, side: &Side, flow: &Flow, by: Time) -> bool {
        match side.truth {
            Truth::Fleet { segment } => self.start_known(&self.world.segments[segment], by),
            Truth::Aws { .. } | Truth::Internet => self
                .world
                .ended_before(None, side.ip, flow.start)
                .iter()
                .all(|&s| self.end_known(&self.world.segments[s], by)),
        }
    }
}

/// One side of a final row, as reported.
#[derive(Debug, Clone, Default)]
struct Reported {
    attribution: String,
    app: Option<String>,
    eni: Option<String>,
    instance: Option<String>,
    region: Option<String>,
}

impl Reported {
    /// The name a person reads in the pairs: the app, the service,
    /// `internet` or `unattributed`.
    fn name(&self) -> String {
        match self.attribution.as_str() {
            "internet" | "unattributed" => self.attribution.clone(),
            _ => self.app.clone().or_else(|| self.eni.clone()).unwrap_or_else(|| "(no app)".into()),
        }
    }

    fn describe(&self) -> String {
        match (self.attribution.as_str(), &self.app, &self.eni, &self.instance) {
            ("internet" | "unattributed", ..) => self.attribution.clone(),
            ("aws_service", Some(app), ..) => format!("AWS {app}"),
            (_, app, eni, instance) => {
                let ids: Vec<&str> = [eni, instance].iter().filter_map(|x| x.as_deref()).collect();
                format!("{} ({})", app.as_deref().unwrap_or("no app"), ids.join(", "))
            }
        }
    }
}

struct Row {
    flow_id: String,
    bytes: i64,
    src: Reported,
    dst: Reported,
    cross_az: Option<bool>,
    cross_region: Option<bool>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Correct,
    Unattributed,
    Misattributed,
}

fn verdict(world: &World, truth: &Truth, reported: &Reported) -> Verdict {
    if reported.attribution == "unattributed" {
        return Verdict::Unattributed;
    }
    let right = match truth {
        Truth::Fleet { segment } => {
            let s = &world.segments[*segment];
            matches!(reported.attribution.as_str(), "owner" | "owner_after_retry" | "logging_eni")
                && reported.eni.as_deref() == Some(world.enis[s.eni].id.as_str())
                && reported.instance.as_deref() == s.instance.map(|i| world.instances[i].id.as_str())
        }
        Truth::Aws { service } => reported.attribution == "aws_service" && reported.app.as_deref() == Some(service),
        Truth::Internet => reported.attribution == "internet",
    };
    if right {
        Verdict::Correct
    } else {
        Verdict::Misattributed
    }
}

fn truth_kind(world: &World, truth: &Truth) -> &'static str {
    match truth {
        Truth::Fleet { segment } if world.segments[*segment].instance.is_some() => "instance",
        Truth::Fleet { .. } => "eni",
        Truth::Aws { .. } => "aws_service",
        Truth::Internet => "internet",
    }
}

fn describe_truth(world: &World, truth: &Truth) -> String {
    match truth {
        Truth::Fleet { segment } => world.describe_holder(&world.segments[*segment]),
        Truth::Aws { service } => format!("AWS {service}"),
        Truth::Internet => "internet".into(),
    }
}

/// Whether the final table answers `side` at `at` as the truth does: the
/// interface (and instance) that held the address, or nobody for an
/// address outside the fleet.
fn table_right(k: &Knowledge<'_>, side: &Side, at: Time) -> bool {
    let world = k.world;
    let vpc = match &side.truth {
        Truth::Fleet { segment } => world.segments[*segment].vpc,
        _ => None,
    };
    let scope = match vpc {
        Some(v) => Scope::Vpc(world.vpcs[v].id.clone()),
        None => Scope::Global,
    };
    let key = AddressKey::new(scope, IpAddr::V4(side.ip));
    let owner = k.table.get(&key).and_then(|t| t.owner_at(UnixTime(at)));
    match (&side.truth, owner) {
        (Truth::Fleet { segment }, Some(o)) => {
            let seg = &world.segments[*segment];
            let instance = seg.instance.map(|i| world.instances[i].id.as_str());
            o.eni_id == world.enis[seg.eni].id && o.instance_id.as_deref() == instance
        }
        (Truth::Fleet { .. }, None) => false,
        (_, owner) => owner.is_none(),
    }
}

/// Why a side was misattributed, in a few words: what went wrong, whether
/// the side was knowable when its flow was processed (an event of the
/// holding delivered, or a reconcile run during it: see the module doc),
/// and whether the table's final history is right (the enricher read it
/// too early) or wrong.
fn cause(world: &World, truth: &Truth, reported: &Reported, knowable: bool, table_right: bool) -> String {
    let what = match truth {
        Truth::Fleet { segment } => {
            let eni = &world.enis[world.segments[*segment].eni].id;
            match reported.attribution.as_str() {
                "internet" | "aws_service" => "holder unknown, taken for someone else",
                _ if reported.eni.as_deref() == Some(eni.as_str()) => "the interface moved to another instance",
                _ => "a previous holder answered",
            }
        }
        Truth::Aws { .. } | Truth::Internet => "a released address still answered its old holder",
    };
    let when = if knowable { "knowable by then" } else { "not knowable yet" };
    let table = if table_right { "the table's history is right" } else { "the table's history is wrong" };
    format!("{what} ({when}; {table})")
}

/// The events behind a misattribution: the holding's start and the end of
/// the holding before it.
fn events_behind(k: &Knowledge<'_>, side: &Side, flow: &Flow) -> Vec<String> {
    let world = k.world;
    let mut segments = Vec::new();
    let vpc = match side.truth {
        Truth::Fleet { segment } => {
            segments.push((segment, true));
            world.segments[segment].vpc
        }
        _ => None,
    };
    if let Some(prev) = world.ended_before(vpc, side.ip, flow.start).last() {
        segments.push((*prev, false));
    }
    let mut out = Vec::new();
    for (s, opened) in segments {
        let seg = &world.segments[s];
        let (events, what) = if opened { (&seg.opened_by, "start") } else { (&seg.closed_by, "end") };
        let holder = world.describe_holder(seg);
        if events.is_empty() {
            out.push(format!("{what} of {holder}'s hold of {}: no event (only a snapshot tells)", side.ip));
        }
        for &e in events {
            let event = &world.events[e];
            let delivered = match k.first_delivery[e] {
                Some(d) => format!("delivered {}", UnixTime(d)),
                None => "never delivered".into(),
            };
            out.push(format!(
                "{} at {} ({what} of {holder}'s hold of {}), {delivered}",
                event.spec.label(),
                UnixTime(event.at),
                side.ip
            ));
        }
    }
    out
}

pub fn score(
    world: &World,
    flows: &[Flow],
    delivered: &Delivered,
    knowledge: &Knowledge<'_>,
    final_prefix: &Path,
) -> Result<Summary, DemoError> {
    let by_id: HashMap<&str, usize> = delivered.flow_ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    let mut seen = vec![false; flows.len()];
    let mut summary = Summary::default();
    let mut pairs: HashMap<(String, String), (u64, u64)> = HashMap::new();
    let mut regions: HashMap<(String, String), (u64, u64)> = HashMap::new();
    let mut cross_az: HashMap<(String, String), (u64, u64)> = HashMap::new();
    let mut cross_region: HashMap<(String, String), (u64, u64)> = HashMap::new();
    let mut timeline: BTreeMap<Time, u64> = BTreeMap::new();
    let mut rows = 0u64;
    for file in parquet_files(final_prefix)? {
        for row in read_rows(&file)? {
            rows += 1;
            let Some(&f) = by_id.get(row.flow_id.as_str()) else {
                return Err(DemoError::Score(format!(
                    "{}: a flow the demo never made: {}",
                    file.display(),
                    row.flow_id
                )));
            };
            if std::mem::replace(&mut seen[f], true) {
                return Err(DemoError::Score(format!("flow {} is in the final Parquet twice", row.flow_id)));
            }
            let flow = &flows[f];
            let processed = delivered.processed_at[f].unwrap_or(Time::MAX);
            for (name, side, reported) in [("src", &flow.src, &row.src), ("dst", &flow.dst, &row.dst)] {
                let v = verdict(world, &side.truth, reported);
                let knowable = knowledge.knowable(side, flow, processed);
                let mut c = Counts::default();
                match v {
                    Verdict::Correct => c.correct = 1,
                    Verdict::Unattributed => c.unattributed = 1,
                    Verdict::Misattributed => c.misattributed = 1,
                }
                c.knowable = u64::from(knowable);
                c.knowable_unattributed = u64::from(knowable && v == Verdict::Unattributed);
                summary.score.add(&c);
                summary.by_side.entry(name.into()).or_default().add(&c);
                summary.by_attribution.entry(reported.attribution.clone()).or_default().add(&c);
                summary.by_truth.entry(truth_kind(world, &side.truth).into()).or_default().add(&c);
                if v == Verdict::Misattributed {
                    let right = table_right(knowledge, side, flow.start);
                    let why = cause(world, &side.truth, reported, knowable, right);
                    *summary.causes.entry(why.clone()).or_default() += 1;
                    *timeline.entry(flow.start - flow.start.rem_euclid(TIMELINE_BUCKET_SECONDS)).or_default() += 1;
                    summary.misattributions.push(Misattribution {
                        flow_time: flow.start,
                        processed_at: processed,
                        side: name.into(),
                        address: side.ip.to_string(),
                        truth: describe_truth(world, &side.truth),
                        reported: reported.describe(),
                        cause: why,
                        events: events_behind(knowledge, side, flow),
                    });
                }
            }
            let bytes = row.bytes.max(0) as u64;
            let key = (row.src.name(), row.dst.name());
            add(&mut pairs, key.clone(), bytes);
            let region = |r: &Reported| r.region.clone().unwrap_or_else(|| r.name());
            add(&mut regions, (region(&row.src), region(&row.dst)), bytes);
            if row.cross_az == Some(true) {
                add(&mut cross_az, key.clone(), bytes);
            }
            if row.cross_region == Some(true) {
                add(&mut cross_region, key, bytes);
            }
        }
    }
    if let Some(missing) = seen.iter().position(|s| !s) {
        let n = seen.iter().filter(|s| !**s).count();
        return Err(DemoError::Score(format!(
            "{n} flows are missing from the final Parquet (first: {})",
            delivered.flow_ids[missing]
        )));
    }
    summary.misattributions.sort_by_key(|m| (m.flow_time, m.side.clone()));
    summary.misattributions.truncate(SAMPLES);
    summary.misattribution_timeline = timeline.into_iter().collect();
    summary.top_pairs = ranked(pairs, TOP_PAIRS);
    summary.regions = ranked(regions, usize::MAX);
    summary.cross_az = ranked(cross_az, TOP_PAIRS);
    summary.cross_region = ranked(cross_region, TOP_PAIRS);
    summary.rate = Rate { flows: flows.len() as u64, rows, ..Rate::default() };
    Ok(summary)
}

fn add(map: &mut HashMap<(String, String), (u64, u64)>, key: (String, String), bytes: u64) {
    let e = map.entry(key).or_default();
    e.0 += 1;
    e.1 += bytes;
}

/// Most bytes first (then by name, so that equal runs print alike).
fn ranked(map: HashMap<(String, String), (u64, u64)>, n: usize) -> Vec<Pair> {
    let mut pairs: Vec<Pair> =
        map.into_iter().map(|((src, dst), (flows, bytes))| Pair { src, dst, flows, bytes }).collect();
    pairs.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| (&a.src, &a.dst).cmp(&(&b.src, &b.dst))));
    pairs.truncate(n);
    pairs
}

/// Every `.parquet` under the final prefix (the hour folders), in order.
fn parquet_files(dir: &Path) -> Result<Vec<PathBuf>, DemoError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "parquet") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

const SIDE_COLUMNS: [&str; 5] = ["attribution", "app", "eni_id", "instance_id", "region"];

fn read_rows(path: &Path) -> Result<Vec<Row>, DemoError> {
    let bad = |e: &dyn std::fmt::Display| DemoError::Score(format!("{}: {e}", path.display()));
    let file = File::open(path)?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| bad(&e))?;
    let mut names: Vec<String> = vec!["flow_id".into(), "bytes".into(), "cross_az".into(), "cross_region".into()];
    for side in ["src", "dst"] {
        names.extend(SIDE_COLUMNS.iter().map(|c| format!("{side}_{c}")));
    }
    let schema = builder.parquet_schema();
    let indices: Vec<usize> = names
        .iter()
        .map(|n| {
            (0..schema.num_columns())
                .find(|&i| schema.column(i).name() == n)
                .ok_or_else(|| bad(&format!("no column {n}")))
        })
        .collect::<Result<_, _>>()?;
    let mask = ProjectionMask::leaves(schema, indices);
    let reader = builder.with_projection(mask).build().map_err(|e| bad(&e))?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| bad(&e))?;
        rows.extend(batch_rows(&batch).map_err(|e| bad(&e))?);
    }
    Ok(rows)
}

fn batch_rows(batch: &RecordBatch) -> Result<Vec<Row>, String> {
    let strings = |name: &str| -> Result<&StringArray, String> {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .ok_or_else(|| format!("{name} is not a string column"))
    };
    let bools = |name: &str| -> Result<&BooleanArray, String> {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<BooleanArray>())
            .ok_or_else(|| format!("{name} is not a boolean column"))
    };
    let text = |a: &StringArray, i: usize| (!a.is_null(i)).then(|| a.value(i).to_owned());
    let flag = |a: &BooleanArray, i: usize| (!a.is_null(i)).then(|| a.value(i));
    let ids = strings("flow_id")?;
    let bytes = batch
        .column_by_name("bytes")
        .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
        .ok_or("bytes is not an INT64 column")?;
    let (caz, creg) = (bools("cross_az")?, bools("cross_region")?);
    let side = |prefix: &str| -> Result<[&StringArray; 5], String> {
        Ok([
            strings(&format!("{prefix}_attribution"))?,
            strings(&format!("{prefix}_app"))?,
            strings(&format!("{prefix}_eni_id"))?,
            strings(&format!("{prefix}_instance_id"))?,
            strings(&format!("{prefix}_region"))?,
        ])
    };
    let (src, dst) = (side("src")?, side("dst")?);
    let reported = |cols: &[&StringArray; 5], i: usize| Reported {
        attribution: text(cols[0], i).unwrap_or_else(|| "unattributed".into()),
        app: text(cols[1], i),
        eni: text(cols[2], i),
        instance: text(cols[3], i),
        region: text(cols[4], i),
    };
    Ok((0..batch.num_rows())
        .map(|i| Row {
            flow_id: ids.value(i).to_owned(),
            bytes: if bytes.is_null(i) { 0 } else { bytes.value(i) },
            src: reported(&src, i),
            dst: reported(&dst, i),
            cross_az: flag(caz, i),
            cross_region: flag(creg, i),
        })
        .collect())
}
