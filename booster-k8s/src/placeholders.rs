//! Placeholder pods: the capacity a signal asks for where the autoscaler in charge
//! provisions for pods (Karpenter, or Cluster Autoscaler under `--boost-mode placeholder`).
//!
//! One placeholder per evictable pod of the signalled node: a pause container asking what
//! that pod's containers ask for (CPU and memory), with its node selector, node affinity and
//! tolerations, so the autoscaler provisions a node those pods may land on, by its own rules.
//! Their PriorityClass is below every workload, so the evicted pods preempt them. They are
//! bare pods (nothing recreates one that was preempted), owned by the signalled Node (the
//! garbage collector deletes them with it), and named after the node and the signal's time
//! (a repeated create is a 409, never a second set).

use std::collections::BTreeMap;

use booster_core::{Placeholders, Timestamp};
use k8s_openapi::api::core::v1::{
    Affinity, Container, Node as KNode, Pod, PodSpec, ResourceRequirements, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

/// The label every placeholder carries (the watch selects on it).
pub const LABEL: &str = "aws-spots-booster/placeholder";
/// The label naming (a hash of) the signalled node, to delete a node's set in one call.
pub const FOR_LABEL: &str = "aws-spots-booster/placeholder-for";
/// The annotation naming the signalled node.
pub const FOR_ANNOTATION: &str = "aws-spots-booster/placeholder-for";
/// The annotation carrying the signal's time (Unix milliseconds).
pub const SIGNAL_ANNOTATION: &str = "aws-spots-booster/signal-at";
/// The most placeholders one signal gets: a node with more pods gets this many, each the
/// size of the pods' average (an autoscaler packs them the same way).
pub const MAX_PER_SIGNAL: usize = 64;

/// What a placeholder pod is made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlaceholderSettings {
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

/// CPU in millicores, from a Kubernetes quantity (`250m`, `1`, `0.5`).
fn cpu_millis(q: &Quantity) -> Option<u64> {
    let s = q.0.trim();
    if let Some(m) = s.strip_suffix('m') {
        return m.parse::<u64>().ok();
    }
    let v: f64 = s.parse().ok()?;
    (v.is_finite() && v >= 0.0).then(|| (v * 1000.0).ceil() as u64)
}

/// Bytes, from a Kubernetes quantity (`128Mi`, `1G`, `1e9`, `500k`).
fn bytes(q: &Quantity) -> Option<u64> {
    let s = q.0.trim();
    const SUFFIXES: [(&str, f64); 12] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    let (num, mult) = SUFFIXES
        .iter()
        .find_map(|(suf, m)| s.strip_suffix(suf).map(|n| (n, *m)))
        .unwrap_or((s, 1.0));
    let v: f64 = num.parse().ok()?;
    (v.is_finite() && v >= 0.0).then(|| (v * mult).ceil() as u64)
}

/// What a pod's containers request: (CPU millicores, memory bytes). Unreadable quantities
/// count as 0 (a placeholder too small is better than none).
fn requests(p: &Pod) -> (u64, u64) {
    let mut cpu = 0u64;
    let mut mem = 0u64;
    for c in p.spec.iter().flat_map(|s| s.containers.iter()) {
        if let Some(r) = c.resources.as_ref().and_then(|r| r.requests.as_ref()) {
            cpu += r.get("cpu").and_then(cpu_millis).unwrap_or(0);
            mem += r.get("memory").and_then(bytes).unwrap_or(0);
        }
    }
    (cpu, mem)
}

/// The placeholder pods for `node`'s signal at `signal_at`, sized and placed after `pods`
/// (the node's evictable pods), in `namespace`.
pub fn pods_for(
    node: &KNode,
    signal_at: Timestamp,
    pods: &[&Pod],
    namespace: &str,
    settings: &PlaceholderSettings,
) -> Vec<Pod> {
    let node_name = node.metadata.name.clone().unwrap_or_default();
    let owner = node.metadata.uid.clone().map(|uid| OwnerReference {
        api_version: "v1".into(),
        kind: "Node".into(),
        name: node_name.clone(),
        uid,
        ..OwnerReference::default()
    });
    // Past the cap, each placeholder asks for the average of the pods it stands for.
    let shares: Vec<(&Pod, (u64, u64))> = if pods.len() <= MAX_PER_SIGNAL {
        pods.iter().map(|p| (*p, requests(p))).collect()
    } else {
        let (c, m) = pods
            .iter()
            .map(|p| requests(p))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        let n = MAX_PER_SIGNAL as u64;
        pods.iter()
            .take(MAX_PER_SIGNAL)
            .map(|p| (*p, (c.div_ceil(n), m.div_ceil(n))))
            .collect()
    };
    shares
        .into_iter()
        .enumerate()
        .map(|(i, (src, (cpu, mem)))| {
            let spec = src.spec.clone().unwrap_or_default();
            let mut req = BTreeMap::new();
            req.insert("cpu".to_string(), Quantity(format!("{cpu}m")));
            req.insert("memory".to_string(), Quantity(mem.to_string()));
            Pod {
                metadata: ObjectMeta {
                    name: Some(name(&node_name, signal_at, i)),
                    namespace: Some(namespace.to_string()),
                    labels: Some(BTreeMap::from([
                        (LABEL.to_string(), "true".to_string()),
                        (FOR_LABEL.to_string(), for_label(&node_name)),
                        (
                            "app.kubernetes.io/managed-by".to_string(),
                            "aws-spots-booster".to_string(),
                        ),
                    ])),
                    annotations: Some(BTreeMap::from([
                        (FOR_ANNOTATION.to_string(), node_name.clone()),
                        (
                            SIGNAL_ANNOTATION.to_string(),
                            signal_at.unix_millis().to_string(),
                        ),
                    ])),
                    owner_references: owner.clone().map(|o| vec![o]),
                    ..ObjectMeta::default()
                },
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "pause".into(),
                        image: Some(settings.image.clone()),
                        resources: Some(ResourceRequirements {
                            requests: Some(req),
                            ..ResourceRequirements::default()
                        }),
                        security_context: Some(SecurityContext {
                            allow_privilege_escalation: Some(false),
                            read_only_root_filesystem: Some(true),
                            run_as_non_root: Some(true),
                            run_as_user: Some(65535),
                            ..SecurityContext::default()
                        }),
                        ..Container::default()
                    }],
                    priority_class_name: Some(settings.priority_class.clone()),
                    node_selector: spec.node_selector,
                    affinity: spec
                        .affinity
                        .and_then(|a| a.node_affinity)
                        .map(|na| Affinity {
                            node_affinity: Some(na),
                            ..Affinity::default()
                        }),
                    tolerations: spec.tolerations,
                    termination_grace_period_seconds: Some(0),
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    ..PodSpec::default()
                }),
                status: None,
            }
        })
        .collect()
}

