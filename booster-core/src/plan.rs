//! The engine's output: a [`Plan`] of [`Action`]s, each with a typed [`Reason`].
//!
//! Every action is safe to run on its own, in any order, and to repeat: its preconditions
//! were true in the snapshot, and each one is idempotent. The driver runs the world part of
//! an action first and its ledger part last ([`crate::ledger::Ledger::apply`]), except that
//! ledger-only actions (`RecordSignal`, `BeginBoost`, `ConfirmBoost`, `StartDrain`,
//! `Forget`) are only the ledger write. Boosts are two-phase across plans: the ledger
//! records `Applying{from,to}` in one plan, and `SetDesired` comes in a later plan, once
//! that record is visible in the snapshot.

mod display;

use serde::{Deserialize, Serialize};

use crate::ledger::Entry;
use crate::outcomes::SignalOutcome;
pub use crate::reason::Reason;
use crate::time::{Dur, Timestamp};

/// What to do now, and when to look again.
#[must_use = "a plan does nothing until its actions are executed"]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Actions, in the order the engine found them (boosts before drains before clean-up).
    pub actions: Vec<Action>,
    /// The next instant at which the plan would change with no new observation (a deadline
    /// or a spacing gap ends). `None`: nothing is waiting on time.
    pub next_wakeup: Option<Timestamp>,
    /// The plan was computed in dry-run mode: report it, execute nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Events that do not count as signals, and why. Nothing is done for them; the driver
    /// counts and logs each one once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<Rejection>,
    /// Things about a group an operator should know (Capacity Rebalancing on, AZRebalance
    /// not suspended, launches failing): the driver warns once per group and reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<GroupWarning>,
}

/// A warning about a group.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupWarning {
    /// The group.
    pub group: String,
    /// A node of the group the warning concerns (to attach the Kubernetes Event to).
    pub node: String,
    /// What.
    pub reason: Reason,
}

/// An Event the engine will not act on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rejection {
    /// The Event's `namespace/name` ([`crate::snapshot::Signal::id`]).
    pub signal: String,
    /// The node it names.
    pub node: String,
    /// Why it does not count.
    pub reason: Rejected,
}

/// Why an Event does not count as a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Rejected {
    /// Posted in a namespace that is not configured (`--event-namespaces`).
    Namespace,
    /// Its source component is not NTH's (`--event-components`).
    Component,
    /// It names no Node of this cluster (forged, or it outlived its node: Events stay for
    /// the apiserver's event TTL after a retire).
    UnknownNode,
    /// Created before the Node it names: it is about an earlier node of that name.
    BeforeNode,
    /// Its `instance-id` annotation is not the Node's instance.
    InstanceMismatch,
    /// It claims a time later than its own creation (plus the clock skew).
    FutureTime,
    /// The Node carries neither NTH's rebalance taint nor NTH's cordon: nothing that only a
    /// node-level actor can write backs the claim.
    Uncorroborated,
}

impl Rejected {
    /// Every reason, for metrics that pre-register labels.
    pub const ALL: &'static [Rejected] = &[
        Rejected::Namespace,
        Rejected::Component,
        Rejected::UnknownNode,
        Rejected::BeforeNode,
        Rejected::InstanceMismatch,
        Rejected::FutureTime,
        Rejected::Uncorroborated,
    ];

    /// camelCase, as in JSON and the metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejected::Namespace => "namespace",
            Rejected::Component => "component",
            Rejected::UnknownNode => "unknownNode",
            Rejected::BeforeNode => "beforeNode",
            Rejected::InstanceMismatch => "instanceMismatch",
            Rejected::FutureTime => "futureTime",
            Rejected::Uncorroborated => "uncorroborated",
        }
    }

    /// One sentence for logs.
    pub fn describe(self) -> &'static str {
        match self {
            Rejected::Namespace => "Event is in a namespace that is not read for signals",
            Rejected::Component => "Event's source component is not NTH's",
            Rejected::UnknownNode => "Event names no Node of this cluster",
            Rejected::BeforeNode => "Event was created before the Node it names",
            Rejected::InstanceMismatch => "Event's instance-id is not the Node's instance",
            Rejected::FutureTime => "Event claims a time after its own creation",
            Rejected::Uncorroborated => {
                "neither NTH's rebalance taint nor NTH's cordon is on the Node"
            }
        }
    }
}

