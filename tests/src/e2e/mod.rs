//! The end-to-end environment: a cluster whose nodes are EC2 instances of a moto Auto
//! Scaling group, with the peers our users run beside the booster.
//!
//! - **Control plane**: etcd, kube-apiserver, kube-controller-manager (deployment,
//!   replicaset, disruption, podgc, nodelifecycle) and kube-scheduler, from the Kubernetes Go modules.
//! - **kwok** plays the kubelets: it makes the Nodes Ready and runs their pods.
//! - **moto** is Auto Scaling and EC2; [`bridge`] turns each in-service instance into a
//!   Node after a boot delay and deletes the Node (and its pods) when the instance ends.
//! - **amazon-ec2-metadata-mock**, one per signalled node, serves the rebalance
//!   recommendation (and, if asked, the spot interruption notice) at the chosen time;
//!   [`nth`] reads it as NTH does in IMDS mode and writes what NTH writes. With
//!   [`Options::nth_queue`], NTH runs in queue-processor mode instead ([`queue`]): the
//!   harness puts EventBridge's EC2 events on an SQS queue in moto.
//! - [`ca`] writes cluster-autoscaler's status ConfigMap (YAML or legacy text) from the
//!   group and the Nodes, and scales the group up for unschedulable pods.
//! - The booster binary itself, as a process ([`Booster`]), as production runs it: as its
//!   ServiceAccount ([`SERVICE_ACCOUNT`]), deploy/rbac.yaml applied (the ledger ConfigMap,
//!   the Lease, the placeholder namespace, the roles). [`Env::booster_as_admin`] is for a
//!   scenario that says why it needs more.
//!
//! With [`Options::karpenter`] the nodes are Karpenter's instead ([`karpenter`]): the real
//! Karpenter (its KWOK cloud provider) provisions them for the pods; there is no Auto
//! Scaling group and no cluster-autoscaler.
//!
//! NTH and Cluster Autoscaler are played by the harness because the Go module proxy here
//! refuses both modules (`github.com/aws/aws-node-termination-handler`,
//! `k8s.io/autoscaler/cluster-autoscaler`: 403 "not available" for every version).

pub mod aws;
pub mod aws_proxy;
pub mod blackhole;
pub mod bridge;
pub mod ca;
pub mod karpenter;
pub mod nth;
pub mod queue;
pub mod workloads;

mod booster;
mod queries;
mod sampler;
mod signal;
mod start;

pub use booster::{with_booster, Booster};
pub use queries::{given_back, read_ledger, report};
pub use sampler::max_overlap;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Client;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

use crate::control_plane::{servers_dir, ControlPlane};
use crate::moto::Moto;

/// The group every scenario uses.
pub const GROUP: &str = "spot-workers";
/// The namespace of the workload.
pub const NS: &str = "default";

/// What a scenario's world looks like.
#[derive(Clone, Debug)]
pub struct Options {
    /// Instances (and so Nodes) at the start.
    pub nodes: i32,
    /// The group's max size.
    pub max_size: i32,
    /// From an instance's launch to its Node.
    pub boot_delay: Duration,
    /// Pods of the `web` Deployment; each asks for one of a node's 4 CPUs.
    pub replicas: i32,
    /// cluster-autoscaler's status in the legacy text form (CA <= 1.29) instead of YAML.
    pub legacy_status: bool,
    /// The group has Capacity Rebalancing (an EKS managed spot node group): AWS's part
    /// ([`aws::capacity_rebalance`]) replaces signalled instances itself.
    pub capacity_rebalance: bool,
    /// A second group, [`FALLBACK`] (one node to start), named as the group's fallback by
    /// tag; the group's Launch process is suspended (its pool cannot launch).
    pub fallback: bool,
    /// Node names are reused, as EKS's IP-based names are: a new instance gets the name
    /// of the lowest free address, freed when an instance ends.
    pub reuse_names: bool,
    /// kube-apiserver writes an audit log (see [`ControlPlane::audited`]).
    pub audit: bool,
    /// NTH in queue-processor mode (one for the cluster, reading an SQS queue) instead of
    /// IMDS mode (one per signalled node, reading its metadata mock).
    pub nth_queue: Option<queue::QueueMode>,
    /// How long a deleted `web` pod stays terminating (its grace period, as kwok plays it);
    /// else 1 s.
    pub terminating_for: Option<Duration>,
    /// Nodes are Karpenter's ([`karpenter`]): `nodes` of them are provisioned for the
    /// workload, `boot_delay` is the node class's registration delay, `max_size` nodes is
    /// the NodePool's CPU limit. No Auto Scaling group, no cluster-autoscaler.
    pub karpenter: bool,
}

