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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ListParams, PostParams};
use kube::Client;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

use crate::control_plane::{free_port, log_to, servers_dir, ControlPlane};
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

/// ec2-metadata-mock's configuration for one node: its instance id, zone, life cycle and
/// names, in the metadata paths and in the instance identity document NTH reads.
fn imds_identity(node: &str, instance: &str, zone: &str) -> serde_json::Value {
    let region = zone.trim_end_matches(|c: char| c.is_ascii_lowercase());
    serde_json::json!({
        "metadata": {"values": {
            "instance-id": instance,
            "instance-life-cycle": "spot",
            "instance-type": "m5.xlarge",
            "placement-availability-zone": zone,
            "local-hostname": node,
            "hostname": node
        }},
        "dynamic": {"values": {"instance-identity-document": {
            "accountid": "123456789012",
            "architecture": "x86_64",
            "availabilityzone": zone,
            "imageid": "ami-12c6146b",
            "instanceid": instance,
            "instancetype": "m5.xlarge",
            "pendingtime": "2026-01-01T00:00:00Z",
            "privateip": "10.0.0.10",
            "region": region,
            "version": "2017-09-30"
        }}}
    })
}

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

/// [`Options::fallback`]: the on-demand group, named as [`GROUP`]'s fallback, whose Launch
/// process is suspended (moto keeps launching, but the booster must not ask it to).
async fn env_fallback(asg: &aws_sdk_autoscaling::Client) -> Result<(), String> {
    use aws_sdk_autoscaling::types::Tag;
    let (min, max, desired) = FALLBACK_SIZES;
    asg.create_auto_scaling_group()
        .auto_scaling_group_name(FALLBACK)
        .launch_configuration_name("spot-lc")
        .min_size(min)
        .max_size(max)
        .desired_capacity(desired)
        .availability_zones("eu-west-1a")
        .send()
        .await
        .map_err(|e| format!("fallback group: {e:?}"))?;
    asg.create_or_update_tags()
        .tags(
            Tag::builder()
                .key(booster_core::config::FALLBACK_TAG)
                .value(FALLBACK)
                .resource_id(GROUP)
                .resource_type("auto-scaling-group")
                .propagate_at_launch(false)
                .build(),
        )
        .send()
        .await
        .map_err(|e| format!("fallback tag: {e:?}"))?;
    asg.suspend_processes()
        .auto_scaling_group_name(GROUP)
        .scaling_processes("Launch")
        .send()
        .await
        .map_err(|e| format!("suspend Launch: {e:?}"))?;
    Ok(())
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

impl Env {
    /// Starts the world and waits until the workload runs on Ready nodes. `None` (printed
    /// as SKIPPED) when the servers are missing and not required.
    pub async fn start(opts: Options) -> Result<Option<Env>, String> {
        if !available() || (opts.karpenter && !karpenter::available()) {
            return skipped("a server or tool it needs is missing (see above)");
        }
        // Moto says SKIPPED itself, or fails under `BOOSTER_REQUIRE_MOTO=1`.
        let Some(moto) = Moto::start() else {
            return Ok(None);
        };
        let audit_flags: Vec<String> = if opts.audit {
            let policy =
                std::env::temp_dir().join(format!("asb-audit-{}.yaml", std::process::id()));
            std::fs::write(&policy, crate::control_plane::AUDIT_POLICY)
                .map_err(|e| e.to_string())?;
            vec![
                format!("--audit-policy-file={}", policy.display()),
                "--audit-log-path={dir}/audit.log".into(),
                "--audit-log-format=json".into(),
            ]
        } else {
            Vec::new()
        };
        let audit: Vec<&str> = audit_flags.iter().map(String::as_str).collect();
        let mut cp = ControlPlane::start_tuned(
            Some("deployment,replicaset,disruption,podgc,nodelifecycle"),
            true,
            &[],
            &audit,
        )?;
        let stages = cp.dir.join("kwok-stages.yaml");
        std::fs::write(&stages, include_str!("kwok-stages.yaml")).map_err(|e| e.to_string())?;
        let kwok_args: Vec<String> = vec![
            format!("--config={}", stages.display()),
            format!("--kubeconfig={}", cp.kubeconfig.display()),
            "--manage-all-nodes=false".into(),
            format!(
                "--manage-nodes-with-annotation-selector={}=fake",
                bridge::KWOK_ANNOTATION
            ),
            format!("--server-address=127.0.0.1:{}", free_port()),
            "--node-ip=127.0.0.1".into(),
            "--node-lease-duration-seconds=40".into(),
        ];
        cp.spawn_server("kwok", &servers_dir().join("kwok"), &kwok_args)?;
        let kube = cp.admin().await?;
        // Production's objects and rights: the booster runs as its ServiceAccount.
        crate::control_plane::apply_rbac(&kube).await;
        let (sa_ns, sa_name) = SERVICE_ACCOUNT;
        let token = crate::control_plane::token_for(&kube, sa_ns, sa_name).await;
        let sa_kubeconfig = cp.kubeconfig_for("booster-sa", &token)?;
        let asg = moto.client();
        if opts.karpenter {
            return Self::start_karpenter(opts, cp, moto, kube, asg, sa_kubeconfig).await;
        }
        let zones = ["eu-west-1a", "eu-west-1b"];
        asg.create_launch_configuration()
            .launch_configuration_name("spot-lc")
            .image_id("ami-12c6146b")
            .instance_type("m5.xlarge")
            .send()
            .await
            .map_err(|e| format!("launch configuration: {e:?}"))?;
        asg.create_auto_scaling_group()
            .auto_scaling_group_name(GROUP)
            .launch_configuration_name("spot-lc")
            .min_size(1)
            .max_size(opts.max_size)
            .desired_capacity(opts.nodes)
            .set_availability_zones(Some(zones.iter().map(|z| z.to_string()).collect()))
            .capacity_rebalance(opts.capacity_rebalance)
            .tags(
                aws_sdk_autoscaling::types::Tag::builder()
                    .key("eks:nodegroup-name")
                    .value(NODEGROUP)
                    .resource_id(GROUP)
                    .resource_type("auto-scaling-group")
                    .propagate_at_launch(false)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| format!("group: {e:?}"))?;

        if opts.fallback {
            env_fallback(&asg).await?;
        }
        let mut env = Env::assemble(cp, moto, kube, asg, opts.clone(), None, sa_kubeconfig);
        let t0 = env.t0;
        if let Some(mode) = opts.nth_queue {
            env.start_queue_processor(mode).await?;
        }
        env.tasks.push(tokio::spawn(bridge::run(
            env.asg.clone(),
            env.kube.clone(),
            env.record.clone(),
            t0,
            opts.boot_delay,
            opts.reuse_names,
        )));
        if let Some(ca_bin) = std::env::var_os("BOOSTER_E2E_CA") {
            // Every group of the world, as an operator lists them for CA.
            let mut groups = vec![(1, opts.max_size, GROUP)];
            if opts.fallback {
                let (min, max, _) = FALLBACK_SIZES;
                groups.push((min, max, FALLBACK));
            }
            let args = ca::real_ca_args(&env.cp.dir, &env.cp.kubeconfig, &env.moto.url, &groups)?;
            let mut aws_env = crate::moto::TEST_AWS_ENV.to_vec();
            aws_env.push(("AWS_REGION", "eu-west-1"));
            env.cp.spawn_server_with_env(
                "cluster-autoscaler",
                Path::new(&ca_bin),
                &args,
                &aws_env,
            )?;
        } else {
            env.tasks.push(tokio::spawn(ca::run(
                env.asg.clone(),
                env.kube.clone(),
                opts.legacy_status,
            )));
        }
        env.wait_nodes_ready(opts.nodes as usize + usize::from(opts.fallback), 60)
            .await?;
        env.workload(opts.replicas).await?;
        env.tasks.push(tokio::spawn(sampler(
            env.kube.clone(),
            env.record.clone(),
            t0,
            opts.replicas,
        )));
        Ok(Some(env))
    }

    /// [`Options::karpenter`]'s world (the booster's RBAC objects, its placeholder
    /// namespace and PriorityClass among them, are applied): Karpenter, and the workload on
    /// the nodes it provisions for it.
    async fn start_karpenter(
        opts: Options,
        mut cp: ControlPlane,
        moto: Moto,
        kube: Client,
        asg: aws_sdk_autoscaling::Client,
        sa_kubeconfig: PathBuf,
    ) -> Result<Option<Env>, String> {
        let cpus = 4 * opts.max_size.max(1) as u32;
        let k = karpenter::start(&mut cp, &kube, opts.boot_delay, cpus).await?;
        let mut env = Env::assemble(cp, moto, kube, asg, opts.clone(), Some(k), sa_kubeconfig);
        env.workload(opts.replicas).await?;
        env.wait_nodes_ready(opts.nodes as usize, 60).await?;
        env.tasks.push(tokio::spawn(sampler(
            env.kube.clone(),
            env.record.clone(),
            env.t0,
            opts.replicas,
        )));
        Ok(Some(env))
    }

    /// The world's parts, with nothing running yet; `t0` is now.
    fn assemble(
        cp: ControlPlane,
        moto: Moto,
        kube: Client,
        asg: aws_sdk_autoscaling::Client,
        opts: Options,
        karpenter: Option<karpenter::Karpenter>,
        sa_kubeconfig: PathBuf,
    ) -> Env {
        Env {
            cp,
            moto,
            kube,
            asg,
            record: Arc::new(Mutex::new(Record::default())),
            t0: Instant::now(),
            opts,
            tasks: Vec::new(),
            procs: Mutex::new(Vec::new()),
            nth_of: BTreeMap::new(),
            nth_running: BTreeMap::new(),
            queue: None,
            karpenter,
            sa_kubeconfig,
            ran_as: Mutex::new(std::collections::BTreeSet::new()),
        }
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

    /// A `web` Deployment of `replicas` pods (1 CPU each) with a PodDisruptionBudget of
    /// `maxUnavailable: 1`; returns when every pod runs.
    async fn workload(&self, replicas: i32) -> Result<(), String> {
        let labels = serde_json::json!({"app": "web"});
        // kwok's delete stage reads it (kwok-stages.yaml).
        let terminating = self
            .opts
            .terminating_for
            .map(|d| serde_json::json!({"e2e/terminating-for": format!("{}s", d.as_secs())}));
        let grace = self.opts.terminating_for.map_or(2, |d| d.as_secs().max(2));
        // Four pods per node either way: Karpenter's nodes keep 100m of their 4 CPUs.
        let cpu = if self.opts.karpenter { "900m" } else { "1" };
        let d: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": NS},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels, "annotations": terminating},
                    "spec": {
                        "terminationGracePeriodSeconds": grace,
                        "containers": [{"name": "web", "image": "registry.k8s.io/pause:3.10",
                            "resources": {"requests": {"cpu": cpu, "memory": "256Mi"}}}]
                    }
                }
            }
        }))
        .map_err(|e| e.to_string())?;
        Api::<Deployment>::namespaced(self.kube.clone(), NS)
            .create(&PostParams::default(), &d)
            .await
            .map_err(|e| format!("deployment: {e}"))?;
        let pdb: PodDisruptionBudget = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": NS},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels}}
        }))
        .map_err(|e| e.to_string())?;
        Api::<PodDisruptionBudget>::namespaced(self.kube.clone(), NS)
            .create(&PostParams::default(), &pdb)
            .await
            .map_err(|e| format!("pdb: {e}"))?;
        self.wait_pods_running(replicas as usize, 90).await?;
        let pdbs: Api<PodDisruptionBudget> = Api::namespaced(self.kube.clone(), NS);
        eventually(30, "the budget allows one disruption", || {
            let pdbs = pdbs.clone();
            async move {
                pdbs.get("web")
                    .await
                    .ok()
                    .and_then(|p| p.status)
                    .is_some_and(|s| s.disruptions_allowed == 1)
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

    /// NTH on `node` (instance `instance`): an ec2-metadata-mock serving a rebalance
    /// recommendation after `rebalance_in`, and, with `interruption = (notice_in, lead)`, a
    /// spot interruption notice after `notice_in`, the instance being reclaimed `lead`
    /// after the notice. NTH is the harness's ([`nth::run`]) unless `BOOSTER_E2E_NTH`
    /// names a real binary.
    pub fn signal(
        &mut self,
        node: &str,
        instance: &str,
        rebalance_in: Duration,
        interruption: Option<(Duration, Duration)>,
    ) -> Result<(), String> {
        if let Some(q) = self.queue.clone() {
            return self.signal_by_queue(q, instance, rebalance_in, interruption);
        }
        let port = free_port();
        // As real IMDS does, the notice keeps its time on every read (the mock's default is
        // the time of the request, which makes NTH see a new event at every poll).
        let at = |d: Duration| {
            booster_core::Timestamp::from_unix_secs(unix_now() + d.as_secs() as i64).to_string()
        };
        let notice_in = interruption.map_or(Duration::from_secs(86_400), |(n, _)| n);
        let mut args: Vec<String> = vec![
            "spot".into(),
            "-n".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
            "--rebalance-delay-sec".into(),
            rebalance_in.as_secs().to_string(),
            "--rebalance-rec-time".into(),
            at(rebalance_in),
            // No notice within the scenario unless asked.
            "--mock-delay-sec".into(),
            notice_in.as_secs().to_string(),
            "--time".into(),
            at(notice_in + Duration::from_secs(120)),
        ];
        args.push("--mock-ip-count=1000".into());
        // The node's own identity, so that a real NTH's Events name this instance (the
        // mock's default is i-1234567890abcdef0 in us-east-1f).
        let zone = self.zone_of(instance);
        let identity = self.cp.dir.join(format!("imds-{node}.json"));
        std::fs::write(&identity, imds_identity(node, instance, &zone).to_string())
            .map_err(|e| format!("metadata identity: {e}"))?;
        args.push("--config-file".into());
        args.push(identity.display().to_string());
        let (out, err) = log_to(&self.cp.dir.join(format!("imds-{node}.log")))?;
        let child = Command::new(servers_dir().join("ec2-metadata-mock"))
            .args(&args)
            .current_dir(&self.cp.dir)
            .env("HOME", &self.cp.dir)
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("ec2-metadata-mock: {e}"))?;
        if let Ok(mut v) = self.procs.lock() {
            v.push(child);
        }
        self.nth_of.insert(
            node.to_string(),
            (port, instance.to_string(), interruption.is_some()),
        );
        self.start_nth(node)?;
        if let Some((_, lead)) = interruption {
            self.tasks.push(tokio::spawn(nth::interrupt_after_notice(
                self.asg.clone(),
                port,
                instance.to_string(),
                lead,
            )));
        }
        Ok(())
    }

    /// Starts NTH for a signalled node: the real binary if `BOOSTER_E2E_NTH` names one, else
    /// the harness's part.
    fn start_nth(&mut self, node: &str) -> Result<(), String> {
        let Some((port, instance, notice)) = self.nth_of.get(node).cloned() else {
            return Err(format!("{node} was never signalled"));
        };
        // One NTH per node name: a node signalled again (a new machine under a reused name)
        // gets a new one.
        if let Some(old) = self.nth_running.remove(node) {
            old.stop();
        }
        if let Some(nth_bin) = std::env::var_os("BOOSTER_E2E_NTH") {
            let api_port = self
                .cp
                .url
                .rsplit(':')
                .next()
                .unwrap_or_default()
                .to_string();
            nth::in_cluster_credentials(
                &self.cp.dir.join("certs"),
                crate::control_plane::ADMIN_TOKEN,
            )?;
            let (out, err) = log_to(&self.cp.dir.join(format!("nth-{node}.log")))?;
            let child = nth::real_nth(Path::new(&nth_bin), port, node, &api_port)
                .stdout(out)
                .stderr(err)
                .spawn()
                .map_err(|e| format!("NTH: {e}"))?;
            self.nth_running
                .insert(node.to_string(), NthProcess::Real(child));
        } else {
            let task = tokio::spawn(nth::run(
                self.kube.clone(),
                port,
                node.to_string(),
                instance,
                notice,
            ));
            self.nth_running
                .insert(node.to_string(), NthProcess::Harness(task));
        }
        Ok(())
    }

    /// The zone `instance` launched in.
    fn zone_of(&self, instance: &str) -> String {
        self.record
            .lock()
            .ok()
            .and_then(|r| r.zones.get(instance).cloned())
            .unwrap_or_else(|| "eu-west-1a".into())
    }

    /// Queue-processor mode: the queue, and its processor (the real NTH if `BOOSTER_E2E_NTH`
    /// names one, else the harness's).
    async fn start_queue_processor(&mut self, mode: queue::QueueMode) -> Result<(), String> {
        let q = queue::Queue::create(self.moto.sqs()).await?;
        let nth = if let Some(nth_bin) = std::env::var_os("BOOSTER_E2E_NTH") {
            nth::in_cluster_credentials(
                &self.cp.dir.join("certs"),
                crate::control_plane::ADMIN_TOKEN,
            )?;
            let (out, err) = log_to(&self.cp.dir.join("nth-queue-processor.log"))?;
            let api_port = self.cp.url.rsplit(':').next().unwrap_or_default();
            let child =
                queue::real_nth(Path::new(&nth_bin), &q.url, &self.moto.url, api_port, mode)
                    .stdout(out)
                    .stderr(err)
                    .spawn()
                    .map_err(|e| format!("NTH: {e}"))?;
            NthProcess::Real(child)
        } else {
            NthProcess::Harness(tokio::spawn(queue::run(self.kube.clone(), q.clone(), mode)))
        };
        self.nth_running.insert(QUEUE_PROCESSOR.to_string(), nth);
        self.queue = Some(q);
        Ok(())
    }

    /// Queue-processor mode: EventBridge puts the recommendation on the queue
    /// `rebalance_in` from now, and the interruption warning if asked (AWS then reclaims
    /// the instance `lead` after it).
    fn signal_by_queue(
        &mut self,
        q: queue::Queue,
        instance: &str,
        rebalance_in: Duration,
        interruption: Option<(Duration, Duration)>,
    ) -> Result<(), String> {
        let zone = self.zone_of(instance);
        let (asg, instance) = (self.asg.clone(), instance.to_string());
        self.tasks.push(tokio::spawn(async move {
            tokio::time::sleep(rebalance_in).await;
            let sent = q.send(queue::Ec2Event::Rebalance, &instance, &zone).await;
            if let Err(e) = sent {
                eprintln!("EventBridge: {e}");
            }
            let Some((notice_in, lead)) = interruption else {
                return;
            };
            tokio::time::sleep(notice_in.saturating_sub(rebalance_in)).await;
            let sent = q
                .send(queue::Ec2Event::Interruption, &instance, &zone)
                .await;
            if let Err(e) = sent {
                eprintln!("EventBridge: {e}");
            }
            tokio::time::sleep(lead).await;
            nth::interrupt(&asg, &instance).await;
        }));
        Ok(())
    }

    /// The port of `node`'s metadata mock, once it is signalled.
    pub fn imds_port(&self, node: &str) -> Option<u16> {
        self.nth_of.get(node).map(|(port, ..)| *port)
    }

    /// Restarts `node`'s NTH, as a rollout of its DaemonSet does: its events are kept in
    /// memory only, so it handles the recommendation again from the start.
    pub fn restart_nth(&mut self, node: &str) -> Result<(), String> {
        self.start_nth(node)
    }

    /// Signals the node that runs the most pods (in a second); returns it and its instance.
    pub async fn signal_busiest(&mut self) -> (String, String) {
        let (node, instance) = self.busiest_node().await.expect("victim");
        self.signal(&node, &instance, Duration::from_secs(1), None)
            .expect("signal");
        (node, instance)
    }

    /// Starts the booster binary `bin` with `args` on top of the scenario's defaults, as
    /// production runs it: as [`SERVICE_ACCOUNT`], with deploy/rbac.yaml's rights.
    pub fn booster(&self, bin: &Path, name: &str, args: &[&str]) -> Result<Booster, String> {
        Booster::start(bin, self, name, args)
    }

    /// [`Env::booster`] reaching the apiserver at `server` (a proxy), with extra
    /// environment variables; as [`SERVICE_ACCOUNT`].
    pub fn booster_at(
        &self,
        bin: &Path,
        name: &str,
        args: &[&str],
        server: &str,
        vars: &[(&str, &str)],
    ) -> Result<Booster, String> {
        let text = std::fs::read_to_string(&self.sa_kubeconfig).map_err(|e| e.to_string())?;
        let path = self.cp.dir.join(format!("{name}.kubeconfig"));
        std::fs::write(&path, text.replace(&self.cp.url, server)).map_err(|e| e.to_string())?;
        Booster::start_with(bin, self, name, args, &path, vars, Identity::ServiceAccount)
    }

    /// [`Env::booster`] as cluster-admin, for a scenario that cannot pass with the shipped
    /// RBAC for a reason of the test's own (never to hide a right the product lacks):
    /// prints `e2e <scenario>: runs as cluster-admin: <why>`.
    pub fn booster_as_admin(
        &self,
        bin: &Path,
        name: &str,
        args: &[&str],
        why: &str,
    ) -> Result<Booster, String> {
        // libtest runs each test on a thread named after it; a scenario's body runs there.
        let current = std::thread::current();
        let scenario = current
            .name()
            .filter(|n| *n != "main")
            .map(|n| n.rsplit("::").next().unwrap_or(n).to_string())
            .unwrap_or_else(|| name.to_string());
        println!("e2e {scenario}: runs as cluster-admin: {why}");
        let kubeconfig = self.cp.kubeconfig.clone();
        Booster::start_with(
            bin,
            self,
            name,
            args,
            &kubeconfig,
            &[],
            Identity::ClusterAdmin,
        )
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

/// Most drains that overlapped in time.
pub fn max_overlap(drains: &BTreeMap<String, (Duration, Option<Duration>)>) -> usize {
    let mut edges: Vec<(Duration, i32)> = Vec::new();
    for (start, end) in drains.values() {
        edges.push((*start, 1));
        edges.push((end.unwrap_or(Duration::MAX), -1));
    }
    // Ends sort before starts at the same instant.
    edges.sort();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    most.max(0) as usize
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

/// Every 500 ms: pods unscheduled beyond the allowance, nodes short of the workload, and
/// nodes draining.
async fn sampler(kube: Client, record: Arc<Mutex<Record>>, t0: Instant, replicas: i32) {
    let pods: Api<Pod> = Api::namespaced(kube.clone(), NS);
    let nodes: Api<Node> = Api::all(kube.clone());
    let step = Duration::from_millis(500);
    // Each node holds 4 pods of 1 CPU.
    let needed = (replicas as usize).div_ceil(4);
    let mut last = Instant::now();
    loop {
        tokio::time::sleep(step).await;
        let (Ok(p), Ok(n)) = (
            pods.list(&ListParams::default().labels("app=web")).await,
            nodes.list(&ListParams::default()).await,
        ) else {
            continue;
        };
        let now = Instant::now();
        let dt = now.duration_since(last).as_secs_f64();
        last = now;
        let wall = unix_now();
        let pending =
            p.items
                .iter()
                .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none())
                .filter(|p| {
                    p.metadata.creation_timestamp.as_ref().is_some_and(|c| {
                        wall - c.0.as_second() > SCHEDULING_ALLOWANCE.as_secs() as i64
                    })
                })
                .count();
        let usable = n
            .items
            .iter()
            .filter(|n| {
                node_ready(n) && n.spec.as_ref().and_then(|s| s.unschedulable) != Some(true)
            })
            .count();
        let on = |terminating: bool| -> std::collections::BTreeSet<String> {
            p.items
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_some() == terminating)
                .filter_map(|p| p.spec.as_ref().and_then(|s| s.node_name.clone()))
                .collect()
        };
        let (draining, live) = (on(true), on(false));
        let running = p.items.iter().filter(|p| pod_running(p)).count();
        let ledger_drains: Vec<(String, booster_core::Timestamp)> = read_ledger(&kube)
            .await
            .ok()
            .flatten()
            .map(|l| {
                l.entries
                    .into_iter()
                    .filter_map(|(n, e)| match e.drain {
                        booster_core::DrainState::Draining { since, .. } => Some((n, since)),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        if let Ok(mut r) = record.lock() {
            r.min_running = Some(r.min_running.map_or(running, |m| m.min(running)));
            // A drain counts while its node still has pods (as the engine counts slots);
            // an entry stays `Draining` until its node is gone.
            let busy = ledger_drains
                .iter()
                .filter(|(n, _)| live.contains(n) || draining.contains(n))
                .count();
            r.max_ledger_draining = r.max_ledger_draining.max(busy);
            for (n, since) in ledger_drains {
                r.ledger_drains.entry(n).or_insert(since);
            }
            r.pending_pod_seconds += pending as f64 * dt;
            r.max_pending = r.max_pending.max(pending);
            if usable < needed {
                r.capacity_deficit_node_seconds += (needed - usable) as f64 * dt;
            }
            let since = now.duration_since(t0);
            for d in draining {
                r.drains.entry(d).or_insert((since, None));
            }
            for (node, (_, end)) in r.drains.iter_mut() {
                if end.is_none() && !live.contains(node) {
                    *end = Some(since);
                }
            }
        }
    }
}

/// The booster binary as a process, with its log in the scenario's directory.
pub struct Booster {
    child: Option<Child>,
    /// Its /metrics port.
    pub port: u16,
    /// Its log.
    pub log: PathBuf,
}

impl Drop for Booster {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Booster {
    fn start(bin: &Path, env: &Env, name: &str, extra: &[&str]) -> Result<Booster, String> {
        Self::start_with(
            bin,
            env,
            name,
            extra,
            &env.sa_kubeconfig,
            &[],
            Identity::ServiceAccount,
        )
    }

    fn start_with(
        bin: &Path,
        env: &Env,
        name: &str,
        extra: &[&str],
        kubeconfig: &Path,
        vars: &[(&str, &str)],
        identity: Identity,
    ) -> Result<Booster, String> {
        if let Ok(mut ids) = env.ran_as.lock() {
            ids.insert(identity);
        }
        let port = free_port();
        let log = env.cp.dir.join(format!("{name}.log"));
        let (out, err) = log_to(&log)?;
        let kubeconfig = kubeconfig.display().to_string();
        let port_s = port.to_string();
        let mut args: Vec<&str> = vec![
            "--connection-mode",
            "kubectl",
            "--kubeconfig",
            &kubeconfig,
            "--aws-region",
            "eu-west-1",
            "--metrics-host",
            "127.0.0.1",
            "--metrics-port",
            &port_s,
        ];
        // The scenario's pace and moto, unless the caller sets the flag.
        for (flag, value) in [
            ("--aws-endpoint-url", env.moto.url.as_str()),
            ("--resync", "2s"),
            ("--time-between-drains", "2s"),
            ("--drain-timeout", "60s"),
            ("--replacement-wait", "90s"),
            ("--max-time-consider-new-node", "2m"),
        ] {
            if !extra.contains(&flag) {
                args.extend([flag, value]);
            }
        }
        args.extend_from_slice(extra);
        let child = Command::new(bin)
            .args(&args)
            .envs(crate::moto::TEST_AWS_ENV)
            // Its Lease identity.
            .env("POD_NAME", name)
            .env("RUST_LOG", "info,aws_spots_booster=debug,booster_k8s=debug")
            .envs(vars.iter().copied())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("{}: {e}", bin.display()))?;
        Ok(Booster {
            child: Some(child),
            port,
            log,
        })
    }

    /// Raises of desired capacity it made (`SetDesiredCapacity` calls that succeeded).
    pub async fn raises(&self) -> f64 {
        self.metric(
            "spots_booster_actions_total",
            &["action=\"setDesired\"", "outcome=\"ok\""],
        )
        .await
    }

    /// Waits until /readyz answers 200.
    pub async fn wait_ready(&self, secs: u64) -> Result<(), String> {
        let port = self.port;
        eventually(secs, "booster ready", || async move {
            matches!(http_get(port, "/readyz").await, Some((200, _)))
        })
        .await
    }

    /// Its /metrics text, empty when it does not answer.
    pub async fn metrics(&self) -> String {
        http_get(self.port, "/metrics")
            .await
            .map(|(_, b)| b)
            .unwrap_or_default()
    }

    /// The sum of the samples of `name` whose labels contain every `labels` pair.
    pub async fn metric(&self, name: &str, labels: &[&str]) -> f64 {
        metric_sum(&self.metrics().await, name, labels)
    }

    /// Stops it with SIGSTOP until the guard is dropped.
    pub fn freeze(&self) -> Result<crate::control_plane::Frozen, String> {
        let pid = self.child.as_ref().map(Child::id).ok_or("not running")?;
        crate::control_plane::Frozen::pid(pid)
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, as the kubelet stops an evicted pod's container; waits up to `secs` for the
    /// exit and returns its status (`None`: still running, then killed).
    pub fn terminate(&mut self, secs: u64) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        let _ = crate::control_plane::signal(c.id(), "-TERM");
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = c.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = c.kill();
        let _ = c.wait();
        None
    }

    /// Kills it with SIGKILL (no clean-up of any kind).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

/// A world started with `opts` and one booster (`bin`, named `booster`) in it, ready;
/// `None` when the servers are not installed (the scenario is then skipped, and says so).
pub async fn with_booster(opts: Options, bin: &Path) -> Option<(Env, Booster)> {
    let env = Env::start(opts).await.expect("world")?;
    let booster = env.booster(bin, "booster", &[]).expect("booster");
    booster.wait_ready(60).await.expect("ready");
    Some((env, booster))
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

/// What [`Env::start`] returns when something it needs is missing: `None` (the scenario
/// prints SKIPPED and returns), or, under `BOOSTER_REQUIRE_APISERVER=1`, an error.
fn skipped(why: &str) -> Result<Option<Env>, String> {
    if apiserver_required() {
        return Err(format!(
            "BOOSTER_REQUIRE_APISERVER=1 and the e2e world cannot start: {why}"
        ));
    }
    eprintln!("SKIPPED e2e scenario: {why}");
    Ok(None)
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
