//! The simulated world: Auto Scaling groups and their instances, Nodes, the workload's pods,
//! AWS Node Termination Handler, Cluster Autoscaler, and the figures of the run.
//!
//! One step is one second of virtual time. Within a step: scenario events (signals,
//! interruption notices, interruptions, workload changes), instance life (launch, register,
//! Ready, shutdown), the Auto Scaling group's reconciliation, drains, pods, the scheduler,
//! Cluster Autoscaler's scan when due, then the accounting.

use std::collections::{BTreeMap, BTreeSet};

use booster_core::ledger::Ledger;
use booster_core::ports::{ClusterView, PortError};
use booster_core::snapshot::{CaObservation, Group, Instance, Lifecycle, Node, Signal};
use booster_core::time::{Dur, Timestamp};

use super::report::{Metrics, Sample};
use super::rng;
use super::scenario::{Lead, Scenario};

/// 2024-06-10T12:00:00Z: the start of every run.
pub const START: Timestamp = Timestamp::from_unix_secs(1_718_020_800);

/// The Events' time to live in the apiserver (`--event-ttl`).
const EVENT_TTL: Dur = Dur::from_mins(60);
/// How often the chart samples.
const SAMPLE_EVERY: u64 = 10;

// Draw keys.
const K_BOOT: u64 = 1;
const K_PICK: u64 = 2;
const K_SPREAD: u64 = 3;
const K_LEAD: u64 = 4;
const K_TERM: u64 = 5;
const K_AWS_PICK: u64 = 6;
const K_FORGE: u64 = 7;

/// Who runs a drain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Actor {
    /// AWS Node Termination Handler.
    Nth,
    /// The controller under test (booster or upstream).
    Controller,
}

/// Where a drain stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DrainState {
    Running,
    Drained,
    TimedOut(String),
    /// Its process died (controller restart).
    Aborted,
    NodeGone,
}

struct DrainProc {
    node: String,
    actor: Actor,
    deadline: Timestamp,
    retry_at: BTreeMap<u64, Timestamp>,
    blocker: Option<String>,
    state: DrainState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InstState {
    Pending,
    InService,
    Terminating,
    Gone,
}

struct SimInstance {
    id: String,
    az: String,
    state: InstState,
    /// A replacement AWS launched itself: for a signalled instance (Capacity Rebalancing),
    /// or to even out zones (AZRebalance). It does not count toward desired capacity until
    /// the instance it stands for is gone.
    stands_for: Option<Standin>,
    register_at: Timestamp,
    ready_at: Timestamp,
    node_gone_at: Option<Timestamp>,
    gone_at: Option<Timestamp>,
}

/// Why AWS launched an instance of its own.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Standin {
    /// Capacity Rebalancing: replaces this instance, terminated once the new one is in
    /// service (after EKS drained its node, for a managed node group).
    Replaces(String),
    /// AZRebalance: one instance of the fullest zone goes once the new one is in service.
    Rebalance,
}

struct SimGroup {
    name: String,
    min: u32,
    max: u32,
    desired: u32,
    azs: Vec<String>,
    tags: BTreeMap<String, String>,
    instances: Vec<SimInstance>,
    launches: u64,
    /// Units per instance.
    weight: u32,
    capacity_rebalance: bool,
    eks_managed: bool,
    suspended: BTreeSet<String>,
    /// Launches fail in this window.
    dry: Option<(Timestamp, Timestamp)>,
    /// Failed scaling activities, newest first.
    failures: Vec<booster_core::snapshot::LaunchFailure>,
    /// Raises of desired capacity, newest first (the last ten).
    raises: Vec<booster_core::snapshot::Raise>,
    /// Cluster Autoscaler's view: since when its raise waits, and until when it backs off.
    ca_waiting_since: Option<Timestamp>,
    ca_backoff_until: Option<Timestamp>,
}

impl SimGroup {
    /// Units of the instances that count toward desired capacity.
    fn capacity(&self) -> u32 {
        self.instances
            .iter()
            .filter(|i| matches!(i.state, InstState::Pending | InstState::InService))
            .filter(|i| i.stands_for.is_none())
            .count() as u32
            * self.weight
    }

    /// Raises desired capacity, and keeps the scaling activity AWS records for it.
    fn raise_to(&mut self, desired: u32, at: Timestamp) {
        self.raises.insert(
            0,
            booster_core::snapshot::Raise {
                at,
                from: self.desired,
                to: desired,
            },
        );
        self.raises.truncate(10);
        self.desired = desired;
    }
}

/// The field managers of the cordons the simulated peers make.
const NTH_MANAGER: &str = booster_core::config::NTH_FIELD_MANAGER;
const CA_MANAGER: &str = "cluster-autoscaler";
pub(crate) const BOOSTER_MANAGER: &str = "aws-spots-booster";

pub(crate) struct SimNode {
    pub name: String,
    pub instance_id: String,
    pub group: usize,
    pub created_at: Timestamp,
    pub ready_since: Option<Timestamp>,
    pub unschedulable: bool,
    /// The field manager of the cordon, as `managedFields` would show it.
    pub cordoned_by: Option<&'static str>,
    pub cordoned_at: Option<Timestamp>,
    pub taint: bool,
    pub tainted_at: Option<Timestamp>,
    /// NTH's spot-itn taint (its interruption handling, taints on).
    pub itn_taint: bool,
    pub protected_for: Option<String>,
    pub scale_down_disabled: bool,
    /// Upstream's `asbooster.docplanner.com/ignore-recent-ready` annotation.
    pub upstream_ignore: bool,
}

impl SimNode {
    /// A cordon by `manager` at `at`; an uncordon when `manager` is `None`.
    pub(crate) fn cordon(&mut self, manager: &'static str, at: Timestamp) {
        if !self.unschedulable {
            self.unschedulable = true;
            self.cordoned_by = Some(manager);
            self.cordoned_at = Some(at);
        }
    }

    pub(crate) fn uncordon(&mut self) {
        self.unschedulable = false;
        self.cordoned_by = None;
        self.cordoned_at = None;
    }
}

struct Pod {
    app: usize,
    node: Option<String>,
    running_at: Option<Timestamp>,
    terminating_until: Option<Timestamp>,
}

impl Pod {
    fn terminating(&self) -> bool {
        self.terminating_until.is_some()
    }
    fn running(&self, now: Timestamp) -> bool {
        !self.terminating() && self.running_at.is_some_and(|t| t <= now)
    }
}

/// A placeholder pod of the booster's: it takes one pod's room, anything else preempts it,
/// and nothing recreates it.
struct Placeholder {
    for_node: String,
    signal_at: Timestamp,
    node: Option<String>,
    running_at: Option<Timestamp>,
}

struct App {
    name: String,
    replicas: u32,
    pdb_max_unavailable: Option<u32>,
    termination: super::scenario::Range,
}

struct RebalanceEvent {
    node: String,
    /// The time it claims.
    at: Timestamp,
    /// When it was posted.
    created: Timestamp,
    /// The kind of forgery (see [`super::scenario::ForgedSpec`]), `None` for NTH's own.
    forged: Option<u8>,
}

/// Kinds of forged Event, in [`super::scenario::ForgedSpec`]'s order.
const FORGERIES: u8 = 7;

enum Timed {
    Signal {
        group: usize,
        initial: u32,
        lead: Option<Dur>,
    },
    Notice {
        instance: String,
    },
    Kill {
        instance: String,
    },
    Change {
        app: usize,
        replicas: u32,
    },
    Forge {
        group: usize,
        initial: u32,
        kind: u8,
    },
}

#[derive(Default)]
struct CaState {
    next_scan: Timestamp,
    status: CaObservation,
    /// (registered, ready, target) per group, to tell a real change from a rewrite.
    last_counts: Vec<(u32, u32, u32)>,
    unneeded_since: BTreeMap<String, Timestamp>,
    last_scale_up: Option<Timestamp>,
}

