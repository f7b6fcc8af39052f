//! Decoding throughput on a large, realistic version-5 input: the 29 fields
//! of versions 2 to 5 in AWS order, about 100,000 lines with varied
//! addresses, ports, identifiers and statuses (deterministic, no extra
//! crates).
//!
//! `cargo bench -p dredge-core --bench decode -- --warm-up-time 2 --measurement-time 5`

use std::fmt::Write as _;
use std::hint::black_box;
use std::io::Write;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use flate2::write::GzEncoder;
use flate2::Compression;

use dredge_core::flowlog::{DecodeOptions, Decoder, Field, Format, Item};

const LINES: usize = 100_000;

/// SplitMix64: small, fast, good enough for test data.
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

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn hex(&mut self, len: usize) -> String {
        (0..len).map(|_| char::from_digit(self.below(16) as u32, 16).unwrap()).collect()
    }
}

/// The version 2-5 fields, in `Field::ALL` (AWS) order.
fn v5_format() -> Format {
    let fields: Vec<Field> = Field::ALL.iter().copied().filter(|f| f.version() <= 5).collect();
    assert_eq!(fields.len(), 29);
    Format::new(fields).unwrap()
}

struct Eni {
    account: String,
    id: String,
    vpc: String,
    subnet: String,
    instance: String,
    addr: String,
    az: &'static str,
    region: &'static str,
}

