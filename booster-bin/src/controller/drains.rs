//! The drain tasks this process runs: started and resumed after the plan's writes, reaped
//! when they end, stopped when their signal ends or the Lease is lost.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use booster_core::exec::{drains_to_resume, Executed};
use booster_core::ports::{Cluster, DrainOutcome, DrainSpec, PortError};
use booster_core::{Action, Plan, Snapshot};
use tokio::task::JoinHandle;

use super::Controller;

/// A drain attempt that ended, with its node.
pub(super) type Ended = (String, Result<DrainOutcome, PortError>);

/// How long a pass waits for a timed-out drain attempt to end by its own deadline before
/// it replaces it (the two deadlines are the same instant).
const SUPERSEDED_WAIT: Duration = Duration::from_secs(3);

/// The running drain tasks, by node.
#[derive(Default)]
pub(super) struct Drains {
    tasks: BTreeMap<String, JoinHandle<Result<DrainOutcome, PortError>>>,
}

impl Drains {
    /// Collects drains that ended.
    pub(super) async fn reap(&mut self) -> Vec<Ended> {
        let done: Vec<String> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.is_finished())
            .map(|(n, _)| n.clone())
            .collect();
        let mut out = Vec::new();
        for node in done {
            if let Some(task) = self.tasks.remove(&node) {
                let r = task
                    .await
                    .unwrap_or_else(|e| Err(PortError::Unavailable(format!("drain task: {e}"))));
                out.push((node, r));
            }
        }
        out
    }

    /// Aborts the running drains of the nodes `which` picks; each is reported as stopped
    /// (`why`). An eviction already sent may land; none is sent after this returns.
    pub(super) fn stop(&mut self, which: impl Fn(&str) -> bool, why: &str) -> Vec<Ended> {
        let nodes: Vec<String> = self.tasks.keys().filter(|n| which(n)).cloned().collect();
        let mut out = Vec::new();
        for node in nodes {
            if let Some(task) = self.tasks.remove(&node) {
                task.abort();
                tracing::info!(node = %node, "drain stopped: {why}");
                out.push((
                    node,
                    Ok(DrainOutcome::Stopped {
                        why: why.to_string(),
                    }),
                ));
            }
        }
        out
    }

    /// Abandons every drain in flight.
    pub(super) fn abort_all(&mut self) {
        for (_, t) in std::mem::take(&mut self.tasks) {
            t.abort();
        }
    }

    /// Starts a task per spec on `cluster`: the nodes started, and the attempts they
    /// replaced with their outcome.
    async fn start(
        &mut self,
        specs: Vec<DrainSpec>,
        cluster: &Arc<dyn Cluster>,
    ) -> (Vec<String>, Vec<Ended>) {
        let mut started = Vec::new();
        let mut superseded = Vec::new();
        for spec in specs {
            if let Some(old) = self.tasks.remove(&spec.node) {
                superseded.push((spec.node.clone(), replaced(old).await));
            }
            let cluster = cluster.clone();
            let node = spec.node.clone();
            started.push(node.clone());
            self.tasks.insert(
                node,
                tokio::spawn(async move { cluster.drain(&spec).await }),
            );
        }
        (started, superseded)
    }

    /// The nodes with a drain task.
    pub(super) fn nodes(&self) -> impl Iterator<Item = String> + '_ {
        self.tasks.keys().cloned()
    }

    pub(super) fn len(&self) -> usize {
        self.tasks.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Whether every drain task has ended (tests wait for it).
    #[cfg(test)]
    pub(super) fn all_finished(&self) -> bool {
        self.tasks.values().all(|t| t.is_finished())
    }
}

/// The outcome of an attempt a new one replaces.
async fn replaced(
    mut old: JoinHandle<Result<DrainOutcome, PortError>>,
) -> Result<DrainOutcome, PortError> {
    // A new attempt replaces one the engine saw time out: that one ends by its own
    // deadline (the same instant), so its outcome is awaited briefly and reported like
    // any other, pods left and all.
    match tokio::time::timeout(SUPERSEDED_WAIT, &mut old).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(PortError::Unavailable(format!("drain task: {e}"))),
        Err(_) => {
            old.abort();
            Ok(DrainOutcome::TimedOut {
                blocker: "pods left at the deadline (the attempt was replaced)".into(),
            })
        }
    }
}

