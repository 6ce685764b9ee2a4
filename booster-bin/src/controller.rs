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

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use booster_core::exec::{drains_to_resume, execute, Effect, Executed};
use booster_core::ports::{Cloud, Cluster, DrainOutcome, Leadership, PortError};
use booster_core::{decide, Action, Config, Plan, Reason, Rejection, Snapshot, Timestamp};
use tokio::task::JoinHandle;

use crate::latency::{BoostLatency, PassClock, Writes};

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
}

/// The controller's state between passes (none of it needs to survive a restart).
pub struct Controller {
    ports: Ports,
    cfg: Config,
    clock: fn() -> Timestamp,
    drains: BTreeMap<String, JoinHandle<Result<DrainOutcome, PortError>>>,
    /// Instance ids already looked up with `groups_of`.
    unknown: BTreeSet<String>,
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
    /// The groups of the last pass Auto Scaling answered.
    last_groups: Vec<booster_core::Group>,
    /// Failed writes, per write and object: the snapshot carries them and the engine
    /// backs each one off (see `booster_core::failures`).
    failures: booster_core::failure_log::FailureLog,
    /// Auto Scaling's describes failed: not asked again before this instant, and why.
    cloud_down: Option<(Instant, String)>,
    cloud_backoff: Backoff,
    /// See [`Controller::woken_at`].
    woken: Option<Instant>,
    /// Nodes already reported as cordoned by NTH with nothing that says why (while they
    /// are).
    unexplained: BTreeSet<String>,
}

type Backoff = Box<dyn Iterator<Item = Duration> + Send>;

/// Waits before Auto Scaling is asked again after a failure: 2 s doubling to a minute,
/// jittered.
fn cloud_backoff() -> Backoff {
    use backon::BackoffBuilder;
    Box::new(
        backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_secs(2))
            .with_max_delay(Duration::from_secs(60))
            .with_jitter()
            .without_max_times()
            .build(),
    )
}

/// Rejected Events logged one by one per pass; the rest of a flood is summed up in a line.
const REJECTIONS_LOGGED_PER_PASS: usize = 20;

/// How long a pass waits for a timed-out drain attempt to end by its own deadline before
/// it replaces it (the two deadlines are the same instant).
const SUPERSEDED_WAIT: Duration = Duration::from_secs(3);

/// Holds that mean something is wrong (fail safe engaged) rather than a normal wait.
fn is_warning(r: Reason) -> bool {
    matches!(
        r,
        Reason::CaStatusMissing
            | Reason::CaStatusInvalid
            | Reason::CaStatusStale
            | Reason::CaInitializing
            | Reason::GroupNotInCaStatus
            | Reason::GroupUnhealthy
            | Reason::GroupBackingOff
            | Reason::UnknownGroup
            | Reason::NodeMissing
            | Reason::AtMaxSize
            | Reason::BoostCapReached
            | Reason::GroupNotThisCluster
            | Reason::LaunchSuspended
            | Reason::LaunchFailing
            | Reason::LaunchFailed
            | Reason::PodsNeverEvicted
            | Reason::WriteBackingOff
            | Reason::BoostRefused
            | Reason::RetireRefused
            | Reason::PlaceRefused
    )
}

/// An offset added to [`wall_clock`], for end-to-end tests of a replica whose clock is
/// wrong (`BOOSTER_TEST_CLOCK_OFFSET_SECS`).
static CLOCK_OFFSET_MS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// Makes [`wall_clock`] run `ms` ahead. Tests only.
pub fn offset_clock_for_tests(ms: i64) {
    CLOCK_OFFSET_MS.store(ms, std::sync::atomic::Ordering::SeqCst);
}

/// The wall clock, as the snapshot's `now`.
pub fn wall_clock() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Timestamp::from_unix_millis(ms + CLOCK_OFFSET_MS.load(std::sync::atomic::Ordering::SeqCst))
}

