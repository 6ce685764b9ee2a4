//! The failure policy: failed writes come back as input, the engine backs each one off by
//! its class and gives a signal back after repeated refusals. Each test drives passes
//! every 2 s of virtual time (the loop's pace under a watch storm) through a world whose
//! writes fail as the test says, and counts what was sent.

use booster_core::exec::{Effect, Executed, Outcome};
use booster_core::failure_log::{FailureLog, FORGET_AFTER};
use booster_core::failures::{FailureClass, Write};
use booster_core::ports::PortError;
use booster_core::testkit::{
    apply_plan, expired_and_drained, most_in_a_minute, t, SnapshotBuilder,
};
use booster_core::{decide, Action, Boost, Config, Dur, Reason, Snapshot, Timestamp};

/// One pass at `s.now`: decide on the snapshot with the log's records, execute in the
/// world as `fail` says (a write it names fails with its error, every other one goes
/// through), note the outcomes. Returns the plan.
fn pass(
    s: &mut Snapshot,
    cfg: &Config,
    log: &mut FailureLog,
    fail: &dyn Fn(&Action) -> Option<PortError>,
) -> booster_core::Plan {
    s.failures = log.records();
    let plan = decide(s, cfg);
    let mut executed = Executed::default();
    // What went through, and the ledger part of failed writes the executor stores ahead
    // of their call.
    let mut done = booster_core::Plan::default();
    for (index, a) in plan.actions.iter().enumerate() {
        let result = match fail(a) {
            Some(e) => {
                if matches!(
                    a,
                    Action::Retire { .. } | Action::Place { .. } | Action::DeleteNodeClaim { .. }
                ) {
                    s.ledger.apply(a);
                }
                Err(e)
            }
            None => {
                done.actions.push(a.clone());
                Ok(Effect::Done)
            }
        };
        executed.outcomes.push(Outcome { index, result });
    }
    apply_plan(s, &done);
    log.note(&plan, &executed, s.now);
    plan
}

fn sends(plan: &booster_core::Plan, kind: &str) -> usize {
    plan.actions.iter().filter(|a| a.kind() == kind).count()
}

fn refused_set_desired(a: &Action) -> Option<PortError> {
    matches!(a, Action::SetDesired { .. }).then(|| {
        PortError::Forbidden("SetDesiredCapacity spot: AccessDenied: not authorized".into())
    })
}

/// A group of three, spot-0 signalled at t(90), now t(100).
fn one_signal() -> Snapshot {
    SnapshotBuilder::new(t(100))
        .group("spot", 1, 3, 6)
        .signal("spot-0", t(90))
        .build()
}

#[test]
fn a_refused_boost_is_backed_off_then_given_up_and_the_node_given_back() {
    let cfg = Config::default();
    let mut s = one_signal();
    let mut log = FailureLog::default();
    let mut sent = Vec::new();
    let mut given_back = None;
    for _ in 0..300 {
        let plan = pass(&mut s, &cfg, &mut log, &refused_set_desired);
        for _ in 0..sends(&plan, "setDesired") {
            sent.push(s.now);
        }
        if given_back.is_none()
            && plan.actions.iter().any(|a| {
                matches!(a, Action::Release { node, reason: Reason::BoostRefused, .. } if node == "spot-0")
            })
        {
            given_back = Some(s.now);
        }
        // The plan names its own wake-up while a write backs off.
        if plan.actions.iter().any(|a| {
            matches!(
                a,
                Action::Hold {
                    reason: Reason::WriteBackingOff,
                    ..
                }
            )
        }) {
            assert!(plan.next_wakeup.is_some_and(|w| w > s.now));
        }
        s.now = s.now.plus(Dur::from_secs(2));
    }
    assert_eq!(
        sent.len() as u32,
        cfg.refusals_before_give_up,
        "sent at {sent:?}"
    );
    for w in sent.windows(2) {
        // 30 s doubling, spread by at most a quarter.
        assert!(w[1].since(w[0]) >= Dur::from_millis(22_500), "{sent:?}");
    }
    assert!(most_in_a_minute(&sent) <= 2, "{sent:?}");
    let at = given_back.expect("the node is given back");
    assert!(at.since(t(100)) < Dur::from_mins(3), "given back at {at}");
    let e = &s.ledger.entries["spot-0"];
    assert_eq!(
        e.boost,
        Boost::Abandoned {
            reason: Reason::BoostRefused
        }
    );
    assert!(e.released_at.is_some());
    let node = s.nodes.iter().find(|n| n.name == "spot-0").expect("node");
    assert!(!node.unschedulable, "given back means uncordoned");
    assert_eq!(s.groups[0].desired, 3, "nothing raised");
}

