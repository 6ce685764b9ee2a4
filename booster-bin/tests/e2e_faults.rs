//! End to end under faults: the same world as `e2e.rs` (see `booster_tests::e2e`), with
//! the faults production has: a connection to the apiserver that answers nothing, Auto
//! Scaling frozen mid-boost, the ledger deleted, a Node name that comes back on another
//! machine, a replica whose clock runs ahead. The booster runs as its ServiceAccount with
//! deploy/rbac.yaml's rights, as in production. Each scenario asserts on the cluster and
//! the group and prints one line with its figures and who the booster ran as. Run by
//! `make e2e`, one at a time.

use std::path::Path;
use std::time::{Duration, Instant};

use booster_k8s::lease::Timings;
use booster_tests::e2e::blackhole::Blackhole;
use std::collections::BTreeMap;

use booster_tests::e2e::{
    eventually, http_get, read_ledger, report, with_booster, Booster, Env, Options, LEDGER,
    SERVICE_ACCOUNT,
};
use k8s_openapi::api::core::v1::{ConfigMap, Event, Node};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::Api;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_aws-spots-booster"))
}

/// The booster's own figure for a setting, from `--print-config` with the scenarios' pace.
fn config_secs(key: &str) -> u64 {
    let out = std::process::Command::new(bin())
        .args(["--print-config", "--resync", "2s"])
        .output()
        .expect("--print-config");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    doc[key]
        .as_str()
        .and_then(|s| s.trim_end_matches('s').parse().ok())
        .unwrap_or_else(|| panic!("{key} in {doc}"))
}

/// The time at the start of the first line of `log` that contains every one of `parts`.
fn logged_at(log: &str, parts: &[&str]) -> Option<k8s_openapi::jiff::Timestamp> {
    log.lines()
        .find(|l| parts.iter().all(|p| l.contains(p)))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|t| t.parse().ok())
}

/// 10. The leader's connection to the apiserver is black-holed (a proxy that keeps it
/// open and passes nothing), then restored. The standby takes over within the bound by
/// design; the old leader stops acting before the new one starts; its /healthz fails within
/// its liveness bound; the signal that arrives meanwhile is boosted once, by the new leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: run by `make e2e`"]
async fn e2e_10_apiserver_black_holed() {
    let start = Instant::now();
    let opts = Options {
        nodes: 4,
        replicas: 13,
        ..Options::default()
    };
    let Some(mut env) = Env::start(opts).await.expect("world") else {
        return;
    };
    let hole = Blackhole::start(env.apiserver_addr().expect("address"))
        .await
        .expect("proxy");
    let server = format!("https://{}", hole.addr);
    let a = env
        .booster_at(bin(), "booster-a", &[], &server, &[])
        .expect("a");
    a.wait_ready(60).await.expect("a ready");
    eventually(30, "a holds the Lease", || async {
        env.lease_holder().await.as_deref() == Some("booster-a")
    })
    .await
    .expect("lease");
    let b = env.booster(bin(), "booster-b", &[]).expect("b");
    b.wait_ready(60).await.expect("b ready");

    hole.hole(true);
    let holed = Instant::now();
    eventually(60, "b takes the Lease", || async {
        env.lease_holder().await.as_deref() == Some("booster-b")
    })
    .await
    .expect("takeover");
    let takeover = holed.elapsed();
    // A's last renewal was before the hole: the bound by design counts from it.
    let bound = Timings::default().takeover_bound() + Duration::from_secs(1);
    assert!(takeover <= bound, "takeover {takeover:?} > {bound:?}");

    // A signal while A is cut off: B boosts it, once.
    let (victim, instance) = env.busiest_node().await.expect("victim");
    env.signal(&victim, &instance, Duration::from_secs(1), None)
        .expect("signal");

    let window = config_secs("livenessWindow");
    // The last pass that had the apiserver's answer was at most 25 s (a quiet spell before
    // the adapter asks the apiserver itself) after the hole; the window counts from it.
    let liveness_bound = Duration::from_secs(window + 25 + 5);
    let port = a.port;
    eventually(
        liveness_bound.as_secs() + 10,
        "a's /healthz fails",
        || async move { matches!(http_get(port, "/healthz").await, Some((503, _))) },
    )
    .await
    .expect("a unhealthy");
    let unhealthy = holed.elapsed();
    assert!(
        unhealthy <= liveness_bound,
        "unhealthy after {unhealthy:?} > {liveness_bound:?}"
    );

    env.wait_ended(&instance, 150)
        .await
        .expect("signalled instance retired");
    hole.hole(false);
    let restored = Instant::now();
    eventually(90, "a healthy again", || async move {
        matches!(http_get(port, "/healthz").await, Some((200, _)))
    })
    .await
    .expect("a healthy");
    let recovered = restored.elapsed();

    // Who acted when: A's lead ended (its own log) before B's began (B's log).
    let a_lost = logged_at(&a.log_text(), &["leadership changed", "leading=false"])
        .expect("a logged the end of its lead");
    let b_won = logged_at(&b.log_text(), &["leadership changed", "leading=true"])
        .expect("b logged its lead");
    assert!(
        a_lost < b_won,
        "a stopped at {a_lost}, b started at {b_won}"
    );
    let history = env.desired_history();
    assert_eq!(history.iter().max(), Some(&5), "one boost: {history:?}");
    assert_eq!(env.group().await.expect("group").0, 4, "{history:?}");
    assert_eq!(
        b.metric(
            "spots_booster_actions_total",
            &["action=\"setDesired\"", "outcome=\"ok\""]
        )
        .await,
        1.0
    );
    assert_eq!(
        a.metric(
            "spots_booster_actions_total",
            &["action=\"setDesired\"", "outcome=\"ok\""]
        )
        .await,
        0.0,
        "the cut-off replica boosted nothing"
    );
    report(
        "10-apiserver-black-holed",
        start,
        &env,
        &format!(
            "takeover {:.1} s (bound {:.0} s), a unhealthy after {:.0} s (bound {:.0} s), a's lead ended {:.1} s before b's began, healthy {:.0} s after restore, 1 boost",
            takeover.as_secs_f64(),
            bound.as_secs_f64(),
            unhealthy.as_secs_f64(),
            liveness_bound.as_secs_f64(),
            b_won.duration_since(a_lost).as_secs_f64(),
            recovered.as_secs_f64(),
        ),
    );
}

