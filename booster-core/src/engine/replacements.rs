//! Step 4: replacements are protected from scale-down while their signal waits.

use std::collections::BTreeMap;

use super::Decider;
use crate::plan::{Action, Reason};
use crate::time::Timestamp;

impl<'a> Decider<'a> {
    /// Step 4: protect replacements from scale-down while their signal waits; unprotect after.
    pub(super) fn replacements(&mut self) {
        self.unprotect_handled();
        let waiting = self.waiting_for_replacement();
        if waiting.is_empty() {
            return;
        }
        let fresh_nodes = self.fresh_nodes(&waiting);
        self.protect_replacements(waiting, fresh_nodes);
    }

    /// Unprotect: protections whose signal is handled or unknown.
    fn unprotect_handled(&mut self) {
        for n in &self.s.nodes {
            let Some(for_node) = n.protected_for.as_deref() else {
                continue;
            };
            if !n.scale_down_disabled {
                continue; // already unprotected: the marker stays
            }
            // Our own protection is taken back even where the group became ignored or
            // opted out since: leaving it would keep `scale-down-disabled` for good, and
            // removing it undoes only what the booster did.
            let reason = match self.s.ledger.entries.get(for_node) {
                None => Some(Reason::ProtectionOrphaned),
                Some(e) if e.released_at.is_some() || self.gone(for_node, e) => {
                    Some(Reason::SignalHandled)
                }
                Some(e) if self.instance_leaving_or_absent(e) => Some(Reason::SignalHandled),
                Some(e) => {
                    let drained = e.drain.evicting()
                        && self
                            .nodes
                            .get(for_node)
                            .is_some_and(|sn| sn.pods_to_evict == 0);
                    drained.then_some(Reason::SignalHandled)
                }
            };
            if let Some(reason) = reason {
                self.push(Action::Unprotect {
                    node: n.name.clone(),
                    reason,
                });
            }
        }
    }

    /// The boosted signals still waiting for their drain and for a replacement, by the group
    /// their boost raised: (boost time, node).
    fn waiting_for_replacement(&self) -> BTreeMap<&'a str, Vec<(Timestamp, &'a str)>> {
        // Entries are already grouped (and sorted) by the group their boost raised, own or
        // fallback: the replacement comes from there. Skip groups we may not touch.
        let mut waiting: BTreeMap<&str, Vec<(Timestamp, &str)>> = BTreeMap::new();
        for (&group, entries) in &self.boosted_in {
            if !self.touchable_group(group) {
                continue;
            }
            for &(name, e) in entries {
                let Some(at) = e.boost.boosted_at() else {
                    continue;
                };
                if !self.live(name, e)
                    || self.expired(e.signal_at)
                    || self.protected.contains_key(name)
                {
                    continue;
                }
                let pods_left = self.nodes.get(name).is_some_and(|n| n.pods_to_evict > 0);
                if e.drain.evicting() && !pods_left {
                    continue;
                }
                waiting.entry(group).or_default().push((at, name));
            }
        }
        waiting
    }

    /// The nodes that may stand in for a waiting signal: new, unprotected, schedulable,
    /// in a group with a signal waiting, by group: (creation time, node).
    fn fresh_nodes(
        &self,
        waiting: &BTreeMap<&'a str, Vec<(Timestamp, &'a str)>>,
    ) -> BTreeMap<&'a str, Vec<(Timestamp, &'a str)>> {
        let window = self.cfg.new_node_window;
        let mut fresh_nodes: BTreeMap<&str, Vec<(Timestamp, &str)>> = BTreeMap::new();
        for n in &self.s.nodes {
            let eligible = n.protected_for.is_none()
                && !n.scale_down_disabled
                && !n.unschedulable
                && self.now.since(n.created_at) <= window;
            if !eligible {
                continue;
            }
            let Some((g, _)) = n
                .instance_id
                .as_deref()
                .and_then(|id| self.instances.get(id))
            else {
                continue;
            };
            // Cheapest test first: most groups have no signal waiting.
            if waiting.contains_key(g.name.as_str()) && !self.s.ledger.entries.contains_key(&n.name)
            {
                fresh_nodes
                    .entry(g.name.as_str())
                    .or_default()
                    .push((n.created_at, n.name.as_str()));
            }
        }
        fresh_nodes
    }

    /// Protect: pair each boosted signal still waiting for its drain with one node of its
    /// group created after the boost, oldest first on both sides.
    fn protect_replacements(
        &mut self,
        waiting: BTreeMap<&'a str, Vec<(Timestamp, &'a str)>>,
        mut fresh_nodes: BTreeMap<&'a str, Vec<(Timestamp, &'a str)>>,
    ) {
        for (group, mut sigs) in waiting {
            let Some(mut cands) = fresh_nodes.remove(group) else {
                continue;
            };
            sigs.sort_unstable();
            cands.sort_unstable();
            let mut next = 0;
            for (boost_at, sig) in sigs {
                // Strictly after: no instance boots in the instant its boost is recorded.
                while next < cands.len() && cands[next].0 <= boost_at {
                    next += 1;
                }
                let Some(&(_, rep)) = cands.get(next) else {
                    break;
                };
                next += 1;
                self.push(Action::Protect {
                    node: rep.to_string(),
                    for_node: sig.to_string(),
                    reason: Reason::ReplacementLaunched,
                });
            }
        }
    }
}
