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
    let mut bridge = Bridge::new(kube, record);
    loop {
        match describe_all(&asg).await {
            Ok(groups) => {
                bridge.note_desired(&groups, t0);
                let instances = instances_of(&groups);
                bridge.make_nodes(&instances, boot_delay, reuse_names).await;
                bridge.end_gone(&instances).await;
            }
            Err(e) => eprintln!("bridge: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Instance id → (zone, group), for the instances of every group.
type Instances = BTreeMap<String, (String, String)>;

fn instances_of(groups: &[(String, GroupView)]) -> Instances {
    groups
        .iter()
        .flat_map(|(name, g)| {
            g.instances
                .iter()
                .map(move |(id, zone)| (id.clone(), (zone.clone(), name.clone())))
        })
        .collect()
}

/// The bridge's memory across passes.
struct Bridge {
    kube: Client,
    nodes: Api<Node>,
    pods: Api<Pod>,
    record: Arc<Mutex<Record>>,
    /// Instance id → when a pass first saw it.
    first_seen: BTreeMap<String, Instant>,
    /// Instance id → the Node made for it.
    names: BTreeMap<String, String>,
    /// Instances whose Node was deleted.
    gone: BTreeSet<String>,
    /// [`GROUP`]'s desired capacity at the last change.
    last_desired: Option<i32>,
    /// Names given so far, without name reuse.
    n: u32,
}

impl Bridge {
    fn new(kube: Client, record: Arc<Mutex<Record>>) -> Bridge {
        Bridge {
            nodes: Api::all(kube.clone()),
            pods: Api::all(kube.clone()),
            kube,
            record,
            first_seen: BTreeMap::new(),
            names: BTreeMap::new(),
            gone: BTreeSet::new(),
            last_desired: None,
            n: 0,
        }
    }

    /// Records [`GROUP`]'s desired capacity when it changed.
    fn note_desired(&mut self, groups: &[(String, GroupView)], t0: Instant) {
        if let Some((_, g)) = groups.iter().find(|(n, _)| n == GROUP) {
            if self.last_desired != Some(g.desired) {
                self.last_desired = Some(g.desired);
                if let Ok(mut r) = self.record.lock() {
                    r.desired.push((t0.elapsed(), g.desired));
                }
            }
        }
    }

    /// A Node for each instance seen `boot_delay` ago or more that has none yet.
    async fn make_nodes(&mut self, instances: &Instances, boot_delay: Duration, reuse_names: bool) {
        let now = Instant::now();
        for (id, (zone, group)) in instances {
            let seen = *self.first_seen.entry(id.clone()).or_insert(now);
            if self.names.contains_key(id) || now.duration_since(seen) < boot_delay {
                continue;
            }
            let name = self.next_name(reuse_names);
            let Ok(node) = node_for(&name, id, zone, group) else {
                continue;
            };
            if self
                .nodes
                .create(&PostParams::default(), &node)
                .await
                .is_ok()
            {
                self.names.insert(id.clone(), name.clone());
                if let Ok(mut r) = self.record.lock() {
                    r.nodes.insert(id.clone(), name);
                    r.zones.insert(id.clone(), zone.to_string());
                }
            }
        }
    }

    /// The name of the next Node.
    fn next_name(&mut self, reuse_names: bool) -> String {
        if reuse_names {
            // As EKS does: a node is named after its private IP, and a freed IP
            // is given to the next instance.
            let used: BTreeSet<&String> = self
                .names
                .iter()
                .filter(|(i, _)| !self.gone.contains(*i))
                .map(|(_, n)| n)
                .collect();
            let free = (1..).map(ip_name).find(|c| !used.contains(c));
            free.unwrap_or_else(|| ip_name(0))
        } else {
            self.n += 1;
            ip_name(self.n)
        }
    }

    /// Deletes the Node (and its pods) of each instance no longer in a group.
    async fn end_gone(&mut self, instances: &Instances) {
        for (id, name) in &self.names {
            if instances.contains_key(id) || self.gone.contains(id) {
                continue;
            }
            // The VM is gone: its Node and pods go with it.
            let _ = self.nodes.delete(name, &DeleteParams::default()).await;
            self.delete_pods_on(name).await;
            self.gone.insert(id.clone());
            if let Ok(mut r) = self.record.lock() {
                r.ended.push(id.clone());
            }
        }
    }

    async fn delete_pods_on(&self, node: &str) {
        let lp = ListParams::default().fields(&format!("spec.nodeName={node}"));
        if let Ok(list) = self.pods.list(&lp).await {
            for p in list.items {
                let (Some(pn), Some(ns)) = (p.metadata.name, p.metadata.namespace) else {
                    continue;
                };
                let _ = Api::<Pod>::namespaced(self.kube.clone(), &ns)
                    .delete(&pn, &DeleteParams::default().grace_period(0))
                    .await;
            }
        }
    }
}

/// The `k`th private-IP name.
fn ip_name(k: u32) -> String {
    format!(
        "ip-10-0-{}-{}.eu-west-1.compute.internal",
        k / 250,
        10 + k % 250
    )
}