/// 11. moto is frozen (SIGSTOP) as the boost is recorded, for longer than a call's
/// deadline, then resumed: the booster holds its AWS steps meanwhile (and says so), then
/// boosts once and finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: run by `make e2e`"]
async fn e2e_11_aws_frozen_mid_boost() {
    let start = Instant::now();
    let Some((mut env, booster)) = with_booster(Options::default(), bin()).await else {
        return;
    };
    let (victim, instance) = env.signal_busiest().await;
    eventually(60, "the signal recorded", || async {
        env.ledger_entries()
            .await
            .ok()
            .flatten()
            .is_some_and(|e| e.contains(&victim))
    })
    .await
    .expect("recorded");
    let frozen = env.freeze_moto().expect("SIGSTOP moto");
    let froze = Instant::now();
    let port = booster.port;
    eventually(
        60,
        "the booster says Auto Scaling is unavailable",
        || async move {
            matches!(http_get(port, "/readyz").await, Some((503, b)) if b.contains("Auto Scaling"))
        },
    )
    .await
    .expect("readyz says why");
    let noticed = froze.elapsed();
    let live = http_get(port, "/healthz").await;
    assert!(
        matches!(live, Some((200, _))),
        "AWS down is no reason to restart: {live:?}"
    );
    tokio::time::sleep(Duration::from_secs(40).saturating_sub(froze.elapsed())).await;
    drop(frozen);
    env.wait_ended(&instance, 150).await.expect("retired");
    let history = env.desired_history();
    assert_eq!(history.iter().max(), Some(&4), "one boost: {history:?}");
    assert_eq!(env.group().await.expect("group").0, 3, "{history:?}");
    let held = booster
        .metric(
            "spots_booster_passes_total",
            &["outcome=\"cloudUnavailable\""],
        )
        .await;
    assert!(held >= 1.0, "passes went on without AWS: {held}");
    report(
        "11-aws-frozen-mid-boost",
        start,
        &env,
        &format!(
            "moto frozen 40 s, /readyz said so after {:.0} s, {held:.0} passes without AWS, 1 boost",
            noticed.as_secs_f64()
        ),
    );
}

