//! `dredge invoke FUNCTION --event FILE`: the real Lambda handler on a
//! Lambda event JSON (the file `sam local invoke -e` takes), against the
//! embedded backends under `--state`. Prints the handler's response.
//!
//! `dredge stream read NAME`: the records of an embedded stream, one
//! enriched record per line. `dredge stream decode [FILE...]`: the same for
//! record data as Kinesis hands it to a consumer (any encoding).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Args as ClapArgs, Subcommand};
use dredge_core::ipranges::IpRanges;
use dredge_core::objects::LocalObjects;
use dredge_core::ownership::{MemoryStore, UnixTime};
use dredge_core::retry_queue::MemoryQueue;
use dredge_core::sink::{read_stream, FileStream};
use dredge_core::stream_data::{read_lines, DEFAULT_MAX_LINES_BYTES};
use dredge_enricher::lambda::{handle_any, Invoked};
use dredge_enricher::{Enricher, EnricherConfig, KinesisBatch, RangesSource};
use dredge_lambda::emf::Sink;
use dredge_lambda::kinesis::{event_json, EventRecord};
use dredge_lambda::{Invocation, Reporter, Vars};
use dredge_ownership::handler::FUNCTION;
use dredge_ownership::{FileDescriber, Handler, Reported};
use dredge_writer::lambda::Writer;
use dredge_writer::{Outcome, WriterConfig, WriterEvent};

use crate::ownership::{time_arg, StoreArgs};
use crate::{usage, FAILED};

impl StoreArgs {
    /// `dredge invoke` runs on the embedded backends: a table is a usage error.
    fn embedded(&self) -> anyhow::Result<()> {
        match self.table {
            Some(_) => Err(usage("dredge invoke runs on the embedded backends: drop --table / OWNERSHIP_TABLE")),
            None => Ok(()),
        }
    }
}

/// The embedded enriched stream's name unless `ENRICHED_STREAM` says otherwise.
pub const DEFAULT_ENRICHED_STREAM: &str = "enriched";

#[derive(ClapArgs)]
pub struct InvokeArgs {
    #[command(subcommand)]
    function: Function,
}

#[derive(Subcommand)]
enum Function {
    /// The enricher: a Kinesis event of flow logs, or an SQS event of its
    /// retry queue. Sides the table cannot vouch for yet wait in the
    /// embedded retry queue (`<state>/retry-queue.json`); `dredge invoke
    /// retries` hands back what is due.
    Enricher {
        /// Lambda event JSON (Kinesis or SQS).
        #[arg(long)]
        event: PathBuf,
        /// The time the function runs at (RFC 3339 or Unix seconds;
        /// default now): the retry queue's clock.
        #[arg(long, value_parser = time_arg)]
        now: Option<UnixTime>,
        #[command(flatten)]
        store: StoreArgs,
        /// AWS ip-ranges.json for public addresses (default: `IP_RANGES`
        /// if it names a file; without one, public addresses outside the
        /// table stay unattributed).
        #[arg(long)]
        ip_ranges: Option<PathBuf>,
        /// The enriched stream (embedded) to write to.
        #[arg(long, env = "ENRICHED_STREAM", default_value = DEFAULT_ENRICHED_STREAM)]
        stream: String,
    },
    /// The retry queue's event source: the enricher on every message of
    /// the embedded retry queue that is due at `--now`, ten per invocation.
    Retries {
        #[command(flatten)]
        store: StoreArgs,
        /// The time the queue is read at (RFC 3339 or Unix seconds; default
        /// now).
        #[arg(long, value_parser = time_arg)]
        now: Option<UnixTime>,
        /// AWS ip-ranges.json for public addresses (as for `enricher`).
        #[arg(long)]
        ip_ranges: Option<PathBuf>,
        /// The enriched stream (embedded) to write to.
        #[arg(long, env = "ENRICHED_STREAM", default_value = DEFAULT_ENRICHED_STREAM)]
        stream: String,
    },
    /// The writer: a Kinesis event of enriched records (staged as Parquet),
    /// or `--compact` (the scheduled compaction). Objects land as files
    /// under `<state>/s3/<bucket>/<key>`.
    Writer {
        /// Lambda event JSON (Kinesis, enriched records).
        #[arg(long, required_unless_present = "compact", conflicts_with = "compact")]
        event: Option<PathBuf>,
        /// Compact every hour past its lateness allowance.
        #[arg(long)]
        compact: bool,
        /// The time compaction runs as of (RFC 3339 or Unix seconds;
        /// default now).
        #[arg(long, requires = "compact", value_parser = time_arg)]
        now: Option<UnixTime>,
        /// Directory of the embedded state.
        #[arg(long, default_value = ".dredge", env = "DREDGE_STATE")]
        state: PathBuf,
    },
    /// The ownership function: an EventBridge event (EC2 state change,
    /// CloudTrail call, schedule) or `{"reconcile": true}`.
    Ownership {
        /// Lambda event JSON (EventBridge).
        #[arg(long)]
        event: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
        /// describe-network-interfaces / describe-instances JSON (files or
        /// folders) standing in for EC2 (reconcile, instances back running).
        #[arg(long)]
        describe: Vec<PathBuf>,
    },
}

