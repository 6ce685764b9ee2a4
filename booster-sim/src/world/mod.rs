//! The simulated world: Auto Scaling groups and their instances, Nodes, the workload's pods,
//! AWS Node Termination Handler, Cluster Autoscaler, and the figures of the run.
//!
//! One step is one second of virtual time. Within a step: scenario events (signals,
//! interruption notices, interruptions, workload changes), instance life (launch, register,
//! Ready, shutdown), the Auto Scaling group's reconciliation, drains, pods, the scheduler,
//! Cluster Autoscaler's scan when due, then the accounting.
//!
//! This file holds the [`World`] and its step; each actor's part lives in its own module.

mod accounting;
mod autoscaling;
mod aws_api;
mod cluster_autoscaler;
mod drains;
mod events;
mod nodes;
mod nth;
mod placeholders;
mod scheduler;
mod standins;
mod surges;
mod timeline;
mod view;
mod workload;

use std::collections::{BTreeMap, BTreeSet};

use booster_core::ledger::Ledger;
use booster_core::time::{Dur, Timestamp};

use crate::report::Metrics;
use crate::scenario::Scenario;

use autoscaling::SimGroup;
use cluster_autoscaler::CaState;
use drains::DrainProc;
use events::RebalanceEvent;
use nodes::SimNode;
use placeholders::Placeholder;
use timeline::Timed;
use workload::{App, Pod};

pub(crate) use autoscaling::node_name;
pub(crate) use drains::{Actor, DrainState};
pub(crate) use nodes::BOOSTER_MANAGER;

/// 2024-06-10T12:00:00Z: the start of every run.
pub const START: Timestamp = Timestamp::from_unix_secs(1_718_020_800);

// Draw keys.
const K_BOOT: u64 = 1;
const K_PICK: u64 = 2;
const K_SPREAD: u64 = 3;
const K_LEAD: u64 = 4;
const K_TERM: u64 = 5;
const K_AWS_PICK: u64 = 6;
const K_FORGE: u64 = 7;
const K_FOLLOW: u64 = 8;

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
    /// Which pods the controller's drains move by surge (booster policies).
    pub surge: booster_core::surge::SurgeMode,
    /// Surges under way, by app.
    surges: BTreeMap<usize, booster_core::surge::SurgeRecord>,
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
            surge: booster_core::surge::SurgeMode::Off,
            surges: BTreeMap::new(),
        };
        let long_ago = Timestamp::from_unix_millis(START.unix_millis() - 3_600_000);
        for (gi, g) in sc.groups.iter().enumerate() {
            w.groups.push(SimGroup::from_spec(g));
            w.start_in_service(gi, g, long_ago);
        }
        w.apps = sc.workload.iter().map(App::from_spec).collect();
        w.start_pods(&sc.workload, long_ago);
        w.plan_timeline();
        w.write_ca_status();
        w.ca.next_scan = START.plus(sc.cluster_autoscaler.scan_interval);
        w
    }

    fn bump(&mut self) {
        self.version += 1;
    }

    /// One second.
    pub fn step(&mut self) {
        self.now = self.now.plus(Dur::from_secs(1));
        self.timeline_due();
        self.instances();
        self.reconcile_groups();
        self.progress_drains();
        self.settle_surges();
        self.pods_progress();
        self.schedule();
        if self.now >= self.ca.next_scan {
            self.ca_scan();
            self.ca.next_scan = self.now.plus(self.sc.cluster_autoscaler.scan_interval);
        }
        self.account();
    }
}
