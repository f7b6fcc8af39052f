//! A realistic enricher batch, shared by `benches/handler.rs` and
//! `examples/batch_memory.rs`: one Lambda Kinesis event as AWS delivers it,
//! every record a gzip CloudWatch Logs subscription document (one log
//! stream, that is one logging ENI, per record) holding default-format (v2)
//! flow-log lines from one VPC; an ownership table that knows the VPC's
//! ENIs and addresses (with some address reuse); AWS's published ranges
//! (synthetic, about the real file's size); a sink that only counts.
//!
//! Deterministic (SplitMix64), no extra crates.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use base64::Engine;
use dredge_core::ipranges::IpRanges;
use dredge_core::objects::{ObjectError, ObjectStore};
use dredge_core::ownership::{
    AddressKey, Applier, Attached, Change, Eni, MemoryStore, OwnershipStore, Scope, Sighting, TagPolicy, UnixTime,
    ASG_TAG,
};
use dredge_core::sink::{EntryError, OutRecord, RecordSink, SinkError};
use dredge_enricher::{Enricher, EnricherConfig};
use serde_json::json;

/// Records in the batch (the Kinesis event source mapping's maximum).
pub const RECORDS: usize = 10_000;
/// Flow-log lines per record unless `DREDGE_BENCH_LOG_EVENTS` says otherwise.
pub const DEFAULT_LOG_EVENTS: usize = 20;
/// The wall clock of every run: fixed, so the warm cache stays within its
/// TTL, and every flow starts 5 to 15 minutes earlier (older than the
/// cache's freshness window, as flow logs are when they arrive).
pub const NOW: UnixTime = UnixTime(1_800_000_000);

const VPC: &str = "vpc-0a1b2c3d4e5f60789";
const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const AZS: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];
/// Interfaces whose flow logs are in the batch (one log stream each).
const LOGGING_ENIS: usize = 300;
/// Other owned addresses in the VPC (load balancers, Lambda, ECS tasks,
/// instances without flow logs in this batch).
const VPC_PEERS: usize = 3_000;
const AWS_PEERS: usize = 600;
const INTERNET_PEERS: usize = 400;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Records in the batch, from `DREDGE_BENCH_RECORDS` (default 10,000; fewer
/// for slow profilers).
pub fn records() -> usize {
    env("DREDGE_BENCH_RECORDS", RECORDS)
}

/// Lines per record, from `DREDGE_BENCH_LOG_EVENTS` (default 20).
pub fn log_events_per_record() -> usize {
    env("DREDGE_BENCH_LOG_EVENTS", DEFAULT_LOG_EVENTS)
}

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn hex(&mut self, len: usize) -> String {
        (0..len).map(|_| char::from_digit(self.below(16) as u32, 16).unwrap()).collect()
    }
}

/// What the benchmark runs on.
pub struct Fixture {
    pub store: MemoryStore,
    pub ranges: Arc<IpRanges>,
    /// The Lambda event, as the runtime hands it over.
    pub event_json: Vec<u8>,
    pub records: usize,
    /// Flow-log lines in the event.
    pub lines: u64,
    /// Bytes of gzip payload (before base64).
    pub payload_bytes: u64,
}

/// Counts what it is given; accepts everything.
#[derive(Debug, Default)]
pub struct CountingSink {
    pub records: AtomicU64,
    pub bytes: AtomicU64,
}