/// The EKS managed node group [`GROUP`] stands for (its tag, its Nodes' label).
pub const NODEGROUP: &str = "spot";

/// The fallback group of [`Options::fallback`].
pub const FALLBACK: &str = "ondemand-workers";
/// [`FALLBACK`]'s min size, max size and desired capacity at the start.
pub const FALLBACK_SIZES: (i32, i32, i32) = (0, 3, 1);

/// The booster's ServiceAccount in deploy/rbac.yaml (namespace, name): every scenario's
/// booster runs as it unless it says why not ([`Env::booster_as_admin`]).
pub const SERVICE_ACCOUNT: (&str, &str) = ("kube-system", "aws-spots-booster");

/// [`SERVICE_ACCOUNT`]'s user name, as the apiserver (and its audit log) knows it.
pub const SERVICE_ACCOUNT_USER: &str = "system:serviceaccount:kube-system:aws-spots-booster";

/// The ledger ConfigMap deploy/rbac.yaml makes (in [`SERVICE_ACCOUNT`]'s namespace).
pub const LEDGER: &str = "aws-spots-booster-ledger";

/// Whether `BOOSTER_REQUIRE_APISERVER=1`: a missing prerequisite of a scenario that needs
/// the control plane fails it instead of skipping it.
pub fn apiserver_required() -> bool {
    std::env::var("BOOSTER_REQUIRE_APISERVER").as_deref() == Ok("1")
}

/// Who a booster process runs as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Identity {
    /// [`SERVICE_ACCOUNT`], with deploy/rbac.yaml's rights (production's).
    ServiceAccount,
    /// The harness's admin (`system:masters`).
    ClusterAdmin,
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identity::ServiceAccount => write!(
                f,
                "serviceaccount {}/{} (deploy/rbac.yaml)",
                SERVICE_ACCOUNT.0, SERVICE_ACCOUNT.1
            ),
            Identity::ClusterAdmin => write!(f, "cluster-admin"),
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            nodes: 3,
            max_size: 8,
            boot_delay: Duration::from_secs(8),
            replicas: 9,
            legacy_status: false,
            capacity_rebalance: false,
            fallback: false,
            reuse_names: false,
            audit: false,
            nth_queue: None,
            terminating_for: None,
            karpenter: false,
        }
    }
}

/// What the harness saw while the scenario ran.
#[derive(Debug, Default)]
pub struct Record {
    /// The group's desired capacity, each time it changed.
    pub desired: Vec<(Duration, i32)>,
    /// Instance id → Node name, for every instance that became a Node.
    pub nodes: BTreeMap<String, String>,
    /// Instance id → its availability zone.
    pub zones: BTreeMap<String, String>,
    /// Instances that ended (retired or interrupted).
    pub ended: Vec<String>,
    /// Pod-seconds of pods unscheduled for longer than the scheduling allowance.
    pub pending_pod_seconds: f64,
    /// Most pods unscheduled at once (beyond the allowance).
    pub max_pending: usize,
    /// Node-seconds with fewer schedulable Ready nodes than the workload needs.
    pub capacity_deficit_node_seconds: f64,
    /// Each drained node's drain: from its first pod seen terminating to the first sample
    /// with none of its `web` pods left running (`None` while some are).
    pub drains: BTreeMap<String, (Duration, Option<Duration>)>,
    /// Drain starts as the booster's ledger records them (`Draining { since }`), by node.
    pub ledger_drains: BTreeMap<String, booster_core::Timestamp>,
    /// Most ledger entries in `Draining` at once whose node still had pods.
    pub max_ledger_draining: usize,
    /// Fewest `web` pods running at once (`None` before the first sample).
    pub min_running: Option<usize>,
}

/// Time after creation a pod may take to be scheduled before it counts as pending.
pub const SCHEDULING_ALLOWANCE: Duration = Duration::from_secs(3);