impl Controller {
    /// A controller on `ports` with `cfg`; `clock` gives each snapshot's `now`.
    pub fn new(ports: Ports, cfg: Config, clock: fn() -> Timestamp) -> Self {
        Controller {
            ports,
            cfg,
            clock,
            drains: BTreeMap::new(),
            unknown: BTreeSet::new(),
            holds: BTreeMap::new(),
            dry_ledger: None,
            dry_logged: BTreeSet::new(),
            rejected: BTreeSet::new(),
            warned: BTreeSet::new(),
            observed_at: None,
            last_groups: Vec::new(),
            failures: booster_core::failure_log::FailureLog::default(),
            cloud_down: None,
            cloud_backoff: cloud_backoff(),
            woken: None,
            unexplained: BTreeSet::new(),
        }
    }

    /// The next pass acts on watched changes, the first of which arrived at `at`: the start
    /// of a signal's latency.
    pub fn woken_at(&mut self, at: Option<Instant>) {
        self.woken = at;
    }

    /// Logs each new group warning and records it as a Warning Event on the node it
    /// concerns, once per group and reason.
    async fn warn_groups(&mut self, plan: &Plan) {
        for w in &plan.warnings {
            if !self.warned.insert((w.group.clone(), w.reason)) {
                continue;
            }
            tracing::warn!(
                group = %w.group,
                node = %w.node,
                reason = w.reason.as_str(),
                "{}",
                w.reason.describe()
            );
            if !plan.dry_run {
                let message = format!("Auto Scaling group {}: {}", w.group, w.reason.describe());
                self.event(&w.node, w.reason, &message, true).await;
            }
        }
    }

    /// Logs and returns the Events rejected for the first time; a tenant's flood is logged
    /// in a bounded number of lines.
    fn new_rejections(&mut self, plan: &Plan) -> Vec<Rejection> {
        let mut fresh = Vec::new();
        let mut now = BTreeSet::new();
        for r in &plan.rejected {
            if !self.rejected.contains(&r.signal) {
                fresh.push(r.clone());
            }
            now.insert(r.signal.clone());
        }
        self.rejected = now;
        for r in fresh.iter().take(REJECTIONS_LOGGED_PER_PASS) {
            tracing::warn!(
                event = %r.signal,
                node = %r.node,
                reason = r.reason.as_str(),
                "Event not taken as a signal: {}",
                r.reason.describe()
            );
        }
        if fresh.len() > REJECTIONS_LOGGED_PER_PASS {
            let mut by: BTreeMap<&str, usize> = BTreeMap::new();
            for r in &fresh[REJECTIONS_LOGGED_PER_PASS..] {
                *by.entry(r.reason.as_str()).or_default() += 1;
            }
            tracing::warn!(
                more = fresh.len() - REJECTIONS_LOGGED_PER_PASS,
                by_reason = ?by,
                "more Events not taken as signals (see spots_booster_signals_rejected_total)"
            );
        }
        fresh
    }

    /// Collects drains that ended.
    /// An Event per ended drain attempt: done, or the pods left and why.
    async fn report_ended(&self, ended: &[(String, Result<DrainOutcome, PortError>)]) {
        for (node, r) in ended {
            let (msg, warn) = match r {
                Ok(DrainOutcome::Drained) => {
                    ("drain attempt finished: no pods left".to_string(), false)
                }
                Ok(DrainOutcome::TimedOut { blocker }) => (
                    format!("drain attempt timed out; blocked by {blocker}"),
                    true,
                ),
                Ok(DrainOutcome::Stopped { why }) => {
                    (format!("drain attempt stopped: {why}"), false)
                }
                Err(e) => (format!("drain attempt failed: {e}"), true),
            };
            let reason = match r {
                Ok(DrainOutcome::Stopped { .. }) => Reason::DrainStopped,
                _ if warn => Reason::DrainTimedOut,
                _ => Reason::DrainComplete,
            };
            self.event(node, reason, &msg, warn).await;
        }
    }

