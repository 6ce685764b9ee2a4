//! The pods of signalled nodes: what a running drain saw a moment ago, a list taken a few
//! seconds ago, or a new list.

use std::collections::BTreeSet;
use std::time::Duration;

use booster_core::ports::PortError;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};

use super::KubeCluster;
use crate::convert::PodCensus;
use crate::errors::port_error;

/// How long a running drain's count of the pods left stands for a list.
const DRAIN_SEEN_FRESH: Duration = Duration::from_secs(3);

/// How long a list of a signalled node's pods stands for the next one: passes follow Node
/// changes (in a big cluster, twice a second), a signalled node's pods change slower.
const CENSUS_FRESH: Duration = Duration::from_secs(5);

/// Readings per node, each with when it was taken (the drains' progress has this shape).
pub(super) type Timed<T> =
    std::sync::Mutex<std::collections::BTreeMap<String, (T, tokio::time::Instant)>>;

/// `node`'s reading in `map`, if it is younger than `max`.
fn fresh<T: Clone>(map: &Timed<T>, node: &str, max: Duration) -> Option<T> {
    let map = map.lock().ok()?;
    let (v, at) = map.get(node)?;
    (at.elapsed() < max).then(|| v.clone())
}

/// Every pod bound to `node`, listed now.
pub(super) async fn pods_on(cluster: &KubeCluster, node: &str) -> Result<Vec<Pod>, PortError> {
    Api::<Pod>::all(cluster.client.clone())
        .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
        .await
        .map(|l| l.items)
        .map_err(|e| port_error(&format!("list pods on {node}"), e))
}

/// The pods of a signalled node: while this process drains it, what its drain saw at
/// most 3 s ago; else a list (which also finds the pods no drain may evict, and those
/// somebody else is evicting).
pub(super) async fn census(cluster: &KubeCluster, node: &str) -> Result<PodCensus, PortError> {
    if let Some(left) = fresh(&cluster.drains, node, DRAIN_SEEN_FRESH) {
        return Ok(PodCensus::count(left));
    }
    if let Some(census) = fresh(&cluster.censuses, node, CENSUS_FRESH) {
        return Ok(census);
    }
    let pods = pods_on(cluster, node).await?;
    let census = PodCensus::of(&pods, &cluster.settings.pods);
    if let Ok(mut c) = cluster.censuses.lock() {
        c.insert(
            node.to_string(),
            (census.clone(), tokio::time::Instant::now()),
        );
    }
    Ok(census)
}

/// Drops the lists of nodes no longer signalled.
pub(super) fn keep_only(censuses: &Timed<PodCensus>, signalled: &BTreeSet<String>) {
    if let Ok(mut c) = censuses.lock() {
        c.retain(|n, _| signalled.contains(n));
    }
}
