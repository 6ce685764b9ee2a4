//! Step 2b': how each signal ended, counted once per signal in its pool's outcomes (the
//! evidence of `--drain-on adaptive`, and of `status` and the metrics).

use crate::ledger::Entry;
use crate::outcomes::SignalOutcome;
use crate::plan::{Action, Reason};
use crate::snapshot::Node;

use super::Decider;

impl<'a> Decider<'a> {
    /// Records the outcome of `e`'s signal once it is known (the entry keeps it, so it is
    /// counted once). `leaving`: its instance is leaving or no longer in its group.
    pub(super) fn note_outcome(
        &mut self,
        name: &str,
        node: Option<&Node>,
        e: &Entry,
        leaving: bool,
    ) {
        if e.outcome.is_some() {
            return;
        }
        let Some((outcome, reason)) = self.outcome_of(node, e, leaving) else {
            return;
        };
        let lead = (outcome == SignalOutcome::Interrupted).then(|| self.now.since(e.signal_at));
        // An entry from before pools were recorded is named from its instance, if listed.
        let pool = match e.pool.as_str() {
            "" => self.pool_of(&e.instance_id),
            p => p.to_string(),
        };
        self.push(Action::RecordOutcome {
            node: name.to_string(),
            pool,
            group: e.group.clone(),
            outcome,
            lead,
            at: self.now,
            reason,
        });
    }

    /// How the signal ended, if that is known now.
    fn outcome_of(
        &self,
        node: Option<&Node>,
        e: &Entry,
        leaving: bool,
    ) -> Option<(SignalOutcome, Reason)> {
        let ours = e.retiring.is_some();
        // NTH's interruption taint on a node the booster is not terminating: the notice
        // came (an Auto Scaling lifecycle taint caused by our own retire is ours).
        if node.is_some_and(|n| n.interruption_taint) && !ours {
            return Some((SignalOutcome::Interrupted, Reason::Interrupted));
        }
        // Last known groups prove nothing about an instance being gone.
        let cloud_known = self.s.cloud_unavailable.is_none();
        if leaving && cloud_known {
            return Some(if ours || e.released_at.is_some() {
                // Retired by us, or given back before: whatever ended it, not the signal.
                (SignalOutcome::Unknown, Reason::OutcomeUnknown)
            } else {
                // Terminated while the signal was live, and not by us.
                (SignalOutcome::Interrupted, Reason::Interrupted)
            });
        }
        match e.released_at {
            // An entry given back early (refusals) is pruned two expiries after: whatever
            // came after its release was never seen.
            Some(at) if self.now.since(at) >= self.cfg.signal_expiry.times(2) => {
                Some((SignalOutcome::Unknown, Reason::OutcomeUnknown))
            }
            Some(_) => None,
            None if self.expired(e.signal_at) && node.is_some() => {
                Some((SignalOutcome::NotInterrupted, Reason::SignalExpired))
            }
            None if self.expired(e.signal_at) => {
                Some((SignalOutcome::Unknown, Reason::OutcomeUnknown))
            }
            None => None,
        }
    }
}
