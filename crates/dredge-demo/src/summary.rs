//! What a demo run found: the score against the simulator's truth and the
//! traffic the pipeline reported. `score.json` and `report.html` are both
//! rendered from a [`Summary`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The misattribution timeline's bucket.
pub const TIMELINE_BUCKET_SECONDS: i64 = 300;

/// Flow sides by how the pipeline's answer compares with the truth.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// The reported owner is the true one (or: internet / the AWS service,
    /// when that is the truth).
    pub correct: u64,
    /// Reported `unattributed`.
    pub unattributed: u64,
    /// Reported an owner that is not the true one.
    pub misattributed: u64,
    /// Sides whose owner the delivered events and snapshots determined when
    /// the enricher processed the flow (see the README's definition).
    pub knowable: u64,
    /// Knowable sides reported `unattributed`.
    pub knowable_unattributed: u64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.correct + self.unattributed + self.misattributed
    }

    pub fn add(&mut self, other: &Counts) {
        self.correct += other.correct;
        self.unattributed += other.unattributed;
        self.misattributed += other.misattributed;
        self.knowable += other.knowable;
        self.knowable_unattributed += other.knowable_unattributed;
    }
}

/// How the run was set up.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Setup {
    pub seed: u64,
    /// Flow-log records generated.
    pub flows: u64,
    /// Instance replacements per instance per hour.
    pub churn: f64,
    /// The delay profile's name.
    pub delays: String,
    /// Simulated time covered, Unix seconds.
    pub start: i64,
    pub end: i64,
    pub accounts: u32,
    pub regions: u32,
    pub vpcs: u32,
    pub apps: u32,
    /// Instances that ran at some point, and ENIs that belong to no instance.
    pub instances: u32,
    pub standalone_enis: u32,
    /// Ownership events generated, delivered (duplicates included) and lost.
    pub events_generated: u64,
    pub events_delivered: u64,
    pub events_lost: u64,
    pub reconciles: u64,
    pub compactions: u64,
}

/// How fast the run went (wall time on this machine).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    /// Flow-log records that went through the enricher.
    pub flows: u64,
    /// Rows in the final Parquet (every flow once).
    pub rows: u64,
    pub elapsed_seconds: f64,
    pub flows_per_second: f64,
}

/// What the enricher did over the run, summed from its batch counters:
/// what the knowledge horizon and the second chance cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Pipeline {
    /// Invocations by the flow-log stream, and by the retry queue.
    pub stream_invocations: u64,
    pub retry_invocations: u64,
    /// Ownership store calls (the embedded store counts one per call).
    pub store_calls: u64,
    /// Heartbeats stored (one conditional UpdateItem each on DynamoDB).
    pub heartbeats_written: u64,
    /// Cached heads read again because they could not vouch for a side.
    pub rereads: u64,
    /// Sides the table could not vouch for when decided, on any try.
    pub not_yet_known: u64,
    /// Flows and messages sent to the retry queue, every try counted.
    pub deferred_flows: u64,
    pub deferred_messages: u64,
    /// Sides decided on a second chance, and sides whose wait ran out.
    pub owner_after_retry: u64,
    pub settled_unattributed: u64,
    /// Flows decided later than first processed, and by how much.
    pub waited_flows: u64,
    pub wait_mean_seconds: f64,
    pub wait_max_seconds: i64,
}

/// Traffic between two reported owners (application names, or
/// `internet`, an AWS service, or `unattributed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pair {
    pub src: String,
    pub dst: String,
    pub flows: u64,
    pub bytes: u64,
}

/// One misattributed side, with what caused it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Misattribution {
    /// The flow's start, Unix seconds.
    pub flow_time: i64,
    /// When the enricher processed it.
    pub processed_at: i64,
    /// `src` or `dst`.
    pub side: String,
    pub address: String,
    /// The true owner and the reported one (`app (eni-…)`, `internet`, …).
    pub truth: String,
    pub reported: String,
    /// A short cause label (see `causes` in [`Summary`]).
    pub cause: String,
    /// The ownership events behind it: what happened and when it reached
    /// the table (or that it never did).
    pub events: Vec<String>,
}

/// Everything a run found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub setup: Setup,
    /// Both sides of every flow.
    pub score: Counts,
    /// `src` and `dst`.
    pub by_side: BTreeMap<String, Counts>,
    /// By the attribution the pipeline reported (`owner`, `owner_after_retry`, `logging_eni`,
    /// `aws_service`, `internet`, `unattributed`).
    pub by_attribution: BTreeMap<String, Counts>,
    /// By what the side truly was (`instance`, `eni`, `aws_service`,
    /// `internet`).
    pub by_truth: BTreeMap<String, Counts>,
    /// Misattributed sides by cause.
    pub causes: BTreeMap<String, u64>,
    pub rate: Rate,
    pub pipeline: Pipeline,
    /// Reported application pairs, most bytes first.
    pub top_pairs: Vec<Pair>,
    /// Bytes by (source region, destination region) of the reported owners;
    /// `src`/`dst` hold regions here.
    pub regions: Vec<Pair>,
    /// Cross-AZ bytes by application pair, most first.
    pub cross_az: Vec<Pair>,
    /// Cross-region bytes by application pair, most first.
    pub cross_region: Vec<Pair>,
    /// Misattributed sides per [`TIMELINE_BUCKET_SECONDS`] of flow time:
    /// (bucket start, count).
    pub misattribution_timeline: Vec<(i64, u64)>,
    /// The first misattributions in flow time (at most a few hundred).
    pub misattributions: Vec<Misattribution>,
}

impl Summary {
    /// `score.json`: the totals as top-level integers (`correct`,
    /// `unattributed`, `misattributed`, `knowable`,
    /// `knowable_unattributed`), the details under other keys.
    pub fn score_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self.score).expect("counts serialize");
        let details = serde_json::json!({
            "total_sides": self.score.total(),
            "setup": self.setup,
            "by_side": self.by_side,
            "by_attribution": self.by_attribution,
            "by_truth": self.by_truth,
            "causes": self.causes,
            "rate": self.rate,
            "pipeline": self.pipeline,
            "misattribution_timeline": self.misattribution_timeline,
            "misattributions": self.misattributions,
        });
        if let (Some(v), serde_json::Value::Object(d)) = (v.as_object_mut(), details) {
            v.extend(d);
        }
        v
    }
}
