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
//! After the notice, AWS interrupts ([`interrupt_after_notice`]): `lead` later the instance
//! is terminated without decrementing the group, which launches a replacement.
//!
//! With `BOOSTER_E2E_NTH=<path to a node-termination-handler binary>` the real NTH runs
//! instead ([`real_nth`]); the Go module proxy this project builds from refuses NTH's
//! module, so CI cannot build it, but a binary built elsewhere can be checked this way.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, EvictParams, ListParams, Patch, PatchParams, PostParams};
use kube::Client;

use super::{bridge, http_get, rfc3339_now, NS};

pub(crate) const REBALANCE_TAINT: &str = "aws-node-termination-handler/rebalance-recommendation";
pub(crate) const ITN_TAINT: &str = "aws-node-termination-handler/spot-itn";

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

/// NTH's writes carry client-go's default field manager: its binary's name.
pub const FIELD_MANAGER: &str = "node-termination-handler";

/// Cordons `node`, with the taint `(key, value)` if NTH is configured to taint.
pub(crate) async fn taint_and_cordon(nodes: &Api<Node>, node: &str, taint: Option<(&str, &str)>) {
    let Ok(n) = nodes.get(node).await else {
        return;
    };
    let mut taints = n.spec.and_then(|s| s.taints).unwrap_or_default();
    if let Some((key, value)) = taint.filter(|(key, _)| !taints.iter().any(|t| t.key == *key)) {
        taints.push(k8s_openapi::api::core::v1::Taint {
            key: key.to_string(),
            value: Some(value.to_string()),
            effect: "NoSchedule".to_string(),
            time_added: None,
        });
    }
    let patch = serde_json::json!({"spec": {"unschedulable": true, "taints": taints}});
    let pp = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    if let Err(e) = nodes.patch(node, &pp, &Patch::Merge(&patch)).await {
        eprintln!("nth {node}: cordon: {e}");
    }
}

/// NTH's Event on `node`; `host` is the node NTH itself runs on (in IMDS mode the same).
pub(crate) async fn event(
    kube: &Client,
    node: &str,
    host: &str,
    instance: &str,
    reason: &str,
    message: String,
) {
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
        "source": {"component": "aws-node-termination-handler", "host": host},
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
pub(crate) async fn drain(kube: &Client, node: &str, until: Instant) {
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

/// What NTH does on a rebalance recommendation noticed at `at` (RFC 3339), with its
/// recommended settings: the taint, the cordon and the Event.
pub async fn rebalance(kube: &Client, node: &str, instance: &str, at: &str) {
    let id = event_id("rebalance-recommendation", at);
    taint_and_cordon(&Api::all(kube.clone()), node, Some((REBALANCE_TAINT, &id))).await;
    let message =
        format!("Rebalance recommendation received. Instance will be cordoned at {at} \n");
    event(
        kube,
        node,
        node,
        instance,
        "RebalanceRecommendation",
        message,
    )
    .await;
}

/// NTH's part: runs until the spot interruption notice has been handled (or the task is
/// aborted). `watch_notice`: whether the scenario serves a notice at all.
pub async fn run(kube: Client, imds: u16, node: String, instance: String, watch_notice: bool) {
    let nodes: Api<Node> = Api::all(kube.clone());
    let mut rebalanced = false;
    loop {
        if !rebalanced {
            if let Some((200, body)) =
                http_get(imds, "/latest/meta-data/events/recommendations/rebalance").await
            {
                let at = json_field(&body, "noticeTime").unwrap_or_else(rfc3339_now);
                rebalance(&kube, &node, &instance, &at).await;
                rebalanced = true;
            }
        }
        if watch_notice {
            if let Some((200, body)) =
                http_get(imds, "/latest/meta-data/spot/instance-action").await
            {
                let at = json_field(&body, "time").unwrap_or_else(rfc3339_now);
                let id = event_id("spot-itn", &at);
                taint_and_cordon(&nodes, &node, Some((ITN_TAINT, &id))).await;
                let message = format!(
                    "Spot interruption notice for instance {instance} was sent at {} \n",
                    rfc3339_now()
                );
                event(&kube, &node, &node, &instance, "SpotInterruption", message).await;
                drain(&kube, &node, Instant::now() + Duration::from_secs(120)).await;
                return;
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// AWS's part: `lead` after the node's metadata first serves the spot interruption notice,
/// the instance is reclaimed.
pub async fn interrupt_after_notice(
    asg: aws_sdk_autoscaling::Client,
    imds: u16,
    instance: String,
    lead: Duration,
) {
    while !matches!(
        http_get(imds, "/latest/meta-data/spot/instance-action").await,
        Some((200, _))
    ) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(lead).await;
    interrupt(&asg, &instance).await;
}

/// The real NTH binary (`BOOSTER_E2E_NTH`) for `node`, configured through its environment
/// as the Helm chart would for IMDS mode with rebalance monitoring on and rebalance
/// draining off, pointed at the node's metadata mock. It reads in-cluster credentials from
/// the fixed service-account paths, which [`in_cluster_credentials`] writes.
pub fn real_nth(bin: &Path, imds: u16, node: &str, api_port: &str) -> Command {
    let mut c = Command::new(bin);
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("NODE_NAME", node)
        .env("INSTANCE_METADATA_URL", format!("http://127.0.0.1:{imds}"))
        .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        .env("KUBERNETES_SERVICE_PORT", api_port)
        .env("ENABLE_REBALANCE_MONITORING", "true")
        .env("ENABLE_REBALANCE_DRAINING", "false")
        .env("ENABLE_SPOT_INTERRUPTION_DRAINING", "true")
        .env("ENABLE_SCHEDULED_EVENT_DRAINING", "false")
        .env("EMIT_KUBERNETES_EVENTS", "true")
        .env("TAINT_NODE", "true")
        .env("IGNORE_DAEMON_SETS", "true")
        .env("DELETE_LOCAL_DATA", "true")
        .env("POD_TERMINATION_GRACE_PERIOD", "-1")
        .env("NODE_TERMINATION_GRACE_PERIOD", "120")
        .env("METADATA_TRIES", "3")
        .env("LOG_LEVEL", "debug");
    c
}

/// Where client-go's in-cluster configuration reads its token and CA.
const SA_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Writes the admin token and the apiserver's certificate where an in-cluster client looks
/// for them (needs write access to /var/run; the real-NTH mode only).
pub fn in_cluster_credentials(certs: &Path, token: &str) -> Result<(), String> {
    std::fs::create_dir_all(SA_DIR).map_err(|e| format!("{SA_DIR}: {e}"))?;
    std::fs::write(format!("{SA_DIR}/token"), token).map_err(|e| e.to_string())?;
    std::fs::copy(certs.join("apiserver.crt"), format!("{SA_DIR}/ca.crt"))
        .map_err(|e| format!("apiserver.crt: {e}"))?;
    std::fs::write(format!("{SA_DIR}/namespace"), "kube-system").map_err(|e| e.to_string())?;
    Ok(())
}

/// AWS reclaims the instance: it ends, and the group (desired unchanged) replaces it.
pub(crate) async fn interrupt(asg: &aws_sdk_autoscaling::Client, instance: &str) {
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
