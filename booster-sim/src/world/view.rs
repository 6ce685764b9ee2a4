//! The Kubernetes side as the booster's adapter reads it: Nodes with their pods to evict,
//! placeholder sets, rebalance Events, Cluster Autoscaler's status and the ledger.

use std::collections::BTreeMap;

use booster_core::ports::ClusterView;
use booster_core::snapshot::{Node, Placeholders};
use booster_core::time::Timestamp;

use super::drains::{Actor, DrainState};
use super::events::EVENT_TTL;
use super::World;

impl World {
    /// The Kubernetes view the booster's adapter would build.
    pub fn cluster_view(&self) -> ClusterView {
        let signals = self
            .events
            .iter()
            .filter(|e| self.now.since(e.created) < EVENT_TTL)
            .map(|e| self.event_signal(e))
            .collect();
        ClusterView {
            nodes: self.node_views(),
            signals,
            ca_status: self.ca.status.clone(),
            ledger: self.ledger.clone(),
            placeholders: self.placeholder_sets(),
            node_pools: Vec::new(),
        }
    }

    fn node_views(&self) -> Vec<Node> {
        self.nodes
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
                standby_taint: n.standby_taint,
                scale_down_disabled: n.scale_down_disabled,
                protected_for: n.protected_for.clone(),
                pods_to_evict: self.pods_to_evict(&n.name),
                unevictable: Vec::new(),
                evicted_by_others: self.evicted_by_nth(&n.name),
                boost_mark: None,
                nodeclaim: None,
                do_not_disrupt: false,
            })
            .collect()
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

    /// Placeholders grouped by the signal they stand for, with where they run.
    fn placeholder_sets(&self) -> Vec<Placeholders> {
        let mut placeholders: BTreeMap<(&str, Timestamp), Placeholders> = BTreeMap::new();
        for p in self.placeholders.values() {
            let set = placeholders
                .entry((p.for_node.as_str(), p.signal_at))
                .or_insert_with(|| Placeholders {
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
        placeholders.into_values().collect()
    }
}
