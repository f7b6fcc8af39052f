//! `dredge`: decode flow logs, manage IP ownership and run the Lambda
//! handlers locally.

mod demo;
mod invoke;
mod ownership;
mod parquet;
mod parse;
mod specs;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "dredge", version, about = "Application-level insight from AWS VPC flow logs")]
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
    /// Convert enriched NDJSON (the enricher's output) to a zstd Parquet file.
    Parquet(parquet::Args),
    /// Print the Druid ingestion spec (JSON) for the Parquet files.
    DruidSpec(specs::DruidArgs),
    /// Print the Athena table (CREATE EXTERNAL TABLE) over the Parquet files.
    AthenaDdl(specs::AthenaArgs),
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => runtime().and_then(|rt| rt.block_on(demo::run_demo(args))),
        Command::Parse(args) => parse::run(args),
        Command::Ownership(args) => runtime().and_then(|rt| rt.block_on(ownership::run(args))),
        Command::Invoke(args) => runtime().and_then(|rt| rt.block_on(invoke::invoke(args))),
        Command::Stream(args) => invoke::stream(args),
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
            eprintln!("dredge: {e:#}");
            ExitCode::from(2)
        }
    }
}
