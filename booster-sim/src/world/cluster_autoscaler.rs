//! Cluster Autoscaler: its status ConfigMap, and its scan (give up on capacity that does
//! not come, scale up for pending pods, scale down unneeded nodes).

use std::collections::BTreeMap;

use booster_core::snapshot::CaObservation;
use booster_core::time::Timestamp;

use super::nodes::CA_MANAGER;
use super::World;

#[derive(Default)]
pub(super) struct CaState {
    pub(super) next_scan: Timestamp,
    pub(super) status: CaObservation,
    /// (registered, ready, target) per group, to tell a real change from a rewrite.
    last_counts: Vec<(u32, u32, u32)>,
    pub(super) unneeded_since: BTreeMap<String, Timestamp>,
    last_scale_up: Option<Timestamp>,
}

fn ceil_div(a: u64, b: u64) -> u64 {
    a.div_ceil(b.max(1))
}

impl World {
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
    pub(super) fn write_ca_status(&mut self) {
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

    pub(super) fn ca_scan(&mut self) {
        self.ca_give_up();
        self.ca_scale_up();
        self.ca_scale_down();
        self.write_ca_status();
    }

    /// `--max-node-provision-time`: capacity asked for (by anyone) that has not registered
    /// by then is given up: the target lowered to what is there, the group backed off. A
    /// Failed scaling activity since gives it up at once (CA's AWS provider reads them and
    /// aborts early: kubernetes/autoscaler #4489).
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
            let failed = g.failures.first().is_some_and(|f| f.at >= since);
            if now.since(since) >= spec.max_node_provision_time || failed {
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
        let candidates = self.ca_unneeded(spec.scale_down_utilization_threshold);
        let now = self.now;
        self.ca
            .unneeded_since
            .retain(|name, _| candidates.iter().any(|(c, _)| c == name));
        for (c, _) in &candidates {
            self.ca.unneeded_since.entry(c.clone()).or_insert(now);
        }
        let pods_of = |name: &str| {
            candidates
                .iter()
                .find(|(c, _)| c == name)
                .map_or(0, |(_, pods)| *pods)
        };
        // Empty nodes first (CA deletes them apart from, and before, the others: its FAQ,
        // "How does scale-down work?"), then the longest unneeded.
        let mut due: Vec<(bool, Timestamp, String)> = self
            .ca
            .unneeded_since
            .iter()
            .filter(|(_, t)| now.since(**t) >= spec.scale_down_unneeded_time)
            .map(|(n, t)| (pods_of(n) > 0, *t, n.clone()))
            .collect();
        due.sort();
        for (_, _, name) in due {
            if self.ca_remove(&name) {
                break;
            }
        }
    }

    /// Nodes CA finds unneeded now, with their pod counts: used below `threshold`, and whose
    /// pods the other nodes have room for.
    fn ca_unneeded(&self, threshold: f64) -> Vec<(String, u32)> {
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
            if util < threshold && total_room - own_room >= pods {
                candidates.push((n.name.clone(), pods));
            }
        }
        candidates
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

    pub fn ca_ready(&self, group: &str) -> Option<(u32, u32)> {
        match &self.ca.status {
            CaObservation::Parsed { status, .. } => {
                status.group(group).map(|g| (g.ready, g.max_size))
            }
            _ => None,
        }
    }
}
