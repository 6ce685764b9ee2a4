//! The figures of one run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Policy;

/// Accumulators, filled by the world every simulated second.
#[derive(Clone, Debug, Default)]
pub(crate) struct Metrics {
    pub deficit_pod_seconds: u64,
    pub pending_pod_seconds: u64,
    pub over_pod_seconds: u64,
    pub calls: BTreeMap<&'static str, u64>,
    pub ca_calls: BTreeMap<&'static str, u64>,
    pub peak_concurrent_drains: u32,
    pub pods_killed: u64,
    pub evictions: u64,
    pub zero_ready_seconds: u64,
    pub surges_handed_over: u32,
    pub signals: u32,
    pub forged: u32,
    pub unsignalled_touched: u32,
    pub launched: u32,
    pub az_rebalance_terminations: u32,
    pub raises_without_launch: u32,
    pub interruptions: u32,
    pub desired_lowered: u32,
    pub decisions: u64,
    pub placeholders_made: u32,
    pub violations: Vec<String>,
    pub series: Vec<Sample>,
}

/// One point of the capacity chart (every 10 simulated seconds).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    /// Seconds since the start.
    pub t: u32,
    /// Nodes the workload needs (its pods over pods per node).
    pub needed_nodes: f64,
    /// Ready nodes whose instance is not terminating.
    pub ready_nodes: u32,
    /// Capacity that can hold the workload's pods now, in nodes: the room of schedulable
    /// Ready nodes plus the running pods of cordoned ones.
    pub usable_nodes: f64,
    /// Pods without a node.
    pub pending_pods: u32,
}

/// What one policy did on one scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Policy.
    pub policy: Policy,
    /// Seed.
    pub seed: u64,
    /// Simulated seconds.
    pub duration_seconds: u64,
    /// ∫ max(0, needed − usable) dt, in node-seconds: capacity the workload lacked.
    pub capacity_deficit_node_seconds: f64,
    /// ∫ pods without a node dt.
    pub pending_pod_seconds: u64,
    /// ∫ max(0, billed instances − needed) dt, in node-seconds: capacity paid for and not needed.
    pub over_provisioned_node_seconds: f64,
    /// Auto Scaling API calls the policy made, by operation (Cluster Autoscaler's not included).
    pub aws_calls: BTreeMap<String, u64>,
    /// Their sum.
    pub aws_calls_total: u64,
    /// Cluster Autoscaler's Auto Scaling calls, for reference.
    pub ca_aws_calls: BTreeMap<String, u64>,
    /// The most nodes being drained at once.
    pub peak_concurrent_drains: u32,
    /// Nodes cordoned at the end whose instance is not leaving.
    pub cordoned_at_end: u32,
    /// Pods that died with their node instead of being evicted.
    pub pods_killed: u64,
    /// Evictions granted.
    pub evictions: u64,
    /// Pods evicted or killed with their node, per recommendation delivered: what each
    /// recommendation costs the workload in restarts.
    #[serde(default)]
    pub disruptions_per_recommendation: f64,
    /// ∫ apps with no Ready pod dt, in seconds: outage of whole workloads (a workload of
    /// one evicted before its successor runs, or killed with its node).
    #[serde(default)]
    pub zero_ready_seconds: u64,
    /// Pods moved by surge (their successor Ready elsewhere before they went).
    #[serde(default)]
    pub surges_handed_over: u32,
    /// Rebalance recommendations delivered.
    pub signals: u32,
    /// Forged Events a tenant posted.
    #[serde(default)]
    pub forged_events: u32,
    /// Nodes the policy cordoned, drained or retired though no recommendation or
    /// interruption named them: forged Events made it act.
    #[serde(default)]
    pub unsignalled_nodes_touched: u32,
    /// Instances launched during the run (by desired capacity or by AWS itself).
    #[serde(default)]
    pub instances_launched: u32,
    /// Instances AWS terminated undrained to even out zones (AZRebalance).
    #[serde(default)]
    pub az_rebalance_terminations: u32,
    /// Raises of desired capacity by the policy that launched nothing (a weighted group's
    /// overage absorbed them).
    #[serde(default)]
    pub raises_without_launch: u32,
    /// Spot interruptions that happened.
    pub interruptions: u32,
    /// Times the policy set a group's desired capacity lower than it was.
    pub desired_lowered: u32,
    /// Decisions the controller made (loop passes).
    pub decisions: u64,
    /// Placeholder pods the policy made (placeholder mode).
    #[serde(default)]
    pub placeholders_made: u32,
    /// Placeholder pods still there at the end.
    #[serde(default)]
    pub placeholders_at_end: u32,
    /// Broken properties seen during the run (empty when all held).
    pub violations: Vec<String>,
    /// The capacity chart.
    pub series: Vec<Sample>,
}

/// What is left over when a run ends.
pub(crate) struct AtEnd {
    /// Nodes still cordoned whose instance is not leaving.
    pub cordoned: u32,
    /// Placeholder pods still there.
    pub placeholders: u32,
}

fn node_seconds(pod_seconds: u64, pods_per_node: u32) -> f64 {
    let v = pod_seconds as f64 / f64::from(pods_per_node.max(1));
    (v * 10.0).round() / 10.0
}

fn owned(m: &BTreeMap<&'static str, u64>) -> BTreeMap<String, u64> {
    m.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

impl Metrics {
    pub(crate) fn report(
        self,
        scenario: &str,
        policy: Policy,
        seed: u64,
        duration_seconds: u64,
        pods_per_node: u32,
        at_end: AtEnd,
    ) -> Report {
        Report {
            scenario: scenario.to_string(),
            policy,
            seed,
            duration_seconds,
            capacity_deficit_node_seconds: node_seconds(self.deficit_pod_seconds, pods_per_node),
            pending_pod_seconds: self.pending_pod_seconds,
            over_provisioned_node_seconds: node_seconds(self.over_pod_seconds, pods_per_node),
            aws_calls_total: self.calls.values().sum(),
            aws_calls: owned(&self.calls),
            ca_aws_calls: owned(&self.ca_calls),
            peak_concurrent_drains: self.peak_concurrent_drains,
            cordoned_at_end: at_end.cordoned,
            pods_killed: self.pods_killed,
            evictions: self.evictions,
            disruptions_per_recommendation: if self.signals == 0 {
                0.0
            } else {
                (self.evictions + self.pods_killed) as f64 / f64::from(self.signals)
            },
            zero_ready_seconds: self.zero_ready_seconds,
            surges_handed_over: self.surges_handed_over,
            signals: self.signals,
            forged_events: self.forged,
            unsignalled_nodes_touched: self.unsignalled_touched,
            instances_launched: self.launched,
            az_rebalance_terminations: self.az_rebalance_terminations,
            raises_without_launch: self.raises_without_launch,
            interruptions: self.interruptions,
            desired_lowered: self.desired_lowered,
            decisions: self.decisions,
            placeholders_made: self.placeholders_made,
            placeholders_at_end: at_end.placeholders,
            violations: self.violations,
            series: self.series,
        }
    }
}
