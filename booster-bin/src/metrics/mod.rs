//! Prometheus metrics: the upstream project's gauges (for existing dashboards) and ours.
//! Each family group registers and records itself in its own file; this one holds them in
//! registration order (the order `/metrics` lists them in) and routes a pass to them.

mod actions;
mod aws;
mod health;
mod labels;
mod latency;
mod outcomes;
mod signals;
mod upstream;

use std::collections::BTreeMap;

use booster_core::exec::Effect;
use booster_core::{Action, Dur};
use prometheus_client::registry::Registry;

use self::actions::ActionMetrics;
use self::aws::AwsCalls;
use self::health::HealthMetrics;
use self::latency::LatencyHistograms;
use self::outcomes::OutcomeMetrics;
use self::signals::SignalCounters;
use self::upstream::UpstreamGauges;
use crate::controller::PassReport;

/// Every metric the controller exports.
pub struct Metrics {
    /// The registry `/metrics` encodes.
    pub registry: Registry,
    upstream: UpstreamGauges,
    signals: SignalCounters,
    actions: ActionMetrics,
    aws: AwsCalls,
    latency: LatencyHistograms,
    health: HealthMetrics,
    outcomes: OutcomeMetrics,
}

impl Metrics {
    /// Registers everything.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        // Registration order is exposition order: dashboards and tests read it as is.
        let upstream = UpstreamGauges::register(&mut registry);
        let signals = SignalCounters::register(&mut registry);
        let actions = ActionMetrics::register(&mut registry);
        let aws = AwsCalls::register(&mut registry);
        let latency = LatencyHistograms::register(&mut registry);
        let health = HealthMetrics::register(&mut registry);
        let outcomes = OutcomeMetrics::register(&mut registry);
        Metrics {
            registry,
            upstream,
            signals,
            actions,
            aws,
            latency,
            health,
            outcomes,
        }
    }

    /// Drains running now.
    pub fn drains_running(&self, n: usize) {
        self.health.drains_running(n);
    }

    /// A pass failed before it decided (observe or describe).
    pub fn failed_pass(&self, label: &str) {
        self.health.pass(label);
    }

    /// Records what a pass saw and did.
    pub fn record(&mut self, r: &PassReport, new_node_window: Dur) {
        self.health.record(r);
        self.latency.record(r);
        self.upstream.record(&r.snapshot, new_node_window);
        self.signals.rejected(&r.new_rejections);
        self.actions
            .warnings(&r.plan.warnings, std::time::Instant::now());
        self.record_outcomes(r);
        self.actions.drains_ended(&r.drains_ended);
        self.actions.surges(&r.surges);
    }

    /// Each executed action, to the families it concerns: holds, actions by outcome, and
    /// what a success means for signals, given-up signals and boost latency.
    fn record_outcomes(&self, r: &PassReport) {
        self.actions.clear_holds();
        for o in &r.executed.outcomes {
            let Some(a) = r.plan.actions.get(o.index) else {
                continue;
            };
            if let Action::Hold { reason, .. } = a {
                self.actions.hold(*reason);
                continue;
            }
            self.actions.executed(a, &o.result);
            match (a, &o.result) {
                (Action::RecordSignal { .. }, Ok(Effect::Recorded)) => self.signals.recorded(),
                (Action::Release { reason, .. }, Ok(Effect::Done)) => {
                    self.health.released(*reason);
                }
                (Action::SetDesired { nodes, .. }, Ok(Effect::Done)) => {
                    self.latency.boosted(&r.snapshot, nodes);
                }
                (
                    Action::RecordOutcome {
                        group,
                        pool,
                        outcome,
                        lead,
                        ..
                    },
                    Ok(Effect::Recorded),
                ) => self.outcomes.recorded(group, pool, *outcome, *lead),
                _ => {}
            }
        }
    }

    /// Mirrors the AWS adapter's call counter (it counts; we export the increase).
    pub fn aws_calls(&mut self, counts: BTreeMap<(&'static str, &'static str), u64>) {
        self.aws.mirror(counts);
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
