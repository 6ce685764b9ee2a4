//! kube-scheduler: the room on schedulable Ready nodes, pending pods bound where there is
//! most, placeholders preempted for workload pods and bound to what is left.

use std::collections::{BTreeMap, BTreeSet};

use super::World;

/// A node with room: its name, free slots, and whether it carries a `PreferNoSchedule`
/// taint no pod tolerates (the booster's standby taint).
type Room = (String, u32, bool);

/// kube-scheduler's pick in the model: an untainted node before a `PreferNoSchedule` one
/// (TaintToleration's score, weight 3, outweighs NodeResourcesFit's, weight 1), then the
/// node with the most room (the first by name on a tie); one slot of it is taken.
fn take_most_room(room: &mut [Room]) -> Option<String> {
    let best = room.iter_mut().filter(|(_, r, _)| *r > 0).max_by(|a, b| {
        b.2.cmp(&a.2)
            .then_with(|| a.1.cmp(&b.1))
            .then_with(|| b.0.cmp(&a.0))
    })?;
    best.1 -= 1;
    Some(best.0.clone())
}

impl World {
    /// Free room on each node a pod may land on.
    pub(super) fn free_room(&self) -> BTreeMap<&str, u32> {
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
    pub(super) fn node_room(&self, gi: usize) -> u32 {
        self.sc.pods_per_node * self.groups[gi].weight
    }

    /// kube-scheduler: each pending pod to the node with the most room; a pod that fits
    /// nowhere preempts a placeholder (the lowest priority); placeholders take what is left.
    pub(super) fn schedule(&mut self) {
        self.schedule_workloads();
        self.preempt_placeholders();
        self.schedule_placeholders();
    }

    /// Nodes with room left, how much, and whether pods would rather go elsewhere.
    fn open_room(&self) -> Vec<Room> {
        self.free_room()
            .into_iter()
            .filter(|(_, r)| *r > 0)
            .map(|(n, r)| {
                let tainted = self.nodes.get(n).is_some_and(|x| x.standby_taint);
                (n.to_string(), r, tainted)
            })
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
}
