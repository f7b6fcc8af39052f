//! `dredge replay --queue URL`: the batches a Kinesis event source mapping
//! gave up on are named, not held, by the on-failure records in its
//! destination queue. Each record's range is read back from its shard,
//! made into the Lambda event the function got (`event_json`, as Lambda
//! writes it) and handed to the function's handler in-process, on the
//! deployed backends. A message is deleted only when its whole range was
//! read and handled without batch item failures; any other is kept, and
//! made visible again for the next run.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use aws_config::SdkConfig;
use clap::{Args as ClapArgs, ValueEnum};
use dredge_aws::replay::{reread, FailureQueue, QueuedMessage, Reread, RereadError, ShardRange};
use dredge_core::ownership::UnixTime;
use dredge_enricher::deployed::{self as enricher_deployed, DeployedEnricher};
use dredge_lambda::emf::Sink;
use dredge_lambda::failure_destination::KinesisFailure;
use dredge_lambda::kinesis::{event_json, EventRecord, KinesisBatch};
use dredge_lambda::Reporter;
use dredge_writer::deployed::{self as writer_deployed, DeployedWriter};
use dredge_writer::{Outcome, WriterEvent};
use serde_json::json;

use crate::FAILED;

#[derive(ClapArgs)]
pub struct Args {
    /// URL of the on-failure queue: the stack's `EnricherFailureQueueUrl`
    /// or `WriterFailureQueueUrl` output.
    #[arg(long)]
    queue: String,
    /// The function whose handler runs. Default: the one each message's
    /// `functionArn` names (its name holds `enricher` or `writer`).
    #[arg(long, value_enum)]
    function: Option<Function>,
    /// Handle at most this many messages.
    #[arg(long)]
    max_messages: Option<u64>,
    /// Read each message's range back and count what the stream still
    /// holds: run no handler, delete nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Function {
    Enricher,
    Writer,
}

impl Function {
    fn name(self) -> &'static str {
        match self {
            Function::Enricher => "enricher",
            Function::Writer => "writer",
        }
    }

    /// The function a deployed function's name says it is (`dredge-
    /// EnricherFunction-1A2B3C`), if it says one.
    fn named_by(function_name: &str) -> Option<Function> {
        let name = function_name.to_ascii_lowercase();
        match (name.contains("enricher"), name.contains("writer")) {
            (true, false) => Some(Function::Enricher),
            (false, true) => Some(Function::Writer),
            _ => None,
        }
    }
}

/// How long a received message stays hidden from other readers: a range
/// is at most one batch, read and handled well within Lambda's own 15
/// minute limit.
const HIDDEN: Duration = Duration::from_secs(900);

