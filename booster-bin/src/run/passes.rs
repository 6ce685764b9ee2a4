//! The loop: a pass on every watch change (settled), at the plan's wake-up and on the
//! resync, each under a watchdog; its outcome to `/healthz`, `/readyz`, the metrics and the
//! log; failed passes backed off.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use booster_core::ports::Leadership;
use booster_core::Dur;
use tokio::sync::watch;

use crate::controller::{wall_clock, Controller, PassReport};
use crate::health::Health;
use crate::metrics::Metrics;

/// The loop's parts.
pub(super) struct Passes {
    pub(super) controller: Controller,
    pub(super) leader: Arc<dyn Leadership>,
    pub(super) changes: Arc<booster_k8s::Changes>,
    pub(super) health: Arc<Health>,
    pub(super) metrics: Arc<Mutex<Metrics>>,
    pub(super) calls: Arc<booster_aws::Calls>,
    /// `--max-time-consider-new-node`, for the metrics.
    pub(super) new_node_window: Dur,
    /// A pass runs at least this often.
    pub(super) resync: Duration,
    /// The watchdog's limit on one pass.
    pub(super) pass_timeout: Duration,
}

/// What the loop waits for before the next pass.
enum Wait {
    /// The plan's wake-up (at most the resync) or a watch change, whichever comes first.
    Next(Duration),
    /// A failed pass's backoff.
    Backoff(Duration),
}

impl Passes {
    /// Runs passes until `stop` turns true; returns the controller with no pass running.
    pub(super) async fn run(mut self, mut stop: watch::Receiver<bool>) -> Controller {
        let mut failures = backoff(self.resync);
        loop {
            self.controller.woken_at(self.changes.take_first());
            let outcome = self.pass().await;
            let leading = self.leader.is_leader().await;
            let wait = match outcome {
                Ok(report) => {
                    let wake = self.passed(&report, leading);
                    failures = backoff(self.resync);
                    Wait::Next(wake.unwrap_or(self.resync).min(self.resync))
                }
                Err((label, e)) => {
                    let delay = failures.next().unwrap_or(self.resync);
                    self.failed(label, e, leading, delay);
                    Wait::Backoff(delay)
                }
            };
            if self.wait(wait, &mut stop).await {
                break;
            }
        }
        self.controller
    }

    /// One pass, ended by the watchdog after `pass_timeout`; a failure with its metric
    /// label.
    async fn pass(&mut self) -> Result<PassReport, (&'static str, String)> {
        match tokio::time::timeout(self.pass_timeout, self.controller.pass()).await {
            Ok(r) => r.map_err(|e| (e.metric_label(), e.to_string())),
            Err(_) => Err((
                "timeout",
                format!(
                    "the pass took longer than {}s and was stopped",
                    self.pass_timeout.as_secs()
                ),
            )),
        }
    }

    /// Reports a pass that ran; returns how long until its plan wants the next one.
    fn passed(&self, report: &PassReport, leading: bool) -> Option<Duration> {
        // A ledger that cannot be stored (deleted, and the shipped RBAC may not
        // create it; over a ConfigMap's size) stops every plan: the replica cannot
        // act, and says why. A lost race (409) is only read again.
        let ledger = report
            .executed
            .aborted
            .as_ref()
            .filter(|e| !matches!(e, booster_core::ports::PortError::Conflict(_)));
        let done = match (ledger, &report.snapshot.cloud_unavailable) {
            (Some(e), _) => Err(format!("the ledger cannot be stored: {e}")),
            (None, None) => Ok(()),
            (None, Some(why)) => Err(format!("Auto Scaling unavailable: {why}")),
        };
        self.health
            .pass_ended(done, self.controller.observed_at(), leading);
        let wake = report.plan.next_wakeup;
        for node in &report.drains_started {
            tracing::info!(node = %node, "drain started");
        }
        log_boost_latency(&report.boost_latency);
        if let Ok(mut m) = self.metrics.lock() {
            m.record(report, self.new_node_window);
            m.drains_running(self.controller.running_drains());
            m.aws_calls(self.calls.snapshot());
        }
        wake.map(|w| Duration::from_millis(w.since(wall_clock()).as_millis()))
    }

    /// Reports a pass that failed (`e`, metric `label`), to be retried after `delay`.
    fn failed(&self, label: &'static str, e: String, leading: bool, delay: Duration) {
        self.health
            .pass_ended(Err(e.clone()), self.controller.observed_at(), leading);
        tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "pass failed");
        if let Ok(mut m) = self.metrics.lock() {
            m.failed_pass(label);
            m.aws_calls(self.calls.snapshot());
        }
    }

    /// Waits for the next pass; true when `stop` turned true meanwhile.
    async fn wait(&self, wait: Wait, stop: &mut watch::Receiver<bool>) -> bool {
        match wait {
            Wait::Backoff(delay) => {
                // Back off: watch changes do not cut the wait short, or a failing call
                // would be retried on every Node heartbeat.
                tokio::select! {
                    _ = tokio::time::sleep(delay) => false,
                    _ = stop.wait_for(|s| *s) => true,
                }
            }
            Wait::Next(until_wake) => {
                tokio::select! {
                    _ = self.changes.notified() => settle(&self.changes).await,
                    _ = tokio::time::sleep(until_wake) => {}
                    _ = stop.wait_for(|s| *s) => return true,
                }
                *stop.borrow()
            }
        }
    }
}

/// A burst of watch events (NTH's cordon then its Event, a storm) settles into one pass:
/// the pass starts once the watches have been quiet for `QUIET`, and at the latest `SETTLE_MAX`
/// after the first change, so that a lone signal waits a tenth of a second and a busy
/// cluster's heartbeats do not run more than two passes a second.
async fn settle(changes: &booster_k8s::Changes) {
    const QUIET: Duration = Duration::from_millis(100);
    const SETTLE_MAX: Duration = Duration::from_millis(500);
    let until = tokio::time::Instant::now() + SETTLE_MAX;
    loop {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero()
            || tokio::time::timeout(QUIET.min(left), changes.notified())
                .await
                .is_err()
        {
            return;
        }
    }
}

/// One line per boost of a fresh signal, with its phases in milliseconds (and the instant
/// of the change that started it, to compare with when the signal was written).
fn log_boost_latency(boosts: &[crate::latency::BoostLatency]) {
    let ms = |d: Duration| d.as_millis() as u64;
    for b in boosts {
        let woken = wall_clock().unix_millis() - b.woken.elapsed().as_millis() as i64;
        tracing::info!(
            group = %b.group,
            nodes = %b.nodes.join(","),
            woken_unix_ms = woken,
            wait_ms = ms(b.wait),
            snapshot_ms = ms(b.snapshot),
            decide_ms = ms(b.decide),
            ledger_ms = ms(b.ledger),
            marks_ms = ms(b.marks),
            aws_ms = ms(b.aws),
            total_ms = ms(b.total),
            "signal boosted: booster's share of its latency"
        );
    }
}

/// Delays between failed passes: exponential from 1 s up to the resync, with jitter, so
/// that replicas (and a fleet of clusters) do not retry in step.
fn backoff(resync: Duration) -> impl Iterator<Item = Duration> {
    use backon::BackoffBuilder;
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(1))
        .with_max_delay(resync.max(Duration::from_secs(1)))
        .with_jitter()
        .without_max_times()
        .build()
}
