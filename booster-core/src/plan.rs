//! The engine's output: a [`Plan`] of [`Action`]s, each with a typed [`Reason`].
//!
//! Every action is safe to run on its own, in any order, and to repeat: its preconditions
//! were true in the snapshot, and each one is idempotent. The driver runs the world part of
//! an action first and its ledger part last ([`crate::ledger::Ledger::apply`]), except that
//! ledger-only actions (`RecordSignal`, `BeginBoost`, `ConfirmBoost`, `StartDrain`,
//! `Forget`) are only the ledger write. Boosts are two-phase across plans: the ledger
//! records `Applying{from,to}` in one plan, and `SetDesired` comes in a later plan, once
//! that record is visible in the snapshot.

use serde::{Deserialize, Serialize};

use crate::ledger::Entry;
use crate::time::Timestamp;

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
            | Action::StartDrain { reason, .. }
            | Action::FollowDrain { reason, .. }
            | Action::Retire { reason, .. }
            | Action::Release { reason, .. }
            | Action::Place { reason, .. }
            | Action::Unplace { reason, .. }
            | Action::DeleteNodeClaim { reason, .. }
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
            Action::StartDrain { .. } => "startDrain",
            Action::FollowDrain { .. } => "followDrain",
            Action::Retire { .. } => "retire",
            Action::Release { .. } => "release",
            Action::Place { .. } => "place",
            Action::Unplace { .. } => "unplace",
            Action::DeleteNodeClaim { .. } => "deleteNodeClaim",
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
            | Action::StartDrain { node, .. }
            | Action::FollowDrain { node, .. }
            | Action::Retire { node, .. }
            | Action::Release { node, .. }
            | Action::Place { node, .. }
            | Action::Unplace { node, .. }
            | Action::DeleteNodeClaim { node, .. }
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
            _ => None,
        }
    }
}

