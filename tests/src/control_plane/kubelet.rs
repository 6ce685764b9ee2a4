//! The kubelet's part for pods, played by the harness: the control plane runs no kubelet.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Client;

/// Plays the kubelet for pods: marks bound pods Running and Ready, and finishes the
/// deletion of terminating pods after `grace`.
pub struct Kubelet {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Kubelet {
    /// Starts it on `client`.
    pub fn start(client: Client, grace: Duration) -> Self {
        let task = tokio::spawn(async move {
            let pods = Api::<Pod>::all(client.clone());
            let stream = watcher(pods, watcher::Config::default()).applied_objects();
            let mut stream = std::pin::pin!(stream);
            while let Some(ev) = stream.next().await {
                let Ok(p) = ev else { continue };
                let (Some(ns), Some(name)) =
                    (p.metadata.namespace.clone(), p.metadata.name.clone())
                else {
                    continue;
                };
                let api = Api::<Pod>::namespaced(client.clone(), &ns);
                if p.metadata.deletion_timestamp.is_some() {
                    let api = api.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(grace).await;
                        let _ = api
                            .delete(&name, &DeleteParams::default().grace_period(0))
                            .await;
                    });
                    continue;
                }
                let bound = p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
                let running = p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
                if bound && !running {
                    let status = PodStatus {
                        phase: Some("Running".into()),
                        conditions: Some(vec![PodCondition {
                            type_: "Ready".into(),
                            status: "True".into(),
                            ..PodCondition::default()
                        }]),
                        ..PodStatus::default()
                    };
                    let patch = serde_json::json!({ "status": status });
                    let _ = api
                        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await;
                }
            }
        });
        Kubelet { task }
    }
}