#[derive(ClapArgs)]
pub struct StreamArgs {
    #[command(subcommand)]
    command: StreamCommand,
}

#[derive(Subcommand)]
enum StreamCommand {
    /// Print every record of an embedded stream, one enriched record per line.
    Read {
        name: String,
        /// Directory of the embedded state.
        #[arg(long, default_value = ".dredge", env = "DREDGE_STATE")]
        state: PathBuf,
    },
    /// Print the records of an embedded stream as the Lambda Kinesis event
    /// a consumer of the real stream gets (one shard, sequence numbers in
    /// stream order): what `dredge invoke writer --event` takes.
    Event {
        name: String,
        /// Directory of the embedded state.
        #[arg(long, default_value = ".dredge", env = "DREDGE_STATE")]
        state: PathBuf,
        /// The shard the records are said to come from.
        #[arg(long, default_value = "shardId-000000000000")]
        shard: String,
        /// The first record's sequence number (later ones count up).
        #[arg(long, default_value_t = 49_600_000_000_000_000_000)]
        first_sequence: u128,
    },
    /// Print the enriched records in the data of one Kinesis record (zstd,
    /// gzip or plain NDJSON, told from its bytes): each FILE's, or standard
    /// input's without one.
    Decode {
        files: Vec<PathBuf>,
        /// Largest decompressed size accepted.
        #[arg(long, default_value_t = DEFAULT_MAX_LINES_BYTES)]
        max_decompressed: usize,
    },
}

pub async fn invoke(args: InvokeArgs) -> anyhow::Result<ExitCode> {
    match args.function {
        Function::Ownership { event, store, describe } => invoke_ownership(event, store, describe).await,
        Function::Writer { event, compact, now, state } => invoke_writer(event, compact, now, &state).await,
        Function::Enricher { event, store, now, ip_ranges, stream } => {
            store.embedded()?;
            let bytes = std::fs::read(&event).with_context(|| event.display().to_string())?;
            let event: serde_json::Value =
                serde_json::from_slice(&bytes).with_context(|| format!("{}: not JSON", event.display()))?;
            let now = now.unwrap_or_else(UnixTime::now);
            let (enricher, queue_dir) = local_enricher(&store, ip_ranges, &stream, now)?;
            let outcome = handle_any(&enricher, event, now).await;
            Reporter::new("enricher", Sink::Stderr).report(&outcome);
            let response = report_outcome(outcome)?;
            save_queue(&enricher, &queue_dir)?;
            println!("{}", serde_json::to_string(&response)?);
            Ok(batch_exit(&response))
        }
        Function::Retries { store, now, ip_ranges, stream } => {
            store.embedded()?;
            let now = now.unwrap_or_else(UnixTime::now);
            let (enricher, queue_dir) = local_enricher(&store, ip_ranges, &stream, now)?;
            let due = enricher.queue().expect("a local enricher has a queue").due();
            let mut failed = Vec::new();
            for chunk in due.chunks(10) {
                let pairs: Vec<(&str, &str)> = chunk.iter().map(|m| (m.message_id.as_str(), m.body.as_str())).collect();
                let event = dredge_lambda::sqs::event_json("retry-queue", &pairs);
                let outcome = handle_any(&enricher, event, now).await;
                Reporter::new("enricher", Sink::Stderr).report(&outcome);
                let response = report_outcome(outcome)?;
                failed.extend(response["batchItemFailures"].as_array().into_iter().flatten().cloned());
            }
            // What failed is handed back again, as SQS would after its
            // visibility timeout.
            let failed_ids: Vec<&str> = failed.iter().filter_map(|f| f["itemIdentifier"].as_str()).collect();
            let again: Vec<_> = due.iter().filter(|m| failed_ids.contains(&m.message_id.as_str())).collect();
            enricher.queue().expect("a local enricher has a queue").put_back(again.into_iter().cloned());
            save_queue(&enricher, &queue_dir)?;
            let response = serde_json::json!({ "messages": due.len(), "batchItemFailures": failed });
            println!("{response}");
            Ok(batch_exit(&response))
        }
    }
}

