//! Placeholder pods: the capacity a signal asks for where the autoscaler in charge
//! provisions for pods (Karpenter, or Cluster Autoscaler under `--boost-mode placeholder`).
//!
//! One placeholder per evictable pod of the signalled node: a pause container asking what
//! that pod's containers ask for (CPU and memory), with its node selector, node affinity and
//! tolerations, so the autoscaler provisions a node those pods may land on, by its own rules.
//! Their PriorityClass is below every workload, so the evicted pods preempt them. They are
//! bare pods (nothing recreates one that was preempted) with no owner (Karpenter and
//! Cluster Autoscaler take a pod a Node owns for a static pod and provision nothing for it;
//! the engine deletes every set whose signal is gone), named after the node and the
//! signal's time (a repeated create is a 409, never a second set).

mod pods;
mod sets;
mod sizing;

use booster_core::Timestamp;

pub use pods::pods_for;
pub use sets::sets_of;

/// Karpenter's opt-out of disruption, on pods and nodes: placeholder pods carry it, so
/// that Karpenter does not consolidate a replacement away under them.
pub const DO_NOT_DISRUPT: &str = "karpenter.sh/do-not-disrupt";

/// The label every placeholder carries (the watch selects on it).
pub const LABEL: &str = "aws-spots-booster/placeholder";
/// The label naming (a hash of) the signalled node, to delete a node's set in one call.
pub const FOR_LABEL: &str = "aws-spots-booster/placeholder-for";
/// The annotation naming the signalled node.
pub const FOR_ANNOTATION: &str = "aws-spots-booster/placeholder-for";
/// The annotation carrying the signal's time (Unix milliseconds).
pub const SIGNAL_ANNOTATION: &str = "aws-spots-booster/signal-at";
/// The annotation carrying how many pods the set has in all: a set missing some (a create
/// refused half-way, a pod deleted by hand) is told from a whole one, and completed.
pub const SET_SIZE_ANNOTATION: &str = "aws-spots-booster/set-size";
/// The most placeholders one signal gets: a node with more pods gets this many, each the
/// size of the pods' average (an autoscaler packs them the same way).
pub const MAX_PER_SIGNAL: usize = 64;

/// The namespace placeholders live in by default: their own, so that the right to create
/// pods there reaches no service account but that namespace's `default` (pods created in
/// the booster's namespace could run as any service account of it, kube-system's among
/// them).
pub const DEFAULT_NAMESPACE: &str = "aws-spots-booster-placeholders";

/// What a placeholder pod is made of, and where it lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlaceholderSettings {
    /// Their namespace (`--placeholder-namespace`), watched in every mode.
    pub namespace: String,
    /// The pause image (`--placeholder-image`).
    pub image: String,
    /// The PriorityClass, below every workload's (`--placeholder-priority-class`; the chart
    /// makes it, value -10: preempted first, and not below Cluster Autoscaler's
    /// expendable cutoff, so CA still scales up for them).
    pub priority_class: String,
}

impl Default for PlaceholderSettings {
    fn default() -> Self {
        PlaceholderSettings {
            namespace: DEFAULT_NAMESPACE.into(),
            image: "registry.k8s.io/pause:3.10".into(),
            priority_class: "aws-spots-booster-placeholder".into(),
        }
    }
}

/// A stable 12-hex-digit hash (FNV-1a): label values and names must be short.
fn hash(parts: &[&[u8]]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.iter().chain(&[0u8]) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{:012x}", h & 0xffff_ffff_ffff)
}

/// The label value for `node`'s placeholders.
pub fn for_label(node: &str) -> String {
    hash(&[node.as_bytes()])
}

/// The name of the `i`-th placeholder of `node`'s signal at `signal_at`.
pub fn name(node: &str, signal_at: Timestamp, i: usize) -> String {
    let at = signal_at.unix_millis().to_string();
    format!("asb-ph-{}-{i}", hash(&[node.as_bytes(), at.as_bytes()]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_short_and_per_signal() {
        let t = Timestamp::from_unix_millis(1_700_000_000_000);
        let a = name("ip-10-0-0-1.eu-west-1.compute.internal", t, 3);
        assert_eq!(a, name("ip-10-0-0-1.eu-west-1.compute.internal", t, 3));
        assert!(a.len() < 30, "{a}");
        assert_ne!(
            a,
            name(
                "ip-10-0-0-1.eu-west-1.compute.internal",
                t.plus(booster_core::Dur::from_secs(1)),
                3
            )
        );
        assert_eq!(for_label("n").len(), 12);
    }
}
