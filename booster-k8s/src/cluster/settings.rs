//! [`Settings`]: where the booster's objects live and how its drains behave.

use crate::convert;

/// Where things live and how drains behave.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Namespace of cluster-autoscaler's status ConfigMap (`--namespace`).
    pub ca_namespace: String,
    /// Its name (`--configmap`).
    pub ca_configmap: String,
    /// Namespace of the ledger ConfigMap (the controller's own).
    pub namespace: String,
    /// Name of the ledger ConfigMap.
    pub ledger_configmap: String,
    /// Which pods a drain may evict.
    pub pods: convert::PodRules,
    /// Field manager and Event reporter name.
    pub manager: String,
    /// The reporting instance (pod name).
    pub instance: String,
    /// Evictions override the pods' grace period with this (upstream
    /// `--ignore-pods-grace-period` is `Some(0)`).
    pub eviction_grace_seconds: Option<u32>,
    /// What placeholder pods are made of, and their namespace.
    pub placeholders: crate::placeholders::PlaceholderSettings,
    /// The namespaces whose rebalance Events are read (`--event-namespaces`): the only ones
    /// watched, so that what others post elsewhere costs neither memory nor requests.
    pub event_namespaces: Vec<String>,
    /// Which pods drains move by surge, and how long a successor may take.
    pub surge: crate::surge::SurgeSettings,
    /// A dry run: surges that no drain runs any more are not settled (nothing was written).
    pub dry_run: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            ca_namespace: "kube-system".into(),
            ca_configmap: "cluster-autoscaler-status".into(),
            namespace: "kube-system".into(),
            ledger_configmap: "aws-spots-booster-ledger".into(),
            pods: convert::PodRules::default(),
            manager: "aws-spots-booster".into(),
            instance: std::env::var("POD_NAME").unwrap_or_else(|_| "aws-spots-booster".into()),
            eviction_grace_seconds: None,
            placeholders: Default::default(),
            event_namespaces: vec![booster_core::config::NTH_EVENT_NAMESPACE.into()],
            surge: Default::default(),
            dry_run: false,
        }
    }
}
