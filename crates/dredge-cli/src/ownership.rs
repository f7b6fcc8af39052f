//! `dredge ownership`: the IP ownership table, on the embedded store
//! (`--state DIR`) or on DynamoDB (`--table NAME`).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context;
use aws_sdk_dynamodb::config::interceptors::AfterDeserializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::scan::ScanOutput;
use clap::{Args as ClapArgs, Subcommand};
use dredge_core::ownership::{
    AddressKey, Applier, MemoryStore, OwnershipStore, Scope, SnapshotScope, TagPolicy, UnixTime,
};
use dredge_ownership::{Disposition, FileDescriber, Handler, Snapshot};
use serde_json::json;

use crate::progress::{clear_line, thousands, Progress};
use crate::usage;

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
        #[arg(long, value_parser = time_arg)]
        at: Option<UnixTime>,
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
        #[arg(long, value_parser = time_arg)]
        at: Option<UnixTime>,
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

/// A time option's value: RFC 3339 or Unix seconds (clap names the option
/// when it is neither).
pub(crate) fn time_arg(text: &str) -> Result<UnixTime, String> {
    UnixTime::parse_any(text).map_err(|e| e.to_string())
}

pub async fn run(args: Args) -> anyhow::Result<std::process::ExitCode> {
    let policy = args.store.policy();
    if let Some(table) = &args.store.table {
        let sdk = dredge_lambda::entry::sdk_config().await;
        let scans = Arc::new(Scans::new(table));
        let config = aws_sdk_dynamodb::config::Builder::from(&sdk).interceptor(ScanProgress(scans.clone())).build();
        let client = aws_sdk_dynamodb::Client::from_conf(config);
        if let Command::CreateTable = args.command {
            dredge_aws::create_table(&client, table).await?;
            println!("{}", json!({"created": table}));
            return Ok(std::process::ExitCode::SUCCESS);
        }
        let store = dredge_aws::DynamoOwnershipStore::new(client, table.clone());
        let code = run_on(&store, policy, args.command).await;
        scans.finish();
        return code;
    }
    if let Command::CreateTable = args.command {
        return Err(usage("create-table needs --table NAME"));
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
            let at = at.unwrap_or_else(UnixTime::now);
            let mut documents = Vec::new();
            for file in &files {
                documents.push(std::fs::read(file).with_context(|| file.display().to_string())?);
            }
            let snapshot = Snapshot::from_documents(&documents)?;
            let scope = SnapshotScope { account_id: account, region };
            let stats = Applier::new(store, policy).reconcile(&snapshot.enis, at, &scope).await?;
            clear_line();
            println!("{}", serde_json::to_string(&stats)?);
        }
        Command::Lookup { address, at, scope } => {
            let at = at.unwrap_or_else(UnixTime::now);
            let scope = match scope.or_else(|| Scope::of(address, None)) {
                Some(s) => s,
                None => return Err(usage(format!("{address} is private: say which VPC with --scope vpc-..."))),
            };
            let owner = store.lookup(&[(AddressKey::new(scope, address), at)]).await?.pop().flatten();
            println!("{}", serde_json::to_string(&owner)?);
        }
        Command::CreateTable => unreachable!("handled before choosing a store"),
        Command::Dump => {
            let timelines = store.timelines().await?;
            // The scan's progress line leaves room for the output.
            clear_line();
            let mut out = std::io::stdout().lock();
            for (key, timeline) in timelines {
                for interval in timeline.intervals(&key) {
                    use std::io::Write;
                    serde_json::to_writer(&mut out, &interval)?;
                    writeln!(out)?;
                }
            }
        }
    }
    Ok(if failed { std::process::ExitCode::from(crate::FAILED) } else { std::process::ExitCode::SUCCESS })
}

/// What the DynamoDB Scans of one command have read so far (dump and
/// reconcile read the whole table, page by page): its progress line.
struct Scans {
    table: String,
    pages: AtomicU64,
    items: AtomicU64,
    progress: Progress,
}

impl Scans {
    fn new(table: &str) -> Scans {
        Scans {
            table: table.to_owned(),
            pages: AtomicU64::new(0),
            items: AtomicU64::new(0),
            progress: Progress::on_terminal(),
        }
    }

    fn page(&self, items: u64) {
        let pages = self.pages.fetch_add(1, Ordering::Relaxed) + 1;
        let items = self.items.fetch_add(items, Ordering::Relaxed) + items;
        self.progress
            .tick(|| format!("{}: scanned {} items in {} pages", self.table, thousands(items), thousands(pages)));
    }

    fn finish(&self) {
        let (items, pages) = (self.items.load(Ordering::Relaxed), self.pages.load(Ordering::Relaxed));
        self.progress.finish(|took| {
            format!(
                "{}: scanned {} items in {} pages, {:.1} s",
                self.table,
                thousands(items),
                thousands(pages),
                took.as_secs_f64()
            )
        });
    }
}

/// Counts each Scan page the client receives: the store pages through the
/// table inside one call, so only the client sees the pages go by.
#[derive(Clone)]
struct ScanProgress(Arc<Scans>);

impl std::fmt::Debug for ScanProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScanProgress")
    }
}

impl Intercept for ScanProgress {
    fn name(&self) -> &'static str {
        "ScanProgress"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if let Ok(output) = context.output_or_error() {
            if let Some(scan) = output.downcast_ref::<ScanOutput>() {
                self.0.page(scan.count().max(0) as u64);
            }
        }
        Ok(())
    }
}
