//! `--drain-on`: whether a signalled node whose replacement is there is drained on its
//! recommendation, or stands by for its interruption (standby), and, under `adaptive`, which
//! of the two its pool's evidence calls for.

use crate::config::DrainOn;
use crate::ledger::Entry;
use crate::plan::Reason;
use crate::snapshot::Node;

use super::Decider;

impl<'a> Decider<'a> {
    /// `Ok(reason)`: drain now (the reason the drain starts with, or `None` to keep the
    /// readiness reason); `Err(reason)`: stand by.
    pub(super) fn drain_on(&self, node: &Node, e: &Entry) -> Result<Option<Reason>, Reason> {
        if node.interruption_taint {
            return Ok(Some(Reason::InterruptionNotice));
        }
        match self.cfg.drain_on {
            DrainOn::Rebalance => Ok(None),
            DrainOn::Interruption => Err(Reason::StandingBy),
            DrainOn::Adaptive => self.pool_evidence(e).map(Some).ok_or(Reason::StandingBy),
        }
    }

    /// The `--drain-on adaptive` rule: drain on the recommendation when the node's pool is
    /// in a storm, had an interruption lately, or its recent known outcomes were mostly
    /// interruptions; `None`: stand by.
    fn pool_evidence(&self, e: &Entry) -> Option<Reason> {
        let rule = &self.cfg.adaptive;
        let window = rule.storm_window;
        // A pool nobody could name is no pool: its signals share nothing.
        let known = !e.pool.is_empty() && e.pool != crate::outcomes::pool_key("", "");
        if !known {
            return None;
        }
        let in_pool = |other: &Entry| other.pool == e.pool;
        let recent_signals = self
            .s
            .ledger
            .entries
            .values()
            .filter(|o| in_pool(o) && o.signal_at <= e.signal_at.plus(window))
            .filter(|o| e.signal_at.since(o.signal_at) <= window)
            .count();
        if rule.storm_signals > 0 && recent_signals >= rule.storm_signals as usize {
            return Some(Reason::PoolStorm);
        }
        let outcomes = self.s.ledger.outcomes.pool(&e.pool)?;
        if outcomes
            .last_interruption()
            .is_some_and(|at| self.now.since(at) <= window)
        {
            return Some(Reason::PoolInterrupted);
        }
        let (known, interrupted) = outcomes.known_recent();
        let share_reached = u64::from(interrupted) * 100
            >= u64::from(rule.follow_through_percent) * u64::from(known);
        (known > 0 && known >= rule.min_outcomes && share_reached)
            .then_some(Reason::PoolFollowThrough)
    }
}