/// The world.
pub(crate) struct World {
    pub sc: Scenario,
    pub seed: u64,
    pub now: Timestamp,
    nth_drains_on_rebalance: bool,
    groups: Vec<SimGroup>,
    pub nodes: BTreeMap<String, SimNode>,
    pods: BTreeMap<u64, Pod>,
    next_pod: u64,
    placeholders: BTreeMap<u64, Placeholder>,
    apps: Vec<App>,
    events: Vec<RebalanceEvent>,
    /// Nodes a genuine recommendation or interruption named.
    genuine: BTreeSet<String>,
    /// Nodes the controller touched that none named.
    unsignalled: BTreeSet<String>,
    /// Nodes EKS drained for Capacity Rebalancing.
    eks_drained: BTreeSet<String>,
    drains: BTreeMap<u64, DrainProc>,
    next_drain: u64,
    timeline: Vec<(Timestamp, Timed)>,
    ca: CaState,
    pub ledger: Ledger,
    /// Bumped on every change the controller can observe (a watch event).
    pub version: u64,
    pub metrics: Metrics,
}

/// kube-scheduler's pick in the model: the node with the most room (the first by name on a
/// tie), one slot of which is taken.
fn take_most_room(room: &mut [(String, u32)]) -> Option<String> {
    let best = room
        .iter_mut()
        .filter(|(_, r)| *r > 0)
        .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0)))?;
    best.1 -= 1;
    Some(best.0.clone())
}

fn ceil_div(a: u64, b: u64) -> u64 {
    a.div_ceil(b.max(1))
}

impl World {
    pub fn new(sc: &Scenario, seed: u64, nth_drains_on_rebalance: bool) -> Self {
        let mut w = World {
            sc: sc.clone(),
            seed,
            now: START,
            nth_drains_on_rebalance,
            groups: Vec::new(),
            nodes: BTreeMap::new(),
            pods: BTreeMap::new(),
            next_pod: 0,
            placeholders: BTreeMap::new(),
            apps: Vec::new(),
            events: Vec::new(),
            genuine: BTreeSet::new(),
            unsignalled: BTreeSet::new(),
            eks_drained: BTreeSet::new(),
            drains: BTreeMap::new(),
            next_drain: 0,
            timeline: Vec::new(),
            ca: CaState::default(),
            ledger: Ledger::default(),
            version: 0,
            metrics: Metrics::default(),
        };
        let long_ago = Timestamp::from_unix_millis(START.unix_millis() - 3_600_000);
        for (gi, g) in sc.groups.iter().enumerate() {
            w.groups.push(SimGroup {
                name: g.name.clone(),
                min: g.min,
                max: g.max,
                desired: g.desired,
                azs: g.azs.clone(),
                tags: g.tags.clone(),
                instances: Vec::new(),
                launches: 0,
                weight: g.weight.max(1),
                capacity_rebalance: g.capacity_rebalance,
                eks_managed: g.eks_managed,
                suspended: g.suspended_processes.iter().cloned().collect(),
                dry: g
                    .dry_pool
                    .map(|d| (START.plus(d.at), START.plus(d.at).plus(d.lasts))),
                failures: Vec::new(),
                raises: Vec::new(),
                ca_waiting_since: None,
                ca_backoff_until: None,
            });
            for _ in 0..g.desired.div_ceil(g.weight.max(1)) {
                let id = w.launch(gi);
                // Initial instances are long in service, their nodes long Ready.
                if let Some(i) = w.groups[gi].instances.iter_mut().find(|i| i.id == id) {
                    i.state = InstState::InService;
                    i.register_at = long_ago;
                    i.ready_at = long_ago;
                }
                w.register(gi, &id, long_ago);
                if let Some(n) = w.nodes.get_mut(&node_name(&id)) {
                    n.ready_since = Some(long_ago);
                }
            }
        }
        for a in &sc.workload {
            w.apps.push(App {
                name: a.name.clone(),
                replicas: a.replicas,
                pdb_max_unavailable: a.pdb_max_unavailable,
                termination: a.termination,
            });
        }
        // Pods start bound and running, packed onto the initial nodes.
        let names: Vec<String> = w.nodes.keys().cloned().collect();
        let slots: u64 = w
            .nodes
            .values()
            .map(|n| u64::from(w.node_room(n.group)))
            .sum();
        let mut slot = 0u64;
        for (ai, a) in sc.workload.iter().enumerate() {
            for _ in 0..a.replicas {
                // Spread round-robin, as the scheduler's least-allocated scoring would.
                let node = (slot < slots)
                    .then(|| {
                        names
                            .get((slot % names.len().max(1) as u64) as usize)
                            .cloned()
                    })
                    .flatten();
                let running_at = node.as_ref().map(|_| long_ago);
                w.add_pod(ai, node, running_at);
                slot += 1;
            }
        }
        w.plan_timeline();
        w.write_ca_status();
        w.ca.next_scan = START.plus(sc.cluster_autoscaler.scan_interval);
        w
    }

    fn plan_timeline(&mut self) {
        let sc = &self.sc;
        let mut tl = Vec::new();
        for (si, s) in sc.signals.iter().enumerate() {
            let Some(gi) = sc.groups.iter().position(|g| g.name == s.group) else {
                continue;
            };
            let initial = sc.groups[gi].desired.div_ceil(sc.groups[gi].weight.max(1));
            let count = match (s.count, s.fraction) {
                (Some(c), _) => c.min(initial),
                (None, Some(f)) => ((f * f64::from(initial)).ceil() as u32).min(initial),
                (None, None) => 1.min(initial),
            };
            // Pick `count` initial nodes by the seed: sort by a keyed hash.
            let in_zone = |k: &u32| {
                let id = format!("i-{}-{:04}", sc.groups[gi].name, k);
                s.zone.as_ref().is_none_or(|z| {
                    self.groups[gi]
                        .instances
                        .iter()
                        .any(|i| i.id == id && &i.az == z)
                })
            };
            let mut order: Vec<u32> = (0..initial).filter(in_zone).collect();
            order.sort_by_key(|k| rng::hash(self.seed, &[K_PICK, si as u64, u64::from(*k)]));
            let count = count.min(order.len() as u32);
            for (j, k) in order.into_iter().take(count as usize).enumerate() {
                let spread = if count > 1 {
                    Dur::from_millis(
                        (s.within.as_millis() as f64
                            * rng::unit(self.seed, &[K_SPREAD, si as u64, j as u64]))
                            as u64,
                    )
                } else {
                    Dur::ZERO
                };
                let at = START.plus(s.at).plus(spread);
                let lead = match s.lead {
                    Lead::Never(_) => None,
                    Lead::After(r) => {
                        Some(r.at(rng::unit(self.seed, &[K_LEAD, si as u64, j as u64])))
                    }
                };
                tl.push((
                    at,
                    Timed::Signal {
                        group: gi,
                        initial: k,
                        lead,
                    },
                ));
            }
        }
        for (fi, f) in sc.forged.iter().enumerate() {
            let Some(gi) = sc.groups.iter().position(|g| g.name == f.group) else {
                continue;
            };
            let initial = sc.groups[gi]
                .desired
                .div_ceil(sc.groups[gi].weight.max(1))
                .max(1);
            for j in 0..f.count {
                let step = f.within.as_millis() / u64::from(f.count.max(1));
                let at = START.plus(f.at).plus(Dur::from_millis(step * u64::from(j)));
                let pick = rng::hash(self.seed, &[K_FORGE, fi as u64, u64::from(j)]);
                tl.push((
                    at,
                    Timed::Forge {
                        group: gi,
                        initial: (pick % u64::from(initial)) as u32,
                        kind: (j % u32::from(FORGERIES)) as u8,
                    },
                ));
            }
        }
        for c in &sc.changes {
            if let Some(ai) = sc.workload.iter().position(|a| a.name == c.app) {
                tl.push((
                    START.plus(c.at),
                    Timed::Change {
                        app: ai,
                        replicas: c.replicas,
                    },
                ));
            }
        }
        self.timeline = tl;
        self.sort_timeline();
    }