/// How long a receive waits for a message before the queue counts as
/// drained (SQS long polling: it returns as soon as there is one).
const WAIT: Duration = Duration::from_secs(2);

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let sdk = dredge_lambda::entry::sdk_config().await;
    let queue = FailureQueue::new(aws_sdk_sqs::Client::new(&sdk), &args.queue);
    let mut replay = Replay {
        kinesis: aws_sdk_kinesis::Client::new(&sdk),
        handlers: Handlers { sdk: &sdk, enricher: None, writer: None },
        function: args.function,
        dry_run: args.dry_run,
    };
    let limit = args.max_messages.unwrap_or(u64::MAX);
    let mut tally = Tally::default();
    let mut kept = Vec::new();
    let drained: anyhow::Result<()> = async {
        while tally.messages < limit {
            let want = (limit - tally.messages).min(10) as i32;
            let messages = queue.receive(want, HIDDEN, WAIT).await?;
            if messages.is_empty() {
                return Ok(());
            }
            let mut messages = messages.into_iter();
            while let Some(message) = messages.next() {
                tally.messages += 1;
                let done = match replay.one(&message).await {
                    Ok(done) => done,
                    Err(e) => {
                        // This one and the rest of the receive go back too.
                        kept.push(message);
                        kept.extend(messages);
                        return Err(e);
                    }
                };
                tally.count(&done);
                if done.delete {
                    if let Err(e) = queue.delete(&message).await {
                        // Replayed but still queued: it comes back after its
                        // visibility timeout and is replayed again (repeats
                        // are dropped downstream by flow_id).
                        tracing::warn!(message_id = %message.message_id, error = %e, "replayed, but could not delete the message");
                        tally.undeleted += 1;
                    }
                }
                let printed = writeln!(std::io::stdout().lock(), "{}", done.json);
                if !done.delete {
                    kept.push(message);
                }
                if let Err(e) = printed {
                    kept.extend(messages);
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }
    .await;
    // Kept messages are visible again at once, for the next run.
    for message in &kept {
        if let Err(e) = queue.release(message).await {
            tracing::warn!(message_id = %message.message_id, error = %e, "could not make a kept message visible again");
        }
    }
    drained?;
    eprintln!("{}", tally.summary(args.dry_run));
    Ok(if tally.kept + tally.undeleted > 0 { ExitCode::from(FAILED) } else { ExitCode::SUCCESS })
}

/// What the command needs for every message.
struct Replay<'a> {
    kinesis: aws_sdk_kinesis::Client,
    handlers: Handlers<'a>,
    function: Option<Function>,
    dry_run: bool,
}

/// What became of one message: its line on stdout, and whether to delete it.
struct Done {
    json: serde_json::Value,
    delete: bool,
    read: u64,
    lost: u64,
}

impl Replay<'_> {
    /// Reads one message's range back and, unless a dry run, replays it.
    /// An error is the command's (configuration, the handler's backends
    /// unbuildable); the message's own troubles are a kept [`Done`].
    async fn one(&mut self, message: &QueuedMessage) -> anyhow::Result<Done> {
        let id = &message.message_id;
        let record = match KinesisFailure::from_json(&message.body) {
            Ok(record) => record,
            Err(e) => return Ok(Done::kept(json!({"message_id": id}), 0, 0, e.to_string())),
        };
        let batch = &record.batch;
        let mut line = json!({
            "message_id": id,
            "function_arn": record.request_context.function_arn,
            "condition": record.request_context.condition,
            "stream_arn": batch.stream_arn,
            "shard_id": batch.shard_id,
            "start": batch.start_sequence_number,
            "end": batch.end_sequence_number,
            "batch_size": batch.batch_size,
        });
        let function = match self.function(&record) {
            Ok(function) => function,
            Err(reason) => return Ok(Done::kept(line, 0, 0, reason)),
        };
        line["function"] = function.name().into();
        let range = ShardRange {
            stream_arn: &batch.stream_arn,
            shard_id: &batch.shard_id,
            start: &batch.start_sequence_number,
            end: &batch.end_sequence_number,
            batch_size: batch.batch_size,
        };
        let read = match reread(&self.kinesis, &range).await {
            Ok(read) => read,
            Err(e @ RereadError::Refused(_)) => {
                let lost = batch.batch_size;
                line["read"] = 0.into();
                line["lost"] = lost.into();
                return Ok(Done::kept(line, 0, lost, format!("{e}: all {lost} records lost")));
            }
            Err(RereadError::Failed(e)) => return Ok(Done::kept(line, 0, 0, format!("reading the range: {e}"))),
        };
        let count = read.records.len() as u64;
        // Records before the first one still held are gone; how many, only
        // the batch's size says.
        let lost = if read.from_start { 0 } else { batch.batch_size.saturating_sub(count) };
        line["read"] = count.into();
        line["lost"] = lost.into();
        let missing = missing(&read, lost);
        if self.dry_run {
            return Ok(match missing {
                Some(reason) => Done::kept(line, count, lost, reason),
                None => Done { json: with_outcome(line, "counted", None), delete: false, read: count, lost },
            });
        }
        // What is left of a trimmed range is replayed too: it is next to go.
        let failed = if read.records.is_empty() { None } else { self.handlers.run(function, &record, &read).await? };
        Ok(match (missing, failed) {
            (None, None) => Done { json: with_outcome(line, "replayed", None), delete: true, read: count, lost },
            (Some(reason), None) | (None, Some(reason)) => Done::kept(line, count, lost, reason),
            (Some(missing), Some(failed)) => Done::kept(line, count, lost, format!("{missing}; {failed}")),
        })
    }

    /// The function to run: `--function`, unless the message names the
    /// other one (its records would be the wrong kind), else the one the
    /// message names.
    fn function(&self, record: &KinesisFailure) -> Result<Function, String> {
        let named = Function::named_by(record.function_name());
        match (self.function, named) {
            (Some(chosen), Some(named)) if chosen != named => Err(format!(
                "functionArn {} names the {}, not the {} (--function)",
                record.request_context.function_arn,
                named.name(),
                chosen.name()
            )),
            (Some(chosen), _) => Ok(chosen),
            (None, Some(named)) => Ok(named),
            (None, None) => Err(format!(
                "functionArn {} names neither the enricher nor the writer: pass --function",
                record.request_context.function_arn
            )),
        }
    }
}