/// 1 when the response names batch item failures (what Lambda would
/// retry), as a failed invocation of the other functions is.
pub fn batch_exit(response: &serde_json::Value) -> ExitCode {
    match response["batchItemFailures"].as_array() {
        Some(failures) if !failures.is_empty() => ExitCode::from(FAILED),
        _ => ExitCode::SUCCESS,
    }
}

/// The enricher on the embedded backends under `--state`, with its retry
/// queue kept there on a clock set to `now`.
fn local_enricher(
    store: &StoreArgs,
    ip_ranges: Option<PathBuf>,
    stream: &str,
    now: UnixTime,
) -> anyhow::Result<(Enricher<MemoryStore, FileStream, LocalObjects, MemoryQueue>, PathBuf)> {
    let mut config = EnricherConfig::from_env()?;
    let ranges_file = match (ip_ranges, &config.ranges) {
        (Some(path), _) => Some(path),
        (None, RangesSource::File(path)) => Some(PathBuf::from(path)),
        (None, RangesSource::S3 { .. }) => {
            bail!("IP_RANGES names S3, which dredge invoke does not read: pass --ip-ranges FILE")
        }
        (None, RangesSource::Url(_)) => {
            bail!("IP_RANGES names a URL, which dredge invoke does not fetch: pass --ip-ranges FILE")
        }
        (None, RangesSource::None) => None,
    };
    let ranges = match ranges_file {
        Some(path) => {
            let bytes = std::fs::read(&path).with_context(|| path.display().to_string())?;
            Some(Arc::new(IpRanges::from_json(&bytes)?))
        }
        None => None,
    };
    config.ranges = RangesSource::None;
    let state = &store.state;
    let queue = MemoryQueue::open(state).with_context(|| format!("opening the retry queue in {}", state.display()))?;
    queue.set_now(now);
    let enricher = Enricher::new(
        MemoryStore::open(state).with_context(|| format!("opening {}", state.display()))?,
        FileStream::new(state, stream),
        LocalObjects::new(state.join("dead-letter")),
        config,
        store.policy(),
        ranges,
    )
    .with_queue(Some(queue));
    Ok((enricher, state.clone()))
}

/// The response Lambda would get; an unreadable event is an error.
fn report_outcome(outcome: Invoked) -> anyhow::Result<serde_json::Value> {
    match &outcome {
        Invoked::Stream(o) => {
            if let Some(error) = &o.error {
                eprintln!("dredge: enricher: {error}");
            }
        }
        Invoked::Retries(o) => {
            if let Some(error) = &o.error {
                eprintln!("dredge: enricher: {error}");
            }
        }
        Invoked::Unreadable(e) => anyhow::bail!("{e}"),
    }
    outcome.into_response().map_err(|d| anyhow::anyhow!("{}: {}", d.error_type, d.error_message))
}

fn save_queue(
    enricher: &Enricher<MemoryStore, FileStream, LocalObjects, MemoryQueue>,
    dir: &Path,
) -> anyhow::Result<()> {
    let queue = enricher.queue().expect("a local enricher has a queue");
    queue.save().with_context(|| format!("saving the retry queue in {}", dir.display()))
}

/// The data bucket locally unless `DATA_BUCKET` says otherwise.
pub const DEFAULT_DATA_BUCKET: &str = "dredge-data";

