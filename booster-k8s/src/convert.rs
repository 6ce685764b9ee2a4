//! Kubernetes objects to the core's snapshot types, and back for the ledger.

use std::collections::BTreeMap;

use booster_core::ca_status;
use booster_core::snapshot::instance_id_from_provider_id;
use booster_core::{CaObservation, Ledger, Node, Timestamp};
use k8s_openapi::api::core::v1::{ConfigMap, Node as KNode, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};

/// NTH's taint on a node with a rebalance recommendation.
pub const REBALANCE_TAINT: &str = "aws-node-termination-handler/rebalance-recommendation";
/// Cluster Autoscaler's scale-down opt-out annotation.
pub const SCALE_DOWN_DISABLED: &str = "cluster-autoscaler.kubernetes.io/scale-down-disabled";
/// The booster's marker on a replacement: the signalled node it stands (or stood) in for.
pub const PROTECTED_FOR: &str = "aws-spots-booster/protected-for";
/// The booster's durable trace of a boost made for a signalled node (its ledger entry at
/// the time), written before `SetDesiredCapacity`: the ledger can be rebuilt from it.
pub const BOOST_MARK: &str = "aws-spots-booster/boost";
/// Karpenter's NodePool label on its nodes.
pub const NODEPOOL_LABEL: &str = "karpenter.sh/nodepool";
/// Karpenter's opt-out of disruption, on pods and nodes (the placeholders carry it too).
pub use crate::placeholders::DO_NOT_DISRUPT;
/// The group name of a Karpenter NodePool in the snapshot and the ledger: apart from any
/// Auto Scaling group's.
pub fn nodepool_group(pool: &str) -> String {
    format!("nodepool/{pool}")
}
/// CA's annotation on its status ConfigMap.
pub const CA_LAST_UPDATED: &str = "cluster-autoscaler.kubernetes.io/last-updated";
/// The key of the ledger in its ConfigMap.
pub const LEDGER_KEY: &str = "ledger.json";

pub(crate) use crate::event::ts;

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

/// `namespace/name`.
pub fn pod_name(p: &Pod) -> String {
    format!(
        "{}/{}",
        p.metadata.namespace.as_deref().unwrap_or_default(),
        p.metadata.name.as_deref().unwrap_or_default()
    )
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

/// The core's view of a Node.
pub fn node_of(n: &KNode, pods: PodCensus) -> Node {
    let meta = &n.metadata;
    let spec = n.spec.as_ref();
    let annotations = meta.annotations.as_ref();
    let ann = |k: &str| annotations.and_then(|a| a.get(k)).map(String::as_str);
    let unschedulable = spec.and_then(|s| s.unschedulable).unwrap_or(false);
    let rebalance_taint = has_rebalance_taint(n);
    let cordon = owner(n, "f:spec", owns_unschedulable).filter(|_| unschedulable);
    let taint = owner(n, "f:spec", owns_rebalance_taint).filter(|_| rebalance_taint);
    let nodeclaim = nodeclaim_of(n);
    Node {
        name: meta.name.clone().unwrap_or_default(),
        // A Karpenter node's machine is its NodeClaim where the provider id is no EC2 one.
        instance_id: spec
            .and_then(|s| s.provider_id.as_deref())
            .and_then(instance_id_from_provider_id)
            .map(str::to_string)
            .or_else(|| nodeclaim.clone()),
        created_at: meta.creation_timestamp.as_ref().map(ts).unwrap_or_default(),
        ready: n
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")),
        unschedulable,
        cordoned_by: cordon.and_then(|m| m.manager.clone()),
        cordoned_at: cordon.and_then(|m| m.time.as_ref()).map(ts),
        rebalance_taint,
        tainted_at: taint.and_then(|m| m.time.as_ref()).map(ts),
        interruption_taint: has_taint(n, |k| INTERRUPTION_TAINTS.contains(&k)),
        scale_down_disabled: ann(SCALE_DOWN_DISABLED).is_some_and(|v| v.trim() == "true"),
        protected_for: ann(PROTECTED_FOR).map(str::to_string),
        pods_to_evict: pods.to_evict,
        unevictable: pods.unevictable,
        evicted_by_others: pods.evicted_by_others,
        // Believed only from the booster's own hand: anyone who may patch Nodes could
        // otherwise write an entry the booster would rebuild and act on.
        boost_mark: ann(BOOST_MARK)
            .filter(|_| {
                owner(n, "f:metadata", owns_boost_mark).and_then(|m| m.manager.as_deref())
                    == Some(booster_core::config::BOOSTER_FIELD_MANAGER)
            })
            .and_then(boost_mark_of),
        nodeclaim,
        do_not_disrupt: ann(DO_NOT_DISRUPT).is_some_and(|v| v.trim() == "true"),
    }
}

/// Karpenter's NodeClaims (`karpenter.sh/v1`, cluster-scoped), without its types.
pub fn nodeclaims(client: kube::Client) -> kube::Api<kube::api::DynamicObject> {
    let gvk = kube::api::GroupVersionKind::gvk("karpenter.sh", "v1", "NodeClaim");
    let ar = kube::api::ApiResource::from_gvk_with_plural(&gvk, "nodeclaims");
    kube::Api::all_with(client, &ar)
}

/// The Karpenter NodeClaim that owns the Node, if one does.
pub fn nodeclaim_of(n: &KNode) -> Option<String> {
    n.metadata.owner_references.as_ref()?.iter().find_map(|o| {
        (o.kind == "NodeClaim" && o.api_version.starts_with("karpenter.sh/"))
            .then(|| o.name.clone())
    })
}

/// Karpenter's nodes as NodePool groups: one group per `karpenter.sh/nodepool` label of a
/// node a NodeClaim owns, its nodes' machines as instances (leaving once the Node is being
/// deleted or Karpenter tainted it `karpenter.sh/disrupted`).
pub fn node_pools(nodes: &[std::sync::Arc<KNode>]) -> Vec<booster_core::Group> {
    use booster_core::{Group, GroupKind, Instance, Lifecycle};
    let mut pools: BTreeMap<String, Group> = BTreeMap::new();
    for n in nodes {
        let Some(pool) = n
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(NODEPOOL_LABEL))
        else {
            continue;
        };
        let core = node_of(n, PodCensus::default());
        let (Some(_), Some(id)) = (core.nodeclaim, core.instance_id) else {
            continue;
        };
        let leaving = n.metadata.deletion_timestamp.is_some()
            || has_taint(n, |k| k == "karpenter.sh/disrupted");
        let name = nodepool_group(pool);
        let g = pools.entry(name.clone()).or_insert_with(|| Group {
            name,
            kind: GroupKind::NodePool,
            ..Group::default()
        });
        g.instances.push(Instance {
            id,
            az: String::new(),
            lifecycle: if leaving {
                Lifecycle::Terminating
            } else if core.ready {
                Lifecycle::InService
            } else {
                Lifecycle::Pending
            },
            healthy: true,
            protected_from_scale_in: false,
            instance_type: String::new(),
            weight: None,
        });
    }
    pools.into_values().collect()
}

