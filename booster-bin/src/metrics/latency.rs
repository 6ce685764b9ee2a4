//! Histograms of time: computing a plan, a signal's wait for its raise, and the booster's
//! share of a boost's latency by phase.

use booster_core::Snapshot;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::labels::PhaseLabel;
use crate::controller::PassReport;

type PhaseHistograms = Family<PhaseLabel, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms to 8 s: the booster's share of a signal's latency is meant to stay under 1 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 14))
}

/// `spots_booster_decide_seconds`, `_signal_to_boost_seconds` and
/// `_boost_latency_seconds`.
pub(super) struct LatencyHistograms {
    decide_seconds: Histogram,
    signal_to_boost_seconds: Histogram,
    boost_latency_seconds: PhaseHistograms,
}

impl LatencyHistograms {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let decide_seconds = Histogram::new(exponential_buckets(0.000_01, 4.0, 10));
        registry.register(
            "spots_booster_decide_seconds",
            "Time to compute a plan",
            decide_seconds.clone(),
        );
        let signal_to_boost_seconds = Histogram::new(exponential_buckets(1.0, 2.0, 10));
        registry.register(
            "spots_booster_signal_to_boost_seconds",
            "From a signal to its raise of desired capacity",
            signal_to_boost_seconds.clone(),
        );
        let boost_latency_seconds: PhaseHistograms =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "spots_booster_boost_latency_seconds",
            "The booster's share of a signal's latency, by phase: from the watched change to the SetDesiredCapacity answer (total), its wait for a pass, the snapshot, decide, the ledger store, the boost marks and the call (aws)",
            boost_latency_seconds.clone(),
        );
        LatencyHistograms {
            decide_seconds,
            signal_to_boost_seconds,
            boost_latency_seconds,
        }
    }

    /// The pass's `decide` time and its boosts' phases.
    pub(super) fn record(&self, r: &PassReport) {
        self.decide_seconds.observe(r.decide_time.as_secs_f64());
        for b in &r.boost_latency {
            for (phase, d) in b.phases() {
                self.boost_latency_seconds
                    .get_or_create(&PhaseLabel {
                        phase: phase.into(),
                    })
                    .observe(d.as_secs_f64());
            }
        }
    }

    /// A raise of desired capacity succeeded for `nodes`: each signal whose boost it applied
    /// waited from its signal to now.
    pub(super) fn boosted(&self, s: &Snapshot, nodes: &[String]) {
        for n in nodes {
            if let Some(e) = s.ledger.entries.get(n) {
                if matches!(e.boost, booster_core::Boost::Applying { .. }) {
                    self.signal_to_boost_seconds
                        .observe(s.now.since(e.signal_at).as_secs_f64());
                }
            }
        }
    }
}
