//! `dredge ownership`: the IP ownership table, on the embedded store
//! (`--state DIR`) or on DynamoDB (`--table NAME`).

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args as ClapArgs, Subcommand};
use dredge_core::ownership::{
    AddressKey, Applier, MemoryStore, OwnershipStore, Scope, SnapshotScope, TagPolicy, UnixTime,
};
use dredge_ownership::{Disposition, FileDescriber, Handler, Snapshot};
use serde_json::json;

#[derive(ClapArgs)]
pub struct Args {
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(ClapArgs, Clone)]
pub struct StoreArgs {
    /// Directory of the embedded store.
    #[arg(long, global = true, default_value = ".dredge", env = "DREDGE_STATE")]
    pub state: PathBuf,
    /// Use this DynamoDB table instead of the embedded store (endpoint and
    /// credentials from the standard AWS environment).
    #[arg(long, global = true, env = "OWNERSHIP_TABLE")]
    pub table: Option<String>,
    /// Tags kept on owners (comma-separated keys).
    #[arg(long, global = true, default_value = TagPolicy::DEFAULT_TAGS, env = "DREDGE_TAGS")]
    pub tags: String,
    /// Tag that names the app when there is no auto scaling group.
    #[arg(long, global = true, default_value = TagPolicy::DEFAULT_APP_TAG, env = "DREDGE_APP_TAG")]
    pub app_tag: String,
}

impl StoreArgs {
    pub fn policy(&self) -> TagPolicy {
        TagPolicy::from_keys(&self.tags, Some(&self.app_tag))
    }
}

#[derive(Subcommand)]
enum Command {
    /// Apply EventBridge event JSON files (one event, or an array of events,
    /// per file) through the ownership Lambda's logic.
    Apply {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// describe-network-interfaces / describe-instances JSON (files or
        /// folders) standing in for EC2 when an instance comes back running
        /// and the table knows none of its ENIs.
        #[arg(long)]
        describe: Vec<PathBuf>,
    },
    /// Reconcile from `aws ec2 describe-network-interfaces` (and
    /// `describe-instances`, for ASG tags) JSON output.
    Import {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// When the snapshot was taken (RFC 3339 or Unix seconds; default now).
        #[arg(long)]
        at: Option<String>,
        /// Only close owners of this account (default: any).
        #[arg(long)]
        account: Option<String>,
        /// Only close owners in this region (default: any).
        #[arg(long)]
        region: Option<String>,
    },
    /// The owner of ADDRESS at a time, as JSON, or `null`.
    Lookup {
        address: IpAddr,
        /// RFC 3339 or Unix seconds; default now.
        #[arg(long)]
        at: Option<String>,
        /// `vpc-...` (required for private addresses) or `global`.
        #[arg(long)]
        scope: Option<Scope>,
    },
    /// Every interval as JSON lines.
    Dump,
    /// Create the DynamoDB table named by --table (keys, index, TTL), as the
    /// SAM template does; for local DynamoDB-compatible endpoints.
    CreateTable,
}

pub(crate) fn parse_time(t: Option<&str>) -> anyhow::Result<UnixTime> {
    Ok(match t {
        Some(s) => UnixTime::parse_any(s)?,
        None => UnixTime::now(),
    })
}

pub async fn run(args: Args) -> anyhow::Result<std::process::ExitCode> {
    let policy = args.store.policy();
    if let Some(table) = &args.store.table {
        let sdk = dredge_lambda::entry::sdk_config().await;
        let client = aws_sdk_dynamodb::Client::new(&sdk);
        if let Command::CreateTable = args.command {
            dredge_aws::create_table(&client, table).await?;
            println!("{}", json!({"created": table}));
            return Ok(std::process::ExitCode::SUCCESS);
        }
        let store = dredge_aws::DynamoOwnershipStore::new(client, table.clone());
        return run_on(&store, policy, args.command).await;
    }
    if let Command::CreateTable = args.command {
        bail!("create-table needs --table NAME");
    }
    let store = MemoryStore::open(&args.store.state)
        .with_context(|| format!("opening the embedded store in {}", args.store.state.display()))?;
    let code = run_on(&store, policy, args.command).await?;
    store.save().with_context(|| format!("saving {}", args.store.state.display()))?;
    Ok(code)
}

async fn run_on<S: OwnershipStore>(
    store: &S,
    policy: TagPolicy,
    command: Command,
) -> anyhow::Result<std::process::ExitCode> {
    let mut failed = false;
    match command {
        Command::Apply { files, describe } => {
            let describer =
                if describe.is_empty() { FileDescriber::empty() } else { FileDescriber::from_paths(&describe)? };
            // The Lambda's own handler, on this store; unreported (no
            // metrics) locally.
            let handler = Handler::new(store, describer, policy);
            for file in files {
                let bytes = std::fs::read(&file).with_context(|| file.display().to_string())?;
                let doc: serde_json::Value = match serde_json::from_slice(&bytes) {
                    Ok(v) => v,
                    Err(e) => {
                        eprintln!("{}: not JSON: {e}", file.display());
                        failed = true;
                        continue;
                    }
                };
                let events = match doc {
                    serde_json::Value::Array(events) => events,
                    one => vec![one],
                };
                for event in events {
                    let summary = handler.handle(event).await?;
                    if matches!(summary.result, Disposition::Invalid | Disposition::Failed) {
                        failed = true;
                    }
                    println!("{}", json!({"file": file, "summary": summary}));
                }
            }
        }
        Command::Import { files, at, account, region } => {
            let at = parse_time(at.as_deref())?;
            let mut documents = Vec::new();
            for file in &files {
                documents.push(std::fs::read(file).with_context(|| file.display().to_string())?);
            }
            let snapshot = Snapshot::from_documents(&documents)?;
            let scope = SnapshotScope { account_id: account, region };
            let stats = Applier::new(store, policy).reconcile(&snapshot.enis, at, &scope).await?;
            println!("{}", serde_json::to_string(&stats)?);
        }
        Command::Lookup { address, at, scope } => {
            let at = parse_time(at.as_deref())?;
            let scope = match scope {
                Some(s) => s,
                None => match Scope::of(address, None) {
                    Some(s) => s,
                    None => bail!("{address} is private: say which VPC with --scope vpc-..."),
                },
            };
            let owner = store.lookup(&[(AddressKey::new(scope, address), at)]).await?.pop().flatten();
            println!("{}", serde_json::to_string(&owner)?);
        }
        Command::CreateTable => unreachable!("handled before choosing a store"),
        Command::Dump => {
            let mut out = std::io::stdout().lock();
            for (key, timeline) in store.timelines().await? {
                for interval in timeline.intervals(&key) {
                    use std::io::Write;
                    serde_json::to_writer(&mut out, &interval)?;
                    writeln!(out)?;
                }
            }
        }
    }
    Ok(if failed { std::process::ExitCode::from(1) } else { std::process::ExitCode::SUCCESS })
}