    fn sort_timeline(&mut self) {
        // Latest last, so that due items pop from the end.
        self.timeline.sort_by_key(|b| std::cmp::Reverse(b.0));
    }

    fn bump(&mut self) {
        self.version += 1;
    }

    fn launch(&mut self, gi: usize) -> String {
        let now = self.now;
        let seed = self.seed;
        let g = &mut self.groups[gi];
        let k = g.launches;
        g.launches += 1;
        // Balance zones: the zone with the fewest live instances.
        let az = g
            .azs
            .iter()
            .min_by_key(|az| {
                g.instances
                    .iter()
                    .filter(|i| {
                        &i.az == *az && matches!(i.state, InstState::Pending | InstState::InService)
                    })
                    .count()
            })
            .cloned()
            .unwrap_or_default();
        let boot = self.sc.groups[gi]
            .boot
            .at(rng::unit(seed, &[K_BOOT, rng::key(&g.name), k]));
        let ready_at = now.plus(boot);
        let before = self.sc.timing.node_registers_before_ready;
        let register_at = if boot > before {
            Timestamp::from_unix_millis(ready_at.unix_millis() - before.as_millis() as i64)
        } else {
            now
        };
        let id = format!("i-{}-{:04}", g.name, k);
        g.instances.push(SimInstance {
            id: id.clone(),
            az,
            stands_for: None,
            state: InstState::Pending,
            register_at,
            ready_at,
            node_gone_at: None,
            gone_at: None,
        });
        id
    }

    fn register(&mut self, gi: usize, id: &str, at: Timestamp) {
        let name = node_name(id);
        self.nodes.insert(
            name.clone(),
            SimNode {
                name,
                instance_id: id.to_string(),
                group: gi,
                created_at: at,
                ready_since: None,
                unschedulable: false,
                cordoned_by: None,
                cordoned_at: None,
                taint: false,
                tainted_at: None,
                itn_taint: false,
                protected_for: None,
                scale_down_disabled: false,
                upstream_ignore: false,
            },
        );
        self.bump();
    }

    fn add_pod(&mut self, app: usize, node: Option<String>, running_at: Option<Timestamp>) {
        self.pods.insert(
            self.next_pod,
            Pod {
                app,
                node,
                running_at,
                terminating_until: None,
            },
        );
        self.next_pod += 1;
    }

    /// One second.
    pub fn step(&mut self) {
        self.now = self.now.plus(Dur::from_secs(1));
        self.timeline_due();
        self.instances();
        self.reconcile_groups();
        self.progress_drains();
        self.pods_progress();
        self.schedule();
        if self.now >= self.ca.next_scan {
            self.ca_scan();
            self.ca.next_scan = self.now.plus(self.sc.cluster_autoscaler.scan_interval);
        }
        self.account();
    }

    fn timeline_due(&mut self) {
        while self.timeline.last().is_some_and(|(t, _)| *t <= self.now) {
            let Some((_, item)) = self.timeline.pop() else {
                break;
            };
            match item {
                Timed::Signal {
                    group,
                    initial,
                    lead,
                } => self.rebalance(group, initial, lead),
                Timed::Notice { instance } => self.interruption_notice(&instance),
                Timed::Kill { instance } => self.interrupt(&instance),
                Timed::Change { app, replicas } => {
                    if let Some(a) = self.apps.get_mut(app) {
                        a.replicas = replicas;
                    }
                    self.reconcile_replicas();
                }
                Timed::Forge {
                    group,
                    initial,
                    kind,
                } => self.forge(group, initial, kind),
            }
        }
    }

    fn live_instance(&self, id: &str) -> Option<(usize, usize)> {
        self.groups.iter().enumerate().find_map(|(gi, g)| {
            g.instances
                .iter()
                .position(|i| {
                    i.id == id && matches!(i.state, InstState::Pending | InstState::InService)
                })
                .map(|ii| (gi, ii))
        })
    }

    /// NTH turns a rebalance recommendation into an Event and a cordon (and a drain under
    /// `nth-drain`).
    fn rebalance(&mut self, group: usize, initial: u32, lead: Option<Dur>) {
        let id = format!("i-{}-{:04}", self.groups[group].name, initial);
        let name = node_name(&id);
        if self.live_instance(&id).is_none() || !self.nodes.contains_key(&name) {
            return;
        }
        self.metrics.signals += 1;
        self.genuine.insert(name.clone());
        self.events.push(RebalanceEvent {
            node: name.clone(),
            at: self.now,
            created: self.now,
            forged: None,
        });
        let now = self.now;
        if let Some(n) = self.nodes.get_mut(&name) {
            // NTH's recommended settings: Events and the taint on.
            n.cordon(NTH_MANAGER, now);
            n.taint = true;
            n.tainted_at = Some(now);
        }
        if self.nth_drains_on_rebalance {
            let timeout = self.sc.timing.nth_drain_timeout;
            self.start_drain(&name, Actor::Nth, timeout);
        }
        if self.groups[group].capacity_rebalance {
            self.launch_standin(group, Standin::Replaces(id.clone()));
        }
        if let Some(lead) = lead {
            let kill = self.now.plus(lead);
            let notice_ms = kill
                .unix_millis()
                .saturating_sub(self.sc.timing.interruption_notice.as_millis() as i64)
                .max(self.now.unix_millis());
            self.timeline.push((
                Timestamp::from_unix_millis(notice_ms),
                Timed::Notice {
                    instance: id.clone(),
                },
            ));
            self.timeline.push((kill, Timed::Kill { instance: id }));
            self.sort_timeline();
        }
        self.bump();
    }

    /// A tenant posts a forged Event about an initial node of `group` (nothing else: it
    /// may only create Events).
    fn forge(&mut self, group: usize, initial: u32, kind: u8) {
        let id = format!("i-{}-{:04}", self.groups[group].name, initial);
        let name = node_name(&id);
        let node = if kind == 2 {
            format!("ghost-{}", self.metrics.forged)
        } else {
            name
        };
        self.metrics.forged += 1;
        self.events.push(RebalanceEvent {
            node,
            at: self.now,
            created: self.now,
            forged: Some(kind),
        });
        self.bump();
    }

    /// The controller under test cordons, drains or retires `node`: counted when no
    /// recommendation or interruption ever named it (a forged Event made it act).
    pub fn touched_by_controller(&mut self, node: &str) {
        if !self.genuine.contains(node) && self.unsignalled.insert(node.to_string()) {
            self.metrics.unsignalled_touched += 1;
        }
    }

    /// NTH on a spot interruption notice: cordon and drain until the end.
    fn interruption_notice(&mut self, id: &str) {
        if self.live_instance(id).is_none() {
            return;
        }
        let name = node_name(id);
        self.genuine.insert(name.clone());
        let now = self.now;
        if let Some(n) = self.nodes.get_mut(&name) {
            n.cordon(NTH_MANAGER, now);
            n.itn_taint = true;
            let notice = self.sc.timing.interruption_notice;
            self.start_drain(&name, Actor::Nth, notice);
            self.bump();
        }
    }

    /// EC2 takes the instance back; the group replaces it (desired unchanged).
    fn interrupt(&mut self, id: &str) {
        let Some((gi, ii)) = self.live_instance(id) else {
            return;
        };
        self.metrics.interruptions += 1;
        let now = self.now;
        let inst = &mut self.groups[gi].instances[ii];
        inst.state = InstState::Terminating;
        inst.node_gone_at = Some(now);
        inst.gone_at = Some(now.plus(Dur::from_secs(10)));
        self.delete_node(&node_name(id));
    }

