//! AWS Node Termination Handler's part for one node, as NTH 1.25 does it in IMDS mode
//! with `enableRebalanceMonitoring=true`, `enableRebalanceDraining=false`,
//! `taintNode=true` and `emitKubernetesEvents=true`, reading the node's own
//! amazon-ec2-metadata-mock every 2 s:
//!
//! - on a rebalance recommendation (`/latest/meta-data/events/recommendations/rebalance`):
//!   the `aws-node-termination-handler/rebalance-recommendation` taint, a cordon, and a
//!   `RebalanceRecommendation` Event shaped as NTH writes it (no drain);
//! - on a spot interruption notice (`/latest/meta-data/spot/instance-action`): the
//!   `spot-itn` taint, a cordon, a `SpotInterruption` Event, and a drain through the
//!   Eviction API (budgets respected, a refused eviction retried every 2 s).
//!
//! After the notice, AWS interrupts: `lead` later the instance is terminated without
//! decrementing the group, which launches a replacement.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, EvictParams, ListParams, Patch, PatchParams, PostParams};
use kube::Client;

use super::{bridge, http_get, rfc3339_now, NS};

const REBALANCE_TAINT: &str = "aws-node-termination-handler/rebalance-recommendation";
const ITN_TAINT: &str = "aws-node-termination-handler/spot-itn";

/// The `noticeTime` or `time` field of an IMDS answer.
fn json_field(body: &str, key: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v.get(key)?.as_str().map(str::to_string)
}

/// NTH's event id (a valid label value), which it also uses as the taint's value.
fn event_id(kind: &str, at: &str) -> String {
    let digits: String = at.chars().filter(char::is_ascii_digit).collect();
    format!("{kind}-{digits}")
}

async fn taint_and_cordon(nodes: &Api<Node>, node: &str, key: &str, value: &str) {
    let Ok(n) = nodes.get(node).await else {
        return;
    };
    let mut taints = n.spec.and_then(|s| s.taints).unwrap_or_default();
    if !taints.iter().any(|t| t.key == key) {
        taints.push(k8s_openapi::api::core::v1::Taint {
            key: key.to_string(),
            value: Some(value.to_string()),
            effect: "NoSchedule".to_string(),
            time_added: None,
        });
    }
    let patch = serde_json::json!({"spec": {"unschedulable": true, "taints": taints}});
    if let Err(e) = nodes
        .patch(node, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        eprintln!("nth {node}: cordon: {e}");
    }
}

async fn event(kube: &Client, node: &str, instance: &str, reason: &str, message: String) {
    let now = rfc3339_now();
    let ev: Result<Event, _> = serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": format!("{node}.{:x}", super::unix_now() as u64 * 1_000_003 + instance.len() as u64),
            "namespace": NS,
            "annotations": {
                "instance-id": instance,
                "instance-life-cycle": "spot",
                "instance-type": "m5.xlarge",
                "local-hostname": node,
                "region": "eu-west-1"
            }
        },
        "involvedObject": {"kind": "Node", "name": node, "namespace": NS},
        "reason": reason,
        "message": message,
        "source": {"component": "aws-node-termination-handler", "host": node},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "type": "Normal"
    }));
    if let Ok(ev) = ev {
        if let Err(e) = Api::<Event>::namespaced(kube.clone(), NS)
            .create(&PostParams::default(), &ev)
            .await
        {
            eprintln!("nth {node}: event: {e}");
        }
    }
}

/// Evicts every pod of `node`, budgets respected; returns when none is left.
async fn drain(kube: &Client, node: &str, until: Instant) {
    let pods: Api<Pod> = Api::all(kube.clone());
    let lp = ListParams::default().fields(&format!("spec.nodeName={node}"));
    while Instant::now() < until {
        let Ok(list) = pods.list(&lp).await else {
            return;
        };
        let live: Vec<&Pod> = list
            .items
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        if list.items.is_empty() {
            return;
        }
        for p in live {
            let (Some(name), Some(ns)) = (&p.metadata.name, &p.metadata.namespace) else {
                continue;
            };
            // A 429 (budget) is retried on the next round, as NTH's drain does.
            let _ = Api::<Pod>::namespaced(kube.clone(), ns)
                .evict(name, &EvictParams::default())
                .await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Runs until the instance is interrupted (or the task is aborted).
pub async fn run(
    kube: Client,
    asg: aws_sdk_autoscaling::Client,
    imds: u16,
    node: String,
    instance: String,
    lead: Option<Duration>,
) {
    let nodes: Api<Node> = Api::all(kube.clone());
    let mut rebalanced = false;
    loop {
        if !rebalanced {
            if let Some((200, body)) =
                http_get(imds, "/latest/meta-data/events/recommendations/rebalance").await
            {
                let at = json_field(&body, "noticeTime").unwrap_or_else(rfc3339_now);
                let id = event_id("rebalance-recommendation", &at);
                taint_and_cordon(&nodes, &node, REBALANCE_TAINT, &id).await;
                let message = format!(
                    "Rebalance recommendation received. Instance will be cordoned at {at} \n"
                );
                event(&kube, &node, &instance, "RebalanceRecommendation", message).await;
                rebalanced = true;
            }
        }
        if let Some(lead) = lead {
            if let Some((200, body)) =
                http_get(imds, "/latest/meta-data/spot/instance-action").await
            {
                let at = json_field(&body, "time").unwrap_or_else(rfc3339_now);
                taint_and_cordon(&nodes, &node, ITN_TAINT, &event_id("spot-itn", &at)).await;
                let message = format!(
                    "Spot interruption notice for instance {instance} was sent at {} \n",
                    rfc3339_now()
                );
                event(&kube, &node, &instance, "SpotInterruption", message).await;
                let interrupt_at = Instant::now() + lead;
                drain(&kube, &node, interrupt_at).await;
                tokio::time::sleep(interrupt_at.saturating_duration_since(Instant::now())).await;
                interrupt(&asg, &instance).await;
                return;
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// AWS reclaims the instance: it ends, and the group (desired unchanged) replaces it.
async fn interrupt(asg: &aws_sdk_autoscaling::Client, instance: &str) {
    let still_there = bridge::describe(asg)
        .await
        .map(|(_, ids)| ids.iter().any(|i| i == instance))
        .unwrap_or(false);
    if !still_there {
        return;
    }
    if let Err(e) = asg
        .terminate_instance_in_auto_scaling_group()
        .instance_id(instance)
        .should_decrement_desired_capacity(false)
        .send()
        .await
    {
        eprintln!("interrupting {instance}: {e:?}");
    }
}
