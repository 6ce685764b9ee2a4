//! What the pods of a signalled node tell the engine ([`PodCensus`]).

use k8s_openapi::api::core::v1::Pod;

use super::pods::{pod_name, pod_role, PodRole, PodRules};

/// What the pods of a signalled node tell before and while it is drained.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodCensus {
    /// Pods a drain still has to see gone.
    pub to_evict: u32,
    /// Pods a drain may never evict, `namespace/name: why`, cut as the core expects.
    pub unevictable: Vec<String>,
    /// Pods somebody is evicting now (the Eviction API's `DisruptionTarget` condition).
    pub evicted_by_others: u32,
}

impl PodCensus {
    /// Only the count, as a running drain knows it (the rest matters before a drain).
    pub fn count(to_evict: u32) -> Self {
        PodCensus {
            to_evict,
            ..PodCensus::default()
        }
    }

    /// Counts `pods` under `rules`.
    pub fn of(pods: &[Pod], rules: &PodRules) -> Self {
        let mut c = PodCensus::default();
        let mut unevictable = 0usize;
        for p in pods {
            match pod_role(p, rules) {
                PodRole::Ignore => continue,
                PodRole::Keep(why) => {
                    unevictable += 1;
                    if c.unevictable.len() < booster_core::snapshot::UNEVICTABLE_LISTED {
                        c.unevictable.push(format!("{}: {why}", pod_name(p)));
                    }
                }
                PodRole::Evict => {}
            }
            c.to_evict += 1;
            if being_evicted(p) {
                c.evicted_by_others += 1;
            }
        }
        let more = unevictable.saturating_sub(c.unevictable.len());
        if more > 0 {
            c.unevictable.push(format!("… and {more} more"));
        }
        c
    }
}

/// The condition the apiserver sets on a pod when it allows an eviction of it (Kubernetes
/// 1.26 and later): whoever asked, the pod is on its way out by an eviction.
fn being_evicted(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.type_ == "DisruptionTarget"
                    && c.status == "True"
                    && c.reason.as_deref() == Some("EvictionByEvictionAPI")
            })
        })
}
