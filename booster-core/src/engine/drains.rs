//! Step 3: drain starts, within the concurrency limit and the spacing.

use super::Decider;
use crate::plan::{Action, Reason};
use crate::time::Timestamp;

/// A signalled node whose drain may start this pass.
pub(super) struct DrainCandidate<'a> {
    pub node: &'a str,
    pub signal_at: Timestamp,
    pub reason: Reason,
}

/// What the entries' walk found for the drain starts.
#[derive(Default)]
pub(super) struct Drains<'a> {
    /// The nodes whose drain may start, in walk order.
    pub candidates: Vec<DrainCandidate<'a>>,
    /// Entries whose Draining is live (node present, instance not leaving).
    pub draining: u32,
}

impl<'a> Decider<'a> {
    /// Step 3: drain starts within the concurrency limit and the spacing.
    pub(super) fn start_drains(&mut self, drains: Drains<'a>) {
        let Drains {
            candidates: mut cands,
            draining,
        } = drains;
        if cands.is_empty() {
            return;
        }
        cands.sort_by_key(|c| (c.signal_at, c.node));
        let mut slots = self.cfg.max_concurrent_drains.saturating_sub(draining);
        let spacing = self.cfg.time_between_drains;
        let mut next_allowed = self
            .s
            .ledger
            .last_drain_started_at
            .map_or(Timestamp::EPOCH, |t| t.plus(spacing));
        for c in cands {
            if slots == 0 {
                self.hold(c.node, Reason::DrainSlotsFull);
            } else if self.now < next_allowed {
                self.hold(c.node, Reason::DrainSpacing);
                self.wake_at(next_allowed);
            } else {
                self.push(Action::StartDrain {
                    node: c.node.to_string(),
                    attempt: 1,
                    at: self.now,
                    reason: c.reason,
                });
                slots -= 1;
                next_allowed = self.now.plus(spacing);
                if next_allowed > self.now {
                    self.wake_at(next_allowed);
                }
            }
        }
    }
}
