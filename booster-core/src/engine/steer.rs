//! Step 4b: the standby taint. A Ready replacement held for a node standing by for its
//! interruption (`--drain-on interruption|adaptive`) carries the booster's
//! `PreferNoSchedule` taint, so that the scheduler places pods elsewhere while there is
//! room. If the recommendation is not followed, the node Cluster Autoscaler removes after
//! the give-back is then an empty one, and its removal evicts nothing; without the taint,
//! pods evicted elsewhere (another node's notice, a scale-down) land on the emptiest
//! nodes, which are the standby replacements, and are evicted again with them. The taint
//! goes as soon as the node stops standing by: its drain is about to move pods, and they
//! should be free to go to its replacement.

use crate::ledger::DrainState;
use crate::plan::{Action, Reason};
use crate::snapshot::Node;

use super::Decider;

impl<'a> Decider<'a> {
    /// Puts the standby taint on the replacements held for nodes standing by, and takes
    /// it off every other node that carries it (whatever left it there: a drain begun, a
    /// give-back, a restart with another `--drain-on`).
    pub(super) fn steer(&mut self) {
        let mut steers = Vec::new();
        for n in &self.s.nodes {
            let standby = self.held_for_standby(n);
            if standby != n.standby_taint {
                steers.push(Action::Steer {
                    node: n.name.clone(),
                    standby,
                    reason: if standby {
                        Reason::StandingBy
                    } else {
                        Reason::SignalHandled
                    },
                });
            }
        }
        for a in steers {
            self.push(a);
        }
    }

    /// Whether `n` is a Ready replacement, protected by the booster, of a node that stands
    /// by for its interruption in this plan.
    fn held_for_standby(&self, n: &Node) -> bool {
        let Some(for_node) = n.protected_for.as_deref() else {
            return false;
        };
        if !n.scale_down_disabled || !n.ready || n.unschedulable {
            return false;
        }
        let Some(e) = self.s.ledger.entries.get(for_node) else {
            return false;
        };
        // A group ignored or opted out since is not written to, but for taking the taint
        // back (which `steer` does for every node that is not held).
        if e.drain != DrainState::NotStarted
            || e.released_at.is_some()
            || self.expired(e.signal_at)
            || !self.touchable_group(e.boost_group())
        {
            return false;
        }
        let Some(signalled) = self.node_of(for_node, e) else {
            return false;
        };
        let drains_now = self.plan.actions.iter().any(|a| {
            matches!(a, Action::StartDrain { node, .. } | Action::FollowDrain { node, .. }
                | Action::Release { node, .. } if node == for_node)
        });
        !drains_now && self.drain_on(signalled, e).is_err()
    }
}