/// Why a range read back is not the whole batch, if it is not.
fn missing(read: &Reread, lost: u64) -> Option<String> {
    if !read.from_start {
        Some(format!(
            "the stream no longer holds the range's start (retention trimmed it): {lost} records lost, {} still held",
            read.records.len()
        ))
    } else if !read.to_end {
        Some(format!("the range's end is not in the shard; {} records read", read.records.len()))
    } else {
        None
    }
}

impl Done {
    fn kept(line: serde_json::Value, read: u64, lost: u64, reason: String) -> Done {
        Done { json: with_outcome(line, "kept", Some(reason)), delete: false, read, lost }
    }
}

fn with_outcome(mut line: serde_json::Value, outcome: &str, reason: Option<String>) -> serde_json::Value {
    line["outcome"] = outcome.into();
    if let Some(reason) = reason {
        line["reason"] = reason.into();
    }
    line
}

/// The deployed handlers, each built when a message first needs it (the
/// enricher loads `IP_RANGES` once, as a container does). Each batch is
/// reported as Lambda reports it, its log line through `RUST_LOG` (`info`
/// shows its counts); no metrics: a replay is not the function's traffic.
struct Handlers<'a> {
    sdk: &'a SdkConfig,
    enricher: Option<DeployedEnricher>,
    writer: Option<DeployedWriter>,
}

impl Handlers<'_> {
    /// Runs `function` on the records read back, as the Kinesis event
    /// Lambda sent it; the failure it reports, if any.
    async fn run(
        &mut self,
        function: Function,
        record: &KinesisFailure,
        read: &Reread,
    ) -> anyhow::Result<Option<String>> {
        let records: Vec<EventRecord<'_>> = read
            .records
            .iter()
            .map(|r| EventRecord {
                partition_key: &r.partition_key,
                sequence_number: &r.sequence_number,
                data: &r.data,
                arrival: r.arrival,
            })
            .collect();
        let event = event_json(record.function_name(), record.batch.stream_name(), &record.batch.shard_id, &records);
        let batch: KinesisBatch = serde_json::from_value(event)?;
        let failure = |retry_from: &Option<String>, error: &Option<String>| {
            retry_from.as_ref().map(|seq| {
                format!(
                    "the {} failed from sequence number {seq}: {}",
                    function.name(),
                    error.as_deref().unwrap_or("-")
                )
            })
        };
        Ok(match function {
            Function::Enricher => {
                let enricher = match &mut self.enricher {
                    Some(enricher) => enricher,
                    slot => {
                        slot.insert(enricher_deployed::enricher(self.sdk).await.context("the enricher's environment")?)
                    }
                };
                let (_, outcome) = dredge_enricher::lambda::handle(enricher, &batch, UnixTime::now()).await;
                Reporter::new(function.name(), Sink::Off).report(&outcome);
                failure(&outcome.retry_from, &outcome.error)
            }
            Function::Writer => {
                let writer = match &mut self.writer {
                    Some(writer) => writer,
                    slot => slot.insert(writer_deployed::writer(self.sdk).context("the writer's environment")?),
                };
                let outcome = writer.handle(&WriterEvent::Kinesis(batch), UnixTime::now().0).await;
                Reporter::new(function.name(), Sink::Off).report(&outcome);
                match &outcome {
                    Outcome::Staged { retry_from, error, .. } => failure(retry_from, error),
                    // Not what a Kinesis event gives.
                    Outcome::Compacted { .. } | Outcome::Nothing => None,
                }
            }
        })
    }
}

/// Totals over the run, for its last line on stderr.
#[derive(Default)]
struct Tally {
    messages: u64,
    done: u64,
    kept: u64,
    read: u64,
    lost: u64,
    /// Replayed, but the delete failed: the message will come back.
    undeleted: u64,
}

impl Tally {
    fn count(&mut self, done: &Done) {
        if done.json["outcome"] == "kept" {
            self.kept += 1;
        } else {
            self.done += 1;
        }
        self.read += done.read;
        self.lost += done.lost;
    }

    fn summary(&self, dry_run: bool) -> String {
        let done = if dry_run { "whole and readable" } else { "replayed and deleted" };
        let messages = if self.messages == 1 { "message" } else { "messages" };
        let undeleted = match self.undeleted {
            0 => String::new(),
            n => format!(" ({n} replayed but not deleted: they will come back)"),
        };
        format!(
            "dredge replay: {} {messages}: {} {done}{undeleted}, {} kept; {} records read back, {} lost",
            self.messages, self.done, self.kept, self.read, self.lost
        )
    }
}
