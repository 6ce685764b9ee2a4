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

use std::collections::BTreeMap;

use booster_core::{Placeholders, Timestamp};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, Container, Node as KNode, Pod, PodSecurityContext, PodSpec,
    ResourceRequirements, SeccompProfile, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

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

/// What a pod asks the scheduler for: (CPU millicores, memory bytes), as the scheduler
/// counts it: its containers and sidecars (restartable init containers) together, or its
/// largest plain init container if that is more. Unreadable quantities count as 0 (a
/// placeholder too small is better than none).
fn requests(p: &Pod) -> (u64, u64) {
    let of = |c: &Container| {
        c.resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .map_or((0, 0), |r| {
                (
                    r.get("cpu").and_then(cpu_millis).unwrap_or(0),
                    r.get("memory").and_then(bytes).unwrap_or(0),
                )
            })
    };
    let Some(spec) = p.spec.as_ref() else {
        return (0, 0);
    };
    let sidecar = |c: &&Container| c.restart_policy.as_deref() == Some("Always");
    let inits = spec.init_containers.iter().flatten();
    let (mut cpu, mut mem) = spec
        .containers
        .iter()
        .chain(inits.clone().filter(sidecar))
        .map(of)
        .fold((0u64, 0u64), |a, b| (a.0 + b.0, a.1 + b.1));
    for (c, m) in inits.filter(|c| !sidecar(c)).map(of) {
        cpu = cpu.max(c);
        mem = mem.max(m);
    }
    (cpu, mem)
}

