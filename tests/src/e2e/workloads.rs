//! Workloads of one for the surge scenarios: one-replica Deployments placed on a chosen
//! node, their budgets, and how long each had no Ready pod.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ListParams, PostParams};
use kube::Client;

use super::NS;

/// How a one-replica Deployment is made.
#[derive(Clone, Copy, Debug, Default)]
pub struct Shape {
    /// How long its pods take to be Ready (kwok's `e2e/starting-for`).
    pub starting: Duration,
    /// `strategy: Recreate` instead of RollingUpdate.
    pub recreate: bool,
    /// Only on the chosen node (required affinity), so that its successor can never start;
    /// else preferred there.
    pub pinned: bool,
    /// CPU request in millicores (0: none).
    pub cpu_millis: u32,
}

/// A one-replica Deployment `name` shaped by `shape`, placed on `node`.
pub async fn one_replica(kube: &Client, name: &str, node: &str, shape: Shape) {
    let Shape {
        starting,
        recreate,
        pinned,
        cpu_millis,
    } = shape;
    let victim = node;
    let labels = serde_json::json!({"app": name});
    let term = serde_json::json!({"matchFields": [
        {"key": "metadata.name", "operator": "In", "values": [victim]}
    ]});
    let affinity = if pinned {
        serde_json::json!({"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}
        }})
    } else {
        serde_json::json!({"nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "preference": term}]
        }})
    };
    let strategy = if recreate {
        serde_json::json!({"type": "Recreate"})
    } else {
        serde_json::json!({"type": "RollingUpdate"})
    };
    let resources = if cpu_millis > 0 {
        serde_json::json!({"requests": {"cpu": format!("{cpu_millis}m")}})
    } else {
        serde_json::json!({})
    };
    let d: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": 1,
            "strategy": strategy,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": {
                    "e2e/starting-for": format!("{}s", starting.as_secs())
                }},
                "spec": {
                    "terminationGracePeriodSeconds": 2,
                    "affinity": affinity,
                    "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
                        "resources": resources}]
                }
            }
        }
    }))
    .expect("deployment");
    Api::<Deployment>::namespaced(kube.clone(), NS)
        .create(&PostParams::default(), &d)
        .await
        .expect("create deployment");
}

/// A budget `minAvailable: 1` for the pods of `name`.
pub async fn min_available_one(kube: &Client, name: &str) {
    let pdb: PodDisruptionBudget = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": NS},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": name}}}
    }))
    .expect("pdb");
    Api::<PodDisruptionBudget>::namespaced(kube.clone(), NS)
        .create(&PostParams::default(), &pdb)
        .await
        .expect("create pdb");
}

/// Ready and not terminating.
pub fn ready(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The nodes of `app`'s Ready pods.
pub async fn ready_on(kube: &Client, app: &str) -> Vec<String> {
    Api::<Pod>::namespaced(kube.clone(), NS)
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .map(|l| {
            l.items
                .iter()
                .filter(|p| ready(p))
                .filter_map(|p| p.spec.as_ref()?.node_name.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Seconds each app spent with no Ready pod, sampled every 200 ms until stopped.
pub struct Outages {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<BTreeMap<String, f64>>,
}

impl Outages {
    /// Starts sampling `apps`.
    pub fn sample(kube: &Client, apps: &[&str]) -> Outages {
        let stop = Arc::new(AtomicBool::new(false));
        let (kube, apps, halt) = (
            kube.clone(),
            apps.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            stop.clone(),
        );
        let task = tokio::spawn(async move {
            let mut down: BTreeMap<String, f64> = apps.iter().map(|a| (a.clone(), 0.0)).collect();
            let mut last = Instant::now();
            while !halt.load(Ordering::SeqCst) {
                let dt = last.elapsed().as_secs_f64();
                last = Instant::now();
                for a in &apps {
                    if ready_on(&kube, a).await.is_empty() {
                        *down.entry(a.clone()).or_default() += dt;
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            down
        });
        Outages { stop, task }
    }

    /// Stops, and the seconds each app had no Ready pod.
    pub async fn stop(self) -> BTreeMap<String, f64> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("sampler")
    }
}
