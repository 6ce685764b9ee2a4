//! One pass's [`ClusterView`]: the watched caches, the ledger, and the pods of the signalled
//! nodes, read together.

use std::collections::BTreeSet;
use std::sync::Arc;

use booster_core::ports::{ClusterView, PortError};
use booster_core::{Ledger, Node, Placeholders};
use k8s_openapi::api::core::v1::Node as KNode;

use super::watches::CONTACT_MAX_AGE;
use super::{census, ledger_store, KubeCluster};
use crate::convert::{self, PodCensus};
use crate::errors::port_error;

/// Everything the engine decides one pass on.
pub(super) async fn observe(cluster: &KubeCluster) -> Result<ClusterView, PortError> {
    ask_if_quiet(cluster).await?;
    let ledger = ledger_store::read(cluster).await?;
    let all = cluster.watches.nodes.state();
    let signalled = signalled(&ledger, &all);
    census::keep_only(&cluster.censuses, &signalled);
    let nodes = nodes_of(cluster, &all, &signalled).await;
    let placeholders = placeholder_sets(cluster, &nodes);
    let node_pools = convert::node_pools(&all);
    let mut signals = Vec::new();
    for e in &cluster.watches.events {
        signals.extend(e.signals());
    }
    let ca_status = convert::ca_observation(
        cluster
            .watches
            .ca
            .state()
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(cluster.settings.ca_configmap.as_str()))
            .map(|c| c.as_ref()),
    );
    Ok(ClusterView {
        nodes,
        signals,
        ca_status,
        ledger,
        placeholders,
        node_pools,
    })
}

/// After a quiet spell, one cheap GET: the caches are not trusted without a sign that the
/// apiserver still answers.
async fn ask_if_quiet(cluster: &KubeCluster) -> Result<(), PortError> {
    if cluster.contact.age() > CONTACT_MAX_AGE {
        let name = &cluster.settings.ledger_configmap;
        ledger_store::api(cluster)
            .get_opt(name)
            .await
            .map_err(|e| port_error("the apiserver, asked after a quiet spell", e))?;
        cluster.contact.touch();
    }
    Ok(())
}

/// The nodes whose pods are counted this pass.
fn signalled(ledger: &Ledger, all: &[Arc<KNode>]) -> BTreeSet<String> {
    // Every signalled node not given back: the engine reads its pods before a drain
    // (none is started that cannot finish, nor a second one) and while it runs.
    // Nodes with a boost mark count too: an entry the engine rebuilds from its mark
    // (the ledger lost it) has its pods counted before any drain, like any other.
    ledger
        .entries
        .iter()
        .filter(|(_, e)| e.released_at.is_none())
        .map(|(n, _)| n.clone())
        .chain(
            all.iter()
                .filter(|n| {
                    n.metadata
                        .annotations
                        .as_ref()
                        .is_some_and(|a| a.contains_key(convert::BOOST_MARK))
                })
                .filter_map(|n| n.metadata.name.clone()),
        )
        .collect()
}

/// Every node as the engine sees it, with its pods counted if it is signalled.
async fn nodes_of(
    cluster: &KubeCluster,
    all: &[Arc<KNode>],
    signalled: &BTreeSet<String>,
) -> Vec<Node> {
    let mut nodes = Vec::new();
    for n in all {
        let name = n.metadata.name.clone().unwrap_or_default();
        let pods = if signalled.contains(&name) {
            // One node's pods that cannot be listed stop only that node's drain from
            // counting as done (taken as one pod left), not the pass.
            census::census(cluster, &name).await.unwrap_or_else(|e| {
                tracing::warn!(node = %name, error = %e, "pods of a signalled node not listed; its drain is not taken as done");
                PodCensus::count(1)
            })
        } else {
            PodCensus::default()
        };
        nodes.push(convert::node_of(n, pods));
    }
    nodes
}

/// The placeholder sets from the watched pods, each knowing whether its host is ready.
fn placeholder_sets(cluster: &KubeCluster, nodes: &[Node]) -> Vec<Placeholders> {
    let ready: BTreeSet<&str> = nodes
        .iter()
        .filter(|n| n.ready)
        .map(|n| n.name.as_str())
        .collect();
    crate::placeholders::sets_of(
        cluster
            .watches
            .placeholders
            .state()
            .iter()
            .map(|p| p.as_ref()),
        |h| ready.contains(h),
    )
}
