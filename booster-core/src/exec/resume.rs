//! Drains the ledger says are under way but that no task of this process runs: the caller
//! starts them again after a restart.

use crate::ledger::{DrainState, Ledger};
use crate::ports::DrainSpec;
use crate::snapshot::Node;
use crate::time::{Dur, Timestamp};

/// Drains the ledger says are under way but that no task of this process runs (after a
/// restart, or when a task died): each resumes with what is left of its attempt's timeout.
/// `running` names the nodes this process drains now. Past the timeout, the engine starts
/// the next attempt itself.
pub fn drains_to_resume(
    ledger: &Ledger,
    nodes: &[Node],
    running: &std::collections::BTreeSet<String>,
    now: Timestamp,
    drain_timeout: Dur,
) -> Vec<DrainSpec> {
    ledger
        .entries
        .iter()
        .filter(|(node, e)| e.released_at.is_none() && !running.contains(*node))
        .filter_map(|(node, e)| match e.drain {
            DrainState::Draining { since, .. } => {
                let deadline = since.plus(drain_timeout);
                let left = nodes
                    .iter()
                    .find(|n| &n.name == node)
                    .is_some_and(|n| n.pods_to_evict > 0);
                (left && now < deadline).then(|| DrainSpec {
                    node: node.clone(),
                    timeout: deadline.since(now),
                    dry_run: false,
                })
            }
            DrainState::NotStarted | DrainState::ByOthers { .. } => None,
        })
        .collect()
}