macro_rules! reasons {
    ($( $(#[$doc:meta])* $variant:ident => $text:literal, )*) => {
        /// Why an action is taken, or why a signal waits.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub enum Reason {
            $( $(#[$doc])* $variant, )*
        }

        impl Reason {
            /// Every reason, in declaration order (for metrics that pre-register labels).
            pub const ALL: &'static [Reason] = &[ $( Reason::$variant, )* ];

            /// CamelCase name, used as the Kubernetes Event reason and a metric label.
            pub fn as_str(self) -> &'static str {
                match self { $( Reason::$variant => stringify!($variant), )* }
            }

            /// The camelCase code used in JSON (see its `Display`).
            pub fn code(self) -> String {
                self.to_string()
            }

            /// One sentence for logs and Event messages.
            pub fn describe(self) -> &'static str {
                match self { $( Reason::$variant => $text, )* }
            }
        }
    };
}

reasons! {
    /// A rebalance recommendation was seen for a node with no entry.
    NewSignal => "rebalance recommendation received",
    /// A signal newer than the node's last release.
    SignalAfterRelease => "new rebalance recommendation after the node was given back",
    /// The ledger had no entry for a node that carries the booster's mark of a boost made
    /// for it (the ledger was deleted or replaced): the entry is rebuilt from the mark, so
    /// that the boost is not made a second time.
    LedgerRecovered => "ledger entry rebuilt from the boost mark on the node (the ledger lost it)",
    /// A node given back two signal expiries ago, without NTH's taint: its entry is pruned.
    ReleasedLongAgo => "given back long ago: the ledger entry is pruned",
    /// Auto Scaling did not answer: what needs it waits, the rest goes on.
    CloudUnavailable => "Auto Scaling did not answer: boosts, their settling and retires wait for it",
    /// The signal is already older than the expiry when first seen.
    StaleSignal => "rebalance recommendation is older than the signal expiry",
    /// A queued signal's boost is now allowed.
    BoostAllowed => "boost allowed",
    /// The ledger holds a boost not yet visible in desired capacity.
    BoostRecorded => "raising desired capacity for recorded boost",
    /// Our own SetDesiredCapacity call raised desired capacity to the target.
    BoostRaised => "desired capacity raised for the boost",
    /// Desired capacity was seen at or above the target without our call on record: taken as
    /// done, and not given back at retire since it may be somebody else's capacity.
    DesiredReached => "desired capacity already at the boost target",
    /// Desired capacity moved away from the recorded base: the boost is taken as done, never repeated.
    DesiredChangedByOthers => "desired capacity changed by somebody else; boost taken as done",
    /// The group's max size fell below the boost target.
    MaxSizeBelowTarget => "group max size is below the boost target",
    /// A signalled node is still schedulable.
    SignalledNodeSchedulable => "signalled node is schedulable",
    /// A node launched after the boost stands in for the signalled node.
    ReplacementLaunched => "replacement launched after the boost",
    /// The signalled node this replacement stood in for is retired, released or gone.
    SignalHandled => "the signal this replacement stood in for is handled",
    /// A booster protection points at no live signal.
    ProtectionOrphaned => "protection points at no live signal",
    /// The replacement is Ready.
    ReplacementReady => "replacement is Ready",
    /// The replacement wait is over; keeping a doomed node is worse than running short.
    ReplacementWaitOver => "replacement did not become Ready in time",
    /// The signal got no boost and none will come: the node waits for its interruption or
    /// its expiry rather than be drained into no capacity.
    NoReplacementComing => "no boost for this signal; waiting for the interruption or the expiry",
    /// A drain attempt ran past the drain timeout.
    DrainTimedOut => "drain attempt timed out; retrying",
    /// The node has no pods left to evict.
    DrainComplete => "drain complete",
    /// The signal never turned into an interruption within the expiry.
    SignalExpired => "signal expired without an interruption",
    /// A node given back carries NTH's taint again for a recommendation already handled
    /// (NTH keeps its events in memory: after a restart it cordons and taints again).
    RetaintedAfterRelease => "NTH cordoned the node again for a recommendation already handled",
    /// NTH is handling an interruption of the node (its spot-itn, lifecycle-termination or
    /// scheduled-maintenance taint): it is not given back, whatever the signal's expiry.
    InterruptionUnderway => "NTH is handling an interruption of this node: not given back",
    /// Somebody else is evicting the node's pods (a pod carries the `DisruptionTarget`
    /// condition the Eviction API sets) before the booster's drain started: NTH in
    /// queue-processor mode drains on every rebalance recommendation. No second drain is
    /// started; the node is retired once empty.
    DrainedByOthers => "somebody else (NTH in queue-processor mode?) is evicting this node's pods: the booster starts no second drain and retires the node once it is empty",
    /// Pods on the node can never be evicted under the drain's rules (do-not-disrupt or
    /// safe-to-evict=false; no controller, without `--drain-force`; emptyDir data, without
    /// `--drain-delete-emptydir-data`): a drain could not finish, so none is started. The
    /// node waits for those pods to go, its interruption or its expiry.
    PodsNeverEvicted => "pods on this node can never be evicted by a drain: no drain is started (the node waits for them to go, its interruption or its expiry)",
    /// The drain started before a boost could be made.
    DrainStartedFirst => "drain started before a boost was possible",
    /// The node and its instance are gone.
    NodeGone => "node and instance are gone",
    /// Fail safe: no cluster-autoscaler status.
    CaStatusMissing => "cluster-autoscaler status ConfigMap is missing: no boosts",
    /// Fail safe: unparseable cluster-autoscaler status.
    CaStatusInvalid => "cluster-autoscaler status cannot be parsed: no boosts",
    /// Fail safe: cluster-autoscaler status too old.
    CaStatusStale => "cluster-autoscaler status is stale: no boosts",
    /// Fail safe: cluster-autoscaler still initializing.
    CaInitializing => "cluster-autoscaler is initializing: no boosts",
    /// cluster-autoscaler does not manage the group.
    GroupNotInCaStatus => "group is not in the cluster-autoscaler status: no boosts",
    /// cluster-autoscaler calls the group unhealthy.
    GroupUnhealthy => "cluster-autoscaler reports the group unhealthy: no boosts",
    /// cluster-autoscaler backs off from scaling the group up.
    GroupBackingOff => "cluster-autoscaler is backing off scale-up of the group: no boosts",
    /// Another boost of the group is being applied.
    BoostInFlight => "another boost of this group is being applied",
    /// The group is at its max size.
    AtMaxSize => "group is at its max size",
    /// The group's boost cap is reached.
    BoostCapReached => "boost cap for the group is reached",
    /// The node's instance belongs to no known Auto Scaling group.
    UnknownGroup => "node's instance is in no known Auto Scaling group",
    /// The group is in the ignored list.
    GroupIgnored => "group is ignored by configuration",
    /// The group opted out by tag.
    GroupOptedOut => "group opted out by tag",
    /// The group lacks the cluster's tag (`--cluster-name` / `--cluster-tag`).
    GroupNotThisCluster => "group does not carry this cluster's tag",
    /// Waiting for the replacement.
    WaitingForReplacement => "waiting for the replacement to be Ready",
    /// All drain slots are taken.
    DrainSlotsFull => "max concurrent drains reached",
    /// Too soon after the last drain start.
    DrainSpacing => "waiting for time between drains",
    /// Draining.
    Draining => "drain in progress",
    /// Draining is disabled by configuration.
    DrainDisabled => "draining is disabled; waiting for the signal to expire",
    /// A retire waits until the group's boost settles, so both never race on desired capacity.
    RetireWaitsForBoost => "retire waits for the group's boost to settle",
    /// The node object is missing while its instance still runs.
    NodeMissing => "node object is missing while its instance runs",
    /// The group has Capacity Rebalancing: AWS launches the replacement and terminates the
    /// signalled instance itself; a boost would add a second replacement.
    CapacityRebalance => "the group has Capacity Rebalancing: AWS replaces the instance itself; no boost, no drain, no retire",
    /// The group's AZRebalance process is not suspended: after a terminate with decrement,
    /// AWS may terminate an undrained instance in another zone.
    AzRebalanceActive => "AZRebalance is not suspended on this group: after a retire AWS may terminate an undrained instance in another zone",
    /// The group's Launch process is suspended.
    LaunchSuspended => "the group's Launch process is suspended: a boost would launch nothing",
    /// The group failed to launch recently (a Failed scaling activity).
    LaunchFailing => "the group failed to launch recently (InsufficientInstanceCapacity or the like): no boost there",
    /// The boost's launch failed: its replacement will not come.
    LaunchFailed => "the boost's launch failed: its replacement will not come",
    /// The group could not launch; a fallback group is boosted instead.
    FallbackBoost => "the group cannot launch: boosting its fallback group instead",
    /// A retire was sent and the instance is not leaving yet.
    RetireInFlight => "retire sent; waiting for the instance to leave",
    /// Placeholder pods are asked for: the autoscaler in charge provisions their node,
    /// which is the replacement.
    PlaceholdersRecorded => "placing placeholder pods for the signal: the autoscaler in charge provisions the replacement",
    /// Placeholder pods stand for no live signal of theirs (the ledger lost it, or they
    /// are an earlier signal's): they are deleted.
    PlaceholdersOrphaned => "placeholder pods stand for no live signal: deleted",
    /// A Karpenter node has no NodeClaim to delete: it is not retired by the booster.
    NodeClaimMissing => "the Karpenter node has no NodeClaim owner: not retired by the booster",
    /// The node carries `karpenter.sh/do-not-disrupt`: no drain is started.
    NodeDoNotDisrupt => "the node carries karpenter.sh/do-not-disrupt: no drain is started (it waits for its interruption or its expiry)",
    /// A running drain was stopped: its signal ended (given back, retired or forgotten).
    DrainStopped => "drain stopped: the signal ended while it ran",
    /// The write this step needs failed lately (refused, throttled, busy, no answer): it is
    /// sent again only after its backoff.
    WriteBackingOff => "the last try of this step's write failed: it is sent again after its backoff",
    /// Auto Scaling refused the boost again and again (AccessDenied, ValidationError): it is
    /// given up and the node given back.
    BoostRefused => "the boost was refused again and again (permissions, tags or the group): given up, the node given back",
    /// The retire was refused again and again: the node is given back rather than left
    /// cordoned for good.
    RetireRefused => "the retire was refused again and again (permissions, tags or the instance): the node is given back",
    /// The placeholder pods were refused again and again (RBAC, quota, admission): the
    /// node is given back.
    PlaceRefused => "the placeholder pods were refused again and again (RBAC, quota or admission): the node is given back",
    /// Desired capacity is back at the boost's base, but the group's scaling activities show
    /// the raise from it after the record: the call took effect and somebody lowered desired
    /// capacity since (a crash or a lost reply hid our answer). Taken as done, never repeated.
    RaiseSeenInActivities => "the scaling activities show the raise took effect and desired capacity came down since: the boost is taken as done, never repeated",
    /// Desired capacity is back at the boost's base and nothing shows whether the raise took
    /// effect: it is sent again only when the scaling activities have had time to show it
    /// and do not.
    RaiseUnconfirmed => "unknown yet whether the raise took effect: it is sent again only if the scaling activities do not show it",
    /// Whether the raise took effect could not be learnt (the scaling activities unreadable)
    /// within the time allowed: the boost is taken as done (no decrement at retire) rather
    /// than risk a second one.
    RaiseUnproven => "whether the raise took effect cannot be learnt: the boost is taken as done rather than risk a second one",
}

impl std::fmt::Display for Action {
    /// One line for logs and tests: `setDesired spot 3->4 (boostRecorded)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::ledger::Boost;
        let r = self.reason();
        match self {
            Action::RecordSignal { node, entry, .. } => {
                let boost = match &entry.boost {
                    Boost::Queued { reason } => format!("queued:{reason}"),
                    Boost::Applying { from, to, .. } => format!("applying:{from}->{to}"),
                    Boost::Applied { to, .. } => format!("applied:{to}"),
                    Boost::Placeholders { .. } => "placeholders".to_string(),
                    Boost::Abandoned { reason } => format!("abandoned:{reason}"),
                };
                let released = if entry.released_at.is_some() {
                    " released"
                } else {
                    ""
                };
                let via = entry
                    .fallback
                    .as_ref()
                    .map(|g| format!(" in {g}"))
                    .unwrap_or_default();
                let kept = if entry.cordoned_before {
                    " cordoned-before"
                } else {
                    ""
                };
                write!(f, "recordSignal {node} {boost}{via}{released}{kept} ({r})")
            }
            Action::BeginBoost {
                group,
                nodes,
                from,
                to,
                ..
            } => {
                write!(
                    f,
                    "beginBoost {group} [{}] {from}->{to} ({r})",
                    nodes.join(",")
                )
            }
            Action::SetDesired {
                group, from, to, ..
            } => write!(f, "setDesired {group} {from}->{to} ({r})"),
            Action::ConfirmBoost {
                group,
                nodes,
                applied,
                ..
            } => {
                let how = if *applied { "applied" } else { "abandoned" };
                write!(f, "confirmBoost {group} [{}] {how} ({r})", nodes.join(","))
            }
            Action::Cordon { node, .. } => write!(f, "cordon {node} ({r})"),
            Action::Protect { node, for_node, .. } => {
                write!(f, "protect {node} for {for_node} ({r})")
            }
            Action::Unprotect { node, .. } => write!(f, "unprotect {node} ({r})"),
            Action::StartDrain { node, attempt, .. } => {
                write!(f, "startDrain {node} #{attempt} ({r})")
            }
            Action::FollowDrain { node, .. } => write!(f, "followDrain {node} ({r})"),
            Action::Retire {
                node, decrement, ..
            } => {
                let how = if *decrement {
                    "decrement"
                } else {
                    "keep-desired"
                };
                write!(f, "retire {node} {how} ({r})")
            }
            Action::Release {
                node,
                uncordon: true,
                ..
            } => write!(f, "release {node} ({r})"),
            Action::Release { node, .. } => write!(f, "release {node} keep-cordon ({r})"),
            Action::Place { node, .. } => write!(f, "place {node} ({r})"),
            Action::Unplace { node, .. } => write!(f, "unplace {node} ({r})"),
            Action::DeleteNodeClaim {
                node, nodeclaim, ..
            } => write!(f, "deleteNodeClaim {node} {nodeclaim} ({r})"),
            Action::Forget { node, .. } => write!(f, "forget {node} ({r})"),
            Action::Hold { node, .. } => write!(f, "hold {node} ({r})"),
        }
    }
}

impl std::fmt::Display for Reason {
    /// The camelCase code, as in JSON: the CamelCase name with its first letter lowered.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.as_str();
        let mut chars = name.chars();
        if let Some(first) = chars.next() {
            write!(f, "{}", first.to_ascii_lowercase())?;
        }
        f.write_str(chars.as_str())
    }
}
