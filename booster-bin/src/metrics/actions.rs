//! What the passes did: actions and drains by outcome, the holds signals wait in, and the
//! groups' warnings.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use booster_core::exec::Effect;
use booster_core::plan::GroupWarning;
use booster_core::ports::{DrainOutcome, PortError};
use booster_core::{Action, Reason};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::labels::{ActionLabels, GroupReasonLabels, OutcomeLabel, ReasonLabel};

/// How long a group warning stays on `spots_booster_group_warnings` after the last plan
/// that carried it.
const WARNING_SHOWN_FOR: Duration = Duration::from_secs(600);

/// `spots_booster_actions`, `_drains`, `_holds` and `_group_warnings`.
pub(super) struct ActionMetrics {
    actions: Family<ActionLabels, Counter>,
    drains: Family<OutcomeLabel, Counter>,
    holds: Family<ReasonLabel, Gauge>,
    surges: Family<OutcomeLabel, Counter>,
    group_warnings: Family<GroupReasonLabels, Gauge>,
    /// Each group warning and when a plan last carried it: some come with a single pass
    /// (AZRebalance, at the retire), which no scrape would catch.
    warnings_seen: BTreeMap<(String, String), Instant>,
}

impl ActionMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let actions = Family::<ActionLabels, Counter>::default();
        registry.register(
            "spots_booster_actions",
            "Actions executed, by kind and outcome",
            actions.clone(),
        );
        let drains = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "spots_booster_drains",
            "Drain attempts ended, by outcome",
            drains.clone(),
        );
        let holds = Family::<ReasonLabel, Gauge>::default();
        registry.register(
            "spots_booster_holds",
            "Signals waiting now, by reason",
            holds.clone(),
        );
        let surges = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "spots_booster_surges",
            "Pods moved by surge before eviction, by outcome: started, handedOver, undone, abandoned, skipped",
            surges.clone(),
        );
        for o in booster_core::surge::SurgeOutcome::ALL {
            let _ = surges.get_or_create(&OutcomeLabel::of(o.as_str()));
        }
        let group_warnings = Family::<GroupReasonLabels, Gauge>::default();
        registry.register(
            "spots_booster_group_warnings",
            "1 while a group has something to know about, and for 10 minutes after it was last seen: capacityRebalance, azRebalanceActive, launchFailing, launchSuspended, launchFailed, fallbackBoost",
            group_warnings.clone(),
        );
        ActionMetrics {
            actions,
            drains,
            holds,
            surges,
            group_warnings,
            warnings_seen: BTreeMap::new(),
        }
    }

    /// Remembers the plan's warnings as seen `now`, forgets those older than
    /// [`WARNING_SHOWN_FOR`], and shows the rest.
    pub(super) fn warnings(&mut self, warnings: &[GroupWarning], now: Instant) {
        for w in warnings {
            self.warnings_seen
                .insert((w.group.clone(), w.reason.code()), now);
        }
        self.warnings_seen
            .retain(|_, at| now.duration_since(*at) < WARNING_SHOWN_FOR);
        self.group_warnings.clear();
        for (group, reason) in self.warnings_seen.keys() {
            self.group_warnings
                .get_or_create(&GroupReasonLabels {
                    autoscaling_group: group.clone(),
                    reason: reason.clone(),
                })
                .set(1);
        }
    }

    /// Forgets the previous pass's holds: each pass reports all of its own.
    pub(super) fn clear_holds(&self) {
        self.holds.clear();
    }

    /// A signal waits in a hold.
    pub(super) fn hold(&self, reason: Reason) {
        self.holds
            .get_or_create(&ReasonLabel::of(reason.as_str()))
            .inc();
    }

    /// An action other than a hold ended with `result`.
    pub(super) fn executed(&self, a: &Action, result: &Result<Effect, PortError>) {
        let outcome = match result {
            Ok(Effect::DryRun) => "dry_run",
            Ok(Effect::AlreadyDone) => "already_done",
            Ok(_) => "ok",
            Err(e) => e.metric_label(),
        };
        self.actions
            .get_or_create(&ActionLabels {
                action: a.kind().to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// What the drains' surges did since the last pass.
    pub(super) fn surges(&self, reports: &[booster_core::surge::SurgeReport]) {
        for r in reports {
            self.surges
                .get_or_create(&OutcomeLabel::of(r.outcome.as_str()))
                .inc();
        }
    }

    /// Drains that ended since the last pass.
    pub(super) fn drains_ended(&self, ended: &[(String, Result<DrainOutcome, PortError>)]) {
        for (_, d) in ended {
            let outcome = match d {
                Ok(DrainOutcome::Drained) => "drained",
                Ok(DrainOutcome::TimedOut { .. }) => "timed_out",
                Ok(DrainOutcome::Stopped { .. }) => "stopped",
                Err(e) => e.metric_label(),
            };
            self.drains.get_or_create(&OutcomeLabel::of(outcome)).inc();
        }
    }
}