impl Plan {
    /// The actions that change something (everything but [`Action::Hold`]).
    pub fn mutations(&self) -> impl Iterator<Item = &Action> {
        self.actions.iter().filter(|a| a.is_mutation())
    }
}

/// One step. Fields named `node` are Node names, `group` Auto Scaling group names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "action",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Action {
    /// Ledger: create (or replace a released) entry for a signalled node.
    RecordSignal {
        /// The signalled node.
        node: String,
        /// The entry to store.
        entry: Entry,
        /// Why.
        reason: Reason,
    },
    /// Ledger: queued signals of one group start their boost (`Queued` -> `Applying`).
    BeginBoost {
        /// The group.
        group: String,
        /// The signalled nodes boosted together.
        nodes: Vec<String>,
        /// Desired capacity now.
        from: u32,
        /// Desired capacity to reach.
        to: u32,
        /// Now.
        at: Timestamp,
        /// Why.
        reason: Reason,
    },
    /// Cloud then ledger: `SetDesiredCapacity(group, to)`, skipped by the adapter when the
    /// group is already at or above `to`. Never lowers: `to > from`, and `to <= max size`.
    /// Its ledger part is [`Action::set_desired_confirmation`]: only a call that really
    /// raised desired capacity records the boost as ours.
    SetDesired {
        /// The group.
        group: String,
        /// Desired capacity observed.
        from: u32,
        /// Desired capacity to set.
        to: u32,
        /// The signals this boost is for.
        nodes: Vec<String>,
        /// Why.
        reason: Reason,
    },
    /// Ledger: a boost in `Applying` is settled: `Applied`, or abandoned when the group's
    /// max size fell below its target.
    ConfirmBoost {
        /// The group.
        group: String,
        /// The signals boosted together.
        nodes: Vec<String>,
        /// `true`: the boost counts as applied; `false`: abandoned.
        applied: bool,
        /// Why.
        reason: Reason,
    },
    /// Kubernetes: mark the signalled node unschedulable.
    Cordon {
        /// The node.
        node: String,
        /// Why.
        reason: Reason,
    },
    /// Kubernetes: annotate a replacement `cluster-autoscaler.kubernetes.io/scale-down-disabled=true`
    /// and record which signalled node it stands in for.
    Protect {
        /// The replacement node.
        node: String,
        /// The signalled node it replaces.
        for_node: String,
        /// Why.
        reason: Reason,
    },
    /// Kubernetes: remove the booster's protection (only ever one the booster set).
    Unprotect {
        /// The replacement node.
        node: String,
        /// Why.
        reason: Reason,
    },
    /// Kubernetes: put the booster's `PreferNoSchedule` standby taint on a replacement held
    /// for a node standing by (`standby`), or take it off. The scheduler then places pods
    /// elsewhere while there is room, so that the replacement stays empty and costs no
    /// eviction when Cluster Autoscaler removes it after a recommendation not followed.
    Steer {
        /// The replacement node.
        node: String,
        /// Taint (`true`) or untaint.
        standby: bool,
        /// Why.
        reason: Reason,
    },
    /// Ledger: start (or restart) draining a signalled node; the driver's drain worker
    /// follows the ledger and evicts its pods.
    StartDrain {
        /// The node.
        node: String,
        /// 1 for the first attempt.
        attempt: u32,
        /// Now.
        at: Timestamp,
        /// Why.
        reason: Reason,
    },
    /// Ledger: somebody else (NTH in queue-processor mode, an operator's `kubectl drain`) is
    /// evicting the signalled node's pods: the booster follows that drain, starts none of its
    /// own, and retires the node by its rules once it is empty.
    FollowDrain {
        /// The node.
        node: String,
        /// Now.
        at: Timestamp,
        /// Why.
        reason: Reason,
    },
    /// Ledger then cloud: record `retiring` (stored before the call), then
    /// `TerminateInstanceInAutoScalingGroup`. `decrement` is true exactly when this signal's
    /// boost was applied in this group, so the group returns to the size it had without it.
    Retire {
        /// The drained node.
        node: String,
        /// Its group.
        group: String,
        /// Its instance.
        instance_id: String,
        /// `ShouldDecrementDesiredCapacity`.
        decrement: bool,
        /// Now.
        at: Timestamp,
        /// Why.
        reason: Reason,
    },
    /// Kubernetes then ledger: give the node back (uncordon, remove NTH's rebalance taint,
    /// stop its drain) and mark the entry released.
    Release {
        /// The node.
        node: String,
        /// Uncordon it: false when the cordon was somebody else's before the signal (only
        /// NTH's rebalance taint goes then).
        uncordon: bool,
        /// Now.
        at: Timestamp,
        /// Why.
        reason: Reason,
    },
    /// Ledger then Kubernetes: the entry's `Placeholders` record is stored (write-ahead),
    /// then the signal's placeholder pods are made: a pause container each, in a
    /// PriorityClass below every workload, asking what the signalled node's evictable pods
    /// ask, where they may run. Idempotent: their names derive from the node and
    /// `signal_at`, so a repeated call or a restart never makes a second set.
    Place {
        /// The signalled node.
        node: String,
        /// The signal's time (part of the pods' identity).
        signal_at: Timestamp,
        /// Now.
        at: Timestamp,
        /// Why.
        reason: Reason,
    },
    /// Kubernetes: delete the placeholder pods made for a signal (all of them, whatever
    /// signal time they carry).
    Unplace {
        /// The signalled node they stand for.
        node: String,
        /// Why.
        reason: Reason,
    },
    /// Ledger then Kubernetes: record `retiring` (stored before the call), then delete the
    /// drained node's Karpenter NodeClaim: Karpenter terminates the instance. No AWS call.
    DeleteNodeClaim {
        /// The drained node.
        node: String,
        /// Its NodeClaim.
        nodeclaim: String,
        /// Now.
        at: Timestamp,
        /// Why.
        reason: Reason,
    },
    /// Ledger: how a signal ended, counted once in its pool's outcomes (the entry keeps
    /// it, so that it is never counted twice).
    RecordOutcome {
        /// The signalled node.
        node: String,
        /// Its pool (`<instance type>/<zone>`).
        pool: String,
        /// Its group.
        group: String,
        /// How the signal ended.
        outcome: SignalOutcome,
        /// Recommendation to interruption, for an interruption.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lead: Option<Dur>,
        /// Now.
        at: Timestamp,
        /// Why.
        reason: Reason,
    },
    /// Ledger: drop the entry of a node that is gone.
    Forget {
        /// The node.
        node: String,
        /// Why.
        reason: Reason,
    },
    /// Nothing to execute: a signal waits, or is refused, and the reason is worth reporting
    /// (log, metric, Kubernetes Event).
    Hold {
        /// The signalled node.
        node: String,
        /// Why it waits.
        reason: Reason,
    },
}

