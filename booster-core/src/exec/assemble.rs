//! Assembles the snapshot of one pass: the cluster's view, the Auto Scaling groups it names
//! (and those of nodes no described group lists), and their scaling activities where a
//! boost waits.

use std::collections::BTreeSet;

use crate::ledger::Boost;
use crate::ports::{Cloud, Cluster, ClusterView, PortError};
use crate::snapshot::{Group, GroupKind, Snapshot};
use crate::time::Timestamp;

/// Builds the snapshot for one pass: observes the cluster, describes the groups it names,
/// and, for nodes whose instance no described group lists (a launch newer than the cached
/// describe, or a group cluster-autoscaler does not report), asks once which group they
/// are in and describes again. `asked` remembers the instance ids already asked about.
pub async fn snapshot(
    cluster: &dyn Cluster,
    cloud: &dyn Cloud,
    now: Timestamp,
    asked: &mut BTreeSet<String>,
) -> Result<Snapshot, PortError> {
    let view = cluster.observe().await?;
    snapshot_of(view, cloud, now, asked).await
}

/// [`snapshot`] from a view already observed: the caller can tell the cluster's answer from
/// the cloud's (the controller's liveness is about the first).
pub async fn snapshot_of(
    view: ClusterView,
    cloud: &dyn Cloud,
    now: Timestamp,
    asked: &mut BTreeSet<String>,
) -> Result<Snapshot, PortError> {
    let groups = describe(&view, cloud, asked).await?;
    Ok(complete(view, cloud, now, groups).await)
}

/// [`snapshot_of`] that never fails on the cloud: when Auto Scaling does not answer, the
/// snapshot carries `last` (the groups of the last pass it answered) and says so in
/// `cloud_unavailable`, and the engine holds what needs AWS.
pub async fn snapshot_tolerant(
    view: ClusterView,
    cloud: &dyn Cloud,
    now: Timestamp,
    asked: &mut BTreeSet<String>,
    last: &[Group],
) -> Snapshot {
    match describe(&view, cloud, asked).await {
        Ok(groups) => complete(view, cloud, now, groups).await,
        Err(e) => snapshot_without_cloud(view, now, last, e.to_string()),
    }
}

/// The snapshot without asking Auto Scaling (it failed a moment ago and is being given
/// time): `last` groups, `why` in `cloud_unavailable`.
pub fn snapshot_without_cloud(
    view: ClusterView,
    now: Timestamp,
    last: &[Group],
    why: String,
) -> Snapshot {
    let groups: Vec<Group> = last
        .iter()
        .filter(|g| g.kind == GroupKind::AutoScaling)
        .cloned()
        .collect();
    assembled(view, now, groups, Some(why))
}

/// The groups the view needs; nodes in no group described are asked about once.
async fn describe(
    view: &ClusterView,
    cloud: &dyn Cloud,
    asked: &mut BTreeSet<String>,
) -> Result<Vec<Group>, PortError> {
    let mut names = view.groups_to_describe();
    let mut groups = cloud.describe_groups(&names).await?;
    // A NodeClaim's instance is Karpenter's, in no Auto Scaling group: not asked about.
    let known: BTreeSet<&str> = groups
        .iter()
        .chain(&view.node_pools)
        .flat_map(|g| g.instances.iter().map(|i| i.id.as_str()))
        .collect();
    let fresh: Vec<String> = view
        .nodes
        .iter()
        .filter_map(|n| n.instance_id.as_deref())
        .filter(|id| !known.contains(id) && !asked.contains(*id))
        .map(str::to_string)
        .collect();
    if !fresh.is_empty() {
        // A refusal of the ids themselves is not asked again; any other failure is Auto
        // Scaling's, as a describe's would be: the pass goes on without it and the caller
        // backs off, rather than every pass waiting on a lookup that fails (no credentials
        // in a Karpenter-only cluster, say).
        let found = match cloud.groups_of(&fresh).await {
            Ok(found) => {
                asked.extend(fresh);
                found
            }
            Err(PortError::Rejected(_) | PortError::NotFound(_)) => {
                asked.extend(fresh);
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        if !found.is_empty() {
            names.extend(found.into_iter().map(|(_, g)| g));
            names.sort_unstable();
            names.dedup();
            cloud.forget_cached();
            groups = cloud.describe_groups(&names).await?;
        }
    }
    Ok(groups)
}

/// The snapshot of `view` and its described `groups`, with the scaling activities of those
/// where a boost waits.
async fn complete(
    view: ClusterView,
    cloud: &dyn Cloud,
    now: Timestamp,
    mut groups: Vec<Group>,
) -> Snapshot {
    // Scaling activities, only where a boost waits for its capacity: the one place they
    // change a decision (launch failures; whether a raise took effect), and a bounded number
    // of calls. A failing call is no reason to stop.
    for g in groups.iter_mut() {
        let waiting = view.ledger.entries.values().any(|e| {
            e.released_at.is_none()
                && e.retiring.is_none()
                && e.boost_group() == g.name
                && matches!(e.boost, Boost::Applying { .. } | Boost::Applied { .. })
        });
        if waiting {
            // Unread activities prove nothing either way: `activities_read` says which.
            if let Ok(a) = cloud.scaling_activities(&g.name).await {
                g.launch_failures = a.failures;
                g.raises = a.raises;
                g.activities_read = true;
            }
        }
    }
    assembled(view, now, groups, None)
}

/// The snapshot of a cluster view and the Auto Scaling groups read (or last known); the
/// view's node pools (Karpenter) join the groups. Failures are the executor's to add.
fn assembled(
    view: ClusterView,
    now: Timestamp,
    mut groups: Vec<Group>,
    cloud_unavailable: Option<String>,
) -> Snapshot {
    groups.extend(view.node_pools);
    Snapshot {
        now,
        ca_status: view.ca_status,
        groups,
        nodes: view.nodes,
        signals: view.signals,
        ledger: view.ledger,
        cloud_unavailable,
        placeholders: view.placeholders,
        failures: Vec::new(),
    }
}