/// The booster's writes to the cluster and the group that went through, by action. Not
/// counted: a record (stored with the ledger) and a drain queued (started only once the
/// ledger that says so is stored; `spots_booster_drains_running` counts those that run).
async fn writes(booster: &Booster) -> BTreeMap<&'static str, f64> {
    let mut out = BTreeMap::new();
    for action in [
        "setDesired",
        "cordon",
        "protect",
        "unprotect",
        "retire",
        "release",
        "place",
        "unplace",
        "deleteNodeClaim",
    ] {
        let label = format!("action=\"{action}\"");
        let n = booster
            .metric("spots_booster_actions_total", &[&label, "outcome=\"ok\""])
            .await;
        out.insert(action, n);
    }
    out
}

/// What the booster writes on Nodes: cordons, and its own and cluster-autoscaler's
/// annotations (boost marks, protections), by node.
async fn node_writes(env: &Env) -> BTreeMap<String, (bool, BTreeMap<String, String>)> {
    let list = Api::<Node>::all(env.kube.clone())
        .list(&ListParams::default())
        .await
        .expect("nodes");
    list.items
        .into_iter()
        .map(|n| {
            let cordoned = n.spec.as_ref().and_then(|s| s.unschedulable) == Some(true);
            let ours = n
                .metadata
                .annotations
                .unwrap_or_default()
                .into_iter()
                .filter(|(k, _)| {
                    k.starts_with("aws-spots-booster/")
                        || k == "cluster-autoscaler.kubernetes.io/scale-down-disabled"
                })
                .collect();
            (n.metadata.name.unwrap_or_default(), (cordoned, ours))
        })
        .collect()
}