impl Controller {
    /// A drain must not outlive its signal: one this plan ends (give-back, retire,
    /// forget) stops before the plan's writes, so that no eviction follows an uncordon.
    pub(super) fn stop_drains_of_ended_signals(&mut self, plan: &Plan) -> Vec<Ended> {
        if plan.dry_run {
            return Vec::new();
        }
        let ending: BTreeSet<&str> = plan
            .actions
            .iter()
            .filter(|a| ends_signal(a))
            .filter_map(Action::node)
            .collect();
        self.drains
            .stop(|node| ending.contains(node), "the signal ended")
    }

    /// Stops the drains the ledger as stored no longer has under way (ended by an earlier
    /// pass whose stop was missed, or by another replica's write).
    pub(super) fn stop_drains_not_under_way(
        &mut self,
        plan: &Plan,
        executed: &Executed,
    ) -> Vec<Ended> {
        if plan.dry_run {
            return Vec::new();
        }
        let ledger = &executed.ledger;
        self.drains.stop(
            |node| !ledger.entries.get(node).is_some_and(under_way),
            "the ledger has no drain of this node under way",
        )
    }

    /// Starts the drains the plan began and resumes those the ledger says are under way
    /// but no task of this process runs: the nodes started, and the attempts they replaced
    /// (reported).
    pub(super) async fn start_drains(
        &mut self,
        plan: &Plan,
        executed: &Executed,
        snapshot: &Snapshot,
    ) -> (Vec<String>, Vec<Ended>) {
        if plan.dry_run || executed.aborted.is_some() {
            return (Vec::new(), Vec::new());
        }
        let running: BTreeSet<String> = self
            .drains
            .tasks
            .keys()
            .cloned()
            .chain(executed.drains.iter().map(|d| d.node.clone()))
            .collect();
        let mut specs = executed.drains.clone();
        specs.extend(drains_to_resume(
            &executed.ledger,
            &snapshot.nodes,
            &running,
            snapshot.now,
            self.cfg.drain_timeout,
        ));
        let (started, superseded) = self.drains.start(specs, &self.ports.cluster).await;
        self.report_ended(&superseded).await;
        (started, superseded)
    }
}

/// Whether executing `a` ends its node's signal: no drain of it may go on after.
fn ends_signal(a: &Action) -> bool {
    matches!(
        a,
        Action::Release { .. }
            | Action::Retire { .. }
            | Action::DeleteNodeClaim { .. }
            | Action::Forget { .. }
    )
}

