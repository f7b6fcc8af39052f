//! Traffic: flow-log records between the fleet's applications, to AWS
//! services and to the internet, each side with its true owner.
//!
//! A record is written by the interface that logged it, for one
//! aggregation window (1 or 10 minutes per interface). The demo only makes
//! a record whose two sides kept their holders through the whole window:
//! traffic to an address that changed hands mid-window would be two
//! records, and "the owner at the time of the flow" is then the owner at
//! the record's `start`.

use std::net::Ipv4Addr;

use crate::rng::Rng;
use crate::wire::AWS_SERVICES;
use crate::world::{Role, Time, World, ACCOUNTS};

/// What a flow side truly was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truth {
    /// An address of the fleet: the segment says which ENI (and instance).
    Fleet {
        segment: usize,
    },
    Aws {
        service: &'static str,
    },
    /// Anyone else: possibly an address the fleet held earlier.
    Internet,
}

#[derive(Debug, Clone, Copy)]
pub struct Side {
    pub ip: Ipv4Addr,
    pub truth: Truth,
    /// Whether this is the interface that logged the record.
    pub logging: bool,
}

#[derive(Debug, Clone)]
pub struct Flow {
    pub eni: usize,
    pub start: Time,
    pub end: Time,
    pub src: Side,
    pub dst: Side,
    pub srcport: u16,
    pub dstport: u16,
    pub protocol: u8,
    pub packets: u64,
    pub bytes: u64,
}

impl Flow {
    /// The record in the default (version 2) format.
    pub fn line(&self, world: &World) -> String {
        let account = ACCOUNTS[world.vpcs[world.vpc_of_eni(self.eni)].account];
        format!(
            "2 {account} {} {} {} {} {} {} {} {} {} {} ACCEPT OK",
            world.enis[self.eni].id,
            self.src.ip,
            self.dst.ip,
            self.srcport,
            self.dstport,
            self.protocol,
            self.packets,
            self.bytes,
            self.start,
            self.end
        )
    }
}

/// An interface's aggregation interval: a third log every minute.
pub fn interval(eni: usize) -> Time {
    if eni % 10 < 3 {
        60
    } else {
        600
    }
}

const SERVICE_PORTS: [u16; 7] = [443, 443, 80, 5432, 6379, 8080, 9092];

pub fn generate(world: &World, flows: u64, rng: &mut Rng) -> Vec<Flow> {
    let talkers: Vec<usize> =
        (0..world.enis.len()).filter(|&e| !matches!(world.enis[e].role, Role::Floating) || e % 2 == 0).collect();
    let mut out = Vec::with_capacity(flows as usize);
    let mut attempts = 0u64;
    while (out.len() as u64) < flows {
        attempts += 1;
        assert!(attempts < flows * 50 + 10_000, "the fleet is too quiet to make {flows} flows");
        if let Some(flow) = one(world, &talkers, rng) {
            out.push(flow);
        }
    }
    out
}

fn one(world: &World, talkers: &[usize], rng: &mut Rng) -> Option<Flow> {
    let eni = *rng.pick(talkers);
    let t = rng.between(world.start + 300, world.end - 600);
    let step = interval(eni);
    let (start, end) = (t - t.rem_euclid(step), t - t.rem_euclid(step) + step);
    let me = talking(world, eni, start, end)?;
    let vpc = world.vpc_of_eni(eni);
    let own = Side { ip: me.primary, truth: fleet(world, Some(vpc), me.primary, start)?, logging: true };
    let roll = rng.unit();
    let (peer, inbound) = if roll < 0.55 {
        (private_peer(world, eni, start, end, rng)?, false)
    } else if roll < 0.65 {
        (aws_peer(world, vpc, rng), false)
    } else if roll < 0.77 {
        (public_peer(world, eni, start, end, rng)?, false)
    } else if roll < 0.90 || me.public.is_none() {
        (internet_peer(world, start, end, rng), false)
    } else {
        (internet_peer(world, start, end, rng), true)
    };
    let egress = !inbound && rng.chance(0.5);
    let (src, dst) = if egress { (own, peer) } else { (peer, own) };
    let packets = 1 + rng.below(2_000);
    Some(Flow {
        eni,
        start,
        end,
        src,
        dst,
        srcport: if inbound { rng.between(1024, 65535) as u16 } else { rng.between(32768, 61000) as u16 },
        dstport: *rng.pick(&SERVICE_PORTS),
        protocol: if rng.chance(0.9) { 6 } else { 17 },
        packets,
        bytes: packets * rng.between(60, 1400) as u64,
    })
}

/// The interface's state if it can talk through the window: it exists,
/// kept its addresses, and its instance (if any) ran throughout.
fn talking(world: &World, eni: usize, start: Time, end: Time) -> Option<&crate::world::EniState> {
    let state = world.enis[eni].stable(start, end)?;
    match (&state.attachment, &world.enis[eni].role) {
        (Some(a), _) => world.instances[a.instance].running(start, end).then_some(state),
        (None, Role::Service { .. }) => Some(state),
        (None, _) => None,
    }
}

fn fleet(world: &World, vpc: Option<usize>, ip: Ipv4Addr, t: Time) -> Option<Truth> {
    world.holder(vpc, ip, t).map(|segment| Truth::Fleet { segment })
}

