//! Compaction: each hour that closed more than the lateness allowance ago
//! and has staged objects is merged into final objects of a target size,
//! every flow once.
//!
//! Per hour, in an order that any crash leaves completable:
//! 1. read the manifest (the commit point);
//! 2. remove final objects the manifest does not list (leftovers of a run
//!    that died before its manifest: their flows are still staged);
//! 3. read the `flow_id`s of the hour's final objects;
//! 4. stream the staged objects, dropping flows already seen, into new
//!    final objects (multipart uploads, closed at the target size). An hour
//!    that may hold more ids than a pass may keep is done in several
//!    passes of 3 and 4, each over one hash range of the ids;
//! 5. write the manifest with the new objects;
//! 6. delete the staged objects merged.
//!
//! A run that dies after 5 leaves staged objects whose flows are all final:
//! the next run drops them as repeats and deletes them. Runs of one
//! deployment must not overlap (the template schedules them far apart and
//! caps the function's concurrency for them: see README).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{Array, BooleanArray, RecordBatch, StringArray};
use arrow_schema::SchemaRef;
use bytes::Bytes;
use dredge_columnar::arrow_schema;
use dredge_core::enrich::SCHEMA_VERSION;
use dredge_core::objects::{Listed, MultipartUpload, ObjectListing};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use serde::Serialize;

use crate::error::WriteError;
use crate::final_object::{FinalObjects, Sizes};
use crate::flow_ids::{Fingerprint, FlowIds};
use crate::layout::{Hour, Layout};
use crate::manifest::Manifest;

/// The column compaction deduplicates by.
pub const FLOW_ID: &str = "flow_id";

/// How compaction runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactOptions {
    /// An hour is compacted once this long after its end (seconds):
    /// `COMPACT_LATENESS`.
    pub lateness_seconds: i64,
    pub sizes: Sizes,
    /// The most flow ids one pass holds (`COMPACT_MAX_FLOW_IDS`; about 32
    /// bytes each). An hour that may hold more is compacted in several
    /// passes, each over one hash range of the ids, so memory is bounded
    /// whatever the hour's size; each pass reads the staged objects again.
    pub max_flow_ids: u64,
}

impl Default for CompactOptions {
    fn default() -> Self {
        // 40 million ids: about 1.3 GB, inside the template's 2048 MB.
        CompactOptions { lateness_seconds: 15 * 60, sizes: Sizes::default(), max_flow_ids: 40_000_000 }
    }
}

/// Staged Parquet bytes per row assumed when sizing passes: fewer than
/// any enriched row takes (about 10 to 50 here), so that the count of rows
/// is overestimated, never under.
const MIN_STAGED_BYTES_PER_ROW: u64 = 8;

/// What one compaction run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CompactStats {
    pub hours_compacted: u64,
    pub staged_objects: u64,
    pub rows_read: u64,
    pub rows_written: u64,
    pub duplicates_dropped: u64,
    pub objects_written: u64,
    pub bytes_written: u64,
    /// Passes over the staged objects, all hours together (one per hour
    /// unless an hour holds more ids than a pass may keep).
    pub passes: u64,
    /// Final objects of runs that died, removed.
    pub leftovers_removed: u64,
    /// Staged keys that name no hour (not the writer's).
    pub foreign_keys: u64,
    /// How far past its allowance the oldest hour still staged is
    /// (seconds; 0 when none is due).
    pub lag_seconds: i64,
}

/// Compacts every due hour as of `now` (epoch seconds). Stops at the first
/// hour that fails, after the hours before it are done.
pub async fn compact<S: ObjectListing + MultipartUpload>(
    store: &S,
    layout: &Layout,
    options: &CompactOptions,
    now: i64,
) -> (CompactStats, Result<(), WriteError>) {
    let mut stats = CompactStats::default();
    let result = compact_due(store, layout, options, now, &mut stats).await;
    (stats, result)
}