impl RecordSink for CountingSink {
    async fn put_records(&self, records: &[OutRecord]) -> Result<Vec<Result<(), EntryError>>, SinkError> {
        let bytes: usize = records.iter().map(|r| r.data.len() + r.partition_key.len()).sum();
        self.records.fetch_add(records.len() as u64, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        Ok(vec![Ok(()); records.len()])
    }
}

/// A dead-letter store that drops what it is given (the batch has no
/// rejects; this is never called in a clean run).
#[derive(Debug, Default)]
pub struct DiscardObjects;

impl ObjectStore for DiscardObjects {
    async fn put(&self, _key: &str, _body: Vec<u8>) -> Result<(), ObjectError> {
        Ok(())
    }
    async fn get(&self, key: &str) -> Result<Vec<u8>, ObjectError> {
        Err(ObjectError::Permanent(format!("{key}: not kept")))
    }
}

pub type BenchEnricher = Enricher<MemoryStore, CountingSink, DiscardObjects>;

/// The enricher as the Lambda builds it (its configuration from the
/// environment, e.g. `ENRICHED_COMPRESSION=none`: defaults otherwise), on the
/// fixture's table and ranges.
pub fn enricher(store: MemoryStore, ranges: Arc<IpRanges>) -> BenchEnricher {
    Enricher::new(
        store,
        CountingSink::default(),
        DiscardObjects,
        EnricherConfig::from_env().unwrap(),
        TagPolicy::default(),
        Some(ranges),
    )
}

const APPS: [&str; 24] = [
    "api",
    "web",
    "checkout",
    "payments",
    "search",
    "catalog",
    "auth",
    "users",
    "orders",
    "inventory",
    "billing",
    "ledger",
    "notify",
    "gateway",
    "reco",
    "media",
    "thumbs",
    "events",
    "ingest",
    "reports",
    "admin",
    "cart",
    "shipping",
    "pricing",
];

fn eni_id(rng: &mut Rng) -> String {
    format!("eni-{}", rng.hex(17))
}

/// An instance ENI in an auto scaling group.
fn instance_eni(rng: &mut Rng, address: IpAddr) -> Eni {
    let app = APPS[rng.index(APPS.len())];
    let stack = if rng.chance(80) { "prod" } else { "staging" };
    let mut e = Eni::new(eni_id(rng));
    e.account_id = Some(ACCOUNT.into());
    e.region = Some(REGION.into());
    e.az = Some(AZS[rng.index(3)].into());
    e.vpc_id = Some(VPC.into());
    e.subnet_id = Some(format!("subnet-{}", rng.hex(17)));
    e.interface_type = Some("interface".into());
    e.instance_id = Some(format!("i-{}", rng.hex(17)));
    e.attachment_id = Some(format!("eni-attach-{}", rng.hex(17)));
    e.private_addresses = vec![address];
    e.tags.insert(ASG_TAG.into(), format!("{app}-{stack}-v{:03}", rng.below(200)));
    e.tags.insert("app".into(), app.into());
    e.tags.insert("team".into(), format!("team-{}", rng.below(8)));
    e
}

/// Some other owner of a VPC address: a load balancer, a Lambda function,
/// an ECS task or an instance.
fn peer_eni(rng: &mut Rng, address: IpAddr) -> Eni {
    let mut e = match rng.below(10) {
        0..=5 => return instance_eni(rng, address),
        6 | 7 => {
            let mut e = Eni::new(eni_id(rng));
            e.requester_id = Some("amazon-elb".into());
            e.description = Some(format!("ELB app/{}-alb/{}", APPS[rng.index(APPS.len())], rng.hex(16)));
            e
        }
        8 => {
            let mut e = Eni::new(eni_id(rng));
            e.interface_type = Some("lambda".into());
            e.description = Some(format!("AWS Lambda VPC ENI-{}-{}", APPS[rng.index(APPS.len())], rng.hex(8)));
            e.tags.insert("app".into(), APPS[rng.index(APPS.len())].into());
            e
        }
        _ => {
            let mut e = Eni::new(eni_id(rng));
            e.requester_id = Some("578734482556".into());
            e.description = Some(format!("arn:aws:ecs:{REGION}:{ACCOUNT}:attachment/{}", rng.hex(32)));
            e.tags.insert("app".into(), APPS[rng.index(APPS.len())].into());
            e
        }
    };
    e.account_id = Some(ACCOUNT.into());
    e.region = Some(REGION.into());
    e.az = Some(AZS[rng.index(3)].into());
    e.vpc_id = Some(VPC.into());
    e.subnet_id = Some(format!("subnet-{}", rng.hex(17)));
    e.private_addresses = vec![address];
    e
}

const AWS_FIRST_OCTETS: [u8; 10] = [3, 13, 15, 18, 34, 35, 44, 52, 54, 99];
const SERVICES: [&str; 8] = ["S3", "DYNAMODB", "EC2", "CLOUDFRONT", "ROUTE53", "API_GATEWAY", "KINESIS", "SQS"];

/// An `ip-ranges.json` of the real file's size (about 7,000 IPv4 and 2,500
/// IPv6 prefixes): AMAZON /16s with service /20s inside them. Returns the
/// document and the IPv4 service prefixes (base, length) to draw peers from.
fn ip_ranges(rng: &mut Rng) -> (String, Vec<(u32, u8)>) {
    let mut v4 = Vec::new();
    let mut services = Vec::new();
    for a in AWS_FIRST_OCTETS {
        for b in 0..=255u32 {
            if rng.chance(40) {
                continue;
            }
            let base = (u32::from(a) << 24) | (b << 16);
            v4.push(json!({"ip_prefix": format!("{}/16", Ipv4Addr::from(base)), "region": REGION,
                "service": "AMAZON", "network_border_group": REGION}));
            for c in 0..3u32 {
                let sub = base | ((c * 16) << 8);
                let service = SERVICES[rng.index(SERVICES.len())];
                v4.push(json!({"ip_prefix": format!("{}/20", Ipv4Addr::from(sub)), "region": REGION,
                    "service": service, "network_border_group": REGION}));
                services.push((sub, 20));
            }
        }
    }
    let v6: Vec<_> = (0..2_500u32)
        .map(|i| {
            json!({"ipv6_prefix": format!("2600:1f{:02x}:{:x}::/48", i % 256, i), "region": REGION,
                "service": if i % 4 == 0 { "AMAZON" } else { SERVICES[i as usize % SERVICES.len()] },
                "network_border_group": REGION})
        })
        .collect();
    let doc =
        json!({"syncToken": "1795000000", "createDate": "2026-11-19-07-23-12", "prefixes": v4, "ipv6_prefixes": v6});
    (doc.to_string(), services)
}

const WELL_KNOWN: [u16; 10] = [443, 443, 443, 80, 5432, 3306, 6379, 8080, 9092, 53];

/// Builds the table and the event: `records` records of `log_events` lines.
pub async fn build(records: usize, log_events: usize) -> Fixture {
    let mut rng = Rng(0xd2ed_9e00_f10e_1095);
    let (ranges_doc, service_prefixes) = ip_ranges(&mut rng);
    let ranges = Arc::new(IpRanges::from_json(ranges_doc.as_bytes()).expect("ranges"));

    // The table: the logging ENIs and the VPC's other owners, every
    // address up for a month; a fifth of the peers' addresses were someone
    // else's before (released 20 days ago, reused 10 days ago).
    let store = MemoryStore::new();
    let applier = Applier::new(&store, TagPolicy::default());
    let month_ago = UnixTime(NOW.0 - 30 * 86_400);
    let mut logging: Vec<(String, IpAddr)> = Vec::with_capacity(LOGGING_ENIS);
    // What a reconcile a minute ago saw: every holder (so every flow's
    // owner is vouched for: the decided path, not the second chance).
    let seen_at = UnixTime(NOW.0 - 60);
    let mut sightings: Vec<(AddressKey, Sighting)> = Vec::new();
    let mut sight = |eni: &Eni, addr: IpAddr| {
        let attached = eni.instance_id.clone().map_or(Attached::Nothing, Attached::To);
        let key = AddressKey::new(Scope::Vpc(VPC.into()), addr);
        sightings.push((key, Sighting { eni_id: eni.eni_id.clone(), attached, at: seen_at }));
    };
    for i in 0..LOGGING_ENIS {
        let addr = IpAddr::V4(Ipv4Addr::new(10, 0, (i / 200) as u8, (i % 200 + 10) as u8));
        let eni = instance_eni(&mut rng, addr);
        sight(&eni, addr);
        logging.push((eni.eni_id.clone(), addr));
        applier.apply(&Change::EniUp { at: month_ago, eni: Box::new(eni) }).await.expect("apply");
    }
    let mut peers: Vec<IpAddr> = logging.iter().map(|(_, a)| *a).collect();
    for i in 0..VPC_PEERS {
        let addr = IpAddr::V4(Ipv4Addr::new(10, 1 + (i / 250) as u8, rng.below(4) as u8, (i % 250 + 4) as u8));
        if rng.chance(20) {
            let old = peer_eni(&mut rng, addr);
            let old_id = old.eni_id.clone();
            applier.apply(&Change::EniUp { at: UnixTime(NOW.0 - 40 * 86_400), eni: Box::new(old) }).await.unwrap();
            applier.apply(&Change::EniDeleted { at: UnixTime(NOW.0 - 20 * 86_400), eni_id: old_id }).await.unwrap();
            let new = peer_eni(&mut rng, addr);
            sight(&new, addr);
            applier.apply(&Change::EniUp { at: UnixTime(NOW.0 - 10 * 86_400), eni: Box::new(new) }).await.unwrap();
        } else {
            let eni = peer_eni(&mut rng, addr);
            sight(&eni, addr);
            applier.apply(&Change::EniUp { at: month_ago, eni: Box::new(eni) }).await.unwrap();
        }
        peers.push(addr);
    }
    store.put_seen(&sightings).await.expect("put_seen");
    store.note_reconciled("*#*", seen_at).await.expect("note_reconciled");
    let vpc_peers = peers.len();
    for _ in 0..AWS_PEERS {
        let (base, len) = service_prefixes[rng.index(service_prefixes.len())];
        let host = rng.below(1 << (32 - len)) as u32;
        peers.push(IpAddr::V4(Ipv4Addr::from(base | host)));
    }
    let internet_octets = [8u8, 23, 31, 104, 142, 151, 172, 185, 199, 209];
    for _ in 0..INTERNET_PEERS {
        let a = internet_octets[rng.index(internet_octets.len())];
        let b = if a == 172 { 217 } else { rng.below(256) as u8 };
        peers.push(IpAddr::V4(Ipv4Addr::new(a, b, rng.below(256) as u8, 1 + rng.below(254) as u8)));
    }

    // The event. Peers: 70% in the VPC, 20% AWS services, 10% internet.
    let mut out = Vec::with_capacity(records);
    let mut lines = 0u64;
    let mut payload_bytes = 0u64;
    let mut message = String::with_capacity(160);
    for r in 0..records {
        let (eni, own) = &logging[rng.index(logging.len())];
        // One aggregation window per record: 5 to 15 minutes old.
        let window = NOW.0 - 900 + rng.below(600) as i64;
        let arrival = window + 60 + 240 + rng.below(60) as i64;
        let mut events = Vec::with_capacity(log_events);
        for e in 0..log_events {
            let peer = match rng.below(10) {
                0..=6 => peers[rng.index(vpc_peers)],
                7 | 8 => peers[vpc_peers + rng.index(AWS_PEERS)],
                _ => peers[vpc_peers + AWS_PEERS + rng.index(INTERNET_PEERS)],
            };
            let service = u64::from(WELL_KNOWN[rng.index(WELL_KNOWN.len())]);
            let ephemeral = 32_768 + rng.below(28_232);
            // Egress (this ENI opened the connection) or ingress.
            let (src, dst, sport, dport) =
                if rng.chance(55) { (*own, peer, ephemeral, service) } else { (peer, *own, service, ephemeral) };
            let proto = if service == 53 { 17 } else { 6 };
            let packets = 1 + rng.below(2_000);
            let bytes = packets * (40 + rng.below(1_400));
            let start = window + rng.below(60) as i64;
            let end = start + 30 + rng.below(30) as i64;
            let action = if rng.chance(4) { "REJECT" } else { "ACCEPT" };
            message.clear();
            use std::fmt::Write as _;
            let _ = write!(
                message,
                "2 {ACCOUNT} {eni} {src} {dst} {sport} {dport} {proto} {packets} {bytes} {start} {end} {action} OK"
            );
            events.push(json!({
                "id": format!("{}{:018}{:04}", 37_000_000 + r, rng.below(1_000_000_000_000_000_000), e),
                "timestamp": start * 1000,
                "message": message,
            }));
        }
        lines += log_events as u64;
        let doc = json!({
            "messageType": "DATA_MESSAGE",
            "owner": ACCOUNT,
            "logGroup": "/vpc/flow-logs",
            "logStream": format!("{eni}-all"),
            "subscriptionFilters": ["dredge-flow-logs"],
            "logEvents": events,
        });
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(doc.to_string().as_bytes()).unwrap();
        let data = gz.finish().unwrap();
        payload_bytes += data.len() as u64;
        let seq = format!("4965916537381040395218097452361937286045797281{r:010}");
        out.push(json!({
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": format!("{:016x}{:016x}", rng.next(), rng.next()),
                "sequenceNumber": seq,
                "data": base64::engine::general_purpose::STANDARD.encode(&data),
                "approximateArrivalTimestamp": arrival as f64 + rng.below(1000) as f64 / 1000.0,
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": format!("shardId-000000000003:{seq}"),
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": format!("arn:aws:iam::{ACCOUNT}:role/dredge-enricher"),
            "awsRegion": REGION,
            "eventSourceARN": format!("arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/dredge-flow-logs"),
        }));
    }
    let event_json = serde_json::to_vec(&json!({ "Records": out })).unwrap();
    Fixture { store, ranges, event_json, records, lines, payload_bytes }
}