    fn delete_node(&mut self, name: &str) {
        if self.nodes.remove(name).is_none() {
            return;
        }
        let mut killed = 0;
        self.pods.retain(|_, p| {
            if p.node.as_deref() != Some(name) {
                return true;
            }
            if !p.terminating() {
                killed += 1;
            }
            false
        });
        self.metrics.pods_killed += killed;
        self.placeholders
            .retain(|_, p| p.node.as_deref() != Some(name));
        self.ca.unneeded_since.remove(name);
        self.reconcile_replicas();
        self.bump();
    }

    fn instances(&mut self) {
        let now = self.now;
        let mut register = Vec::new();
        let mut ready = Vec::new();
        let mut delete = Vec::new();
        for (gi, g) in self.groups.iter_mut().enumerate() {
            for i in &mut g.instances {
                match i.state {
                    InstState::Pending => {
                        if i.register_at <= now && !self.nodes.contains_key(&node_name(&i.id)) {
                            register.push((gi, i.id.clone(), i.register_at));
                        }
                        if i.ready_at <= now {
                            i.state = InstState::InService;
                            ready.push(node_name(&i.id));
                        }
                    }
                    InstState::Terminating => {
                        if i.node_gone_at.is_some_and(|t| t <= now) {
                            delete.push(node_name(&i.id));
                        }
                        if i.gone_at.is_some_and(|t| t <= now) {
                            i.state = InstState::Gone;
                        }
                    }
                    InstState::InService | InstState::Gone => {}
                }
            }
        }
        for (gi, id, at) in register {
            self.register(gi, &id, at);
        }
        for name in ready {
            if let Some(n) = self.nodes.get_mut(&name) {
                n.ready_since = Some(now);
                self.version += 1;
            }
        }
        for name in delete {
            self.delete_node(&name);
        }
    }

    fn reconcile_groups(&mut self) {
        for gi in 0..self.groups.len() {
            self.aws_standins(gi);
            let g = &self.groups[gi];
            let (cap, desired, w) = (g.capacity(), g.desired, g.weight);
            if cap < desired {
                if self.can_launch(gi) {
                    for _ in 0..(desired - cap).div_ceil(w) {
                        self.launch(gi);
                        self.metrics.launched += 1;
                    }
                    self.bump();
                } else {
                    self.launch_failed(gi);
                }
            } else if cap >= desired + w {
                for _ in 0..(cap - desired) / w {
                    if let Some(id) = self.scale_in_pick(gi) {
                        self.terminate_instance(&id);
                    }
                }
            }
        }
    }

    /// Whether the group can launch now.
    fn can_launch(&self, gi: usize) -> bool {
        let g = &self.groups[gi];
        !g.suspended.contains("Launch")
            && !g.dry.is_some_and(|(a, b)| a <= self.now && self.now < b)
    }

    /// A launch the pool cannot serve: a Failed scaling activity (one a minute).
    fn launch_failed(&mut self, gi: usize) {
        let now = self.now;
        let g = &mut self.groups[gi];
        if g.suspended.contains("Launch")
            || g.failures
                .first()
                .is_some_and(|f| now.since(f.at) < Dur::from_secs(60))
        {
            return;
        }
        g.failures.insert(
            0,
            booster_core::snapshot::LaunchFailure {
                at: now,
                message: "Launching a new EC2 instance. Status Reason: We currently do not have \
                          sufficient capacity in the Availability Zone you requested \
                          (InsufficientInstanceCapacity)."
                    .into(),
            },
        );
        g.failures.truncate(10);
        self.bump();
    }

    /// The default termination policy: balance zones, then (same template) effectively
    /// arbitrary: a keyed pick. AWS's own stand-ins are not picked.
    fn scale_in_pick(&self, gi: usize) -> Option<String> {
        let seed = self.seed;
        let g = &self.groups[gi];
        let live = |i: &&SimInstance| {
            matches!(i.state, InstState::Pending | InstState::InService) && i.stands_for.is_none()
        };
        let mut per_az: BTreeMap<&str, u32> = BTreeMap::new();
        for i in g.instances.iter().filter(live) {
            *per_az.entry(i.az.as_str()).or_default() += 1;
        }
        let az = per_az
            .iter()
            .max_by_key(|(az, c)| (**c, std::cmp::Reverse(*az)))
            .map(|(az, _)| az.to_string())?;
        g.instances
            .iter()
            .filter(live)
            .filter(|i| i.az == az)
            .min_by_key(|i| rng::hash(seed, &[K_AWS_PICK, rng::key(&i.id)]))
            .map(|i| i.id.clone())
    }

    /// AWS's own replacements, once in service: Capacity Rebalancing terminates the
    /// signalled instance (after EKS drained its node, for a managed node group), and
    /// AZRebalance terminates an instance of the fullest zone, undrained.
    fn aws_standins(&mut self, gi: usize) {
        let done: Vec<(usize, Standin)> = self.groups[gi]
            .instances
            .iter()
            .enumerate()
            .filter(|(_, i)| i.state == InstState::InService)
            .filter_map(|(ii, i)| i.stands_for.clone().map(|s| (ii, s)))
            .collect();
        for (ii, standin) in done {
            let finished = match &standin {
                Standin::Replaces(old) => self.capacity_rebalance_swap(gi, old),
                Standin::Rebalance => {
                    if let Some(id) = self.scale_in_pick(gi) {
                        self.metrics.az_rebalance_terminations += 1;
                        let pods = self.pods_on(&node_name(&id)).count() as u64;
                        self.metrics.pods_killed += pods;
                        self.interrupt_quietly(&id);
                    }
                    true
                }
            };
            if finished {
                self.groups[gi].instances[ii].stands_for = None;
                self.bump();
            }
        }
    }

    /// Capacity Rebalancing's second half: `old` goes. Returns when it is on its way.
    fn capacity_rebalance_swap(&mut self, gi: usize, old: &str) -> bool {
        if self.live_instance(old).is_none() {
            return true;
        }
        let name = node_name(old);
        if self.groups[gi].eks_managed && self.nodes.contains_key(&name) {
            let running = self
                .drains
                .values()
                .any(|d| d.node == name && d.actor == Actor::Nth && d.state == DrainState::Running);
            let drained = self.pods_to_evict(&name) == 0;
            if !drained && running {
                return false;
            }
            if !drained && !self.eks_drained.contains(&name) {
                self.eks_drained.insert(name.clone());
                let timeout = self.sc.timing.nth_drain_timeout;
                self.start_drain(&name, Actor::Nth, timeout);
                return false;
            }
        }
        self.terminate_instance(old);
        true
    }

    /// EC2 takes an instance without notice and without a drain (AZRebalance).
    fn interrupt_quietly(&mut self, id: &str) {
        let now = self.now;
        if let Some((gi, ii)) = self.live_instance(id) {
            let inst = &mut self.groups[gi].instances[ii];
            inst.state = InstState::Terminating;
            inst.node_gone_at = Some(now);
            inst.gone_at = Some(now.plus(Dur::from_secs(10)));
            self.delete_node(&node_name(id));
        }
    }

    /// AWS launches an instance of its own for `gi`.
    fn launch_standin(&mut self, gi: usize, why: Standin) {
        if !self.can_launch(gi) {
            return;
        }
        let id = self.launch(gi);
        self.metrics.launched += 1;
        if let Some(i) = self.groups[gi].instances.iter_mut().find(|i| i.id == id) {
            i.stands_for = Some(why);
        }
        self.bump();
    }

    /// After a terminate with decrement: unless AZRebalance is suspended, uneven zones are
    /// evened out by AWS.
    fn maybe_az_rebalance(&mut self, gi: usize) {
        let g = &self.groups[gi];
        if g.suspended.contains("AZRebalance") || g.azs.len() < 2 {
            return;
        }
        if g.instances
            .iter()
            .any(|i| i.stands_for == Some(Standin::Rebalance))
        {
            return;
        }
        let mut per_az: BTreeMap<&str, u32> = g.azs.iter().map(|a| (a.as_str(), 0)).collect();
        for i in &g.instances {
            if matches!(i.state, InstState::Pending | InstState::InService)
                && i.stands_for.is_none()
            {
                *per_az.entry(i.az.as_str()).or_default() += 1;
            }
        }
        let (lo, hi) = (
            per_az.values().min().copied().unwrap_or(0),
            per_az.values().max().copied().unwrap_or(0),
        );
        if hi > lo + 1 {
            self.launch_standin(gi, Standin::Rebalance);
        }
    }