fn generate(lines: usize) -> String {
    let mut rng = Rng(0x5eed_f10e_1095);
    let regions = [
        ("us-east-1", ["use1-az1", "use1-az2", "use1-az4"]),
        ("eu-west-1", ["euw1-az1", "euw1-az2", "euw1-az3"]),
        ("ap-southeast-2", ["apse2-az1", "apse2-az2", "apse2-az3"]),
    ];
    let accounts: Vec<String> = (0..8).map(|_| format!("{:012}", rng.below(1_000_000_000_000))).collect();
    // A fleet of interfaces, each with its own address.
    let enis: Vec<Eni> = (0..2_000)
        .map(|i| {
            let (region, azs) = regions[i % regions.len()];
            let ipv6 = rng.chance(5);
            Eni {
                account: accounts[rng.below(accounts.len() as u64) as usize].clone(),
                id: format!("eni-{}", rng.hex(17)),
                vpc: format!("vpc-{}", rng.hex(17)),
                subnet: format!("subnet-{}", rng.hex(17)),
                instance: if rng.chance(85) { format!("i-{}", rng.hex(17)) } else { "-".to_owned() },
                addr: if ipv6 {
                    format!("2600:1f18:{:x}:{:x}::{:x}", rng.below(0x10000), rng.below(0x10000), rng.below(0x10000))
                } else {
                    format!("10.{}.{}.{}", rng.below(256), rng.below(256), 1 + rng.below(254))
                },
                az: azs[rng.below(3) as usize],
                region,
            }
        })
        .collect();
    let services = ["AMAZON", "S3", "EC2", "DYNAMODB", "CLOUDFRONT", "ROUTE53"];
    let well_known = [22u64, 53, 80, 443, 3306, 5432, 6379, 8080, 9092, 27017];
    let mut out = String::with_capacity(lines * 260);
    let mut start = 1_700_000_000u64;
    for n in 0..lines {
        if n % 500 == 0 {
            start += 60;
        }
        let eni = &enis[rng.below(enis.len() as u64) as usize];
        let v6 = eni.addr.contains(':');
        if rng.below(1000) < 7 {
            // NODATA / SKIPDATA rows: dashes in flow fields.
            let status = if rng.chance(80) { "NODATA" } else { "SKIPDATA" };
            let _ = writeln!(
                out,
                "5 {} {} - - - - - - - {} {} - {} {} {} {} - - - - {} {} - - - - - -",
                eni.account,
                eni.id,
                start,
                start + 60,
                status,
                eni.vpc,
                eni.subnet,
                eni.instance,
                eni.region,
                eni.az,
            );
            continue;
        }
        let remote = if v6 {
            format!(
                "2600:{:x}:{:x}:{:x}::{:x}",
                rng.below(0x10000),
                rng.below(0x10000),
                rng.below(0x10000),
                rng.below(0x10000)
            )
        } else if rng.chance(60) {
            format!("10.{}.{}.{}", rng.below(256), rng.below(256), 1 + rng.below(254))
        } else {
            format!("{}.{}.{}.{}", 1 + rng.below(223), rng.below(256), rng.below(256), 1 + rng.below(254))
        };
        let ingress = rng.chance(50);
        let (src, dst) =
            if ingress { (remote.as_str(), eni.addr.as_str()) } else { (eni.addr.as_str(), remote.as_str()) };
        let service_port = well_known[rng.below(well_known.len() as u64) as usize];
        let ephemeral = 32_768 + rng.below(32_768);
        let (srcport, dstport) = if rng.chance(50) { (ephemeral, service_port) } else { (service_port, ephemeral) };
        let protocol = match rng.below(100) {
            0..=79 => 6,
            80..=97 => 17,
            _ => {
                if v6 {
                    58
                } else {
                    1
                }
            }
        };
        let (srcport, dstport) = if protocol == 1 || protocol == 58 { (0, 0) } else { (srcport, dstport) };
        let heavy = rng.chance(10);
        let packets = 1 + rng.below(if heavy { 1_000_000 } else { 200 });
        let bytes = packets * (40 + rng.below(1_460));
        let first = start + rng.below(30);
        let action = if rng.chance(93) { "ACCEPT" } else { "REJECT" };
        let tcp_flags =
            if protocol == 6 { ["0", "2", "3", "18", "19", "27", "1", "4"][rng.below(8) as usize] } else { "0" };
        let (pkt_src, pkt_dst) = if rng.chance(5) { (remote.as_str(), dst) } else { (src, dst) };
        let src_service = if ingress && rng.chance(15) { rng.pick(&services) } else { "-" };
        let dst_service = if !ingress && rng.chance(15) { rng.pick(&services) } else { "-" };
        let traffic_path = if ingress { "-".to_owned() } else { (1 + rng.below(8)).to_string() };
        let (sub_type, sub_id) =
            if rng.below(1000) < 3 { ("outpost", format!("op-{}", rng.hex(17))) } else { ("-", "-".to_owned()) };
        let _ = writeln!(
            out,
            "5 {} {} {src} {dst} {srcport} {dstport} {protocol} {packets} {bytes} {first} {} {action} OK {} {} {} \
             {tcp_flags} {} {pkt_src} {pkt_dst} {} {} {sub_type} {sub_id} {src_service} {dst_service} {} {traffic_path}",
            eni.account,
            eni.id,
            start + 60,
            eni.vpc,
            eni.subnet,
            eni.instance,
            if v6 { "IPv6" } else { "IPv4" },
            eni.region,
            eni.az,
            if ingress { "ingress" } else { "egress" },
        );
    }
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn bench_decode(c: &mut Criterion) {
    let format = v5_format();
    let text = generate(LINES);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), LINES);

    // Sanity: every generated line decodes.
    let mut values = Vec::with_capacity(format.len());
    for line in &lines {
        format.decode_into(line, &mut values).unwrap_or_else(|e| panic!("{e}: {line}"));
    }

    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(LINES as u64));
    group.sample_size(20);

    group.bench_function("decode_into_v5_line_loop", |b| {
        let mut values = Vec::with_capacity(format.len());
        b.iter(|| {
            let mut ok = 0usize;
            for line in &lines {
                if format.decode_into(black_box(line), &mut values).is_ok() {
                    ok += 1;
                }
                black_box(&values);
            }
            assert_eq!(ok, LINES);
            ok
        })
    });

    // The payload as an S3 object or raw Kinesis record would carry it:
    // a header line, then the records.
    let payload = format!("{format}\n{text}");
    let decoder = Decoder::new(DecodeOptions { max_decompressed: 1 << 30, ..DecodeOptions::default() });
    let run = |bytes: &[u8]| {
        let mut records = 0usize;
        let (_, stats) = decoder
            .decode(black_box(bytes), &mut |item| {
                if let Item::Record { record, .. } = item {
                    black_box(record.u64(Field::Bytes));
                    records += 1;
                }
            })
            .unwrap();
        assert_eq!(records, LINES);
        assert_eq!(stats.rejected, 0);
        stats
    };
    group.bench_function("decoder_text_payload_v5", |b| b.iter(|| run(payload.as_bytes())));

    let compressed = gzip(payload.as_bytes());
    group.bench_function("decoder_gzip_payload_v5", |b| b.iter(|| run(&compressed)));
    group.finish();
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