/// An instance of one of the app's dependencies in the same VPC (or a
/// load balancer or endpoint there), by a private address.
fn private_peer(world: &World, eni: usize, start: Time, end: Time, rng: &mut Rng) -> Option<Side> {
    let vpc = world.vpc_of_eni(eni);
    let candidates = peers(world, eni, start, |other| world.vpc_of_eni(other) == vpc)?;
    let other = *rng.pick(&candidates);
    let state = talking(world, other, start, end)?;
    let ip = if !state.secondary.is_empty() && rng.chance(0.3) { *rng.pick(&state.secondary) } else { state.primary };
    Some(Side { ip, truth: fleet(world, Some(vpc), ip, start)?, logging: false })
}

/// An instance of a dependency in another VPC, by its public address.
fn public_peer(world: &World, eni: usize, start: Time, end: Time, rng: &mut Rng) -> Option<Side> {
    let vpc = world.vpc_of_eni(eni);
    let candidates = peers(world, eni, start, |other| world.vpc_of_eni(other) != vpc)?;
    let other = *rng.pick(&candidates);
    let ip = talking(world, other, start, end)?.public.as_ref()?.ip;
    // The address must have kept its holder through the window too.
    let segment = world.holder(None, ip, start)?;
    world.segments[segment].covers(end).then_some(Side { ip, truth: Truth::Fleet { segment }, logging: false })
}

/// Interfaces of the talker's dependencies (instances) that pass `keep`,
/// or, for an interface without an app, any instance interface; `None`
/// when there is none.
fn peers(world: &World, eni: usize, t: Time, keep: impl Fn(usize) -> bool) -> Option<Vec<usize>> {
    let app = world.enis[eni].state_at(t).and_then(|s| s.attachment.as_ref()).map(|a| world.instances[a.instance].app);
    let mut out: Vec<usize> = world
        .instances
        .iter()
        .filter(|i| app.is_none_or(|a| world.apps[a].deps.contains(&i.app)))
        .map(|i| i.eni)
        .filter(|&e| e != eni && keep(e) && world.enis[e].state_at(t).is_some())
        .collect();
    // Load balancers and endpoints of the VPC take a share of the calls.
    out.extend(
        (0..world.enis.len())
            .filter(|&e| matches!(world.enis[e].role, Role::Service { .. }) && e != eni && keep(e))
            .take(2),
    );
    (!out.is_empty()).then_some(out)
}

fn aws_peer(world: &World, vpc: usize, rng: &mut Rng) -> Side {
    let region = world.region_of_vpc(vpc).name;
    let ranges: Vec<_> = AWS_SERVICES.iter().filter(|(_, r, _)| *r == region).collect();
    let (prefix, _, service) = **rng.pick(&ranges);
    let (base, len) = prefix.split_once('/').expect("a CIDR");
    let base = u32::from(base.parse::<Ipv4Addr>().expect("an address"));
    let ip = Ipv4Addr::from(base + rng.below(1 << (32 - len.parse::<u32>().expect("a length"))) as u32);
    Side { ip, truth: Truth::Aws { service }, logging: false }
}

/// Someone on the internet: documentation ranges, or an address the
/// fleet gave back to Amazon a while ago and another customer now uses.
fn internet_peer(world: &World, start: Time, end: Time, rng: &mut Rng) -> Side {
    if rng.chance(0.4) {
        let released: Vec<_> = world.released.iter().filter(|(at, _, _)| *at + 60 <= start).collect();
        if !released.is_empty() {
            let (_, ip, _) = **rng.pick(&released);
            let free = world.holder(None, ip, start).is_none()
                && world.by_address.get(&(None, ip)).is_none_or(|list| {
                    list.iter()
                        .all(|&s| world.segments[s].from > end || world.segments[s].to.is_some_and(|to| to <= start))
                });
            if free {
                return Side { ip, truth: Truth::Internet, logging: false };
            }
        }
    }
    let net = if rng.chance(0.5) { [198, 51, 100] } else { [203, 0, 113] };
    Side { ip: Ipv4Addr::new(net[0], net[1], net[2], 1 + rng.below(254) as u8), truth: Truth::Internet, logging: false }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::Options;

    #[test]
    fn every_side_has_a_truth_that_holds_through_the_window() {
        let world = World::build(&Options { seed: 11, churn: 1.0, start: 1_800_000_000, end: 1_800_000_000 + 7200 });
        let flows = generate(&world, 5_000, &mut Rng::new(1));
        assert_eq!(flows.len(), 5_000);
        let mut kinds = [0; 3];
        for f in &flows {
            assert!(f.src.logging ^ f.dst.logging);
            for side in [f.src, f.dst] {
                match side.truth {
                    Truth::Fleet { segment } => {
                        let s = &world.segments[segment];
                        assert_eq!(s.ip, side.ip);
                        assert!(s.covers(f.start) && s.covers(f.end - 1));
                        kinds[0] += 1;
                    }
                    Truth::Aws { .. } => kinds[1] += 1,
                    Truth::Internet => kinds[2] += 1,
                }
            }
            let logging = if f.src.logging { f.src } else { f.dst };
            let Truth::Fleet { segment } = logging.truth else { panic!("the logging side is the fleet's") };
            assert_eq!(world.segments[segment].eni, f.eni);
        }
        assert!(kinds.iter().all(|&k| k > 100), "{kinds:?}");
    }
}
