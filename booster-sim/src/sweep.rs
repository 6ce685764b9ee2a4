//! The follow-through sweep: one scenario run at several chances that a recommendation
//! becomes an interruption, under each policy, averaged over seeds. The figures say when
//! standing by wins over draining on the recommendation, and what it costs.

use serde::{Deserialize, Serialize};

use crate::{run, Policy, Scenario};

/// The chances swept by default, from "hardly ever" to "almost always".
pub const FOLLOW_THROUGH: [f64; 8] = [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9];
/// Seeds averaged per point (runs differ by which nodes, when, and which are interrupted).
pub const SEEDS_PER_POINT: u64 = 5;

/// The figures of one policy at one follow-through, averaged over the seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepPoint {
    /// The chance that a recommendation is followed by an interruption.
    pub follow_through: f64,
    /// The policy.
    pub policy: Policy,
    /// Pods evicted or killed with their node, per recommendation.
    pub disruptions_per_recommendation: f64,
    /// Node-seconds paid for and not needed.
    pub extra_node_seconds: f64,
    /// Node-seconds of capacity the workload lacked.
    pub capacity_deficit_node_seconds: f64,
    /// Pod-seconds without a node.
    pub pending_pod_seconds: f64,
    /// Pods that died with their node (the two-minute notice was too short to evict them).
    pub pods_killed: f64,
    /// Recommendations delivered (per run).
    pub recommendations: f64,
}

/// Runs `base` with every signal's follow-through set to each of `chances`, under each
/// of `policies`, at `SEEDS_PER_POINT` seeds from `seed`.
pub fn sweep(base: &Scenario, chances: &[f64], policies: &[Policy], seed: u64) -> Vec<SweepPoint> {
    let mut out = Vec::with_capacity(chances.len() * policies.len());
    for &p in chances {
        let mut sc = base.clone();
        for s in &mut sc.signals {
            s.follow_through = Some(p);
        }
        for &policy in policies {
            out.push(point(&sc, p, policy, seed));
        }
    }
    out
}

fn point(sc: &Scenario, follow_through: f64, policy: Policy, seed: u64) -> SweepPoint {
    let n = SEEDS_PER_POINT as f64;
    let mut sum = SweepPoint {
        follow_through,
        policy,
        disruptions_per_recommendation: 0.0,
        extra_node_seconds: 0.0,
        capacity_deficit_node_seconds: 0.0,
        pending_pod_seconds: 0.0,
        pods_killed: 0.0,
        recommendations: 0.0,
    };
    for s in seed..seed + SEEDS_PER_POINT {
        let r = run(sc, policy, s);
        sum.disruptions_per_recommendation += r.disruptions_per_recommendation / n;
        sum.extra_node_seconds += r.over_provisioned_node_seconds / n;
        sum.capacity_deficit_node_seconds += r.capacity_deficit_node_seconds / n;
        sum.pending_pod_seconds += r.pending_pod_seconds as f64 / n;
        sum.pods_killed += r.pods_killed as f64 / n;
        sum.recommendations += f64::from(r.signals) / n;
    }
    sum
}
