//! Prometheus metrics: the upstream project's gauges (for existing dashboards) and ours.

use std::collections::BTreeMap;

use booster_core::exec::Effect;
use booster_core::ports::DrainOutcome;
use booster_core::{Action, Boost};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::controller::PassReport;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabel {
    autoscaling_group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    operation: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupReasonLabels {
    autoscaling_group: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WriteClassLabels {
    write: String,
    class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: String,
}

/// How long a group warning stays on `spots_booster_group_warnings` after the last plan
/// that carried it.
const WARNING_SHOWN_FOR: std::time::Duration = std::time::Duration::from_secs(600);

type PhaseHistograms = Family<PhaseLabel, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms to 8 s: the booster's share of a signal's latency is meant to stay under 1 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 14))
}

/// Every metric the controller exports.
pub struct Metrics {
    /// The registry `/metrics` encodes.
    pub registry: Registry,
    events: Family<GroupLabel, Gauge>,
    nodes: Family<GroupLabel, Gauge>,
    cordoned: Family<GroupLabel, Gauge>,
    recently_ready: Family<GroupLabel, Gauge>,
    signals: Counter,
    rejected: Family<ReasonLabel, Counter>,
    actions: Family<ActionLabels, Counter>,
    drains: Family<OutcomeLabel, Counter>,
    holds: Family<ReasonLabel, Gauge>,
    group_warnings: Family<GroupReasonLabels, Gauge>,
    aws_calls: Family<CallLabels, Counter>,
    aws_seen: BTreeMap<(&'static str, &'static str), u64>,
    /// Each group warning and when a plan last carried it: some come with a single pass
    /// (AZRebalance, at the retire), which no scrape would catch.
    warnings_seen: BTreeMap<(String, String), std::time::Instant>,
    decide_seconds: Histogram,
    signal_to_boost_seconds: Histogram,
    boost_latency_seconds: PhaseHistograms,
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

impl Metrics {
    /// Registers everything.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let events = Family::<GroupLabel, Gauge>::default();
        let nodes = Family::<GroupLabel, Gauge>::default();
        let cordoned = Family::<GroupLabel, Gauge>::default();
        let recently_ready = Family::<GroupLabel, Gauge>::default();
        // The upstream project's names (gauges, despite the suffix), kept for dashboards.
        registry.register(
            "aws_spots_booster_events_total",
            "Rebalance signals per group (upstream name)",
            events.clone(),
        );
        registry.register(
            "aws_spots_booster_nodes_total",
            "Nodes per group (upstream name)",
            nodes.clone(),
        );
        registry.register(
            "aws_spots_booster_cordoned_nodes_total",
            "Cordoned nodes per group (upstream name)",
            cordoned.clone(),
        );
        registry.register(
            "aws_spots_booster_recently_ready_nodes_total",
            "Nodes created within max-time-consider-new-node per group (upstream name)",
            recently_ready.clone(),
        );
        let signals = Counter::default();
        registry.register(
            "spots_booster_signals_seen",
            "Rebalance signals recorded",
            signals.clone(),
        );
        let rejected = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "spots_booster_signals_rejected",
            "RebalanceRecommendation Events not taken as signals, each counted once, by reason",
            rejected.clone(),
        );
        for r in booster_core::Rejected::ALL {
            let _ = rejected.get_or_create(&ReasonLabel {
                reason: r.as_str().to_string(),
            });
        }
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
        let group_warnings = Family::<GroupReasonLabels, Gauge>::default();
        registry.register(
            "spots_booster_group_warnings",
            "1 while a group has something to know about, and for 10 minutes after it was last seen: capacityRebalance, azRebalanceActive, launchFailing, launchSuspended, launchFailed, fallbackBoost",
            group_warnings.clone(),
        );
        let aws_calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "spots_booster_aws_calls",
            "Auto Scaling API calls, by operation and outcome",
            aws_calls.clone(),
        );
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
        for r in [
            booster_core::Reason::BoostRefused,
            booster_core::Reason::PlaceRefused,
            booster_core::Reason::RetireRefused,
        ] {
            let _ = given_up.get_or_create(&ReasonLabel {
                reason: r.as_str().to_string(),
            });
        }
        Metrics {
            failing_writes,
            given_up,
            drains_running,
            ledger_bytes,
            ledger_entries,
            registry,
            events,
            nodes,
            cordoned,
            recently_ready,
            signals,
            rejected,
            actions,
            drains,
            holds,
            group_warnings,
            aws_calls,
            aws_seen: BTreeMap::new(),
            warnings_seen: BTreeMap::new(),
            decide_seconds,
            signal_to_boost_seconds,
            boost_latency_seconds,
            nth_cordons_unexplained,
            ca_status_age_seconds,
            leader,
            passes,
        }
    }

    /// Drains running now.
    pub fn drains_running(&self, n: usize) {
        self.drains_running.set(n as i64);
    }

    /// A pass failed before it decided (observe or describe).
    pub fn failed_pass(&self, label: &str) {
        self.passes
            .get_or_create(&OutcomeLabel {
                outcome: label.to_string(),
            })
            .inc();
    }

    /// Records what a pass saw and did.
    pub fn record(&mut self, r: &PassReport, new_node_window: booster_core::Dur) {
        let s = &r.snapshot;
        let outcome = if s.cloud_unavailable.is_some() {
            "cloudUnavailable"
        } else {
            "ok"
        };
        self.passes
            .get_or_create(&OutcomeLabel {
                outcome: outcome.into(),
            })
            .inc();
        self.leader.set(i64::from(r.leader));
        let ledger = serde_json::to_string(&s.ledger).map_or(0, |j| j.len());
        self.ledger_bytes.set(ledger as i64);
        self.ledger_entries.set(s.ledger.entries.len() as i64);
        self.decide_seconds.observe(r.decide_time.as_secs_f64());
        self.nth_cordons_unexplained
            .set(r.unexplained_nth_cordons as i64);
        for b in &r.boost_latency {
            for (phase, d) in b.phases() {
                self.boost_latency_seconds
                    .get_or_create(&PhaseLabel {
                        phase: phase.into(),
                    })
                    .observe(d.as_secs_f64());
            }
        }
        self.ca_status_age_seconds
            .set(s.ca_status.age(s.now).map_or(-1.0, |d| d.as_secs_f64()));
        // Upstream gauges, per group.
        let mut by_instance = BTreeMap::new();
        for g in &s.groups {
            for i in &g.instances {
                by_instance.insert(i.id.as_str(), g.name.as_str());
            }
        }
        let mut per: BTreeMap<&str, [i64; 4]> =
            s.groups.iter().map(|g| (g.name.as_str(), [0; 4])).collect();
        // Signals being handled: an Event alone is only a claim (see `signals_rejected`).
        let signalled: std::collections::BTreeSet<&str> = s
            .ledger
            .entries
            .iter()
            .filter(|(_, e)| e.released_at.is_none())
            .map(|(n, _)| n.as_str())
            .collect();
        for n in &s.nodes {
            let Some(g) = n.instance_id.as_deref().and_then(|id| by_instance.get(id)) else {
                continue;
            };
            let c = per.entry(g).or_default();
            c[0] += i64::from(signalled.contains(n.name.as_str()));
            c[1] += 1;
            c[2] += i64::from(n.unschedulable);
            c[3] += i64::from(n.ready && s.now.since(n.created_at) <= new_node_window);
        }
        for (g, c) in per {
            let l = GroupLabel {
                autoscaling_group: g.to_string(),
            };
            self.events.get_or_create(&l).set(c[0]);
            self.nodes.get_or_create(&l).set(c[1]);
            self.cordoned.get_or_create(&l).set(c[2]);
            self.recently_ready.get_or_create(&l).set(c[3]);
        }
        for rej in &r.new_rejections {
            self.rejected
                .get_or_create(&ReasonLabel {
                    reason: rej.reason.as_str().to_string(),
                })
                .inc();
        }
        let now = std::time::Instant::now();
        for w in &r.plan.warnings {
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
        self.failing_writes.clear();
        for f in &s.failures {
            self.failing_writes
                .get_or_create(&WriteClassLabels {
                    write: f.write.as_str().to_string(),
                    class: f.class.as_str().to_string(),
                })
                .inc();
        }
        // Actions and holds.
        self.holds.clear();
        for o in &r.executed.outcomes {
            let Some(a) = r.plan.actions.get(o.index) else {
                continue;
            };
            match (a, &o.result) {
                (Action::Hold { reason, .. }, _) => {
                    self.holds
                        .get_or_create(&ReasonLabel {
                            reason: reason.as_str().to_string(),
                        })
                        .inc();
                }
                (_, result) => {
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
                    if let (Action::RecordSignal { .. }, Ok(Effect::Recorded)) = (a, result) {
                        self.signals.inc();
                    }
                    if let (Action::Release { reason, .. }, Ok(Effect::Done)) = (a, result) {
                        if matches!(
                            reason,
                            booster_core::Reason::BoostRefused
                                | booster_core::Reason::PlaceRefused
                                | booster_core::Reason::RetireRefused
                        ) {
                            self.given_up
                                .get_or_create(&ReasonLabel {
                                    reason: reason.as_str().to_string(),
                                })
                                .inc();
                        }
                    }
                    if let (Action::SetDesired { nodes, .. }, Ok(Effect::Done)) = (a, result) {
                        for n in nodes {
                            if let Some(e) = s.ledger.entries.get(n) {
                                if matches!(e.boost, Boost::Applying { .. }) {
                                    self.signal_to_boost_seconds
                                        .observe(s.now.since(e.signal_at).as_secs_f64());
                                }
                            }
                        }
                    }
                }
            }
        }
        for (_, d) in &r.drains_ended {
            let outcome = match d {
                Ok(DrainOutcome::Drained) => "drained",
                Ok(DrainOutcome::TimedOut { .. }) => "timed_out",
                Ok(DrainOutcome::Stopped { .. }) => "stopped",
                Err(e) => e.metric_label(),
            };
            self.drains
                .get_or_create(&OutcomeLabel {
                    outcome: outcome.to_string(),
                })
                .inc();
        }
    }

    /// Mirrors the AWS adapter's call counter (it counts; we export the increase).
    pub fn aws_calls(&mut self, counts: BTreeMap<(&'static str, &'static str), u64>) {
        for (k, n) in counts {
            let seen = self.aws_seen.entry(k).or_insert(0);
            if n > *seen {
                self.aws_calls
                    .get_or_create(&CallLabels {
                        operation: k.0.to_string(),
                        outcome: k.1.to_string(),
                    })
                    .inc_by(n - *seen);
                *seen = n;
            }
        }
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