/// The longest boost mark read: the booster writes about 300 bytes; anything much larger
/// is not its own.
const BOOST_MARK_MAX: usize = 4096;

/// A boost mark as the booster wrote it, or nothing (somebody else's text is no mark).
fn boost_mark_of(v: &str) -> Option<booster_core::Entry> {
    if v.len() > BOOST_MARK_MAX {
        tracing::warn!(bytes = v.len(), "boost mark too large: ignored");
        return None;
    }
    serde_json::from_str(v)
        .inspect_err(|e| tracing::warn!(error = %e, "boost mark unreadable: ignored"))
        .ok()
}

/// The boost mark's annotation value for `entry`.
pub fn boost_mark_value(entry: &booster_core::Entry) -> String {
    serde_json::to_string(entry).unwrap_or_default()
}

/// Whether the node carries NTH's rebalance taint.
pub(crate) fn has_rebalance_taint(n: &KNode) -> bool {
    has_taint(n, |k| k == REBALANCE_TAINT)
}

/// NTH's taints for an instance that is leaving (spot interruption notice, Auto Scaling
/// lifecycle termination, scheduled event; NTH's pkg/node), and Kubernetes' out-of-service
/// taint: a node with one is never given back.
pub const INTERRUPTION_TAINTS: [&str; 4] = [
    "aws-node-termination-handler/spot-itn",
    "aws-node-termination-handler/asg-lifecycle-termination",
    "aws-node-termination-handler/scheduled-maintenance",
    "node.kubernetes.io/out-of-service",
];

fn has_taint(n: &KNode, key: impl Fn(&str) -> bool) -> bool {
    n.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|ts| ts.iter().any(|t| key(&t.key)))
}

/// The `managedFields` entry (of the Node itself, not its status) whose fields under
/// `section` (`f:spec`, `f:metadata`) pass `owns`.
fn owner<'a>(
    n: &'a KNode,
    section: &str,
    owns: impl Fn(&serde_json::Value) -> bool,
) -> Option<&'a ManagedFieldsEntry> {
    n.metadata.managed_fields.as_ref()?.iter().find(|m| {
        m.subresource.as_deref().unwrap_or_default().is_empty()
            && m.fields_v1
                .as_ref()
                .and_then(|f| f.0.get(section))
                .is_some_and(&owns)
    })
}

fn owns_boost_mark(meta: &serde_json::Value) -> bool {
    meta.get("f:annotations")
        .and_then(|a| a.get(format!("f:{BOOST_MARK}")))
        .is_some()
}