    async fn reap(&mut self) -> Vec<(String, Result<DrainOutcome, PortError>)> {
        let done: Vec<String> = self
            .drains
            .iter()
            .filter(|(_, t)| t.is_finished())
            .map(|(n, _)| n.clone())
            .collect();
        let mut out = Vec::new();
        for node in done {
            if let Some(task) = self.drains.remove(&node) {
                let r = task
                    .await
                    .unwrap_or_else(|e| Err(PortError::Unavailable(format!("drain task: {e}"))));
                out.push((node, r));
            }
        }
        out
    }

    /// The pass's snapshot. Only the cluster's answer is required: when Auto Scaling fails,
    /// the snapshot carries the last groups it described and says so (the engine holds what
    /// needs AWS), and AWS is left alone for a backoff before it is asked again, so that
    /// each pass is not held by a call that times out.
    async fn snapshot(&mut self) -> Result<Snapshot, PortError> {
        let view = self.ports.cluster.observe().await?;
        self.observed_at = Some(Instant::now());
        let now = (self.clock)();
        if let Some((until, why)) = self
            .cloud_down
            .as_ref()
            .filter(|(u, _)| Instant::now() < *u)
        {
            let why = format!(
                "{why} (asked again in {}s)",
                until.saturating_duration_since(Instant::now()).as_secs()
            );
            return Ok(booster_core::exec::snapshot_without_cloud(
                view,
                now,
                &self.last_groups,
                why,
            ));
        }
        let s = booster_core::exec::snapshot_tolerant(
            view,
            self.ports.cloud.as_ref(),
            now,
            &mut self.unknown,
            &self.last_groups,
        )
        .await;
        match &s.cloud_unavailable {
            None => {
                self.last_groups = s.groups.clone();
                self.cloud_down = None;
                self.cloud_backoff = cloud_backoff();
            }
            Some(why) => self.cloud_failed(why.clone()),
        }
        Ok(s)
    }

