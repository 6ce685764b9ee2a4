//! Step 7: writes that failed lately wait for their backoff. A write whose record says it
//! may not be sent yet becomes a hold on each node it concerns, and the plan wakes up when
//! the first of them may be sent again: no write is repeated at pass rate, whatever the
//! class of its failure. Give-ups after repeated refusals are the entries' walk's
//! (`entries.rs`): they change what the plan does, not only when.

use crate::failures::Write;
use crate::plan::{Action, Plan, Reason};
use crate::snapshot::Snapshot;

/// Replaces the writes still in their backoff with holds, and wakes the plan for the
/// earliest retry.
pub(super) fn hold_backed_off(plan: &mut Plan, s: &Snapshot) {
    if s.failures.is_empty() {
        return;
    }
    let records = crate::failures::index(&s.failures);
    let mut wake = plan.next_wakeup;
    let mut out = Vec::with_capacity(plan.actions.len());
    for a in plan.actions.drain(..) {
        let retry = Write::of(&a)
            .and_then(|k| records.get(&k))
            .map(|f| f.retry_at())
            .filter(|at| *at > s.now);
        let Some(at) = retry else {
            out.push(a);
            continue;
        };
        wake = Some(wake.map_or(at, |w| w.min(at)));
        let nodes = match a {
            Action::SetDesired { nodes, .. } => nodes,
            other => other.node().map(str::to_string).into_iter().collect(),
        };
        out.extend(nodes.into_iter().map(|node| Action::Hold {
            node,
            reason: Reason::WriteBackingOff,
        }));
    }
    plan.actions = out;
    plan.next_wakeup = wake;
}