impl Action {
    /// The ledger part of an executed [`Action::SetDesired`]: `raised` says whether the call
    /// raised desired capacity (the adapter reports `AlreadyAtOrAbove` otherwise). `None`
    /// for any other action.
    pub fn set_desired_confirmation(&self, raised: bool) -> Option<Action> {
        match self {
            Action::SetDesired { group, nodes, .. } => Some(Action::ConfirmBoost {
                group: group.clone(),
                nodes: nodes.clone(),
                applied: true,
                reason: if raised {
                    Reason::BoostRaised
                } else {
                    Reason::DesiredReached
                },
            }),
            _ => None,
        }
    }

    /// Whether executing it changes anything (all but [`Action::Hold`]).
    pub fn is_mutation(&self) -> bool {
        !matches!(self, Action::Hold { .. })
    }

    /// Whether it calls the cloud ([`Action::SetDesired`], [`Action::Retire`]).
    pub fn is_cloud(&self) -> bool {
        matches!(self, Action::SetDesired { .. } | Action::Retire { .. })
    }

    /// The action's reason.
    pub fn reason(&self) -> Reason {
        match self {
            Action::RecordSignal { reason, .. }
            | Action::BeginBoost { reason, .. }
            | Action::SetDesired { reason, .. }
            | Action::ConfirmBoost { reason, .. }
            | Action::Cordon { reason, .. }
            | Action::Protect { reason, .. }
            | Action::Unprotect { reason, .. }
            | Action::Steer { reason, .. }
            | Action::StartDrain { reason, .. }
            | Action::FollowDrain { reason, .. }
            | Action::Retire { reason, .. }
            | Action::Release { reason, .. }
            | Action::Place { reason, .. }
            | Action::Unplace { reason, .. }
            | Action::DeleteNodeClaim { reason, .. }
            | Action::RecordOutcome { reason, .. }
            | Action::Forget { reason, .. }
            | Action::Hold { reason, .. } => *reason,
        }
    }

