//! A flood of `RebalanceRecommendation` Events with huge messages, as anyone allowed to
//! create Events can post, against the binary and a real kube-apiserver: the booster keeps
//! only a few bounded fields of each Event, so its memory stays near idle, both while the
//! flood arrives through its watch and when it starts after it (its first list).
//!
//! `make test` runs it at `FLOOD_EVENTS`=1000 × `FLOOD_BYTES`=256 KiB; `make
//! event-flood-memory` runs the 10,000 × 1 MiB and prints the figures.

mod common;

use std::time::{Duration, Instant};

use booster_tests::control_plane::{available, ControlPlane};
use common::{free_port, get, rss_mib, Running};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, PostParams};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn peak_mib(pid: u32) -> u64 {
    common::status_mib(pid, "VmHWM:")
}

fn start(kubeconfig: &str, port: u16) -> Running {
    Running(
        common::booster(
            kubeconfig,
            port,
            "http://127.0.0.1:9",
            &["--dry-run", "--leader-elect=false"],
        )
        .spawn()
        .expect("controller"),
    )
}

/// Events the booster has counted as rejected for naming no Node.
fn seen(port: u16) -> u64 {
    let (_, text) = get(port, "/metrics").unwrap_or_default();
    text.lines()
        .find_map(|l| {
            l.strip_prefix("spots_booster_signals_rejected_total{reason=\"unknownNode\"} ")
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn wait_seen(port: u16, n: u64, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while seen(port) < n {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    true
}

#[tokio::test]
async fn an_event_flood_leaves_the_booster_near_its_idle_memory() {
    if !available() {
        return;
    }
    let events = env_or("FLOOD_EVENTS", 1000);
    let bytes = env_or("FLOOD_BYTES", 256 * 1024);
    // Room in etcd for the flood; the apiserver's watch cache off, so that the apiserver
    // does not hold it all in memory as well.
    let quota = format!(
        "--quota-backend-bytes={}",
        (events * bytes * 2).max(2 << 30)
    );
    let cp = ControlPlane::start_tuned(None, false, &[&quota], &["--watch-cache=false"])
        .expect("control plane");
    let admin = cp.admin().await.expect("ready");
    let kubeconfig = cp.kubeconfig.display().to_string();

    let port = free_port();
    let live = start(&kubeconfig, port);
    common::wait_ready(port, 60);
    std::thread::sleep(Duration::from_secs(3));
    let idle = rss_mib(live.id());

    let filler = "x".repeat(bytes);
    let api: Api<Event> = Api::namespaced(admin.clone(), "default");
    let started = Instant::now();
    futures::stream::iter(0..events)
        .map(|i| {
            let api = api.clone();
            let message = format!(
                "{filler} Rebalance recommendation received. Instance will be cordoned at 2024-05-02T14:03:10Z \n"
            );
            async move {
                let ev: Event = serde_json::from_value(serde_json::json!({
                    "metadata": {"name": format!("flood-{i}"), "annotations": {"filler": "y".repeat(1024), "instance-id": "i-0abc"}},
                    "involvedObject": {"kind": "Node", "name": format!("ghost-{i}")},
                    "reason": "RebalanceRecommendation",
                    "message": message,
                    "source": {"component": "aws-node-termination-handler"},
                    "type": "Normal",
                }))
                .expect("event");
                api.create(&PostParams::default(), &ev).await.expect("event posted");
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    let posted_in = started.elapsed();
    let within = Duration::from_secs(120 + events as u64 / 20);
    assert!(
        wait_seen(port, events as u64, within),
        "the booster saw {} of {events} Events",
        seen(port)
    );
    std::thread::sleep(Duration::from_secs(5));
    let (during, during_peak) = (rss_mib(live.id()), peak_mib(live.id()));
    println!(
        "event flood: {events} Events x {} KiB posted in {:.0} s; RSS idle {idle} MiB, after \
         the flood through the watch {during} MiB (peak {during_peak})",
        bytes / 1024,
        posted_in.as_secs_f64()
    );

    // A booster that starts after the flood lists it (pages of 10).
    let port2 = free_port();
    let late = start(&kubeconfig, port2);
    let listing = Instant::now();
    common::wait_ready(port2, within.as_secs() * 4);
    assert!(
        wait_seen(port2, events as u64, within),
        "the late booster saw them all"
    );
    let listed_in = listing.elapsed();
    std::thread::sleep(Duration::from_secs(5));
    let (after, after_peak) = (rss_mib(late.id()), peak_mib(late.id()));
    drop((live, late));
    println!(
        "event flood: a booster started after it listed them in {:.0} s: RSS {after} MiB \
         (peak {after_peak})",
        listed_in.as_secs_f64()
    );
    // Held messages would be hundreds of MiB (1,000 x 256 KiB is 250 MiB); a few Events'
    // worth of bookkeeping and the allocator's slack after a list in pages are not
    // (measured +4 to +12 MiB here alone, +17 once under CI's parallel test run).
    let bound = idle + 32;
    assert!(
        during <= bound,
        "watching the flood: {during} MiB, idle {idle} MiB"
    );
    assert!(
        after <= bound,
        "listing the flood: {after} MiB, idle {idle} MiB"
    );
}

/// Posts `n` small `RebalanceRecommendation` Events about ghost nodes into `ns`, 32 at a
/// time; returns how long it took.
async fn post_small(api: &Api<Event>, ns: &str, prefix: &str, n: usize) -> Duration {
    let started = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            let name = format!("{prefix}-{i}");
            let ns = ns.to_string();
            async move {
                let ev: Event = serde_json::from_value(serde_json::json!({
                    "metadata": {"name": name},
                    // The apiserver wants an Event outside `default` to name its own
                    // namespace here, even for a Node.
                    "involvedObject": {"kind": "Node", "name": format!("ghost-{i}"), "namespace": ns},
                    "reason": "RebalanceRecommendation",
                    "message": "Rebalance recommendation received. Instance will be cordoned at 2024-05-02T14:03:10Z \n",
                    "source": {"component": "aws-node-termination-handler"},
                    "type": "Normal",
                }))
                .expect("event");
                api.create(&PostParams::default(), &ev).await.expect("event posted");
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    started.elapsed()
}

/// Small Events by the ten thousand: in a tenant's own namespace they are never read (the
/// booster watches `--event-namespaces` only, and may list Events nowhere else), so its
/// memory stays flat; in `default` the booster keeps at most `MAX_KEPT` of them per reason
/// and counts the rest as dropped, so its memory is bounded whatever is posted.
/// `FLOOD_SMALL` sets how many go to each namespace (`make event-flood-memory` runs 200,000).
#[tokio::test]
async fn small_events_elsewhere_cost_nothing_and_in_default_are_bounded() {
    if !available() {
        return;
    }
    let n = env_or("FLOOD_SMALL", 11_000);
    let cp = ControlPlane::start_tuned(None, false, &[], &["--watch-cache=false"])
        .expect("control plane");
    let admin = cp.admin().await.expect("ready");
    // As production runs it: the shipped ServiceAccount.
    let kubeconfig = common::shipped_kubeconfig(&cp, &admin).await;
    let tenant = "tenant-a";
    booster_tests::control_plane::create_via(
        Api::<k8s_openapi::api::core::v1::Namespace>::all(admin.clone()),
        serde_json::json!({"metadata": {"name": tenant}}),
    )
    .await;

    let port = free_port();
    let live = start(&kubeconfig, port);
    common::wait_ready(port, 60);
    std::thread::sleep(Duration::from_secs(3));
    let idle = rss_mib(live.id());

    let took = post_small(&Api::namespaced(admin.clone(), tenant), tenant, "t", n).await;
    std::thread::sleep(Duration::from_secs(10));
    let elsewhere = rss_mib(live.id());
    assert_eq!(seen(port), 0, "a tenant's namespace is not read");
    println!(
        "event flood (small): {n} Events in a tenant namespace posted in {:.0} s: RSS idle \
         {idle} MiB, after {elsewhere} MiB",
        took.as_secs_f64()
    );

    let took = post_small(
        &Api::namespaced(admin.clone(), "default"),
        "default",
        "d",
        n,
    )
    .await;
    let kept = n.min(booster_k8s::event::MAX_KEPT) as u64;
    assert!(
        wait_seen(port, kept, Duration::from_secs(120 + n as u64 / 50)),
        "the booster saw {} of the {kept} it keeps",
        seen(port)
    );
    std::thread::sleep(Duration::from_secs(5));
    let in_default = rss_mib(live.id());
    assert_eq!(seen(port), kept, "at most MAX_KEPT kept and counted");
    drop(live);
    println!(
        "event flood (small): {n} Events in default posted in {:.0} s: {kept} kept; RSS \
         {in_default} MiB (idle {idle})",
        took.as_secs_f64()
    );
    // Nothing of a tenant's namespace is held: the allocator's noise only.
    assert!(
        elsewhere <= idle + 8,
        "a tenant's flood: {elsewhere} MiB, idle {idle} MiB"
    );
    // At most MAX_KEPT small signals (a few hundred bytes each) and the controller's
    // count of them.
    assert!(
        in_default <= idle + 48,
        "a flood in default: {in_default} MiB, idle {idle} MiB"
    );
}
