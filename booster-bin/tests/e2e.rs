//! End to end: the booster binary in a cluster of kwok Nodes backed by a moto Auto
//! Scaling group, beside kube-scheduler, kube-controller-manager, an NTH per signalled
//! node reading its own amazon-ec2-metadata-mock, and cluster-autoscaler's status and
//! scale-up (see `booster_tests::e2e` for who plays which part).
//!
//! Every scenario asserts on the cluster and the group, and prints one line:
//! `e2e <scenario>: ok in <s> s (<figures>)`. They are `#[ignore]`d in the plain
//! `cargo test` run and run one at a time by `make e2e` (part of `make test`).

use std::path::Path;
use std::time::{Duration, Instant};

use booster_tests::e2e::{eventually, Env, Options};
use k8s_openapi::api::core::v1::Node;
use kube::Api;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_aws-spots-booster"))
}

/// Prints the scenario's one-line result.
fn report(name: &str, start: Instant, env: &Env, extra: &str) {
    let (pending, max_pending, deficit) = env.figures();
    let desired: Vec<String> = env.desired_history().iter().map(i32::to_string).collect();
    println!(
        "e2e {name}: ok in {:.0} s (desired {}, pending {pending:.1} pod-s, max {max_pending} pending, capacity deficit {deficit:.1} node-s{}{extra})",
        start.elapsed().as_secs_f64(),
        desired.join("→"),
        if extra.is_empty() { "" } else { ", " },
    );
}

async fn node_exists(env: &Env, name: &str) -> bool {
    Api::<Node>::all(env.kube.clone())
        .get_opt(name)
        .await
        .ok()
        .flatten()
        .is_some()
}

/// 1. One signal: boost, replacement Ready, PDB-respecting drain, retire with decrement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: run by `make e2e`"]
async fn e2e_1_one_signal() {
    let start = Instant::now();
    let Some(mut env) = Env::start(Options::default()).await.expect("world") else {
        return;
    };
    let booster = env.booster(bin(), "booster", &[]).expect("booster");
    booster.wait_ready(60).await.expect("ready");
    let (victim, instance) = env.busiest_node().await.expect("victim");
    env.signal(&victim, &instance, Duration::from_secs(1), None)
        .expect("signal");

    let ended = {
        let record = env.record.clone();
        let instance = instance.clone();
        eventually(120, "the signalled instance retired", move || {
            let done = record.lock().is_ok_and(|r| r.ended.contains(&instance));
            async move { done }
        })
        .await
    };
    ended.unwrap_or_else(|e| panic!("{e}; logs in {}", env.dir().display()));
    let (desired, ids) = env.group().await.expect("group");
    let history = env.desired_history();
    assert_eq!(history.iter().max(), Some(&4), "one boost: {history:?}");
    assert_eq!(desired, 3, "desired back to the CA target: {history:?}");
    assert!(!ids.contains(&instance), "retired");
    assert!(!node_exists(&env, &victim).await, "its Node left with it");
    env.wait_nodes_ready(3, 30).await.expect("3 Ready nodes");
    let r = env.record.lock().map(|r| r.min_running).ok().flatten();
    assert!(
        r >= Some(env.options().replicas as usize - 1),
        "the budget (maxUnavailable 1) held: fewest running {r:?}"
    );
    let (pending, _, _) = env.figures();
    assert_eq!(pending, 0.0, "no pod pending beyond scheduling time");
    assert_eq!(
        booster
            .metric(
                "spots_booster_actions_total",
                &["action=\"setDesired\"", "outcome=\"ok\""]
            )
            .await,
        1.0
    );
    report("1-one-signal", start, &env, "");
}
