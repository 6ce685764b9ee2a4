//! How signals ended: outcomes by group, pool and outcome, and the recommendation to
//! interruption lead time (the evidence `--drain-on adaptive` uses, to watch it).

use booster_core::outcomes::SignalOutcome;
use booster_core::Dur;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::labels::{GroupLabel, PoolOutcomeLabels};

type LeadHistograms = Family<GroupLabel, Histogram, fn() -> Histogram>;

/// From half a minute to the longest lead EC2 gives (about 20 minutes) and past it.
fn lead_histogram() -> Histogram {
    Histogram::new([
        30.0, 60.0, 120.0, 180.0, 300.0, 600.0, 900.0, 1200.0, 1800.0,
    ])
}

/// `spots_booster_signal_outcomes` and `spots_booster_recommendation_lead_seconds`.
pub(super) struct OutcomeMetrics {
    outcomes: Family<PoolOutcomeLabels, Counter>,
    lead: LeadHistograms,
}

impl OutcomeMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let outcomes = Family::<PoolOutcomeLabels, Counter>::default();
        registry.register(
            "spots_booster_signal_outcomes",
            "How signals ended (interrupted, notInterrupted, unknown), by group and pool (instance type/zone)",
            outcomes.clone(),
        );
        let lead = LeadHistograms::new_with_constructor(lead_histogram);
        registry.register(
            "spots_booster_recommendation_lead_seconds",
            "Time from a rebalance recommendation to its node's interruption, by group",
            lead.clone(),
        );
        OutcomeMetrics { outcomes, lead }
    }

    /// A signal's outcome was stored.
    pub(super) fn recorded(
        &self,
        group: &str,
        pool: &str,
        outcome: SignalOutcome,
        lead: Option<Dur>,
    ) {
        self.outcomes
            .get_or_create(&PoolOutcomeLabels {
                autoscaling_group: group.to_string(),
                pool: pool.to_string(),
                outcome: outcome.as_str().to_string(),
            })
            .inc();
        if let Some(lead) = lead {
            self.lead
                .get_or_create(&GroupLabel {
                    autoscaling_group: group.to_string(),
                })
                .observe(lead.as_millis() as f64 / 1000.0);
        }
    }
}
