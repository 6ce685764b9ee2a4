//! A deterministic simulator: the same scenario under three policies, in virtual time.
//!
//! The world ([`Scenario`] → Auto Scaling groups, instances that boot in a drawn time,
//! Nodes, a workload of pods, AWS Node Termination Handler, Cluster Autoscaler) advances one
//! simulated second per step, and nothing sleeps. Policies drive it through the port traits
//! of [`booster_core::ports`]:
//!
//! * `nth-drain` — no controller: NTH cordons and drains on the recommendation, Cluster
//!   Autoscaler refills once pods are Pending.
//! * `upstream` — the Go aws-spots-booster's algorithm: every 2 s, for each group with live
//!   rebalance Events, desired = CA's ready count + Events (+ extra), capped at max, set again
//!   every time (SetDesiredCapacity may lower it); DescribeTags every 5 s; drains in batches
//!   pairing each signalled node with a recently Ready node, then terminate with decrement
//!   even when the drain failed. It also uses two calls our ports do not have (a raw
//!   SetDesiredCapacity and DescribeTags), which the simulated cloud offers beside the trait.
//! * `booster` — [`booster_core::decide`] and [`booster_core::exec::execute`], exactly as the binary runs
//!   them: event-driven passes (on any observable change, at the plan's wake-up, and on a
//!   60 s resync), DescribeAutoScalingGroups cached for 15 s and invalidated by our writes.
//!
//! Random draws are keyed (the k-th launch of a group boots in the same time under every
//! policy), so that policies are compared on the same luck.

mod ports;
mod report;
mod rng;
pub mod scenario;
pub mod sweep;
mod world;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use booster_core::config::{Config, DrainOn};
use booster_core::engine::{decide, untouchable};
use booster_core::exec::{drains_to_resume, execute};
use booster_core::ledger::Boost;
use booster_core::plan::{Action, Plan};
use booster_core::ports::{Cloud, Cluster, DrainOutcome, DrainSpec, PortError};
use booster_core::snapshot::Snapshot;
use booster_core::time::{Dur, Timestamp};

pub use report::{Report, Sample};
pub use scenario::{Scenario, ScenarioError};
pub use world::START;

use ports::{lock, now as complete, poll_once, Shared, SimCloud, SimCluster};
use world::{Actor, World};

/// Who handles rebalance recommendations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// NTH drains on the signal; Cluster Autoscaler refills.
    NthDrain,
    /// The Go aws-spots-booster.
    Upstream,
    /// This project's engine.
    Booster,
    /// This project's engine with `--boost-mode placeholder`: placeholder pods, and Cluster
    /// Autoscaler provisions for them.
    BoosterPlaceholder,
    /// This project's engine with `--drain-on interruption`: boosted, then on standby until
    /// the interruption notice; given back at the expiry without one.
    BoosterStandby,
    /// This project's engine with `--drain-on adaptive`.
    BoosterAdaptive,
}

