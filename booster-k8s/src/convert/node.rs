//! A Node as the core sees it ([`Node`]): readiness, cordon and taints with who wrote
//! them, the booster's markers, and the machine behind it.

use booster_core::snapshot::instance_id_from_provider_id;
use booster_core::Node;
use k8s_openapi::api::core::v1::Node as KNode;

use super::boost_mark::boost_mark_of;
use super::census::PodCensus;
use super::managed_fields::{owner, owns_boost_mark, owns_rebalance_taint, owns_unschedulable};
use super::names::{
    BOOST_MARK, DO_NOT_DISRUPT, INTERRUPTION_TAINTS, PROTECTED_FOR, REBALANCE_TAINT,
    SCALE_DOWN_DISABLED, STANDBY_TAINT,
};
use crate::event::ts;

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
        standby_taint: has_taint(n, |k| k == STANDBY_TAINT),
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

/// The Karpenter NodeClaim that owns the Node, if one does.
pub fn nodeclaim_of(n: &KNode) -> Option<String> {
    n.metadata.owner_references.as_ref()?.iter().find_map(|o| {
        (o.kind == "NodeClaim" && o.api_version.starts_with("karpenter.sh/"))
            .then(|| o.name.clone())
    })
}

/// Whether the node carries NTH's rebalance taint.
fn has_rebalance_taint(n: &KNode) -> bool {
    has_taint(n, |k| k == REBALANCE_TAINT)
}

/// Whether the node carries a taint whose key passes `key`.
pub(super) fn has_taint(n: &KNode, key: impl Fn(&str) -> bool) -> bool {
    n.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|ts| ts.iter().any(|t| key(&t.key)))
}

#[cfg(test)]
mod tests {
    use super::super::{boost_mark_value, slim_managed_fields};
    use super::*;
    use booster_core::Timestamp;

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
            pool: String::new(),
            outcome: None,
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