/// The placeholder pods for `node`'s signal at `signal_at`, sized and placed after `pods`
/// (the node's evictable pods).
pub fn pods_for(
    node: &KNode,
    signal_at: Timestamp,
    pods: &[&Pod],
    settings: &PlaceholderSettings,
) -> Vec<Pod> {
    let node_name = node.metadata.name.clone().unwrap_or_default();
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
    let size = shares.len().to_string();
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
                    namespace: Some(settings.namespace.clone()),
                    labels: Some(BTreeMap::from([
                        (LABEL.to_string(), "true".to_string()),
                        (FOR_LABEL.to_string(), for_label(&node_name)),
                        (
                            "app.kubernetes.io/managed-by".to_string(),
                            "aws-spots-booster".to_string(),
                        ),
                    ])),
                    annotations: Some(BTreeMap::from([
                        // Karpenter must not consolidate the replacement away while it
                        // holds them; once they are removed the node is Karpenter's again.
                        (DO_NOT_DISRUPT.to_string(), "true".to_string()),
                        (FOR_ANNOTATION.to_string(), node_name.clone()),
                        (
                            SIGNAL_ANNOTATION.to_string(),
                            signal_at.unix_millis().to_string(),
                        ),
                        (SET_SIZE_ANNOTATION.to_string(), size.clone()),
                    ])),
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
                        // What Pod Security's `restricted` level asks (the namespace
                        // enforces it): a pause container needs nothing more.
                        security_context: Some(SecurityContext {
                            allow_privilege_escalation: Some(false),
                            read_only_root_filesystem: Some(true),
                            run_as_non_root: Some(true),
                            run_as_user: Some(65535),
                            capabilities: Some(Capabilities {
                                drop: Some(vec!["ALL".into()]),
                                ..Capabilities::default()
                            }),
                            ..SecurityContext::default()
                        }),
                        ..Container::default()
                    }],
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            ..SeccompProfile::default()
                        }),
                        ..PodSecurityContext::default()
                    }),
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
        let size = get(SET_SIZE_ANNOTATION).and_then(|v| v.trim().parse::<u32>().ok());
        // A set is as big as its pods say, never more than a signal gets.
        set.wanted = set.wanted.max(size.unwrap_or(0).min(MAX_PER_SIGNAL as u32));
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

    fn pod_json(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    #[test]
    fn a_pod_asks_for_its_containers_or_its_largest_init_container() {
        let p = pod_json(serde_json::json!({"spec": {
            "initContainers": [
                {"name": "big-init", "resources": {"requests": {"cpu": "2", "memory": "64Mi"}}},
                {"name": "sidecar", "restartPolicy": "Always",
                 "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}}}],
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "128Mi"}}},
                {"name": "b", "resources": {"requests": {"cpu": "x"}}}]}}));
        // CPU: the init container's 2 cores beat 250m + 100m; memory: 128Mi + 32Mi beat 64Mi.
        assert_eq!(requests(&p), (2000, 160 * 1024 * 1024));
        assert_eq!(requests(&Pod::default()), (0, 0));
    }

    #[test]
    fn placeholders_copy_where_the_pods_may_land_and_nothing_else() {
        let node: KNode = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n1", "uid": "u-1"}}))
        .expect("node");
        let app = pod_json(serde_json::json!({
            "metadata": {"name": "app", "namespace": "shop"},
            "spec": {
                "serviceAccountName": "shop-admin",
                "nodeSelector": {"karpenter.sh/nodepool": "spot"},
                "tolerations": [{"key": "spot", "operator": "Exists"}],
                "affinity": {
                    "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchExpressions": [
                            {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["a"]}]}]}},
                    "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                        {"topologyKey": "kubernetes.io/hostname", "labelSelector": {}}]}},
                "volumes": [{"name": "secret", "secret": {"secretName": "db"}}],
                "containers": [{"name": "c", "image": "shop", "volumeMounts": [{"name": "secret", "mountPath": "/s"}],
                                "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}]}}));
        let at = Timestamp::from_unix_millis(1_700_000_000_000);
        let settings = PlaceholderSettings::default();
        let made = pods_for(&node, at, &[&app, &app], &settings);
        assert_eq!(made.len(), 2);
        assert_ne!(made[0].metadata.name, made[1].metadata.name);
        let p = &made[0];
        assert_eq!(p.metadata.namespace.as_deref(), Some(DEFAULT_NAMESPACE));
        let ann = p.metadata.annotations.as_ref().expect("annotations");
        assert_eq!(ann[FOR_ANNOTATION], "n1");
        assert_eq!(ann[SIGNAL_ANNOTATION], "1700000000000");
        assert_eq!(ann[DO_NOT_DISRUPT], "true");
        // No owner: Karpenter (and Cluster Autoscaler) take a pod a Node owns for a static
        // pod and provision nothing for it.
        assert_eq!(p.metadata.owner_references, None);
        let spec = p.spec.as_ref().expect("spec");
        assert_eq!(
            spec.node_selector,
            app.spec.as_ref().expect("set").node_selector
        );
        assert_eq!(
            spec.tolerations,
            app.spec.as_ref().expect("set").tolerations
        );
        let affinity = spec.affinity.as_ref().expect("affinity");
        assert!(affinity.node_affinity.is_some() && affinity.pod_anti_affinity.is_none());
        // Nothing of the pod's identity or data: no service account, no volume, no token.
        assert_eq!(spec.service_account_name, None);
        assert_eq!(spec.volumes, None);
        assert_eq!(spec.automount_service_account_token, Some(false));
        assert_eq!(
            spec.priority_class_name.as_deref(),
            Some("aws-spots-booster-placeholder")
        );
        assert_eq!(ann[SET_SIZE_ANNOTATION], "2");
        // Pod Security `restricted`, which the namespace enforces.
        let psc = spec
            .security_context
            .as_ref()
            .expect("pod security context");
        assert_eq!(psc.run_as_non_root, Some(true));
        assert_eq!(
            psc.seccomp_profile.as_ref().map(|p| p.type_.as_str()),
            Some("RuntimeDefault")
        );
        let c = &spec.containers[0];
        let sc = c
            .security_context
            .as_ref()
            .expect("container security context");
        assert_eq!(sc.allow_privilege_escalation, Some(false));
        assert_eq!(
            sc.capabilities.as_ref().and_then(|c| c.drop.clone()),
            Some(vec!["ALL".to_string()])
        );
        assert_eq!(sc.privileged, None);
        assert_eq!(c.image.as_deref(), Some("registry.k8s.io/pause:3.10"));
        assert_eq!(c.volume_mounts, None);
        let req = c
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .expect("requests");
        assert_eq!(req["cpu"].0, "500m");
        assert_eq!(req["memory"].0, (1u64 << 30).to_string());
        // Past the cap: 64 of the pods' average size.
        let many: Vec<&Pod> = std::iter::repeat_n(&app, 100).collect();
        let capped = pods_for(&node, at, &many, &settings);
        assert_eq!(capped.len(), MAX_PER_SIGNAL);
        let req = capped[0].spec.as_ref().expect("set").containers[0]
            .resources
            .as_ref()
            .expect("set");
        assert_eq!(req.requests.as_ref().expect("set")["cpu"].0, "782m");
    }

    #[test]
    fn sets_count_only_running_pods_on_another_ready_node() {
        let at = Timestamp::from_unix_millis(1_700_000_000_000);
        let node: KNode = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n1", "uid": "u-1"}}))
        .expect("node");
        let app = pod_json(serde_json::json!({"spec": {"containers": [{"name": "c"}]}}));
        let mut made = pods_for(
            &node,
            at,
            &[&app, &app, &app, &app],
            &PlaceholderSettings::default(),
        );
        let place = |p: &mut Pod, host: &str, phase: &str| {
            p.spec.as_mut().expect("set").node_name = Some(host.into());
            p.status = Some(k8s_openapi::api::core::v1::PodStatus {
                phase: Some(phase.into()),
                ..Default::default()
            });
        };
        place(&mut made[0], "r1", "Running");
        place(&mut made[1], "r2", "Running"); // r2 is not Ready
        place(&mut made[2], "r1", "Pending");
        made[3].metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        let sets = sets_of(made.iter(), |h| h == "r1");
        assert_eq!(sets.len(), 1);
        assert_eq!((sets[0].pods, sets[0].running), (3, 1));
        // The set says it was made with four: it is short of one.
        assert_eq!(sets[0].wanted, 4);
        assert_eq!(sets[0].hosts, ["r1", "r2"]);
        assert_eq!((sets[0].node.as_str(), sets[0].signal_at), ("n1", at));
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