#[test]
fn throttling_slows_the_boost_down_and_never_stops_it() {
    let cfg = Config::default();
    let mut s = one_signal();
    let mut log = FailureLog::default();
    let mut sent = Vec::new();
    // Throttled for 15 minutes, then answered.
    let until = t(100).plus(Dur::from_mins(15));
    for _ in 0..600 {
        let now = s.now;
        let throttled = move |a: &Action| {
            (matches!(a, Action::SetDesired { .. }) && now < until).then(|| {
                PortError::Throttled("SetDesiredCapacity spot: Throttling: Rate exceeded".into())
            })
        };
        let plan = pass(&mut s, &cfg, &mut log, &throttled);
        for _ in 0..sends(&plan, "setDesired") {
            sent.push(s.now);
        }
        s.now = s.now.plus(Dur::from_secs(2));
        if s.groups[0].desired == 4 {
            break;
        }
    }
    assert_eq!(s.groups[0].desired, 4, "raised once AWS answered");
    assert!(matches!(
        s.ledger.entries["spot-0"].boost,
        Boost::Applied { assumed: false, .. }
    ));
    for w in sent.windows(2) {
        assert!(w[1].since(w[0]) >= Dur::from_millis(3_750), "{sent:?}");
    }
    // Capped at 2 minutes (spread to 90..150 s): steady state is about one try a
    // minute and a half, far from the pass rate of 30 a minute.
    let steady: Vec<Timestamp> = sent
        .iter()
        .copied()
        .filter(|at| at.since(t(100)) > Dur::from_mins(5))
        .collect();
    assert!(most_in_a_minute(&steady) <= 1, "{sent:?}");
    assert!(sent.len() < 20, "{} sends: {sent:?}", sent.len());
}

#[test]
fn a_refused_retire_of_an_expired_drained_node_ends_in_a_give_back() {
    let cfg = Config::default();
    let mut s = expired_and_drained();
    let mut log = FailureLog::default();
    let refuse = |a: &Action| {
        matches!(a, Action::Retire { .. }).then(|| {
            PortError::Forbidden("TerminateInstanceInAutoScalingGroup: AccessDenied".into())
        })
    };
    let mut sent = Vec::new();
    for _ in 0..300 {
        let plan = pass(&mut s, &cfg, &mut log, &refuse);
        for _ in 0..sends(&plan, "retire") {
            sent.push(s.now);
        }
        s.now = s.now.plus(Dur::from_secs(2));
    }
    assert_eq!(sent.len() as u32, cfg.refusals_before_give_up, "{sent:?}");
    let e = &s.ledger.entries["spot-0"];
    assert!(e.released_at.is_some(), "given back");
    let node = s.nodes.iter().find(|n| n.name == "spot-0").expect("node");
    assert!(!node.unschedulable, "not cordoned for good");
}

#[test]
fn a_retire_that_went_out_is_sent_again_a_minute_after_the_last_not_every_pass() {
    let cfg = Config::default();
    let mut s = expired_and_drained();
    let mut log = FailureLog::default();
    // Accepted, but the instance never shows as leaving (AWS lost it, say).
    let mut sent = Vec::new();
    for _ in 0..150 {
        let plan = pass(&mut s, &cfg, &mut log, &|_| None);
        for _ in 0..sends(&plan, "retire") {
            sent.push(s.now);
        }
        s.now = s.now.plus(Dur::from_secs(2));
    }
    assert!(sent.len() >= 4, "{sent:?}");
    for w in sent.windows(2) {
        assert!(w[1].since(w[0]) >= Dur::from_secs(60), "{sent:?}");
    }
}

