//! AWS's published address ranges (`ip-ranges.json`): which AWS service and
//! region a public address belongs to.
//!
//! Every address AWS owns is listed under the catch-all `AMAZON`; many are
//! also listed under a specific service (`S3`, `EC2`, ...). A specific
//! service wins over `AMAZON`; among ranges of the same tier the longest
//! prefix wins. Lookups are a binary search over disjoint segments built
//! once from the nested prefixes, not a scan.

use std::net::IpAddr;

use serde::Deserialize;
use thiserror::Error;

/// The catch-all service name.
pub const AMAZON: &str = "AMAZON";

/// One published range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsRange {
    pub prefix: String,
    pub service: String,
    pub region: String,
    pub network_border_group: String,
}

#[derive(Debug, Error)]
pub enum IpRangesError {
    #[error("ip-ranges.json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("ip-ranges.json: bad prefix `{0}`")]
    BadPrefix(String),
}

#[derive(Deserialize)]
struct Document {
    #[serde(rename = "syncToken", default)]
    sync_token: String,
    #[serde(rename = "createDate", default)]
    create_date: String,
    prefixes: Vec<Entry>,
    ipv6_prefixes: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(alias = "ipv6_prefix")]
    ip_prefix: String,
    region: String,
    service: String,
    #[serde(default)]
    network_border_group: String,
}

/// A CIDR block as (first address, last address, prefix length, range index).
type Block = (u128, u128, u8, u32);

/// Disjoint, sorted segments `[start, end]` each naming the range that
/// covers it most specifically.
#[derive(Debug, Default)]
struct Segments {
    starts: Vec<u128>,
    ends: Vec<u128>,
    ranges: Vec<u32>,
}

impl Segments {
    /// CIDR blocks are either nested or disjoint, which the sweep relies on.
    fn build(mut prefixes: Vec<Block>) -> Segments {
        prefixes.sort_by_key(|&(start, _, len, _)| (start, len));
        let mut seg = Segments::default();
        // Enclosing prefixes still open at the sweep position: (end, range).
        let mut open: Vec<(u128, u32)> = Vec::new();
        let mut pos: u128 = 0;
        let emit = |seg: &mut Segments, from: u128, to: u128, range: u32| {
            if from <= to {
                seg.starts.push(from);
                seg.ends.push(to);
                seg.ranges.push(range);
            }
        };
        for (start, end, _, range) in prefixes {
            // Close enclosing prefixes that end before this one starts.
            while let Some(&(open_end, open_range)) = open.last() {
                if open_end >= start {
                    break;
                }
                emit(&mut seg, pos, open_end, open_range);
                pos = open_end.saturating_add(1);
                open.pop();
            }
            if let Some(&(_, outer)) = open.last() {
                if start > pos {
                    emit(&mut seg, pos, start - 1, outer);
                }
            }
            if let Some(&(open_end, _)) = open.last() {
                if open_end == end && start <= pos {
                    // Same block listed twice in one tier: the first wins.
                    continue;
                }
            }
            pos = start;
            open.push((end, range));
        }
        while let Some((open_end, open_range)) = open.pop() {
            emit(&mut seg, pos, open_end, open_range);
            pos = open_end.saturating_add(1);
            if open_end == u128::MAX {
                break;
            }
        }
        seg
    }

    fn find(&self, addr: u128) -> Option<u32> {
        let i = self.starts.partition_point(|&s| s <= addr).checked_sub(1)?;
        (addr <= self.ends[i]).then(|| self.ranges[i])
    }
}

#[derive(Debug, Default)]
struct Family {
    specific: Segments,
    amazon: Segments,
}

impl Family {
    fn find(&self, addr: u128) -> Option<u32> {
        self.specific.find(addr).or_else(|| self.amazon.find(addr))
    }
}

/// The published ranges, ready for lookups.
#[derive(Debug, Default)]
pub struct IpRanges {
    ranges: Vec<AwsRange>,
    v4: Family,
    v6: Family,
    pub sync_token: String,
    pub create_date: String,
}

fn parse_prefix(p: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = p.split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((addr, len))
}

fn bounds(bits: u128, width: u32, len: u8) -> (u128, u128) {
    let host_bits = width - u32::from(len);
    let host_mask: u128 = if host_bits == 128 { u128::MAX } else { (1u128 << host_bits) - 1 };
    let start = bits & !host_mask;
    (start, start | host_mask)
}

impl IpRanges {
    /// Parses AWS's `ip-ranges.json`.
    pub fn from_json(bytes: &[u8]) -> Result<IpRanges, IpRangesError> {
        let doc: Document = serde_json::from_slice(bytes)?;
        let mut ranges = Vec::with_capacity(doc.prefixes.len() + doc.ipv6_prefixes.len());
        // [IPv4, IPv6] x [specific services, AMAZON].
        let mut tiers: [[Vec<Block>; 2]; 2] = Default::default();
        for entry in doc.prefixes.into_iter().chain(doc.ipv6_prefixes) {
            let (addr, len) =
                parse_prefix(&entry.ip_prefix).ok_or_else(|| IpRangesError::BadPrefix(entry.ip_prefix.clone()))?;
            let (family, (start, end)) = match addr {
                IpAddr::V4(a) => (0, bounds(u128::from(u32::from(a)), 32, len)),
                IpAddr::V6(a) => (1, bounds(u128::from(a), 128, len)),
            };
            let tier = usize::from(entry.service == AMAZON);
            let index = u32::try_from(ranges.len()).expect("fewer than 2^32 ranges");
            tiers[family][tier].push((start, end, len, index));
            ranges.push(AwsRange {
                prefix: entry.ip_prefix,
                service: entry.service,
                region: entry.region,
                network_border_group: entry.network_border_group,
            });
        }
        let [[v4s, v4a], [v6s, v6a]] = tiers;
        Ok(IpRanges {
            ranges,
            v4: Family { specific: Segments::build(v4s), amazon: Segments::build(v4a) },
            v6: Family { specific: Segments::build(v6s), amazon: Segments::build(v6a) },
            sync_token: doc.sync_token,
            create_date: doc.create_date,
        })
    }

