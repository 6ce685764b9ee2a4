//! `--drain-on`: a signalled node whose replacement is Ready is drained on its
//! recommendation (`rebalance`), stands by for its interruption (`interruption`), or, under
//! `adaptive`, whichever its pool's evidence calls for. And how each signal ended is
//! counted once, per pool, in the ledger.

use booster_core::config::{AdaptiveRule, DrainOn};
use booster_core::outcomes::{pool_key, Recent, SignalOutcome};
use booster_core::snapshot::Lifecycle;
use booster_core::testkit::{apply_plan, instance_of, t, SnapshotBuilder};
use booster_core::{decide, Action, Boost, Config, Dur, Entry, Plan, Reason, Snapshot};

const POOL: &str = "?/eu-west-1a";

fn boosted(e: &mut Entry) {
    e.boost = Boost::Applied {
        to: 4,
        at: e.signal_at.plus(Dur::from_secs(10)),
        assumed: false,
    };
    e.pool = POOL.into();
}

/// spot: spot-0..2, spot-0 signalled at t(0), boosted, its replacement spot-r Ready and
/// protected; `now` in seconds.
fn ready_to_drain(now: u64) -> SnapshotBuilder {
    signalled_at(0, now)
}

/// As [`ready_to_drain`], spot-0 signalled at `t(sig)` (a pool history can then be older
/// than the storm window while the signal is live).
fn signalled_at(sig: u64, now: u64) -> SnapshotBuilder {
    SnapshotBuilder::new(t(now))
        .group("spot", 1, 4, 10)
        .node("spot", "spot-r", |n| {
            n.created_at = t(sig + 60);
            n.protected_for = Some("spot-0".into());
            n.scale_down_disabled = true;
        })
        .entry("spot-0", t(sig), boosted)
        .with_node("spot-0", |n| {
            n.unschedulable = true;
            n.rebalance_taint = true;
            n.pods_to_evict = 12;
        })
}

fn cfg(drain_on: DrainOn) -> Config {
    Config {
        drain_on,
        ..Config::default()
    }
}

fn drain_reason(plan: &Plan) -> Option<Reason> {
    plan.actions.iter().find_map(|a| match a {
        Action::StartDrain { reason, .. } => Some(*reason),
        _ => None,
    })
}

fn held(plan: &Plan, reason: Reason) -> bool {
    plan.actions
        .iter()
        .any(|a| matches!(a, Action::Hold { reason: r, .. } if *r == reason))
}

fn outcome(plan: &Plan) -> Option<(SignalOutcome, Option<Dur>)> {
    plan.actions.iter().find_map(|a| match a {
        Action::RecordOutcome { outcome, lead, .. } => Some((*outcome, *lead)),
        _ => None,
    })
}

#[test]
fn rebalance_drains_once_the_replacement_is_ready_standby_waits() {
    let s = ready_to_drain(200).build();
    let plan = decide(&s, &cfg(DrainOn::Rebalance));
    assert_eq!(drain_reason(&plan), Some(Reason::ReplacementReady));
    let plan = decide(&s, &cfg(DrainOn::Interruption));
    assert_eq!(drain_reason(&plan), None, "{:?}", plan.actions);
    assert!(held(&plan, Reason::StandingBy), "{:?}", plan.actions);
    // The replacement stays protected while the node stands by.
    assert!(!plan
        .actions
        .iter()
        .any(|a| matches!(a, Action::Unprotect { .. })));
}

#[test]
fn standby_drains_at_the_interruption_notice_and_counts_the_interruption() {
    let s = ready_to_drain(400)
        .with_node("spot-0", |n| n.interruption_taint = true)
        .build();
    for drain_on in [DrainOn::Interruption, DrainOn::Adaptive, DrainOn::Rebalance] {
        let plan = decide(&s, &cfg(drain_on));
        assert_eq!(
            drain_reason(&plan),
            Some(Reason::InterruptionNotice),
            "{drain_on:?}: {:?}",
            plan.actions
        );
        assert_eq!(
            outcome(&plan),
            Some((SignalOutcome::Interrupted, Some(Dur::from_secs(400))))
        );
    }
}

