//! What a drain does with a pod ([`PodRole`]) under the rules it is given ([`PodRules`]).

use k8s_openapi::api::core::v1::Pod;

/// `namespace/name`.
pub fn pod_name(p: &Pod) -> String {
    format!(
        "{}/{}",
        p.metadata.namespace.as_deref().unwrap_or_default(),
        p.metadata.name.as_deref().unwrap_or_default()
    )
}

/// What a drain does with a pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodRole {
    /// Evict it.
    Evict,
    /// Leave it: DaemonSet, mirror or terminal pod.
    Ignore,
    /// It must not be evicted, for the reason given (do-not-disrupt or safe-to-evict=false;
    /// no controller to bring it back, without `--drain-force`; emptyDir data, without
    /// `--drain-delete-emptydir-data`): it blocks the drain, as it does `kubectl drain`'s.
    Keep(&'static str),
}

/// Which pods a drain may evict, beyond DaemonSet, mirror and terminal pods (never).
#[derive(Clone, Debug)]
pub struct PodRules {
    /// Pods carrying any of these `(annotation, value)` are never evicted.
    pub protecting: Vec<(String, String)>,
    /// Evict pods no controller owns (nothing recreates them): `kubectl drain --force`.
    pub evict_unowned: bool,
    /// Evict pods with emptyDir volumes (their data is lost): `kubectl drain
    /// --delete-emptydir-data`.
    pub evict_emptydir: bool,
    /// The booster's placeholder namespace: a pod there with the placeholder label is ours
    /// and goes with the node. The label alone elsewhere is anyone's, and proves nothing.
    /// [`crate::KubeCluster::start`] sets it from its placeholder settings.
    pub placeholder_namespace: String,
}

impl Default for PodRules {
    fn default() -> Self {
        PodRules {
            protecting: DEFAULT_PROTECTING_ANNOTATIONS
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            evict_unowned: false,
            evict_emptydir: false,
            placeholder_namespace: crate::placeholders::DEFAULT_NAMESPACE.into(),
        }
    }
}

/// Annotations that keep a pod from being evicted, as `(key, value)`.
pub const DEFAULT_PROTECTING_ANNOTATIONS: [(&str, &str); 2] = [
    ("karpenter.sh/do-not-disrupt", "true"),
    ("cluster-autoscaler.kubernetes.io/safe-to-evict", "false"),
];

/// Classifies a pod for a drain.
pub fn pod_role(p: &Pod, rules: &PodRules) -> PodRole {
    let meta = &p.metadata;
    let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return PodRole::Ignore;
    }
    let annotations = meta.annotations.as_ref();
    if annotations.is_some_and(|a| a.contains_key("kubernetes.io/config.mirror")) {
        return PodRole::Ignore;
    }
    // The booster's own placeholders go with the node; a drain waits for none of them.
    if meta.namespace.as_deref() == Some(rules.placeholder_namespace.as_str())
        && meta
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(crate::placeholders::LABEL))
    {
        return PodRole::Ignore;
    }
    let daemon = meta.owner_references.as_ref().is_some_and(|os| {
        os.iter()
            .any(|o| o.kind == "DaemonSet" && o.controller == Some(true))
    });
    if daemon {
        return PodRole::Ignore;
    }
    let protected = rules.protecting.iter().any(|(k, v)| {
        annotations
            .and_then(|a| a.get(k))
            .is_some_and(|x| x.trim().eq_ignore_ascii_case(v))
    });
    if protected {
        return PodRole::Keep("annotated not to be disrupted");
    }
    let owned = meta
        .owner_references
        .as_ref()
        .is_some_and(|os| os.iter().any(|o| o.controller == Some(true)));
    if !owned && !rules.evict_unowned {
        return PodRole::Keep("no controller would recreate it; --drain-force evicts it");
    }
    let emptydir = p
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .is_some_and(|vs| vs.iter().any(|v| v.empty_dir.is_some()));
    if emptydir && !rules.evict_emptydir {
        return PodRole::Keep(
            "emptyDir data would be lost; --drain-delete-emptydir-data evicts it",
        );
    }
    PodRole::Evict
}

#[cfg(test)]
mod placeholder_role {
    use super::*;

    fn pod(ns: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": ns,
                         "labels": {crate::placeholders::LABEL: "true"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                              "name": "web", "uid": "u", "controller": true}]},
            "spec": {"containers": [{"name": "c"}]},
        }))
        .expect("pod")
    }

    #[test]
    fn only_our_namespace_makes_a_labelled_pod_a_placeholder() {
        let rules = PodRules::default();
        assert_eq!(
            pod_role(&pod(crate::placeholders::DEFAULT_NAMESPACE), &rules),
            PodRole::Ignore
        );
        // A tenant's pod wearing the label is drained like any other.
        assert_eq!(pod_role(&pod("shop"), &rules), PodRole::Evict);
    }
}
