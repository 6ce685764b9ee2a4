//! The ledger ConfigMap: read from its watch (or from our own newer write, or a GET after a
//! conflict), and written as a compare-and-swap on its resourceVersion.

use std::sync::Arc;
use std::time::{Duration, Instant};

use booster_core::ports::PortError;
use booster_core::Ledger;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, PostParams};

use super::{KubeCluster, Settings};
use crate::convert;
use crate::errors::port_error;

/// How long our own write is trusted over a watch that does not show it yet.
const WRITTEN_TRUSTED: Duration = Duration::from_secs(30);

/// The ledger as this replica last read or wrote it. The watch lags our own writes by a
/// moment: until it shows the version we wrote, that write is the ledger.
#[derive(Default)]
pub(super) struct LedgerState {
    /// resourceVersion the next write is conditioned on (compare-and-swap).
    version: Option<String>,
    /// Our last write, until the watch shows it (or a deadline: then it is read again).
    written: Option<(String, Ledger, Instant)>,
    /// A write conflicted: the next read is a GET, not the cache.
    reread: bool,
}

/// ConfigMaps in the controller's namespace, where the ledger lives.
pub(super) fn api(cluster: &KubeCluster) -> Api<ConfigMap> {
    Api::namespaced(cluster.client.clone(), &cluster.settings.namespace)
}

/// The ledger from the watch; our own last write while the watch does not show it yet;
/// a GET after a conflict.
pub(super) async fn read(cluster: &KubeCluster) -> Result<Ledger, PortError> {
    let name = &cluster.settings.ledger_configmap;
    let mut st = cluster.ledger_state.lock().await;
    let cm = if st.reread {
        let cm = api(cluster)
            .get_opt(name)
            .await
            .map_err(|e| port_error(&format!("get ConfigMap {name}"), e))?;
        st.reread = false;
        st.written = None;
        cm.map(Arc::new)
    } else {
        let cached = cluster
            .watches
            .ledger
            .state()
            .into_iter()
            .find(|c| c.metadata.name.as_deref() == Some(name.as_str()));
        if let Some((version, ledger, at)) = st.written.clone() {
            let caught_up = cached
                .as_ref()
                .is_some_and(|c| c.metadata.resource_version.as_deref() == Some(&version));
            if !caught_up && at.elapsed() < WRITTEN_TRUSTED {
                st.version = Some(version);
                return Ok(ledger);
            }
            st.written = None;
        }
        cached
    };
    match cm {
        None => {
            st.version = None;
            Ok(Ledger::default())
        }
        Some(cm) => {
            st.version = cm.metadata.resource_version.clone();
            // A ledger we cannot read must stop the controller, not be overwritten.
            convert::ledger_of(&cm).map_err(|e| PortError::Rejected(e.to_string()))
        }
    }
}

/// Writes `ledger` over the version last read. The state stays locked throughout, so that
/// no read slips between the write and what it leaves for the next one.
pub(super) async fn store(cluster: &KubeCluster, ledger: &Ledger) -> Result<(), PortError> {
    let mut st = cluster.ledger_state.lock().await;
    let cm = configmap_of(&cluster.settings, ledger, st.version.clone())?;
    let stored = write(cluster, &cm).await;
    remember(&mut st, stored, ledger)
}

/// The ledger ConfigMap holding `ledger`, conditioned on `version` (none: it is created).
fn configmap_of(
    settings: &Settings,
    ledger: &Ledger,
    version: Option<String>,
) -> Result<ConfigMap, PortError> {
    Ok(ConfigMap {
        metadata: ObjectMeta {
            name: Some(settings.ledger_configmap.clone()),
            namespace: Some(settings.namespace.clone()),
            resource_version: version,
            ..ObjectMeta::default()
        },
        data: Some(
            convert::ledger_data(ledger).map_err(|e| {
                PortError::Rejected(format!("the ledger cannot be serialised: {e}"))
            })?,
        ),
        ..ConfigMap::default()
    })
}

/// Replaces the ConfigMap when `cm` carries a version, creates it when it does not.
async fn write(cluster: &KubeCluster, cm: &ConfigMap) -> Result<ConfigMap, PortError> {
    let name = &cluster.settings.ledger_configmap;
    let ns = &cluster.settings.namespace;
    let pp = PostParams {
        field_manager: Some(cluster.settings.manager.clone()),
        ..PostParams::default()
    };
    match cm.metadata.resource_version.as_ref() {
        // Replace with the version we read: 409 if somebody wrote in between.
        Some(_) => api(cluster).replace(name, &pp, cm).await,
        None => api(cluster).create(&pp, cm).await.inspect_err(|e| {
            // The shipped RBAC allows no `create`: the chart makes the ConfigMap.
            if crate::errors::status_of(e) == Some(403) {
                tracing::error!(
                    configmap = %format!("{ns}/{name}"),
                    "the ledger ConfigMap is missing and this account may not create it: \
                     nothing is done until it exists (kubectl -n {ns} create configmap {name}, \
                     or upgrade the Helm release)"
                );
            }
        }),
    }
    .map_err(|e| port_error(&format!("store ledger ConfigMap {ns}/{name}"), e))
}

/// What a write leaves for the next read: on success its version, and the ledger itself
/// until the watch shows it.
fn remember(
    st: &mut LedgerState,
    stored: Result<ConfigMap, PortError>,
    ledger: &Ledger,
) -> Result<(), PortError> {
    match stored {
        Ok(cm) => {
            st.version = cm.metadata.resource_version.clone();
            st.written = st
                .version
                .clone()
                .map(|v| (v, ledger.clone(), Instant::now()));
            Ok(())
        }
        Err(e) => {
            // Somebody wrote or deleted it in between: read it fresh next time.
            if matches!(e, PortError::Conflict(_) | PortError::NotFound(_)) {
                st.reread = true;
            }
            Err(e)
        }
    }
}
