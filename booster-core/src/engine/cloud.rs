//! Step 5: when Auto Scaling did not answer this pass. The groups the engine decided on
//! are the last ones it described, good enough to walk entries and give nodes back, not to
//! count capacity: every step that calls AWS or reads its fresh answer waits, with a reason
//! on each node it concerns. Kubernetes-only steps (cordon, drain starts on a Ready
//! replacement, protection, give-backs, forgetting gone nodes) go on.

use crate::ledger::Boost;
use crate::plan::{Action, Plan, Reason};

/// Replaces the plan's AWS steps with holds.
pub(super) fn hold_what_needs_it(plan: &mut Plan) {
    let hold = |node: String| Action::Hold {
        node,
        reason: Reason::CloudUnavailable,
    };
    let mut out = Vec::with_capacity(plan.actions.len());
    for a in plan.actions.drain(..) {
        match a {
            // Decided on a desired capacity that may be stale, or calls AWS.
            Action::SetDesired { nodes, .. }
            | Action::BeginBoost { nodes, .. }
            | Action::ConfirmBoost { nodes, .. } => out.extend(nodes.into_iter().map(hold)),
            Action::Retire { node, .. } => out.push(hold(node)),
            // A new signal is recorded, its boost queued until AWS answers (its base would
            // be a stale desired capacity). A rebuilt entry keeps the boost it had.
            Action::RecordSignal {
                node,
                mut entry,
                reason,
            } => {
                if reason != Reason::LedgerRecovered
                    && matches!(entry.boost, Boost::Applying { .. })
                {
                    entry.boost = Boost::Queued {
                        reason: Reason::CloudUnavailable,
                    };
                    entry.fallback = None;
                }
                out.push(Action::RecordSignal {
                    node,
                    entry,
                    reason,
                });
            }
            other => out.push(other),
        }
    }
    plan.actions = out;
}
