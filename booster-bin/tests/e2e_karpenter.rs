//! End to end with the real Karpenter (its KWOK cloud provider, see
//! `booster_tests::e2e::karpenter`): nodes a spot NodePool provisions for the workload,
//! NTH in IMDS mode on them, and the booster asking for capacity with placeholder pods.
//! Karpenter alone does nothing on a rebalance recommendation; it drains at the interruption
//! notice, when no replacement can be Ready. The booster runs as its ServiceAccount with
//! deploy/rbac.yaml's rights (its placeholder pods in their `restricted` namespace under
//! its ResourceQuota). Every scenario prints one line:
//! `e2e <scenario>: ok in <s> s (<figures>; as <identity>)`. Under
//! `BOOSTER_REQUIRE_APISERVER=1` a missing prerequisite (Karpenter's build, a network
//! namespace) fails a scenario instead of skipping it.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use booster_tests::e2e::karpenter::{nodeclaim_of, nodeclaims};
use booster_tests::e2e::{eventually, given_back, node_ready, Booster, Env, Options};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams};
use kube::Client;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_aws-spots-booster"))
}

const PLACEHOLDERS: &str = booster_k8s::placeholders::DEFAULT_NAMESPACE;

/// Three full Karpenter nodes (4 pods of 900m each), a 10 s boot, room for `max_nodes`.
fn world(max_nodes: i32, boot_secs: u64) -> Options {
    Options {
        karpenter: true,
        nodes: 3,
        replicas: 12,
        max_size: max_nodes,
        boot_delay: Duration::from_secs(boot_secs),
        ..Options::default()
    }
}

async fn start_world(opts: Options, args: &[&str]) -> Option<(Env, Booster)> {
    let env = Env::start(opts).await.expect("world")?;
    let booster = env.booster(bin(), "booster", args).expect("booster");
    booster.wait_ready(60).await.expect("ready");
    Some((env, booster))
}

