//! The simulated fleet and its whole history: the ground truth the demo
//! scores against, and the ownership events that history makes EC2 send.
//!
//! The world is simulated first, from start to end; the run then delivers
//! what it emitted, late and out of order, to the real handlers. Every
//! change to an ENI is an [`Entry`] in its history, with the events that
//! announce it; [`Segment`]s (who held which address when) are derived from
//! those histories.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::Ipv4Addr;

use crate::rng::Rng;

/// Unix seconds.
pub type Time = i64;

/// An address where it is unique: `Some(vpc)` for a private address,
/// `None` for a public one.
pub type Place = (Option<usize>, Ipv4Addr);

/// Where the fleet lived a day before the run: known only from the first
/// reconcile, as when Dredge is deployed into a running account.
pub const BEFORE: Time = 86_400;

pub struct Region {
    pub name: &'static str,
    pub azs: [&'static str; 3],
    pub az_ids: [&'static str; 3],
    /// The first two octets of Amazon's public pool handed to instances.
    pub public_pool: [u8; 2],
    pub eip_pool: [u8; 2],
}

pub const REGIONS: [Region; 2] = [
    Region {
        name: "us-east-1",
        azs: ["us-east-1a", "us-east-1b", "us-east-1c"],
        az_ids: ["use1-az4", "use1-az6", "use1-az1"],
        public_pool: [54, 210],
        eip_pool: [44, 196],
    },
    Region {
        name: "eu-west-1",
        azs: ["eu-west-1a", "eu-west-1b", "eu-west-1c"],
        az_ids: ["euw1-az1", "euw1-az2", "euw1-az3"],
        public_pool: [34, 240],
        eip_pool: [52, 49],
    },
];

pub const ACCOUNTS: [&str; 2] = ["111122223333", "444455556666"];

const APPS: [&str; 24] = [
    "api", "web", "edge", "auth", "search", "billing", "orders", "cart", "catalog", "images", "video", "mail",
    "notify", "queue", "metrics", "logs", "config", "gateway", "users", "profile", "recs", "ledger", "fraud", "feed",
];

/// Addresses each subnet hands out: few, so that freed ones come back to
/// other applications within minutes.
const SUBNET_POOL: u8 = 40;
/// EC2 does not hand a freed address out again at once.
const REUSE_AFTER: Time = 30;

pub struct Vpc {
    pub id: String,
    pub account: usize,
    pub region: usize,
    /// `10.x`: two VPCs of different accounts share one, as in real fleets.
    pub net: [u8; 2],
    pub subnets: Vec<usize>,
}

pub struct Subnet {
    pub id: String,
    pub vpc: usize,
    pub az: usize,
    pub octet: u8,
}

pub struct App {
    pub name: String,
    pub stack: &'static str,
    /// The Frigga-named auto scaling group.
    pub asg: String,
    pub vpcs: Vec<usize>,
    /// Whether its instances get auto-assigned public addresses.
    pub public: bool,
    /// The applications it calls.
    pub deps: Vec<usize>,
}

pub struct Eip {
    pub allocation_id: String,
    pub ip: Ipv4Addr,
    pub vpc: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// An instance's primary interface, deleted with it.
    Primary,
    /// Created, attached, moved between instances and deleted by calls.
    Floating,
    /// A load balancer's or endpoint's interface: belongs to no instance.
    Service { interface_type: &'static str, description: String, requester: &'static str },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Public {
    pub ip: Ipv4Addr,
    /// An Elastic IP (allocation, association) rather than an
    /// auto-assigned address.
    pub eip: Option<(usize, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub instance: usize,
    pub id: String,
    pub device: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EniState {
    pub primary: Ipv4Addr,
    pub secondary: Vec<Ipv4Addr>,
    pub public: Option<Public>,
    pub attachment: Option<Attachment>,
}

/// One change of an ENI: its state from `at` on (`None`: deleted), and the
/// events that tell of it.
pub struct Entry {
    pub at: Time,
    pub state: Option<EniState>,
    pub events: Vec<usize>,
}

pub struct Eni {
    pub id: String,
    pub subnet: usize,
    pub role: Role,
    pub mac: String,
    pub history: Vec<Entry>,
}

impl Eni {
    /// The state at `t` (`None` before creation and after deletion).
    pub fn state_at(&self, t: Time) -> Option<&EniState> {
        let i = self.history.partition_point(|e| e.at <= t);
        i.checked_sub(1).and_then(|i| self.history[i].state.as_ref())
    }

    /// The state through `[from, to]`, if it did not change meanwhile.
    pub fn stable(&self, from: Time, to: Time) -> Option<&EniState> {
        let i = self.history.partition_point(|e| e.at <= from);
        if self.history.get(i).is_some_and(|e| e.at <= to) {
            return None;
        }
        self.state_at(from)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceState {
    Pending,
    Running,
    Stopping,
    Stopped,
    ShuttingDown,
    Terminated,
}

impl InstanceState {
    pub fn name(self) -> &'static str {
        match self {
            InstanceState::Pending => "pending",
            InstanceState::Running => "running",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
            InstanceState::ShuttingDown => "shutting-down",
            InstanceState::Terminated => "terminated",
        }
    }

    pub fn code(self) -> u32 {
        match self {
            InstanceState::Pending => 0,
            InstanceState::Running => 16,
            InstanceState::ShuttingDown => 32,
            InstanceState::Terminated => 48,
            InstanceState::Stopping => 64,
            InstanceState::Stopped => 80,
        }
    }
}

pub struct Instance {
    pub id: String,
    pub app: usize,
    pub subnet: usize,
    pub eni: usize,
    pub launched: Time,
    pub states: Vec<(Time, InstanceState)>,
}

impl Instance {
    pub fn state_at(&self, t: Time) -> Option<InstanceState> {
        let i = self.states.partition_point(|(at, _)| *at <= t);
        i.checked_sub(1).map(|i| self.states[i].1)
    }

    /// Running through `[from, to]`.
    pub fn running(&self, from: Time, to: Time) -> bool {
        self.state_at(from) == Some(InstanceState::Running)
            && !self.states.iter().any(|(at, _)| *at > from && *at <= to)
    }
}

/// What an ownership event says happened.
#[derive(Debug, Clone)]
pub enum EventSpec {
    StateChange { instance: usize, state: InstanceState },
    RunInstances { instance: usize },
    TerminateInstances { instance: usize },
    AssignPrivate { eni: usize, ip: Ipv4Addr },
    UnassignPrivate { eni: usize, ip: Ipv4Addr },
    AssociateAddress { eni: usize, eip: usize, association_id: String },
    DisassociateAddress { association_id: String },
    CreateNetworkInterface { eni: usize },
    AttachNetworkInterface { eni: usize, instance: usize, attachment_id: String },
    DetachNetworkInterface { attachment_id: String },
    DeleteNetworkInterface { eni: usize },
}

impl EventSpec {
    /// EC2 state changes reach EventBridge in seconds; CloudTrail calls in
    /// minutes.
    pub fn is_state_change(&self) -> bool {
        matches!(self, EventSpec::StateChange { .. })
    }

    pub fn label(&self) -> &'static str {
        match self {
            EventSpec::StateChange { .. } => "state change",
            EventSpec::RunInstances { .. } => "RunInstances",
            EventSpec::TerminateInstances { .. } => "TerminateInstances",
            EventSpec::AssignPrivate { .. } => "AssignPrivateIpAddresses",
            EventSpec::UnassignPrivate { .. } => "UnassignPrivateIpAddresses",
            EventSpec::AssociateAddress { .. } => "AssociateAddress",
            EventSpec::DisassociateAddress { .. } => "DisassociateAddress",
            EventSpec::CreateNetworkInterface { .. } => "CreateNetworkInterface",
            EventSpec::AttachNetworkInterface { .. } => "AttachNetworkInterface",
            EventSpec::DetachNetworkInterface { .. } => "DetachNetworkInterface",
            EventSpec::DeleteNetworkInterface { .. } => "DeleteNetworkInterface",
        }
    }
}

/// One ownership event as EC2 emitted it (before delivery).
pub struct Emitted {
    pub at: Time,
    pub vpc: usize,
    pub id: String,
    pub spec: EventSpec,
}

/// Who held an address from `from` until `to`: the ground truth.
#[derive(Debug, Clone)]
pub struct Segment {
    /// `Some(vpc)` for a private address, `None` for a public one.
    pub vpc: Option<usize>,
    pub ip: Ipv4Addr,
    pub eni: usize,
    pub instance: Option<usize>,
    pub from: Time,
    pub to: Option<Time>,
    /// The events that told of the segment's start and of its end.
    pub opened_by: Vec<usize>,
    pub closed_by: Vec<usize>,
}

impl Segment {
    pub fn covers(&self, t: Time) -> bool {
        self.from <= t && self.to.is_none_or(|to| t < to)
    }
}

/// How much the fleet changes: instance replacements per instance per
/// hour; the other changes scale with it.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub seed: u64,
    pub churn: f64,
    pub start: Time,
    pub end: Time,
}

pub struct World {
    pub start: Time,
    pub end: Time,
    pub vpcs: Vec<Vpc>,
    pub subnets: Vec<Subnet>,
    pub apps: Vec<App>,
    pub eips: Vec<Eip>,
    pub enis: Vec<Eni>,
    pub instances: Vec<Instance>,
    pub events: Vec<Emitted>,
    pub segments: Vec<Segment>,
    /// Segment indices by (VPC for private addresses, address), by start.
    pub by_address: HashMap<Place, Vec<usize>>,
    /// Public addresses the fleet gave back to Amazon (time, address,
    /// region): another customer may use them next.
    pub released: Vec<(Time, Ipv4Addr, usize)>,
}

impl World {
    /// The true holder of `ip` (in `vpc` when private) at `t`.
    pub fn holder(&self, vpc: Option<usize>, ip: Ipv4Addr, t: Time) -> Option<usize> {
        self.by_address.get(&(vpc, ip))?.iter().copied().find(|&s| self.segments[s].covers(t))
    }

    /// Segments of `ip` that ended at or before `t`.
    pub fn ended_before(&self, vpc: Option<usize>, ip: Ipv4Addr, t: Time) -> Vec<usize> {
        self.by_address
            .get(&(vpc, ip))
            .map(|v| v.iter().copied().filter(|&s| self.segments[s].to.is_some_and(|to| to <= t)).collect())
            .unwrap_or_default()
    }

    pub fn vpc_of_eni(&self, eni: usize) -> usize {
        self.subnets[self.enis[eni].subnet].vpc
    }

    pub fn region_of_vpc(&self, vpc: usize) -> &'static Region {
        &REGIONS[self.vpcs[vpc].region]
    }

    /// `app (eni-…, i-…)`, for reports.
    pub fn describe_holder(&self, segment: &Segment) -> String {
        let eni = &self.enis[segment.eni];
        match segment.instance {
            Some(i) => format!("{} ({}, {})", self.apps[self.instances[i].app].name, eni.id, self.instances[i].id),
            None => match &eni.role {
                Role::Service { description, .. } => format!("{description} ({})", eni.id),
                _ => format!("detached {}", eni.id),
            },
        }
    }

    pub fn build(options: &Options) -> World {
        let mut rng = Rng::new(options.seed);
        let mut b = Builder::new(options, rng.fork(1));
        b.layout();
        b.initial_fleet();
        b.schedule_changes(rng.fork(2));
        b.run_changes();
        b.finish()
    }
}

/// Free addresses, most recently freed last: EC2 tends to hand a subnet's
/// freed address out again soon, which is what makes reuse dangerous.
#[derive(Default)]
struct Pool {
    free: Vec<(Time, Ipv4Addr)>,
}

impl Pool {
    fn take(&mut self, at: Time, rng: &mut Rng) -> Option<Ipv4Addr> {
        let eligible = self.free.iter().rposition(|(t, _)| *t + REUSE_AFTER <= at)?;
        // One of the few most recently freed.
        let back = rng.index(3.min(eligible + 1));
        Some(self.free.remove(eligible - back).1)
    }

    fn put(&mut self, at: Time, ip: Ipv4Addr) {
        let i = self.free.partition_point(|(t, _)| *t <= at);
        self.free.insert(i, (at, ip));
    }
}

#[derive(Debug, Clone)]
enum Op {
    Replace,
    Launch { app: usize, vpc: usize },
    Stop,
    Start { instance: usize },
    Assign,
    Unassign { eni: usize, ip: Ipv4Addr },
    Associate,
    Disassociate { eni: usize },
    AutoPublic { eni: usize },
    CreateFloating,
    Attach { eni: usize, attached: u32, last_app: Option<usize> },
    Detach { eni: usize, attached: u32, app: usize },
    Delete { eni: usize },
}

struct Builder {
    start: Time,
    end: Time,
    churn: f64,
    rng: Rng,
    vpcs: Vec<Vpc>,
    subnets: Vec<Subnet>,
    apps: Vec<App>,
    eips: Vec<Eip>,
    enis: Vec<Eni>,
    instances: Vec<Instance>,
    events: Vec<Emitted>,
    subnet_pools: Vec<Pool>,
    public_pools: Vec<Pool>,
    released: Vec<(Time, Ipv4Addr, usize)>,
    /// Which ENI each Elastic IP is on, now.
    eip_on: Vec<Option<usize>>,
    /// Floating ENIs attached to each instance, now.
    floating_on: HashMap<usize, usize>,
    ops: BinaryHeap<Reverse<(Time, u64)>>,
    op_list: Vec<Op>,
}

impl Builder {
    fn new(options: &Options, rng: Rng) -> Builder {
        Builder {
            start: options.start,
            end: options.end,
            churn: options.churn,
            rng,
            vpcs: Vec::new(),
            subnets: Vec::new(),
            apps: Vec::new(),
            eips: Vec::new(),
            enis: Vec::new(),
            instances: Vec::new(),
            events: Vec::new(),
            subnet_pools: Vec::new(),
            public_pools: Vec::new(),
            released: Vec::new(),
            eip_on: Vec::new(),
            floating_on: HashMap::new(),
            ops: BinaryHeap::new(),
            op_list: Vec::new(),
        }
    }

    /// Two accounts in two regions: four VPCs, two of which (in different
    /// accounts) share the 10.0/16 range; three subnets each; Elastic IPs;
    /// 24 applications, a third of them in both regions of their account.
    fn layout(&mut self) {
        let nets = [[10, 0], [10, 1], [10, 0], [10, 2]];
        for (v, net) in nets.into_iter().enumerate() {
            let (account, region) = (v / 2, v % 2);
            let vpc = self.vpcs.len();
            let id = format!("vpc-{}", self.rng.hex(17));
            let mut subnets = Vec::new();
            for az in 0..3 {
                subnets.push(self.subnets.len());
                self.subnets.push(Subnet { id: format!("subnet-{}", self.rng.hex(17)), vpc, az, octet: az as u8 + 1 });
                let mut pool = Pool::default();
                let mut hosts: Vec<u8> = (4..4 + SUBNET_POOL).collect();
                for i in (1..hosts.len()).rev() {
                    hosts.swap(i, self.rng.index(i + 1));
                }
                for h in hosts {
                    pool.put(Time::MIN / 2, Ipv4Addr::new(net[0], net[1], az as u8 + 1, h));
                }
                self.subnet_pools.push(pool);
            }
            self.vpcs.push(Vpc { id, account, region, net, subnets });
            for n in 0..2u8 {
                let p = REGIONS[region].eip_pool;
                self.eips.push(Eip {
                    allocation_id: format!("eipalloc-{}", self.rng.hex(17)),
                    ip: Ipv4Addr::new(p[0], p[1], account as u8 * 16 + v as u8, 10 + n),
                    vpc,
                });
                self.eip_on.push(None);
            }
        }
        for region in &REGIONS {
            let mut pool = Pool::default();
            let p = region.public_pool;
            for i in 0..600u32 {
                let ip = Ipv4Addr::new(p[0], p[1], (i / 200) as u8 + 8, (i % 200) as u8 + 20);
                pool.put(Time::MIN / 2, ip);
            }
            for i in (1..pool.free.len()).rev() {
                let j = self.rng.index(i + 1);
                pool.free.swap(i, j);
            }
            self.public_pools.push(pool);
        }
        for (i, name) in APPS.iter().enumerate() {
            let home = i % 4;
            let mut vpcs = vec![home];
            if i % 3 == 0 {
                vpcs.push(home ^ 1); // the same account's other region
            }
            let stack = if i % 7 == 6 { "test" } else { "prod" };
            let asg = format!("{name}-{stack}-v{:03}", 1 + self.rng.below(120));
            self.apps.push(App { name: name.to_string(), stack, asg, vpcs, public: i % 4 != 3, deps: Vec::new() });
        }
        let n = self.apps.len();
        for i in 0..n {
            let mut deps = Vec::new();
            while deps.len() < 3 {
                let d = self.rng.index(n);
                if d != i && !deps.contains(&d) {
                    deps.push(d);
                }
            }
            self.apps[i].deps = deps;
        }
    }

    fn initial_fleet(&mut self) {
        let at = self.start - BEFORE;
        for app in 0..self.apps.len() {
            for vpc in self.apps[app].vpcs.clone() {
                for _ in 0..2 + self.rng.below(3) {
                    self.launch(app, vpc, at, false);
                }
            }
        }
        for vpc in 0..self.vpcs.len() {
            let subnets = self.vpcs[vpc].subnets.clone();
            for k in 0..3 {
                let subnet = subnets[k % subnets.len()];
                let role = if k < 2 {
                    let app = &self.apps[self.rng.index(self.apps.len())].name;
                    Role::Service {
                        interface_type: "network_load_balancer",
                        description: format!("ELB net/{app}-lb/{}", self.rng.hex(16)),
                        requester: "amazon-elb",
                    }
                } else {
                    Role::Service {
                        interface_type: "vpc_endpoint",
                        description: format!("VPC Endpoint Interface vpce-{}", self.rng.hex(17)),
                        requester: "727180483921",
                    }
                };
                let Some(primary) = self.take_private(subnet, at) else { continue };
                let eni = self.new_eni(subnet, role);
                self.set(
                    eni,
                    at,
                    Some(EniState { primary, secondary: Vec::new(), public: None, attachment: None }),
                    vec![],
                );
            }
        }
    }

    fn schedule_changes(&mut self, mut rng: Rng) {
        let hours = (self.end - self.start) as f64 / 3600.0;
        let fleet = self.instances.len() as f64;
        let per_hour = self.churn * fleet * hours;
        let kinds: [(Op, f64); 5] = [
            (Op::Replace, per_hour),
            (Op::Stop, 0.1 * per_hour),
            (Op::Assign, 0.2 * per_hour),
            (Op::Associate, 0.05 * per_hour),
            (Op::CreateFloating, 0.05 * per_hour),
        ];
        let last = self.end - 600;
        for (op, mean) in kinds {
            // Every kind happens at least once when the fleet churns at all.
            let n = if self.churn > 0.0 { rng.count(mean).max(1) } else { 0 };
            for _ in 0..n {
                let at = rng.between(self.start, last);
                self.schedule(at, op.clone());
            }
        }
    }

    fn schedule(&mut self, at: Time, op: Op) {
        let seq = self.op_list.len() as u64;
        self.op_list.push(op);
        self.ops.push(Reverse((at, seq)));
    }

    fn run_changes(&mut self) {
        while let Some(Reverse((at, seq))) = self.ops.pop() {
            let op = self.op_list[seq as usize].clone();
            self.apply(at, op);
        }
    }

    fn apply(&mut self, at: Time, op: Op) {
        match op {
            Op::Replace => {
                let Some(i) =
                    self.pick_instance(at, |b, i| !b.floating_on.contains_key(&i) && b.eip_of_instance(i).is_none())
                else {
                    return;
                };
                self.terminate(i, at);
                let (app, vpc) = (self.instances[i].app, self.subnets[self.instances[i].subnet].vpc);
                let back = at + self.rng.between(30, 180);
                self.schedule(back, Op::Launch { app, vpc });
            }
            Op::Launch { app, vpc } => {
                self.launch(app, vpc, at, true);
            }
            Op::Stop => {
                let Some(i) = self.pick_instance(at, |b, i| !b.floating_on.contains_key(&i)) else { return };
                let stopped = self.stop(i, at);
                let start = stopped + self.rng.between(300, 1800);
                self.schedule(start, Op::Start { instance: i });
            }
            Op::Start { instance } => self.start_instance(instance, at),
            Op::Assign => {
                let Some(i) = self.pick_instance(at, |_, _| true) else { return };
                let eni = self.instances[i].eni;
                let Some(mut state) = self.current(eni) else { return };
                let Some(ip) = self.take_private(self.enis[eni].subnet, at) else { return };
                state.secondary.push(ip);
                let e = self.emit(at, eni, EventSpec::AssignPrivate { eni, ip });
                self.set(eni, at, Some(state), vec![e]);
                let later = at + self.rng.between(600, 2400);
                self.schedule(later, Op::Unassign { eni, ip });
            }
            Op::Unassign { eni, ip } => {
                let Some(mut state) = self.current(eni) else { return };
                let Some(k) = state.secondary.iter().position(|a| *a == ip) else { return };
                state.secondary.remove(k);
                let e = self.emit(at, eni, EventSpec::UnassignPrivate { eni, ip });
                self.set(eni, at, Some(state), vec![e]);
                self.subnet_pools[self.enis[eni].subnet].put(at, ip);
            }
            Op::Associate => self.associate(at),
            Op::Disassociate { eni } => {
                let Some(mut state) = self.current(eni) else { return };
                let Some(Public { eip: Some((eip, association_id)), .. }) = state.public.take() else { return };
                self.eip_on[eip] = None;
                let e = self.emit(at, eni, EventSpec::DisassociateAddress { association_id });
                self.set(eni, at, Some(state), vec![e]);
                // EC2 gives the interface a new auto-assigned address within
                // minutes, and tells nobody.
                let later = at + self.rng.between(60, 180);
                self.schedule(later, Op::AutoPublic { eni });
            }
            Op::AutoPublic { eni } => {
                let Some(mut state) = self.current(eni) else { return };
                let Some(a) = state.attachment.as_ref() else { return };
                let instance = a.instance;
                if state.public.is_some() || self.instances[instance].state_at(at) != Some(InstanceState::Running) {
                    return;
                }
                state.public = self.take_public(eni, at).map(|ip| Public { ip, eip: None });
                self.set(eni, at, Some(state), vec![]);
            }
            Op::CreateFloating => {
                let subnet = self.rng.index(self.subnets.len());
                let Some(primary) = self.take_private(subnet, at) else { return };
                let eni = self.new_eni(subnet, Role::Floating);
                let e = self.emit(at, eni, EventSpec::CreateNetworkInterface { eni });
                self.set(
                    eni,
                    at,
                    Some(EniState { primary, secondary: Vec::new(), public: None, attachment: None }),
                    vec![e],
                );
                let later = at + self.rng.between(60, 300);
                self.schedule(later, Op::Attach { eni, attached: 0, last_app: None });
            }
            Op::Attach { eni, attached, last_app } => self.attach(eni, attached, last_app, at),
            Op::Detach { eni, attached, app } => {
                let Some(mut state) = self.current(eni) else { return };
                let Some(a) = state.attachment.take() else { return };
                self.floating_on.remove(&a.instance);
                let e = self.emit(at, eni, EventSpec::DetachNetworkInterface { attachment_id: a.id });
                self.set(eni, at, Some(state), vec![e]);
                let later = at + self.rng.between(60, 300);
                if attached < 2 {
                    self.schedule(later, Op::Attach { eni, attached, last_app: Some(app) });
                } else {
                    self.schedule(later, Op::Delete { eni });
                }
            }
            Op::Delete { eni } => {
                let Some(state) = self.current(eni) else { return };
                if state.attachment.is_some() {
                    return;
                }
                let e = self.emit(at, eni, EventSpec::DeleteNetworkInterface { eni });
                self.set(eni, at, None, vec![e]);
                self.subnet_pools[self.enis[eni].subnet].put(at, state.primary);
            }
        }
    }

    fn pick_instance(&mut self, at: Time, ok: impl Fn(&Builder, usize) -> bool) -> Option<usize> {
        let candidates: Vec<usize> = (0..self.instances.len())
            .filter(|&i| self.instances[i].state_at(at) == Some(InstanceState::Running) && ok(self, i))
            .collect();
        (!candidates.is_empty()).then(|| candidates[self.rng.index(candidates.len())])
    }

    fn eip_of_instance(&self, i: usize) -> Option<usize> {
        let eni = self.instances[i].eni;
        self.eip_on.iter().position(|on| *on == Some(eni))
    }

    fn new_eni(&mut self, subnet: usize, role: Role) -> usize {
        let mac = format!(
            "0e:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            self.rng.below(256),
            self.rng.below(256),
            self.rng.below(256),
            self.rng.below(256),
            self.rng.below(256)
        );
        self.enis.push(Eni { id: format!("eni-{}", self.rng.hex(17)), subnet, role, mac, history: Vec::new() });
        self.enis.len() - 1
    }

    fn current(&self, eni: usize) -> Option<EniState> {
        self.enis[eni].history.last().and_then(|e| e.state.clone())
    }

    fn set(&mut self, eni: usize, at: Time, state: Option<EniState>, events: Vec<usize>) {
        self.enis[eni].history.push(Entry { at, state, events });
    }

    fn emit(&mut self, at: Time, eni: usize, spec: EventSpec) -> usize {
        let vpc = self.subnets[self.enis[eni].subnet].vpc;
        let id = format!(
            "{}-{}-{}-{}-{}",
            self.rng.hex(8),
            self.rng.hex(4),
            self.rng.hex(4),
            self.rng.hex(4),
            self.rng.hex(12)
        );
        self.events.push(Emitted { at, vpc, id, spec });
        self.events.len() - 1
    }

    fn take_private(&mut self, subnet: usize, at: Time) -> Option<Ipv4Addr> {
        self.subnet_pools[subnet].take(at, &mut self.rng)
    }

    fn take_public(&mut self, eni: usize, at: Time) -> Option<Ipv4Addr> {
        let region = self.vpcs[self.subnets[self.enis[eni].subnet].vpc].region;
        self.public_pools[region].take(at, &mut self.rng)
    }

    fn release_public(&mut self, eni: usize, at: Time, ip: Ipv4Addr) {
        let region = self.vpcs[self.subnets[self.enis[eni].subnet].vpc].region;
        self.public_pools[region].put(at, ip);
        self.released.push((at, ip, region));
    }

    fn set_instance(&mut self, i: usize, at: Time, state: InstanceState) {
        self.instances[i].states.push((at, state));
    }

    /// A new instance of `app` in `vpc`; with events unless it predates
    /// the run.
    fn launch(&mut self, app: usize, vpc: usize, at: Time, announce: bool) {
        let subnets = self.vpcs[vpc].subnets.clone();
        let subnet = subnets[self.rng.index(subnets.len())];
        let Some(primary) = self.take_private(subnet, at) else { return };
        let eni = self.new_eni(subnet, Role::Primary);
        let instance = self.instances.len();
        self.instances.push(Instance {
            id: format!("i-{}", self.rng.hex(17)),
            app,
            subnet,
            eni,
            launched: at,
            states: Vec::new(),
        });
        let public = if self.apps[app].public { self.take_public(eni, at) } else { None };
        let attachment = Attachment { instance, id: format!("eni-attach-{}", self.rng.hex(17)), device: 0 };
        let state = EniState {
            primary,
            secondary: Vec::new(),
            public: public.map(|ip| Public { ip, eip: None }),
            attachment: Some(attachment),
        };
        if !announce {
            self.set_instance(instance, at, InstanceState::Running);
            self.set(eni, at, Some(state), vec![]);
            return;
        }
        let running = at + self.rng.between(15, 45);
        self.set_instance(instance, at, InstanceState::Pending);
        self.set_instance(instance, running, InstanceState::Running);
        // The ENI exists (and holds its addresses) from the call on.
        self.set(eni, at, Some(state), vec![]);
        let run = self.emit(at, eni, EventSpec::RunInstances { instance });
        let pending = self.emit(at, eni, EventSpec::StateChange { instance, state: InstanceState::Pending });
        let up = self.emit(running, eni, EventSpec::StateChange { instance, state: InstanceState::Running });
        self.enis[eni].history.last_mut().expect("just set").events = vec![run, pending, up];
    }

    fn terminate(&mut self, i: usize, at: Time) {
        let eni = self.instances[i].eni;
        let gone = at + self.rng.between(45, 150);
        self.set_instance(i, at, InstanceState::ShuttingDown);
        self.set_instance(i, gone, InstanceState::Terminated);
        let call = self.emit(at, eni, EventSpec::TerminateInstances { instance: i });
        let down = self.emit(at, eni, EventSpec::StateChange { instance: i, state: InstanceState::ShuttingDown });
        let dead = self.emit(gone, eni, EventSpec::StateChange { instance: i, state: InstanceState::Terminated });
        let Some(state) = self.current(eni) else { return };
        // The primary interface goes with the instance; its addresses are
        // free for the next launch in the subnet.
        self.set(eni, gone, None, vec![call, down, dead]);
        let subnet = self.enis[eni].subnet;
        for ip in std::iter::once(state.primary).chain(state.secondary) {
            self.subnet_pools[subnet].put(gone, ip);
        }
        if let Some(p) = state.public {
            self.release_public(eni, gone, p.ip);
        }
    }

    /// Stops `i`: its auto-assigned public address goes back to Amazon.
    /// Returns when it stopped.
    fn stop(&mut self, i: usize, at: Time) -> Time {
        let eni = self.instances[i].eni;
        let stopped = at + self.rng.between(20, 90);
        self.set_instance(i, at, InstanceState::Stopping);
        self.set_instance(i, stopped, InstanceState::Stopped);
        let stopping = self.emit(at, eni, EventSpec::StateChange { instance: i, state: InstanceState::Stopping });
        let down = self.emit(stopped, eni, EventSpec::StateChange { instance: i, state: InstanceState::Stopped });
        if let Some(mut state) = self.current(eni) {
            if let Some(Public { ip, eip: None }) = state.public {
                state.public = None;
                self.set(eni, stopped, Some(state), vec![stopping, down]);
                self.release_public(eni, stopped, ip);
            }
        }
        stopped
    }

    /// Starts `i` again: a new auto-assigned public address, if its app
    /// has them and no Elastic IP stayed.
    fn start_instance(&mut self, i: usize, at: Time) {
        if self.instances[i].state_at(at) != Some(InstanceState::Stopped) {
            return;
        }
        let eni = self.instances[i].eni;
        let running = at + self.rng.between(15, 45);
        self.set_instance(i, at, InstanceState::Pending);
        self.set_instance(i, running, InstanceState::Running);
        let pending = self.emit(at, eni, EventSpec::StateChange { instance: i, state: InstanceState::Pending });
        let up = self.emit(running, eni, EventSpec::StateChange { instance: i, state: InstanceState::Running });
        let Some(mut state) = self.current(eni) else { return };
        if state.public.is_none() && self.apps[self.instances[i].app].public {
            state.public = self.take_public(eni, running).map(|ip| Public { ip, eip: None });
            self.set(eni, running, Some(state), vec![pending, up]);
        }
    }

    /// An Elastic IP onto a running instance's primary interface, which
    /// gives back its auto-assigned address.
    fn associate(&mut self, at: Time) {
        let free: Vec<usize> = (0..self.eips.len()).filter(|&e| self.eip_on[e].is_none()).collect();
        if free.is_empty() {
            return;
        }
        let eip = free[self.rng.index(free.len())];
        let vpc = self.eips[eip].vpc;
        let Some(i) = self
            .pick_instance(at, |b, i| b.subnets[b.instances[i].subnet].vpc == vpc && b.eip_of_instance(i).is_none())
        else {
            return;
        };
        let eni = self.instances[i].eni;
        let Some(mut state) = self.current(eni) else { return };
        let association_id = format!("eipassoc-{}", self.rng.hex(17));
        if let Some(old) = state.public.take() {
            self.release_public(eni, at, old.ip);
        }
        state.public = Some(Public { ip: self.eips[eip].ip, eip: Some((eip, association_id.clone())) });
        self.eip_on[eip] = Some(eni);
        let e = self.emit(at, eni, EventSpec::AssociateAddress { eni, eip, association_id });
        self.set(eni, at, Some(state), vec![e]);
        let later = at + self.rng.between(600, 2400);
        self.schedule(later, Op::Disassociate { eni });
    }

    /// A floating interface onto a running instance of another application
    /// in its zone.
    fn attach(&mut self, eni: usize, attached: u32, last_app: Option<usize>, at: Time) {
        let Some(mut state) = self.current(eni) else { return };
        let subnet = self.enis[eni].subnet;
        let (vpc, az) = (self.subnets[subnet].vpc, self.subnets[subnet].az);
        let pick = self.pick_instance(at, |b, i| {
            let s = &b.subnets[b.instances[i].subnet];
            s.vpc == vpc && s.az == az && Some(b.instances[i].app) != last_app && !b.floating_on.contains_key(&i)
        });
        let Some(instance) = pick else {
            self.schedule(at + 60, Op::Delete { eni });
            return;
        };
        let attachment_id = format!("eni-attach-{}", self.rng.hex(17));
        state.attachment = Some(Attachment { instance, id: attachment_id.clone(), device: 1 });
        self.floating_on.insert(instance, eni);
        let e = self.emit(at, eni, EventSpec::AttachNetworkInterface { eni, instance, attachment_id });
        self.set(eni, at, Some(state), vec![e]);
        let later = at + self.rng.between(600, 1800);
        let app = self.instances[instance].app;
        self.schedule(later, Op::Detach { eni, attached: attached + 1, app });
    }

    fn finish(self) -> World {
        let mut segments: Vec<Segment> = Vec::new();
        let mut by_address: HashMap<Place, Vec<usize>> = HashMap::new();
        for (e, eni) in self.enis.iter().enumerate() {
            let vpc = self.subnets[eni.subnet].vpc;
            // Open segments of this ENI: (scope, address, instance) -> index.
            let mut open: HashMap<Place, usize> = HashMap::new();
            for entry in &eni.history {
                let mut held: Vec<(Place, Option<usize>)> = Vec::new();
                if let Some(s) = &entry.state {
                    let instance = s.attachment.as_ref().map(|a| a.instance);
                    for ip in std::iter::once(s.primary).chain(s.secondary.iter().copied()) {
                        held.push(((Some(vpc), ip), instance));
                    }
                    if let Some(p) = &s.public {
                        held.push(((None, p.ip), instance));
                    }
                }
                // Close what is no longer held, or held for another instance.
                let keys: Vec<_> = open.keys().copied().collect();
                for key in keys {
                    let seg = open[&key];
                    if !held.iter().any(|(k, i)| *k == key && *i == segments[seg].instance) {
                        let s: &mut Segment = &mut segments[seg];
                        s.to = Some(entry.at);
                        s.closed_by = entry.events.clone();
                        open.remove(&key);
                    }
                }
                for (key, instance) in held {
                    if open.contains_key(&key) {
                        continue;
                    }
                    let seg = segments.len();
                    segments.push(Segment {
                        vpc: key.0,
                        ip: key.1,
                        eni: e,
                        instance,
                        from: entry.at,
                        to: None,
                        opened_by: entry.events.clone(),
                        closed_by: Vec::new(),
                    });
                    open.insert(key, seg);
                    by_address.entry(key).or_default().push(seg);
                }
            }
        }
        for list in by_address.values_mut() {
            list.sort_by_key(|&s| segments[s].from);
        }
        World {
            start: self.start,
            end: self.end,
            vpcs: self.vpcs,
            subnets: self.subnets,
            apps: self.apps,
            eips: self.eips,
            enis: self.enis,
            instances: self.instances,
            events: self.events,
            segments,
            by_address,
            released: self.released,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world(churn: f64) -> World {
        World::build(&Options { seed: 3, churn, start: 1_800_000_000, end: 1_800_000_000 + 3 * 3600 })
    }

    #[test]
    fn an_address_has_one_holder_at_a_time() {
        let w = world(1.0);
        for list in w.by_address.values() {
            for pair in list.windows(2) {
                let (a, b) = (&w.segments[pair[0]], &w.segments[pair[1]]);
                assert!(a.to.is_some_and(|to| to <= b.from), "{a:?} overlaps {b:?}");
            }
        }
    }

    #[test]
    fn churn_reuses_addresses_across_applications() {
        let w = world(1.0);
        let reused = w
            .by_address
            .iter()
            .filter(|((vpc, _), _)| vpc.is_some())
            .filter(|(_, list)| {
                let apps: Vec<_> =
                    list.iter().filter_map(|&s| w.segments[s].instance.map(|i| w.instances[i].app)).collect();
                apps.windows(2).any(|p| p[0] != p[1])
            })
            .count();
        assert!(reused > 10, "{reused}");
        let kinds: std::collections::BTreeSet<_> = w.events.iter().map(|e| e.spec.label()).collect();
        for k in ["RunInstances", "TerminateInstances", "AssociateAddress", "AttachNetworkInterface", "state change"] {
            assert!(kinds.contains(k), "{k} missing from {kinds:?}");
        }
        assert!(!w.released.is_empty());
    }

    #[test]
    fn the_same_seed_builds_the_same_world() {
        let (a, b) = (world(0.5), world(0.5));
        assert_eq!(a.events.len(), b.events.len());
        assert_eq!(a.segments.len(), b.segments.len());
        assert_eq!(a.enis.iter().map(|e| &e.id).collect::<Vec<_>>(), b.enis.iter().map(|e| &e.id).collect::<Vec<_>>());
    }

    #[test]
    fn without_churn_nothing_happens() {
        let w = world(0.0);
        assert!(w.events.is_empty());
        assert!(w.segments.iter().all(|s| s.to.is_none()));
    }
}
