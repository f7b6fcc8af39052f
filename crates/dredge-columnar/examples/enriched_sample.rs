//! Realistic enriched NDJSON for benchmarks: `ROWS` (default 200,000)
//! flows in flow-log format v5, written with the enricher's own
//! `write_enriched`, between 400 owners of 40 apps in three zones, with
//! public peers (AWS-less internet) and unattributed sides mixed in.
//! Deterministic.
//!
//! ```sh
//! cargo run --release -p dredge-columnar --example enriched_sample -- 200000 > enriched.ndjson
//! ```

use std::io::{BufWriter, Write};

use dredge_core::enrich::{write_enriched, FlowId, SideOwner, Sides};
use dredge_core::flowlog::Format;
use dredge_core::ownership::{Owner, OwnerKind};

const FORMAT: &str =
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end \
     action log-status vpc-id subnet-id instance-id tcp-flags type pkt-srcaddr pkt-dstaddr region az-id \
     sublocation-type sublocation-id pkt-src-aws-service pkt-dst-aws-service flow-direction traffic-path";
const APPS: [&str; 40] = [
    "api", "web", "db", "cache", "auth", "search", "billing", "orders", "cart", "catalog", "images", "video", "mail",
    "notify", "queue", "stream", "metrics", "logs", "trace", "config", "edge", "gateway", "proxy", "users", "profile",
    "recs", "ads", "pay", "fraud", "ledger", "report", "export", "import", "sync", "batch", "ml", "ranker", "feed",
    "chat", "admin",
];
const STACKS: [&str; 3] = ["prod", "test", "canary"];
const AZS: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];
const ACCOUNTS: [&str; 2] = ["123456789012", "210987654321"];

/// Deterministic draws: each is the hash of a counter (no RNG state to
/// carry, and no generator to copy from the other benches).
struct Draws {
    hasher: foldhash::fast::FixedState,
    n: u64,
}

impl Draws {
    fn below(&mut self, bound: u64) -> u64 {
        use std::hash::BuildHasher;
        self.n += 1;
        self.hasher.hash_one(self.n) % bound
    }
}

fn owner(i: usize) -> (Owner, String) {
    let app = APPS[i % APPS.len()];
    let stack = STACKS[i / APPS.len() % STACKS.len()];
    let az = AZS[i % AZS.len()];
    let mut o = Owner::new(format!("eni-{i:017x}"), OwnerKind::Instance);
    o.app = Some(app.into());
    o.stack = Some(stack.into());
    o.cluster = Some(format!("{app}-{stack}"));
    o.asg = Some(format!("{app}-{stack}-v{:03}", i % 7));
    o.instance_id = Some(format!("i-{:017x}", i * 7919));
    o.account_id = Some(ACCOUNTS[i % 11 / 10].into());
    o.region = Some("us-east-1".into());
    o.az = Some(az.into());
    o.vpc_id = Some(format!("vpc-{:017x}", i % 11 / 10));
    o.subnet_id = Some(format!("subnet-{:017x}", i % 9));
    (o, format!("10.{}.{}.{}", i % 11 / 10, i / 250, i % 250 + 1))
}

fn main() -> std::io::Result<()> {
    let rows: usize = std::env::args().nth(1).map_or(200_000, |a| a.parse().expect("ROWS is a number"));
    let format = Format::parse(FORMAT).expect("a valid format");
    let owners: Vec<(Owner, String)> = (0..400).map(owner).collect();
    let mut rng = Draws { hasher: foldhash::fast::FixedState::with_seed(42), n: 0 };
    let mut out = BufWriter::new(std::io::stdout().lock());
    let (mut line, mut json) = (String::new(), Vec::new());
    for n in 0..rows {
        let (src, src_ip) = &owners[rng.below(owners.len() as u64) as usize];
        let peer = rng.below(100);
        let (dst, dst_ip) = &owners[rng.below(owners.len() as u64) as usize];
        let public = format!("52.{}.{}.{}", rng.below(256), rng.below(256), rng.below(254) + 1);
        let (dst_side, dst_ip) = match peer {
            0..70 => (SideOwner::Owned(dst), dst_ip.as_str()),
            70..85 => (SideOwner::Internet, public.as_str()),
            _ => (SideOwner::Unattributed, "10.200.0.9"),
        };
        let start = 1_800_000_000 + (n as u64 / 50);
        let packets = rng.below(2_000) + 1;
        let bytes = packets * (rng.below(1_400) + 40);
        let (srcport, dstport) = (rng.below(28_000) + 32_768, [443, 80, 5432, 6379, 8080][rng.below(5) as usize]);
        let protocol = if rng.below(10) == 0 { 17 } else { 6 };
        let action = if rng.below(50) == 0 { "REJECT" } else { "ACCEPT" };
        let direction = if rng.below(2) == 0 { "ingress" } else { "egress" };
        line.clear();
        use std::fmt::Write as _;
        let _ = write!(
            line,
            "5 {account} {eni} {src_ip} {dst_ip} {srcport} {dstport} {protocol} {packets} {bytes} {start} {end} {action} OK \
             {vpc} {subnet} {instance} {flags} IPv4 {src_ip} {dst_ip} us-east-1 use1-az{az} - - - - {direction} {path}",
            account = src.account_id.as_deref().unwrap_or("-"),
            eni = src.eni_id,
            end = start + 60,
            vpc = src.vpc_id.as_deref().unwrap_or("-"),
            subnet = src.subnet_id.as_deref().unwrap_or("-"),
            instance = src.instance_id.as_deref().unwrap_or("-"),
            flags = [2, 18, 19, 3][rng.below(4) as usize],
            az = rng.below(3) + 1,
            path = rng.below(8) + 1,
        );
        let mut values = Vec::new();
        let record = format.decode(&line, &mut values).expect("a valid line");
        let src_side = if rng.below(4) == 0 { SideOwner::LoggingEni(src) } else { SideOwner::Owned(src) };
        json.clear();
        // Twenty flows per source record, as CloudWatch Logs documents carry.
        let sequence = (49_000_000 + n / 20).to_string();
        let id = FlowId { shard: Some("shardId-000000000000"), sequence_number: &sequence, line: n % 20 + 1 };
        write_enriched(&record, start as i64 * 1000, &id, &Sides { src: src_side, dst: dst_side }, &mut json);
        json.push(b'\n');
        out.write_all(&json)?;
    }
    out.flush()
}