/// Every placeholder pod name seen, sampled every 250 ms while the scenario runs.
fn watch_placeholders(
    kube: &Client,
) -> (Arc<Mutex<BTreeSet<String>>>, tokio::task::JoinHandle<()>) {
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let (s, pods) = (
        seen.clone(),
        Api::<Pod>::namespaced(kube.clone(), PLACEHOLDERS),
    );
    let task = tokio::spawn(async move {
        loop {
            if let Ok(l) = pods.list(&ListParams::default()).await {
                if let Ok(mut s) = s.lock() {
                    s.extend(l.items.into_iter().filter_map(|p| p.metadata.name));
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    (seen, task)
}

async fn placeholders_now(kube: &Client) -> usize {
    Api::<Pod>::namespaced(kube.clone(), PLACEHOLDERS)
        .list(&ListParams::default())
        .await
        .map(|l| l.items.len())
        .unwrap_or(usize::MAX)
}

/// Waits until exactly `n` placeholder pods exist.
async fn placeholders_become(env: &Env, n: usize, secs: u64) {
    eventually(secs, &format!("{n} placeholders"), || async {
        placeholders_now(&env.kube).await == n
    })
    .await
    .unwrap_or_else(|e| panic!("{e}; logs in {}", env.dir().display()));
}

async fn ready_nodes(kube: &Client) -> BTreeSet<String> {
    Api::<Node>::all(kube.clone())
        .list(&ListParams::default())
        .await
        .map(|l| {
            l.items
                .iter()
                .filter(|n| node_ready(n))
                .filter_map(|n| n.metadata.name.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Seconds from `since` until a Ready node not in `before` exists.
async fn replacement_ready(
    kube: &Client,
    before: &BTreeSet<String>,
    since: Instant,
    secs: u64,
) -> f64 {
    eventually(secs, "a replacement node Ready", || async {
        ready_nodes(kube).await.iter().any(|n| !before.contains(n))
    })
    .await
    .expect("replacement");
    since.elapsed().as_secs_f64()
}

async fn claim_exists(kube: &Client, claim: &str) -> bool {
    nodeclaims(kube)
        .get_opt(claim)
        .await
        .ok()
        .flatten()
        .is_some()
}

/// Waits until `claim` and `node` are gone (the booster deleted the NodeClaim; Karpenter
/// deleted the Node).
async fn retired(env: &Env, node: &str, claim: &str, secs: u64) {
    let nodes = Api::<Node>::all(env.kube.clone());
    eventually(
        secs,
        &format!("NodeClaim {claim} and Node {node} gone"),
        || async {
            !claim_exists(&env.kube, claim).await
                && nodes.get_opt(node).await.ok().flatten().is_none()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}; logs in {}", env.dir().display()));
}

/// The busiest node and its NodeClaim.
async fn victim(env: &Env, skip: &[String]) -> (String, String) {
    let ranked = env.nodes_by_pods().await.expect("nodes");
    ranked
        .into_iter()
        .find(|(n, _)| !skip.contains(n))
        .expect("a node with pods")
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

fn pending(env: &Env) -> f64 {
    env.figures().0
}

/// 21. One signal on a Karpenter node: placeholders, Karpenter provisions the replacement,
/// the drain starts once it is Ready and holds them, the NodeClaim is deleted, nothing is
/// left. Then, in the same world without the booster, the same loss as Karpenter handles
/// it alone (it deletes the NodeClaim at the interruption notice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: run by `make e2e`"]
async fn e2e_21_karpenter_one_signal() {
    let start = Instant::now();
    let Some((mut env, mut booster)) = start_world(world(6, 10), &[]).await else {
        return;
    };
    let (seen, watcher) = watch_placeholders(&env.kube);
    let (node, claim) = victim(&env, &[]).await;
    let before = ready_nodes(&env.kube).await;
    let signalled = Instant::now();
    let signalled_ms = unix_ms();
    env.signal(&node, &claim, Duration::from_secs(1), None)
        .expect("signal");
    placeholders_become(&env, 4, 30).await;
    let ready_after = replacement_ready(&env.kube, &before, signalled, 90).await;
    retired(&env, &node, &claim, 120).await;
    // The drain waited for the replacement (the ledger's `Draining { since }`, as sampled).
    let drain_since = env
        .record
        .lock()
        .ok()
        .and_then(|r| r.ledger_drains.get(&node).copied())
        .expect("a drain in the ledger");
    let drain_after = (drain_since.unix_millis() - signalled_ms) as f64 / 1000.0;
    placeholders_become(&env, 0, 30).await;
    env.wait_nodes_ready(3, 30).await.expect("3 Ready nodes");
    let with = pending(&env);
    assert_eq!(with, 0.0, "no pod pending beyond scheduling time");
    let sets = seen.lock().map(|s| s.len()).unwrap_or_default();
    assert_eq!(sets, 4, "one set of placeholders");
    let aws = booster.metric("spots_booster_aws_calls_total", &[]).await;
    assert_eq!(aws, 0.0, "no AWS call for Karpenter nodes");
    assert!(
        drain_after >= ready_after - 1.0,
        "drain {drain_after:.1} s after the signal, replacement Ready after {ready_after:.1} s"
    );
    watcher.abort();

    // Without the booster: Karpenter's own interruption handling deletes the NodeClaim.
    booster.kill();
    let (node2, claim2) = victim(&env, &[]).await;
    let before2 = ready_nodes(&env.kube).await;
    let lost = Instant::now();
    nodeclaims(&env.kube)
        .delete(&claim2, &DeleteParams::default())
        .await
        .expect("delete NodeClaim");
    let alone_ready = replacement_ready(&env.kube, &before2, lost, 90).await;
    retired(&env, &node2, &claim2, 60).await;
    env.wait_pods_running(12, 60).await.expect("pods back");
    let alone = pending(&env) - with;
    assert!(alone > 0.0, "Karpenter alone leaves pods pending: {alone}");
    println!(
        "\ne2e 21-karpenter-one-signal: ok in {:.0} s (with the booster: replacement Ready {ready_after:.1} s after the signal, drain from {drain_after:.1} s, pending {with:.1} pod-s, 4 placeholders, 0 AWS calls; Karpenter alone at the notice: replacement Ready {alone_ready:.1} s after, pending {alone:.1} pod-s; {})",
        start.elapsed().as_secs_f64(),
        env.ran_as()
    );
}

/// 22. A storm within drain limits: two Karpenter nodes signalled 5 s apart, one set of
/// placeholders each, both replaced before their drains, both NodeClaims deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: run by `make e2e`"]
async fn e2e_22_karpenter_storm() {
    let start = Instant::now();
    let Some((mut env, _booster)) = start_world(world(6, 10), &[]).await else {
        return;
    };
    let (seen, watcher) = watch_placeholders(&env.kube);
    let (a, claim_a) = victim(&env, &[]).await;
    let (b, claim_b) = victim(&env, std::slice::from_ref(&a)).await;
    env.signal(&a, &claim_a, Duration::from_secs(1), None)
        .expect("signal a");
    tokio::time::sleep(Duration::from_secs(5)).await;
    env.signal(&b, &claim_b, Duration::from_secs(1), None)
        .expect("signal b");
    retired(&env, &a, &claim_a, 150).await;
    retired(&env, &b, &claim_b, 150).await;
    placeholders_become(&env, 0, 30).await;
    env.wait_nodes_ready(3, 30).await.expect("3 Ready nodes");
    let sets = seen.lock().map(|s| s.len()).unwrap_or_default();
    assert_eq!(sets, 8, "one set of four per signal");
    let p = pending(&env);
    assert_eq!(p, 0.0, "no pod pending beyond scheduling time");
    let peak = env
        .record
        .lock()
        .map(|r| booster_tests::e2e::max_overlap(&r.drains))
        .unwrap_or_default();
    watcher.abort();
    println!(
        "\ne2e 22-karpenter-storm: ok in {:.0} s (2 signals 5 s apart, 8 placeholders in 2 sets, both NodeClaims deleted, {peak} drains at once, pending {p:.1} pod-s; {})",
        start.elapsed().as_secs_f64(),
        env.ran_as()
    );
}

/// 23. The booster is killed (SIGKILL) once the placeholders exist, before the replacement
/// is Ready; the next one finds them: no second set, the same drain and retire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: run by `make e2e`"]
async fn e2e_23_karpenter_restart_mid_boost() {
    let start = Instant::now();
    let Some((mut env, mut booster)) = start_world(world(6, 20), &[]).await else {
        return;
    };
    let (seen, watcher) = watch_placeholders(&env.kube);
    let (node, claim) = victim(&env, &[]).await;
    let before = ready_nodes(&env.kube).await;
    env.signal(&node, &claim, Duration::from_secs(1), None)
        .expect("signal");
    placeholders_become(&env, 4, 30).await;
    booster.kill();
    let killed = Instant::now();
    assert!(
        ready_nodes(&env.kube).await.is_subset(&before),
        "killed before the replacement was Ready"
    );
    let next = env
        .booster(bin(), "booster-2", &[])
        .expect("second booster");
    next.wait_ready(60).await.expect("ready");
    retired(&env, &node, &claim, 150).await;
    placeholders_become(&env, 0, 30).await;
    let sets = seen.lock().map(|s| s.len()).unwrap_or_default();
    assert_eq!(sets, 4, "no second set after the restart");
    let p = pending(&env);
    assert_eq!(p, 0.0, "no pod pending beyond scheduling time");
    let made = next
        .metric(
            "spots_booster_actions_total",
            &["action=\"place\"", "outcome=\"ok\""],
        )
        .await as u64;
    watcher.abort();
    println!(
        "\ne2e 23-karpenter-restart-mid-boost: ok in {:.0} s (killed with 4 placeholders waiting, the next booster made {made} more and retired the node {:.0} s after the kill, pending {p:.1} pod-s; {})",
        start.elapsed().as_secs_f64(),
        killed.elapsed().as_secs_f64(),
        env.ran_as()
    );
}

/// 24. A signal that never becomes an interruption, in a NodePool at its limit (Karpenter
/// cannot launch): after `--signal-expiry` the placeholders are removed and the node is
/// given back (uncordoned, NTH's taint removed); its NodeClaim stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: run by `make e2e`"]
async fn e2e_24_karpenter_never_interrupted() {
    let start = Instant::now();
    let Some((mut env, _booster)) = start_world(world(3, 10), &["--signal-expiry", "40s"]).await
    else {
        return;
    };
    let (node, claim) = victim(&env, &[]).await;
    env.signal(&node, &claim, Duration::from_secs(1), None)
        .expect("signal");
    placeholders_become(&env, 4, 30).await;
    let placed = Instant::now();
    let nodes = Api::<Node>::all(env.kube.clone());
    eventually(90, "the node is given back", || async {
        given_back(&nodes, &node).await
    })
    .await
    .unwrap_or_else(|e| panic!("{e}; logs in {}", env.dir().display()));
    let held = placed.elapsed().as_secs_f64();
    placeholders_become(&env, 0, 20).await;
    assert!(claim_exists(&env.kube, &claim).await, "the NodeClaim stays");
    assert_eq!(
        nodeclaim_of(&env.kube, &node).await.as_deref(),
        Some(claim.as_str())
    );
    let drains = env.record.lock().map(|r| r.drains.clone()).expect("record");
    assert!(drains.is_empty(), "nothing drained: {drains:?}");
    let p = pending(&env);
    println!(
        "\ne2e 24-karpenter-never-interrupted: ok in {:.0} s (NodePool at its limit: 4 placeholders pending, removed and the node given back {held:.0} s after they were made (expiry 40 s), NodeClaim kept, pending {p:.1} pod-s; {})",
        start.elapsed().as_secs_f64(),
        env.ran_as()
    );
}
