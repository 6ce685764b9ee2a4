//! What the adapters observed, at one instant: the only input of [`crate::engine::decide`].
//!
//! A snapshot is plain data with a JSON form (see `examples/snapshot.json` at the
//! repository root, and `aws-spots-booster plan --snapshot FILE`). Fields that an
//! adapter may not know default to "absent", so a hand-written snapshot stays short.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::ca_status::CaStatus;
use crate::ledger::Ledger;
use crate::time::{Dur, Timestamp};

/// Everything the engine knows at `now`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Snapshot {
    /// The instant the snapshot describes; the core never reads a clock.
    pub now: Timestamp,
    /// cluster-autoscaler's status, as read from its ConfigMap.
    pub ca_status: CaObservation,
    /// Auto Scaling groups as the cloud reports them.
    #[serde(default)]
    pub groups: Vec<Group>,
    /// Kubernetes Nodes.
    #[serde(default)]
    pub nodes: Vec<Node>,
    /// Rebalance recommendations seen (Events, taints).
    #[serde(default)]
    pub signals: Vec<Signal>,
    /// Durable state of earlier decisions, as stored in the cluster.
    #[serde(default)]
    pub ledger: Ledger,
    /// Set when Auto Scaling did not answer this pass: `groups` are the last ones it did
    /// describe, and every step that needs its fresh answer or a call to it waits (hold
    /// `cloudUnavailable`); the Kubernetes-only steps go on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_unavailable: Option<String>,
    /// The booster's placeholder pods, one set per signal they stand for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placeholders: Vec<Placeholders>,
    /// Writes that failed lately, per write and object, as the driver recorded them (see
    /// [`crate::failures`]): the engine backs them off and gives a signal back after
    /// repeated refusals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<crate::failures::Failure>,
}

/// The placeholder pods made for one signal, as observed (the adapter finds them by their
/// label, so a restarted controller sees the ones it made before).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Placeholders {
    /// The signalled node they ask capacity for.
    pub node: String,
    /// The signal's time, as recorded when they were made: a set of an earlier signal of
    /// the same node is not this signal's.
    pub signal_at: Timestamp,
    /// How many there are.
    pub pods: u32,
    /// How many the set was made with (0: not known, as for sets made by older
    /// versions): a set with fewer pods is completed, and its drain waits for all.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub wanted: u32,
    /// How many run on a Ready node other than the signalled one.
    pub running: u32,
    /// The nodes they run on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
}

impl Snapshot {
    /// Nodes cordoned by NTH (one of `managers`) with nothing that says why: no NTH taint
    /// of any kind and no Event naming them, and no entry of ours. That is what NTH's
    /// defaults (`taintNode=false`, `emitKubernetesEvents=false`) leave on a rebalance
    /// recommendation, and the booster cannot tell it from any other cordon: such nodes
    /// are reported so that the setup is fixed, never acted on.
    pub fn unexplained_nth_cordons(&self, managers: &BTreeSet<String>) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|n| {
                n.unschedulable
                    && n.cordoned_by.as_ref().is_some_and(|m| managers.contains(m))
                    && !n.rebalance_taint
                    && !n.interruption_taint
                    && !self.ledger.entries.contains_key(&n.name)
                    && !self.signals.iter().any(|s| s.node == n.name)
            })
            .map(|n| n.name.as_str())
            .collect()
    }
}

/// cluster-autoscaler's status as the Kubernetes adapter found it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum CaObservation {
    /// No ConfigMap, or no `status` key in it.
    #[default]
    Missing,
    /// The ConfigMap exists but its status could not be parsed.
    Invalid {
        /// The parser's message.
        error: String,
    },
    /// A parsed status.
    #[serde(rename_all = "camelCase")]
    Parsed {
        /// The status.
        status: CaStatus,
        /// When cluster-autoscaler last wrote it (its `last-updated` annotation, or the
        /// time inside the status).
        updated_at: Timestamp,
    },
}

impl CaObservation {
    /// The status's age at `now`, when there is a status.
    pub fn age(&self, now: Timestamp) -> Option<Dur> {
        match self {
            CaObservation::Parsed { updated_at, .. } => Some(now.since(*updated_at)),
            _ => None,
        }
    }
}

