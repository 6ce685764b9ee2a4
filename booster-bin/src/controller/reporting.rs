//! What a pass tells: every action logged, and Kubernetes Events for executed actions,
//! failures, holds that change, group warnings, ended drains and rejected signals.

use std::collections::{BTreeMap, BTreeSet};

use booster_core::exec::{Effect, Executed};
use booster_core::ports::DrainOutcome;
use booster_core::{Action, Plan, Reason, Rejection, Snapshot};

use super::drains::Ended;
use super::Controller;

/// Rejected Events logged one by one per pass; the rest of a flood is summed up in a line.
const REJECTIONS_LOGGED_PER_PASS: usize = 20;

impl Controller {
    /// Logs each new group warning and records it as a Warning Event on the node it
    /// concerns, once per group and reason.
    pub(super) async fn warn_groups(&mut self, plan: &Plan) {
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
    pub(super) fn new_rejections(&mut self, plan: &Plan) -> Vec<Rejection> {
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

    /// An Event per ended drain attempt: done, or the pods left and why.
    pub(super) async fn report_ended(&self, ended: &[Ended]) {
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

    /// Warns once per node about NTH cordons the booster cannot read as signals.
    pub(super) fn report_unexplained(&mut self, s: &Snapshot) -> usize {
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
    pub(super) async fn report(&mut self, snapshot: &Snapshot, plan: &Plan, executed: &Executed) {
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
}

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

/// A hold's sentence, with the pods it is about when it is about pods.
pub(super) fn hold_message(s: &Snapshot, node: &str, reason: Reason) -> String {
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
