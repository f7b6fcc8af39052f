//! `dredge demo`: the whole pipeline on a simulated fleet, scored against
//! ground truth; prints the score and writes `score.json`, `report.html`
//! and the final Parquet under `--out`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args as ClapArgs;
use dredge_core::ownership::UnixTime;
use dredge_demo::delays::{profile, PROFILES};
use dredge_demo::report::human_bytes;
use dredge_demo::run::{run, Options, Progress};
use dredge_demo::summary::{Counts, Pair, Summary};

use crate::usage;

#[derive(ClapArgs)]
pub struct Args {
    /// Seed of the fleet, its churn, the traffic and the delays: the same
    /// seed gives the same score.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Flow-log records to generate.
    #[arg(long, default_value_t = 100_000)]
    flows: u64,
    /// Instance replacements per instance per hour (each frees addresses
    /// that other applications take within minutes); stops, secondary
    /// addresses, Elastic IP moves and interface moves scale with it.
    #[arg(long, default_value_t = 0.5)]
    churn: f64,
    /// How late events and flow logs arrive: ideal, typical or harsh.
    #[arg(long, default_value = "typical")]
    delays: String,
    /// Hours of simulated time.
    #[arg(long, default_value_t = 4)]
    hours: u32,
    /// Where the final Parquet, score.json and report.html go (replaced).
    #[arg(long, default_value = "dredge-demo")]
    out: PathBuf,
}

pub async fn run_demo(args: Args) -> anyhow::Result<ExitCode> {
    let Some(delays) = profile(&args.delays) else {
        let names: Vec<&str> = PROFILES.iter().map(|p| p.name).collect();
        return Err(usage(format!("--delays {}: expected one of {}", args.delays, names.join(", "))));
    };
    if !(args.churn >= 0.0 && args.churn.is_finite()) {
        return Err(usage("--churn must be 0 or more"));
    }
    if args.flows == 0 || args.hours == 0 {
        return Err(usage("--flows and --hours must be positive"));
    }
    let options = Options {
        seed: args.seed,
        flows: args.flows,
        churn: args.churn,
        hours: args.hours,
        delays,
        out: args.out.clone(),
    };
    let mut bar = Bar::new();
    let summary = run(&options, &mut |p| bar.show(p)).await?;
    bar.done();
    let score = args.out.join("score.json");
    std::fs::write(&score, serde_json::to_string_pretty(&summary.score_json())? + "\n")
        .with_context(|| score.display().to_string())?;
    let report = args.out.join("report.html");
    std::fs::write(&report, dredge_demo::report::render(&summary)).with_context(|| report.display().to_string())?;
    print_summary(&summary, &args.out);
    Ok(ExitCode::SUCCESS)
}

/// A progress bar on a terminal; a line per tenth otherwise.
struct Bar {
    terminal: bool,
    shown: u64,
}

impl Bar {
    fn new() -> Bar {
        Bar { terminal: std::io::stderr().is_terminal(), shown: u64::MAX }
    }

    fn show(&mut self, p: Progress) {
        let percent = (p.flows_done * 100).checked_div(p.flows).unwrap_or(100);
        let step = if self.terminal { percent } else { percent / 10 * 10 };
        if step == self.shown {
            return;
        }
        self.shown = step;
        let filled = (percent / 4) as usize;
        let line = format!(
            "[{}{}] {percent:>3}%  {}/{} flows  simulated {}",
            "#".repeat(filled),
            ".".repeat(25 - filled),
            p.flows_done,
            p.flows,
            UnixTime(p.now)
        );
        let mut err = std::io::stderr().lock();
        let _ = if self.terminal { write!(err, "\r{line}") } else { writeln!(err, "{line}") };
    }

    fn done(&self) {
        if self.terminal {
            eprintln!();
        }
    }
}

fn percent(n: u64, of: u64) -> String {
    if of == 0 {
        "-".into()
    } else {
        format!("{:.2}%", n as f64 * 100.0 / of as f64)
    }
}

fn counts_row(name: &str, c: &Counts) -> String {
    format!(
        "  {name:<26} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}  {:>8}",
        c.total(),
        c.correct,
        c.unattributed,
        c.misattributed,
        c.knowable,
        c.knowable_unattributed,
        percent(c.misattributed, c.total())
    )
}

fn pairs(title: &str, list: &[Pair], n: usize) {
    if list.is_empty() {
        return;
    }
    println!("\n{title}");
    for p in list.iter().take(n) {
        println!("  {:<20} -> {:<20} {:>10} {:>8} flows", p.src, p.dst, human_bytes(p.bytes), p.flows);
    }
}

fn print_summary(s: &Summary, out: &std::path::Path) {
    let setup = &s.setup;
    println!(
        "dredge demo: seed {}, {} flows, churn {}/instance/hour, delays {}, {} to {}",
        setup.seed,
        setup.flows,
        setup.churn,
        setup.delays,
        UnixTime(setup.start),
        UnixTime(setup.end)
    );
    println!(
        "fleet: {} accounts, {} regions, {} VPCs, {} apps, {} instances, {} load balancer/endpoint ENIs; \
         {} ownership events ({} deliveries, {} lost), {} reconciles, {} compactions",
        setup.accounts,
        setup.regions,
        setup.vpcs,
        setup.apps,
        setup.instances,
        setup.standalone_enis,
        setup.events_generated,
        setup.events_delivered,
        setup.events_lost,
        setup.reconciles,
        setup.compactions
    );
    println!(
        "\n  {:<26} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}  {:>8}",
        "flow sides", "total", "correct", "unattrib", "misattr", "knowable", "know.unat", "misattr%"
    );
    println!("{}", counts_row("all", &s.score));
    for (name, c) in &s.by_side {
        println!("{}", counts_row(&format!("side {name}"), c));
    }
    for (name, c) in &s.by_attribution {
        println!("{}", counts_row(&format!("reported {name}"), c));
    }
    for (name, c) in &s.by_truth {
        println!("{}", counts_row(&format!("truly {name}"), c));
    }
    println!(
        "\nmisattributed {} of {} sides ({}); knowable left unattributed {} of {} ({})",
        s.score.misattributed,
        s.score.total(),
        percent(s.score.misattributed, s.score.total()),
        s.score.knowable_unattributed,
        s.score.knowable,
        percent(s.score.knowable_unattributed, s.score.knowable)
    );
    let p = &s.pipeline;
    println!(
        "second chance: {} sides not vouched for when first decided; {} flows deferred ({} messages), {} sides \
         decided on a retry, {} written unattributed after the wait; {} flows decided later, by {:.0} s on average \
         (at most {} s); {} heartbeats stored",
        p.not_yet_known,
        p.deferred_flows,
        p.deferred_messages,
        p.owner_after_retry,
        p.settled_unattributed,
        p.waited_flows,
        p.wait_mean_seconds,
        p.wait_max_seconds,
        p.heartbeats_written
    );
    if !s.causes.is_empty() {
        println!("\nmisattributions by cause");
        for (cause, n) in &s.causes {
            println!("  {n:>8}  {cause}");
        }
    }
    pairs("top application pairs by bytes", &s.top_pairs, 10);
    pairs("cross-region bytes by pair", &s.cross_region, 5);
    pairs("cross-AZ bytes by pair", &s.cross_az, 5);
    println!(
        "\n{} flows ({} final rows) in {:.1} s: {} flows/s",
        s.rate.flows, s.rate.rows, s.rate.elapsed_seconds, s.rate.flows_per_second
    );
    println!("wrote {0}/report.html, {0}/score.json and the final Parquet under {0}/s3/", out.display());
}
