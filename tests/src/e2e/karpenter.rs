//! The real Karpenter in the e2e world: its KWOK cloud provider (the Karpenter controllers
//! with a cloud whose instances are Nodes, built from `sigs.k8s.io/karpenter/kwok` by
//! `scripts/build-test-servers.sh` as `karpenter-kwok`), its CRDs from the same module, a
//! KWOKNodeClass whose registration delay plays the boot time, and one spot NodePool. The
//! harness's kwok makes its Nodes Ready and runs their pods, as for any node.
//!
//! Karpenter's metrics and health servers bind every interface and cannot be told
//! otherwise, so it runs in a network namespace of its own: they are reachable from
//! nowhere, and the harness forwards its apiserver connections into that namespace.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kube::Client;
use tokio::task::JoinHandle;

use crate::control_plane::{servers_dir, ControlPlane};

/// The NodePool of the scenarios.
pub const NODEPOOL: &str = "spot";
/// Its only instance type: 4 CPUs, 3900m allocatable (4 pods of 900m).
pub const INSTANCE_TYPE: &str = "c-4x-amd64-linux";

/// Whether Karpenter's binary and CRDs are built and network namespaces can be made;
/// prints why not, or fails under `BOOSTER_REQUIRE_APISERVER=1` (`make test` builds the
/// binary; a network namespace needs root, or CAP_SYS_ADMIN and `ip`).
pub fn available() -> bool {
    let d = servers_dir();
    if !d.join("karpenter-kwok").exists() || !d.join("karpenter-crds").is_dir() {
        assert!(
            !super::apiserver_required(),
            "karpenter-kwok or karpenter-crds missing in {}; run scripts/build-test-servers.sh",
            d.display()
        );
        eprintln!(
            "SKIPPED Karpenter e2e: karpenter-kwok missing in {} (make test builds it)",
            d.display()
        );
        return false;
    }
    match Netns::create() {
        Ok(_) => true,
        Err(e) => {
            assert!(
                !super::apiserver_required(),
                "BOOSTER_REQUIRE_APISERVER=1 and the Karpenter e2e scenarios cannot run: no network \
                 namespace for Karpenter ({e}); `ip netns add` needs root or CAP_SYS_ADMIN"
            );
            eprintln!("SKIPPED Karpenter e2e: no network namespace for Karpenter ({e})");
            false
        }
    }
}

fn ip_command() -> PathBuf {
    ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("ip"))
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new(ip_command())
        .args(args)
        .output()
        .map_err(|e| format!("ip {args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A network namespace with its loopback up, deleted when dropped (its processes keep it
/// alive until they end).
pub struct Netns {
    name: String,
}

impl Netns {
    /// Makes one, named after this process and a counter.
    pub fn create() -> Result<Netns, String> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("asb-{}-{n}", std::process::id());
        ip(&["netns", "add", &name])?;
        let ns = Netns { name };
        ip(&[
            "netns",
            "exec",
            &ns.name,
            ip_command().to_str().unwrap_or("ip"),
            "link",
            "set",
            "lo",
            "up",
        ])?;
        Ok(ns)
    }

    /// Listens on 127.0.0.1 inside the namespace and forwards each connection to `target`
    /// outside it; returns the inside port.
    pub fn forward(&self, target: std::net::SocketAddr) -> Result<(u16, JoinHandle<()>), String> {
        let path = format!("/run/netns/{}", self.name);
        // A socket belongs to the namespace of the thread that made it: a thread of its own
        // enters the namespace, makes the listener and ends.
        let listener = std::thread::spawn(move || -> Result<std::net::TcpListener, String> {
            let f = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
            nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("setns {path}: {e}"))?;
            let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            l.set_nonblocking(true).map_err(|e| e.to_string())?;
            Ok(l)
        })
        .join()
        .map_err(|_| "the namespace thread panicked".to_string())??;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
        let task = tokio::spawn(async move {
            while let Ok((mut inside, _)) = listener.accept().await {
                tokio::spawn(async move {
                    if let Ok(mut outside) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inside, &mut outside).await;
                    }
                });
            }
        });
        Ok((port, task))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "delete", &self.name]);
    }
}

/// Karpenter running in the world; stopped with the control plane, its namespace deleted
/// when dropped.
pub struct Karpenter {
    _netns: Netns,
    forward: JoinHandle<()>,
}

impl Drop for Karpenter {
    fn drop(&mut self) {
        self.forward.abort();
    }
}

/// Every CRD of the module (NodePool, NodeClaim, NodeOverlay, CapacityBuffer,
/// KWOKNodeClass), until each is Established.
async fn install_crds(kube: &Client) -> Result<(), String> {
    let dir = servers_dir().join("karpenter-crds");
    let api: Api<CustomResourceDefinition> = Api::all(kube.clone());
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
        let crd: CustomResourceDefinition =
            serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        names.push(crd.metadata.name.clone().unwrap_or_default());
        api.create(&PostParams::default(), &crd)
            .await
            .map_err(|e| format!("CRD {}: {e}", path.display()))?;
    }
    super::eventually(30, "Karpenter's CRDs established", || {
        let (api, names) = (api.clone(), names.clone());
        async move {
            for n in &names {
                let established = api
                    .get(n)
                    .await
                    .ok()
                    .and_then(|c| c.status)
                    .is_some_and(|s| {
                        s.conditions
                            .unwrap_or_default()
                            .iter()
                            .any(|c| c.type_ == "Established" && c.status == "True")
                    });
                if !established {
                    return false;
                }
            }
            true
        }
    })
    .await
}

