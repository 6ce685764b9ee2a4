//! End to end, `--drain-on`: what the booster does with a recommendation once the
//! replacement is Ready, in the world of `e2e.rs` (see `booster_tests::e2e`): the harness's
//! NTH cordons and taints on the recommendation, and on the spot interruption notice writes
//! its `spot-itn` taint and `SpotInterruption` Event and drains with its two minutes, as NTH
//! does. The booster runs as its ServiceAccount with deploy/rbac.yaml's rights. Each
//! scenario prints one line with its figures. Run by `make e2e`, one at a time.

use std::path::Path;
use std::time::{Duration, Instant};

use booster_tests::e2e::{eventually, given_back, report, Booster, Env, Options};
use k8s_openapi::api::core::v1::Node;
use kube::Api;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_aws-spots-booster"))
}

async fn world(args: &[&str]) -> Option<(Env, Booster)> {
    let env = Env::start(Options::default()).await.expect("world")?;
    let booster = env.booster(bin(), "booster", args).expect("booster");
    booster.wait_ready(60).await.expect("ready");
    Some((env, booster))
}

/// The signals the booster's last pass held for `reason`.
async fn holds(b: &Booster, reason: &str) -> f64 {
    b.metric("spots_booster_holds", &[&format!("reason=\"{reason}\"")])
        .await
}

async fn outcomes(b: &Booster, outcome: &str) -> f64 {
    b.metric(
        "spots_booster_signal_outcomes_total",
        &[&format!("outcome=\"{outcome}\"")],
    )
    .await
}

