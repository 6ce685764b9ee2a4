//! Writes to Node objects, all under the booster's field manager: cordons, the rebalance
//! taint, the standby taint, protection from scale-down, and the boost mark.

use std::time::Duration;

use booster_core::ports::PortError;
use k8s_openapi::api::core::v1::{Node as KNode, Taint};
use kube::api::{Api, Patch, PatchParams};

use super::KubeCluster;
use crate::convert;
use crate::errors::port_error;

/// Reads and compare-and-swaps of a node's taints before a conflict is returned.
const UNTAINT_ATTEMPTS: u32 = 5;

fn node_api(cluster: &KubeCluster) -> Api<KNode> {
    Api::all(cluster.client.clone())
}

async fn patch_node(
    cluster: &KubeCluster,
    node: &str,
    patch: serde_json::Value,
    what: &str,
) -> Result<(), PortError> {
    // Under our own name: the apiserver records who wrote each field, and the boost
    // mark is believed only from us.
    let pp = PatchParams {
        field_manager: Some(cluster.settings.manager.clone()),
        ..PatchParams::default()
    };
    node_api(cluster)
        .patch(node, &pp, &Patch::Merge(&patch))
        .await
        .map(|_| cluster.contact.touch())
        .map_err(|e| port_error(&format!("{what} node {node}"), e))
}

/// Cordons or uncordons `node`.
pub(super) async fn set_unschedulable(
    cluster: &KubeCluster,
    node: &str,
    unschedulable: bool,
) -> Result<(), PortError> {
    let what = if unschedulable { "cordon" } else { "uncordon" };
    patch_node(
        cluster,
        node,
        serde_json::json!({ "spec": { "unschedulable": unschedulable } }),
        what,
    )
    .await
}

/// Takes the rebalance taint off `node`, keeping every other taint.
pub(super) async fn remove_rebalance_taint(
    cluster: &KubeCluster,
    node: &str,
) -> Result<(), PortError> {
    edit_taints(cluster, node, "untaint", |taints| {
        taints
            .iter()
            .any(|t| t.key == convert::REBALANCE_TAINT)
            .then(|| without(taints, convert::REBALANCE_TAINT))
    })
    .await
}

/// Puts the booster's standby taint (`PreferNoSchedule`) on `node`, or takes it off,
/// keeping every other taint.
pub(super) async fn set_standby_taint(
    cluster: &KubeCluster,
    node: &str,
    standby: bool,
) -> Result<(), PortError> {
    let what = if standby {
        "standby-taint"
    } else {
        "standby-untaint"
    };
    edit_taints(cluster, node, what, |taints| {
        let has = taints.iter().any(|t| t.key == convert::STANDBY_TAINT);
        match (standby, has) {
            (true, false) => {
                let mut all = taints.to_vec();
                all.push(Taint {
                    key: convert::STANDBY_TAINT.to_string(),
                    effect: "PreferNoSchedule".to_string(),
                    ..Taint::default()
                });
                Some(all)
            }
            (false, true) => Some(without(taints, convert::STANDBY_TAINT)),
            _ => None,
        }
    })
    .await
}

fn without(taints: &[Taint], key: &str) -> Vec<Taint> {
    taints.iter().filter(|t| t.key != key).cloned().collect()
}

/// Rewrites `node`'s taints as `change` says (`None`: nothing to change).
async fn edit_taints(
    cluster: &KubeCluster,
    node: &str,
    what: &str,
    change: impl Fn(&[Taint]) -> Option<Vec<Taint>>,
) -> Result<(), PortError> {
    // A compare-and-swap on the node's resourceVersion, so that a taint somebody adds
    // meanwhile is not lost; a node object changes often (status, heartbeats from its
    // kubelet or kwok), so a conflict is read again and retried, as client-go's
    // RetryOnConflict does.
    let mut attempt = 1;
    loop {
        let n = node_api(cluster)
            .get(node)
            .await
            .map_err(|e| port_error(&format!("get node {node}"), e))?;
        let taints = n.spec.and_then(|s| s.taints).unwrap_or_default();
        let Some(taints) = change(&taints) else {
            return Ok(());
        };
        let r = patch_node(
            cluster,
            node,
            serde_json::json!({
                "metadata": { "resourceVersion": n.metadata.resource_version },
                "spec": { "taints": taints },
            }),
            what,
        )
        .await;
        match r {
            Err(PortError::Conflict(_)) if attempt < UNTAINT_ATTEMPTS => {
                tracing::debug!(
                    node,
                    attempt,
                    "node changed while {what}ing; reading it again"
                );
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
            }
            other => return other,
        }
    }
}

/// Keeps cluster-autoscaler from scaling `node` down, as the replacement for `for_node`.
pub(super) async fn protect(
    cluster: &KubeCluster,
    node: &str,
    for_node: &str,
) -> Result<(), PortError> {
    patch_node(
        cluster,
        node,
        serde_json::json!({ "metadata": { "annotations": {
            convert::SCALE_DOWN_DISABLED: "true",
            convert::PROTECTED_FOR: for_node,
        }}}),
        "protect",
    )
    .await
}

/// Lets cluster-autoscaler scale `node` down again.
pub(super) async fn unprotect(cluster: &KubeCluster, node: &str) -> Result<(), PortError> {
    // The protected-for marker stays: a replacement stands in for one signal only.
    patch_node(
        cluster,
        node,
        serde_json::json!({ "metadata": { "annotations": { convert::SCALE_DOWN_DISABLED: null }}}),
        "unprotect",
    )
    .await
}

/// Writes `entry` on `node` as the mark of its boost, so that losing the ledger cannot
/// cause a second boost.
pub(super) async fn mark_boost(
    cluster: &KubeCluster,
    node: &str,
    entry: &booster_core::Entry,
) -> Result<(), PortError> {
    patch_node(
        cluster,
        node,
        serde_json::json!({ "metadata": { "annotations": {
            convert::BOOST_MARK: convert::boost_mark_value(entry),
        }}}),
        "mark boost on",
    )
    .await
}

/// Removes the boost mark from `node`.
pub(super) async fn clear_boost_mark(cluster: &KubeCluster, node: &str) -> Result<(), PortError> {
    patch_node(
        cluster,
        node,
        serde_json::json!({ "metadata": { "annotations": { convert::BOOST_MARK: null }}}),
        "clear boost mark on",
    )
    .await
}