/// Whether the ledger has the entry's drain under way (by the booster, not given back).
pub(super) fn under_way(e: &booster_core::Entry) -> bool {
    e.released_at.is_none()
        && e.retiring.is_none()
        && matches!(e.drain, booster_core::DrainState::Draining { .. })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use booster_core::ports::DrainOutcome;
    use booster_core::testkit::mocks::MockCluster;
    use booster_core::testkit::{t, SnapshotBuilder};
    use booster_core::{Action, Boost, Config, Reason, Snapshot, Timestamp};

    use crate::controller::tests::{clock, describing, observing, ports, view};
    use crate::controller::Controller;

    /// The signal is given back while its drain runs: the drain stops in that pass,
    /// before the uncordon, and is reported as stopped.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_give_back_stops_the_running_drain() {
        let s = boosted_with_ready_replacement();
        let (mut cluster, cloud) = {
            // The second observation: the signal has expired (the engine gives it back).
            let mut cluster = MockCluster::new();
            let first = view(&s);
            let mut second = first.clone();
            if let Some(e) = second.ledger.entries.get_mut("spot-0") {
                e.signal_at = Timestamp::from_unix_millis(t(0).unix_millis() - 3_600_000);
                e.drain = booster_core::DrainState::Draining {
                    since: t(99),
                    attempt: 1,
                };
            }
            let mut n = 0;
            cluster.expect_observe().returning(move || {
                n += 1;
                Ok(if n == 1 {
                    first.clone()
                } else {
                    second.clone()
                })
            });
            (cluster, describing(&s))
        };
        cluster.expect_store_ledger().returning(|_| Ok(()));
        // Still evicting when the give-back comes (until the test ends, however slow the
        // machine); started once, never again.
        let (end, ended) = std::sync::mpsc::channel::<()>();
        let ended = std::sync::Mutex::new(ended);
        cluster.expect_drain().times(1).returning(move |_| {
            if let Ok(rx) = ended.lock() {
                let _ = rx.recv_timeout(Duration::from_secs(20));
            }
            Ok(DrainOutcome::Drained)
        });
        cluster.expect_set_unschedulable().returning(|_, _| Ok(()));
        cluster
            .expect_remove_rebalance_taint()
            .returning(|_| Ok(()));
        cluster.expect_unprotect().returning(|_| Ok(()));
        cluster.expect_record_event().returning(|_, _, _, _| Ok(()));
        let mut c = Controller::new(ports(cluster, cloud, true), Config::default(), clock);
        let first = c.pass().await.expect("pass");
        assert_eq!(first.drains_started, vec!["spot-0".to_string()]);
        let second = c.pass().await.expect("pass");
        assert!(second
            .plan
            .actions
            .iter()
            .any(|a| matches!(a, Action::Release { node, .. } if node == "spot-0")));
        assert!(
            matches!(
                second.drains_ended.as_slice(),
                [(n, Ok(DrainOutcome::Stopped { .. }))] if n == "spot-0"
            ),
            "{:?}",
            second.drains_ended
        );
        assert_eq!(c.running_drains(), 0);
        drop(end);
    }

    /// spot-0 signalled and boosted (ours), 2 pods on it, its replacement spot-3 Ready:
    /// the engine starts its drain.
    fn boosted_with_ready_replacement() -> Snapshot {
        SnapshotBuilder::new(t(100))
            .group("spot", 1, 4, 6)
            .entry("spot-0", t(10), |e| {
                e.boost = Boost::Applied {
                    to: 4,
                    at: t(20),
                    assumed: false,
                }
            })
            .with_node("spot-0", |n| {
                n.unschedulable = true;
                n.pods_to_evict = 2;
            })
            .with_node("spot-3", |n| {
                n.protected_for = Some("spot-0".into());
                n.scale_down_disabled = true;
                n.created_at = t(50);
            })
            .build()
    }

    #[tokio::test]
    async fn a_drain_that_times_out_is_reported_and_retried_by_the_engine() {
        let s = boosted_with_ready_replacement();
        let (mut cluster, cloud) = observing(&s);
        cluster.expect_store_ledger().returning(|_| Ok(()));
        cluster.expect_drain().returning(|_| {
            Ok(DrainOutcome::TimedOut {
                blocker: "default/web-1 (blocked by PodDisruptionBudget default/web)".into(),
            })
        });
        cluster
            .expect_record_event()
            .withf(|_, reason, msg, warning| {
                *reason != Reason::DrainTimedOut
                    || (*warning && msg.contains("PodDisruptionBudget default/web"))
            })
            .returning(|_, _, _, _| Ok(()));
        let mut c = Controller::new(ports(cluster, cloud, true), Config::default(), clock);
        let first = c.pass().await.expect("pass");
        assert_eq!(first.drains_started, vec!["spot-0".to_string()]);
        tokio::task::yield_now().await;
        for _ in 0..50 {
            if c.drains.all_finished() {
                break;
            }
            tokio::task::yield_now().await;
        }
        let second = c.pass().await.expect("pass");
        assert!(matches!(
            second.drains_ended.as_slice(),
            [(n, Ok(DrainOutcome::TimedOut { .. }))] if n == "spot-0"
        ));
    }

    /// The engine starts the next attempt while the last one is still running (their
    /// deadlines are the same instant): the replaced attempt's outcome is reported, its
    /// Warning Event names what blocked it, and it counts as ended, not lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_drain_attempt_replaced_by_the_next_is_reported_not_lost() {
        let s = boosted_with_ready_replacement();
        let (mut cluster, cloud) = observing(&s);
        cluster.expect_store_ledger().returning(|_| Ok(()));
        // Still evicting when the next pass starts the next attempt.
        cluster.expect_drain().returning(|_| {
            std::thread::sleep(Duration::from_millis(300));
            Ok(DrainOutcome::TimedOut {
                blocker: "default/web-1 (blocked by PodDisruptionBudget default/web)".into(),
            })
        });
        let warned = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let w = warned.clone();
        cluster
            .expect_record_event()
            .returning(move |_, reason, msg, warning| {
                if reason == Reason::DrainTimedOut
                    && warning
                    && msg.contains("PodDisruptionBudget default/web")
                {
                    w.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                Ok(())
            });
        let mut c = Controller::new(ports(cluster, cloud, true), Config::default(), clock);
        let first = c.pass().await.expect("pass");
        assert_eq!(first.drains_started, vec!["spot-0".to_string()]);
        // The observed ledger still says not started: the engine starts it again.
        let second = c.pass().await.expect("pass");
        assert_eq!(second.drains_started, vec!["spot-0".to_string()]);
        assert!(
            matches!(
                second.drains_ended.as_slice(),
                [(n, Ok(DrainOutcome::TimedOut { blocker }))] if n == "spot-0" && blocker.contains("web-1")
            ),
            "{:?}",
            second.drains_ended
        );
        assert_eq!(warned.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
