//! Step 0: entries the ledger lost. The ledger is a ConfigMap a person or a GitOps prune can
//! delete; each boost also leaves a mark on its signalled Node (written before the boost's
//! call, removed at give-back), and a Node's mark with no entry behind it is the entry the
//! ledger lost. Without this, the next pass would take the signal for a new one, boost it
//! a second time and drop the protection of its replacement.

use crate::ledger::Entry;
use crate::snapshot::Snapshot;

use super::same_machine;

/// The entries to rebuild from the Nodes' boost marks, by node name.
pub(super) fn lost_entries(s: &Snapshot) -> Vec<(String, Entry)> {
    s.nodes
        .iter()
        .filter_map(|n| {
            let mark = n.boost_mark.as_ref()?;
            let recorded = s
                .ledger
                .entries
                .get(&n.name)
                .is_some_and(|e| same_machine(n, e));
            // A mark is the node's own (a Node object does not outlive its machine, but a
            // copied manifest might carry one); a released one is no signal any more. And it
            // is believed only while the node still shows its signal (cordoned, or NTH's
            // taint): every signalled node is cordoned until it is given back, and the
            // give-back removes the mark, so an annotation alone cannot start a drain.
            let signalled = n.unschedulable || n.rebalance_taint;
            (!recorded && signalled && same_machine(n, mark) && mark.released_at.is_none())
                .then(|| (n.name.clone(), mark.clone()))
        })
        .collect()
}
