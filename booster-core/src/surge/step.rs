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
    /// Ready pods of the Deployment other than the old one, not terminating, each on a
    /// schedulable node other than the drained one.
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
    // The successor must be Ready elsewhere, and with it as many Ready pods as the
    // Deployment's size without the old one, so that the old one's removal leaves it whole.
    if o.ready_elsewhere >= r.from {
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