    fn terminate_instance(&mut self, id: &str) {
        let now = self.now;
        let shutdown = self.sc.timing.shutdown;
        if let Some((gi, ii)) = self.live_instance(id) {
            let i = &mut self.groups[gi].instances[ii];
            i.state = InstState::Terminating;
            i.node_gone_at = Some(now.plus(shutdown));
            i.gone_at = Some(now.plus(shutdown).plus(Dur::from_secs(30)));
            self.bump();
        }
    }

    // ---- pods and drains -------------------------------------------------------------

    fn pods_on<'a>(&'a self, node: &'a str) -> impl Iterator<Item = (&'a u64, &'a Pod)> + 'a {
        self.pods
            .iter()
            .filter(move |(_, p)| p.node.as_deref() == Some(node))
    }

    /// Non-DaemonSet pods bound to the node, terminating ones included (kubectl drain waits
    /// for them).
    pub fn pods_to_evict(&self, node: &str) -> u32 {
        self.pods_on(node).count() as u32
    }

    /// Pods an NTH drain of the node has evicted and that are still terminating: what the
    /// adapter sees as the `DisruptionTarget` condition.
    fn evicted_by_nth(&self, node: &str) -> u32 {
        let nth = self
            .drains
            .values()
            .any(|d| d.node == node && d.actor == Actor::Nth && d.state == DrainState::Running);
        if !nth {
            return 0;
        }
        self.pods_on(node).filter(|(_, p)| p.terminating()).count() as u32
    }

    fn app_running(&self, app: usize) -> u32 {
        let now = self.now;
        self.pods
            .values()
            .filter(|p| p.app == app && p.running(now))
            .count() as u32
    }

    /// The Eviction API: refused (429) when the app's PodDisruptionBudget has no room.
    fn evict(&mut self, pod: u64) -> Result<(), String> {
        let Some(p) = self.pods.get(&pod) else {
            return Ok(());
        };
        if p.terminating() {
            return Ok(());
        }
        let app = p.app;
        let a = &self.apps[app];
        if let Some(max_unavailable) = a.pdb_max_unavailable {
            let min_available = a.replicas.saturating_sub(max_unavailable);
            if p.running(self.now) && self.app_running(app) <= min_available {
                return Err(format!(
                    "pod {}/{} (PodDisruptionBudget {})",
                    a.name, pod, a.name
                ));
            }
        }
        let grace = a.termination.at(rng::unit(self.seed, &[K_TERM, pod]));
        if let Some(p) = self.pods.get_mut(&pod) {
            p.terminating_until = Some(self.now.plus(grace));
        }
        self.metrics.evictions += 1;
        self.reconcile_replicas();
        self.bump();
        Ok(())
    }

    /// Starts a drain and returns its id.
    pub fn start_drain(&mut self, node: &str, actor: Actor, timeout: Dur) -> u64 {
        let id = self.next_drain;
        self.next_drain += 1;
        self.drains.insert(
            id,
            DrainProc {
                node: node.to_string(),
                actor,
                deadline: self.now.plus(timeout),
                retry_at: BTreeMap::new(),
                blocker: None,
                state: DrainState::Running,
            },
        );
        self.progress_drain(id);
        id
    }

    pub fn drain_state(&self, id: u64) -> DrainState {
        self.drains
            .get(&id)
            .map_or(DrainState::Aborted, |d| d.state.clone())
    }

    /// The controller died: its drains die with it.
    pub fn abort_drains(&mut self, actor: Actor) {
        for d in self.drains.values_mut() {
            if d.actor == actor && d.state == DrainState::Running {
                d.state = DrainState::Aborted;
            }
        }
    }

