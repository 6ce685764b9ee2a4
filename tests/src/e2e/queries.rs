//! What a scenario asks of its running world: waits, queries of the cluster and the
//! group, the figures the harness recorded, and the faults it puts into the control plane
//! and moto.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use kube::api::{Api, ListParams};
use kube::Client;

use super::{bridge, eventually, node_ready, pod_running, Env, Identity, Options, LEDGER, NS};

impl Env {
    /// `aws-spots-booster status` (the binary `bin`) against this world, as an operator
    /// runs it, with `args`.
    pub fn status(&self, bin: &Path, args: &[&str]) -> std::process::Output {
        std::process::Command::new(bin)
            .arg("status")
            .args(args)
            .args(["--connection-mode", "kubectl", "--kubeconfig"])
            .arg(&self.cp.kubeconfig)
            .args([
                "--aws-region",
                "eu-west-1",
                "--aws-endpoint-url",
                &self.moto.url,
            ])
            .envs(crate::moto::TEST_AWS_ENV)
            .output()
            .expect("status runs")
    }

    /// Who the boosters of this world ran as, for a scenario's line: `as <identity>` (and
    /// `and <identity>`), or `no booster`.
    pub fn ran_as(&self) -> String {
        let ids: Vec<String> = self
            .ran_as
            .lock()
            .map(|s| s.iter().map(Identity::to_string).collect())
            .unwrap_or_default();
        if ids.is_empty() {
            "no booster".into()
        } else {
            format!("as {}", ids.join(" and "))
        }
    }

    /// Waits until `n` pods of the workload run.
    pub async fn wait_pods_running(&self, n: usize, secs: u64) -> Result<(), String> {
        let pods: Api<Pod> = Api::namespaced(self.kube.clone(), NS);
        eventually(secs, &format!("{n} web pods running"), || {
            let pods = pods.clone();
            async move {
                pods.list(&ListParams::default().labels("app=web"))
                    .await
                    .is_ok_and(|l| l.items.iter().filter(|p| pod_running(p)).count() == n)
            }
        })
        .await
    }

    /// Where the servers' logs are.
    pub fn dir(&self) -> &Path {
        &self.cp.dir
    }

    /// Waits until `n` Nodes are Ready.
    pub async fn wait_nodes_ready(&self, n: usize, secs: u64) -> Result<(), String> {
        let nodes: Api<Node> = Api::all(self.kube.clone());
        eventually(secs, &format!("{n} Ready nodes"), || {
            let nodes = nodes.clone();
            async move {
                nodes
                    .list(&ListParams::default())
                    .await
                    .map(|l| l.items.iter().filter(|n| node_ready(n)).count() >= n)
                    .unwrap_or(false)
            }
        })
        .await
    }

    /// The group's desired capacity and in-service instance ids, from moto.
    pub async fn group(&self) -> Result<(i32, Vec<String>), String> {
        bridge::describe(&self.asg).await
    }

    /// How many pods of the workload's namespace are bound to `node` (terminating ones
    /// included).
    pub async fn pods_on(&self, node: &str) -> usize {
        Api::<Pod>::namespaced(self.kube.clone(), NS)
            .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
            .await
            .map(|l| l.items.len())
            .unwrap_or_default()
    }

    /// The Node running the most `web` pods (the one whose loss hurts most), and its
    /// instance id.
    pub async fn busiest_node(&self) -> Result<(String, String), String> {
        let ranked = self.nodes_by_pods().await?;
        ranked
            .into_iter()
            .next()
            .ok_or_else(|| "no node runs web pods".to_string())
    }

    /// Nodes with `web` pods, busiest first, as (node, instance id).
    pub async fn nodes_by_pods(&self) -> Result<Vec<(String, String)>, String> {
        let pods = Api::<Pod>::namespaced(self.kube.clone(), NS)
            .list(&ListParams::default().labels("app=web"))
            .await
            .map_err(|e| e.to_string())?;
        let mut count: BTreeMap<String, usize> = BTreeMap::new();
        for p in &pods.items {
            if let Some(n) = p.spec.as_ref().and_then(|s| s.node_name.clone()) {
                *count.entry(n).or_default() += 1;
            }
        }
        let mut ids = self
            .record
            .lock()
            .map(|r| r.nodes.clone())
            .unwrap_or_default();
        // A Karpenter node's machine is its NodeClaim (what the booster calls its instance).
        if self.karpenter.is_some() {
            let nodes = Api::<Node>::all(self.kube.clone())
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?;
            for n in &nodes.items {
                if let (Some(claim), Some(name)) = (
                    booster_k8s::convert::nodeclaim_of(n),
                    n.metadata.name.clone(),
                ) {
                    ids.insert(claim, name);
                }
            }
        }
        let mut ranked: Vec<(usize, String, String)> = ids
            .into_iter()
            .filter_map(|(id, node)| count.get(&node).map(|c| (*c, node, id)))
            .collect();
        ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        Ok(ranked.into_iter().map(|(_, n, i)| (n, i)).collect())
    }

    /// The apiserver's address.
    pub fn apiserver_addr(&self) -> Result<std::net::SocketAddr, String> {
        self.cp
            .url
            .trim_start_matches("https://")
            .parse()
            .map_err(|e| format!("{}: {e}", self.cp.url))
    }

