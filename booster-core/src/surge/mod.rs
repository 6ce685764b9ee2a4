//! Surge before evict: moving a pod whose eviction would leave its Deployment with no Ready
//! replica, or break its budget, by starting its successor first.
//!
//! The way (README, "Workloads of one"): the old pod gets the lowest
//! `controller.kubernetes.io/pod-deletion-cost`, the Deployment goes from n to n+1 replicas
//! with a [`SurgeRecord`] written in the same patch, and once the successor is Ready on
//! another node the Deployment goes back to n in one more patch that also removes the
//! record. The ReplicaSet controller then deletes the pod that ranks first for removal:
//! the old one. Had the successor not become Ready, it would rank first itself (not Ready
//! before Ready), so every way back to n, ours or an HPA's or a GitOps tool's, is safe.
//!
//! This module decides; `booster-k8s` reads the facts and writes.

mod assess;
mod record;
mod step;

pub use assess::{assess, Assessment, Owner, SkipReason, Strategy, WorkloadFacts};
pub use record::{RecordError, SurgeRecord};
pub use step::{step, Observed, Step, UndoReason};

use serde::{Deserialize, Serialize};

/// Which pods a drain moves by surge (`--surge`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SurgeMode {
    /// None: every pod is evicted.
    Off,
    /// Those whose eviction would leave their Deployment with no Ready replica.
    #[default]
    SingleReplica,
    /// Those, and those whose PodDisruptionBudget allows no disruption now.
    BudgetBlocked,
}

impl SurgeMode {
    /// The flag's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SurgeMode::Off => "off",
            SurgeMode::SingleReplica => "single-replica",
            SurgeMode::BudgetBlocked => "budget-blocked",
        }
    }
}

/// The Deployment annotation by which a workload opts in (`"true"`: moved by surge whenever
/// its eviction would cost availability, as with `--surge budget-blocked`) or out
/// (`"false"`: always evicted).
pub const OPT_ANNOTATION: &str = "aws-spots-booster/surge";
/// The Deployment annotation holding the [`SurgeRecord`] of a surge under way.
pub const RECORD_ANNOTATION: &str = "aws-spots-booster/surge-record";
/// The Deployment label set while a surge is under way, so that a restarted booster lists
/// the surges to finish without reading every Deployment.
pub const SURGING_LABEL: &str = "aws-spots-booster/surging";
/// The pod annotation the ReplicaSet controller ranks pods by when it removes one.
pub const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";
/// The cost put on the pod to move: the lowest there is, so that it goes first.
pub const LOWEST_COST: i32 = i32::MIN;

/// What became of one pod's surge, for metrics, logs and Events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SurgeReport {
    /// The signalled node the pod was on.
    pub node: String,
    /// `namespace/name` of the Deployment (or of the pod, when there is none).
    pub workload: String,
    /// What happened.
    pub outcome: SurgeOutcome,
    /// One sentence for the log line and the Event.
    pub message: String,
}

/// The outcomes of [`SurgeReport`], in the order of a surge's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SurgeOutcome {
    /// The Deployment was raised by one; its successor is awaited.
    Started,
    /// The successor was Ready and the Deployment back to its size: the old pod goes.
    HandedOver,
    /// Undone (the successor not Ready in time, the signal ended): the pod is evicted as
    /// any other, or stays.
    Undone,
    /// Somebody else changed the replicas during the surge: the record is dropped, the
    /// size left as they set it.
    Abandoned,
    /// A pod whose eviction costs availability, and which cannot be moved by surge: it is
    /// evicted as any other.
    Skipped,
}

impl SurgeOutcome {
    /// Every outcome (for metrics that pre-register labels).
    pub const ALL: [SurgeOutcome; 5] = [
        SurgeOutcome::Started,
        SurgeOutcome::HandedOver,
        SurgeOutcome::Undone,
        SurgeOutcome::Abandoned,
        SurgeOutcome::Skipped,
    ];

    /// The camelCase label.
    pub fn as_str(self) -> &'static str {
        match self {
            SurgeOutcome::Started => "started",
            SurgeOutcome::HandedOver => "handedOver",
            SurgeOutcome::Undone => "undone",
            SurgeOutcome::Abandoned => "abandoned",
            SurgeOutcome::Skipped => "skipped",
        }
    }

    /// The reason of its Event.
    pub fn reason(self) -> crate::Reason {
        match self {
            SurgeOutcome::Started => crate::Reason::SurgeStarted,
            SurgeOutcome::HandedOver => crate::Reason::SurgeHandedOver,
            SurgeOutcome::Undone => crate::Reason::SurgeUndone,
            SurgeOutcome::Abandoned => crate::Reason::SurgeAbandoned,
            SurgeOutcome::Skipped => crate::Reason::SurgeSkipped,
        }
    }

    /// Whether an operator should look (Warning Events).
    pub fn is_warning(self) -> bool {
        matches!(self, SurgeOutcome::Undone | SurgeOutcome::Skipped)
    }
}