/// The sets of placeholders among `pods` (the watch's), with how many run on a Ready node
/// other than the one they stand for (`ready` tells whether a node is Ready).
pub fn sets_of<'a>(
    pods: impl Iterator<Item = &'a Pod>,
    ready: impl Fn(&str) -> bool,
) -> Vec<Placeholders> {
    let mut sets: BTreeMap<(String, Timestamp), Placeholders> = BTreeMap::new();
    for p in pods {
        let ann = p.metadata.annotations.as_ref();
        let get = |k: &str| ann.and_then(|a| a.get(k));
        let (Some(node), Some(at)) = (
            get(FOR_ANNOTATION),
            get(SIGNAL_ANNOTATION).and_then(|v| v.trim().parse::<i64>().ok()),
        ) else {
            continue;
        };
        if p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let at = Timestamp::from_unix_millis(at);
        let set = sets
            .entry((node.clone(), at))
            .or_insert_with(|| Placeholders {
                node: node.clone(),
                signal_at: at,
                ..Placeholders::default()
            });
        set.pods += 1;
        let host = p.spec.as_ref().and_then(|s| s.node_name.as_deref());
        let running = p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
        if let Some(h) = host {
            if running && h != node && ready(h) {
                set.running += 1;
            }
            if !set.hosts.iter().any(|x| x == h) {
                set.hosts.push(h.to_string());
            }
        }
    }
    sets.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        let q = |s: &str| Quantity(s.into());
        assert_eq!(cpu_millis(&q("250m")), Some(250));
        assert_eq!(cpu_millis(&q("1")), Some(1000));
        assert_eq!(cpu_millis(&q("0.5")), Some(500));
        assert_eq!(cpu_millis(&q("x")), None);
        assert_eq!(bytes(&q("128Mi")), Some(134217728));
        assert_eq!(bytes(&q("1G")), Some(1_000_000_000));
        assert_eq!(bytes(&q("1e3")), Some(1000));
        assert_eq!(bytes(&q("-1")), None);
    }

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
