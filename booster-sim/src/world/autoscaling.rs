//! Auto Scaling groups and their EC2 instances: desired capacity reconciled by launches
//! and terminations, failed launches, the default termination policy, interruptions.

use std::collections::{BTreeMap, BTreeSet};

use booster_core::time::{Dur, Timestamp};

use crate::rng;
use crate::scenario::GroupSpec;

use super::{World, K_AWS_PICK, K_BOOT, START};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum InstState {
    Pending,
    InService,
    Terminating,
    Gone,
}

pub(super) struct SimInstance {
    pub(super) id: String,
    pub(super) az: String,
    pub(super) state: InstState,
    /// A replacement AWS launched itself: for a signalled instance (Capacity Rebalancing),
    /// or to even out zones (AZRebalance). It does not count toward desired capacity until
    /// the instance it stands for is gone.
    pub(super) stands_for: Option<Standin>,
    pub(super) register_at: Timestamp,
    pub(super) ready_at: Timestamp,
    pub(super) node_gone_at: Option<Timestamp>,
    pub(super) gone_at: Option<Timestamp>,
}

/// Why AWS launched an instance of its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Standin {
    /// Capacity Rebalancing: replaces this instance, terminated once the new one is in
    /// service (after EKS drained its node, for a managed node group).
    Replaces(String),
    /// AZRebalance: one instance of the fullest zone goes once the new one is in service.
    Rebalance,
}

/// The Node name of an instance.
pub(crate) fn node_name(instance_id: &str) -> String {
    format!("node-{}", instance_id.trim_start_matches("i-"))
}

pub(super) struct SimGroup {
    pub(super) name: String,
    pub(super) min: u32,
    pub(super) max: u32,
    pub(super) desired: u32,
    pub(super) azs: Vec<String>,
    pub(super) tags: BTreeMap<String, String>,
    pub(super) instances: Vec<SimInstance>,
    pub(super) launches: u64,
    /// Units per instance.
    pub(super) weight: u32,
    pub(super) capacity_rebalance: bool,
    pub(super) eks_managed: bool,
    pub(super) suspended: BTreeSet<String>,
    /// Launches fail in this window.
    pub(super) dry: Option<(Timestamp, Timestamp)>,
    /// Failed scaling activities, newest first.
    pub(super) failures: Vec<booster_core::snapshot::LaunchFailure>,
    /// Raises of desired capacity, newest first (the last ten).
    pub(super) raises: Vec<booster_core::snapshot::Raise>,
    /// Cluster Autoscaler's view: since when its raise waits, and until when it backs off.
    pub(super) ca_waiting_since: Option<Timestamp>,
    pub(super) ca_backoff_until: Option<Timestamp>,
}

impl SimGroup {
    /// The group as the scenario describes it, before any instance.
    pub(super) fn from_spec(g: &GroupSpec) -> Self {
        SimGroup {
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
        }
    }

    /// Units of the instances that count toward desired capacity.
    pub(super) fn capacity(&self) -> u32 {
        self.instances
            .iter()
            .filter(|i| matches!(i.state, InstState::Pending | InstState::InService))
            .filter(|i| i.stands_for.is_none())
            .count() as u32
            * self.weight
    }

    /// Raises desired capacity, and keeps the scaling activity AWS records for it.
    pub(super) fn raise_to(&mut self, desired: u32, at: Timestamp) {
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

impl World {
    /// The initial instances of group `gi`, launched from its spec `g`.
    pub(super) fn start_in_service(&mut self, gi: usize, g: &GroupSpec, long_ago: Timestamp) {
        for _ in 0..g.desired.div_ceil(g.weight.max(1)) {
            let id = self.launch(gi);
            // Initial instances are long in service, their nodes long Ready.
            if let Some(i) = self.groups[gi].instances.iter_mut().find(|i| i.id == id) {
                i.state = InstState::InService;
                i.register_at = long_ago;
                i.ready_at = long_ago;
            }
            self.register(gi, &id, long_ago);
            if let Some(n) = self.nodes.get_mut(&node_name(&id)) {
                n.ready_since = Some(long_ago);
            }
        }
    }

    pub(super) fn launch(&mut self, gi: usize) -> String {
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

    pub(super) fn live_instance(&self, id: &str) -> Option<(usize, usize)> {
        self.groups.iter().enumerate().find_map(|(gi, g)| {
            g.instances
                .iter()
                .position(|i| {
                    i.id == id && matches!(i.state, InstState::Pending | InstState::InService)
                })
                .map(|ii| (gi, ii))
        })
    }

    pub(super) fn reconcile_groups(&mut self) {
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
    pub(super) fn can_launch(&self, gi: usize) -> bool {
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
    pub(super) fn scale_in_pick(&self, gi: usize) -> Option<String> {
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

    pub(super) fn terminate_instance(&mut self, id: &str) {
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

    /// EC2 takes the instance back; the group replaces it (desired unchanged).
    pub(super) fn interrupt(&mut self, id: &str) {
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
}
