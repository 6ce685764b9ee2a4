//! How each action changes the ledger: the ledger part of every [`Action`], which the
//! executor stores after the action's world part and which tests use to replay plans.

use crate::ledger::{Boost, DrainState, Entry, Ledger};
use crate::outcomes::{Recent, SignalOutcome};
use crate::plan::{Action, Reason};
use crate::time::{Dur, Timestamp};

impl Ledger {
    /// Applies the ledger part of an action (actions that do not touch the ledger change
    /// nothing). Adapters store the result; tests use it to replay plans.
    pub fn apply(&mut self, action: &Action) {
        match action {
            Action::RecordSignal { node, entry, .. } => {
                self.entries.insert(node.clone(), entry.clone());
            }
            Action::BeginBoost {
                group,
                nodes,
                from,
                to,
                at,
                ..
            } => self.update_each(nodes, |e| begin_boost(e, group, *from, *to, *at)),
            Action::ConfirmBoost {
                nodes,
                applied,
                reason,
                ..
            } => self.update_each(nodes, |e| confirm_boost(e, *applied, *reason)),
            Action::StartDrain {
                node, attempt, at, ..
            } => self.start_drain(node, *attempt, *at),
            Action::FollowDrain { node, at, .. } => self.update(node, |e| follow_drain(e, *at)),
            Action::Release { node, at, .. } => self.update(node, |e| release(e, *at)),
            Action::RecordOutcome {
                node,
                pool,
                group,
                outcome,
                lead,
                at,
                ..
            } => self.record_outcome(node, pool, group, *outcome, *lead, *at),
            Action::Forget { node, .. } => {
                self.entries.remove(node);
            }
            Action::Retire { node, at, .. } | Action::DeleteNodeClaim { node, at, .. } => {
                // The latest send: the next is due a retry interval after it, not
                // after the first (which would send one every pass from then on).
                self.update(node, |e| e.retiring = Some(*at));
            }
            Action::Place { node, at, .. } => self.update(node, |e| place(e, *at)),
            Action::SetDesired { .. }
            | Action::Cordon { .. }
            | Action::Protect { .. }
            | Action::Unprotect { .. }
            | Action::Steer { .. }
            | Action::Unplace { .. }
            | Action::Hold { .. } => {}
        }
    }

    /// Counts a signal's outcome once: an entry that already has one (or none at all, the
    /// action replayed after its Forget) counts nothing.
    fn record_outcome(
        &mut self,
        node: &str,
        pool: &str,
        group: &str,
        outcome: SignalOutcome,
        lead: Option<Dur>,
        at: Timestamp,
    ) {
        let Some(e) = self.entries.get_mut(node).filter(|e| e.outcome.is_none()) else {
            return;
        };
        e.outcome = Some(outcome);
        self.outcomes
            .record(pool, group, Recent { at, outcome, lead });
    }

    /// Changes `node`'s entry, if it has one.
    fn update(&mut self, node: &str, change: impl FnOnce(&mut Entry)) {
        if let Some(e) = self.entries.get_mut(node) {
            change(e);
        }
    }

    /// Changes the entry of each of `nodes` that has one, in their order.
    fn update_each(&mut self, nodes: &[String], mut change: impl FnMut(&mut Entry)) {
        for n in nodes {
            self.update(n, &mut change);
        }
    }

    /// A drain attempt starts on `node`; the first attempt of a drain also counts for the
    /// spacing between drains.
    fn start_drain(&mut self, node: &str, attempt: u32, at: Timestamp) {
        let Some(e) = self.entries.get_mut(node) else {
            return;
        };
        if let Boost::Queued { .. } = e.boost {
            e.boost = Boost::Abandoned {
                reason: Reason::DrainStartedFirst,
            };
        }
        e.drain = DrainState::Draining { since: at, attempt };
        if attempt == 1 {
            self.last_drain_started_at = Some(at);
        }
    }
}

/// The boost is being applied in `group`, which is a fallback when it is not the entry's own.
fn begin_boost(e: &mut Entry, group: &str, from: u32, to: u32, at: Timestamp) {
    e.boost = Boost::Applying { from, to, at };
    e.fallback = (group != e.group).then(|| group.to_string());
}

/// An `Applying` boost is settled; a boost in any other state stays as it is.
fn confirm_boost(e: &mut Entry, applied: bool, reason: Reason) {
    if let Boost::Applying { to, at, .. } = e.boost {
        e.boost = if applied {
            Boost::Applied {
                to,
                at,
                assumed: reason != Reason::BoostRaised,
            }
        } else {
            Boost::Abandoned { reason }
        };
    }
}

/// Somebody else's drain is followed only while the booster has not started its own.
fn follow_drain(e: &mut Entry, at: Timestamp) {
    if e.drain == DrainState::NotStarted {
        e.drain = DrainState::ByOthers { since: at };
    }
}

/// The node is given back: its drain stops and a boost still queued never comes.
fn release(e: &mut Entry, at: Timestamp) {
    e.released_at = Some(at);
    e.drain = DrainState::NotStarted;
    if let Boost::Queued { .. } = e.boost {
        e.boost = Boost::Abandoned {
            reason: Reason::SignalExpired,
        };
    }
}

/// Placeholders replace a queued boost only.
fn place(e: &mut Entry, at: Timestamp) {
    if let Boost::Queued { .. } = e.boost {
        e.boost = Boost::Placeholders { at };
    }
}