fn owns_unschedulable(spec: &serde_json::Value) -> bool {
    spec.get("f:unschedulable").is_some()
}

/// Owns NTH's taint: the whole list (an atomic list) or its entry (a list keyed by key).
fn owns_rebalance_taint(spec: &serde_json::Value) -> bool {
    let Some(taints) = spec.get("f:taints").and_then(|t| t.as_object()) else {
        return false;
    };
    let keyed = taints.keys().any(|k| k.starts_with("k:"));
    !keyed
        || taints
            .keys()
            .any(|k| k.starts_with("k:") && k.contains(REBALANCE_TAINT))
}

/// Keeps, of the Node's `managedFields`, only who owns `spec.unschedulable`, the taints and
/// the boost mark, and when they wrote it: the apiserver records both, so an Event cannot
/// fake them.
pub(crate) fn slim_managed_fields(n: &mut KNode) {
    let mut kept = Vec::new();
    if let Some(m) = owner(n, "f:spec", owns_unschedulable) {
        kept.push(reduced(
            m,
            serde_json::json!({"f:spec": {"f:unschedulable": {}}}),
        ));
    }
    if let Some(m) = owner(n, "f:spec", owns_rebalance_taint) {
        kept.push(reduced(m, serde_json::json!({"f:spec": {"f:taints": {}}})));
    }
    if let Some(m) = owner(n, "f:metadata", owns_boost_mark) {
        kept.push(reduced(
            m,
            serde_json::json!({"f:metadata": {"f:annotations": {format!("f:{BOOST_MARK}"): {}}}}),
        ));
    }
    n.metadata.managed_fields = Some(kept);
}

fn reduced(m: &ManagedFieldsEntry, fields: serde_json::Value) -> ManagedFieldsEntry {
    ManagedFieldsEntry {
        manager: m.manager.clone(),
        time: m.time.clone(),
        fields_v1: Some(FieldsV1(fields)),
        ..ManagedFieldsEntry::default()
    }
}

/// cluster-autoscaler's status ConfigMap as the engine sees it.
pub fn ca_observation(cm: Option<&ConfigMap>) -> CaObservation {
    let Some(cm) = cm else {
        return CaObservation::Missing;
    };
    let Some(text) = cm.data.as_ref().and_then(|d| d.get("status")) else {
        return CaObservation::Missing;
    };
    match ca_status::parse(text) {
        Err(e) => CaObservation::Invalid {
            error: e.to_string(),
        },
        Ok(status) => {
            let annotated = cm
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(CA_LAST_UPDATED))
                .and_then(|v| Timestamp::parse_go(v).ok());
            match annotated.or(status.time) {
                Some(updated_at) => CaObservation::Parsed { status, updated_at },
                None => CaObservation::Invalid {
                    error: "status has no time and the ConfigMap no last-updated annotation".into(),
                },
            }
        }
    }
}

/// Why a ledger ConfigMap could not be read.
#[derive(Debug, thiserror::Error)]
#[error("ledger ConfigMap key {LEDGER_KEY} is not a ledger: {0}")]
pub struct LedgerError(String);

/// The ledger stored in a ConfigMap (an absent key is an empty ledger).
pub fn ledger_of(cm: &ConfigMap) -> Result<Ledger, LedgerError> {
    match cm.data.as_ref().and_then(|d| d.get(LEDGER_KEY)) {
        None => Ok(Ledger::default()),
        Some(text) => serde_json::from_str(text).map_err(|e| LedgerError(e.to_string())),
    }
}

