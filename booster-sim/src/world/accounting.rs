//! The figures of the run, taken every simulated second: capacity deficit, pending pods,
//! overprovisioning, concurrent drains, the chart's samples, and forged Events' effect.

use std::collections::{BTreeMap, BTreeSet};

use crate::report::Sample;

use super::autoscaling::InstState;
use super::drains::DrainState;
use super::{World, START};

/// How often the chart samples.
const SAMPLE_EVERY: u64 = 10;

impl World {
    pub(super) fn account(&mut self) {
        let now = self.now;
        let ppn = self.sc.pods_per_node;
        let needed: u64 = self.apps.iter().map(|a| u64::from(a.replicas)).sum();
        let (usable, ready_nodes) = self.usable_room();
        let billed = self.billed_units();
        let pending = self.pods.values().filter(|p| p.node.is_none()).count() as u64;
        let down = (0..self.apps.len())
            .filter(|a| self.apps[*a].replicas > 0 && self.app_running(*a) == 0)
            .count() as u64;
        let m = &mut self.metrics;
        m.deficit_pod_seconds += needed.saturating_sub(usable);
        m.pending_pod_seconds += pending;
        m.zero_ready_seconds += down;
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

    /// Pods the Ready nodes that stay can hold now (a cordoned node only its running ones),
    /// and how many such nodes there are.
    fn usable_room(&self) -> (u64, u32) {
        let now = self.now;
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
        (usable, ready_nodes)
    }

    /// Units of the instances AWS bills (all but those gone).
    fn billed_units(&self) -> u64 {
        self.groups
            .iter()
            .map(|g| {
                g.instances
                    .iter()
                    .filter(|i| i.state != InstState::Gone)
                    .count() as u64
                    * u64::from(g.weight)
            })
            .sum()
    }

    /// The controller under test cordons, drains or retires `node`: counted when no
    /// recommendation or interruption ever named it (a forged Event made it act).
    pub fn touched_by_controller(&mut self, node: &str) {
        if !self.genuine.contains(node) && self.unsignalled.insert(node.to_string()) {
            self.metrics.unsignalled_touched += 1;
        }
    }
}
