//! The instances AWS launches of its own accord: Capacity Rebalancing's replacements of
//! signalled instances, and AZRebalance's evening out of zones.

use std::collections::BTreeMap;

use booster_core::time::Dur;

use super::autoscaling::{node_name, InstState, Standin};
use super::drains::{Actor, DrainState};
use super::World;

impl World {
    /// AWS's own replacements, once in service: Capacity Rebalancing terminates the
    /// signalled instance (after EKS drained its node, for a managed node group), and
    /// AZRebalance terminates an instance of the fullest zone, undrained.
    pub(super) fn aws_standins(&mut self, gi: usize) {
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
    pub(super) fn launch_standin(&mut self, gi: usize, why: Standin) {
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
    pub(super) fn maybe_az_rebalance(&mut self, gi: usize) {
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
}
