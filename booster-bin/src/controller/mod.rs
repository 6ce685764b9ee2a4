//! The controller's pass: observe, describe, decide, execute, start drains. The binary's
//! loop calls [`Controller::pass`] on every watch change, at the plan's wake-up and on a
//! periodic resync.
//!
//! * A replica that does not hold the Lease computes and reports the full plan but writes
//!   nothing (its plan runs as a dry run).
//! * Drains run in the background; their outcome is reported on the next pass, and the
//!   next snapshot shows their effect. Drains the ledger says are under way but that no
//!   task of this process runs (after a restart or a takeover) are resumed.
//! * Every executed action and every change of a hold becomes a Kubernetes Event on its
//!   node; failures are Warning Events.

mod clock;
mod cloud_gate;
mod drains;
mod reporting;
mod surges;

#[cfg(test)]
mod refusals;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use booster_core::exec::{execute, Executed};
use booster_core::ports::{Cloud, Cluster, DrainOutcome, Leadership, PortError};
use booster_core::{decide, Action, Config, Plan, Reason, Rejection, Snapshot, Timestamp};

use crate::latency::{BoostLatency, PassClock, Writes};

pub use clock::{offset_clock_for_tests, wall_clock};

use cloud_gate::CloudGate;
use drains::Drains;

/// The three ports.
#[derive(Clone)]
pub struct Ports {
    /// Kubernetes.
    pub cluster: Arc<dyn Cluster>,
    /// Auto Scaling.
    pub cloud: Arc<dyn Cloud>,
    /// The Lease.
    pub leader: Arc<dyn Leadership>,
    /// The timings of the writes `cluster` and `cloud` make (their fence fills it).
    pub writes: Arc<Writes>,
}

/// What one pass did.
#[derive(Debug)]
pub struct PassReport {
    /// The plan (a dry run when not leading or `--dry-run`).
    pub plan: Plan,
    /// What the executor did with it.
    pub executed: Executed,
    /// Whether this replica leads.
    pub leader: bool,
    /// Time spent in `decide`.
    pub decide_time: Duration,
    /// Drains started (or resumed) by this pass.
    pub drains_started: Vec<String>,
    /// Drains that ended since the last pass, with their outcome.
    pub drains_ended: Vec<(String, Result<DrainOutcome, PortError>)>,
    /// The snapshot decided on.
    pub snapshot: Snapshot,
    /// Rejected Events seen for the first time (each is counted once).
    pub new_rejections: Vec<Rejection>,
    /// Nodes NTH cordoned with nothing that says why (see
    /// [`Snapshot::unexplained_nth_cordons`]).
    pub unexplained_nth_cordons: usize,
    /// Boosts of signals recorded in this pass, with their latency by phase.
    pub boost_latency: Vec<BoostLatency>,
    /// What the drains' surges did since the last pass.
    pub surges: Vec<booster_core::surge::SurgeReport>,
}

/// The controller's state between passes (none of it needs to survive a restart).
pub struct Controller {
    ports: Ports,
    cfg: Config,
    clock: fn() -> Timestamp,
    drains: Drains,
    /// The last hold reported per node, to report a hold once, not every pass.
    holds: BTreeMap<String, Reason>,
    /// Under `--dry-run`, the ledger as the plans so far would have left it: the next pass
    /// decides on it, so the log shows the whole sequence (signal, boost, drain, retire)
    /// rather than the first step again and again.
    dry_ledger: Option<booster_core::Ledger>,
    /// The dry-run actions logged by the last pass, to log a repeated one at debug level.
    dry_logged: BTreeSet<String>,
    /// Rejected Events already counted (each once, for the first reason it was rejected
    /// for): kept only while the Event is rejected, so as big as the Events are many.
    rejected: BTreeSet<String>,
    /// Group warnings already given (Capacity Rebalancing, AZRebalance, launches failing):
    /// one Warning Event per group and reason for the life of the process.
    warned: BTreeSet<(String, Reason)>,
    /// See [`Controller::observed_at`].
    observed_at: Option<Instant>,
    /// Failed writes, per write and object: the snapshot carries them and the engine
    /// backs each one off (see `booster_core::failures`).
    failures: booster_core::failure_log::FailureLog,
    /// Auto Scaling's answers, and its backoff when it fails.
    cloud: CloudGate,
    /// See [`Controller::woken_at`].
    woken: Option<Instant>,
    /// Nodes already reported as cordoned by NTH with nothing that says why (while they
    /// are).
    unexplained: BTreeSet<String>,
    /// When surges no drain runs were last settled.
    surges_settled: Option<Instant>,
}

impl Controller {
    /// A controller on `ports` with `cfg`; `clock` gives each snapshot's `now`.
    pub fn new(ports: Ports, cfg: Config, clock: fn() -> Timestamp) -> Self {
        Controller {
            ports,
            cfg,
            clock,
            drains: Drains::default(),
            holds: BTreeMap::new(),
            dry_ledger: None,
            dry_logged: BTreeSet::new(),
            rejected: BTreeSet::new(),
            warned: BTreeSet::new(),
            observed_at: None,
            failures: booster_core::failure_log::FailureLog::default(),
            cloud: CloudGate::new(),
            woken: None,
            unexplained: BTreeSet::new(),
            surges_settled: None,
        }
    }

    /// The next pass acts on watched changes, the first of which arrived at `at`: the start
    /// of a signal's latency.
    pub fn woken_at(&mut self, at: Option<Instant>) {
        self.woken = at;
    }

    /// When a pass last had the cluster's answer (the apiserver answered): what liveness
    /// is judged on. AWS being down does not make the process unhealthy.
    pub fn observed_at(&self) -> Option<Instant> {
        self.observed_at
    }

