//! Starting a scenario's world, stage by stage: the control plane and kwok, the booster's
//! objects and identity, then the Auto Scaling group (or Karpenter), the harness's actors
//! and the workload.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, PostParams};
use kube::Client;

use super::sampler::sampler;
use super::{
    apiserver_required, available, bridge, ca, eventually, karpenter, Env, Options, Record,
    FALLBACK, FALLBACK_SIZES, GROUP, NODEGROUP, NS, SERVICE_ACCOUNT,
};
use crate::control_plane::{free_port, servers_dir, ControlPlane};
use crate::moto::Moto;

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
        let audit_flags = audit_flags(opts.audit)?;
        let audit: Vec<&str> = audit_flags.iter().map(String::as_str).collect();
        let mut cp = ControlPlane::start_tuned(
            Some("deployment,replicaset,disruption,podgc,nodelifecycle"),
            true,
            &[],
            &audit,
        )?;
        start_kwok(&mut cp)?;
        let kube = cp.admin().await?;
        let sa_kubeconfig = booster_identity(&cp, &kube).await?;
        let asg = moto.client();
        if opts.karpenter {
            return Self::start_karpenter(opts, cp, moto, kube, asg, sa_kubeconfig).await;
        }
        create_group(&asg, &opts).await?;
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
        env.start_ca(&opts)?;
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

    /// Cluster-autoscaler: the real binary if `BOOSTER_E2E_CA` names one, else the
    /// harness's part ([`ca::run`]).
    fn start_ca(&mut self, opts: &Options) -> Result<(), String> {
        if let Some(ca_bin) = std::env::var_os("BOOSTER_E2E_CA") {
            // Every group of the world, as an operator lists them for CA.
            let mut groups = vec![(1, opts.max_size, GROUP)];
            if opts.fallback {
                let (min, max, _) = FALLBACK_SIZES;
                groups.push((min, max, FALLBACK));
            }
            let args =
                ca::real_ca_args(&self.cp.dir, &self.cp.kubeconfig, &self.moto.url, &groups)?;
            let mut aws_env = crate::moto::TEST_AWS_ENV.to_vec();
            aws_env.push(("AWS_REGION", "eu-west-1"));
            self.cp.spawn_server_with_env(
                "cluster-autoscaler",
                Path::new(&ca_bin),
                &args,
                &aws_env,
            )?;
        } else {
            self.tasks.push(tokio::spawn(ca::run(
                self.asg.clone(),
                self.kube.clone(),
                opts.legacy_status,
            )));
        }
        Ok(())
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
}

/// kube-apiserver's audit flags for [`Options::audit`] (none without it); the policy file
/// is written here.
fn audit_flags(audit: bool) -> Result<Vec<String>, String> {
    if !audit {
        return Ok(Vec::new());
    }
    let policy = std::env::temp_dir().join(format!("asb-audit-{}.yaml", std::process::id()));
    std::fs::write(&policy, crate::control_plane::AUDIT_POLICY).map_err(|e| e.to_string())?;
    Ok(vec![
        format!("--audit-policy-file={}", policy.display()),
        "--audit-log-path={dir}/audit.log".into(),
        "--audit-log-format=json".into(),
    ])
}

/// kwok, beside the control plane: it plays the kubelets of the Nodes [`bridge`] makes.
fn start_kwok(cp: &mut ControlPlane) -> Result<(), String> {
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
    cp.spawn_server("kwok", &servers_dir().join("kwok"), &kwok_args)
}

/// Applies deploy/rbac.yaml and returns a kubeconfig for [`SERVICE_ACCOUNT`].
async fn booster_identity(cp: &ControlPlane, kube: &Client) -> Result<PathBuf, String> {
    // Production's objects and rights: the booster runs as its ServiceAccount.
    crate::control_plane::apply_rbac(kube).await;
    let (sa_ns, sa_name) = SERVICE_ACCOUNT;
    let token = crate::control_plane::token_for(kube, sa_ns, sa_name).await;
    cp.kubeconfig_for("booster-sa", &token)
}

/// [`GROUP`] in moto, with its launch configuration: an EKS managed node group (its tag)
/// over two zones.
async fn create_group(asg: &aws_sdk_autoscaling::Client, opts: &Options) -> Result<(), String> {
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
        .tags(group_tag("eks:nodegroup-name", NODEGROUP))
        .send()
        .await
        .map_err(|e| format!("group: {e:?}"))?;
    Ok(())
}

/// A tag of [`GROUP`] that instances do not inherit.
fn group_tag(key: &str, value: &str) -> aws_sdk_autoscaling::types::Tag {
    aws_sdk_autoscaling::types::Tag::builder()
        .key(key)
        .value(value)
        .resource_id(GROUP)
        .resource_type("auto-scaling-group")
        .propagate_at_launch(false)
        .build()
}

/// [`Options::fallback`]: the on-demand group, named as [`GROUP`]'s fallback, whose Launch
/// process is suspended (moto keeps launching, but the booster must not ask it to).
async fn env_fallback(asg: &aws_sdk_autoscaling::Client) -> Result<(), String> {
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
        .tags(group_tag(booster_core::config::FALLBACK_TAG, FALLBACK))
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