#[test]
fn standby_gives_the_node_back_at_the_expiry_and_then_unprotects_the_replacement() {
    let expiry = Config::default().signal_expiry;
    let mut s = ready_to_drain(0).build();
    s.now = t(1).plus(expiry);
    let c = cfg(DrainOn::Interruption);
    let plan = decide(&s, &c);
    assert!(
        plan.actions.iter().any(|a| matches!(
            a,
            Action::Release {
                reason: Reason::SignalExpired,
                ..
            }
        )),
        "{:?}",
        plan.actions
    );
    assert_eq!(outcome(&plan), Some((SignalOutcome::NotInterrupted, None)));
    apply_plan(&mut s, &plan);
    assert_eq!(
        s.ledger.outcomes.pool(POOL).map(|p| p.not_interrupted),
        Some(1)
    );
    let next = decide(&s, &c);
    assert!(
        next.actions.iter().any(|a| matches!(
            a,
            Action::Unprotect { node, .. } if node == "spot-r"
        )),
        "{:?}",
        next.actions
    );
    assert_eq!(outcome(&next), None, "an outcome is counted once");
    assert!(
        !next
            .actions
            .iter()
            .any(|a| matches!(a, Action::SetDesired { .. })),
        "desired capacity is never lowered by the booster: Cluster Autoscaler removes a node"
    );
}

#[test]
fn an_instance_terminated_by_others_is_an_interruption_one_we_retired_is_unknown() {
    let gone = |retiring: bool| {
        SnapshotBuilder::new(t(300))
            .group("spot", 1, 4, 10)
            .entry("spot-0", t(0), move |e| {
                boosted(e);
                if retiring {
                    e.retiring = Some(t(250));
                }
            })
            .with_group("spot", |g| {
                if let Some(i) = g
                    .instances
                    .iter_mut()
                    .find(|i| i.id == instance_of("spot-0"))
                {
                    i.lifecycle = Lifecycle::Terminating;
                }
            })
            .build()
    };
    assert_eq!(
        outcome(&decide(&gone(false), &Config::default())),
        Some((SignalOutcome::Interrupted, Some(Dur::from_secs(300))))
    );
    assert_eq!(
        outcome(&decide(&gone(true), &Config::default())),
        Some((SignalOutcome::Unknown, None))
    );
    // Auto Scaling unreadable: the last known groups prove nothing.
    let mut s = gone(false);
    s.cloud_unavailable = Some("timeout".into());
    assert_eq!(outcome(&decide(&s, &Config::default())), None);
}

fn with_history(s: &mut Snapshot, outcomes: &[SignalOutcome], at: u64) {
    for o in outcomes {
        s.ledger.outcomes.record(
            POOL,
            "spot",
            Recent {
                at: t(at),
                outcome: *o,
                lead: None,
            },
        );
    }
}

#[test]
fn adaptive_stands_by_without_evidence_and_drains_on_each_kind_of_it() {
    use SignalOutcome::{Interrupted as I, NotInterrupted as N};
    let c = cfg(DrainOn::Adaptive);
    // No history: standby.
    let plan = decide(&ready_to_drain(200).build(), &c);
    assert!(held(&plan, Reason::StandingBy), "{:?}", plan.actions);

    // Mostly not interrupted: standby.
    let mut s = signalled_at(4800, 5000).build();
    with_history(&mut s, &[N, N, N, I, N, N], 100);
    assert!(held(&decide(&s, &c), Reason::StandingBy));

    // Mostly interrupted, enough outcomes: drained on the recommendation.
    let mut s = signalled_at(4800, 5000).build();
    with_history(&mut s, &[I, N, I, I, N, I], 100);
    assert_eq!(
        drain_reason(&decide(&s, &c)),
        Some(Reason::PoolFollowThrough)
    );

    // ...but not on fewer outcomes than the rule asks.
    let mut s = signalled_at(4800, 5000).build();
    with_history(&mut s, &[I, I], 100);
    assert!(held(&decide(&s, &c), Reason::StandingBy));

    // An interruption in the pool within the storm window.
    let mut s = ready_to_drain(400).build();
    with_history(&mut s, &[I], 300);
    assert_eq!(drain_reason(&decide(&s, &c)), Some(Reason::PoolInterrupted));

    // Three recommendations in the pool within the window: a storm.
    let storm = ready_to_drain(200)
        .entry("spot-1", t(60), boosted)
        .entry("spot-2", t(120), boosted)
        .build();
    assert_eq!(drain_reason(&decide(&storm, &c)), Some(Reason::PoolStorm));
    // The same three, spread wider than the window: no storm.
    let spread = Config {
        adaptive: AdaptiveRule {
            storm_window: Dur::from_secs(50),
            ..AdaptiveRule::default()
        },
        ..c.clone()
    };
    assert!(held(&decide(&storm, &spread), Reason::StandingBy));
}