/// An Auto Scaling group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// The Auto Scaling group name (as cluster-autoscaler reports it).
    pub name: String,
    /// `MinSize`.
    pub min_size: u32,
    /// `MaxSize`.
    pub max_size: u32,
    /// `DesiredCapacity`.
    pub desired: u32,
    /// Instances in the group.
    #[serde(default)]
    pub instances: Vec<Instance>,
    /// The group's tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// `CapacityRebalance`: AWS itself launches a replacement for an instance with a
    /// rebalance recommendation and terminates the old one (EKS managed spot node groups
    /// have it on). The booster never boosts such a group.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub capacity_rebalance: bool,
    /// `SuspendedProcesses` by name (`Launch`, `AZRebalance`, …).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub suspended_processes: BTreeSet<String>,
    /// The group's Availability Zones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub azs: Vec<String>,
    /// Instance weights (`WeightedCapacity`) of the `MixedInstancesPolicy` overrides, by
    /// instance type: min, max and desired are then in these units. Empty: every instance
    /// is one unit.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub weights: BTreeMap<String, u32>,
    /// A warm pool is configured (its instances are not in `instances`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warm_pool: bool,
    /// Failed scaling activities (DescribeScalingActivities), newest first; read only for
    /// groups with a boost in flight.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub launch_failures: Vec<LaunchFailure>,
    /// Raises of desired capacity in the scaling activities, newest first; read with
    /// [`Group::launch_failures`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub raises: Vec<Raise>,
    /// The scaling activities were read this pass: an empty [`Group::raises`] then means
    /// that no raise launched anything, not that nobody looked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub activities_read: bool,
    /// What the group is: an Auto Scaling group, or a Karpenter NodePool (whose instances
    /// are its NodeClaims).
    #[serde(default, skip_serializing_if = "GroupKind::is_auto_scaling")]
    pub kind: GroupKind,
}

/// Where a group's capacity comes from, and how a node of it is retired.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum GroupKind {
    /// An EC2 Auto Scaling group: boosted by desired capacity (or placeholders with
    /// [`crate::config::BoostMode::Placeholder`]), retired by
    /// `TerminateInstanceInAutoScalingGroup`.
    #[default]
    AutoScaling,
    /// A Karpenter NodePool: no desired capacity, so boosted by placeholder pods that
    /// Karpenter provisions for; a node is retired by deleting its NodeClaim (Karpenter
    /// terminates the instance). `min_size`, `max_size` and `desired` mean nothing here.
    NodePool,
}

impl GroupKind {
    fn is_auto_scaling(&self) -> bool {
        *self == GroupKind::AutoScaling
    }
}

/// A scaling activity that failed: a launch that did not happen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchFailure {
    /// When it started.
    pub at: Timestamp,
    /// AWS's `StatusMessage` (`InsufficientInstanceCapacity`, …), cut to 300 characters.
    #[serde(default)]
    pub message: String,
}

/// A change of desired capacity upwards, as a scaling activity's cause tells it ("... changing
/// the desired capacity from 3 to 4"): the evidence that a raise took effect, whoever made
/// it, even after desired capacity came down again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Raise {
    /// When desired capacity changed (the cause's own time, else the activity's start).
    pub at: Timestamp,
    /// Desired capacity before.
    pub from: u32,
    /// Desired capacity after.
    pub to: u32,
}

/// What a group's scaling activities tell (DescribeScalingActivities).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activities {
    /// Launches that failed, newest first.
    pub failures: Vec<LaunchFailure>,
    /// Raises of desired capacity, newest first.
    pub raises: Vec<Raise>,
}

impl Group {
    /// The weight of `instance` in this group's units: its `WeightedCapacity`, else its
    /// type's override, else 1.
    pub fn weight_of(&self, instance: &Instance) -> u32 {
        instance
            .weight
            .or_else(|| self.weights.get(&instance.instance_type).copied())
            .unwrap_or(1)
            .max(1)
    }

    /// Whether instance weights are in play (desired capacity is not an instance count).
    pub fn weighted(&self) -> bool {
        !self.weights.is_empty()
            || self
                .instances
                .iter()
                .any(|i| i.weight.is_some_and(|w| w != 1))
    }

    /// The capacity of the instances that are not leaving, in units.
    pub fn capacity(&self) -> u32 {
        self.instances
            .iter()
            .filter(|i| !i.lifecycle.is_leaving() && i.lifecycle != Lifecycle::Other)
            .map(|i| self.weight_of(i))
            .sum()
    }

    /// Whether `process` (e.g. `Launch`, `AZRebalance`) is suspended.
    pub fn suspended(&self, process: &str) -> bool {
        self.suspended_processes.contains(process)
    }
}