impl Policy {
    /// All policies, in report order.
    pub const ALL: [Policy; 6] = [
        Policy::NthDrain,
        Policy::Upstream,
        Policy::Booster,
        Policy::BoosterPlaceholder,
        Policy::BoosterStandby,
        Policy::BoosterAdaptive,
    ];

    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::NthDrain => "nth-drain",
            Policy::Upstream => "upstream",
            Policy::Booster => "booster",
            Policy::BoosterPlaceholder => "booster-placeholder",
            Policy::BoosterStandby => "booster-standby",
            Policy::BoosterAdaptive => "booster-adaptive",
        }
    }

    /// Reads a name.
    pub fn parse(s: &str) -> Option<Policy> {
        Policy::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Runs `scenario` under `policy`.
pub fn run(scenario: &Scenario, policy: Policy, seed: u64) -> Report {
    run_traced(scenario, policy, seed, &mut |_, _| {})
}

/// Runs `scenario` under `policy`, handing every booster decision (snapshot and plan) to
/// `trace`.
pub fn run_traced(
    scenario: &Scenario,
    policy: Policy,
    seed: u64,
    trace: &mut dyn FnMut(&Snapshot, &Plan),
) -> Report {
    let mut world = World::new(scenario, seed, policy == Policy::NthDrain);
    // The booster's drains surge (its default `--surge single-replica`); NTH's and the Go
    // booster's evict.
    if !matches!(policy, Policy::NthDrain | Policy::Upstream) {
        world.surge = booster_core::surge::SurgeMode::SingleReplica;
    }
    let w: Shared = Arc::new(Mutex::new(world));
    let p = Ports {
        w: w.clone(),
        cloud: Arc::new(SimCloud::new(w.clone())),
        cluster: Arc::new(SimCluster::new(w.clone())),
    };
    let cfg = scenario.booster.clone();
    let mut ctl: Box<dyn Controller> = match policy {
        Policy::NthDrain => Box::new(NoController),
        Policy::Upstream => Box::new(UpstreamCtl::new(cfg)),
        Policy::Booster => Box::new(BoosterCtl::new(cfg)),
        Policy::BoosterPlaceholder => Box::new(BoosterCtl::new(Config {
            boost_mode: booster_core::config::BoostMode::Placeholder,
            ..cfg
        })),
        Policy::BoosterStandby => Box::new(BoosterCtl::new(Config {
            drain_on: DrainOn::Interruption,
            ..cfg
        })),
        Policy::BoosterAdaptive => Box::new(BoosterCtl::new(Config {
            drain_on: DrainOn::Adaptive,
            ..cfg
        })),
    };
    let end = START.plus(scenario.duration);
    let mut restarts: Vec<(Timestamp, Dur)> = scenario
        .restarts
        .iter()
        .map(|r| (START.plus(r.at), r.down))
        .collect();
    restarts.sort();
    restarts.reverse();
    let mut down_until: Option<Timestamp> = None;
    loop {
        let now = {
            let mut g = lock(&w);
            if g.now >= end {
                break;
            }
            g.step();
            g.now
        };
        if down_until.is_some_and(|t| now >= t) {
            down_until = None;
        }
        if down_until.is_none() && restarts.last().is_some_and(|(at, _)| now >= *at) {
            if let Some((_, down)) = restarts.pop() {
                ctl.crash(&p);
                down_until = Some(now.plus(down));
            }
        }
        if down_until.is_none() {
            ctl.tick(&p, trace);
        }
    }
    let mut g = lock(&w);
    let at_end = report::AtEnd {
        cordoned: g.cordoned(),
        placeholders: g.placeholders_left(),
    };
    let metrics = std::mem::take(&mut g.metrics);
    metrics.report(
        &scenario.name,
        policy,
        seed,
        scenario.duration.as_millis() / 1000,
        scenario.pods_per_node,
        at_end,
    )
}

/// Runs every scenario under every policy in `policies`, calling `progress` after each run.
pub fn run_all(
    scenarios: &[Scenario],
    policies: &[Policy],
    seed: u64,
    progress: &mut dyn FnMut(&Report),
) -> Vec<Report> {
    let mut out = Vec::with_capacity(scenarios.len() * policies.len());
    for s in scenarios {
        for p in policies {
            let r = run(s, *p, seed);
            progress(&r);
            out.push(r);
        }
    }
    out
}

struct Ports {
    w: Shared,
    cloud: Arc<SimCloud>,
    cluster: Arc<SimCluster>,
}

impl Ports {
    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        lock(&self.w)
    }
}

type DrainFuture = Pin<Box<dyn Future<Output = Result<DrainOutcome, PortError>> + Send>>;

fn spawn_drain(cluster: &Arc<SimCluster>, spec: DrainSpec) -> DrainFuture {
    let c = cluster.clone();
    Box::pin(async move { c.drain(&spec).await })
}

trait Controller {
    /// One simulated second.
    fn tick(&mut self, p: &Ports, trace: &mut dyn FnMut(&Snapshot, &Plan));
    /// The process dies: memory and in-flight work are lost.
    fn crash(&mut self, p: &Ports);
}

struct NoController;

impl Controller for NoController {
    fn tick(&mut self, _: &Ports, _: &mut dyn FnMut(&Snapshot, &Plan)) {}
    fn crash(&mut self, _: &Ports) {}
}

// ---- booster ---------------------------------------------------------------------------

const RESYNC: Dur = Dur::from_secs(60);

struct BoosterCtl {
    cfg: Config,
    seen: Option<u64>,
    wake: Option<Timestamp>,
    resync: Timestamp,
    /// Drains this process runs, by node.
    drains: BTreeMap<String, DrainFuture>,
    /// Instance ids we refreshed the describe cache for once.
    unknown: BTreeSet<String>,
    checks: Checks,
}

impl BoosterCtl {
    fn new(cfg: Config) -> Self {
        BoosterCtl {
            cfg,
            seen: None,
            wake: None,
            resync: Timestamp::EPOCH,
            drains: BTreeMap::new(),
            unknown: BTreeSet::new(),
            checks: Checks::default(),
        }
    }
}

