//! What the adapters observed, at one instant: the only input of [`crate::engine::decide`].
//!
//! A snapshot is plain data with a JSON form (see `examples/snapshot.json` at the
//! repository root, and `aws-spots-booster plan --snapshot FILE`). Fields that an
//! adapter may not know default to "absent", so a hand-written snapshot stays short.

use std::collections::BTreeMap;

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
}

fn yes() -> bool {
    true
}

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
    /// Carries NTH's `aws-node-termination-handler/rebalance-recommendation` taint.
    #[serde(default)]
    pub rebalance_taint: bool,
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
    #[serde(default)]
    pub pods_to_evict: u32,
}

/// Where a signal was seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SignalSource {
    /// A `RebalanceRecommendation` Event (they expire after the apiserver's event TTL).
    Event,
    /// NTH's rebalance-recommendation taint on the Node.
    Taint,
}

/// A rebalance recommendation for one node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Signal {
    /// The node it is about.
    pub node: String,
    /// When it was issued or first seen.
    pub at: Timestamp,
    /// Where it was seen.
    pub source: SignalSource,
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
