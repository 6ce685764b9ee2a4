//! End to end, surge before evict (README, "Workloads of one"), in the world of `e2e.rs`
//! (see `booster_tests::e2e`) with the real kube-controller-manager's deployment,
//! replicaset and disruption controllers, kube-scheduler and kwok. The booster runs as its
//! ServiceAccount with deploy/rbac.yaml's rights. One line of figures. Run by `make e2e`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use booster_core::surge::{RECORD_ANNOTATION, SURGING_LABEL};
use booster_tests::e2e::{eventually, report, Env, Options, NS};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ListParams, PostParams};
use kube::Client;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_aws-spots-booster"))
}

/// A one-replica Deployment `name` whose pods take `starting` to be Ready, placed on
/// `victim` (`pinned`: only there, so that its successor can never start).
async fn one_replica(
    kube: &Client,
    name: &str,
    victim: &str,
    starting: Duration,
    recreate: bool,
    pinned: bool,
) {
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
                    "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]
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

async fn min_available_one(kube: &Client, name: &str) {
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

fn ready(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The nodes of `app`'s Ready pods.
async fn ready_on(kube: &Client, app: &str) -> Vec<String> {
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
struct Outages {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<BTreeMap<String, f64>>,
}

impl Outages {
    fn sample(kube: &Client, apps: &[&str]) -> Outages {
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

    async fn stop(self) -> BTreeMap<String, f64> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("sampler")
    }
}

async fn deployment(kube: &Client, name: &str) -> Deployment {
    Api::<Deployment>::namespaced(kube.clone(), NS)
        .get(name)
        .await
        .expect("deployment")
}

/// The booster's Events with `reason` whose note mentions `what`.
async fn events(kube: &Client, reason: &str, what: &str) -> usize {
    Api::<Event>::namespaced(kube.clone(), NS)
        .list(&ListParams::default())
        .await
        .map(|l| {
            l.items
                .iter()
                .filter(|e| e.reason.as_deref() == Some(reason))
                .filter(|e| e.note.as_deref().is_some_and(|n| n.contains(what)))
                .count()
        })
        .unwrap_or_default()
}

async fn all_events(kube: &Client) -> Vec<(String, String)> {
    Api::<Event>::namespaced(kube.clone(), NS)
        .list(&ListParams::default())
        .await
        .map(|l| {
            l.items
                .into_iter()
                .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default()
}

/// The two workloads of one on the busiest node, Ready there; returns it and its instance.
async fn workloads_of_one(env: &Env, starting: Duration) -> (String, String) {
    let (victim, instance) = env.busiest_node().await.expect("victim");
    one_replica(&env.kube, "solo", &victim, starting, false, false).await;
    one_replica(&env.kube, "guarded", &victim, starting, false, false).await;
    min_available_one(&env.kube, "guarded").await;
    (victim, instance)
}

async fn wait_on(env: &Env, apps: &[&str], node: &str) {
    for app in apps {
        eventually(60, &format!("{app} Ready on {node}"), || async {
            ready_on(&env.kube, app).await == vec![node.to_string()]
        })
        .await
        .unwrap_or_else(|e| panic!("{e}; logs in {}", env.dir().display()));
    }
}

/// 30. Workloads of one on the signalled node: `solo` (one replica, no budget) and
/// `guarded` (one replica, `minAvailable: 1`), each 6 s to start. With the booster: its
/// successor is Ready elsewhere before each goes, so neither ever has zero Ready replicas,
/// though the booster is killed and restarted in the middle of the surges; the node is
/// retired. Never worse than today, in the same drain: a `Recreate` Deployment is evicted
/// and reported; one whose successor can never start is undone at `--surge-timeout` and
/// evicted. Then the same world with only the harness's NTH draining at the interruption
/// notice: `solo`'s outage, and `guarded`'s eviction refused until the instance went.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: run by `make e2e`"]
async fn e2e_30_workloads_of_one() {
    let start = Instant::now();
    let starting = Duration::from_secs(6);
    let Some(mut env) = Env::start(Options::default()).await.expect("world") else {
        return;
    };
    let (victim, instance) = workloads_of_one(&env, starting).await;
    one_replica(
        &env.kube,
        "recreate",
        &victim,
        Duration::from_secs(1),
        true,
        false,
    )
    .await;
    one_replica(
        &env.kube,
        "pinned",
        &victim,
        Duration::from_secs(1),
        false,
        true,
    )
    .await;
    wait_on(&env, &["solo", "guarded", "recreate", "pinned"], &victim).await;
    let args = ["--surge-timeout", "25s"];
    let booster = env.booster(bin(), "booster", &args).expect("booster");
    booster.wait_ready(60).await.expect("ready");
    let outages = Outages::sample(&env.kube, &["solo", "guarded"]);
    let signalled = Instant::now();
    env.signal(&victim, &instance, Duration::from_secs(1), None)
        .expect("signal");
    // Killed as soon as a surge is under way, and started again.
    let deployments = Api::<Deployment>::namespaced(env.kube.clone(), NS);
    eventually(120, "a surge under way", || async {
        deployments
            .list(&ListParams::default().labels(SURGING_LABEL))
            .await
            .is_ok_and(|l| !l.items.is_empty())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", booster.log_text()));
    let surging_after = signalled.elapsed().as_secs_f64();
    let mut booster = booster;
    booster.kill();
    let again = env.booster(bin(), "booster", &args).expect("booster again");
    again.wait_ready(60).await.expect("ready again");
    env.wait_ended(&instance, 240)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", again.log_text()));
    let retired_after = signalled.elapsed().as_secs_f64();
    for app in ["solo", "guarded"] {
        eventually(30, &format!("{app} Ready again"), || async {
            !ready_on(&env.kube, app).await.is_empty()
        })
        .await
        .expect("ready");
    }
    let down = outages.stop().await;
    assert_eq!(
        down["solo"], 0.0,
        "solo never without a Ready replica: {down:?}"
    );
    assert_eq!(
        down["guarded"], 0.0,
        "guarded never without a Ready replica: {down:?}"
    );
    for app in ["solo", "guarded", "recreate", "pinned"] {
        let d = deployment(&env.kube, app).await;
        assert_eq!(
            d.spec.and_then(|s| s.replicas),
            Some(1),
            "{app} back to its size"
        );
        assert!(
            !d.metadata
                .labels
                .unwrap_or_default()
                .contains_key(SURGING_LABEL)
                && !d
                    .metadata
                    .annotations
                    .unwrap_or_default()
                    .contains_key(RECORD_ANNOTATION),
            "{app}: no surge left behind"
        );
    }
    if let Err(e) = eventually(30, "the surges' Events", || async {
        events(&env.kube, "SurgeHandedOver", "default/solo").await >= 1
            && events(&env.kube, "SurgeHandedOver", "default/guarded").await >= 1
            && events(&env.kube, "SurgeSkipped", "Recreate").await >= 1
            && events(&env.kube, "SurgeUndone", "default/pinned").await >= 1
    })
    .await
    {
        panic!(
            "{e}: {:?}\n{}",
            all_events(&env.kube).await,
            again.log_text()
        );
    }
    assert!(
        ready_on(&env.kube, "pinned").await.is_empty(),
        "pinned's successor cannot start anywhere: evicted as any other, after the undo"
    );
    drop(again);
    drop(env);

    // The same world, NTH alone: it drains at the interruption notice, 3 s after the
    // recommendation; the instance goes 45 s after the notice.
    let Some(mut base) = Env::start(Options::default()).await.expect("world") else {
        return;
    };
    let (victim, instance) = workloads_of_one(&base, starting).await;
    wait_on(&base, &["solo", "guarded"], &victim).await;
    let outages = Outages::sample(&base.kube, &["solo", "guarded"]);
    let noticed = Instant::now() + Duration::from_secs(4);
    base.signal(
        &victim,
        &instance,
        Duration::from_secs(1),
        Some((Duration::from_secs(3), Duration::from_secs(45))),
    )
    .expect("signal");
    let mut guarded_held = 0.0;
    let mut ended = false;
    for _ in 0..150 {
        if base.wait_ended(&instance, 1).await.is_ok() {
            ended = true;
            break;
        }
        if ready_on(&base.kube, "guarded").await == vec![victim.clone()] {
            guarded_held = noticed.elapsed().as_secs_f64().max(0.0);
        }
    }
    assert!(ended, "the instance is reclaimed");
    for app in ["solo", "guarded"] {
        eventually(60, &format!("{app} Ready again"), || async {
            !ready_on(&base.kube, app).await.is_empty()
        })
        .await
        .expect("ready");
    }
    let base_down = outages.stop().await;
    assert!(
        base_down["solo"] > 0.0,
        "NTH alone: solo goes down: {base_down:?}"
    );
    assert!(
        guarded_held >= 30.0,
        "NTH alone: guarded's eviction refused until the instance went ({guarded_held:.0} s)"
    );
    report(
        "30-workloads-of-one",
        start,
        &base,
        &format!(
            "booster: solo and guarded {:.1} s and {:.1} s with zero Ready replicas, surge under way {surging_after:.0} s after the recommendation, booster killed and restarted mid-surge, node retired at {retired_after:.0} s, Recreate evicted and reported, an unstartable successor undone at 25 s; NTH alone: solo down {:.1} s, guarded's eviction refused for {guarded_held:.0} s until the instance went, then down {:.1} s",
            down["solo"], down["guarded"], base_down["solo"], base_down["guarded"]
        ),
    );
}