    /// Restarts kube-apiserver (see [`ControlPlane::restart_apiserver`]).
    ///
    /// [`ControlPlane::restart_apiserver`]: crate::control_plane::ControlPlane::restart_apiserver
    pub fn restart_apiserver(&mut self, down: Duration) -> Result<Duration, String> {
        self.cp.restart_apiserver(down)
    }

    /// Stops moto with SIGSTOP until the guard is dropped.
    pub fn freeze_moto(&self) -> Result<crate::control_plane::Frozen, String> {
        crate::control_plane::Frozen::pid(self.moto.pid())
    }

    /// Who holds the booster's Lease now.
    pub async fn lease_holder(&self) -> Option<String> {
        Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(
            self.kube.clone(),
            "kube-system",
        )
        .get_opt("aws-spots-booster")
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
    }

    /// The options the world was started with.
    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// The desired capacities seen so far.
    pub fn desired_history(&self) -> Vec<i32> {
        self.record
            .lock()
            .map(|r| r.desired.iter().map(|(_, d)| *d).collect())
            .unwrap_or_default()
    }

    /// The booster's ledger entries (node names), `None` when it has no ledger yet.
    pub async fn ledger_entries(&self) -> Result<Option<Vec<String>>, String> {
        Ok(read_ledger(&self.kube)
            .await?
            .map(|l| l.entries.into_keys().collect()))
    }

    /// Nodes cordoned, and nodes with cluster-autoscaler's scale-down disabled.
    pub async fn cordoned_and_protected(&self) -> Result<(Vec<String>, Vec<String>), String> {
        let list = Api::<Node>::all(self.kube.clone())
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        let name = |n: &Node| n.metadata.name.clone().unwrap_or_default();
        let cordoned = list
            .items
            .iter()
            .filter(|n| n.spec.as_ref().and_then(|s| s.unschedulable) == Some(true))
            .map(name)
            .collect();
        let protected = list
            .items
            .iter()
            .filter(|n| {
                n.metadata.annotations.as_ref().is_some_and(|a| {
                    a.get("cluster-autoscaler.kubernetes.io/scale-down-disabled")
                        .is_some_and(|v| v == "true")
                })
            })
            .map(name)
            .collect();
        Ok((cordoned, protected))
    }

    /// Waits until `instance` has left the group (retired or interrupted).
    pub async fn wait_ended(&self, instance: &str, secs: u64) -> Result<(), String> {
        let record = self.record.clone();
        eventually(secs, &format!("instance {instance} ended"), move || {
            let done = record
                .lock()
                .is_ok_and(|r| r.ended.iter().any(|i| i == instance));
            async move { done }
        })
        .await
        .map_err(|e| format!("{e}; logs in {}", self.dir().display()))
    }

    /// Waits until a drain of `node` has been seen to start.
    pub async fn wait_drain_started(&self, node: &str, secs: u64) -> Result<(), String> {
        let record = self.record.clone();
        eventually(secs, &format!("drain of {node} started"), move || {
            let done = record.lock().is_ok_and(|r| r.drains.contains_key(node));
            async move { done }
        })
        .await
    }

    /// A copy of the figures so far.
    pub fn figures(&self) -> (f64, usize, f64) {
        self.record
            .lock()
            .map(|r| {
                (
                    r.pending_pod_seconds,
                    r.max_pending,
                    r.capacity_deficit_node_seconds,
                )
            })
            .unwrap_or_default()
    }
}

/// The booster's ledger as stored in its ConfigMap, `None` before its first store.
pub async fn read_ledger(kube: &Client) -> Result<Option<booster_core::Ledger>, String> {
    let cm = Api::<ConfigMap>::namespaced(kube.clone(), "kube-system")
        .get_opt(LEDGER)
        .await
        .map_err(|e| e.to_string())?;
    let Some(text) = cm
        .and_then(|c| c.data)
        .and_then(|d| d.get("ledger.json").cloned())
    else {
        return Ok(None);
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| format!("ledger: {e}"))
}

/// Whether `node` is uncordoned and free of NTH's rebalance taint.
pub async fn given_back(nodes: &Api<Node>, node: &str) -> bool {
    nodes.get(node).await.is_ok_and(|n| {
        let spec = n.spec.unwrap_or_default();
        spec.unschedulable != Some(true)
            && !spec
                .taints
                .unwrap_or_default()
                .iter()
                .any(|t| t.key.ends_with("rebalance-recommendation"))
    })
}

/// Prints a scenario's one-line result: `e2e <name>: ok in <s> s (<figures>)`, the
/// figures ending with who the booster ran as ([`Env::ran_as`]).
pub fn report(name: &str, start: Instant, env: &Env, extra: &str) {
    let (pending, max_pending, deficit) = env.figures();
    let desired: Vec<String> = env.desired_history().iter().map(i32::to_string).collect();
    println!(
        "\ne2e {name}: ok in {:.0} s (desired {}, pending {pending:.1} pod-s, max {max_pending} pending, capacity deficit {deficit:.1} node-s{}{extra}; {})",
        start.elapsed().as_secs_f64(),
        desired.join("→"),
        if extra.is_empty() { "" } else { ", " },
        env.ran_as(),
    );
}