    /// The action's name in camelCase, as in JSON and metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::RecordSignal { .. } => "recordSignal",
            Action::BeginBoost { .. } => "beginBoost",
            Action::SetDesired { .. } => "setDesired",
            Action::ConfirmBoost { .. } => "confirmBoost",
            Action::Cordon { .. } => "cordon",
            Action::Protect { .. } => "protect",
            Action::Unprotect { .. } => "unprotect",
            Action::Steer { .. } => "steer",
            Action::StartDrain { .. } => "startDrain",
            Action::FollowDrain { .. } => "followDrain",
            Action::Retire { .. } => "retire",
            Action::Release { .. } => "release",
            Action::Place { .. } => "place",
            Action::Unplace { .. } => "unplace",
            Action::DeleteNodeClaim { .. } => "deleteNodeClaim",
            Action::RecordOutcome { .. } => "recordOutcome",
            Action::Forget { .. } => "forget",
            Action::Hold { .. } => "hold",
        }
    }

    /// The node the action is about, if any.
    pub fn node(&self) -> Option<&str> {
        match self {
            Action::RecordSignal { node, .. }
            | Action::Cordon { node, .. }
            | Action::Protect { node, .. }
            | Action::Unprotect { node, .. }
            | Action::Steer { node, .. }
            | Action::StartDrain { node, .. }
            | Action::FollowDrain { node, .. }
            | Action::Retire { node, .. }
            | Action::Release { node, .. }
            | Action::Place { node, .. }
            | Action::Unplace { node, .. }
            | Action::DeleteNodeClaim { node, .. }
            | Action::RecordOutcome { node, .. }
            | Action::Forget { node, .. }
            | Action::Hold { node, .. } => Some(node),
            Action::BeginBoost { .. } | Action::SetDesired { .. } | Action::ConfirmBoost { .. } => {
                None
            }
        }
    }

    /// The group the action is about, if it names one.
    pub fn group(&self) -> Option<&str> {
        match self {
            Action::BeginBoost { group, .. }
            | Action::SetDesired { group, .. }
            | Action::ConfirmBoost { group, .. }
            | Action::Retire { group, .. } => Some(group),
            Action::RecordSignal { entry, .. } => Some(&entry.group),
            Action::RecordOutcome { group, .. } => Some(group),
            _ => None,
        }
    }
}
