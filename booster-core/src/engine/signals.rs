//! Step 1 of a pass: new signals become ledger entries.

use std::collections::BTreeMap;

use crate::ledger::{Boost, DrainState, Entry};
use crate::plan::{Action, Reason};
use crate::time::Timestamp;

use super::untouchable;
use super::Decider;

impl<'a> Decider<'a> {
    /// Step 1: signals for nodes without a live entry.
    pub(super) fn record_new_signals(&mut self) {
        // Fold the sources per node: earliest for the entry, latest to spot a new signal.
        let mut per_node: BTreeMap<&str, (Timestamp, Timestamp)> = BTreeMap::new();
        for sig in &self.s.signals {
            let slot = per_node
                .entry(sig.node.as_str())
                .or_insert((sig.at, sig.at));
            slot.0 = slot.0.min(sig.at);
            slot.1 = slot.1.max(sig.at);
        }
        for (node_name, (earliest, latest)) in per_node {
            let reason = match self.s.ledger.entries.get(node_name) {
                None => Reason::NewSignal,
                Some(e) => match e.released_at {
                    // A released signal is always older than its release (expiry > 0), so a signal
                    // at the release instant is a new one.
                    Some(rel) if latest >= rel => Reason::SignalAfterRelease,
                    _ => continue,
                },
            };
            let signal_at = if reason == Reason::SignalAfterRelease {
                latest
            } else {
                earliest
            };
            // A signal for a node we cannot see is an Event that outlived its node.
            let Some(node) = self.nodes.get(node_name).copied() else {
                continue;
            };
            let Some((group, instance_id)) = node
                .instance_id
                .as_deref()
                .and_then(|id| self.instances.get(id).map(|(g, _)| (*g, id)))
            else {
                self.hold(node_name, Reason::UnknownGroup);
                continue;
            };
            if let Some(why) = untouchable(group, self.cfg) {
                self.hold(node_name, why);
                continue;
            }
            if self.expired(signal_at) {
                let entry = Entry {
                    instance_id: instance_id.to_string(),
                    group: group.name.clone(),
                    signal_at,
                    boost: Boost::Abandoned {
                        reason: Reason::SignalExpired,
                    },
                    drain: DrainState::NotStarted,
                    released_at: Some(self.now),
                };
                self.push(Action::RecordSignal {
                    node: node_name.to_string(),
                    entry,
                    reason: Reason::StaleSignal,
                });
                if node.unschedulable || node.rebalance_taint {
                    self.push(Action::Release {
                        node: node_name.to_string(),
                        at: self.now,
                        reason: Reason::SignalExpired,
                    });
                }
                continue;
            }
            self.fresh.entry(group.name.as_str()).or_default().push((
                node_name,
                signal_at,
                instance_id,
            ));
        }
    }
}
