//! The harness's sampler: every 500 ms it records what a scenario is judged on (pods left
//! unscheduled, nodes short of the workload, drains as seen and as the ledger records them).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};
use kube::Client;

use super::{node_ready, pod_running, read_ledger, unix_now, Record, NS, SCHEDULING_ALLOWANCE};

/// Every 500 ms: pods unscheduled beyond the allowance, nodes short of the workload, and
/// nodes draining.
pub(super) async fn sampler(kube: Client, record: Arc<Mutex<Record>>, t0: Instant, replicas: i32) {
    let pods: Api<Pod> = Api::namespaced(kube.clone(), NS);
    let nodes: Api<Node> = Api::all(kube.clone());
    let step = Duration::from_millis(500);
    // Each node holds 4 pods of 1 CPU.
    let needed = (replicas as usize).div_ceil(4);
    let mut last = Instant::now();
    loop {
        tokio::time::sleep(step).await;
        let (Ok(p), Ok(n)) = (
            pods.list(&ListParams::default().labels("app=web")).await,
            nodes.list(&ListParams::default()).await,
        ) else {
            continue;
        };
        let now = Instant::now();
        let dt = now.duration_since(last).as_secs_f64();
        last = now;
        let sample = Sample::of(&p.items, &n.items, unix_now());
        let ledger_drains = ledger_draining(&kube).await;
        if let Ok(mut r) = record.lock() {
            r.add(sample, ledger_drains, dt, needed, now.duration_since(t0));
        }
    }
}

/// What one look at the `web` pods and the Nodes shows.
struct Sample {
    /// Pods unscheduled for longer than [`SCHEDULING_ALLOWANCE`].
    pending: usize,
    /// Ready Nodes that take pods.
    usable: usize,
    /// Nodes with a terminating pod.
    draining: BTreeSet<String>,
    /// Nodes with a pod that is not terminating.
    live: BTreeSet<String>,
    /// Pods running.
    running: usize,
}

impl Sample {
    /// From the `web` pods and the Nodes, `wall` seconds after the Unix epoch.
    fn of(pods: &[Pod], nodes: &[Node], wall: i64) -> Sample {
        let pending =
            pods.iter()
                .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none())
                .filter(|p| {
                    p.metadata.creation_timestamp.as_ref().is_some_and(|c| {
                        wall - c.0.as_second() > SCHEDULING_ALLOWANCE.as_secs() as i64
                    })
                })
                .count();
        let usable = nodes
            .iter()
            .filter(|n| {
                node_ready(n) && n.spec.as_ref().and_then(|s| s.unschedulable) != Some(true)
            })
            .count();
        let on = |terminating: bool| -> BTreeSet<String> {
            pods.iter()
                .filter(|p| p.metadata.deletion_timestamp.is_some() == terminating)
                .filter_map(|p| p.spec.as_ref().and_then(|s| s.node_name.clone()))
                .collect()
        };
        let (draining, live) = (on(true), on(false));
        let running = pods.iter().filter(|p| pod_running(p)).count();
        Sample {
            pending,
            usable,
            draining,
            live,
            running,
        }
    }
}

/// The ledger's entries in `Draining`, with their start (none when it cannot be read).
async fn ledger_draining(kube: &Client) -> Vec<(String, booster_core::Timestamp)> {
    read_ledger(kube)
        .await
        .ok()
        .flatten()
        .map(|l| {
            l.entries
                .into_iter()
                .filter_map(|(n, e)| match e.drain {
                    booster_core::DrainState::Draining { since, .. } => Some((n, since)),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Record {
    /// Adds a sample taken `dt` seconds after the one before, `since` the world started,
    /// with the ledger's drains at that time; the workload needs `needed` nodes.
    fn add(
        &mut self,
        s: Sample,
        ledger_drains: Vec<(String, booster_core::Timestamp)>,
        dt: f64,
        needed: usize,
        since: Duration,
    ) {
        self.min_running = Some(self.min_running.map_or(s.running, |m| m.min(s.running)));
        // A drain counts while its node still has pods (as the engine counts slots);
        // an entry stays `Draining` until its node is gone.
        let busy = ledger_drains
            .iter()
            .filter(|(n, _)| s.live.contains(n) || s.draining.contains(n))
            .count();
        self.max_ledger_draining = self.max_ledger_draining.max(busy);
        for (n, started) in ledger_drains {
            self.ledger_drains.entry(n).or_insert(started);
        }
        self.pending_pod_seconds += s.pending as f64 * dt;
        self.max_pending = self.max_pending.max(s.pending);
        if s.usable < needed {
            self.capacity_deficit_node_seconds += (needed - s.usable) as f64 * dt;
        }
        for d in s.draining {
            self.drains.entry(d).or_insert((since, None));
        }
        for (node, (_, end)) in self.drains.iter_mut() {
            if end.is_none() && !s.live.contains(node) {
                *end = Some(since);
            }
        }
    }
}

/// Most drains that overlapped in time.
pub fn max_overlap(drains: &BTreeMap<String, (Duration, Option<Duration>)>) -> usize {
    let mut edges: Vec<(Duration, i32)> = Vec::new();
    for (start, end) in drains.values() {
        edges.push((*start, 1));
        edges.push((end.unwrap_or(Duration::MAX), -1));
    }
    // Ends sort before starts at the same instant.
    edges.sort();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    most.max(0) as usize
}
