//! `dredge`: decode flow logs, manage IP ownership and run the Lambda
//! handlers locally.
//!
//! Exit status: 0 when everything worked; 1 when something failed or was
//! left undone (rejected input, a handler's batch item failures, a
//! replayed message kept, an AWS or file error); 2 for usage errors only
//! (clap's own, and [`Usage`] for what clap cannot check alone).

mod demo;
mod invoke;
mod ownership;
mod parquet;
mod parse;
mod progress;
mod replay;
mod specs;

use std::fmt;
use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "dredge",
    version,
    about = "Application-level insight from AWS VPC flow logs",
    after_help = "Exit status: 0 success; 1 something failed or was left undone (rejected input, batch item \
                  failures, a replay message kept); 2 usage error. Logs go to stderr (RUST_LOG, default `warn`)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The whole pipeline on a simulated fleet with IP churn: every flow
    /// side scored against ground truth, and a report.
    Demo(demo::Args),
    /// Decode flow logs (plain or gzip text, or CloudWatch Logs subscription
    /// documents) into JSON lines.
    Parse(parse::Args),
    /// The time-ranged IP ownership table: apply events, import snapshots,
    /// look owners up, dump intervals.
    Ownership(ownership::Args),
    /// Run a Lambda handler locally on a Lambda event JSON file, against
    /// the embedded backends.
    Invoke(invoke::InvokeArgs),
    /// Embedded streams (what the enricher wrote locally).
    Stream(invoke::StreamArgs),
    /// Replay the batches a Kinesis event source mapping gave up on, from
    /// its on-failure queue, through the deployed function's handler.
    ///
    /// Run it after a failure-queue alarm, before the stream's retention
    /// trims the records the messages point at. Each message's range is
    /// read back from its shard and handed to the enricher or the writer
    /// in-process, on the backends the deployed function's environment
    /// names (set OWNERSHIP_TABLE, ENRICHED_STREAM, DEAD_LETTER_BUCKET, ...
    /// or DATA_BUCKET, ... as the function has them). A message is deleted
    /// only when its whole range was read and handled without batch item
    /// failures; the others are kept. Records may be handled more than
    /// once (part of a batch may have got through before it was given up):
    /// downstream drops duplicates by flow_id.
    Replay(replay::Args),
    /// Convert enriched NDJSON (the enricher's output) to a zstd Parquet file.
    Parquet(parquet::Args),
    /// Print the Druid ingestion spec (JSON) for the Parquet files.
    DruidSpec(specs::DruidArgs),
    /// Print the Athena table (CREATE EXTERNAL TABLE) over the Parquet files.
    AthenaDdl(specs::AthenaArgs),
}

/// Exit status of a usage error, as clap's own.
const USAGE: u8 = 2;
/// Exit status of a failure met while running, or of input rejected.
const FAILED: u8 = 1;

/// A mistake in how dredge was called that clap cannot see alone (options
/// that only conflict in combination, a value valid only with another):
/// exits 2, like clap's own usage errors, before anything is done.
#[derive(Debug)]
pub struct Usage(pub String);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// A [`Usage`] error.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Usage(message.into()).into()
}

/// Plain-text logs on stderr, filtered by `RUST_LOG` (default `warn`: the
/// libraries' warnings show, their progress chatter does not). Standard
/// output carries only what a command prints. The Lambda entry's JSON logs
/// (`dredge_lambda::start`) are for Lambda: the CLI never installs them,
/// and the shared `Reporter` only emits events into this subscriber.
fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_writer(|| {
            progress::clear_line();
            std::io::stderr()
        })
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .with_env_filter(filter)
        .init();
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Demo(args) => runtime().and_then(|rt| rt.block_on(demo::run_demo(args))),
        Command::Parse(args) => parse::run(args),
        Command::Ownership(args) => runtime().and_then(|rt| rt.block_on(ownership::run(args))),
        Command::Invoke(args) => runtime().and_then(|rt| rt.block_on(invoke::invoke(args))),
        Command::Stream(args) => invoke::stream(args),
        Command::Replay(args) => runtime().and_then(|rt| rt.block_on(replay::run(args))),
        Command::Parquet(args) => parquet::run(args),
        Command::DruidSpec(args) => specs::druid(args),
        Command::AthenaDdl(args) => specs::athena(args),
    };
    match result {
        Ok(code) => code,
        // `dredge ... | head` closes the pipe early: not an error.
        Err(e) if e.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            progress::clear_line();
            eprintln!("dredge: {e:#}");
            ExitCode::from(if e.is::<Usage>() { USAGE } else { FAILED })
        }
    }
}
