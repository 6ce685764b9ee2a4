//! How each action changes the ledger: the ledger part of every [`Action`], which the
//! executor stores after the action's world part and which tests use to replay plans.

use crate::ledger::{Boost, DrainState, Ledger};
use crate::plan::{Action, Reason};

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
            } => {
                for n in nodes {
                    if let Some(e) = self.entries.get_mut(n) {
                        e.boost = Boost::Applying {
                            from: *from,
                            to: *to,
                            at: *at,
                        };
                        e.fallback = (*group != e.group).then(|| group.clone());
                    }
                }
            }
            Action::ConfirmBoost {
                nodes,
                applied,
                reason,
                ..
            } => {
                for n in nodes {
                    if let Some(e) = self.entries.get_mut(n) {
                        if let Boost::Applying { to, at, .. } = e.boost {
                            e.boost = if *applied {
                                Boost::Applied {
                                    to,
                                    at,
                                    assumed: *reason != Reason::BoostRaised,
                                }
                            } else {
                                Boost::Abandoned { reason: *reason }
                            };
                        }
                    }
                }
            }
            Action::StartDrain {
                node, attempt, at, ..
            } => {
                if let Some(e) = self.entries.get_mut(node) {
                    if let Boost::Queued { .. } = e.boost {
                        e.boost = Boost::Abandoned {
                            reason: Reason::DrainStartedFirst,
                        };
                    }
                    e.drain = DrainState::Draining {
                        since: *at,
                        attempt: *attempt,
                    };
                    if *attempt == 1 {
                        self.last_drain_started_at = Some(*at);
                    }
                }
            }
            Action::FollowDrain { node, at, .. } => {
                if let Some(e) = self.entries.get_mut(node) {
                    if e.drain == DrainState::NotStarted {
                        e.drain = DrainState::ByOthers { since: *at };
                    }
                }
            }
            Action::Release { node, at, .. } => {
                if let Some(e) = self.entries.get_mut(node) {
                    e.released_at = Some(*at);
                    e.drain = DrainState::NotStarted;
                    if let Boost::Queued { .. } = e.boost {
                        e.boost = Boost::Abandoned {
                            reason: Reason::SignalExpired,
                        };
                    }
                }
            }
            Action::Forget { node, .. } => {
                self.entries.remove(node);
            }
            Action::Retire { node, at, .. } | Action::DeleteNodeClaim { node, at, .. } => {
                if let Some(e) = self.entries.get_mut(node) {
                    // The latest send: the next is due a retry interval after it, not
                    // after the first (which would send one every pass from then on).
                    e.retiring = Some(*at);
                }
            }
            Action::Place { node, at, .. } => {
                if let Some(e) = self.entries.get_mut(node) {
                    if let Boost::Queued { .. } = e.boost {
                        e.boost = Boost::Placeholders { at: *at };
                    }
                }
            }
            Action::SetDesired { .. }
            | Action::Cordon { .. }
            | Action::Protect { .. }
            | Action::Unprotect { .. }
            | Action::Unplace { .. }
            | Action::Hold { .. } => {}
        }
    }
}
