//! The next step of a surge under way, from what the cluster shows now.

use super::SurgeRecord;
use crate::time::Timestamp;

/// What the cluster shows of a surge under way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observed {
    /// The Deployment's `spec.replicas` now.
    pub replicas: i32,
    /// The pod being moved is still there and not terminating.
    pub old_pod_there: bool,
    /// Ready pods of the Deployment other than the old one, not terminating, wherever they
    /// run (others of it may be on the drained node too, waiting their turn).
    pub ready_others: i32,
    /// Of those, the ones on a schedulable node other than the drained one.
    pub ready_elsewhere: i32,
    /// Now.
    pub now: Timestamp,
}

/// Why a surge is undone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UndoReason {
    /// The successor was not Ready by the record's deadline.
    NotReadyInTime,
    /// The drain it served ended (the signal was given back, the node went).
    DrainEnded,
}

impl std::fmt::Display for UndoReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UndoReason::NotReadyInTime => write!(f, "the successor was not Ready in time"),
            UndoReason::DrainEnded => write!(f, "the drain it served ended"),
        }
    }
}

/// What to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing yet: the successor is starting.
    Wait,
    /// The successor is Ready: back to `from` replicas and the record removed in one
    /// write; the ReplicaSet controller removes the old pod (its deletion cost).
    HandOver,
    /// The old pod went by other hands: back to `from`, record removed (the ReplicaSet
    /// controller removes the least ready pod, none of them the successor if it is Ready).
    Finish,
    /// The old pod's cost restored, then back to `from` and the record removed: the
    /// successor, not Ready, goes first.
    Undo(UndoReason),
    /// Somebody else changed the replicas: only the record is removed (and the old pod's
    /// cost restored); the size stays theirs.
    Abandon,
}

/// The next step of the surge `r`, `drain_running`: whether a drain of its node still runs.
pub fn step(r: &SurgeRecord, o: &Observed, drain_running: bool) -> Step {
    if o.replicas != r.to {
        return Step::Abandon;
    }
    if !o.old_pod_there {
        return Step::Finish;
    }
    // As many Ready pods besides the old one as the Deployment's size: the old one's
    // removal leaves it whole (and, the old one counted out, one of them is the successor),
    // at least one of them on a node that stays.
    if o.ready_others >= r.from && o.ready_elsewhere >= 1 {
        return if drain_running {
            Step::HandOver
        } else {
            Step::Undo(UndoReason::DrainEnded)
        };
    }
    if !drain_running {
        return Step::Undo(UndoReason::DrainEnded);
    }
    if o.now >= r.deadline {
        return Step::Undo(UndoReason::NotReadyInTime);
    }
    Step::Wait
}
