//! AWS's own part for groups with Capacity Rebalancing, which moto does not model: on a
//! node with a rebalance recommendation (NTH's taint), AWS launches a replacement without
//! raising desired capacity and, once the replacement is in service, terminates the old
//! instance; on an EKS managed node group, EKS drains the old node first.
//!
//! In moto that is: desired + 1 (the launch), the replacement's Node Ready, the old node
//! drained through the Eviction API, then TerminateInstanceInAutoScalingGroup with
//! decrement (desired back where it was). The harness counts what it launched.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use kube::Client;

use super::{bridge, node_ready, Record, GROUP};

const REBALANCE_TAINT: &str = "aws-node-termination-handler/rebalance-recommendation";

/// What AWS's Capacity Rebalancing did.
#[derive(Debug, Default, Clone)]
pub struct Rebalanced {
    /// Instances it launched.
    pub launched: usize,
    /// Instances it terminated (after the replacement was in service).
    pub terminated: Vec<String>,
}

/// Runs until aborted.
pub async fn capacity_rebalance(
    asg: aws_sdk_autoscaling::Client,
    kube: Client,
    record: Arc<Mutex<Record>>,
    done: Arc<Mutex<Rebalanced>>,
) {
    let nodes: Api<Node> = Api::all(kube.clone());
    let mut handled: BTreeSet<String> = BTreeSet::new();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Ok(list) = nodes.list(&Default::default()).await else {
            continue;
        };
        let signalled = list.items.iter().find_map(|n| {
            let name = n.metadata.name.clone()?;
            let tainted = n
                .spec
                .as_ref()?
                .taints
                .as_ref()?
                .iter()
                .any(|t| t.key == REBALANCE_TAINT);
            (tainted && !handled.contains(&name)).then_some(name)
        });
        let Some(old) = signalled else { continue };
        handled.insert(old.clone());
        let instance = record.lock().ok().and_then(|r| {
            r.nodes
                .iter()
                .find(|(_, n)| **n == old)
                .map(|(id, _)| id.clone())
        });
        let Some(instance) = instance else { continue };
        if let Err(e) = replace(&asg, &kube, &record, &old, &instance).await {
            eprintln!("aws capacity rebalance {old}: {e}");
            continue;
        }
        if let Ok(mut d) = done.lock() {
            d.launched += 1;
            d.terminated.push(instance);
        }
    }
}

async fn replace(
    asg: &aws_sdk_autoscaling::Client,
    kube: &Client,
    record: &Arc<Mutex<Record>>,
    old: &str,
    instance: &str,
) -> Result<(), String> {
    let before: BTreeSet<String> = record
        .lock()
        .map(|r| r.nodes.values().cloned().collect())
        .unwrap_or_default();
    let g = bridge::describe_group(asg).await?;
    asg.set_desired_capacity()
        .auto_scaling_group_name(GROUP)
        .desired_capacity(g.desired + 1)
        .honor_cooldown(false)
        .send()
        .await
        .map_err(|e| format!("launch: {e:?}"))?;
    // In service: the replacement's Node is Ready.
    let nodes: Api<Node> = Api::all(kube.clone());
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let fresh: Vec<String> = record
            .lock()
            .map(|r| {
                r.nodes
                    .values()
                    .filter(|n| !before.contains(*n))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let mut ready = false;
        for n in &fresh {
            if nodes
                .get_opt(n)
                .await
                .ok()
                .flatten()
                .is_some_and(|n| node_ready(&n))
            {
                ready = true;
            }
        }
        if ready {
            break;
        }
        if Instant::now() > deadline {
            return Err("the replacement never became Ready".into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // EKS drains the old node, then AWS terminates the instance.
    super::nth::drain(kube, old, Instant::now() + Duration::from_secs(60)).await;
    asg.terminate_instance_in_auto_scaling_group()
        .instance_id(instance)
        .should_decrement_desired_capacity(true)
        .send()
        .await
        .map_err(|e| format!("terminate: {e:?}"))?;
    Ok(())
}