impl Controller for BoosterCtl {
    fn tick(&mut self, p: &Ports, trace: &mut dyn FnMut(&Snapshot, &Plan)) {
        self.drains.retain(|_, f| poll_once(f.as_mut()).is_none());
        let (now, version) = {
            let w = p.world();
            (w.now, w.version)
        };
        let due =
            self.seen != Some(version) || self.wake.is_some_and(|t| now >= t) || now >= self.resync;
        if !due {
            return;
        }
        self.seen = Some(version);
        self.resync = now.plus(RESYNC);
        let snapshot = match complete(booster_core::exec::snapshot(
            p.cluster.as_ref(),
            p.cloud.as_ref(),
            now,
            &mut self.unknown,
        ))
        .and_then(|r| r)
        {
            Ok(s) => s,
            Err(e) => return p.world().metrics.violations.push(format!("snapshot: {e}")),
        };
        let plan = decide(&snapshot, &self.cfg);
        trace(&snapshot, &plan);
        self.wake = plan.next_wakeup;
        let violations = self.checks.plan(&snapshot, &plan, &self.cfg);
        let ex = complete(execute(
            &plan,
            &snapshot.ledger,
            &*p.cloud,
            &*p.cluster,
            self.cfg.drain_timeout,
        ));
        {
            let mut w = p.world();
            w.metrics.decisions += 1;
            w.metrics.violations.extend(violations);
        }
        let Ok(ex) = ex else {
            return;
        };
        let mut specs = ex.drains;
        if !plan.dry_run {
            let running: BTreeSet<String> = self
                .drains
                .keys()
                .cloned()
                .chain(specs.iter().map(|d| d.node.clone()))
                .collect();
            specs.extend(drains_to_resume(
                &ex.ledger,
                &snapshot.nodes,
                &running,
                now,
                self.cfg.drain_timeout,
            ));
        }
        for spec in specs {
            let node = spec.node.clone();
            let mut f = spawn_drain(&p.cluster, spec);
            if poll_once(f.as_mut()).is_none() {
                self.drains.insert(node, f);
            }
        }
    }

    fn crash(&mut self, p: &Ports) {
        self.drains.clear();
        self.seen = None;
        self.wake = None;
        self.resync = Timestamp::EPOCH;
        self.unknown.clear();
        p.cloud.invalidate();
        p.world().abort_drains(Actor::Controller);
    }
}

/// DESIGN.md's properties, checked on every booster plan. They survive restarts (they are
/// the observer's memory, not the controller's).
#[derive(Default)]
struct Checks {
    boosted: BTreeSet<(String, Timestamp)>,
    last_drain_start: Option<Timestamp>,
}

impl Checks {
    fn plan(&mut self, s: &Snapshot, plan: &Plan, cfg: &Config) -> Vec<String> {
        let mut v = Vec::new();
        let groups: BTreeMap<&str, _> = s.groups.iter().map(|g| (g.name.as_str(), g)).collect();
        let mut drains = 0u32;
        for a in &plan.actions {
            if let Some(g) = a.group().and_then(|n| groups.get(n)) {
                if a.is_cloud() && untouchable(g, cfg).is_some() {
                    v.push(format!("property 9: {a} touches {}", g.name));
                }
            }
            match a {
                Action::SetDesired {
                    group, from, to, ..
                } => {
                    let max = groups.get(group.as_str()).map_or(0, |g| g.max_size);
                    if to > &max {
                        v.push(format!("property 1: {a} above max {max}"));
                    }
                    if to <= from {
                        v.push(format!("property 2: {a} does not raise"));
                    }
                }
                Action::RecordSignal { node, entry, .. }
                    if matches!(entry.boost, Boost::Applying { .. })
                        && !self.boosted.insert((node.clone(), entry.signal_at)) =>
                {
                    v.push(format!("property 3: {node} boosted twice"));
                }
                Action::BeginBoost { nodes, .. } => {
                    for n in nodes {
                        let at = s
                            .ledger
                            .entries
                            .get(n)
                            .map_or(Timestamp::EPOCH, |e| e.signal_at);
                        if !self.boosted.insert((n.clone(), at)) {
                            v.push(format!("property 3: {n} boosted twice"));
                        }
                    }
                }
                Action::StartDrain { attempt: 1, .. } => {
                    drains += 1;
                    if let Some(last) = self.last_drain_start {
                        if s.now.since(last) < cfg.time_between_drains {
                            v.push(format!("property 4: drains {} apart", s.now.since(last)));
                        }
                    }
                    self.last_drain_start = Some(s.now);
                }
                _ => {}
            }
        }
        if drains > cfg.max_concurrent_drains {
            v.push(format!("property 4: {drains} drains started at once"));
        }
        if plan.dry_run != cfg.dry_run {
            v.push("property 8: plan not flagged dry-run".into());
        }
        v
    }
}

// ---- upstream --------------------------------------------------------------------------

/// Upstream's loop periods.
const UPSTREAM_SYNC: Dur = Dur::from_secs(2);
const UPSTREAM_TAGS: Dur = Dur::from_secs(5);

struct UpstreamDrain {
    node: String,
    instance: String,
    future: DrainFuture,
    done: bool,
}

