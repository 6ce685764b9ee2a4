//! Step 1 of a pass: which claimed signals count, and new ones become ledger entries.
//!
//! Anyone allowed to create Events can post a `RebalanceRecommendation` naming any Node,
//! with any message. So an Event is only a claim, and the engine acts on a node only when
//! the Node itself backs it with something that only a principal allowed to write Nodes
//! can set:
//!
//! ```text
//!  signal = NTH's rebalance taint on the Node
//!         | NTH's cordon (spec.unschedulable set by an NTH field manager)
//!           + an accepted Event created within the corroboration window of that cordon
//! ```
//!
//! An Event is accepted when it is in a configured namespace, from NTH's component, names a
//! Node that existed when the Event was created, carries that Node's instance id (when it
//! carries one) and claims no time after its own creation (plus the clock skew). Every
//! other Event is reported in [`crate::plan::Plan::rejected`] and never acted on.
//!
//! The signal's time is never taken from an Event: it is the server-recorded time of the
//! corroborating write (the `managedFields` time of the taint or of the cordon), else the
//! instant it was first seen, never before the Node existed. A claimed time only tells a
//! new recommendation (claimed after the node was given back) from the old one.

use std::collections::{BTreeMap, BTreeSet};

use crate::ledger::{Boost, DrainState, Entry};
use crate::plan::{Action, Reason, Rejected, Rejection};
use crate::snapshot::{Node, Signal};
use crate::time::Timestamp;

use super::untouchable;
use super::{Decider, Fresh, FreshSignal};

/// The accepted Events of one node.
struct Claims<'a> {
    events: Vec<&'a Signal>,
    /// The latest time they claim.
    latest: Timestamp,
}

