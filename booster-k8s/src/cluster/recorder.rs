//! Kubernetes Events the booster posts about the nodes it acts on.

use booster_core::ports::PortError;
use booster_core::Reason;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event as KEvent, EventType, Recorder, Reporter};
use kube::runtime::reflector;
use kube::{Client, Resource};

use super::{KubeCluster, Settings};
use crate::errors::port_error;

/// A recorder reporting as the booster's manager name and pod.
pub(super) fn new(client: &Client, settings: &Settings) -> Recorder {
    Recorder::new(
        client.clone(),
        Reporter {
            controller: settings.manager.clone(),
            instance: Some(settings.instance.clone()),
        },
    )
}

/// Posts an Event on `node` (the message cut to 1,000 characters).
pub(super) async fn record(
    cluster: &KubeCluster,
    node: &str,
    reason: Reason,
    message: &str,
    warning: bool,
) -> Result<(), PortError> {
    let ev = KEvent {
        type_: if warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: reason.as_str().to_string(),
        note: Some(message.chars().take(1000).collect()),
        action: reason.code(),
        secondary: None,
    };
    cluster
        .recorder
        .publish(&ev, &node_ref(cluster, node))
        .await
        .map_err(|e| port_error(&format!("record Event on node {node}"), e))
}

/// The node's object reference, for Events.
fn node_ref(cluster: &KubeCluster, node: &str) -> ObjectReference {
    cluster
        .watches
        .nodes
        .get(&reflector::ObjectRef::new(node))
        .map(|n| n.object_ref(&()))
        .unwrap_or_else(|| ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(node.to_string()),
            ..Default::default()
        })
}
