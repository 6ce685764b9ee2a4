//! `make apiserver-requests`: the booster's requests to the apiserver per minute, with
//! 5,000 Nodes more than the scenario world has, idle and while three signals are handled
//! (boosts, drains held back by a budget). Counted from kube-apiserver's audit log, where
//! the booster, running as its ServiceAccount with the shipped RBAC, is the only client
//! with that user name. A measurement for the notes, not a check: it is not part of
//! `make test`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use booster_tests::e2e::{Env, Options, SERVICE_ACCOUNT_USER};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_aws-spots-booster"))
}

fn diff(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}

fn line(per_window: &BTreeMap<String, u64>, minutes: f64) -> String {
    let total: u64 = per_window.values().sum();
    let parts: Vec<String> = per_window
        .iter()
        .map(|(k, v)| format!("{k} {:.0}", *v as f64 / minutes))
        .collect();
    format!("{:.0}/min ({})", total as f64 / minutes, parts.join(", "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: make apiserver-requests"]
async fn requests_per_minute_with_5000_nodes() {
    let opts = Options {
        audit: true,
        nodes: 4,
        replicas: 13,
        ..Options::default()
    };
    let Some(mut env) = Env::start(opts).await.expect("world") else {
        return;
    };
    // What a large cluster's Node watch carries (no kubelet: NotReady, in no group).
    booster_tests::control_plane::create_nodes(&env.kube, "big", 5000).await;
    // The production pace: a resync a minute.
    let booster = env
        .booster(bin(), "booster", &["--resync", "60s"])
        .expect("booster");
    booster.wait_ready(300).await.expect("ready");
    tokio::time::sleep(Duration::from_secs(20)).await;
    let window = Duration::from_secs(60);
    let minutes = window.as_secs_f64() / 60.0;
    let before = env.cp.audited(SERVICE_ACCOUNT_USER);
    tokio::time::sleep(window).await;
    let idle = diff(&env.cp.audited(SERVICE_ACCOUNT_USER), &before);

    let ranked = env.nodes_by_pods().await.expect("nodes");
    for (node, instance) in ranked.iter().take(3) {
        env.signal(node, instance, Duration::from_secs(1), None)
            .expect("signal");
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = env.cp.audited(SERVICE_ACCOUNT_USER);
    tokio::time::sleep(window).await;
    let storm = diff(&env.cp.audited(SERVICE_ACCOUNT_USER), &before);
    let drains = booster.metric("spots_booster_drains_running", &[]).await;
    println!(
        "\napiserver requests by the booster ({}), 5,004 Nodes: idle {}; three signals (drains running at the end: {drains:.0}) {}",
        env.ran_as(),
        line(&idle, minutes),
        line(&storm, minutes)
    );
}
