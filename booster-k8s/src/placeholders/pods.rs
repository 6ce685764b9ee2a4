//! The placeholder pods of one signal: a pause container per share, placed where the pods
//! it stands for may land, and nothing else of theirs.

use std::collections::BTreeMap;

use booster_core::Timestamp;
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, Container, Node as KNode, Pod, PodSecurityContext, PodSpec,
    ResourceRequirements, SeccompProfile, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::sizing::shares;
use super::{
    for_label, name, PlaceholderSettings, DO_NOT_DISRUPT, FOR_ANNOTATION, FOR_LABEL, LABEL,
    SET_SIZE_ANNOTATION, SIGNAL_ANNOTATION,
};

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
    let shares = shares(pods);
    let size = shares.len().to_string();
    shares
        .into_iter()
        .enumerate()
        .map(|(i, (src, (cpu, mem)))| Pod {
            metadata: metadata(&node_name, signal_at, i, &size, settings),
            spec: Some(spec(src, pause(&settings.image, cpu, mem), settings)),
            status: None,
        })
        .collect()
}

/// The `i`-th placeholder's name, namespace, labels and annotations, in a set of `size`.
fn metadata(
    node_name: &str,
    signal_at: Timestamp,
    i: usize,
    size: &str,
    settings: &PlaceholderSettings,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name(node_name, signal_at, i)),
        namespace: Some(settings.namespace.clone()),
        labels: Some(BTreeMap::from([
            (LABEL.to_string(), "true".to_string()),
            (FOR_LABEL.to_string(), for_label(node_name)),
            (
                "app.kubernetes.io/managed-by".to_string(),
                "aws-spots-booster".to_string(),
            ),
        ])),
        annotations: Some(BTreeMap::from([
            // Karpenter must not consolidate the replacement away while it
            // holds them; once they are removed the node is Karpenter's again.
            (DO_NOT_DISRUPT.to_string(), "true".to_string()),
            (FOR_ANNOTATION.to_string(), node_name.to_string()),
            (
                SIGNAL_ANNOTATION.to_string(),
                signal_at.unix_millis().to_string(),
            ),
            (SET_SIZE_ANNOTATION.to_string(), size.to_string()),
        ])),
        ..ObjectMeta::default()
    }
}

/// The pause container, asking for `cpu` millicores and `mem` bytes.
fn pause(image: &str, cpu: u64, mem: u64) -> Container {
    let mut req = BTreeMap::new();
    req.insert("cpu".to_string(), Quantity(format!("{cpu}m")));
    req.insert("memory".to_string(), Quantity(mem.to_string()));
    Container {
        name: "pause".into(),
        image: Some(image.to_string()),
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
    }
}

/// The spec running `container`, placed as `src` may be (its node selector, node affinity
/// and tolerations).
fn spec(src: &Pod, container: Container, settings: &PlaceholderSettings) -> PodSpec {
    let spec = src.spec.clone().unwrap_or_default();
    PodSpec {
        containers: vec![container],
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
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DEFAULT_NAMESPACE, MAX_PER_SIGNAL};
    use super::*;

    fn pod_json(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("pod")
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
}