/// One instance of a group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    /// EC2 instance id, `i-...`.
    pub id: String,
    /// Availability Zone.
    #[serde(default)]
    pub az: String,
    /// Lifecycle state, simplified.
    pub lifecycle: Lifecycle,
    /// Whether the Auto Scaling group considers it healthy.
    #[serde(default = "yes")]
    pub healthy: bool,
    /// Whether scale-in protection is set.
    #[serde(default)]
    pub protected_from_scale_in: bool,
    /// Its instance type.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub instance_type: String,
    /// `WeightedCapacity`, when the group has instance weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
}

fn yes() -> bool {
    true
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// How many unevictable pods a [`Node`] names one by one.
pub const UNEVICTABLE_LISTED: usize = 10;

/// An instance's lifecycle state, folded from the Auto Scaling API's many states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Lifecycle {
    /// `Pending`, `Pending:Wait`, `Pending:Proceed`.
    Pending,
    /// `InService`.
    InService,
    /// `Terminating*`, `Terminated`: on its way out.
    Terminating,
    /// `Standby`, `Detaching`, `Detached`, `EnteringStandby`, warm pool states and the rest.
    Other,
}

impl Lifecycle {
    /// Folds an Auto Scaling `LifecycleState` string.
    pub fn from_aws(state: &str) -> Self {
        match state {
            "Pending" | "Pending:Wait" | "Pending:Proceed" => Lifecycle::Pending,
            "InService" => Lifecycle::InService,
            s if s.starts_with("Terminat") => Lifecycle::Terminating,
            _ => Lifecycle::Other,
        }
    }

    /// Whether the instance is leaving (or gone): retiring it again is pointless.
    pub fn is_leaving(self) -> bool {
        matches!(self, Lifecycle::Terminating)
    }
}

/// A Kubernetes Node, reduced to what the engine reads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    /// `metadata.name`.
    pub name: String,
    /// The EC2 instance id, from `spec.providerID` (see [`instance_id_from_provider_id`]).
    #[serde(default)]
    pub instance_id: Option<String>,
    /// `metadata.creationTimestamp`.
    pub created_at: Timestamp,
    /// The `Ready` condition is `True`.
    #[serde(default)]
    pub ready: bool,
    /// `spec.unschedulable` (cordoned).
    #[serde(default)]
    pub unschedulable: bool,
    /// Carries NTH's `aws-node-termination-handler/rebalance-recommendation` taint. Only a
    /// principal that may write Nodes can set it, so it proves a signal on its own.
    #[serde(default)]
    pub rebalance_taint: bool,
    /// When the write that carries NTH's taint was made: the server-recorded time of the
    /// `managedFields` entry that owns the taints, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tainted_at: Option<Timestamp>,
    /// Carries one of NTH's taints for an instance that is leaving: a spot interruption
    /// notice (`aws-node-termination-handler/spot-itn`), an Auto Scaling lifecycle
    /// termination (`…/asg-lifecycle-termination`) or a scheduled event
    /// (`…/scheduled-maintenance`). Such a node is never given back.
    #[serde(default)]
    pub interruption_taint: bool,
    /// Carries the booster's `aws-spots-booster/standby` taint (`PreferNoSchedule`): a
    /// replacement held for a node standing by for its interruption.
    #[serde(default)]
    pub standby_taint: bool,
    /// While cordoned: the field manager that set `spec.unschedulable` (from
    /// `managedFields`, recorded by the apiserver: `node-termination-handler` for NTH's
    /// cordon, `kubectl-cordon` for an operator's). An Event cannot fake it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cordoned_by: Option<String>,
    /// When that manager last wrote the node (server time), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cordoned_at: Option<Timestamp>,
    /// Carries `cluster-autoscaler.kubernetes.io/scale-down-disabled=true`, whoever set it.
    #[serde(default)]
    pub scale_down_disabled: bool,
    /// The signalled node this node stands, or stood, in for (the booster's own annotation).
    /// While `scale_down_disabled` is also set the protection is on; after `Unprotect` the
    /// annotation stays as a marker, so that one replacement never stands in for two
    /// signals. A scale-down protection without it belongs to somebody else and is never
    /// removed.
    #[serde(default)]
    pub protected_for: Option<String>,
    /// Pods a drain still has to evict (DaemonSet, mirror and terminal pods not counted).
    /// Counted for signalled nodes the booster has not given back; 0 for the others.
    #[serde(default)]
    pub pods_to_evict: u32,
    /// Pods of a signalled node not yet drained that a drain may never evict, as
    /// `namespace/name: why` (at most [`UNEVICTABLE_LISTED`], then one `… and N more`): a
    /// drain is not started while there are any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unevictable: Vec<String>,
    /// Pods of a signalled node not yet drained by the booster that somebody is evicting
    /// now: they carry the `DisruptionTarget` condition (reason `EvictionByEvictionAPI`)
    /// that the apiserver sets on an eviction it allows.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub evicted_by_others: u32,
    /// The booster's mark of a boost made for this node's signal: its ledger entry as it
    /// was written on the node before the `SetDesiredCapacity` call, and removed when the
    /// node is given back. Deleting the ledger does not remove it; the engine rebuilds the
    /// entry from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boost_mark: Option<crate::ledger::Entry>,
    /// The Karpenter NodeClaim that owns the Node (its owner reference), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodeclaim: Option<String>,
    /// Carries `karpenter.sh/do-not-disrupt: "true"`: its owner asked that nothing disrupts
    /// it, so it is never drained by the booster (it waits for its interruption or expiry).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub do_not_disrupt: bool,
}

