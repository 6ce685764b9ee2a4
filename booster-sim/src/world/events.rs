//! Rebalance Events in the apiserver: NTH's own and a tenant's forgeries, as the adapter
//! and upstream read them, within the Events' time to live.

use std::collections::BTreeSet;

use booster_core::snapshot::Signal;
use booster_core::time::{Dur, Timestamp};

use super::autoscaling::node_name;
use super::World;

/// The Events' time to live in the apiserver (`--event-ttl`).
pub(super) const EVENT_TTL: Dur = Dur::from_mins(60);

pub(super) struct RebalanceEvent {
    pub(super) node: String,
    /// The time it claims.
    pub(super) at: Timestamp,
    /// When it was posted.
    pub(super) created: Timestamp,
    /// The kind of forgery (see [`crate::scenario::ForgedSpec`]), `None` for NTH's own.
    pub(super) forged: Option<u8>,
}

/// Kinds of forged Event, in [`crate::scenario::ForgedSpec`]'s order.
pub(super) const FORGERIES: u8 = 7;

impl World {
    /// A tenant posts a forged Event about an initial node of `group` (nothing else: it
    /// may only create Events).
    pub(super) fn forge(&mut self, group: usize, initial: u32, kind: u8) {
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

    /// An Event as the Kubernetes adapter reads it; a forged one is odd in its own way.
    pub(super) fn event_signal(&self, e: &RebalanceEvent) -> Signal {
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
}
