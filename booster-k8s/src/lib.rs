//! Kubernetes adapter of aws-spots-booster (kube-rs): [`KubeCluster`] implements
//! [`booster_core::ports::Cluster`], [`lease::Elector`] implements
//! [`booster_core::ports::Leadership`].
//!
//! * Nodes, NTH's rebalance Events (all namespaces) and cluster-autoscaler's status
//!   ConfigMap are watched through reflectors, slimmed to the fields the engine reads
//!   (Events are decoded into [`event::NthEvent`], so a huge message is never held).
//! * Events are claims; the Node's taint and the `managedFields` owner of its cordon are
//!   what the engine checks them against. The ledger in a ConfigMap keeps the rest across
//!   restarts (written with its resourceVersion: 409 on a race).
//! * Drains evict through `policy/v1` Eviction, so PodDisruptionBudgets hold.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod changes;
mod cluster;
pub mod convert;
pub mod drain;
mod errors;
pub mod event;
pub mod lease;
pub mod placeholders;
pub mod surge;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use changes::Changes;
pub use cluster::{KubeCluster, Settings};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// How to reach the apiserver (the seed's `--connection-mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionMode {
    /// A kubeconfig file, current context.
    Kubectl,
    /// The pod's service account.
    InCluster,
}

/// Why no client could be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The kubeconfig could not be read.
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The file.
        path: String,
        /// Why.
        source: kube::config::KubeconfigError,
    },
    /// Not in a pod, or its service account is not mounted.
    #[error("in-cluster configuration: {0}")]
    InCluster(#[from] kube::config::InClusterError),
    /// The configuration could not make a client.
    #[error("client: {0}")]
    Client(#[from] kube::Error),
}

/// `~` and `~/…` expanded with `$HOME`.
pub fn expand_home(p: &Path) -> PathBuf {
    let Ok(rest) = p.strip_prefix("~") else {
        return p.to_path_buf();
    };
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(rest),
        None => p.to_path_buf(),
    }
}

/// A client for `mode`. With `Kubectl`, `kubeconfig` names the file (`~` expanded); when it
/// is `None`, `KUBECONFIG` is honoured, then `~/.kube/config`.
pub async fn client(
    mode: ConnectionMode,
    kubeconfig: Option<&Path>,
) -> Result<Client, ConnectError> {
    let config = match mode {
        ConnectionMode::InCluster => Config::incluster()?,
        ConnectionMode::Kubectl => {
            let (kc, path) = match kubeconfig {
                Some(p) => {
                    let p = expand_home(p);
                    (Kubeconfig::read_from(&p), p.display().to_string())
                }
                None => (
                    Kubeconfig::read(),
                    "$KUBECONFIG or ~/.kube/config".to_string(),
                ),
            };
            let kc = kc.map_err(|source| ConnectError::Kubeconfig {
                path: path.clone(),
                source,
            })?;
            Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|source| ConnectError::Kubeconfig { path, source })?
        }
    };
    Ok(Client::try_from(without_retries(config))?)
}

/// How long the apiserver may take to answer one request (reads and writes alike), and the
/// longest a connection may stay silent. A half-open connection (the apiserver's endpoint
/// moved, a NAT dropped the flow) then fails the call instead of hanging the loop.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Connecting, and sending one request.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The server-side timeout of every watch: shorter than [`READ_TIMEOUT`], so that a quiet
/// watch is closed by the apiserver (and resumed from its resourceVersion) before the read
/// timeout would call it dead; a dead one is found within `READ_TIMEOUT`.
pub const WATCH_TIMEOUT_SECS: u32 = 25;

/// The client settings every booster client has: no hidden retries, and deadlines.
///
/// kube-client retries 429 answers with backoff by default. For an eviction a 429 is the
/// PodDisruptionBudget's answer, to be seen at once (the drain retries per pod), and the
/// loop retries everything else on its next pass: no hidden waits.
pub fn without_retries(mut config: Config) -> Config {
    config.default_retry = false;
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.write_timeout = Some(CONNECT_TIMEOUT);
    config.read_timeout = Some(READ_TIMEOUT);
    // The read timeout counts from the request, not from when a pooled connection went idle.
    config.reset_reader_on_write = true;
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tilde_is_the_home_directory() {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        assert_eq!(
            expand_home(Path::new("~/.kube/config")),
            home.join(".kube/config")
        );
        assert_eq!(
            expand_home(Path::new("/etc/kubeconfig")),
            PathBuf::from("/etc/kubeconfig")
        );
        assert_eq!(expand_home(Path::new("rel/~x")), PathBuf::from("rel/~x"));
    }

    #[tokio::test]
    async fn a_missing_kubeconfig_names_the_file() {
        let err = client(
            ConnectionMode::Kubectl,
            Some(Path::new("/nonexistent/kubeconfig")),
        )
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            err.starts_with("kubeconfig /nonexistent/kubeconfig:"),
            "{err}"
        );
    }
}