/// What a claimed signal was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SignalSource {
    /// A `RebalanceRecommendation` Event (they expire after the apiserver's event TTL).
    /// Anyone allowed to create Events can write one, so an Event is only a claim: it
    /// counts once the Node itself corroborates it (see [`crate::engine`]'s trust rules).
    Event,
}

/// A claimed rebalance recommendation for one node, as read from an Event. Every field but
/// `created_at` is written by whoever posted the Event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Signal {
    /// The node it names.
    pub node: String,
    /// The time it claims (NTH's `… cordoned at <time>`), else the Event's own times.
    pub at: Timestamp,
    /// Where it was read.
    pub source: SignalSource,
    /// `namespace/name` of the Event: counts and logs a rejected Event once.
    #[serde(default)]
    pub id: String,
    /// The Event's namespace.
    #[serde(default)]
    pub namespace: String,
    /// Its `source.component` (or `reportingComponent`).
    #[serde(default)]
    pub component: String,
    /// Its `instance-id` annotation (NTH sets it), to be checked against the Node's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// `metadata.creationTimestamp`: set by the apiserver, so the one time a poster cannot
    /// choose. `None` when unknown (hand-written snapshots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
}

impl Signal {
    /// An Event signal for `node` claiming `at`, with every other field empty.
    pub fn event(node: &str, at: Timestamp) -> Self {
        Signal {
            node: node.to_string(),
            at,
            source: SignalSource::Event,
            id: String::new(),
            namespace: String::new(),
            component: String::new(),
            instance_id: None,
            created_at: None,
        }
    }
}

/// Extracts the instance id from an AWS `spec.providerID`: `aws:///eu-west-1a/i-0abc` ->
/// `i-0abc`. Anything else (another cloud, a malformed id) gives `None`.
pub fn instance_id_from_provider_id(provider_id: &str) -> Option<&str> {
    let rest = provider_id.strip_prefix("aws://")?;
    let id = rest.rsplit('/').next()?;
    let valid =
        id.len() > 2 && id.starts_with("i-") && id[2..].bytes().all(|b| b.is_ascii_alphanumeric());
    valid.then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_ids() {
        assert_eq!(
            instance_id_from_provider_id("aws:///eu-west-1a/i-0abc1234def567890"),
            Some("i-0abc1234def567890")
        );
        assert_eq!(
            instance_id_from_provider_id("aws:///i-0abc"),
            Some("i-0abc")
        );
        for bad in [
            "",
            "gce://p/z/n",
            "aws:///eu-west-1a/",
            "aws:///eu-west-1a/i-",
            "i-0abc",
            "aws:///a/i-0a b",
        ] {
            assert_eq!(instance_id_from_provider_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn lifecycle_folding() {
        assert_eq!(Lifecycle::from_aws("Pending:Wait"), Lifecycle::Pending);
        assert_eq!(Lifecycle::from_aws("InService"), Lifecycle::InService);
        assert_eq!(
            Lifecycle::from_aws("Terminating:Proceed"),
            Lifecycle::Terminating
        );
        assert_eq!(Lifecycle::from_aws("Terminated"), Lifecycle::Terminating);
        assert_eq!(Lifecycle::from_aws("Warmed:Running"), Lifecycle::Other);
    }
}
