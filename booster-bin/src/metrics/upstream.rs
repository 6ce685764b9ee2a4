//! The upstream project's per-group gauges (gauges, despite the `_total` suffix), kept
//! under their names for existing dashboards.

use std::collections::{BTreeMap, BTreeSet};

use booster_core::{Dur, Snapshot};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::labels::GroupLabel;

/// A group's figures, in the order of the gauges: signalled, nodes, cordoned, recently
/// ready.
type GroupCounts = [i64; 4];

/// `aws_spots_booster_*_total`, per Auto Scaling group.
pub(super) struct UpstreamGauges {
    events: Family<GroupLabel, Gauge>,
    nodes: Family<GroupLabel, Gauge>,
    cordoned: Family<GroupLabel, Gauge>,
    recently_ready: Family<GroupLabel, Gauge>,
}

impl UpstreamGauges {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let events = Family::<GroupLabel, Gauge>::default();
        let nodes = Family::<GroupLabel, Gauge>::default();
        let cordoned = Family::<GroupLabel, Gauge>::default();
        let recently_ready = Family::<GroupLabel, Gauge>::default();
        // The upstream project's names (gauges, despite the suffix), kept for dashboards.
        registry.register(
            "aws_spots_booster_events_total",
            "Rebalance signals per group (upstream name)",
            events.clone(),
        );
        registry.register(
            "aws_spots_booster_nodes_total",
            "Nodes per group (upstream name)",
            nodes.clone(),
        );
        registry.register(
            "aws_spots_booster_cordoned_nodes_total",
            "Cordoned nodes per group (upstream name)",
            cordoned.clone(),
        );
        registry.register(
            "aws_spots_booster_recently_ready_nodes_total",
            "Nodes created within max-time-consider-new-node per group (upstream name)",
            recently_ready.clone(),
        );
        UpstreamGauges {
            events,
            nodes,
            cordoned,
            recently_ready,
        }
    }

    /// Sets every group's gauges from the snapshot.
    pub(super) fn record(&self, s: &Snapshot, new_node_window: Dur) {
        for (g, c) in per_group(s, new_node_window) {
            let l = GroupLabel {
                autoscaling_group: g.to_string(),
            };
            self.events.get_or_create(&l).set(c[0]);
            self.nodes.get_or_create(&l).set(c[1]);
            self.cordoned.get_or_create(&l).set(c[2]);
            self.recently_ready.get_or_create(&l).set(c[3]);
        }
    }
}

/// Every described group's counts (zero when none of its nodes is seen); nodes are matched
/// to their group by instance.
fn per_group(s: &Snapshot, new_node_window: Dur) -> BTreeMap<&str, GroupCounts> {
    let mut by_instance = BTreeMap::new();
    for g in &s.groups {
        for i in &g.instances {
            by_instance.insert(i.id.as_str(), g.name.as_str());
        }
    }
    let mut per: BTreeMap<&str, GroupCounts> =
        s.groups.iter().map(|g| (g.name.as_str(), [0; 4])).collect();
    // Signals being handled: an Event alone is only a claim (see `signals_rejected`).
    let signalled: BTreeSet<&str> = s
        .ledger
        .entries
        .iter()
        .filter(|(_, e)| e.released_at.is_none())
        .map(|(n, _)| n.as_str())
        .collect();
    for n in &s.nodes {
        let Some(g) = n.instance_id.as_deref().and_then(|id| by_instance.get(id)) else {
            continue;
        };
        let c = per.entry(g).or_default();
        c[0] += i64::from(signalled.contains(n.name.as_str()));
        c[1] += 1;
        c[2] += i64::from(n.unschedulable);
        c[3] += i64::from(n.ready && s.now.since(n.created_at) <= new_node_window);
    }
    per
}