    /// One pass.
    pub async fn pass(&mut self) -> Result<PassReport, PortError> {
        let pass_started = Instant::now();
        let woken = self
            .woken
            .take()
            .filter(|w| *w <= pass_started)
            .unwrap_or(pass_started);
        let mut drains_ended = self.drains.reap().await;
        self.report_ended(&drains_ended).await;
        let snapshot = self.snapshot().await?;
        let leader = self.lead().await;
        let (plan, decide_time, clock) = self.plan(&snapshot, leader, woken, pass_started);
        let mut stopped = self.stop_drains_of_ended_signals(&plan);
        let (executed, boost_latency) = self.carry_out(&plan, &snapshot, clock).await;
        // Each failed write backs off on its own (its class, its object): one refused
        // group or throttled call does not stop the others.
        self.failures.note(&plan, &executed, snapshot.now);
        self.report(&snapshot, &plan, &executed).await;
        self.prune(&snapshot, &plan);
        self.warn_groups(&plan).await;
        let new_rejections = self.new_rejections(&plan);
        let unexplained_nth_cordons = self.report_unexplained(&snapshot);
        self.remember_dry_run(&snapshot, &plan);
        stopped.extend(self.stop_drains_not_under_way(&plan, &executed));
        self.report_ended(&stopped).await;
        drains_ended.extend(stopped);
        let (drains_started, superseded) = self.start_drains(&plan, &executed, &snapshot).await;
        drains_ended.extend(superseded);
        let surges = self.surges(&plan, &executed, leader).await;
        Ok(PassReport {
            plan,
            executed,
            leader,
            decide_time,
            drains_started,
            drains_ended,
            snapshot,
            new_rejections,
            boost_latency,
            unexplained_nth_cordons,
            surges,
        })
    }

    /// The pass's snapshot. Only the cluster's answer is required: when Auto Scaling fails,
    /// the snapshot carries the last groups it described and says so (the engine holds what
    /// needs AWS), and AWS is left alone for a backoff before it is asked again, so that
    /// each pass is not held by a call that times out.
    async fn snapshot(&mut self) -> Result<Snapshot, PortError> {
        let view = self.ports.cluster.observe().await?;
        self.observed_at = Some(Instant::now());
        let now = (self.clock)();
        let mut snapshot = self
            .cloud
            .snapshot(view, self.ports.cloud.as_ref(), now)
            .await;
        snapshot.failures = self.failures.records();
        // Taken, not cloned: this pass stores the next one before it returns.
        if let Some(l) = self.dry_ledger.take().filter(|_| self.cfg.dry_run) {
            snapshot.ledger = l;
        }
        Ok(snapshot)
    }

    /// Whether this replica leads; one that no longer does stops the drains it runs.
    async fn lead(&mut self) -> bool {
        let leader = self.ports.leader.is_leader().await;
        if !leader && !self.drains.is_empty() {
            // Leadership lost: the drains stop here (the fence stops their evictions too);
            // the ledger says they are under way, and the next leader resumes them.
            tracing::warn!(
                drains = self.drains.len(),
                "not leading: stopping the drains this replica runs"
            );
            self.shutdown();
        }
        leader
    }

    /// The engine's plan for `snapshot` (a dry run when not leading), the time `decide`
    /// took, and the pass's instants so far.
    fn plan(
        &self,
        snapshot: &Snapshot,
        leader: bool,
        woken: Instant,
        pass_started: Instant,
    ) -> (Plan, Duration, PassClock) {
        let cfg = if leader {
            self.cfg.clone()
        } else {
            Config {
                dry_run: true,
                ..self.cfg.clone()
            }
        };
        let started = Instant::now();
        let plan = decide(snapshot, &cfg);
        let decide_time = started.elapsed();
        let clock = PassClock {
            woken,
            started: pass_started,
            observed: started,
            decided: Instant::now(),
        };
        (plan, decide_time, clock)
    }

    /// Executes the plan's writes: what the executor did, and the latency of the boosts.
    async fn carry_out(
        &self,
        plan: &Plan,
        snapshot: &Snapshot,
        clock: PassClock,
    ) -> (Executed, Vec<BoostLatency>) {
        // Writes before this pass's (late drains, Events) are not its.
        drop(self.ports.writes.take());
        let executed = execute(
            plan,
            &snapshot.ledger,
            self.ports.cloud.as_ref(),
            self.ports.cluster.as_ref(),
            self.cfg.drain_timeout,
        )
        .await;
        let boost_latency =
            crate::latency::of_boosts(clock, plan, &executed, &self.ports.writes.take());
        (executed, boost_latency)
    }

    /// Keeps what this process remembers as big as the cluster is now: holds of nodes that
    /// no longer wait, and instance ids of nodes that are gone, are forgotten.
    fn prune(&mut self, snapshot: &Snapshot, plan: &Plan) {
        let held: BTreeSet<&str> = plan
            .actions
            .iter()
            .filter(|a| matches!(a, Action::Hold { .. }))
            .filter_map(Action::node)
            .collect();
        self.holds.retain(|n, _| held.contains(n.as_str()));
        self.cloud.forget_gone(snapshot);
    }

    /// Under `--dry-run`, keeps the ledger as this plan would have left it, for the next
    /// pass to decide on.
    fn remember_dry_run(&mut self, snapshot: &Snapshot, plan: &Plan) {
        if self.cfg.dry_run {
            let mut would = snapshot.ledger.clone();
            for a in &plan.actions {
                would.apply(a);
            }
            self.dry_ledger = Some(would);
        }
    }

    /// Stops: drains in flight are abandoned (the ledger says they started; whoever leads
    /// next resumes them).
    pub fn shutdown(&mut self) {
        self.drains.abort_all();
    }

    /// Drains running now.
    pub fn running_drains(&self) -> usize {
        self.drains.len()
    }
}
