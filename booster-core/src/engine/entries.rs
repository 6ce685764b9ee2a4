//! Step 2b: the walk of each entry (cordon, expiry, drain progress, retire, forget).

use crate::ledger::{Boost, DrainState, Entry};
use crate::plan::{Action, Reason};
use crate::snapshot::Group;

use super::Decider;
use super::{untouchable, DrainCandidate};

impl<'a> Decider<'a> {
    /// Step 2: per group, boosts and the life of each entry.
    pub(super) fn walk_groups(&mut self) {
        let mut names: Vec<&'a str> = self.by_group.keys().copied().collect();
        names.extend(self.fresh.keys().copied());
        names.sort_unstable();
        names.dedup();
        for name in names {
            let entries = self.by_group.get(name).cloned().unwrap_or_default();
            let fresh = self.fresh.remove(name).unwrap_or_default();
            match self.groups.get(name).copied() {
                Some(group) if untouchable(group, self.cfg).is_none() => {
                    self.boosts(group, &entries, &fresh);
                    // An entry replaced by a new signal this pass is the new signal's now.
                    for (node, entry) in entries {
                        if !fresh.iter().any(|(f, ..)| *f == node) {
                            self.walk_entry(group, node, entry);
                        }
                    }
                }
                // A group that disappeared, or was ignored after its signals were recorded:
                // forget the entries of nodes that are gone, touch nothing else.
                _ => {
                    for (node, _) in entries {
                        if !self.nodes.contains_key(node) {
                            self.push(Action::Forget {
                                node: node.to_string(),
                                reason: Reason::NodeGone,
                            });
                        }
                    }
                }
            }
        }
    }

    pub(super) fn walk_entry(&mut self, group: &'a Group, name: &'a str, e: &'a Entry) {
        let node = self.nodes.get(name).copied();
        let leaving = self.instance_leaving_or_absent(e);
        let Some(node) = node else {
            if leaving || e.released_at.is_some() || self.expired(e.signal_at) {
                self.push(Action::Forget {
                    node: name.to_string(),
                    reason: Reason::NodeGone,
                });
            } else {
                self.hold(name, Reason::NodeMissing);
                self.wake_at(e.signal_at.plus(self.cfg.signal_expiry));
            }
            return;
        };
        if let Some(released_at) = e.released_at {
            // NTH's taint is back on a node we gave back: NTH cordoned it again for the same
            // recommendation, so it is given back again. A cordon without the taint is
            // somebody else's and stays.
            if node.rebalance_taint && !leaving {
                self.push(Action::Release {
                    node: name.to_string(),
                    at: released_at,
                    reason: Reason::RetaintedAfterRelease,
                });
            }
            return;
        }
        let draining = matches!(e.drain, DrainState::Draining { .. });
        let drained = draining && node.pods_to_evict == 0;
        if draining && !leaving && !drained {
            self.draining += 1;
        }

        if self.expired(e.signal_at) {
            if drained && !leaving {
                self.retire(group, name, e, Reason::SignalExpired);
            } else if !leaving {
                self.push(Action::Release {
                    node: name.to_string(),
                    at: self.now,
                    reason: Reason::SignalExpired,
                });
            }
            return;
        }
        self.wake_at(e.signal_at.plus(self.cfg.signal_expiry));
        if leaving {
            // Retired (or interrupted): wait for the node to go, then forget.
            return;
        }
        if !node.unschedulable {
            self.push(Action::Cordon {
                node: name.to_string(),
                reason: Reason::SignalledNodeSchedulable,
            });
        }

        match e.drain {
            DrainState::NotStarted if self.cfg.disable_drain => {
                self.hold(name, Reason::DrainDisabled)
            }
            DrainState::NotStarted => self.drain_readiness(name, e),
            DrainState::Draining { .. } if drained => {
                self.retire(group, name, e, Reason::DrainComplete)
            }
            DrainState::Draining { since, attempt } => {
                let deadline = since.plus(self.cfg.drain_timeout);
                if self.now >= deadline {
                    self.push(Action::StartDrain {
                        node: name.to_string(),
                        attempt: attempt.saturating_add(1),
                        at: self.now,
                        reason: Reason::DrainTimedOut,
                    });
                } else {
                    self.hold(name, Reason::Draining);
                    self.wake_at(deadline);
                }
            }
        }
    }

    /// Whether a signalled node may be drained now, and if not, until when it waits.
    pub(super) fn drain_readiness(&mut self, name: &'a str, e: &'a Entry) {
        let wait = self.cfg.replacement_wait;
        let ready_replacement = self
            .protected
            .get(name)
            .is_some_and(|reps| reps.iter().any(|r| r.ready && !r.unschedulable));
        let (reason, deadline) = match &e.boost {
            Boost::Applying { .. } => (Reason::BoostInFlight, None),
            Boost::Applied { .. } if ready_replacement => (Reason::ReplacementReady, None),
            Boost::Applied { at, .. } => (Reason::ReplacementWaitOver, Some(at.plus(wait))),
            // No new capacity: a drain would only make pods Pending sooner. The node waits
            // for a boost slot, its interruption (NTH drains it then) or its expiry.
            Boost::Queued { reason } => (*reason, None),
            Boost::Abandoned { .. } => (Reason::NoReplacementComing, None),
        };
        match (reason, deadline) {
            (Reason::BoostInFlight, _) => self.hold(name, Reason::BoostInFlight),
            // `boosts` already said why a queued signal waits.
            (_, None) if matches!(e.boost, Boost::Queued { .. }) => {}
            (_, None) if !matches!(e.boost, Boost::Applied { .. }) => self.hold(name, reason),
            (_, Some(d)) if self.now < d => {
                let why = if matches!(e.boost, Boost::Applied { .. }) {
                    Reason::WaitingForReplacement
                } else {
                    reason
                };
                self.hold(name, why);
                self.wake_at(d);
            }
            _ => self.candidates.push(DrainCandidate {
                node: name,
                signal_at: e.signal_at,
                reason,
            }),
        }
    }

    pub(super) fn retire(&mut self, group: &'a Group, name: &str, e: &Entry, reason: Reason) {
        if self.boosting.contains(&group.name.as_str()) {
            self.hold(name, Reason::RetireWaitsForBoost);
            return;
        }
        // Only a boost we made is given back; an assumed one was somebody else's capacity.
        let boosted = matches!(e.boost, Boost::Applied { assumed: false, .. });
        self.push(Action::Retire {
            node: name.to_string(),
            group: group.name.clone(),
            instance_id: e.instance_id.clone(),
            // Never below min size: the API would refuse, and CA owns that floor.
            decrement: boosted && group.desired > group.min_size,
            reason,
        });
    }
}
