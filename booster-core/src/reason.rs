//! [`Reason`]: why an action is taken or a signal waits, with its camelCase code (JSON, Event
//! reasons, metric labels) and one sentence for logs and Events. Its own module so that the
//! ledger (which keeps reasons) and the plan (which carries entries) need not name each
//! other.

use serde::{Deserialize, Serialize};

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
    /// A pod whose eviction would cost availability: its Deployment raised by one so that
    /// its successor is Ready before it goes (README, "Workloads of one").
    SurgeStarted => "moving a pod by surge: its Deployment raised by one",
    /// The successor is Ready elsewhere: the Deployment back to its size, the old pod goes.
    SurgeHandedOver => "surge handed over: the successor is Ready elsewhere",
    /// The surge was undone (successor not Ready in time, or the drain ended).
    SurgeUndone => "surge undone",
    /// Somebody else changed the replicas during the surge: left as they set them.
    SurgeAbandoned => "surge abandoned: the replicas were changed by somebody else",
    /// A pod whose eviction costs availability could not be moved by surge: evicted.
    SurgeSkipped => "not moved by surge: evicted instead",
    /// The signal never turned into an interruption within the expiry.
    SignalExpired => "signal expired without an interruption",
    /// Standby (`--drain-on interruption`, or `adaptive` with no evidence of an
    /// interruption coming): the replacement is Ready and protected, the node waits.
    StandingBy => "replacement Ready; standing by: drained when the interruption notice comes, given back at the expiry",
    /// The node's interruption notice came (NTH's interruption taint): a node on standby is
    /// drained now, onto the replacement already there.
    InterruptionNotice => "interruption notice (NTH's taint): drained now",
    /// `--drain-on adaptive`: enough recommendations in the node's pool within the storm
    /// window; interruptions cluster, so it is drained on the recommendation.
    PoolStorm => "a storm of recommendations in this node's pool: drained on the recommendation (--drain-on adaptive)",
    /// `--drain-on adaptive`: an interruption in the node's pool within the storm window.
    PoolInterrupted => "an interruption in this node's pool within the storm window: drained on the recommendation (--drain-on adaptive)",
    /// `--drain-on adaptive`: the pool's recent recommendations mostly became interruptions.
    PoolFollowThrough => "this node's pool's recent recommendations mostly became interruptions: drained on the recommendation (--drain-on adaptive)",
    /// The signal's outcome: its node's interruption came (NTH's interruption taint) or its
    /// instance was terminated by somebody other than the booster while the signal was live.
    Interrupted => "the recommendation was followed by an interruption",
    /// The signal's outcome cannot be told: the booster retired the node, or gave it back
    /// early, before an interruption could show.
    OutcomeUnknown => "the node was retired or given back before an interruption could show: outcome unknown",
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