fn dynamic(
    kube: &Client,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(group, version, kind);
    Api::all_with(
        kube.clone(),
        &ApiResource::from_gvk_with_plural(&gvk, plural),
    )
}

/// NodeClaims, as Karpenter keeps them.
pub fn nodeclaims(kube: &Client) -> Api<DynamicObject> {
    booster_k8s::convert::nodeclaims(kube.clone())
}

/// The KWOKNodeClass (its registration delay is the boot time) and the spot NodePool:
/// [`INSTANCE_TYPE`] only, at most `max_cpu` CPUs, and no disruption of Karpenter's own
/// within a scenario (consolidation would blur what the booster does).
async fn node_class_and_pool(kube: &Client, boot: Duration, max_cpu: u32) -> Result<(), String> {
    let class: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "karpenter.kwok.sh/v1alpha1", "kind": "KWOKNodeClass",
        "metadata": {"name": "default"},
        "spec": {"nodeRegistrationDelay": format!("{}s", boot.as_secs())}
    }))
    .map_err(|e| e.to_string())?;
    dynamic(
        kube,
        "karpenter.kwok.sh",
        "v1alpha1",
        "KWOKNodeClass",
        "kwoknodeclasses",
    )
    .create(&PostParams::default(), &class)
    .await
    .map_err(|e| format!("KWOKNodeClass: {e}"))?;
    let pool: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodePool",
        "metadata": {"name": NODEPOOL},
        "spec": {
            "template": {"spec": {
                "nodeClassRef": {"group": "karpenter.kwok.sh", "kind": "KWOKNodeClass", "name": "default"},
                "requirements": [
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]},
                    {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": [INSTANCE_TYPE]},
                    {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["test-zone-a", "test-zone-b"]}
                ],
                "expireAfter": "Never"
            }},
            "limits": {"cpu": max_cpu.to_string()},
            "disruption": {"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "Never",
                           "budgets": [{"nodes": "0"}]}
        }
    }))
    .map_err(|e| e.to_string())?;
    dynamic(kube, "karpenter.sh", "v1", "NodePool", "nodepools")
        .create(&PostParams::default(), &pool)
        .await
        .map_err(|e| format!("NodePool: {e}"))?;
    Ok(())
}

/// Installs the CRDs, the node class and the pool, and starts Karpenter (in its network
/// namespace, as `karpenter` among the control plane's servers).
pub async fn start(
    cp: &mut ControlPlane,
    kube: &Client,
    boot: Duration,
    max_cpu: u32,
) -> Result<Karpenter, String> {
    install_crds(kube).await?;
    node_class_and_pool(kube, boot, max_cpu).await?;
    let netns = Netns::create()?;
    let apiserver: std::net::SocketAddr = cp
        .url
        .trim_start_matches("https://")
        .parse()
        .map_err(|e| format!("{}: {e}", cp.url))?;
    let (port, forward) = netns.forward(apiserver)?;
    let text = std::fs::read_to_string(&cp.kubeconfig).map_err(|e| e.to_string())?;
    let kubeconfig = cp.dir.join("karpenter.kubeconfig");
    std::fs::write(
        &kubeconfig,
        text.replace(&cp.url, &format!("https://127.0.0.1:{port}")),
    )
    .map_err(|e| e.to_string())?;
    let kubeconfig_s = kubeconfig.display().to_string();
    let bin = servers_dir().join("karpenter-kwok");
    let args: Vec<String> = vec![
        "netns".into(),
        "exec".into(),
        netns.name.clone(),
        bin.display().to_string(),
    ];
    cp.spawn_server_with_env(
        "karpenter",
        Path::new(&ip_command()),
        &args,
        &[
            ("KUBECONFIG", kubeconfig_s.as_str()),
            ("DISABLE_LEADER_ELECTION", "true"),
            // Its own namespace's ports: nothing else listens there.
            ("METRICS_PORT", "8080"),
            ("HEALTH_PROBE_PORT", "8081"),
            // A scenario's pace: launch within a couple of seconds of a pod pending.
            ("BATCH_IDLE_DURATION", "1s"),
            ("BATCH_MAX_DURATION", "2s"),
            ("LOG_LEVEL", "info"),
        ],
    )?;
    Ok(Karpenter {
        _netns: netns,
        forward,
    })
}

/// The NodeClaim that owns `node`.
pub async fn nodeclaim_of(kube: &Client, node: &str) -> Option<String> {
    let n = Api::<k8s_openapi::api::core::v1::Node>::all(kube.clone())
        .get_opt(node)
        .await
        .ok()??;
    booster_k8s::convert::nodeclaim_of(&n)
}