#[test]
fn refusals_of_an_earlier_signal_do_not_give_a_new_one_up_unsent() {
    let cfg = Config::default();
    let mut s = SnapshotBuilder::new(t(1000))
        .group("spot", 1, 3, 6)
        .signal("spot-1", t(995))
        .build();
    // The group refused three times, the last long before this signal.
    let mut log = FailureLog::default();
    let plan = booster_core::Plan {
        actions: vec![Action::SetDesired {
            group: "spot".into(),
            from: 3,
            to: 4,
            nodes: vec!["spot-0".into()],
            reason: Reason::BoostRecorded,
        }],
        ..booster_core::Plan::default()
    };
    let refused = Executed {
        outcomes: vec![Outcome {
            index: 0,
            result: Err(PortError::Forbidden("AccessDenied".into())),
        }],
        ..Executed::default()
    };
    for at in [t(100), t(130), t(190)] {
        log.note(&plan, &refused, at);
    }
    s.failures = log.records();
    let first = decide(&s, &cfg);
    assert!(
        first
            .actions
            .iter()
            .any(|a| matches!(a, Action::SetDesired { .. })),
        "{:?}",
        first.actions
    );
}

#[test]
fn the_log_counts_in_a_row_and_forgets() {
    let plan = booster_core::Plan {
        actions: vec![Action::Cordon {
            node: "n".into(),
            reason: Reason::SignalledNodeSchedulable,
        }],
        ..booster_core::Plan::default()
    };
    let with = |r: Result<Effect, PortError>| Executed {
        outcomes: vec![Outcome {
            index: 0,
            result: r,
        }],
        ..Executed::default()
    };
    let mut log = FailureLog::default();
    log.note(&plan, &with(Err(PortError::Forbidden("403".into()))), t(0));
    log.note(&plan, &with(Err(PortError::Forbidden("403".into()))), t(10));
    let f = &log.records()[0];
    assert_eq!((f.write, f.failures, f.refusals), (Write::Cordon, 2, 2));
    assert_eq!(f.since, t(0));
    // Another class starts the refusals again; the failures go on counting.
    log.note(&plan, &with(Err(PortError::Throttled("429".into()))), t(20));
    let f = &log.records()[0];
    assert_eq!(
        (f.class, f.failures, f.refusals),
        (FailureClass::Throttled, 3, 0)
    );
    // A huge error page is cut.
    log.note(
        &plan,
        &with(Err(PortError::Unavailable("x".repeat(100_000)))),
        t(30),
    );
    assert!(log.records()[0].error.len() <= booster_core::failures::ERROR_CHARS);
    // A write that went through is forgotten at once.
    log.note(&plan, &with(Ok(Effect::Done)), t(40));
    assert!(log.is_empty());
    // A record nothing touches is forgotten after FORGET_AFTER.
    log.note(&plan, &with(Err(PortError::Busy("busy".into()))), t(50));
    log.note(
        &booster_core::Plan::default(),
        &Executed::default(),
        t(50).plus(FORGET_AFTER),
    );
    assert!(log.is_empty());
}

#[test]
fn backoff_doubles_per_failure_and_is_capped_with_a_spread() {
    let mk = |class, failures| booster_core::failures::Failure {
        write: Write::SetDesired,
        subject: "spot".into(),
        class,
        failures,
        refusals: 0,
        since: t(0),
        last_at: t(0),
        error: String::new(),
    };
    for class in [
        FailureClass::Refused,
        FailureClass::Throttled,
        FailureClass::Conflict,
        FailureClass::Busy,
        FailureClass::Unavailable,
    ] {
        let (first, cap) = class.backoff();
        for n in 1..40 {
            let wait = mk(class, n).retry_at().since(t(0));
            let ideal = first
                .as_millis()
                .saturating_mul(1 << (n - 1).min(20))
                .min(cap.as_millis());
            assert!(
                wait.as_millis() >= ideal * 3 / 4 && wait.as_millis() <= ideal * 5 / 4,
                "{class:?} after {n}: {wait}"
            );
        }
    }
}