#[test]
fn pools_are_named_from_the_instance_and_kept_bounded() {
    assert_eq!(pool_key("m5.large", "eu-west-1a"), "m5.large/eu-west-1a");
    assert_eq!(pool_key("", "eu-west-1a"), POOL);
    let mut o = booster_core::outcomes::Outcomes::default();
    for i in 0..(booster_core::outcomes::MAX_POOLS + 10) {
        o.record(
            &format!("p{i}/z"),
            "g",
            Recent {
                at: t(i as u64),
                outcome: SignalOutcome::NotInterrupted,
                lead: None,
            },
        );
    }
    assert_eq!(o.0.len(), booster_core::outcomes::MAX_POOLS);
    assert!(
        o.pool("p0/z").is_none(),
        "the pool heard from longest ago goes first"
    );
    let mut one = booster_core::outcomes::Outcomes::default();
    for i in 0..50 {
        one.record(
            POOL,
            "g",
            Recent {
                at: t(i),
                outcome: SignalOutcome::Interrupted,
                lead: Some(Dur::from_secs(i)),
            },
        );
    }
    let p = one.pool(POOL).expect("pool");
    assert_eq!(p.interrupted, 50);
    assert_eq!(p.recent.len(), booster_core::outcomes::RECENT_KEPT);
}

#[test]
fn a_new_signal_records_its_pool_from_the_instance() {
    let s = SnapshotBuilder::new(t(5))
        .group("spot", 1, 3, 10)
        .with_group("spot", |g| {
            for i in &mut g.instances {
                i.instance_type = "m5.large".into();
            }
        })
        .signal("spot-0", t(0))
        .build();
    let plan = decide(&s, &Config::default());
    let pool = plan.actions.iter().find_map(|a| match a {
        Action::RecordSignal { entry, .. } => Some(entry.pool.clone()),
        _ => None,
    });
    assert_eq!(pool.as_deref(), Some("m5.large/eu-west-1a"));
}

fn steer(plan: &Plan, node: &str) -> Option<bool> {
    plan.actions.iter().find_map(|a| match a {
        Action::Steer {
            node: n, standby, ..
        } if n == node => Some(*standby),
        _ => None,
    })
}

/// The standby taint: on the Ready replacement while its node stands by, off once the
/// node stops standing by (the notice, the expiry), and off any node that carries it
/// without a reason (here: a restart with `--drain-on rebalance`).
#[test]
fn a_replacement_held_for_a_standby_carries_the_standby_taint_until_the_node_moves() {
    let c = cfg(DrainOn::Interruption);
    let mut s = ready_to_drain(200).build();
    let plan = decide(&s, &c);
    assert_eq!(steer(&plan, "spot-r"), Some(true), "{:?}", plan.actions);
    assert_eq!(steer(&plan, "spot-1"), None, "only the replacement");
    apply_plan(&mut s, &plan);
    let again = decide(&s, &c);
    assert_eq!(steer(&again, "spot-r"), None, "written once");

    // The notice: the node drains now, its replacement is free to take its pods.
    let mut notice = s.clone();
    if let Some(n) = notice.nodes.iter_mut().find(|n| n.name == "spot-0") {
        n.interruption_taint = true;
    }
    let plan = decide(&notice, &c);
    assert_eq!(drain_reason(&plan), Some(Reason::InterruptionNotice));
    assert_eq!(steer(&plan, "spot-r"), Some(false), "{:?}", plan.actions);

    // The expiry: given back, and the taint goes with it.
    let mut expired = s.clone();
    expired.now = t(1).plus(Config::default().signal_expiry);
    let plan = decide(&expired, &c);
    assert_eq!(steer(&plan, "spot-r"), Some(false), "{:?}", plan.actions);

    // Draining on the recommendation: no replacement is held back.
    assert_eq!(
        steer(&decide(&s, &cfg(DrainOn::Rebalance)), "spot-r"),
        Some(false)
    );
    let fresh = ready_to_drain(200).build();
    assert_eq!(
        steer(&decide(&fresh, &cfg(DrainOn::Rebalance)), "spot-r"),
        None
    );

    // A replacement not Ready yet gets no taint: pods might need it as soon as it is.
    let booting = ready_to_drain(200)
        .with_node("spot-r", |n| n.ready = false)
        .build();
    assert_eq!(steer(&decide(&booting, &c), "spot-r"), None);
}