/// A replacement the booster protects, once one is there and Ready.
async fn ready_replacement(env: &Env, secs: u64) -> String {
    let found = std::sync::Mutex::new(None);
    eventually(secs, "a replacement Ready and protected", || async {
        let Ok((_, protected)) = env.cordoned_and_protected().await else {
            return false;
        };
        let nodes = Api::<Node>::all(env.kube.clone());
        for p in protected {
            let ready = nodes.get(&p).await.is_ok_and(|n| {
                n.status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            });
            if ready {
                if let Ok(mut f) = found.lock() {
                    *f = Some(p);
                }
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or_else(|e| panic!("{e}; logs in {}", env.dir().display()));
    found.into_inner().ok().flatten().unwrap_or_default()
}

/// Whether `node` carries the booster's standby taint (`PreferNoSchedule`).
async fn standby_tainted(env: &Env, node: &str) -> bool {
    Api::<Node>::all(env.kube.clone())
        .get(node)
        .await
        .is_ok_and(|n| {
            n.spec
                .and_then(|s| s.taints)
                .unwrap_or_default()
                .iter()
                .any(|t| t.key == "aws-spots-booster/standby" && t.effect == "PreferNoSchedule")
        })
}

/// `aws-spots-booster status` against the scenario's world, as an operator runs it.
fn status(env: &Env) -> String {
    String::from_utf8_lossy(&env.status(bin(), &[]).stdout).into_owned()
}

/// 27. `--drain-on interruption`, a recommendation never followed by an interruption: the
/// booster boosts, the replacement comes up Ready and protected, the signalled node stands
/// by (cordoned, nothing evicted; the replacement carries the standby taint); at
/// `--signal-expiry` it is given back and the
/// replacement unprotected, so that Cluster Autoscaler removes whichever node is least
/// needed. Its outcome (not interrupted) is in the ledger and still in `status` after the
/// booster restarts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: run by `make e2e`"]
async fn e2e_27_standby_never_followed() {
    let start = Instant::now();
    let args = ["--drain-on", "interruption", "--signal-expiry", "75s"];
    let Some((mut env, booster)) = world(&args).await else {
        return;
    };
    let (victim, instance) = env.busiest_node().await.expect("victim");
    let pods_before = env.pods_on(&victim).await;
    let signalled = Instant::now();
    env.signal(&victim, &instance, Duration::from_secs(1), None)
        .expect("signal");
    let replacement = ready_replacement(&env, 60).await;
    let ready_after = signalled.elapsed().as_secs_f64();
    if let Err(e) = eventually(20, "the node stands by", || async {
        holds(&booster, "StandingBy").await > 0.0
    })
    .await
    {
        let m = booster.metrics().await;
        let holds: Vec<&str> = m.lines().filter(|l| l.contains("holds")).collect();
        panic!("{e}: {holds:#?}\n{}", booster.log_text());
    }
    eventually(10, "the replacement carries the standby taint", || async {
        standby_tainted(&env, &replacement).await
    })
    .await
    .expect("standby taint");
    let nodes = Api::<Node>::all(env.kube.clone());
    eventually(90, "given back at the expiry", || async {
        given_back(&nodes, &victim).await
    })
    .await
    .unwrap_or_else(|e| panic!("{e}; logs in {}", env.dir().display()));
    let given_back_after = signalled.elapsed().as_secs_f64();
    eventually(20, "the replacement unprotected", || async {
        env.cordoned_and_protected()
            .await
            .is_ok_and(|(c, p)| c.is_empty() && p.is_empty())
    })
    .await
    .expect("unprotected");
    eventually(10, "the standby taint gone with it", || async {
        !standby_tainted(&env, &replacement).await
    })
    .await
    .expect("untainted");
    let drains = env.record.lock().map(|r| r.drains.clone()).expect("record");
    assert!(drains.is_empty(), "nothing evicted: {drains:?}");
    let r = env.record.lock().map(|r| r.min_running).ok().flatten();
    assert_eq!(r, Some(env.options().replicas as usize), "no pod ever left");
    assert_eq!(env.pods_on(&victim).await, pods_before, "its pods stayed");
    let (desired, ids) = env.group().await.expect("group");
    assert!(ids.contains(&instance), "the instance stays");
    let rep_in_group = ids.iter().any(|i| {
        env.record
            .lock()
            .is_ok_and(|r| r.nodes.get(i) == Some(&replacement))
    });
    assert!(
        rep_in_group,
        "the replacement {replacement} stays for CA to weigh"
    );
    assert_eq!(
        desired, 4,
        "the booster never lowers desired capacity itself"
    );
    eventually(10, "its outcome counted", || async {
        outcomes(&booster, "notInterrupted").await == 1.0
    })
    .await
    .expect("outcome");
    // A restart: the outcome is the ledger's, not the process's.
    drop(booster);
    let again = env.booster(bin(), "booster", &args).expect("booster");
    again.wait_ready(60).await.expect("ready again");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let text = status(&env);
    assert!(
        text.contains("Outcomes by pool") && text.contains("not interrupted 1"),
        "status after the restart:\n{text}"
    );
    assert_eq!(
        outcomes(&again, "notInterrupted").await,
        0.0,
        "not counted twice"
    );
    report(
        "27-standby-never-followed",
        start,
        &env,
        &format!(
            "replacement Ready {ready_after:.0} s and given back {given_back_after:.0} s after the recommendation (expiry 75 s), 0 pods evicted, outcome notInterrupted kept across a restart"
        ),
    );
}

/// 28. `--drain-on interruption`, the interruption notice 60 s after the recommendation
/// and the instance reclaimed two minutes after the notice: the replacement is Ready
/// before the notice, the node stands by until it, then is drained (the booster and NTH,
/// whose taint the booster reads) within the two minutes, its pods moving to Ready
/// capacity at once. Figures: pending pod-seconds, the drain's length, the outcome's lead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: run by `make e2e`"]
async fn e2e_28_standby_notice_after_60s() {
    let start = Instant::now();
    let Some((mut env, booster)) = world(&["--drain-on", "interruption"]).await else {
        return;
    };
    let (victim, instance) = env.busiest_node().await.expect("victim");
    let signalled = Instant::now();
    env.signal(
        &victim,
        &instance,
        Duration::from_secs(1),
        Some((Duration::from_secs(61), Duration::from_secs(120))),
    )
    .expect("signal");
    let replacement = ready_replacement(&env, 55).await;
    let ready_after = signalled.elapsed().as_secs_f64();
    assert!(
        ready_after < 61.0,
        "Ready before the notice: {ready_after:.0} s"
    );
    let drains = env.record.lock().map(|r| r.drains.clone()).expect("record");
    assert!(
        drains.is_empty(),
        "nothing evicted before the notice: {drains:?}"
    );
    env.wait_ended(&instance, 240)
        .await
        .unwrap_or_else(|e| panic!("{e}; logs in {}", env.dir().display()));
    env.wait_pods_running(env.options().replicas as usize, 30)
        .await
        .expect("every pod running");
    let moved = env.pods_on(&replacement).await;
    assert!(moved > 0, "pods moved to the replacement {replacement}");
    let (pending, _, _) = env.figures();
    assert!(
        pending <= 2.0,
        "pods moved to Ready capacity: {pending:.1} pending pod-s"
    );
    let drain = env
        .record
        .lock()
        .ok()
        .and_then(|r| r.drains.get(&victim).copied())
        .expect("the node was drained");
    let drained_in = drain.1.map(|end| end.saturating_sub(drain.0).as_secs_f64());
    let notice_to_drain =
        drain.0.as_secs_f64() - signalled.duration_since(env.t0).as_secs_f64() - 61.0;
    assert!(
        drained_in.is_some_and(|d| d < 120.0),
        "drained within the two minutes: {drained_in:?}"
    );
    eventually(20, "its outcome counted", || async {
        outcomes(&booster, "interrupted").await == 1.0
    })
    .await
    .expect("outcome");
    let lead = booster
        .metric("spots_booster_recommendation_lead_seconds_sum", &[])
        .await;
    assert!((55.0..=120.0).contains(&lead), "lead {lead:.0} s");
    report(
        "28-standby-notice-after-60s",
        start,
        &env,
        &format!(
            "replacement Ready {ready_after:.0} s after the recommendation, {moved} pods moved onto it, drain began {notice_to_drain:.0} s after the notice and took {:.0} s, lead {lead:.0} s",
            drained_in.unwrap_or_default()
        ),
    );
}

/// 29. `--drain-on adaptive` with a storm of one pool: one recommendation stands by;
/// a second in the same pool (instance type and zone) within the storm window makes it a
/// storm (`--adaptive-storm-signals 2`), and both nodes are drained on their
/// recommendations and retired, without waiting for a notice that never comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "e2e: run by `make e2e`"]
async fn e2e_29_adaptive_storm_in_one_pool() {
    let start = Instant::now();
    let args = ["--drain-on", "adaptive", "--adaptive-storm-signals", "2"];
    let Some((mut env, booster)) = world(&args).await else {
        return;
    };
    // Two nodes in one zone (three nodes over two zones: there are).
    let (zones, names) = env
        .record
        .lock()
        .map(|r| (r.zones.clone(), r.nodes.clone()))
        .expect("record");
    let mut pair = None;
    for (a, za) in &zones {
        if let Some((b, _)) = zones.iter().find(|(b, zb)| *b > a && zb == &za) {
            pair = Some((a.clone(), b.clone()));
            break;
        }
    }
    let (first, second) = pair.expect("two instances in one zone");
    let node = |i: &str| names.get(i).cloned().expect("node");
    env.signal(&node(&first), &first, Duration::from_secs(1), None)
        .expect("first signal");
    ready_replacement(&env, 60).await;
    eventually(20, "the first stands by", || async {
        holds(&booster, "StandingBy").await > 0.0
    })
    .await
    .expect("standing by");
    let drains = env.record.lock().map(|r| r.drains.clone()).expect("record");
    assert!(drains.is_empty(), "nothing drained alone: {drains:?}");
    let storm_at = Instant::now();
    env.signal(&node(&second), &second, Duration::from_secs(1), None)
        .expect("second signal");
    for i in [&first, &second] {
        env.wait_ended(i, 180)
            .await
            .unwrap_or_else(|e| panic!("{e}; logs in {}", env.dir().display()));
    }
    let retired_in = storm_at.elapsed().as_secs_f64();
    let log = booster.log_text();
    let storm_drains = log
        .lines()
        .filter(|l| l.contains("startDrain") && l.contains("poolStorm"))
        .count();
    assert!(storm_drains >= 1, "drained for the storm; log:\n{log}");
    let (pending, _, _) = env.figures();
    assert_eq!(pending, 0.0, "no pod pending beyond scheduling time");
    report(
        "29-adaptive-storm-in-one-pool",
        start,
        &env,
        &format!(
            "first stood by, both retired {retired_in:.0} s after the second recommendation, {storm_drains} drains for poolStorm"
        ),
    );
}