    /// The range `addr` belongs to, most specific service first.
    pub fn lookup(&self, addr: IpAddr) -> Option<&AwsRange> {
        let index = match addr {
            IpAddr::V4(a) => self.v4.find(u128::from(u32::from(a))),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => self.v4.find(u128::from(u32::from(v4))),
                None => self.v6.find(u128::from(a)),
            },
        }?;
        self.ranges.get(index as usize)
    }

    /// Number of published prefixes.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Every published range, in the document's order.
    pub fn ranges(&self) -> &[AwsRange] {
        &self.ranges
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(v4: &[(&str, &str)], v6: &[(&str, &str)]) -> IpRanges {
        let entry = |key: &str, (p, s): &(&str, &str)| serde_json::json!({key: p, "region": format!("r-{s}"), "service": s, "network_border_group": "g"});
        let doc = serde_json::json!({
            "syncToken": "1", "createDate": "x",
            "prefixes": v4.iter().map(|e| entry("ip_prefix", e)).collect::<Vec<_>>(),
            "ipv6_prefixes": v6.iter().map(|e| entry("ipv6_prefix", e)).collect::<Vec<_>>(),
        });
        IpRanges::from_json(doc.to_string().as_bytes()).unwrap()
    }

    fn service<'a>(r: &'a IpRanges, addr: &str) -> Option<&'a str> {
        r.lookup(addr.parse().unwrap()).map(|x| x.service.as_str())
    }

    #[test]
    fn specific_services_beat_amazon_and_longest_prefix_wins() {
        let r = ranges(
            &[
                ("52.0.0.0/8", "AMAZON"),
                ("52.94.0.0/16", "DYNAMODB"),
                ("52.94.5.0/24", "AMAZON"),
                ("52.94.6.0/24", "ROUTE53_RESOLVER"),
                ("52.94.6.0/24", "AMAZON"),
                ("3.5.0.0/16", "S3"),
            ],
            &[("2600:1f00::/24", "AMAZON"), ("2600:1f18::/33", "EC2")],
        );
        assert_eq!(service(&r, "52.1.1.1"), Some("AMAZON"));
        assert_eq!(service(&r, "52.94.0.10"), Some("DYNAMODB"));
        // A longer AMAZON block inside DYNAMODB's is still DYNAMODB.
        assert_eq!(service(&r, "52.94.5.1"), Some("DYNAMODB"));
        assert_eq!(service(&r, "52.94.6.1"), Some("ROUTE53_RESOLVER"));
        assert_eq!(service(&r, "52.94.7.1"), Some("DYNAMODB"));
        assert_eq!(service(&r, "52.95.0.1"), Some("AMAZON"));
        assert_eq!(service(&r, "3.5.255.255"), Some("S3"));
        assert_eq!(service(&r, "3.6.0.0"), None);
        assert_eq!(service(&r, "8.8.8.8"), None);
        assert_eq!(service(&r, "2600:1f18::1"), Some("EC2"));
        assert_eq!(service(&r, "2600:1f18:8000::1"), Some("AMAZON"));
        assert_eq!(service(&r, "2001:db8::1"), None);
        assert_eq!(service(&r, "::ffff:3.5.0.1"), Some("S3"));
        assert_eq!(r.lookup("52.94.0.10".parse().unwrap()).unwrap().region, "r-DYNAMODB");
    }

    #[test]
    fn segments_agree_with_a_scan() {
        // Nested and adjacent blocks; every address in 10.0.0.0/22 checked
        // against a linear longest-prefix scan.
        let blocks = [
            ("10.0.0.0/22", "A"),
            ("10.0.0.0/24", "B"),
            ("10.0.0.128/25", "C"),
            ("10.0.1.0/24", "D"),
            ("10.0.1.4/30", "E"),
            ("10.0.3.255/32", "F"),
        ];
        let r = ranges(&blocks, &[]);
        for i in 0..1024u32 {
            let addr = std::net::Ipv4Addr::from(0x0a00_0000 + i);
            let expect = blocks
                .iter()
                .filter_map(|(p, s)| {
                    let (net, len) = parse_prefix(p).unwrap();
                    let IpAddr::V4(net) = net else { unreachable!() };
                    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                    (u32::from(addr) & mask == u32::from(net)).then_some((len, *s))
                })
                .max()
                .map(|(_, s)| s);
            assert_eq!(service(&r, &addr.to_string()), expect, "{addr}");
        }
    }
}
