//! The controller's run: start-up (adapters, leadership, the HTTP server, the watches'
//! first lists), the loop of passes, and the shutdown that lets the Lease go last.

mod leadership;
mod logs;
mod passes;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use booster_core::ports::Leadership;
use booster_core::Config;
use tokio::sync::watch;

use crate::controller::{wall_clock, Controller, Ports};
use crate::fence::{FencedCloud, FencedCluster};
use crate::health::Health;
use crate::metrics::Metrics;
use crate::settings::{std_dur, RunArgs};
use leadership::Lease;
use passes::Passes;

/// Runs the controller until SIGTERM.
pub async fn run(args: RunArgs) -> Result<()> {
    logs::init_logs(args.log_format, args.log_level);
    let cfg = args.engine_config();
    let timings = args.lease_timings()?;
    offset_clock_if_asked();
    let addr: SocketAddr = format!("{}:{}", args.metrics_host, args.metrics_port)
        .parse()
        .with_context(|| format!("--metrics-host {:?} is not an address", args.metrics_host))?;
    let kube = args.kube().await?;
    let identity = std::env::var("POD_NAME")
        .unwrap_or_else(|_| format!("aws-spots-booster-{}", std::process::id()));
    let cluster = Arc::new(booster_k8s::KubeCluster::start(
        kube.clone(),
        args.kube_settings(&identity),
    ));
    let cloud = Arc::new(args.cloud().await);
    let calls = cloud.calls();

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(shutdown_signal(stop_tx));
    let lease = Lease::start(&args, kube, &identity, timings);

    let metrics = Arc::new(Mutex::new(Metrics::new()));
    let health = Arc::new(Health::new(args.liveness_window()));
    crate::server::spawn(addr, metrics.clone(), health.clone());
    if !watches_listed(&cluster, &stop_rx).await {
        return Ok(());
    }
    health.synced();
    tracing::info!(
        dry_run = cfg.dry_run,
        leader_elect = args.leader_elect,
        pass_timeout_s = args.pass_timeout().as_secs(),
        liveness_window_s = args.liveness_window().as_secs(),
        "watches synced; controller running"
    );

    let changes = cluster.changes();
    let passes = Passes {
        controller: fenced_controller(cluster, cloud, &lease.leader, cfg.clone()),
        leader: lease.leader.clone(),
        changes,
        health,
        metrics,
        calls,
        new_node_window: cfg.new_node_window,
        resync: std_dur(args.resync),
        pass_timeout: args.pass_timeout(),
    };
    let mut controller = passes.run(stop_rx).await;
    // No pass runs now; the drains stop, then the Lease goes.
    controller.shutdown();
    lease.release().await;
    tracing::info!("stopped");
    Ok(())
}

/// End-to-end tests run a replica with a wrong clock; nothing else sets this.
fn offset_clock_if_asked() {
    if let Some(secs) = std::env::var("BOOSTER_TEST_CLOCK_OFFSET_SECS")
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
    {
        tracing::warn!(
            offset_s = secs,
            "test clock offset: this replica's wall clock is off"
        );
        crate::controller::offset_clock_for_tests(secs * 1000);
        booster_k8s::lease::offset_clock_for_tests(secs * 1000);
    }
}

/// Waits until every watch has listed once; false when told to stop first.
async fn watches_listed(cluster: &booster_k8s::KubeCluster, stop: &watch::Receiver<bool>) -> bool {
    // Not ready until every watch has listed once, however long that takes: a cluster with
    // many (or huge) Events lists for minutes, and exiting would only start the list again.
    let listing = Instant::now();
    while cluster.ready(Duration::from_secs(60)).await.is_err() {
        tracing::warn!(
            waited_s = listing.elapsed().as_secs(),
            "still listing Nodes, Events and the CA status; not ready yet"
        );
        if *stop.borrow() {
            return false;
        }
    }
    true
}

/// The controller on the adapters, each write fenced by the Lease (and timed).
fn fenced_controller(
    cluster: Arc<booster_k8s::KubeCluster>,
    cloud: Arc<booster_aws::AutoScaling>,
    leader: &Arc<dyn Leadership>,
    cfg: Config,
) -> Controller {
    let writes = Arc::new(crate::latency::Writes::default());
    Controller::new(
        Ports {
            cluster: Arc::new(FencedCluster {
                inner: cluster,
                leader: leader.clone(),
                writes: writes.clone(),
            }),
            cloud: Arc::new(FencedCloud {
                inner: cloud,
                leader: leader.clone(),
                writes: writes.clone(),
            }),
            leader: leader.clone(),
            writes,
        },
        cfg,
        wall_clock,
    )
}

/// Says stop (turns `tx` true) on SIGTERM or Ctrl-C.
async fn shutdown_signal(tx: watch::Sender<bool>) {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down: no new work; in-flight state stays in the ledger");
    let _ = tx.send(true);
}
