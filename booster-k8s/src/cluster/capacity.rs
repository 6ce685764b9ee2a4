//! The writes that add or take away capacity: placeholder pods for a signalled node, and
//! Karpenter NodeClaims.

use booster_core::ports::PortError;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::reflector;

use super::{census, KubeCluster};
use crate::convert;
use crate::errors::port_error;

/// Creates the placeholder pods that stand for `node`'s evictable pods; returns how many
/// were made now (not those made before).
pub(super) async fn place_placeholders(
    cluster: &KubeCluster,
    node: &str,
    signal_at: booster_core::Timestamp,
) -> Result<u32, PortError> {
    let Some(n) = cluster.watches.nodes.get(&reflector::ObjectRef::new(node)) else {
        return Err(PortError::NotFound(format!("node {node}")));
    };
    let pods = census::pods_on(cluster, node).await?;
    let evictable: Vec<&Pod> = pods
        .iter()
        .filter(|p| convert::pod_role(p, &cluster.settings.pods) == convert::PodRole::Evict)
        .collect();
    let settings = &cluster.settings.placeholders;
    let wanted = crate::placeholders::pods_for(&n, signal_at, &evictable, settings);
    let api = Api::<Pod>::namespaced(cluster.client.clone(), &settings.namespace);
    let pp = PostParams {
        field_manager: Some(cluster.settings.manager.clone()),
        ..PostParams::default()
    };
    let mut made = 0;
    let mut failed = None;
    // Every pod is tried, whatever happened to the one before: a set made in part is
    // completed by the next try, not stopped at its first refusal.
    for p in &wanted {
        match api.create(&pp, p).await {
            Ok(_) => made += 1,
            // Made before (a repeated pass, a restart): the set is not made twice.
            Err(e) if crate::errors::status_of(&e) == Some(409) => {}
            Err(e) => {
                failed.get_or_insert(port_error(&format!("create placeholder for {node}"), e));
            }
        }
    }
    cluster.contact.touch();
    match failed {
        Some(e) => Err(e),
        None => Ok(made),
    }
}

/// Deletes every placeholder pod made for `node`.
pub(super) async fn remove_placeholders(
    cluster: &KubeCluster,
    node: &str,
) -> Result<(), PortError> {
    let api = Api::<Pod>::namespaced(
        cluster.client.clone(),
        &cluster.settings.placeholders.namespace,
    );
    let selector = format!(
        "{}={}",
        crate::placeholders::FOR_LABEL,
        crate::placeholders::for_label(node)
    );
    let dp = kube::api::DeleteParams {
        grace_period_seconds: Some(0),
        ..kube::api::DeleteParams::default()
    };
    api.delete_collection(&dp, &ListParams::default().labels(&selector))
        .await
        .map(|_| cluster.contact.touch())
        .map_err(|e| port_error(&format!("delete placeholders of {node}"), e))
}

/// Deletes the NodeClaim `name`.
pub(super) async fn delete_nodeclaim(cluster: &KubeCluster, name: &str) -> Result<(), PortError> {
    convert::nodeclaims(cluster.client.clone())
        .delete(name, &kube::api::DeleteParams::default())
        .await
        .map(|_| cluster.contact.touch())
        .map_err(|e| port_error(&format!("delete NodeClaim {name}"), e))
}