/// 12. The ledger ConfigMap is deleted after the boost, under the shipped RBAC, which may
/// not create it (production's case). The booster then boosts nothing twice and writes
/// nothing (no raise, drain, cordon, protection or retire), and its /readyz answers 503
/// naming the ledger, for as long as the ConfigMap is missing. The operator does what the
/// README says (`kubectl -n kube-system create configmap aws-spots-booster-ledger`: an
/// empty ConfigMap of that name): the booster rebuilds the entry from the boost mark on the
/// signalled Node (`ledgerRecovered`), is ready again and finishes, with one raise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: run by `make e2e`"]
async fn e2e_12_ledger_deleted_after_boost() {
    let start = Instant::now();
    let Some((mut env, booster)) = with_booster(Options::default(), bin()).await else {
        return;
    };
    let (victim, instance) = env.signal_busiest().await;
    eventually(60, "the boost applied", || async {
        env.group().await.is_ok_and(|(d, _)| d == 4)
    })
    .await
    .expect("boosted");
    let (ns, _) = SERVICE_ACCOUNT;
    let ledgers = Api::<ConfigMap>::namespaced(env.kube.clone(), ns);
    ledgers
        .delete(LEDGER, &DeleteParams::default())
        .await
        .expect("ledger deleted");
    let deleted = Instant::now();
    let port = booster.port;
    let not_ready = || async move {
        match http_get(port, "/readyz").await {
            Some((503, body)) if body.contains("ledger") => Ok(body),
            other => Err(format!("{other:?}")),
        }
    };
    eventually(30, "/readyz says the ledger cannot be stored", || async {
        not_ready().await.is_ok()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}; logs in {}", env.dir().display()));
    let unready_at = Instant::now();
    let said = unready_at.duration_since(deleted);
    let reason = not_ready().await.unwrap_or_default();

    // Missing for 20 s: the replacement is Ready meanwhile, and a drain would be due.
    // What was written is listed, and asserted on at the end (the recovery is checked too).
    let hold = Duration::from_secs(20);
    let (writes_before, nodes_before) = (writes(&booster).await, node_writes(&env).await);
    let pods_before = env.pods_on(&victim).await;
    let mut written: Vec<String> = Vec::new();
    let mut samples = 0;
    while unready_at.elapsed() < hold {
        assert!(
            ledgers.get_opt(LEDGER).await.expect("get").is_none(),
            "the ServiceAccount may not create the ledger ConfigMap"
        );
        let ready = not_ready().await;
        assert!(
            ready.is_ok(),
            "not ready while the ledger cannot be stored: {ready:?}"
        );
        let (desired, ids) = env.group().await.expect("group");
        assert_eq!(desired, 4, "no second boost, nothing retired");
        assert!(ids.contains(&instance), "the signalled instance stays");
        let running = booster.metric("spots_booster_drains_running", &[]).await;
        if running > 0.0 && !written.iter().any(|w| w.starts_with("a drain")) {
            written.push(format!("a drain running ({running})"));
        }
        samples += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let writes_after = writes(&booster).await;
    for (action, n) in &writes_after {
        let was = writes_before.get(action).copied().unwrap_or_default();
        if *n != was {
            written.push(format!("{} {action}", n - was));
        }
    }
    let nodes_after = node_writes(&env).await;
    for (node, now) in &nodes_after {
        let was = nodes_before.get(node).cloned().unwrap_or_default();
        if *now != was {
            written.push(format!("{node}: {was:?} → {now:?}"));
        }
    }
    let pods_after = env.pods_on(&victim).await;
    if pods_after != pods_before {
        written.push(format!("{victim}: {pods_before} pods → {pods_after}"));
    }
    let replacement_ready = nodes_after.len() > nodes_before.len();

    // The operator's part (README, "Recovering the ledger").
    let empty: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": LEDGER, "namespace": ns}
    }))
    .expect("ConfigMap");
    ledgers
        .create(&PostParams::default(), &empty)
        .await
        .expect("the ledger re-created, empty");
    let recreated = Instant::now();
    eventually(60, "the entry rebuilt from the boost mark", || async {
        env.ledger_entries()
            .await
            .ok()
            .flatten()
            .is_some_and(|e| e.contains(&victim))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}; logs in {}", env.dir().display()));
    let rebuilt = recreated.elapsed();
    booster.wait_ready(60).await.expect("ready again");
    let unready = unready_at.elapsed();
    let recovered = Api::<Event>::all(env.kube.clone())
        .list(&ListParams::default().fields("reason=LedgerRecovered"))
        .await
        .expect("Events");
    assert!(
        recovered
            .items
            .iter()
            .any(|e| e.involved_object.name.as_deref() == Some(victim.as_str())),
        "a ledgerRecovered Event on {victim}"
    );
    let entry = read_ledger(&env.kube)
        .await
        .expect("ledger")
        .and_then(|l| l.entries.get(&victim).cloned())
        .expect("the rebuilt entry");
    assert_eq!(entry.instance_id, instance, "{entry:?}");

    env.wait_ended(&instance, 150).await.expect("retired");
    let history = env.desired_history();
    assert_eq!(
        history.iter().max(),
        Some(&4),
        "no second boost: {history:?}"
    );
    assert_eq!(env.group().await.expect("group").0, 3, "{history:?}");
    assert_eq!(booster.raises().await, 1.0, "one raise for the signal");
    eventually(30, "nothing cordoned or protected", || async {
        env.cordoned_and_protected()
            .await
            .is_ok_and(|(c, p)| c.is_empty() && p.is_empty())
    })
    .await
    .expect("all given back");
    assert!(
        written.is_empty(),
        "written while the ledger could not be stored (README: \"does nothing more\"): {written:?}; logs in {}",
        env.dir().display()
    );
    report(
        "12-ledger-deleted",
        start,
        &env,
        &format!(
            "ledger deleted after the boost; /readyz 503 {:.1} s later ({}); nothing written in the {:.0} s it stayed missing ({samples} samples{}); re-created empty as the README says, entry rebuilt {:.1} s later; not ready {:.0} s; 1 boost",
            said.as_secs_f64(),
            reason.trim(),
            hold.as_secs_f64(),
            if replacement_ready {
                ", the replacement Ready meanwhile"
            } else {
                ""
            },
            rebuilt.as_secs_f64(),
            unready.as_secs_f64(),
        ),
    );
}

