//! The controller's health: what it can see of its inputs (NTH's unexplained cordons, the
//! CA status' age), leadership, passes, drains running, the ledger's size, and the writes
//! that keep failing or were given up.

use booster_core::{Reason, Snapshot};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::labels::{OutcomeLabel, ReasonLabel, WriteClassLabels};
use crate::controller::PassReport;

/// The reasons a signal is given back after its writes were refused again and again: the
/// labels of `spots_booster_given_up`.
const GIVEN_UP: [Reason; 3] = [
    Reason::BoostRefused,
    Reason::PlaceRefused,
    Reason::RetireRefused,
];

/// The gauges and counters of the controller's own state.
pub(super) struct HealthMetrics {
    nth_cordons_unexplained: Gauge,
    ca_status_age_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    leader: Gauge,
    passes: Family<OutcomeLabel, Counter>,
    drains_running: Gauge,
    ledger_bytes: Gauge,
    ledger_entries: Gauge,
    failing_writes: Family<WriteClassLabels, Gauge>,
    given_up: Family<ReasonLabel, Counter>,
}

impl HealthMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let nth_cordons_unexplained = Gauge::default();
        registry.register(
            "spots_booster_nth_cordons_unexplained",
            "Nodes NTH cordoned with no taint and no Event (NTH's defaults): signals the booster cannot see",
            nth_cordons_unexplained.clone(),
        );
        let ca_status_age_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "spots_booster_ca_status_age_seconds",
            "Age of cluster-autoscaler's status (-1: none)",
            ca_status_age_seconds.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "spots_booster_leader",
            "1 while this replica holds the Lease",
            leader.clone(),
        );
        let passes = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "spots_booster_passes",
            "Controller passes, by outcome",
            passes.clone(),
        );
        let drains_running = Gauge::default();
        registry.register(
            "spots_booster_drains_running",
            "Drains this replica runs now",
            drains_running.clone(),
        );
        let ledger_bytes = Gauge::default();
        registry.register(
            "spots_booster_ledger_bytes",
            "Size of the ledger as stored (a ConfigMap holds at most 1 MiB)",
            ledger_bytes.clone(),
        );
        let ledger_entries = Gauge::default();
        registry.register(
            "spots_booster_ledger_entries",
            "Signalled nodes the ledger holds",
            ledger_entries.clone(),
        );
        let failing_writes = Family::<WriteClassLabels, Gauge>::default();
        registry.register(
            "spots_booster_failing_writes",
            "Writes whose last try failed, waiting for their backoff, by write and failure class (refused, throttled, conflict, busy, unavailable)",
            failing_writes.clone(),
        );
        let given_up = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "spots_booster_given_up",
            "Signals given back after their boost, placeholders or retire were refused again and again, by reason",
            given_up.clone(),
        );
        for r in GIVEN_UP {
            let _ = given_up.get_or_create(&ReasonLabel::of(r.as_str()));
        }
        HealthMetrics {
            nth_cordons_unexplained,
            ca_status_age_seconds,
            leader,
            passes,
            drains_running,
            ledger_bytes,
            ledger_entries,
            failing_writes,
            given_up,
        }
    }

    /// Drains running now.
    pub(super) fn drains_running(&self, n: usize) {
        self.drains_running.set(n as i64);
    }

    /// A pass ended with `outcome`.
    pub(super) fn pass(&self, outcome: &str) {
        self.passes.get_or_create(&OutcomeLabel::of(outcome)).inc();
    }

    /// What a pass that decided saw of the controller's state.
    pub(super) fn record(&self, r: &PassReport) {
        let s = &r.snapshot;
        let outcome = if s.cloud_unavailable.is_some() {
            "cloudUnavailable"
        } else {
            "ok"
        };
        self.pass(outcome);
        self.leader.set(i64::from(r.leader));
        let ledger = serde_json::to_string(&s.ledger).map_or(0, |j| j.len());
        self.ledger_bytes.set(ledger as i64);
        self.ledger_entries.set(s.ledger.entries.len() as i64);
        self.nth_cordons_unexplained
            .set(r.unexplained_nth_cordons as i64);
        self.ca_status_age_seconds
            .set(s.ca_status.age(s.now).map_or(-1.0, |d| d.as_secs_f64()));
        self.failing_writes(s);
    }

    /// The snapshot's failing writes, replacing the last pass's.
    fn failing_writes(&self, s: &Snapshot) {
        self.failing_writes.clear();
        for f in &s.failures {
            self.failing_writes
                .get_or_create(&WriteClassLabels {
                    write: f.write.as_str().to_string(),
                    class: f.class.as_str().to_string(),
                })
                .inc();
        }
    }

    /// A signal was given back: counted when its writes were refused again and again.
    pub(super) fn released(&self, reason: Reason) {
        if GIVEN_UP.contains(&reason) {
            self.given_up
                .get_or_create(&ReasonLabel::of(reason.as_str()))
                .inc();
        }
    }
}
