//! The second way to ask for capacity: placeholder pods. Where the autoscaler in charge
//! provisions for pods (Karpenter NodePools always; Auto Scaling groups under
//! `--boost-mode placeholder`), a signal's boost is a set of pods that ask for what the
//! signalled node's evictable pods ask for, in a PriorityClass below every workload:
//!
//! ```text
//!  signal ─▶ RecordSignal{Placeholders{at}} ─▶ Place (ledger first, then the pods)
//!        ─▶ their node is Ready and runs them: the drain starts (evicted pods preempt them)
//!        ─▶ drain done, or the signal handled: Unplace (and retire)
//! ```
//!
//! The same properties hold as for desired capacity: one set per signal (names derive from
//! the node and the signal's time, and nothing is placed again once the drain started),
//! none left behind (every set with no live signal of its own is deleted, whatever the
//! ledger says), and nothing asked for on an unusable signal.

use super::boosts::Want;
use super::Decider;
use crate::config::BoostMode;
use crate::ledger::{Boost, Entry};
use crate::plan::{Action, Reason};
use crate::snapshot::{Group, GroupKind, Placeholders};

impl<'a> Decider<'a> {
    /// Whether `group`'s capacity is asked for with placeholder pods.
    pub(super) fn by_placeholders(&self, group: &Group) -> bool {
        group.kind == GroupKind::NodePool || self.cfg.boost_mode == BoostMode::Placeholder
    }

    /// The placeholders observed for `node`'s signal at `e.signal_at`.
    pub(super) fn placeholders_of(&self, node: &str, e: &Entry) -> Option<&'a Placeholders> {
        self.s
            .placeholders
            .iter()
            .find(|p| p.node == node && p.signal_at == e.signal_at)
    }

    /// A want whose capacity comes from placeholders: recorded (fresh) and placed. No gate
    /// of Cluster Autoscaler's status or group sizes applies: the autoscaler in charge
    /// decides whether and where the pods get a node, by its own rules and limits.
    pub(super) fn place_for(&mut self, w: Want<'a>) {
        if let Some(id) = w.fresh {
            self.record_boost(&w, id, Boost::Placeholders { at: self.now }, None);
        }
        self.push(Action::Place {
            node: w.node.to_string(),
            signal_at: w.signal_at,
            at: self.now,
            reason: Reason::PlaceholdersRecorded,
        });
    }

    /// A placeholder boost waiting for its drain: its pods are made again if they are not
    /// there (a crash between the record and the pods, or somebody deleted them). Never
    /// once the drain started: then evicted pods preempt them, and new ones would only ask
    /// for capacity nobody needs.
    pub(super) fn keep_placed(&mut self, node: &str, e: &Entry) {
        // A set short of pods (a create refused half-way, a pod deleted) is completed: the
        // drain waits for the whole set.
        if self
            .placeholders_of(node, e)
            .is_none_or(|p| p.pods < p.wanted)
        {
            self.push(Action::Place {
                node: node.to_string(),
                signal_at: e.signal_at,
                at: self.now,
                reason: Reason::PlaceholdersRecorded,
            });
        }
    }

    /// Whether the placeholders of `node`'s signal all run on a Ready node: their node is
    /// the replacement. A node with nothing to evict needs none.
    pub(super) fn placeholders_ready(&self, node: &str, e: &Entry) -> bool {
        if self.nodes.get(node).is_some_and(|n| n.pods_to_evict == 0) {
            return true;
        }
        self.placeholders_of(node, e)
            .is_some_and(|p| p.pods > 0 && p.pods >= p.wanted && p.running >= p.pods)
    }

    /// A placeholder boost's replacement is a node of the signal's own group, launched after
    /// the boost, that runs its placeholders: the autoscaler launched it for them. It is
    /// protected from scale-down like a desired-capacity replacement, and its marker is what
    /// lets the retire give the node back with a decrement. A placeholder that landed on a
    /// node that was already there (spare room), or in another group, made no launch here:
    /// the retire then keeps desired capacity, and the autoscaler scales the surplus down.
    pub(super) fn protect_hosts(&mut self) {
        let mut taken: Vec<&str> = Vec::new();
        for e in self.s.ledger.entries.iter() {
            let (name, e) = (e.0.as_str(), e.1);
            let Boost::Placeholders { at } = e.boost else {
                continue;
            };
            if !self.live(name, e) || self.expired(e.signal_at) || self.stood_in(name, e) {
                continue;
            }
            let Some(set) = self.placeholders_of(name, e) else {
                continue;
            };
            let host = set.hosts.iter().find_map(|h| {
                let n = self.nodes.get(h.as_str())?;
                let (g, _) = self.instances.get(n.instance_id.as_deref()?)?;
                let fresh = n.created_at > at
                    && g.name == e.group
                    && n.protected_for.is_none()
                    && !n.scale_down_disabled
                    && !self.s.ledger.entries.contains_key(h)
                    && !taken.contains(&h.as_str());
                fresh.then_some(h.as_str())
            });
            if let Some(h) = host {
                taken.push(h);
                self.push(Action::Protect {
                    node: h.to_string(),
                    for_node: name.to_string(),
                    reason: Reason::ReplacementLaunched,
                });
            }
        }
    }

    /// Whether a node of the signal's group, created after the signal, stands or stood in
    /// for it (its marker stays after the protection is lifted).
    pub(super) fn stood_in(&self, name: &str, e: &Entry) -> bool {
        self.s.nodes.iter().any(|n| {
            n.protected_for.as_deref() == Some(name)
                && n.created_at > e.signal_at
                && n.instance_id
                    .as_deref()
                    .and_then(|id| self.instances.get(id))
                    .is_some_and(|(g, _)| g.name == e.group)
        })
    }

    /// Step 6: every set of placeholders whose signal is handled, or that stands for no
    /// live signal of its own, is deleted.
    pub(super) fn sweep_placeholders(&mut self) {
        let mut done: Vec<(&str, Reason)> = Vec::new();
        for p in &self.s.placeholders {
            let entry = self
                .s
                .ledger
                .entries
                .get(&p.node)
                .filter(|e| e.signal_at == p.signal_at);
            let reason = match entry {
                None => Some(Reason::PlaceholdersOrphaned),
                Some(e) if !matches!(e.boost, Boost::Placeholders { .. }) => {
                    Some(Reason::PlaceholdersOrphaned)
                }
                Some(e) => self.handled(&p.node, e).then_some(Reason::SignalHandled),
            };
            if let Some(r) = reason {
                if !done.iter().any(|(n, _)| *n == p.node) {
                    done.push((p.node.as_str(), r));
                }
            }
        }
        for (node, reason) in done {
            self.push(Action::Unplace {
                node: node.to_string(),
                reason,
            });
        }
    }

    /// The signal needs no capacity any more: given back, gone, expired, retiring, or its
    /// drain is over.
    fn handled(&self, node: &str, e: &Entry) -> bool {
        let drained =
            e.drain.evicting() && self.node_of(node, e).is_none_or(|n| n.pods_to_evict == 0);
        !self.live(node, e)
            || self.instance_leaving_or_absent(e)
            || self.expired(e.signal_at)
            || e.retiring.is_some()
            || drained
    }
}