async fn compact_due<S: ObjectListing + MultipartUpload>(
    store: &S,
    layout: &Layout,
    options: &CompactOptions,
    now: i64,
    stats: &mut CompactStats,
) -> Result<(), WriteError> {
    let mut hours: BTreeMap<Hour, Vec<Listed>> = BTreeMap::new();
    for listed in store.list(&layout.staging_root()).await? {
        match Hour::in_key(&listed.key) {
            Some(hour) => hours.entry(hour).or_default().push(listed),
            None => stats.foreign_keys += 1,
        }
    }
    let due = |hour: &Hour| hour.end() + options.lateness_seconds <= now;
    let lag = |hours: &BTreeMap<Hour, Vec<Listed>>| {
        hours.keys().next().map_or(0, |h| (now - h.end() - options.lateness_seconds).max(0))
    };
    stats.lag_seconds = lag(&hours);
    let due_hours: Vec<Hour> = hours.keys().copied().filter(due).collect();
    for hour in due_hours {
        let staged = hours.remove(&hour).expect("listed");
        compact_hour(store, layout, options, now, hour, &staged, stats).await?;
        stats.hours_compacted += 1;
        stats.lag_seconds = lag(&hours);
    }
    Ok(())
}

async fn compact_hour<S: ObjectListing + MultipartUpload>(
    store: &S,
    layout: &Layout,
    options: &CompactOptions,
    now: i64,
    hour: Hour,
    staged: &[Listed],
    stats: &mut CompactStats,
) -> Result<(), WriteError> {
    let manifest_key = layout.manifest(hour);
    // Whether the manifest exists comes from the listing (S3 lists are
    // strongly consistent): a failed read of one that exists is an error,
    // never "no manifest", which would take the hour's objects for
    // leftovers.
    let finals = store.list(&layout.final_dir(hour)).await?;
    let mut manifest = if finals.iter().any(|l| l.key == manifest_key) {
        let body = store.get(&manifest_key).await?;
        serde_json::from_slice(&body)
            .map_err(|e| WriteError::BadObject { key: manifest_key.clone(), reason: e.to_string() })?
    } else {
        Manifest { schema_version: SCHEMA_VERSION, partition: hour.partition(), ..Manifest::default() }
    };
    for listed in finals {
        if listed.key != manifest_key && !manifest.contains(&listed.key) {
            tracing::warn!(key = %listed.key, "removing a final object no manifest lists (a run died)");
            store.delete(&listed.key).await?;
            stats.leftovers_removed += 1;
        }
    }
    let staged_bytes: u64 = staged.iter().map(|l| l.size).sum();
    let most_ids = manifest.rows + staged_bytes / MIN_STAGED_BYTES_PER_ROW;
    let passes = most_ids.div_ceil(options.max_flow_ids.max(1)).max(1);
    let schema = arrow_schema();
    let mut out = FinalObjects::new(store, layout, hour, now, manifest.objects.len(), options.sizes);
    let mut flows = 0;
    for pass in 0..passes {
        let range = Range { pass, passes };
        let merged = merge_range(store, &manifest, staged, range, &schema, &mut out, stats).await;
        match merged {
            Ok(n) => flows += n,
            Err(e) => {
                out.abort().await;
                return Err(e);
            }
        }
    }
    stats.staged_objects += staged.len() as u64;
    stats.passes += passes;
    let written = out.finish().await?;
    for object in written {
        stats.objects_written += 1;
        stats.rows_written += object.rows;
        stats.bytes_written += object.bytes;
        manifest.add(object);
    }
    manifest.schema_version = SCHEMA_VERSION;
    manifest.updated_at = now;
    let body = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
    store.put(&manifest_key, body).await?;
    for listed in staged {
        store.delete(&listed.key).await?;
    }
    tracing::info!(hour = %hour, flows, passes, objects = manifest.objects.len(), "hour compacted");
    Ok(())
}

/// One pass: the flow ids of `range` in the final objects, then the
/// staged rows of `range` not among them. Returns the distinct flows of
/// the range now final.
async fn merge_range<S: ObjectListing + MultipartUpload>(
    store: &S,
    manifest: &Manifest,
    staged: &[Listed],
    range: Range,
    schema: &SchemaRef,
    out: &mut FinalObjects<'_, S>,
    stats: &mut CompactStats,
) -> Result<usize, WriteError> {
    let mut ids = FlowIds::default();
    for object in &manifest.objects {
        let body = Bytes::from(store.get(&object.key).await?);
        for batch in read(&object.key, body, true)? {
            let batch = batch?;
            for id in flow_ids(&object.key, &batch)?.iter().flatten().map(Fingerprint::of) {
                if range.holds(Some(id)) {
                    ids.insert(id);
                }
            }
        }
    }
    for listed in staged {
        merge(store, &listed.key, schema, range, &mut ids, out, stats).await?;
    }
    Ok(ids.len())
}