/// The ConfigMap data holding `ledger`.
/// Compact JSON: a ConfigMap holds 1 MiB, and indentation is a third of a pretty ledger.
/// A ledger that cannot be serialised is an error, never stored as an empty one (which
/// would forget every signal).
pub fn ledger_data(ledger: &Ledger) -> Result<BTreeMap<String, String>, serde_json::Error> {
    let text = serde_json::to_string(ledger)?;
    Ok(BTreeMap::from([(LEDGER_KEY.to_string(), text)]))
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
mod tests {
    use super::*;

    fn knode(v: serde_json::Value) -> KNode {
        serde_json::from_value(v).expect("node")
    }

    /// The managedFields a real apiserver writes for NTH's cordon and taint (an Update
    /// with client-go's default field manager), the kubelet's status and an operator.
    fn cordoned_and_tainted(taints_field: serde_json::Value) -> KNode {
        knode(serde_json::json!({
            "metadata": {"name": "n1", "creationTimestamp": "2024-05-02T14:00:00Z", "managedFields": [
                {"manager": "kubelet", "operation": "Update", "subresource": "status", "time": "2024-05-02T14:03:30Z",
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:conditions": {}}}},
                {"manager": "kubectl-label", "operation": "Update", "time": "2024-05-02T14:01:00Z",
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {"f:x": {}}}}},
                {"manager": "node-termination-handler", "operation": "Update", "time": "2024-05-02T14:03:11Z",
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:unschedulable": {}, "f:taints": taints_field}}},
            ]},
            "spec": {"unschedulable": true, "providerID": "aws:///eu-west-1a/i-0abc",
                     "taints": [{"key": REBALANCE_TAINT, "value": "rebalance-recommendation-1", "effect": "NoSchedule"}]},
        }))
    }

    #[test]
    fn the_cordon_and_the_taint_are_attributed_from_managed_fields() {
        let at = Timestamp::parse_rfc3339("2024-05-02T14:03:11Z").ok();
        for taints in [
            serde_json::json!({}),
            serde_json::json!({"k:{\"effect\":\"NoSchedule\",\"key\":\"aws-node-termination-handler/rebalance-recommendation\"}": {".": {}}}),
        ] {
            let mut n = cordoned_and_tainted(taints);
            let before = node_of(&n, PodCensus::default());
            assert_eq!(
                before.cordoned_by.as_deref(),
                Some("node-termination-handler")
            );
            assert_eq!((before.cordoned_at, before.tainted_at), (at, at));
            assert!(before.rebalance_taint && before.unschedulable);
            // What the reflector keeps says the same, in a few bytes.
            slim_managed_fields(&mut n);
            assert_eq!(node_of(&n, PodCensus::default()), before);
            assert_eq!(n.metadata.managed_fields.as_ref().map(Vec::len), Some(2));
        }
    }

    #[test]
    fn a_boost_mark_counts_only_from_the_boosters_own_hand() {
        let entry = booster_core::Entry {
            instance_id: "i-0abc".into(),
            group: "spot".into(),
            signal_at: Timestamp::from_unix_millis(1_700_000_000_000),
            boost: booster_core::Boost::Queued {
                reason: booster_core::Reason::BoostAllowed,
            },
            drain: booster_core::DrainState::NotStarted,
            released_at: None,
            fallback: None,
            retiring: None,
            cordoned_before: false,
        };
        let marked_by = |manager: &str| -> KNode {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "n1",
                    "annotations": {BOOST_MARK: boost_mark_value(&entry)},
                    "managedFields": [
                        {"manager": manager, "operation": "Update", "time": "2024-05-02T14:03:11Z",
                         "fieldsType": "FieldsV1",
                         "fieldsV1": {"f:metadata": {"f:annotations": {format!("f:{BOOST_MARK}"): {}}}}}]},
                "spec": {"providerID": "aws:///eu-west-1a/i-0abc"}
            }))
            .expect("node")
        };
        let mut ours = marked_by(booster_core::config::BOOSTER_FIELD_MANAGER);
        assert_eq!(
            node_of(&ours, PodCensus::default()).boost_mark,
            Some(entry.clone())
        );
        slim_managed_fields(&mut ours);
        assert_eq!(
            node_of(&ours, PodCensus::default()).boost_mark,
            Some(entry.clone()),
            "the reflector keeps who wrote it"
        );
        for forger in ["kubectl-annotate", "kubelet", "kube-rs"] {
            assert_eq!(
                node_of(&marked_by(forger), PodCensus::default()).boost_mark,
                None,
                "{forger}"
            );
        }
    }

    #[test]
    fn nths_interruption_taints_mark_a_leaving_node() {
        let with = |key: &str| -> KNode {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "n1"},
                "spec": {"taints": [{"key": key, "effect": "NoSchedule"}]}
            }))
            .expect("node")
        };
        for key in INTERRUPTION_TAINTS {
            assert!(
                node_of(&with(key), PodCensus::default()).interruption_taint,
                "{key}"
            );
        }
        let rebalance = node_of(&with(REBALANCE_TAINT), PodCensus::default());
        assert!(rebalance.rebalance_taint && !rebalance.interruption_taint);
    }

    #[test]
    fn a_cordon_by_someone_else_or_a_taint_entry_of_another_key_is_not_nths() {
        let mut n = cordoned_and_tainted(
            serde_json::json!({"k:{\"effect\":\"NoSchedule\",\"key\":\"other\"}": {}}),
        );
        if let Some(ms) = n.metadata.managed_fields.as_mut() {
            ms[2].manager = Some("kubectl-cordon".into());
        }
        let v = node_of(&n, PodCensus::default());
        assert_eq!(v.cordoned_by.as_deref(), Some("kubectl-cordon"));
        assert_eq!(v.tainted_at, None, "nobody's entry owns NTH's taint");
        assert!(v.rebalance_taint, "the taint itself is there");
        // Uncordoned: no cordon to attribute.
        if let Some(s) = n.spec.as_mut() {
            s.unschedulable = Some(false);
        }
        assert_eq!(node_of(&n, PodCensus::default()).cordoned_by, None);
    }
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
