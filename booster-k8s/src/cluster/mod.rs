//! [`KubeCluster`]: the `Cluster` port on kube-rs, with reflectors for what changes often.
//! Each concern has a file of its own; the port's methods here hand over to them.

mod capacity;
mod census;
mod ledger_store;
mod node_writes;
mod observe;
mod recorder;
mod settings;
mod watches;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use booster_core::ports::{Cluster, ClusterView, DrainOutcome, DrainSpec, PortError};
use booster_core::{Ledger, Reason};
use kube::runtime::events::Recorder;
use kube::Client;
use tokio::sync::Mutex;

use crate::changes::Changes;
use crate::convert::PodCensus;
use crate::drain;
use census::Timed;
use ledger_store::LedgerState;
pub use settings::Settings;
use watches::{Contact, Watches};

/// The Kubernetes side of the booster.
pub struct KubeCluster {
    client: Client,
    settings: Settings,
    /// Nodes, rebalance Events, the CA status and ledger ConfigMaps, placeholder pods;
    /// their tasks stop when this is dropped.
    watches: Watches,
    /// What this replica knows of the ledger beyond the watch.
    ledger_state: Mutex<LedgerState>,
    changed: Arc<Changes>,
    contact: Contact,
    /// What this process's drains last saw.
    drains: drain::Progress,
    /// The last list of each signalled node's pods, and when.
    censuses: Timed<PodCensus>,
    recorder: Recorder,
    /// What the surges did since the controller last took it.
    surges: crate::surge::Reporting,
}

impl KubeCluster {
    /// Starts the watches (Nodes; rebalance Events in `--event-namespaces`; the CA status
    /// ConfigMap). Call [`KubeCluster::ready`] before the first `observe`.
    pub fn start(client: Client, mut settings: Settings) -> Self {
        // One namespace setting: the drain's rules follow where placeholders are made.
        settings.pods.placeholder_namespace = settings.placeholders.namespace.clone();
        let changed = Arc::new(Changes::default());
        let contact = Contact::new();
        let watches = Watches::spawn(&client, &settings, &changed, &contact);
        let recorder = recorder::new(&client, &settings);
        KubeCluster {
            client,
            settings,
            watches,
            ledger_state: Mutex::new(LedgerState::default()),
            changed,
            contact,
            drains: drain::Progress::default(),
            censuses: Default::default(),
            surges: crate::surge::Reporting {
                log: Default::default(),
                recorder: recorder.clone(),
            },
            recorder,
        }
    }

    /// Waits until every watch has listed once (readiness).
    pub async fn ready(&self, timeout: Duration) -> Result<(), PortError> {
        let all = self.watches.listed(&self.settings.placeholders.namespace);
        tokio::time::timeout(timeout, all)
            .await
            .map_err(|_| PortError::Unavailable("watches did not list within the timeout".into()))
    }

    /// Woken on any watched change (the loop waits on it between passes). One waiter: a
    /// change that arrives while nobody waits wakes the next wait at once.
    pub fn changes(&self) -> Arc<Changes> {
        self.changed.clone()
    }
}

#[async_trait]
impl Cluster for KubeCluster {
    async fn observe(&self) -> Result<ClusterView, PortError> {
        observe::observe(self).await
    }

    async fn store_ledger(&self, ledger: &Ledger) -> Result<(), PortError> {
        ledger_store::store(self, ledger).await
    }

    async fn set_unschedulable(&self, node: &str, unschedulable: bool) -> Result<(), PortError> {
        node_writes::set_unschedulable(self, node, unschedulable).await
    }

    async fn remove_rebalance_taint(&self, node: &str) -> Result<(), PortError> {
        node_writes::remove_rebalance_taint(self, node).await
    }

    async fn protect(&self, node: &str, for_node: &str) -> Result<(), PortError> {
        node_writes::protect(self, node, for_node).await
    }

    async fn unprotect(&self, node: &str) -> Result<(), PortError> {
        node_writes::unprotect(self, node).await
    }

    async fn set_standby_taint(&self, node: &str, standby: bool) -> Result<(), PortError> {
        node_writes::set_standby_taint(self, node, standby).await
    }

    async fn mark_boost(&self, node: &str, entry: &booster_core::Entry) -> Result<(), PortError> {
        node_writes::mark_boost(self, node, entry).await
    }

    async fn clear_boost_mark(&self, node: &str) -> Result<(), PortError> {
        node_writes::clear_boost_mark(self, node).await
    }

    async fn drain(&self, spec: &DrainSpec) -> Result<DrainOutcome, PortError> {
        drain::run_reporting(
            &self.client,
            spec,
            &self.settings.pods,
            self.settings.eviction_grace_seconds,
            &self.drains,
            drain::SurgeCtx {
                settings: self.settings.surge,
                manager: &self.settings.manager,
                reporting: &self.surges,
            },
        )
        .await
    }

    async fn settle_surges(&self, draining: &BTreeSet<String>) -> Result<(), PortError> {
        if self.settings.dry_run {
            return Ok(());
        }
        let settled =
            crate::surge::settle(&self.client, &self.settings.manager, &self.surges, draining)
                .await;
        match settled {
            // With surges off the chart grants no right to list Deployments: nothing was
            // surged that this could find.
            Err(PortError::Forbidden(_))
                if self.settings.surge.mode == booster_core::surge::SurgeMode::Off =>
            {
                Ok(())
            }
            other => other,
        }
    }

    fn take_surge_reports(&self) -> Vec<booster_core::surge::SurgeReport> {
        self.surges
            .log
            .lock()
            .map(|mut l| std::mem::take(&mut *l))
            .unwrap_or_default()
    }

    async fn place_placeholders(
        &self,
        node: &str,
        signal_at: booster_core::Timestamp,
    ) -> Result<u32, PortError> {
        capacity::place_placeholders(self, node, signal_at).await
    }

    async fn remove_placeholders(&self, node: &str) -> Result<(), PortError> {
        capacity::remove_placeholders(self, node).await
    }

    async fn delete_nodeclaim(&self, name: &str) -> Result<(), PortError> {
        capacity::delete_nodeclaim(self, name).await
    }

    async fn record_event(
        &self,
        node: &str,
        reason: Reason,
        message: &str,
        warning: bool,
    ) -> Result<(), PortError> {
        recorder::record(self, node, reason, message, warning).await
    }
}
