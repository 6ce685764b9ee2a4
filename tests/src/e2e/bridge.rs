//! moto instances → kwok Nodes: each in-service instance of the group becomes a Node
//! `boot_delay` after it was first seen, named and labelled as on EKS, with
//! `spec.providerID: aws:///<az>/<instance-id>`; an instance that leaves the group (retired
//! or interrupted) takes its Node and the Node's pods with it, as a terminated VM does.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::Client;

use super::{Record, GROUP};

/// The annotation kwok manages nodes by.
pub const KWOK_ANNOTATION: &str = "kwok.x-k8s.io/node";

/// The group as moto describes it.
#[derive(Debug, Default)]
pub struct GroupView {
    /// Desired capacity.
    pub desired: i32,
    /// Min size.
    pub min: i32,
    /// Max size.
    pub max: i32,
    /// Instance id → zone, for the instances still in the group (not terminating).
    pub instances: BTreeMap<String, String>,
}

/// The group's desired capacity and in-service (or pending) instance ids.
pub async fn describe(asg: &aws_sdk_autoscaling::Client) -> Result<(i32, Vec<String>), String> {
    let g = describe_group(asg).await?;
    Ok((g.desired, g.instances.into_keys().collect()))
}

/// The group, from moto.
pub async fn describe_group(asg: &aws_sdk_autoscaling::Client) -> Result<GroupView, String> {
    describe_all(asg)
        .await?
        .into_iter()
        .find(|(n, _)| n == GROUP)
        .map(|(_, g)| g)
        .ok_or_else(|| format!("group {GROUP} not found"))
}

/// Every group, from moto, by name.
pub async fn describe_all(
    asg: &aws_sdk_autoscaling::Client,
) -> Result<Vec<(String, GroupView)>, String> {
    let out = asg
        .describe_auto_scaling_groups()
        .send()
        .await
        .map_err(|e| format!("describe: {e:?}"))?;
    Ok(out
        .auto_scaling_groups()
        .iter()
        .map(|g| {
            let instances = g
                .instances()
                .iter()
                .filter(|i| {
                    !i.lifecycle_state()
                        .is_some_and(|s| s.as_str().starts_with("Terminat"))
                })
                .filter_map(|i| {
                    Some((
                        i.instance_id()?.to_string(),
                        i.availability_zone().unwrap_or("eu-west-1a").to_string(),
                    ))
                })
                .collect();
            let view = GroupView {
                desired: g.desired_capacity().unwrap_or_default(),
                min: g.min_size().unwrap_or_default(),
                max: g.max_size().unwrap_or_default(),
                instances,
            };
            (
                g.auto_scaling_group_name().unwrap_or_default().to_string(),
                view,
            )
        })
        .collect())
}

/// The label the harness gives a Node: the group its instance is in.
pub const GROUP_LABEL: &str = "asb.test/group";

fn node_for(name: &str, id: &str, zone: &str, group: &str) -> Result<Node, String> {
    let mut node = serde_json::json!({
        "metadata": {
            "name": name,
            "annotations": {KWOK_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "topology.kubernetes.io/zone": zone,
                "topology.kubernetes.io/region": "eu-west-1",
                "node.kubernetes.io/instance-type": "m5.xlarge",
                "eks.amazonaws.com/capacityType": "SPOT",
                "type": "kwok",
                GROUP_LABEL: group
            }
        },
        "spec": {"providerID": format!("aws:///{zone}/{id}")},
        "status": {
            "allocatable": {"cpu": "4", "memory": "16Gi", "pods": "110"},
            "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"}
        }
    });
    // What EKS writes on a managed node group's Nodes (its group carries the
    // `eks:nodegroup-name` tag); the fallback group is self-managed.
    if group == super::GROUP {
        node["metadata"]["labels"]["eks.amazonaws.com/nodegroup"] = super::NODEGROUP.into();
    }
    serde_json::from_value(node).map_err(|e| e.to_string())
}

/// Runs until aborted.
pub async fn run(
    asg: aws_sdk_autoscaling::Client,
    kube: Client,
    record: Arc<Mutex<Record>>,
    t0: Instant,
    boot_delay: Duration,
    reuse_names: bool,
) {
    let nodes: Api<Node> = Api::all(kube.clone());
    let pods: Api<Pod> = Api::all(kube.clone());
    let mut first_seen: BTreeMap<String, Instant> = BTreeMap::new();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut gone: BTreeSet<String> = BTreeSet::new();
    let mut last_desired = None;
    let mut n = 0u32;
    loop {
        match describe_all(&asg).await {
            Ok(groups) => {
                if let Some((_, g)) = groups.iter().find(|(n, _)| n == GROUP) {
                    if last_desired != Some(g.desired) {
                        last_desired = Some(g.desired);
                        if let Ok(mut r) = record.lock() {
                            r.desired.push((t0.elapsed(), g.desired));
                        }
                    }
                }
                let instances: BTreeMap<String, (String, String)> = groups
                    .iter()
                    .flat_map(|(name, g)| {
                        g.instances
                            .iter()
                            .map(move |(id, zone)| (id.clone(), (zone.clone(), name.clone())))
                    })
                    .collect();
                let now = Instant::now();
                for (id, (zone, group)) in &instances {
                    let seen = *first_seen.entry(id.clone()).or_insert(now);
                    if names.contains_key(id) || now.duration_since(seen) < boot_delay {
                        continue;
                    }
                    let ip_name = |k: u32| {
                        format!(
                            "ip-10-0-{}-{}.eu-west-1.compute.internal",
                            k / 250,
                            10 + k % 250
                        )
                    };
                    let name = if reuse_names {
                        // As EKS does: a node is named after its private IP, and a freed IP
                        // is given to the next instance.
                        let used: BTreeSet<&String> = names
                            .iter()
                            .filter(|(i, _)| !gone.contains(*i))
                            .map(|(_, n)| n)
                            .collect();
                        let free = (1..).map(ip_name).find(|c| !used.contains(c));
                        free.unwrap_or_else(|| ip_name(0))
                    } else {
                        n += 1;
                        ip_name(n)
                    };
                    let Ok(node) = node_for(&name, id, zone, group) else {
                        continue;
                    };
                    if nodes.create(&PostParams::default(), &node).await.is_ok() {
                        names.insert(id.clone(), name.clone());
                        if let Ok(mut r) = record.lock() {
                            r.nodes.insert(id.clone(), name);
                            r.zones.insert(id.clone(), zone.to_string());
                        }
                    }
                }
                for (id, name) in &names {
                    if instances.contains_key(id) || gone.contains(id) {
                        continue;
                    }
                    // The VM is gone: its Node and pods go with it.
                    let _ = nodes.delete(name, &DeleteParams::default()).await;
                    let lp = ListParams::default().fields(&format!("spec.nodeName={name}"));
                    if let Ok(list) = pods.list(&lp).await {
                        for p in list.items {
                            let (Some(pn), Some(ns)) = (p.metadata.name, p.metadata.namespace)
                            else {
                                continue;
                            };
                            let _ = Api::<Pod>::namespaced(kube.clone(), &ns)
                                .delete(&pn, &DeleteParams::default().grace_period(0))
                                .await;
                        }
                    }
                    gone.insert(id.clone());
                    if let Ok(mut r) = record.lock() {
                        r.ended.push(id.clone());
                    }
                }
            }
            Err(e) => eprintln!("bridge: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
