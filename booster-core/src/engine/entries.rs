//! Step 2b: the walk of each entry (cordon, expiry, drain progress, retire, forget).

use crate::ledger::{Boost, DrainState, Entry};
use crate::plan::{Action, Reason};
use crate::snapshot::{Group, GroupKind, Node};

use super::drains::{DrainCandidate, Drains};
use super::{untouchable, Decider, Fresh};
use crate::failures::Write;
use crate::time::Timestamp;

impl<'a> Decider<'a> {
    /// The groups this pass walks: those with entries and those with new signals, by name.
    pub(super) fn groups_walked(&self, fresh: &Fresh<'a>) -> Vec<&'a str> {
        let mut names: Vec<&'a str> = self.by_group.keys().copied().collect();
        names.extend(fresh.keys().copied());
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Step 2b: the life of each entry of the groups walked, after their boosts. `boosting`:
    /// the groups whose desired capacity may move in this plan, where no node is retired.
    /// Returns what the drain starts need.
    pub(super) fn walk_entries(
        &mut self,
        names: &[&'a str],
        fresh: &Fresh<'a>,
        boosting: &[&'a str],
    ) -> Drains<'a> {
        let renewed = |node: &str| fresh.values().flatten().any(|(f, ..)| *f == node);
        let mut drains = Drains::default();
        for &name in names {
            let entries = self.by_group.get(name).cloned().unwrap_or_default();
            match self.groups.get(name).copied() {
                Some(group) if untouchable(group, self.cfg).is_none() => {
                    // An entry replaced by a new signal this pass is the new signal's now.
                    for (node, entry) in entries {
                        if !renewed(node) {
                            self.walk_entry(group, node, entry, boosting, &mut drains);
                        }
                    }
                }
                // A group that disappeared, or was ignored after its signals were recorded:
                // forget the entries of nodes that are gone, touch nothing else.
                _ => {
                    for (node, e) in entries {
                        if self.node_of(node, e).is_none() {
                            self.push(Action::Forget {
                                node: node.to_string(),
                                reason: Reason::NodeGone,
                            });
                        }
                    }
                }
            }
        }
        drains
    }

    /// The life of one entry: its node gone, given back, given up, expired, or on its way
    /// to a drain (counted in `drains`).
    fn walk_entry(
        &mut self,
        group: &'a Group,
        name: &'a str,
        e: &'a Entry,
        boosting: &[&'a str],
        drains: &mut Drains<'a>,
    ) {
        let node = self.node_of(name, e);
        let leaving = self.instance_leaving_or_absent(e);
        self.note_outcome(name, node, e, leaving);
        let Some(node) = node else {
            self.walk_missing(name, e, leaving);
            return;
        };
        if let Some(released_at) = e.released_at {
            self.walk_released(name, node, e, released_at, leaving);
            return;
        }
        if let Some(reason) = self.given_up(name, e).filter(|_| !leaving) {
            self.give_back(name, node, e.cordoned_before, self.now, reason);
            return;
        }
        let ours = matches!(e.drain, DrainState::Draining { .. });
        let drained = e.drain.evicting() && node.pods_to_evict == 0;
        if ours && !leaving && !drained {
            drains.draining += 1;
        }

        if self.expired(e.signal_at) {
            if drained && !leaving {
                self.retire(group, name, e, Reason::SignalExpired, boosting);
            } else if !leaving {
                self.give_back(
                    name,
                    node,
                    e.cordoned_before,
                    self.now,
                    Reason::SignalExpired,
                );
            }
            return;
        }
        self.wake_at(e.signal_at.plus(self.cfg.signal_expiry));
        if leaving {
            // Retired (or interrupted): wait for the node to go, then forget.
            return;
        }
        // A Capacity Rebalancing group's signal is AWS's to handle: hands off, but for the
        // give-back at expiry.
        if !node.unschedulable && !replaced_by_aws(e) {
            self.push(Action::Cordon {
                node: name.to_string(),
                reason: Reason::SignalledNodeSchedulable,
            });
        }
        if let Some(c) = self.drain_step(group, name, node, e, boosting) {
            drains.candidates.push(c);
        }
    }

    /// An entry whose node is gone: forgotten once nothing can bring it back, else waited
    /// for until its expiry.
    fn walk_missing(&mut self, name: &str, e: &Entry, leaving: bool) {
        if leaving || e.released_at.is_some() || self.expired(e.signal_at) {
            self.push(Action::Forget {
                node: name.to_string(),
                reason: Reason::NodeGone,
            });
        } else {
            self.hold(name, Reason::NodeMissing);
            self.wake_at(e.signal_at.plus(self.cfg.signal_expiry));
        }
    }

    /// An entry already given back, its node still there.
    fn walk_released(
        &mut self,
        name: &str,
        node: &Node,
        e: &Entry,
        released_at: Timestamp,
        leaving: bool,
    ) {
        // NTH's taint is back on a node we gave back: NTH cordoned it again for the same
        // recommendation, so it is given back again. A cordon without the taint is
        // somebody else's and stays.
        if node.rebalance_taint && !leaving {
            let keep = e.cordoned_before;
            self.give_back(name, node, keep, released_at, Reason::RetaintedAfterRelease);
        } else if self.now.since(released_at) >= self.cfg.signal_expiry.times(2) {
            // Long given back and NTH's taint gone: an Event that old is no signal
            // without a fresh cordon or taint, so the entry only takes ledger room.
            self.push(Action::Forget {
                node: name.to_string(),
                reason: Reason::ReleasedLongAgo,
            });
        } else {
            self.wake_at(released_at.plus(self.cfg.signal_expiry.times(2)));
        }
    }

    /// The drain of a live, unexpired entry: not started (returned as a candidate when it
    /// may start now), followed, complete (the retire), or under way (started again past
    /// its timeout).
    fn drain_step(
        &mut self,
        group: &'a Group,
        name: &'a str,
        node: &Node,
        e: &'a Entry,
        boosting: &[&'a str],
    ) -> Option<DrainCandidate<'a>> {
        let drained = e.drain.evicting() && node.pods_to_evict == 0;
        match e.drain {
            DrainState::NotStarted if self.cfg.disable_drain => {
                self.hold(name, Reason::DrainDisabled)
            }
            // Whoever evicts its pods drains it: a second drain would only double the
            // evictions and their retries. The booster follows theirs (durably, so that a
            // pause between their evictions does not look like the end of it).
            DrainState::NotStarted if node.evicted_by_others > 0 && !replaced_by_aws(e) => self
                .push(Action::FollowDrain {
                    node: name.to_string(),
                    at: self.now,
                    reason: Reason::DrainedByOthers,
                }),
            DrainState::NotStarted => {
                if matches!(e.boost, Boost::Placeholders { .. }) {
                    self.keep_placed(name, e);
                }
                return self.drain_readiness(name, node, e);
            }
            DrainState::Draining { .. } | DrainState::ByOthers { .. } if drained => {
                self.retire(group, name, e, Reason::DrainComplete, boosting)
            }
            DrainState::ByOthers { .. } => self.hold(name, Reason::DrainedByOthers),
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
        None
    }

    /// Why the signal of `e` is given up, if a write it needs was refused again and again
    /// since it began: its boost (the group's `SetDesiredCapacity`), its placeholders, or
    /// its retire (a drained node no one can terminate is given back rather than left
    /// cordoned for good).
    fn given_up(&self, name: &str, e: &Entry) -> Option<Reason> {
        match e.boost {
            Boost::Applying { at, .. }
                if self
                    .refused_out(Write::SetDesired, e.boost_group(), at)
                    .is_some() =>
            {
                return Some(Reason::BoostRefused)
            }
            Boost::Placeholders { at }
                if e.drain == DrainState::NotStarted
                    && self.refused_out(Write::Place, name, at).is_some() =>
            {
                return Some(Reason::PlaceRefused)
            }
            _ => {}
        }
        [Write::Retire, Write::DeleteNodeClaim]
            .into_iter()
            .any(|w| self.refused_out(w, name, e.signal_at).is_some())
            .then_some(Reason::RetireRefused)
    }

    /// Gives `node` back: uncordoned only if the cordon was NTH's rebalance handling or the
    /// booster's own, and never while NTH handles an interruption of it (its taint says so:
    /// the instance is leaving, and an uncordon would send pods to a dying node).
    pub(super) fn give_back(
        &mut self,
        name: &str,
        node: &Node,
        keep_cordon: bool,
        at: Timestamp,
        reason: Reason,
    ) {
        if node.interruption_taint {
            self.hold(name, Reason::InterruptionUnderway);
            return;
        }
        self.push(Action::Release {
            node: name.to_string(),
            uncordon: !keep_cordon,
            at,
            reason,
        });
    }

    /// Whether a signalled node may be drained now (then it is returned as a candidate),
    /// and if not, until when it waits.
    fn drain_readiness(
        &mut self,
        name: &'a str,
        node: &Node,
        e: &'a Entry,
    ) -> Option<DrainCandidate<'a>> {
        let wait = self.cfg.replacement_wait;
        let ready_replacement = self
            .protected
            .get(name)
            .is_some_and(|reps| reps.iter().any(|r| r.ready && !r.unschedulable));
        let launch_failed = |at: Timestamp| {
            self.groups.get(e.boost_group()).is_some_and(|g| {
                g.suspended("Launch") || g.launch_failures.iter().any(|f| f.at >= at)
            })
        };
        let (reason, deadline) = match &e.boost {
            Boost::Applying { .. } => (Reason::BoostInFlight, None),
            Boost::Placeholders { .. } if self.placeholders_ready(name, e) => {
                (Reason::ReplacementReady, None)
            }
            Boost::Placeholders { at } => (Reason::ReplacementWaitOver, Some(at.plus(wait))),
            Boost::Applied { .. } if ready_replacement => (Reason::ReplacementReady, None),
            // The replacement will not come: waiting out the replacement wait gains nothing.
            Boost::Applied { at, .. } if launch_failed(*at) => {
                self.warn(e.boost_group(), name, Reason::LaunchFailed);
                (Reason::LaunchFailed, None)
            }
            Boost::Applied { at, .. } => (Reason::ReplacementWaitOver, Some(at.plus(wait))),
            // The warning lasts as long as the signal it is about, not one pass: it backs
            // a gauge ("1 while the group has something to know about").
            Boost::Abandoned {
                reason: Reason::CapacityRebalance,
            } => {
                self.warn(&e.group, name, Reason::CapacityRebalance);
                (Reason::CapacityRebalance, None)
            }
            // No new capacity: a drain would only make pods Pending sooner. The node waits
            // for a boost slot, its interruption (NTH drains it then) or its expiry.
            Boost::Queued { reason } => (*reason, None),
            Boost::Abandoned { .. } => (Reason::NoReplacementComing, None),
        };
        match (reason, deadline) {
            (Reason::BoostInFlight, _) => self.hold(name, Reason::BoostInFlight),
            // `boosts` already said why a queued signal waits.
            (_, None) if matches!(e.boost, Boost::Queued { .. }) => {}
            (_, None) if !boosted(&e.boost) => self.hold(name, reason),
            // Applied and failed: drained now, so that Cluster Autoscaler looks elsewhere.
            (_, Some(d)) if self.now < d => {
                let why = if boosted(&e.boost) {
                    Reason::WaitingForReplacement
                } else {
                    reason
                };
                self.hold(name, why);
                self.wake_at(d);
            }
            // A drain that cannot finish is not started: it would only move the pods that
            // can go, and leave the node half drained until the expiry gives it back.
            _ if self
                .nodes
                .get(name)
                .is_some_and(|n| !n.unevictable.is_empty()) =>
            {
                self.hold(name, Reason::PodsNeverEvicted)
            }
            _ if self.nodes.get(name).is_some_and(|n| n.do_not_disrupt) => {
                self.hold(name, Reason::NodeDoNotDisrupt)
            }
            // Ready to go: on its recommendation, or on standby until its interruption.
            _ => match self.drain_on(node, e) {
                Err(standby) => self.hold(name, standby),
                Ok(why) => {
                    return Some(DrainCandidate {
                        node: name,
                        signal_at: e.signal_at,
                        reason: why.unwrap_or(reason),
                    })
                }
            },
        }
        None
    }

    /// Retires a drained node: its instance terminated (or its NodeClaim deleted), unless
    /// its group's desired capacity may move in this plan (`boosting`).
    fn retire(
        &mut self,
        group: &'a Group,
        name: &str,
        e: &Entry,
        reason: Reason,
        boosting: &[&'a str],
    ) {
        if boosting.contains(&group.name.as_str()) {
            self.hold(name, Reason::RetireWaitsForBoost);
            return;
        }
        // Written ahead and sent: a second terminate only after AWS had time to show the
        // first (the adapter reads the instance fresh and sends nothing if it is leaving).
        if let Some(at) = e.retiring {
            let again = at.plus(RETIRE_RETRY);
            if self.now < again {
                self.hold(name, Reason::RetireInFlight);
                self.wake_at(again);
                return;
            }
        }
        if group.kind == GroupKind::NodePool {
            // Karpenter terminates the instance of a deleted NodeClaim (after its own drain,
            // which finds nothing left): no AWS call, no desired capacity to give back.
            match self.nodes.get(name).and_then(|n| n.nodeclaim.as_ref()) {
                Some(claim) => self.push(Action::DeleteNodeClaim {
                    node: name.to_string(),
                    nodeclaim: claim.clone(),
                    at: self.now,
                    reason,
                }),
                None => self.hold(name, Reason::NodeClaimMissing),
            }
            return;
        }
        // The instance terminated is the one Auto Scaling lists in this group for the
        // node's providerID (checked by `node_of` when the entry was walked): never one a
        // ledger entry alone names.
        let Some((_, instance)) = self
            .instances
            .get(e.instance_id.as_str())
            .filter(|(g, _)| g.name == group.name)
        else {
            self.hold(name, Reason::UnknownGroup);
            return;
        };
        let weight = group.weight_of(instance);
        // Only a boost we made in this group is given back; an assumed one was somebody
        // else's capacity, and a fallback boost raised another group. Placeholders gave a
        // node back only if the autoscaler launched one for them in this group (the marker
        // of `protect_hosts`).
        let boosted = match e.boost {
            Boost::Applied { assumed, .. } => !assumed && e.fallback.is_none(),
            Boost::Placeholders { .. } => self.stood_in(name, e),
            _ => false,
        };
        // Never below min size: the API would refuse, and CA owns that floor.
        let decrement = boosted && group.desired >= group.min_size.saturating_add(weight);
        if decrement && !group.suspended("AZRebalance") && zones(group) > 1 {
            self.warn(&group.name, name, Reason::AzRebalanceActive);
        }
        self.push(Action::Retire {
            node: name.to_string(),
            group: group.name.clone(),
            instance_id: e.instance_id.clone(),
            decrement,
            at: self.now,
            reason,
        });
    }
}

/// A Capacity Rebalancing group's signal: AWS launches the replacement itself.
fn replaced_by_aws(e: &Entry) -> bool {
    matches!(
        e.boost,
        Boost::Abandoned {
            reason: Reason::CapacityRebalance
        }
    )
}

/// Whether capacity was asked for this signal (desired capacity raised, or placeholders).
fn boosted(b: &Boost) -> bool {
    matches!(b, Boost::Applied { .. } | Boost::Placeholders { .. })
}

/// How long a retire stays in flight before it is sent again.
const RETIRE_RETRY: crate::time::Dur = crate::time::Dur::from_secs(60);

/// The zones a group spans: its own list, else its instances'.
fn zones(g: &Group) -> usize {
    if !g.azs.is_empty() {
        return g.azs.len();
    }
    let mut azs: Vec<&str> = g.instances.iter().map(|i| i.az.as_str()).collect();
    azs.sort_unstable();
    azs.dedup();
    azs.len()
}