struct UpstreamCtl {
    cfg: Config,
    next_sync: Timestamp,
    next_tags: Timestamp,
    next_batch: Timestamp,
    batch: Vec<UpstreamDrain>,
}

impl UpstreamCtl {
    fn new(cfg: Config) -> Self {
        UpstreamCtl {
            cfg,
            next_sync: Timestamp::EPOCH,
            next_tags: Timestamp::EPOCH,
            next_batch: Timestamp::EPOCH,
            batch: Vec::new(),
        }
    }

    /// Events per group, in Event order.
    fn events_by_group(w: &World) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for node in w.event_nodes() {
            if let Some(n) = w.nodes.get(&node) {
                out.entry(w.group_name(n.group).to_string())
                    .or_default()
                    .push(node);
            }
        }
        out
    }

    fn sync(&mut self, p: &Ports) {
        let targets: Vec<(String, u32)> = {
            let w = p.world();
            Self::events_by_group(&w)
                .into_iter()
                .filter(|(g, _)| !self.cfg.ignored_groups.contains(g))
                .filter_map(|(g, ev)| {
                    let (ready, max) = w.ca_ready(&g)?;
                    let want = ready
                        .saturating_add(ev.len() as u32)
                        .saturating_add(self.cfg.extra_nodes_per_signal);
                    Some((g, want.min(max)))
                })
                .collect()
        };
        for (g, desired) in targets {
            // Upstream logs and goes on when the call fails.
            let _ = p.cloud.set_desired_capacity(&g, desired);
        }
    }

    fn drains(&mut self, p: &Ports, now: Timestamp) {
        if !self.batch.is_empty() {
            for d in self.batch.iter_mut().filter(|d| !d.done) {
                if poll_once(d.future.as_mut()).is_some() {
                    d.done = true;
                    // Terminate with decrement whatever the drain's outcome.
                    if !d.instance.is_empty() {
                        let _ = complete(p.cloud.retire(&d.instance, true));
                    }
                    p.world().delete_events(&d.node);
                }
            }
            if self.batch.iter().all(|d| d.done) {
                self.batch.clear();
                self.next_batch = now.plus(self.cfg.time_between_drains);
            }
            return;
        }
        if now < self.next_batch || self.cfg.disable_drain {
            return;
        }
        self.next_batch = now.plus(self.cfg.time_between_drains);
        let window = self.cfg.new_node_window;
        let picks: Vec<(String, String, String)> = {
            let w = p.world();
            let mut picks = Vec::new();
            for (group, events) in Self::events_by_group(&w) {
                let mut recent: Vec<_> = w
                    .nodes
                    .values()
                    .filter(|n| w.group_name(n.group) == group)
                    .filter(|n| !n.unschedulable && !n.upstream_ignore)
                    .filter(|n| n.ready_since.is_some_and(|t| now.since(t) <= window))
                    .collect();
                recent.sort_by_key(|n| std::cmp::Reverse(n.created_at));
                let n = (self.cfg.max_concurrent_drains as usize)
                    .min(recent.len())
                    .min(events.len());
                for i in 0..n {
                    let instance = w
                        .nodes
                        .get(&events[i])
                        .map(|n| n.instance_id.clone())
                        .unwrap_or_default();
                    picks.push((recent[i].name.clone(), events[i].clone(), instance));
                }
            }
            picks
        };
        for (fresh, node, instance) in picks {
            let _ = p.cluster.annotate_ignore(&fresh);
            let _ = complete(p.cluster.set_unschedulable(&node, true));
            // Polled (and so started) from the next second on.
            let future = spawn_drain(
                &p.cluster,
                DrainSpec {
                    node: node.clone(),
                    timeout: self.cfg.drain_timeout,
                    dry_run: false,
                },
            );
            self.batch.push(UpstreamDrain {
                node,
                instance,
                future,
                done: false,
            });
        }
    }
}

impl Controller for UpstreamCtl {
    fn tick(&mut self, p: &Ports, _: &mut dyn FnMut(&Snapshot, &Plan)) {
        let now = p.world().now;
        if now >= self.next_tags {
            p.cloud.describe_tags();
            self.next_tags = now.plus(UPSTREAM_TAGS);
        }
        if now >= self.next_sync && !self.cfg.dry_run {
            self.sync(p);
            self.next_sync = now.plus(UPSTREAM_SYNC);
        }
        if !self.cfg.dry_run {
            self.drains(p, now);
        }
    }

    fn crash(&mut self, p: &Ports) {
        self.batch.clear();
        self.next_sync = Timestamp::EPOCH;
        self.next_tags = Timestamp::EPOCH;
        self.next_batch = Timestamp::EPOCH;
        p.world().abort_drains(Actor::Controller);
    }
}