async fn invoke_writer(
    event: Option<PathBuf>,
    compact: bool,
    now: Option<UnixTime>,
    state: &Path,
) -> anyhow::Result<ExitCode> {
    let config = WriterConfig::from_vars(&Vars::process(), Some(DEFAULT_DATA_BUCKET))?;
    let data = LocalObjects::new(state.join("s3").join(&config.data_bucket));
    let dead_letter = LocalObjects::new(state.join("s3").join(&config.dead_letter_bucket));
    let writer = Writer::new(data, dead_letter, config);
    let (event, now) = match event {
        Some(path) if !compact => {
            let bytes = std::fs::read(&path).with_context(|| path.display().to_string())?;
            let batch: KinesisBatch =
                serde_json::from_slice(&bytes).with_context(|| format!("{}: not a Kinesis event", path.display()))?;
            (WriterEvent::Kinesis(batch), UnixTime::now())
        }
        _ => (WriterEvent::Compact { compact: true }, now.unwrap_or_else(UnixTime::now)),
    };
    let outcome = writer.handle(&event, now.0).await;
    Reporter::new("writer", Sink::Stderr).report(&outcome);
    let failed = matches!(&outcome, Outcome::Staged { error: Some(_), .. } | Outcome::Compacted { error: Some(_), .. });
    match outcome.into_response() {
        Ok(response) => println!("{response}"),
        Err(e) => println!("{}", serde_json::json!({"errorType": e.error_type, "errorMessage": e.error_message})),
    }
    Ok(if failed { ExitCode::from(FAILED) } else { ExitCode::SUCCESS })
}

async fn invoke_ownership(event: PathBuf, store: StoreArgs, describe: Vec<PathBuf>) -> anyhow::Result<ExitCode> {
    store.embedded()?;
    let bytes = std::fs::read(&event).with_context(|| event.display().to_string())?;
    let payload: serde_json::Value =
        serde_json::from_slice(&bytes).with_context(|| format!("{}: not JSON", event.display()))?;
    let memory = MemoryStore::open(&store.state).with_context(|| format!("opening {}", store.state.display()))?;
    let describer = if describe.is_empty() { FileDescriber::empty() } else { FileDescriber::from_paths(&describe)? };
    let handler =
        Reported::new(Handler::new(&memory, describer, store.policy()), Reporter::new(FUNCTION, Sink::Stderr));
    let result = handler.handle(payload).await;
    memory.save().with_context(|| format!("saving {}", store.state.display()))?;
    match result {
        Ok(summary) => {
            println!("{}", serde_json::to_string(&summary)?);
            Ok(ExitCode::SUCCESS)
        }
        // What Lambda would report as the invocation's error.
        Err(e) => {
            println!("{}", serde_json::json!({"errorType": e.error_type(), "errorMessage": e.to_string()}));
            Ok(ExitCode::from(FAILED))
        }
    }
}

pub fn stream(args: StreamArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        StreamCommand::Read { name, state } => {
            let records = read_stream(&state, &name)?;
            print_records(records.iter().map(|r| (&r.data[..], r.partition_key.as_str())), DEFAULT_MAX_LINES_BYTES)
        }
        StreamCommand::Event { name, state, shard, first_sequence } => {
            let records = read_stream(&state, &name)?;
            let sequences: Vec<String> = (0..records.len()).map(|i| (first_sequence + i as u128).to_string()).collect();
            let entries: Vec<EventRecord<'_>> = records
                .iter()
                .zip(&sequences)
                .map(|(r, sequence)| EventRecord {
                    partition_key: &r.partition_key,
                    sequence_number: sequence,
                    data: &r.data,
                    arrival: 1795000100.0,
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&event_json("dredge-writer", &name, &shard, &entries))?);
            Ok(ExitCode::SUCCESS)
        }
        StreamCommand::Decode { files, max_decompressed } => {
            let inputs = if files.is_empty() {
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut data)?;
                vec![("-".to_owned(), data)]
            } else {
                let read = |f: &PathBuf| std::fs::read(f).map(|d| (f.display().to_string(), d));
                files.iter().map(|f| read(f).with_context(|| f.display().to_string())).collect::<Result<_, _>>()?
            };
            print_records(inputs.iter().map(|(name, data)| (&data[..], name.as_str())), max_decompressed)
        }
    }
}

/// Prints each record's enriched lines, one per line; `name` says which
/// record could not be read.
fn print_records<'a>(records: impl Iterator<Item = (&'a [u8], &'a str)>, max: usize) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (data, name) in records {
        let lines = read_lines(data, max).with_context(|| format!("record {name}"))?;
        for line in lines.iter() {
            out.write_all(line)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
