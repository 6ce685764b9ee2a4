//! End to end, surge before evict (README, "Workloads of one"), in the world of `e2e.rs`
//! (see `booster_tests::e2e`) with the real kube-controller-manager's deployment,
//! replicaset and disruption controllers, kube-scheduler and kwok. The booster runs as its
//! ServiceAccount with deploy/rbac.yaml's rights. One line of figures. Run by `make e2e`.

use std::path::Path;
use std::time::{Duration, Instant};

use booster_core::surge::{RECORD_ANNOTATION, SURGING_LABEL};
use booster_tests::e2e::karpenter::nodeclaims;
use booster_tests::e2e::workloads::{min_available_one, one_replica, ready_on, Outages, Shape};
use booster_tests::e2e::{eventually, report, Env, Options, NS};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use kube::Client;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_aws-spots-booster"))
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
async fn workloads_of_one(env: &Env, shape: Shape) -> (String, String) {
    let (victim, instance) = env.busiest_node().await.expect("victim");
    one_replica(&env.kube, "solo", &victim, shape).await;
    one_replica(&env.kube, "guarded", &victim, shape).await;
    min_available_one(&env.kube, "guarded").await;
    (victim, instance)
}

/// Waits until each of `apps` has a Ready pod again.
async fn back_up(env: &Env, apps: &[&str], secs: u64) {
    for app in apps {
        eventually(secs, &format!("{app} Ready again"), || async {
            !ready_on(&env.kube, app).await.is_empty()
        })
        .await
        .unwrap_or_else(|e| panic!("{e}; logs in {}", env.dir().display()));
    }
}

/// Workloads of one that take 6 s to start, as an application would.
fn six_seconds() -> Shape {
    Shape {
        starting: Duration::from_secs(6),
        ..Shape::default()
    }
}

/// Whether a Deployment is at one replica with no surge record or label left.
async fn settled(kube: &Client, app: &str) -> bool {
    let d = deployment(kube, app).await;
    d.spec.and_then(|s| s.replicas) == Some(1)
        && !d
            .metadata
            .labels
            .unwrap_or_default()
            .contains_key(SURGING_LABEL)
        && !d
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key(RECORD_ANNOTATION)
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
    let Some(mut env) = Env::start(Options::default()).await.expect("world") else {
        return;
    };
    let (victim, instance) = workloads_of_one(&env, six_seconds()).await;
    let quick = Shape {
        starting: Duration::from_secs(1),
        ..Shape::default()
    };
    let recreate = Shape {
        recreate: true,
        ..quick
    };
    let pinned = Shape {
        pinned: true,
        ..quick
    };
    one_replica(&env.kube, "recreate", &victim, recreate).await;
    one_replica(&env.kube, "pinned", &victim, pinned).await;
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
    back_up(&env, &["solo", "guarded"], 30).await;
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
        assert!(
            settled(&env.kube, app).await,
            "{app}: back to its size, no surge left behind"
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
    let ran_as = env.ran_as();
    drop(again);
    drop(env);

    // The same world, NTH alone: it drains at the interruption notice, 3 s after the
    // recommendation; the instance goes 45 s after the notice.
    let Some(mut base) = Env::start(Options::default()).await.expect("world") else {
        return;
    };
    let (victim, instance) = workloads_of_one(&base, six_seconds()).await;
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
    back_up(&base, &["solo", "guarded"], 60).await;
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
            "booster: solo and guarded {:.1} s and {:.1} s with zero Ready replicas, surge under way {surging_after:.0} s after the recommendation, booster killed and restarted mid-surge, node retired at {retired_after:.0} s, Recreate evicted and reported, an unstartable successor undone at 25 s; NTH alone: solo down {:.1} s, guarded's eviction refused for {guarded_held:.0} s until the instance went, then down {:.1} s; the booster ran {ran_as}",
            down["solo"], down["guarded"], base_down["solo"], base_down["guarded"]
        ),
    );
}

/// 31. Workloads of one on a Karpenter node (placeholder capacity, NTH in IMDS mode): the
/// booster's placeholders bring up the replacement, the drain moves `solo` and `guarded`
/// (one replica each, 6 s to start, 50m CPU) by surge, and the NodeClaim is deleted:
/// neither ever has zero Ready replicas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: run by `make e2e`"]
async fn e2e_31_workloads_of_one_on_karpenter() {
    let start = Instant::now();
    let opts = Options {
        karpenter: true,
        nodes: 3,
        replicas: 12,
        max_size: 6,
        boot_delay: Duration::from_secs(10),
        ..Options::default()
    };
    let Some(mut env) = Env::start(opts).await.expect("world") else {
        return;
    };
    let shape = Shape {
        cpu_millis: 50,
        ..six_seconds()
    };
    let (victim, claim) = workloads_of_one(&env, shape).await;
    wait_on(&env, &["solo", "guarded"], &victim).await;
    let booster = env.booster(bin(), "booster", &[]).expect("booster");
    booster.wait_ready(60).await.expect("ready");
    let outages = Outages::sample(&env.kube, &["solo", "guarded"]);
    let signalled = Instant::now();
    env.signal(&victim, &claim, Duration::from_secs(1), None)
        .expect("signal");
    let nodes = Api::<Node>::all(env.kube.clone());
    eventually(180, "the NodeClaim and its Node gone", || async {
        nodeclaims(&env.kube)
            .get_opt(&claim)
            .await
            .ok()
            .flatten()
            .is_none()
            && nodes.get_opt(&victim).await.ok().flatten().is_none()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", booster.log_text()));
    let retired_after = signalled.elapsed().as_secs_f64();
    back_up(&env, &["solo", "guarded"], 30).await;
    for app in ["solo", "guarded"] {
        assert!(settled(&env.kube, app).await, "{app}: no surge left behind");
    }
    let down = outages.stop().await;
    assert_eq!(down["solo"], 0.0, "{down:?}");
    assert_eq!(down["guarded"], 0.0, "{down:?}");
    let handed = booster
        .metric("spots_booster_surges_total", &["outcome=\"handedOver\""])
        .await;
    assert_eq!(handed, 2.0, "both moved by surge");
    report(
        "31-workloads-of-one-on-karpenter",
        start,
        &env,
        &format!(
            "solo and guarded {:.1} s and {:.1} s with zero Ready replicas, 2 surges handed over, NodeClaim deleted {retired_after:.0} s after the recommendation",
            down["solo"], down["guarded"]
        ),
    );
}