    fn progress_drains(&mut self) {
        let ids: Vec<u64> = self
            .drains
            .iter()
            .filter(|(_, d)| d.state == DrainState::Running)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.progress_drain(id);
        }
    }

    fn progress_drain(&mut self, id: u64) {
        let Some(d) = self.drains.get(&id) else {
            return;
        };
        let node = d.node.clone();
        if !self.nodes.contains_key(&node) {
            if let Some(d) = self.drains.get_mut(&id) {
                d.state = DrainState::NodeGone;
            }
            return;
        }
        let now = self.now;
        let todo: Vec<u64> = self
            .pods_on(&node)
            .filter(|(_, p)| !p.terminating())
            .map(|(k, _)| *k)
            .filter(|k| d.retry_at.get(k).is_none_or(|t| *t <= now))
            .collect();
        let retry = self.sc.timing.eviction_retry;
        for pod in todo {
            if let Err(blocker) = self.evict(pod) {
                if let Some(d) = self.drains.get_mut(&id) {
                    d.retry_at.insert(pod, now.plus(retry));
                    d.blocker = Some(blocker);
                }
            }
        }
        let left = self.pods_to_evict(&node);
        if let Some(d) = self.drains.get_mut(&id) {
            if left == 0 {
                d.state = DrainState::Drained;
            } else if now >= d.deadline {
                d.state = DrainState::TimedOut(
                    d.blocker
                        .clone()
                        .unwrap_or_else(|| "pods still terminating".into()),
                );
            }
        }
    }

    fn reconcile_replicas(&mut self) {
        for ai in 0..self.apps.len() {
            let want = self.apps[ai].replicas;
            let live: Vec<u64> = self
                .pods
                .iter()
                .filter(|(_, p)| p.app == ai && !p.terminating())
                .map(|(k, _)| *k)
                .collect();
            let have = live.len() as u32;
            if have < want {
                for _ in have..want {
                    self.add_pod(ai, None, None);
                }
            } else if have > want {
                // Scale-in removes pending pods first, then the newest.
                let mut order = live;
                order.sort_by_key(|k| {
                    (
                        self.pods.get(k).is_some_and(|p| p.node.is_some()),
                        std::cmp::Reverse(*k),
                    )
                });
                for k in order.into_iter().take((have - want) as usize) {
                    self.pods.remove(&k);
                }
            }
        }
    }

    fn pods_progress(&mut self) {
        let now = self.now;
        let before = self.pods.len();
        self.pods
            .retain(|_, p| p.terminating_until.is_none_or(|t| t > now));
        if self.pods.len() != before {
            self.bump();
        }
    }

    /// Free room on each node a pod may land on.
    fn free_room(&self) -> BTreeMap<&str, u32> {
        let mut room: BTreeMap<&str, u32> = BTreeMap::new();
        for n in self.nodes.values() {
            if n.ready_since.is_some() && !n.unschedulable && !self.instance_leaving(&n.instance_id)
            {
                room.insert(n.name.as_str(), self.node_room(n.group));
            }
        }
        let bound = self.pods.values().map(|p| p.node.as_deref());
        let held = self.placeholders.values().map(|p| p.node.as_deref());
        for n in bound.chain(held) {
            if let Some(r) = n.and_then(|n| room.get_mut(n)) {
                *r = r.saturating_sub(1);
            }
        }
        room
    }

    /// Pods a node of group `gi` holds: its weight in units of `podsPerNode`.
    fn node_room(&self, gi: usize) -> u32 {
        self.sc.pods_per_node * self.groups[gi].weight
    }

    fn instance_leaving(&self, id: &str) -> bool {
        self.live_instance(id).is_none()
    }

    /// kube-scheduler: each pending pod to the node with the most room; a pod that fits
    /// nowhere preempts a placeholder (the lowest priority); placeholders take what is left.
    fn schedule(&mut self) {
        self.schedule_workloads();
        self.preempt_placeholders();
        self.schedule_placeholders();
    }

    /// Nodes with room left, and how much.
    fn open_room(&self) -> Vec<(String, u32)> {
        self.free_room()
            .into_iter()
            .filter(|(_, r)| *r > 0)
            .map(|(n, r)| (n.to_string(), r))
            .collect()
    }

    fn schedule_placeholders(&mut self) {
        let mut room = self.open_room();
        let start = self.now.plus(self.sc.timing.pod_start);
        let mut bound = false;
        for p in self.placeholders.values_mut().filter(|p| p.node.is_none()) {
            let Some(name) = take_most_room(&mut room) else {
                break;
            };
            p.node = Some(name);
            p.running_at = Some(start);
            bound = true;
        }
        if bound {
            self.bump();
        }
    }

    /// Pending workload pods that found no room each delete one placeholder on a node
    /// they may use; the next pass binds them there.
    fn preempt_placeholders(&mut self) {
        let pending = self.pods.values().filter(|p| p.node.is_none()).count();
        if pending == 0 || self.placeholders.is_empty() {
            return;
        }
        let usable: BTreeSet<String> = self
            .nodes
            .values()
            .filter(|n| {
                n.ready_since.is_some()
                    && !n.unschedulable
                    && !self.instance_leaving(&n.instance_id)
            })
            .map(|n| n.name.clone())
            .collect();
        let victims: Vec<u64> = self
            .placeholders
            .iter()
            .filter(|(_, p)| p.node.as_ref().is_some_and(|n| usable.contains(n)))
            .map(|(k, _)| *k)
            .take(pending)
            .collect();
        if victims.is_empty() {
            return;
        }
        for k in victims {
            self.placeholders.remove(&k);
        }
        self.bump();
        self.schedule_workloads();
    }

    fn schedule_workloads(&mut self) {
        let pending: Vec<u64> = self
            .pods
            .iter()
            .filter(|(_, p)| p.node.is_none())
            .map(|(k, _)| *k)
            .collect();
        if pending.is_empty() {
            return;
        }
        let mut room = self.open_room();
        let start = self.now.plus(self.sc.timing.pod_start);
        let mut bound = false;
        for k in pending {
            let Some(name) = take_most_room(&mut room) else {
                break;
            };
            if let Some(p) = self.pods.get_mut(&k) {
                p.node = Some(name);
                p.running_at = Some(start);
                bound = true;
            }
        }
        if bound {
            self.bump();
        }
    }

    // ---- Cluster Autoscaler ----------------------------------------------------------

    /// Nodes of the group with the Ready condition, as CA counts them: a node whose instance
    /// is shutting down stays Ready until its kubelet stops.
    fn ready_nodes(&self, gi: usize) -> u32 {
        self.nodes
            .values()
            .filter(|n| n.group == gi && n.ready_since.is_some())
            .count() as u32
    }

    /// Writes the status as cluster-autoscaler 1.30+ does (YAML text), and reads it back
    /// through the same parser the controller uses.
    fn write_ca_status(&mut self) {
        use std::fmt::Write as _;
        let time = self
            .now
            .to_string()
            .replace('T', " ")
            .replace('Z', " +0000 UTC");
        let mut text = format!("time: {time}\nautoscalerStatus: Running\nnodeGroups:\n");
        let mut counts = Vec::with_capacity(self.groups.len());
        for (gi, g) in self.groups.iter().enumerate() {
            let registered = self.nodes.values().filter(|n| n.group == gi).count() as u32;
            let ready = self.ready_nodes(gi);
            let scale_up = if g.ca_backoff_until.is_some_and(|t| t > self.now) {
                "Backoff"
            } else if g.desired > registered * g.weight {
                "InProgress"
            } else {
                "NoActivity"
            };
            counts.push((registered, ready, g.desired));
            let _ = write!(
                text,
                "- name: {name}\n  health:\n    status: Healthy\n    nodeCounts:\n      registered:\n        total: {registered}\n        ready: {ready}\n        notStarted: {ns}\n        unready:\n          total: 0\n      longUnregistered: 0\n    cloudProviderTarget: {target}\n    minSize: {min}\n    maxSize: {max}\n  scaleUp:\n    status: {scale_up}\n  scaleDown:\n    status: NoCandidates\n",
                name = g.name,
                ns = registered - ready,
                target = g.desired,
                min = g.min,
                max = g.max,
            );
        }
        if counts != self.ca.last_counts {
            self.ca.last_counts = counts;
            self.bump();
        }
        self.ca.status = match booster_core::ca_status::parse(&text) {
            Ok(status) => CaObservation::Parsed {
                status,
                updated_at: self.now,
            },
            Err(e) => {
                self.metrics
                    .violations
                    .push(format!("simulated CA status did not parse: {e}"));
                CaObservation::Invalid {
                    error: e.to_string(),
                }
            }
        };
    }

    fn ca_scan(&mut self) {
        self.ca_give_up();
        self.ca_scale_up();
        self.ca_scale_down();
        self.write_ca_status();
    }

    /// `--max-node-provision-time`: capacity asked for (by anyone) that has not registered
    /// by then is given up: the target lowered to what is there, the group backed off.
    fn ca_give_up(&mut self) {
        let now = self.now;
        let spec = self.sc.cluster_autoscaler.clone();
        for gi in 0..self.groups.len() {
            let registered = self.nodes.values().filter(|n| n.group == gi).count() as u32
                * self.groups[gi].weight;
            let g = &mut self.groups[gi];
            if g.desired <= registered {
                g.ca_waiting_since = None;
                continue;
            }
            let since = *g.ca_waiting_since.get_or_insert(now);
            if now.since(since) >= spec.max_node_provision_time {
                g.desired = registered.max(g.min);
                g.ca_waiting_since = None;
                g.ca_backoff_until = Some(now.plus(spec.backoff));
                *self
                    .metrics
                    .ca_calls
                    .entry("SetDesiredCapacity")
                    .or_default() += 1;
                self.bump();
            }
        }
    }

    fn ca_scale_up(&mut self) {
        let ppn = u64::from(self.sc.pods_per_node);
        // Placeholders are pending pods too (their priority is above CA's expendable
        // cutoff): CA scales up for them by its own rules.
        let pending = self.pods.values().filter(|p| p.node.is_none()).count() as u64
            + self
                .placeholders
                .values()
                .filter(|p| p.node.is_none())
                .count() as u64;
        if pending == 0 {
            return;
        }
        let free: u64 = self.free_room().values().map(|r| u64::from(*r)).sum();
        // Capacity asked for and not arrived counts as coming, except in groups CA backs off.
        let now = self.now;
        let upcoming: u64 = (0..self.groups.len())
            .filter(|gi| self.groups[*gi].ca_backoff_until.is_none_or(|t| t <= now))
            .map(|gi| {
                let ready_units = self.ready_nodes(gi) * self.groups[gi].weight;
                u64::from(self.groups[gi].desired.saturating_sub(ready_units))
            })
            .sum();
        let unfit = pending.saturating_sub(free + upcoming * ppn);
        if unfit == 0 {
            return;
        }
        let mut need = ceil_div(unfit, ppn) as u32;
        for gi in 0..self.groups.len() {
            let g = &mut self.groups[gi];
            if g.ca_backoff_until.is_some_and(|t| t > now) {
                continue;
            }
            let add = need.min(g.max.saturating_sub(g.desired));
            if add > 0 {
                g.raise_to(g.desired + add, now);
                need -= add;
                *self
                    .metrics
                    .ca_calls
                    .entry("SetDesiredCapacity")
                    .or_default() += 1;
                self.ca.last_scale_up = Some(self.now);
            }
            if need == 0 {
                break;
            }
        }
    }

    fn ca_scale_down(&mut self) {
        let spec = self.sc.cluster_autoscaler.clone();
        if self
            .ca
            .last_scale_up
            .is_some_and(|t| self.now.since(t) < spec.scale_down_delay_after_add)
        {
            self.ca.unneeded_since.clear();
            return;
        }
        let ppn = self.sc.pods_per_node;
        let room = self.free_room();
        let total_room: u32 = room.values().sum();
        let mut candidates = Vec::new();
        for n in self.nodes.values() {
            if n.ready_since.is_none()
                || n.scale_down_disabled
                || self.instance_leaving(&n.instance_id)
                || self.groups[n.group].desired <= self.groups[n.group].min
            {
                continue;
            }
            let pods = self
                .pods_on(&n.name)
                .filter(|(_, p)| !p.terminating())
                .count() as u32
                + self
                    .placeholders
                    .values()
                    .filter(|p| p.node.as_deref() == Some(n.name.as_str()))
                    .count() as u32;
            let util = f64::from(pods) / f64::from(ppn * self.groups[n.group].weight);
            let own_room = room.get(n.name.as_str()).copied().unwrap_or(0);
            if util < spec.scale_down_utilization_threshold && total_room - own_room >= pods {
                candidates.push(n.name.clone());
            }
        }
        let now = self.now;
        self.ca
            .unneeded_since
            .retain(|name, _| candidates.contains(name));
        for c in &candidates {
            self.ca.unneeded_since.entry(c.clone()).or_insert(now);
        }
        let mut due: Vec<(Timestamp, String)> = self
            .ca
            .unneeded_since
            .iter()
            .filter(|(_, t)| now.since(**t) >= spec.scale_down_unneeded_time)
            .map(|(n, t)| (*t, n.clone()))
            .collect();
        due.sort();
        for (_, name) in due {
            if self.ca_remove(&name) {
                break;
            }
        }
    }

    /// Removes one node the way CA does: evict everything (or give up if a budget refuses),
    /// then terminate with decrement.
    fn ca_remove(&mut self, name: &str) -> bool {
        let pods: Vec<u64> = self
            .pods_on(name)
            .filter(|(_, p)| !p.terminating())
            .map(|(k, _)| *k)
            .collect();
        // All or nothing: check every budget first.
        let mut per_app: BTreeMap<usize, u32> = BTreeMap::new();
        for k in &pods {
            if let Some(p) = self.pods.get(k) {
                *per_app.entry(p.app).or_default() += 1;
            }
        }
        for (app, n) in &per_app {
            if let Some(mu) = self.apps[*app].pdb_max_unavailable {
                let min_available = self.apps[*app].replicas.saturating_sub(mu);
                if self.app_running(*app).saturating_sub(*n) < min_available {
                    return false;
                }
            }
        }
        let now = self.now;
        let Some(node) = self.nodes.get_mut(name) else {
            return false;
        };
        node.cordon(CA_MANAGER, now);
        let id = node.instance_id.clone();
        for k in pods {
            let _ = self.evict(k);
        }
        *self
            .metrics
            .ca_calls
            .entry("TerminateInstanceInAutoScalingGroup")
            .or_default() += 1;
        self.retire(&id, true).is_ok()
    }

    // ---- what the ports see and do ---------------------------------------------------

    /// The Kubernetes view the booster's adapter would build.
    pub fn cluster_view(&self) -> ClusterView {
        let nodes = self
            .nodes
            .values()
            .map(|n| Node {
                name: n.name.clone(),
                instance_id: Some(n.instance_id.clone()),
                created_at: n.created_at,
                ready: n.ready_since.is_some(),
                unschedulable: n.unschedulable,
                cordoned_by: n.cordoned_by.map(str::to_string),
                cordoned_at: n.cordoned_at,
                rebalance_taint: n.taint,
                tainted_at: n.tainted_at,
                interruption_taint: n.itn_taint,
                scale_down_disabled: n.scale_down_disabled,
                protected_for: n.protected_for.clone(),
                pods_to_evict: self.pods_to_evict(&n.name),
                unevictable: Vec::new(),
                evicted_by_others: self.evicted_by_nth(&n.name),
                boost_mark: None,
                nodeclaim: None,
                do_not_disrupt: false,
            })
            .collect();
        let mut placeholders: BTreeMap<(&str, Timestamp), booster_core::snapshot::Placeholders> =
            BTreeMap::new();
        for p in self.placeholders.values() {
            let set = placeholders
                .entry((p.for_node.as_str(), p.signal_at))
                .or_insert_with(|| booster_core::snapshot::Placeholders {
                    node: p.for_node.clone(),
                    signal_at: p.signal_at,
                    ..Default::default()
                });
            set.pods += 1;
            let host = p.node.as_deref().and_then(|n| self.nodes.get(n));
            if let Some(h) = host {
                let up = h.ready_since.is_some() && p.running_at.is_some_and(|t| t <= self.now);
                if up && h.name != p.for_node {
                    set.running += 1;
                }
                if !set.hosts.contains(&h.name) {
                    set.hosts.push(h.name.clone());
                }
            }
        }
        let signals = self
            .events
            .iter()
            .filter(|e| self.now.since(e.created) < EVENT_TTL)
            .map(|e| self.event_signal(e))
            .collect();
        ClusterView {
            nodes,
            signals,
            ca_status: self.ca.status.clone(),
            ledger: self.ledger.clone(),
            placeholders: placeholders.into_values().collect(),
            node_pools: Vec::new(),
        }
    }

    /// An Event as the Kubernetes adapter reads it; a forged one is odd in its own way.
    fn event_signal(&self, e: &RebalanceEvent) -> Signal {
        let node = self.nodes.get(&e.node);
        let mut sig = Signal {
            id: format!("default/{}.{}", e.node, e.created.unix_millis()),
            namespace: booster_core::config::NTH_EVENT_NAMESPACE.into(),
            component: booster_core::config::NTH_COMPONENT.into(),
            instance_id: node.map(|n| n.instance_id.clone()),
            created_at: Some(e.created),
            ..Signal::event(&e.node, e.at)
        };
        match e.forged {
            Some(0) => sig.namespace = "tenant".into(),
            Some(1) => sig.component = "kubectl".into(),
            Some(3) => sig.instance_id = Some("i-0ffffffffffffffff".into()),
            Some(4) => sig.at = e.created.plus(Dur::from_mins(24 * 60)),
            Some(5) => sig.at = Timestamp::EPOCH,
            Some(6) => {
                sig.created_at =
                    node.map(|n| Timestamp::from_unix_millis(n.created_at.unix_millis() - 1000))
            }
            _ => {}
        }
        sig
    }

    /// Auto Scaling groups as DescribeAutoScalingGroups shows them.
    pub fn describe(&self, names: &[String]) -> Vec<Group> {
        self.groups
            .iter()
            .filter(|g| names.iter().any(|n| n == &g.name))
            .map(|g| Group {
                name: g.name.clone(),
                min_size: g.min,
                max_size: g.max,
                desired: g.desired,
                instances: g
                    .instances
                    .iter()
                    .filter(|i| i.state != InstState::Gone)
                    .map(|i| Instance {
                        id: i.id.clone(),
                        az: i.az.clone(),
                        lifecycle: match i.state {
                            InstState::Pending => Lifecycle::Pending,
                            InstState::InService => Lifecycle::InService,
                            InstState::Terminating | InstState::Gone => Lifecycle::Terminating,
                        },
                        healthy: true,
                        protected_from_scale_in: false,
                        instance_type: format!("w{}", g.weight),
                        weight: (g.weight != 1).then_some(g.weight),
                    })
                    .collect(),
                tags: g.tags.clone(),
                capacity_rebalance: g.capacity_rebalance,
                suspended_processes: g.suspended.clone(),
                azs: g.azs.clone(),
                weights: if g.weight == 1 {
                    BTreeMap::new()
                } else {
                    BTreeMap::from([(format!("w{}", g.weight), g.weight)])
                },
                warm_pool: false,
                launch_failures: Vec::new(),
                raises: Vec::new(),
                activities_read: false,
                kind: booster_core::snapshot::GroupKind::AutoScaling,
            })
            .collect()
    }

    /// DescribeScalingActivities: the group's failed activities and its raises, newest
    /// first.
    pub fn scaling_activities(&self, group: &str) -> booster_core::snapshot::Activities {
        self.groups
            .iter()
            .find(|g| g.name == group)
            .map(|g| booster_core::snapshot::Activities {
                failures: g.failures.clone(),
                raises: g.raises.clone(),
            })
            .unwrap_or_default()
    }

    /// DescribeAutoScalingInstances: the group of each live instance.
    pub fn groups_of(&self, ids: &[String]) -> Vec<(String, String)> {
        ids.iter()
            .filter_map(|id| {
                self.live_instance(id)
                    .map(|(gi, _)| (id.clone(), self.groups[gi].name.clone()))
            })
            .collect()
    }

    pub fn group_desired(&self, name: &str) -> Option<(u32, u32, u32)> {
        self.groups
            .iter()
            .find(|g| g.name == name)
            .map(|g| (g.min, g.desired, g.max))
    }

    /// SetDesiredCapacity as AWS does it: any value within min..=max.
    pub fn set_desired(&mut self, group: &str, desired: u32) -> Result<(), PortError> {
        let Some(g) = self.groups.iter_mut().find(|g| g.name == group) else {
            return Err(PortError::NotFound(format!("Auto Scaling group {group}")));
        };
        if desired > g.max || desired < g.min {
            return Err(PortError::Rejected(format!(
                "ValidationError: desired {desired} outside {}..={} of {group}",
                g.min, g.max
            )));
        }
        if desired < g.desired {
            self.metrics.desired_lowered += 1;
        }
        // A raise that the group's overage absorbs launches nothing.
        if desired > g.desired && desired <= g.capacity() {
            self.metrics.raises_without_launch += 1;
        }
        if desired > g.desired {
            g.raise_to(desired, self.now);
        } else {
            g.desired = desired;
        }
        self.bump();
        Ok(())
    }

    /// TerminateInstanceInAutoScalingGroup. `Ok(false)`: already terminating or gone.
    pub fn retire(&mut self, instance: &str, decrement: bool) -> Result<bool, PortError> {
        let Some((gi, _)) = self.live_instance(instance) else {
            return Ok(false);
        };
        let g = &mut self.groups[gi];
        if decrement {
            if g.desired < g.min + g.weight {
                return Err(PortError::Rejected(format!(
                    "ValidationError: {} is at its min size {}",
                    g.name, g.min
                )));
            }
            g.desired -= g.weight;
        }
        self.terminate_instance(instance);
        if decrement {
            self.maybe_az_rebalance(gi);
        }
        Ok(true)
    }

    pub fn node_mut(&mut self, name: &str) -> Result<&mut SimNode, PortError> {
        self.version += 1;
        self.nodes
            .get_mut(name)
            .ok_or_else(|| PortError::NotFound(format!("node {name}")))
    }

    /// Upstream deletes the Event once it has handled the node.
    pub fn delete_events(&mut self, node: &str) {
        self.events.retain(|e| e.node != node);
    }

    /// Upstream's view of the Event pool: Events in the TTL, of nodes that exist.
    pub fn event_nodes(&self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        self.events
            .iter()
            .filter(|e| self.now.since(e.created) < EVENT_TTL && self.nodes.contains_key(&e.node))
            .filter(|e| seen.insert(e.node.clone()))
            .map(|e| e.node.clone())
            .collect()
    }

    pub fn group_name(&self, gi: usize) -> &str {
        &self.groups[gi].name
    }

    pub fn ca_ready(&self, group: &str) -> Option<(u32, u32)> {
        match &self.ca.status {
            CaObservation::Parsed { status, .. } => {
                status.group(group).map(|g| (g.ready, g.max_size))
            }
            _ => None,
        }
    }

    // ---- accounting ------------------------------------------------------------------

    fn account(&mut self) {
        let now = self.now;
        let ppn = self.sc.pods_per_node;
        let needed: u64 = self.apps.iter().map(|a| u64::from(a.replicas)).sum();
        let mut usable: u64 = 0;
        let mut ready_nodes = 0u32;
        let mut per_node: BTreeMap<&str, (u32, u32)> = BTreeMap::new(); // (terminating, running)
        for p in self.pods.values() {
            if let Some(n) = p.node.as_deref() {
                let e = per_node.entry(n).or_default();
                if p.terminating() {
                    e.0 += 1;
                } else if p.running(now) {
                    e.1 += 1;
                }
            }
        }
        for n in self.nodes.values() {
            if n.ready_since.is_none() || self.instance_leaving(&n.instance_id) {
                continue;
            }
            ready_nodes += 1;
            let (term, running) = per_node.get(n.name.as_str()).copied().unwrap_or((0, 0));
            usable += u64::from(if n.unschedulable {
                running
            } else {
                self.node_room(n.group).saturating_sub(term)
            });
        }
        let billed: u64 = self
            .groups
            .iter()
            .map(|g| {
                g.instances
                    .iter()
                    .filter(|i| i.state != InstState::Gone)
                    .count() as u64
                    * u64::from(g.weight)
            })
            .sum();
        let pending = self.pods.values().filter(|p| p.node.is_none()).count() as u64;
        let m = &mut self.metrics;
        m.deficit_pod_seconds += needed.saturating_sub(usable);
        m.pending_pod_seconds += pending;
        m.over_pod_seconds += (billed * u64::from(ppn)).saturating_sub(needed);
        let draining: BTreeSet<&str> = self
            .drains
            .values()
            .filter(|d| d.state == DrainState::Running)
            .map(|d| d.node.as_str())
            .collect();
        m.peak_concurrent_drains = m.peak_concurrent_drains.max(draining.len() as u32);
        let secs = now.since(START).as_millis() / 1000;
        if secs.is_multiple_of(SAMPLE_EVERY) {
            m.series.push(Sample {
                t: secs as u32,
                needed_nodes: needed as f64 / f64::from(ppn),
                ready_nodes,
                usable_nodes: usable as f64 / f64::from(ppn),
                pending_pods: pending as u32,
            });
        }
    }

    /// Makes the placeholders of `node`'s signal: one per pod it has to evict, less those
    /// already there. Returns how many were made.
    pub fn place(&mut self, node: &str, signal_at: Timestamp) -> u32 {
        let want = self.pods_to_evict(node);
        let have = self
            .placeholders
            .values()
            .filter(|p| p.for_node == node && p.signal_at == signal_at)
            .count() as u32;
        for _ in have..want {
            self.placeholders.insert(
                self.next_pod,
                Placeholder {
                    for_node: node.to_string(),
                    signal_at,
                    node: None,
                    running_at: None,
                },
            );
            self.next_pod += 1;
        }
        let made = want.saturating_sub(have);
        if made > 0 {
            self.metrics.placeholders_made += made;
            self.bump();
        }
        made
    }

    /// Deletes every placeholder of `node`'s signals.
    pub fn unplace(&mut self, node: &str) {
        let before = self.placeholders.len();
        self.placeholders.retain(|_, p| p.for_node != node);
        if self.placeholders.len() != before {
            self.bump();
        }
    }

    /// Placeholders that exist now (none should at the end of a run).
    pub fn placeholders_left(&self) -> u32 {
        self.placeholders.len() as u32
    }

    /// Nodes still cordoned (and not on their way out) at the end.
    pub fn cordoned(&self) -> u32 {
        self.nodes
            .values()
            .filter(|n| n.unschedulable && !self.instance_leaving(&n.instance_id))
            .count() as u32
    }
}

/// The Node name of an instance.
pub(crate) fn node_name(instance_id: &str) -> String {
    format!("node-{}", instance_id.trim_start_matches("i-"))
}
