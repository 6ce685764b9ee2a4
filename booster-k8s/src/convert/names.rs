//! The annotation, label, taint and key names the booster reads and writes on Kubernetes
//! objects.

/// NTH's taint on a node with a rebalance recommendation.
pub const REBALANCE_TAINT: &str = "aws-node-termination-handler/rebalance-recommendation";
/// Cluster Autoscaler's scale-down opt-out annotation.
pub const SCALE_DOWN_DISABLED: &str = "cluster-autoscaler.kubernetes.io/scale-down-disabled";
/// The booster's `PreferNoSchedule` taint on a replacement held for a node standing by
/// for its interruption: pods go elsewhere while there is room.
pub const STANDBY_TAINT: &str = "aws-spots-booster/standby";
/// The booster's marker on a replacement: the signalled node it stands (or stood) in for.
pub const PROTECTED_FOR: &str = "aws-spots-booster/protected-for";
/// The booster's durable trace of a boost made for a signalled node (its ledger entry at
/// the time), written before `SetDesiredCapacity`: the ledger can be rebuilt from it.
pub const BOOST_MARK: &str = "aws-spots-booster/boost";
/// Karpenter's NodePool label on its nodes.
pub const NODEPOOL_LABEL: &str = "karpenter.sh/nodepool";
/// Karpenter's opt-out of disruption, on pods and nodes (the placeholders carry it too).
pub use crate::placeholders::DO_NOT_DISRUPT;
/// CA's annotation on its status ConfigMap.
pub const CA_LAST_UPDATED: &str = "cluster-autoscaler.kubernetes.io/last-updated";
/// The key of the ledger in its ConfigMap.
pub const LEDGER_KEY: &str = "ledger.json";

/// NTH's taints for an instance that is leaving (spot interruption notice, Auto Scaling
/// lifecycle termination, scheduled event; NTH's pkg/node), and Kubernetes' out-of-service
/// taint: a node with one is never given back.
pub const INTERRUPTION_TAINTS: [&str; 4] = [
    "aws-node-termination-handler/spot-itn",
    "aws-node-termination-handler/asg-lifecycle-termination",
    "aws-node-termination-handler/scheduled-maintenance",
    "node.kubernetes.io/out-of-service",
];
