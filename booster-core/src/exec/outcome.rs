//! What [`execute`](super::execute) reports: the effect of each action reached, the drains
//! to start and the ledger as stored.

use crate::ledger::Ledger;
use crate::ports::{DrainSpec, PortError};

/// What happened to one action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Only the ledger changed.
    Recorded,
    /// The port call changed the world.
    Done,
    /// The world was already as asked (desired at or above, instance gone): nothing changed.
    AlreadyDone,
    /// The drain is returned in [`Executed::drains`] for the caller to start.
    DrainQueued,
    /// Dry run: computed and reported, not executed.
    DryRun,
    /// A `Hold`: nothing to do.
    Held,
}

/// The result of one action, by its index in the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Index into `plan.actions`.
    pub index: usize,
    /// What the port did, or why it failed.
    pub result: Result<Effect, PortError>,
}

/// What [`execute`](super::execute) did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Executed {
    /// One per action reached, in plan order.
    pub outcomes: Vec<Outcome>,
    /// Drains to start now, in plan order (their `Draining` state is stored).
    pub drains: Vec<DrainSpec>,
    /// The ledger as stored at the end (unchanged on dry run or when a store failed).
    pub ledger: Ledger,
    /// Number of ledger stores made.
    pub stores: u32,
    /// Set when a ledger store failed: the plan stopped there.
    pub aborted: Option<PortError>,
}

impl Executed {
    /// The failed outcomes.
    pub fn failures(&self) -> impl Iterator<Item = (&Outcome, &PortError)> {
        self.outcomes
            .iter()
            .filter_map(|o| o.result.as_ref().err().map(|e| (o, e)))
    }
}
