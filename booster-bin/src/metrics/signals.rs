//! Signals: those recorded, and the RebalanceRecommendation Events not taken as signals.

use booster_core::Rejection;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::labels::ReasonLabel;

/// `spots_booster_signals_seen` and `spots_booster_signals_rejected`.
pub(super) struct SignalCounters {
    seen: Counter,
    rejected: Family<ReasonLabel, Counter>,
}

impl SignalCounters {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let seen = Counter::default();
        registry.register(
            "spots_booster_signals_seen",
            "Rebalance signals recorded",
            seen.clone(),
        );
        let rejected = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "spots_booster_signals_rejected",
            "RebalanceRecommendation Events not taken as signals, each counted once, by reason",
            rejected.clone(),
        );
        for r in booster_core::Rejected::ALL {
            let _ = rejected.get_or_create(&ReasonLabel::of(r.as_str()));
        }
        SignalCounters { seen, rejected }
    }

    /// A signal's record was stored.
    pub(super) fn recorded(&self) {
        self.seen.inc();
    }

    /// Events rejected for the first time.
    pub(super) fn rejected(&self, rejections: &[Rejection]) {
        for rej in rejections {
            self.rejected
                .get_or_create(&ReasonLabel::of(rej.reason.as_str()))
                .inc();
        }
    }
}