/// One of `passes` hash ranges of flow ids.
#[derive(Debug, Clone, Copy)]
struct Range {
    pass: u64,
    passes: u64,
}

impl Range {
    /// Whether a row with this id belongs to the pass; rows without an id
    /// go with the first.
    fn holds(self, id: Option<Fingerprint>) -> bool {
        match id {
            _ if self.passes == 1 => true,
            Some(id) => id.range(self.passes) == self.pass,
            None => self.pass == 0,
        }
    }
}

/// Streams one staged object into the final objects, dropping repeats.
async fn merge<S: MultipartUpload>(
    store: &S,
    key: &str,
    schema: &SchemaRef,
    range: Range,
    ids: &mut FlowIds,
    out: &mut FinalObjects<'_, S>,
    stats: &mut CompactStats,
) -> Result<(), WriteError> {
    let body = Bytes::from(store.get(key).await?);
    for batch in read(key, body, false)? {
        let batch = conform(key, batch?, schema)?;
        let (mut in_range, mut kept_rows) = (0, 0);
        let keep: BooleanArray = flow_ids(key, &batch)?
            .iter()
            .map(|id| {
                let id = id.map(Fingerprint::of);
                if !range.holds(id) {
                    return Some(false);
                }
                in_range += 1;
                // A row without an id cannot repeat one: it is kept.
                let keep = id.is_none_or(|id| ids.insert(id));
                kept_rows += usize::from(keep);
                Some(keep)
            })
            .collect();
        stats.rows_read += in_range as u64;
        stats.duplicates_dropped += (in_range - kept_rows) as u64;
        if kept_rows > 0 {
            out.write(&arrow_select::filter::filter_record_batch(&batch, &keep)?).await?;
        }
    }
    Ok(())
}

/// The record batches of a Parquet object; only `flow_id` if `ids_only`.
fn read(
    key: &str,
    body: Bytes,
    ids_only: bool,
) -> Result<impl Iterator<Item = Result<RecordBatch, arrow_schema::ArrowError>>, WriteError> {
    let bad = |e: parquet::errors::ParquetError| WriteError::BadObject { key: key.to_owned(), reason: e.to_string() };
    let builder = ParquetRecordBatchReaderBuilder::try_new(body).map_err(bad)?.with_batch_size(8192);
    let builder = if ids_only {
        let fields = builder.parquet_schema().columns().iter().position(|c| c.name() == FLOW_ID);
        let Some(index) = fields else {
            return Err(WriteError::BadObject { key: key.to_owned(), reason: format!("no `{FLOW_ID}` column") });
        };
        let mask = ProjectionMask::leaves(builder.parquet_schema(), [index]);
        builder.with_projection(mask)
    } else {
        builder
    };
    builder.build().map_err(bad)
}

/// The `flow_id` column of a batch.
fn flow_ids<'b>(key: &str, batch: &'b RecordBatch) -> Result<&'b StringArray, WriteError> {
    batch
        .column_by_name(FLOW_ID)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| WriteError::BadObject { key: key.to_owned(), reason: format!("no `{FLOW_ID}` string column") })
}

/// A staged batch in the current schema: columns by name, null where an
/// older schema version lacked them (columns are only ever added).
fn conform(key: &str, batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, WriteError> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch);
    }
    let rows = batch.num_rows();
    let mut columns = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        match batch.column_by_name(field.name()) {
            Some(c) if c.data_type() == field.data_type() => columns.push(c.clone()),
            Some(c) => {
                return Err(WriteError::BadObject {
                    key: key.to_owned(),
                    reason: format!("column `{}` is {}, not {}", field.name(), c.data_type(), field.data_type()),
                })
            }
            None => columns.push(arrow_array::new_null_array(field.data_type(), rows)),
        }
    }
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}