    fn cloud_failed(&mut self, why: String) {
        let wait = self.cloud_backoff.next().unwrap_or(Duration::from_secs(60));
        tracing::warn!(
            error = %why,
            retry_in_s = wait.as_secs(),
            groups_known = self.last_groups.len(),
            "Auto Scaling did not answer: Kubernetes-only steps go on, boosts and retires wait"
        );
        self.cloud_down = Some((Instant::now() + wait, why));
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
        let mut drains_ended = self.reap().await;
        self.report_ended(&drains_ended).await;
        let mut snapshot = self.snapshot().await?;
        snapshot.failures = self.failures.records();
        // Taken, not cloned: this pass stores the next one before it returns.
        if let Some(l) = self.dry_ledger.take().filter(|_| self.cfg.dry_run) {
            snapshot.ledger = l;
        }
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
        let cfg = if leader {
            self.cfg.clone()
        } else {
            Config {
                dry_run: true,
                ..self.cfg.clone()
            }
        };
        let started = Instant::now();
        let plan = decide(&snapshot, &cfg);
        let decide_time = started.elapsed();
        let clock = PassClock {
            woken,
            started: pass_started,
            observed: started,
            decided: Instant::now(),
        };
        // A drain must not outlive its signal: one this plan ends (give-back, retire,
        // forget) stops before the plan's writes, so that no eviction follows an uncordon.
        let mut stopped = Vec::new();
        if !plan.dry_run {
            let ending: BTreeSet<&str> = plan
                .actions
                .iter()
                .filter(|a| ends_signal(a))
                .filter_map(Action::node)
                .collect();
            stopped = self.stop_drains(|node| ending.contains(node), "the signal ended");
        }
        // Writes before this pass's (late drains, Events) are not its.
        drop(self.ports.writes.take());
        let executed = execute(
            &plan,
            &snapshot.ledger,
            self.ports.cloud.as_ref(),
            self.ports.cluster.as_ref(),
            self.cfg.drain_timeout,
        )
        .await;
        let boost_latency =
            crate::latency::of_boosts(clock, &plan, &executed, &self.ports.writes.take());
        // Each failed write backs off on its own (its class, its object): one refused
        // group or throttled call does not stop the others.
        self.failures.note(&plan, &executed, snapshot.now);
        self.report(&snapshot, &plan, &executed).await;
        self.prune(&snapshot, &plan);
        self.warn_groups(&plan).await;
        let new_rejections = self.new_rejections(&plan);
        let unexplained_nth_cordons = self.report_unexplained(&snapshot);
        if self.cfg.dry_run {
            let mut would = snapshot.ledger.clone();
            for a in &plan.actions {
                would.apply(a);
            }
            self.dry_ledger = Some(would);
        }

        // And one the ledger as stored no longer has under way (ended by an earlier pass
        // whose stop was missed, or by another replica's write).
        if !plan.dry_run {
            let ledger = &executed.ledger;
            stopped.extend(self.stop_drains(
                |node| !ledger.entries.get(node).is_some_and(under_way),
                "the ledger has no drain of this node under way",
            ));
        }
        self.report_ended(&stopped).await;
        drains_ended.extend(stopped);

        let mut drains_started = Vec::new();
        if !plan.dry_run && executed.aborted.is_none() {
            let running: BTreeSet<String> = self
                .drains
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
            let mut superseded = Vec::new();
            for spec in specs {
                if let Some(mut old) = self.drains.remove(&spec.node) {
                    // A new attempt replaces one the engine saw time out: that one ends by
                    // its own deadline (the same instant), so its outcome is awaited
                    // briefly and reported like any other, pods left and all.
                    let ended = match tokio::time::timeout(SUPERSEDED_WAIT, &mut old).await {
                        Ok(Ok(r)) => r,
                        Ok(Err(e)) => Err(PortError::Unavailable(format!("drain task: {e}"))),
                        Err(_) => {
                            old.abort();
                            Ok(DrainOutcome::TimedOut {
                                blocker: "pods left at the deadline (the attempt was replaced)"
                                    .into(),
                            })
                        }
                    };
                    superseded.push((spec.node.clone(), ended));
                }
                let cluster = self.ports.cluster.clone();
                let node = spec.node.clone();
                drains_started.push(node.clone());
                self.drains.insert(
                    node,
                    tokio::spawn(async move { cluster.drain(&spec).await }),
                );
            }
            self.report_ended(&superseded).await;
            drains_ended.extend(superseded);
        }
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
        })
    }

    /// Warns once per node about NTH cordons the booster cannot read as signals.
    fn report_unexplained(&mut self, s: &Snapshot) -> usize {
        let now: BTreeSet<String> = s
            .unexplained_nth_cordons(&self.cfg.nth_field_managers)
            .into_iter()
            .map(str::to_string)
            .collect();
        for node in now.difference(&self.unexplained) {
            tracing::warn!(
                node = %node,
                "NTH cordoned this node with no taint and no Event: the booster cannot tell a rebalance recommendation from any other cordon and does nothing. NTH's defaults write neither: set taintNode=true (and emitKubernetesEvents=true) in its chart"
            );
        }
        let n = now.len();
        self.unexplained = now;
        n
    }

    async fn event(&self, node: &str, reason: Reason, message: &str, warning: bool) {
        if let Err(e) = self
            .ports
            .cluster
            .record_event(node, reason, message, warning)
            .await
        {
            tracing::warn!(node, error = %e, "could not record an Event");
        }
    }

    /// Logs every action, and records Events: executed actions, failures, and holds whose
    /// reason changed.
    async fn report(&mut self, snapshot: &Snapshot, plan: &Plan, executed: &Executed) {
        let mut dry_now = BTreeSet::new();
        for o in &executed.outcomes {
            let Some(a) = plan.actions.get(o.index) else {
                continue;
            };
            let node = a.node().unwrap_or_default().to_string();
            let group = a.group().unwrap_or_default();
            // One span per decision; the Event is sent after it is closed.
            let span = tracing::info_span!("decision", node = %node, group, action = a.kind());
            let event: Option<(String, Reason, String, bool)> = span.in_scope(|| match &o.result {
                Ok(Effect::Held) => match a {
                    Action::Hold { node, reason } if self.holds.get(node) != Some(reason) => {
                        self.holds.insert(node.clone(), *reason);
                        let text = hold_message(snapshot, node, *reason);
                        tracing::info!(reason = %reason, "hold: {text}");
                        Some((node.clone(), *reason, text, is_warning(*reason)))
                    }
                    _ => None,
                },
                Ok(Effect::DryRun) => {
                    let text = a.to_string();
                    if self.dry_logged.contains(&text) {
                        tracing::debug!(dry_run = true, "{text}");
                    } else {
                        tracing::info!(dry_run = true, "{text}");
                    }
                    dry_now.insert(text);
                    None
                }
                Ok(effect) => {
                    tracing::info!(?effect, "{a}");
                    // A give-up says what was refused, as a Warning.
                    let text = match last_failure(snapshot, &node) {
                        Some(f) if is_warning(a.reason()) => {
                            format!("{a}: {}: last error: {}", a.reason().describe(), f.error)
                        }
                        _ => a.to_string(),
                    };
                    (!node.is_empty() && a.is_mutation())
                        .then(|| (node.clone(), a.reason(), text, is_warning(a.reason())))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "{a} failed");
                    // A record that was not stored is the ledger's failure, said once per
                    // pass in the log and by /readyz: not an Event per node and pass.
                    let write = booster_core::failures::Write::of(a).is_some();
                    (!node.is_empty() && write)
                        .then(|| (node.clone(), a.reason(), format!("{a} failed: {e}"), true))
                }
            });
            // A dry run (or a replica that does not lead) writes nothing, Events included.
            if let Some((n, reason, message, warning)) = event.filter(|_| !plan.dry_run) {
                self.event(&n, reason, &message, warning).await;
            }
        }
        if let Some(e) = &executed.aborted {
            tracing::warn!(error = %e, "ledger store failed: the rest of the plan waits for the next pass");
        }
        self.dry_logged = dry_now;
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
        let ids: BTreeSet<&str> = snapshot
            .nodes
            .iter()
            .filter_map(|n| n.instance_id.as_deref())
            .collect();
        self.unknown.retain(|id| ids.contains(id.as_str()));
    }

    /// Aborts the running drains of the nodes `which` picks; each is reported as stopped
    /// (`why`). An eviction already sent may land; none is sent after this returns.
    fn stop_drains(
        &mut self,
        which: impl Fn(&str) -> bool,
        why: &str,
    ) -> Vec<(String, Result<DrainOutcome, PortError>)> {
        let nodes: Vec<String> = self.drains.keys().filter(|n| which(n)).cloned().collect();
        let mut out = Vec::new();
        for node in nodes {
            if let Some(task) = self.drains.remove(&node) {
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

    /// Stops: drains in flight are abandoned (the ledger says they started; whoever leads
    /// next resumes them).
    pub fn shutdown(&mut self) {
        for (_, t) in std::mem::take(&mut self.drains) {
            t.abort();
        }
    }

    /// Drains running now.
    pub fn running_drains(&self) -> usize {
        self.drains.len()
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
fn under_way(e: &booster_core::Entry) -> bool {
    e.released_at.is_none()
        && e.retiring.is_none()
        && matches!(e.drain, booster_core::DrainState::Draining { .. })
}

/// A hold's sentence, with the pods it is about when it is about pods.
fn hold_message(s: &Snapshot, node: &str, reason: Reason) -> String {
    let pods = s
        .nodes
        .iter()
        .find(|n| n.name == node)
        .map(|n| n.unevictable.as_slice())
        .unwrap_or_default();
    match reason {
        Reason::PodsNeverEvicted if !pods.is_empty() => {
            format!("{}: {}", reason.describe(), pods.join("; "))
        }
        Reason::WriteBackingOff => match last_failure(s, node) {
            Some(f) => format!(
                "{} ({} {} failed {} time(s) in a row, {}; next try in {}s): {}",
                reason.describe(),
                f.write.as_str(),
                f.subject,
                f.failures,
                f.class.as_str(),
                f.retry_at().since(s.now).as_millis() / 1000,
                f.error
            ),
            None => reason.describe().to_string(),
        },
        _ => reason.describe().to_string(),
    }
}

/// The latest failed write about `node`: its own, or its boost group's raise.
fn last_failure<'a>(s: &'a Snapshot, node: &str) -> Option<&'a booster_core::failures::Failure> {
    let group = s.ledger.entries.get(node).map(|e| e.boost_group());
    s.failures
        .iter()
        .filter(|f| {
            f.subject == node
                || (f.write == booster_core::failures::Write::SetDesired
                    && Some(f.subject.as_str()) == group)
        })
        .max_by_key(|f| f.last_at)
}

#[cfg(test)]
mod refusals;

#[cfg(test)]
mod tests {
    use super::*;
    use booster_core::ports::{ClusterView, SetDesiredOutcome};
    use booster_core::testkit::mocks::{MockCloud, MockCluster, MockLeadership};
    use booster_core::testkit::{t, SnapshotBuilder};
    use booster_core::{Boost, CaObservation};

    fn clock() -> Timestamp {
        t(100)
    }

    /// A group `spot` of 3 nodes, `spot-0` signalled at t(90), CA fresh at t(100).
    fn world(ca: Option<CaObservation>) -> Snapshot {
        let mut b = SnapshotBuilder::new(t(100))
            .group("spot", 1, 3, 6)
            .signal("spot-0", t(90));
        if let Some(ca) = ca {
            b = b.ca(ca);
        }
        b.build()
    }

    fn view(s: &Snapshot) -> ClusterView {
        ClusterView {
            nodes: s.nodes.clone(),
            signals: s.signals.clone(),
            ca_status: s.ca_status.clone(),
            ledger: s.ledger.clone(),
            ..ClusterView::default()
        }
    }

    fn ports(cluster: MockCluster, cloud: MockCloud, leader: bool) -> Ports {
        let mut l = MockLeadership::new();
        l.expect_is_leader().return_const(leader);
        Ports {
            cluster: Arc::new(cluster),
            cloud: Arc::new(cloud),
            leader: Arc::new(l),
            writes: Arc::default(),
        }
    }

    fn observing(s: &Snapshot) -> (MockCluster, MockCloud) {
        let mut cluster = MockCluster::new();
        let v = view(s);
        cluster.expect_observe().returning(move || Ok(v.clone()));
        (cluster, describing(s))
    }

    /// Auto Scaling answering with `s`'s groups and no failed launches.
    fn describing(s: &Snapshot) -> MockCloud {
        let mut cloud = MockCloud::new();
        cloud
            .expect_scaling_activities()
            .returning(|_| Ok(Default::default()));
        let groups = s.groups.clone();
        cloud
            .expect_describe_groups()
            .returning(move |_| Ok(groups.clone()));
        cloud
    }

    #[tokio::test]
    async fn a_replica_that_does_not_lead_computes_the_plan_and_writes_nothing() {
        let s = world(None);
        // No expectation on any mutating call: mockall fails the test if one is made.
        let (mut cluster, cloud) = observing(&s);
        cluster.expect_record_event().never();
        let mut c = Controller::new(ports(cluster, cloud, false), Config::default(), clock);
        let r = c.pass().await.expect("pass");
        assert!(!r.leader && r.plan.dry_run);
        assert!(r
            .plan
            .actions
            .iter()
            .any(|a| matches!(a, Action::RecordSignal { .. })));
        assert!(r
            .executed
            .outcomes
            .iter()
            .all(|o| matches!(o.result, Ok(Effect::DryRun | Effect::Held))));
        assert!(r.drains_started.is_empty());
    }

    #[tokio::test]
    async fn dry_run_computes_the_plan_and_writes_nothing_and_shows_the_next_steps() {
        let s = world(None);
        let (mut cluster, cloud) = observing(&s);
        cluster.expect_record_event().never();
        let cfg = Config {
            dry_run: true,
            ..Config::default()
        };
        let mut c = Controller::new(ports(cluster, cloud, true), cfg, clock);
        let r = c.pass().await.expect("pass");
        assert!(r.leader && r.plan.dry_run);
        assert!(r
            .plan
            .actions
            .iter()
            .any(|a| matches!(a, Action::RecordSignal { .. })));
        assert!(
            r.plan
                .actions
                .iter()
                .any(|a| matches!(a, Action::SetDesired { .. })),
            "the raise is shown with its record: {:?}",
            r.plan.actions
        );
        assert_eq!(r.executed.stores, 0);
        // The next pass decides on the ledger the first would have written: a boost whose
        // raise is not known to have happened, as a live booster would see it.
        let r = c.pass().await.expect("pass");
        assert!(
            r.plan.actions.iter().any(|a| matches!(
                a,
                Action::Hold {
                    reason: Reason::RaiseUnconfirmed,
                    ..
                }
            )),
            "{:?}",
            r.plan.actions
        );
        assert_eq!(r.executed.stores, 0);
    }

    #[tokio::test]
    async fn a_throttled_raise_is_reported_and_retried_on_the_next_pass() {
        // Recorded long enough ago for its raise to show in the scaling activities, which
        // show none: it did not take effect, and is sent.
        let s = SnapshotBuilder::new(t(100))
            .group("spot", 1, 3, 6)
            .entry("spot-0", t(20), |e| {
                e.boost = Boost::Applying {
                    from: 3,
                    to: 4,
                    at: t(30),
                }
            })
            .with_node("spot-0", |n| n.unschedulable = true)
            .build();
        let (mut cluster, mut cloud) = observing(&s);
        let mut calls = 0;
        cloud
            .expect_set_desired()
            .times(2)
            .returning(move |_, _, _| {
                calls += 1;
                if calls == 1 {
                    Err(PortError::Throttled("Rate exceeded".into()))
                } else {
                    Ok(SetDesiredOutcome::Raised)
                }
            });
        cluster
            .expect_record_event()
            .withf(|_, _, msg, warning| !*warning || msg.contains("throttled"))
            .returning(|_, _, _, _| Ok(()));
        cluster.expect_store_ledger().returning(|_| Ok(()));
        static NOW: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
        fn ticking() -> Timestamp {
            t(100).plus(booster_core::Dur::from_millis(
                NOW.load(std::sync::atomic::Ordering::SeqCst).unsigned_abs(),
            ))
        }
        let mut c = Controller::new(ports(cluster, cloud, true), Config::default(), ticking);
        let first = c.pass().await.expect("pass");
        assert!(
            matches!(
                first.executed.failures().next(),
                Some((_, PortError::Throttled(_)))
            ),
            "{:?}",
            first.plan.actions
        );
        // Not again at pass rate: a hold that names the throttling, and a wake-up.
        NOW.fetch_add(1_000, std::sync::atomic::Ordering::SeqCst);
        let held = c.pass().await.expect("pass");
        assert!(!held
            .plan
            .actions
            .iter()
            .any(|a| matches!(a, Action::SetDesired { .. })));
        assert!(held.plan.actions.iter().any(|a| matches!(
            a,
            Action::Hold {
                reason: Reason::WriteBackingOff,
                ..
            }
        )));
        let text = hold_message(&held.snapshot, "spot-0", Reason::WriteBackingOff);
        assert!(text.contains("Rate exceeded"), "{text}");
        let due = held.plan.next_wakeup.expect("a wake-up for the retry");
        NOW.store(
            i64::try_from(due.since(t(100)).as_millis()).unwrap_or(i64::MAX),
            std::sync::atomic::Ordering::SeqCst,
        );
        let second = c.pass().await.expect("pass");
        assert_eq!(second.executed.failures().count(), 0);
        assert!(second
            .plan
            .actions
            .iter()
            .any(|a| matches!(a, Action::SetDesired { .. })));
    }

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

    #[tokio::test]
    async fn a_malformed_ca_status_means_no_boost_and_a_warning_event() {
        let s = world(Some(CaObservation::Invalid {
            error: "legacy status, line 3: garbage".into(),
        }));
        let (mut cluster, cloud) = observing(&s);
        // The signal is recorded (queued), never boosted: no SetDesired expectation.
        cluster.expect_store_ledger().times(1).returning(|l| {
            assert!(matches!(
                l.entries["spot-0"].boost,
                Boost::Queued {
                    reason: Reason::CaStatusInvalid
                }
            ));
            Ok(())
        });
        cluster
            .expect_record_event()
            .withf(|node, reason, _, warning| {
                node == "spot-0" && *reason == Reason::CaStatusInvalid && *warning
            })
            .times(1)
            .returning(|_, _, _, _| Ok(()));
        // The record of the signal itself is a Normal Event.
        cluster
            .expect_record_event()
            .withf(|_, reason, _, warning| *reason == Reason::NewSignal && !*warning)
            .times(1)
            .returning(|_, _, _, _| Ok(()));
        let mut c = Controller::new(ports(cluster, cloud, true), Config::default(), clock);
        let r = c.pass().await.expect("pass");
        assert!(!r
            .plan
            .actions
            .iter()
            .any(|a| matches!(a, Action::SetDesired { .. } | Action::BeginBoost { .. })));
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
            if c.drains.values().all(|t| t.is_finished()) {
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

    /// A scripted signal, with the controller restarted (a new process: nothing kept in
    /// memory) after every possible number of passes: one raise, ever.
    #[tokio::test]
    async fn no_second_boost_across_a_restart_after_any_pass() {
        use std::sync::Mutex;
        for restart_after in 0..6 {
            let base = world(None);
            let state = Arc::new(Mutex::new((base.clone(), 0u32)));
            let build = |state: Arc<Mutex<(Snapshot, u32)>>| {
                let mut cluster = MockCluster::new();
                let st = state.clone();
                cluster.expect_observe().returning(move || {
                    let s = st
                        .lock()
                        .map_err(|_| PortError::Unavailable("lock".into()))?;
                    Ok(view(&s.0))
                });
                let st = state.clone();
                cluster.expect_store_ledger().returning(move |l| {
                    st.lock()
                        .map_err(|_| PortError::Unavailable("lock".into()))?
                        .0
                        .ledger = l.clone();
                    Ok(())
                });
                cluster.expect_set_unschedulable().returning(|_, _| Ok(()));
                cluster.expect_record_event().returning(|_, _, _, _| Ok(()));
                let mut cloud = MockCloud::new();
                cloud
                    .expect_scaling_activities()
                    .returning(|_| Ok(Default::default()));
                let st = state.clone();
                cloud.expect_describe_groups().returning(move |_| {
                    Ok(st
                        .lock()
                        .map_err(|_| PortError::Unavailable("lock".into()))?
                        .0
                        .groups
                        .clone())
                });
                let st = state.clone();
                cloud.expect_set_desired().returning(move |_, _, to| {
                    let mut s = st
                        .lock()
                        .map_err(|_| PortError::Unavailable("lock".into()))?;
                    if s.0.groups[0].desired >= to {
                        return Ok(SetDesiredOutcome::AlreadyAtOrAbove);
                    }
                    s.0.groups[0].desired = to;
                    s.1 += 1;
                    Ok(SetDesiredOutcome::Raised)
                });
                Controller::new(ports(cluster, cloud, true), Config::default(), clock)
            };
            let mut c = build(state.clone());
            for pass in 0..6 {
                if pass == restart_after {
                    c.shutdown();
                    c = build(state.clone());
                }
                c.pass().await.expect("pass");
            }
            let (s, raises) = state.lock().map(|s| (s.0.clone(), s.1)).expect("state");
            assert_eq!(raises, 1, "restart after pass {restart_after}");
            assert_eq!(s.groups[0].desired, 4);
            assert!(matches!(
                s.ledger.entries["spot-0"].boost,
                Boost::Applied { assumed: false, .. }
            ));
        }
    }
}
