//! Reading the cluster and Auto Scaling once, as a pass does, into a snapshot; nothing is
//! written.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result};
use booster_core::Snapshot;

/// Waits for the cluster's caches, observes it, and describes the groups (a snapshot with
/// `cloud_unavailable` set when Auto Scaling does not answer).
pub(super) async fn snapshot(args: &crate::settings::RunArgs) -> Result<Snapshot> {
    let kube = args.kube().await?;
    let cluster =
        booster_k8s::KubeCluster::start(kube, args.kube_settings("aws-spots-booster-status"));
    cluster
        .ready(Duration::from_secs(60))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("listing Nodes, Events, the CA status and the ledger")?;
    let view = booster_core::ports::Cluster::observe(&cluster)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("reading the cluster")?;
    let cloud = args.cloud().await;
    let now = crate::controller::wall_clock();
    Ok(booster_core::exec::snapshot_tolerant(view, &cloud, now, &mut BTreeSet::new(), &[]).await)
}
