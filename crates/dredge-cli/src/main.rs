//! `dredge`: decode flow logs, manage IP ownership and run the Lambda
//! handlers locally.

mod parse;

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
    /// Decode flow logs (plain or gzip text, or CloudWatch Logs subscription
    /// documents) into JSON lines.
    Parse(parse::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Parse(args) => parse::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("dredge: {e:#}");
            ExitCode::from(2)
        }
    }
}
