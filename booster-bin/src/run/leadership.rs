//! Which replica acts: the Lease's elector under `--leader-elect`, else this one alone; and
//! the Lease's release once the loop has stopped writing.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use booster_core::ports::Leadership;
use booster_k8s::lease::Timings;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::settings::RunArgs;

/// `--leader-elect=false`: this replica always leads.
struct AlwaysLeader;

#[async_trait]
impl Leadership for AlwaysLeader {
    async fn is_leader(&self) -> bool {
        true
    }
}

/// This replica's leadership, and the elector that holds the Lease.
pub(super) struct Lease {
    /// Whether this replica leads now.
    pub(super) leader: Arc<dyn Leadership>,
    release: oneshot::Sender<()>,
    elector: Option<JoinHandle<()>>,
    timings: Timings,
}

impl Lease {
    /// Starts the elector (under `--leader-elect`) as `identity`.
    pub(super) fn start(
        args: &RunArgs,
        kube: kube::Client,
        identity: &str,
        timings: Timings,
    ) -> Lease {
        // The elector stops (and releases the Lease) only when told, after the loop's writes
        // have stopped: releasing first would let the other replica act while a pass still
        // writes.
        let (release, release_rx) = oneshot::channel::<()>();
        let (leader, elector): (Arc<dyn Leadership>, _) = if args.leader_elect {
            let elector = Arc::new(booster_k8s::lease::Elector::new(
                booster_k8s::lease::LeaseLock::new(
                    kube,
                    &args.lease_namespace,
                    &args.lease_name,
                    identity,
                    timings,
                ),
            ));
            let e = elector.clone();
            let task = tokio::spawn(async move {
                e.run(async move {
                    let _ = release_rx.await;
                })
                .await;
            });
            (elector, Some(task))
        } else {
            (Arc::new(AlwaysLeader), None)
        };
        Lease {
            leader,
            release,
            elector,
            timings,
        }
    }

    /// Lets the Lease go; call it once no pass runs.
    pub(super) async fn release(self) {
        let _ = self.release.send(());
        if let Some(task) = self.elector {
            let _ = tokio::time::timeout(
                self.timings.call_timeout() * 2 + Duration::from_secs(1),
                task,
            )
            .await;
        }
    }
}