impl<'a> Decider<'a> {
    /// Step 1: trusted signals for nodes without a live entry; rejections for the rest.
    /// Returns the new signals that want a boost, by group.
    pub(super) fn record_new_signals(&mut self) -> Fresh<'a> {
        let claims = self.vet_events();
        let mut evidenced: Vec<&'a Node> = self
            .s
            .nodes
            .iter()
            .filter(|n| n.rebalance_taint || self.cordon_backs(n, claims.get(&*n.name)))
            .collect();
        evidenced.sort_by(|a, b| a.name.cmp(&b.name));
        let corroborated: BTreeSet<&str> = evidenced.iter().map(|n| n.name.as_str()).collect();
        let mut fresh = Fresh::new();
        for node in evidenced {
            let latest = claims.get(node.name.as_str()).map(|c| c.latest);
            if let Some((group, signal)) = self.record_signal(node, latest) {
                fresh.entry(group).or_default().push(signal);
            }
        }
        for (name, c) in &claims {
            if corroborated.contains(name) || self.already_handled(name, c.latest) {
                continue;
            }
            // NTH posts its Event and cordons a moment apart: give the cordon time to show.
            let grace = self.cfg.corroboration_window;
            let now = self.now;
            let due = c
                .events
                .iter()
                .filter(|e| e.created_at.is_none_or(|t| now.since(t) >= grace));
            for e in due.copied().collect::<Vec<_>>() {
                self.reject(e, Rejected::Uncorroborated);
            }
        }
        fresh
    }

    /// The node is cordoned, and by NTH.
    fn nth_cordon(&self, n: &Node) -> bool {
        n.unschedulable
            && n.cordoned_by
                .as_ref()
                .is_some_and(|m| self.cfg.nth_field_managers.contains(m))
    }

    /// NTH's cordon backs one of the node's accepted Events: NTH posts its Event and cordons
    /// within moments, so an Event created far from the cordon (both times server-set) is
    /// about something else, such as a cordon NTH made for an interruption.
    fn cordon_backs(&self, n: &Node, claims: Option<&Claims<'a>>) -> bool {
        let window = self.cfg.corroboration_window;
        let near = |e: &&Signal| match (e.created_at, n.cordoned_at) {
            (Some(a), Some(b)) => a.since(b).max(b.since(a)) <= window,
            _ => true,
        };
        self.nth_cordon(n) && claims.is_some_and(|c| c.events.iter().any(near))
    }

    /// Splits the Events into accepted claims per node and rejections.
    fn vet_events(&mut self) -> BTreeMap<&'a str, Claims<'a>> {
        let mut claims: BTreeMap<&'a str, Claims<'a>> = BTreeMap::new();
        for sig in &self.s.signals {
            match self.vet(sig) {
                Err(why) => self.reject(sig, why),
                Ok(at) => {
                    let c = claims.entry(sig.node.as_str()).or_insert(Claims {
                        events: Vec::new(),
                        latest: at,
                    });
                    c.events.push(sig);
                    c.latest = c.latest.max(at);
                }
            }
        }
        claims
    }

    /// The time an Event claims, if it is acceptable: not before its Node existed.
    fn vet(&self, sig: &Signal) -> Result<Timestamp, Rejected> {
        if !self.cfg.event_namespaces.contains(&sig.namespace) {
            return Err(Rejected::Namespace);
        }
        if !self.cfg.event_components.contains(&sig.component) {
            return Err(Rejected::Component);
        }
        let node = self
            .nodes
            .get(sig.node.as_str())
            .ok_or(Rejected::UnknownNode)?;
        if sig.created_at.is_some_and(|c| c < node.created_at) {
            return Err(Rejected::BeforeNode);
        }
        if sig
            .instance_id
            .as_deref()
            .is_some_and(|id| node.instance_id.as_deref() != Some(id))
        {
            return Err(Rejected::InstanceMismatch);
        }
        let posted = sig.created_at.unwrap_or(self.now);
        if sig.at > posted.plus(self.cfg.clock_skew) {
            return Err(Rejected::FutureTime);
        }
        Ok(sig.at.max(node.created_at))
    }

    fn reject(&mut self, sig: &Signal, reason: Rejected) {
        self.plan.rejected.push(Rejection {
            signal: sig.id.clone(),
            node: sig.node.clone(),
            reason,
        });
    }

    /// The node's signal is already in the ledger: live, or given back after these claims.
    fn already_handled(&self, node: &str, latest_claim: Timestamp) -> bool {
        self.s
            .ledger
            .entries
            .get(node)
            .is_some_and(|e| e.released_at.is_none_or(|rel| latest_claim < rel))
    }

    /// When the corroborating write was made (server time), else now; never before the
    /// Node existed nor after now.
    fn trusted_at(&self, n: &Node) -> Timestamp {
        self.nth_writes(n)
            .min()
            .unwrap_or(self.now)
            .min(self.now)
            .max(n.created_at)
    }

    /// When NTH's taint and NTH's cordon on `n` were written (server time), those that are
    /// there.
    fn nth_writes(&self, n: &Node) -> impl Iterator<Item = Timestamp> {
        let taint = n.tainted_at.filter(|_| n.rebalance_taint);
        let cordon = n.cordoned_at.filter(|_| self.nth_cordon(n));
        taint.into_iter().chain(cordon)
    }

    /// NTH's taint or NTH's cordon on `n` was written at or after `t`.
    fn written_after(&self, n: &Node, t: Timestamp) -> bool {
        self.nth_writes(n).any(|w| w >= t)
    }

    /// A corroborated signal for `node`: a new entry, or nothing if its entry is live or
    /// was given back for these same claims. A new signal that wants a boost is returned
    /// with its group, for the boosts to record.
    fn record_signal(
        &mut self,
        node: &'a Node,
        latest_claim: Option<Timestamp>,
    ) -> Option<(&'a str, FreshSignal<'a>)> {
        let node_name = node.name.as_str();
        let trusted = self.trusted_at(node);
        // An entry of an earlier machine with this name is no signal of this one.
        let recorded = self
            .s
            .ledger
            .entries
            .get(node_name)
            .filter(|e| super::same_machine(node, e));
        let signal_at = match recorded {
            None => trusted,
            Some(e) => match e.released_at {
                // A new recommendation after a give-back is told by NTH's own write: its
                // taint or cordon made after the release (the apiserver's time, in
                // managedFields), which only a node-level actor can make. An Event's claim
                // can only hold it back: NTH replays a handled recommendation after a
                // restart (it keeps them in memory), and the replay claims the old time.
                Some(rel)
                    if self.written_after(node, rel) && latest_claim.is_some_and(|t| t >= rel) =>
                {
                    trusted.max(rel)
                }
                _ => return None,
            },
        };
        let Some((group, instance_id)) = node
            .instance_id
            .as_deref()
            .and_then(|id| self.instances.get(id).map(|(g, _)| (*g, id)))
        else {
            self.hold(node_name, Reason::UnknownGroup);
            return None;
        };
        if let Some(why) = untouchable(group, self.cfg) {
            self.hold(node_name, why);
            return None;
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
                fallback: None,
                retiring: None,
                cordoned_before: self.cordoned_before(node_name),
                pool: self.pool_of(instance_id),
                // Seen only after its expiry: nothing was watched, so nothing is counted.
                outcome: Some(crate::outcomes::SignalOutcome::Unknown),
            };
            let keep = entry.cordoned_before;
            self.push(Action::RecordSignal {
                node: node_name.to_string(),
                entry,
                reason: Reason::StaleSignal,
            });
            if node.unschedulable || node.rebalance_taint {
                self.give_back(node_name, node, keep, self.now, Reason::SignalExpired);
            }
            return None;
        }
        Some((group.name.as_str(), (node_name, signal_at, instance_id)))
    }
}
