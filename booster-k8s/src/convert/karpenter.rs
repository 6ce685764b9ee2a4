//! Karpenter's objects: NodeClaims, and its nodes grouped by NodePool as the core's
//! groups.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Node as KNode;

use super::census::PodCensus;
use super::names::NODEPOOL_LABEL;
use super::node::{has_taint, node_of};

/// The group name of a Karpenter NodePool in the snapshot and the ledger: apart from any
/// Auto Scaling group's.
pub fn nodepool_group(pool: &str) -> String {
    format!("nodepool/{pool}")
}

/// Karpenter's NodeClaims (`karpenter.sh/v1`, cluster-scoped), without its types.
pub fn nodeclaims(client: kube::Client) -> kube::Api<kube::api::DynamicObject> {
    let gvk = kube::api::GroupVersionKind::gvk("karpenter.sh", "v1", "NodeClaim");
    let ar = kube::api::ApiResource::from_gvk_with_plural(&gvk, "nodeclaims");
    kube::Api::all_with(client, &ar)
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