/// 13. A Node name comes back (EKS names nodes after their IP): while the booster is
/// stopped mid-drain, the signalled node's instance is interrupted and a new instance gets
/// its name. The booster wakes with the old machine's entry; the new node's own signal is
/// handled as a new signal (boosted, drained, retired), not taken for the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: run by `make e2e`"]
async fn e2e_13_node_name_reused() {
    let start = Instant::now();
    let opts = Options {
        reuse_names: true,
        ..Options::default()
    };
    let Some((mut env, booster)) = with_booster(opts, bin()).await else {
        return;
    };
    let (name, first) = env.signal_busiest().await;
    env.wait_drain_started(&name, 90).await.expect("drain");
    let frozen = booster.freeze().expect("SIGSTOP booster");
    // The interruption, with the group's desired capacity kept (AWS replaces it)...
    env.asg
        .terminate_instance_in_auto_scaling_group()
        .instance_id(&first)
        .should_decrement_desired_capacity(false)
        .send()
        .await
        .expect("interrupt the first instance");
    env.wait_ended(&first, 60).await.expect("ended");
    // ...and its replacement comes up under the freed name.
    let second = {
        let mut found = None;
        let deadline = Instant::now() + Duration::from_secs(90);
        while found.is_none() && Instant::now() < deadline {
            found = env.record.lock().ok().and_then(|r| {
                r.nodes
                    .iter()
                    .find(|(id, n)| **n == name && **id != first)
                    .map(|(id, _)| id.clone())
            });
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        found.expect("a new instance under the old name")
    };
    drop(frozen);
    let before = env.group().await.expect("group").0;
    env.wait_nodes_ready(before as usize, 60)
        .await
        .expect("nodes ready");
    env.signal(&name, &second, Duration::from_secs(1), None)
        .expect("signal the new node");
    let signalled = Instant::now();
    eventually(60, "the new node's signal boosted", || async {
        env.group().await.is_ok_and(|(d, _)| d == before + 1)
    })
    .await
    .expect("boosted as a new signal");
    let boosted = signalled.elapsed();
    env.wait_ended(&second, 150)
        .await
        .expect("the new node retired");
    assert_eq!(env.group().await.expect("group").0, before);
    report(
        "13-node-name-reused",
        start,
        &env,
        &format!(
            "{name} reused by {second}, its signal boosted {:.1} s after it, retired",
            boosted.as_secs_f64()
        ),
    );
}

/// 14. A standby whose clock runs 20 s ahead never takes a Lease its holder renews, and
/// acts on nothing; the holder handles the signal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: run by `make e2e`"]
async fn e2e_14_clock_ahead_standby() {
    let start = Instant::now();
    let Some(mut env) = Env::start(Options::default()).await.expect("world") else {
        return;
    };
    let a = env.booster(bin(), "booster-a", &[]).expect("a");
    a.wait_ready(60).await.expect("a ready");
    eventually(30, "a holds the Lease", || async {
        env.lease_holder().await.as_deref() == Some("booster-a")
    })
    .await
    .expect("lease");
    let server = format!("https://{}", env.apiserver_addr().expect("address"));
    let b = env
        .booster_at(
            bin(),
            "booster-b",
            &[],
            &server,
            &[("BOOSTER_TEST_CLOCK_OFFSET_SECS", "20")],
        )
        .expect("b");
    b.wait_ready(60).await.expect("b ready");
    let (victim, instance) = env.busiest_node().await.expect("victim");
    env.signal(&victim, &instance, Duration::from_secs(1), None)
        .expect("signal");
    let watched = Instant::now();
    let mut samples = 0;
    while watched.elapsed() < Duration::from_secs(40) {
        assert_eq!(
            env.lease_holder().await.as_deref(),
            Some("booster-a"),
            "the standby 20 s ahead took the Lease"
        );
        samples += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    env.wait_ended(&instance, 120).await.expect("retired");
    assert!(
        !b.log_text().contains("leading=true"),
        "the standby never led"
    );
    assert_eq!(
        b.metric("spots_booster_actions_total", &["outcome=\"ok\""])
            .await,
        0.0
    );
    let history = env.desired_history();
    assert_eq!(history.iter().max(), Some(&4), "{history:?}");
    report(
        "14-clock-ahead-standby",
        start,
        &env,
        &format!(
            "standby 20 s ahead, Lease held by the leader at {samples} samples over 40 s, 1 boost"
        ),
    );
}

/// 15. kube-apiserver is killed mid-drain and comes back 10 s later (same etcd): the
/// booster rides it out without a restart (watches resumed, calls retried), finishes the
/// drain within the budget and retires the node; one boost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: run by `make e2e`"]
async fn e2e_15_apiserver_restarted_mid_drain() {
    let start = Instant::now();
    let Some((mut env, mut booster)) = with_booster(Options::default(), bin()).await else {
        return;
    };
    let (victim, instance) = env.signal_busiest().await;
    env.wait_drain_started(&victim, 90)
        .await
        .expect("drain started");
    let pods_left = env.pods_on(&victim).await;
    let gone = env
        .restart_apiserver(Duration::from_secs(10))
        .expect("apiserver restarted");
    let back = Instant::now();
    env.wait_ended(&instance, 180).await.expect("retired");
    let finished = back.elapsed();
    assert!(
        booster.running(),
        "the booster rode it out without a restart"
    );
    let history = env.desired_history();
    assert_eq!(history.iter().max(), Some(&4), "one boost: {history:?}");
    assert_eq!(env.group().await.expect("group").0, 3, "{history:?}");
    let r = env.record.lock().map(|r| r.min_running).ok().flatten();
    assert!(r >= Some(8), "the budget held: {r:?}");
    let port = booster.port;
    eventually(30, "ready again", || async move {
        matches!(http_get(port, "/readyz").await, Some((200, _)))
    })
    .await
    .expect("ready");
    report(
        "15-apiserver-restarted-mid-drain",
        start,
        &env,
        &format!(
            "{pods_left} pods left at the kill, apiserver gone {:.0} s, retired {:.0} s after it came back, 1 boost",
            gone.as_secs_f64(),
            finished.as_secs_f64()
        ),
    );
}

/// 25. Two faults at once, through a proxy in front of moto that models what moto does
/// not: Auto Scaling throttles 40 % of the booster's calls throughout, and the booster is
/// killed between a SetDesiredCapacity that took effect and its record (the proxy carries
/// the raise out and never answers it). While it is down, Cluster Autoscaler's kind of
/// scale-down (another node terminated with decrement) brings desired capacity back to the
/// boost's base. The booster started again reads the raise in the scaling activities
/// (served by the proxy from the raises it saw) and never raises a second time; the node
/// is retired without a decrement, since the decrease was somebody else's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: run by `make e2e`"]
async fn e2e_25_throttled_and_killed_between_raise_and_record() {
    use booster_tests::e2e::aws_proxy::AwsProxy;
    let start = Instant::now();
    let Some(mut env) = Env::start(Options::default()).await.expect("world") else {
        return;
    };
    let moto: std::net::SocketAddr = env
        .moto
        .url
        .trim_start_matches("http://")
        .parse()
        .expect("moto address");
    let proxy = AwsProxy::start(moto).await.expect("proxy");
    proxy.throttle(&[1, 3]);
    proxy.hold_set_desired(true);
    let endpoint = proxy.url.clone();
    let args = ["--aws-endpoint-url", endpoint.as_str()];
    let mut first = env.booster(bin(), "booster", &args).expect("booster");
    first.wait_ready(60).await.expect("ready under throttling");
    let (_, before) = env.group().await.expect("group");
    let (victim, instance) = env.busiest_node().await.expect("victim");
    env.signal(&victim, &instance, Duration::from_secs(1), None)
        .expect("signal");
    let signalled = Instant::now();
    eventually(90, "the raise carried out, its answer held", || async {
        proxy.held() >= 1
    })
    .await
    .expect("raised");
    let boosted = signalled.elapsed();
    first.kill();
    let entries = env
        .ledger_entries()
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    assert!(
        entries.contains(&victim),
        "recorded before the call: {entries:?}"
    );
    // Somebody else's scale-down lands on the boost's base while the booster is down.
    let other = before
        .iter()
        .find(|id| **id != instance)
        .expect("another instance")
        .clone();
    env.asg
        .terminate_instance_in_auto_scaling_group()
        .instance_id(&other)
        .should_decrement_desired_capacity(true)
        .send()
        .await
        .expect("scale-down");
    assert_eq!(env.group().await.expect("group").0, 3, "back at the base");
    proxy.hold_set_desired(false);
    let second = env.booster(bin(), "booster", &args).expect("booster");
    let restarted = Instant::now();
    env.wait_ended(&instance, 180).await.expect("retired");
    let finished = restarted.elapsed();
    let raises = proxy.raises();
    assert_eq!(
        raises.len(),
        1,
        "one raise through Auto Scaling: {raises:?}"
    );
    // Desired capacity may rise again: the harness's cluster-autoscaler makes room for
    // the pods of the node its scale-down removed. Through the proxy, the booster's only.
    assert_eq!(
        second
            .metric(
                "spots_booster_actions_total",
                &["action=\"setDesired\"", "outcome=\"ok\""]
            )
            .await,
        0.0,
        "the restarted booster sent no raise"
    );
    let log = second.log_text();
    assert!(
        log.contains("raiseSeenInActivities"),
        "the restarted booster says why it took the boost as done"
    );
    assert!(
        log.contains("keep-desired") && !log.contains(" decrement (drainComplete)"),
        "retired without a decrement: the decrease was somebody else's"
    );
    let calls = proxy.calls();
    let (passed, throttled): (u64, u64) =
        calls.values().fold((0, 0), |(p, t), (a, b)| (p + a, t + b));
    assert!(throttled > 0 && passed > 0, "{calls:?}");
    report(
        "25-throttled-and-killed-between-raise-and-record",
        start,
        &env,
        &format!(
            "{throttled} of {} Auto Scaling calls throttled, boosted {:.1} s after the signal, killed before the answer, desired lowered to the base meanwhile, retired {:.0} s after the restart without a second raise",
            passed + throttled,
            boosted.as_secs_f64(),
            finished.as_secs_f64()
        ),
    );
}

/// 26. A signal that expires while its drain runs, under the shipped RBAC: the workload's
/// budget allows no eviction (`maxUnavailable: 0`), so the drain keeps retrying; at the
/// 40 s expiry the node is given back and its drain stops with it. The budget is then
/// relaxed: no pod of the node is evicted in the 30 s after the give-back (a drain left
/// running would evict them all now).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: run by `make e2e`"]
async fn e2e_26_expiry_mid_drain_stops_the_drain() {
    use k8s_openapi::api::core::v1::Pod;
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    let start = Instant::now();
    let Some(mut env) = Env::start(Options::default()).await.expect("world") else {
        return;
    };
    let budgets = Api::<PodDisruptionBudget>::namespaced(env.kube.clone(), "default");
    let max_unavailable =
        |n: i32| kube::api::Patch::Merge(serde_json::json!({"spec": {"maxUnavailable": n}}));
    budgets
        .patch(
            "web",
            &kube::api::PatchParams::default(),
            &max_unavailable(0),
        )
        .await
        .expect("the budget closed");
    let booster = env
        .booster(bin(), "booster", &["--signal-expiry", "40s"])
        .expect("booster");
    booster.wait_ready(60).await.expect("ready");
    let (victim, instance) = env.busiest_node().await.expect("victim");
    let on_victim = env.pods_on(&victim).await;
    env.signal(&victim, &instance, Duration::from_secs(1), None)
        .expect("signal");
    // Started in the ledger (no eviction goes through to show it otherwise).
    let record = env.record.clone();
    eventually(60, "the drain started", || {
        let started = record
            .lock()
            .is_ok_and(|r| r.ledger_drains.contains_key(&victim));
        async move { started }
    })
    .await
    .expect("drain started");
    let nodes = Api::<Node>::all(env.kube.clone());
    eventually(60, "given back at the expiry", || async {
        booster_tests::e2e::given_back(&nodes, &victim).await
    })
    .await
    .expect("given back");
    let released = Instant::now();
    budgets
        .patch(
            "web",
            &kube::api::PatchParams::default(),
            &max_unavailable(1),
        )
        .await
        .expect("the budget relaxed");
    let pods = Api::<Pod>::namespaced(env.kube.clone(), "default");
    let on_node = ListParams::default().fields(&format!("spec.nodeName={victim}"));
    let mut evicted = std::collections::BTreeSet::new();
    while released.elapsed() < Duration::from_secs(30) {
        for p in pods
            .list(&on_node)
            .await
            .map(|l| l.items)
            .unwrap_or_default()
        {
            if p.metadata.deletion_timestamp.is_some() {
                evicted.insert(p.metadata.name.unwrap_or_default());
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        evicted.is_empty(),
        "evicted after the give-back: {evicted:?}; logs in {}",
        env.dir().display()
    );
    let left = env.pods_on(&victim).await;
    assert_eq!(left, on_victim, "every pod still on the node");
    let stopped = booster
        .metric("spots_booster_drains_total", &["outcome=\"stopped\""])
        .await;
    assert!(stopped >= 1.0, "the drain was reported stopped: {stopped}");
    let refused = booster.log_text().matches("eviction refused").count();
    assert!(refused >= 1, "the drain ran and the budget refused it");
    report(
        "26-expiry-mid-drain",
        start,
        &env,
        &format!(
            "{refused} evictions refused by the budget, given back at the expiry, drain reported stopped; budget relaxed then: 0 of {left} pods evicted in the 30 s after"
        ),
    );
}