/// One scenario's world. Everything stops when it is dropped.
pub struct Env {
    /// The control plane (and kwok beside it).
    pub cp: ControlPlane,
    /// The AWS emulator.
    pub moto: Moto,
    /// Admin client.
    pub kube: Client,
    /// Auto Scaling client pointed at moto.
    pub asg: aws_sdk_autoscaling::Client,
    /// What the harness saw.
    pub record: Arc<Mutex<Record>>,
    /// When the world started; durations in [`Record`] count from here.
    pub t0: Instant,
    opts: Options,
    tasks: Vec<JoinHandle<()>>,
    /// Per signalled node: its metadata mock.
    procs: Mutex<Vec<Child>>,
    /// Per signalled node: its metadata mock's port, its instance, whether a notice comes.
    nth_of: BTreeMap<String, (u16, String, bool)>,
    /// Per signalled node: its NTH (in queue-processor mode, the one NTH under
    /// [`QUEUE_PROCESSOR`]).
    nth_running: BTreeMap<String, NthProcess>,
    /// NTH's queue, in queue-processor mode.
    queue: Option<queue::Queue>,
    /// Karpenter, with [`Options::karpenter`].
    karpenter: Option<karpenter::Karpenter>,
    /// A kubeconfig for [`SERVICE_ACCOUNT`] (a token good for an hour): what
    /// [`Env::booster`] runs with.
    pub sa_kubeconfig: PathBuf,
    /// Who the boosters started in this world ran as.
    ran_as: Mutex<std::collections::BTreeSet<Identity>>,
}

/// The key of the queue processor among the NTH processes.
const QUEUE_PROCESSOR: &str = "(queue processor)";

/// One node's NTH.
enum NthProcess {
    /// The real binary.
    Real(Child),
    /// The harness's part.
    Harness(JoinHandle<()>),
}

impl NthProcess {
    fn stop(self) {
        match self {
            NthProcess::Real(mut c) => {
                let _ = c.kill();
                let _ = c.wait();
            }
            NthProcess::Harness(t) => t.abort(),
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        let procs = self
            .procs
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        for (_, nth) in std::mem::take(&mut self.nth_running) {
            nth.stop();
        }
        for mut c in procs {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Whether every server the suite needs is there; prints SKIPPED (or fails under
/// `BOOSTER_REQUIRE_APISERVER=1` / `BOOSTER_REQUIRE_MOTO=1`) when not.
pub fn available() -> bool {
    if !crate::control_plane::available() {
        return false;
    }
    let d = servers_dir();
    let missing: Vec<&str> = ["kube-scheduler", "kwok", "ec2-metadata-mock"]
        .into_iter()
        .filter(|b| !d.join(b).exists())
        .collect();
    if !missing.is_empty() {
        assert!(
            std::env::var("BOOSTER_REQUIRE_APISERVER").as_deref() != Ok("1"),
            "e2e servers missing in {}: {missing:?}; run scripts/build-test-servers.sh",
            d.display()
        );
        eprintln!(
            "SKIPPED e2e: {missing:?} missing in {} (make test builds them)",
            d.display()
        );
        return false;
    }
    true
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// `now` in RFC 3339 (UTC, seconds).
pub fn rfc3339_now() -> String {
    booster_core::Timestamp::from_unix_secs(unix_now()).to_string()
}

/// A GET on loopback; `(status, body)`.
pub async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let req = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut text))
        .await
        .ok()?
        .ok()?;
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((code, body))
}

/// Waits for `what` to hold, checking every 500 ms, or fails with `msg` after `secs`.
pub async fn eventually<F, Fut>(secs: u64, msg: &str, mut what: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if what().await {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{msg} (not within {secs} s)"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Whether a Node is Ready.
pub fn node_ready(n: &Node) -> bool {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Whether a pod runs (and is not terminating).
pub fn pod_running(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

/// The sum of the samples of `name` in Prometheus text whose label sets contain every
/// `labels` entry (`key="value"`).
pub fn metric_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            (n == name && labels.iter().all(|want| rest.contains(want)))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::metric_sum;

    #[test]
    fn metric_sums_the_matching_series() {
        let text = "# HELP x\nx_total{action=\"boost\",outcome=\"ok\"} 2\nx_total{action=\"boost\",outcome=\"dry_run\"} 3\nx_total{action=\"drain\",outcome=\"ok\"} 5\ny 1\n";
        assert_eq!(metric_sum(text, "x_total", &["action=\"boost\""]), 5.0);
        assert_eq!(metric_sum(text, "x_total", &["outcome=\"ok\""]), 7.0);
        assert_eq!(metric_sum(text, "y", &[]), 1.0);
        assert_eq!(metric_sum(text, "z", &[]), 0.0);
    }

    #[test]
    fn overlap_counts_drains_running_together() {
        use std::collections::BTreeMap;
        use std::time::Duration;
        let s = Duration::from_secs;
        let mut d = BTreeMap::new();
        d.insert("a".to_string(), (s(0), Some(s(10))));
        d.insert("b".to_string(), (s(5), Some(s(12))));
        d.insert("c".to_string(), (s(10), Some(s(20))));
        // a ends as c starts: two at most.
        assert_eq!(super::max_overlap(&d), 2);
        d.insert("e".to_string(), (s(11), None));
        assert_eq!(super::max_overlap(&d), 3);
    }
}
