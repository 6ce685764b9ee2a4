//! A boost recorded but not confirmed, with desired capacity back at its base: the raise
//! is sent again only on evidence that it did not take effect (DESIGN property 3: no second
//! boost for one signal). The evidence: the group's scaling activities, and answered
//! failures of this process's own call.

use booster_core::engine::{RAISE_SHOWS_WITHIN, RAISE_UNPROVEN_AFTER};
use booster_core::failures::{Failure, FailureClass, Write};
use booster_core::snapshot::Raise;
use booster_core::testkit::{apply_plan, t, SnapshotBuilder};
use booster_core::{decide, Action, Boost, Config, Reason, Snapshot, Timestamp};

/// spot-0's boost from 3 to 4 recorded at t(100); desired capacity stands at 3 at `now`.
fn recorded_at_100(now: Timestamp, activities_read: bool, raises: Vec<Raise>) -> Snapshot {
    SnapshotBuilder::new(now)
        .group("spot", 1, 3, 6)
        .with_group("spot", |g| {
            g.activities_read = activities_read;
            g.raises = raises;
        })
        .entry("spot-0", t(90), |e| {
            e.boost = Boost::Applying {
                from: 3,
                to: 4,
                at: t(100),
            }
        })
        .with_node("spot-0", |n| n.unschedulable = true)
        .build()
}

fn raises(plan: &booster_core::Plan) -> usize {
    plan.actions
        .iter()
        .filter(|a| matches!(a, Action::SetDesired { .. }))
        .count()
}

fn confirmed(plan: &booster_core::Plan) -> Option<(bool, Reason)> {
    plan.actions.iter().find_map(|a| match a {
        Action::ConfirmBoost {
            applied, reason, ..
        } => Some((*applied, *reason)),
        _ => None,
    })
}

fn holds(plan: &booster_core::Plan, reason: Reason) -> bool {
    plan.actions
        .iter()
        .any(|a| matches!(a, Action::Hold { reason: r, .. } if *r == reason))
}

#[test]
fn a_raise_in_the_activities_is_taken_as_done_and_never_sent_again() {
    // The call took effect (a crash hid its answer); Cluster Autoscaler removed another
    // node since, so desired capacity is back at 3.
    let raise = Raise {
        at: t(101),
        from: 3,
        to: 4,
    };
    let mut s = recorded_at_100(t(400), true, vec![raise]);
    let plan = decide(&s, &Config::default());
    assert_eq!(raises(&plan), 0, "{:?}", plan.actions);
    assert_eq!(
        confirmed(&plan),
        Some((true, Reason::RaiseSeenInActivities))
    );
    apply_plan(&mut s, &plan);
    assert!(
        matches!(
            s.ledger.entries["spot-0"].boost,
            Boost::Applied { assumed: true, .. }
        ),
        "somebody else's decrease is not ours to give back: no decrement at the retire"
    );
}

#[test]
fn a_raise_a_little_before_the_record_counts_but_an_old_one_does_not() {
    // AWS's clock may be behind ours by a few seconds.
    let skewed = Raise {
        at: t(70),
        from: 3,
        to: 4,
    };
    let plan = decide(
        &recorded_at_100(t(400), true, vec![skewed]),
        &Config::default(),
    );
    assert_eq!(
        confirmed(&plan),
        Some((true, Reason::RaiseSeenInActivities))
    );
    // An hour-old raise from 3 is another boost's, and a raise from another base is not ours.
    let old = Raise {
        at: t(1),
        from: 3,
        to: 4,
    };
    let other_base = Raise {
        at: t(150),
        from: 2,
        to: 3,
    };
    let s = recorded_at_100(t(400), true, vec![other_base, old]);
    let plan = decide(&s, &Config::default());
    assert_eq!(raises(&plan), 1, "{:?}", plan.actions);
}

#[test]
fn no_raise_in_the_activities_is_proof_only_once_it_would_show() {
    let cfg = Config::default();
    // Too early: a raise that took effect may not show yet.
    let early = t(100).plus(RAISE_SHOWS_WITHIN);
    let soon = Timestamp::from_unix_millis(early.unix_millis() - 1_000);
    let plan = decide(&recorded_at_100(soon, true, vec![]), &cfg);
    assert_eq!(raises(&plan), 0, "{:?}", plan.actions);
    assert!(holds(&plan, Reason::RaiseUnconfirmed), "{:?}", plan.actions);
    assert_eq!(plan.next_wakeup, Some(early), "woken when it would show");
    // Then it did not take effect: sent.
    let plan = decide(&recorded_at_100(early, true, vec![]), &cfg);
    assert_eq!(raises(&plan), 1, "{:?}", plan.actions);
}

#[test]
fn unreadable_activities_wait_then_take_the_boost_as_done() {
    let cfg = Config::default();
    let plan = decide(&recorded_at_100(t(200), false, vec![]), &cfg);
    assert_eq!(raises(&plan), 0, "{:?}", plan.actions);
    assert!(holds(&plan, Reason::RaiseUnconfirmed));
    let limit = t(100).plus(RAISE_UNPROVEN_AFTER);
    assert_eq!(plan.next_wakeup, Some(limit));
    let mut s = recorded_at_100(limit, false, vec![]);
    let plan = decide(&s, &cfg);
    assert_eq!(raises(&plan), 0, "never a second boost on no evidence");
    assert_eq!(confirmed(&plan), Some((true, Reason::RaiseUnproven)));
    apply_plan(&mut s, &plan);
    assert!(matches!(
        s.ledger.entries["spot-0"].boost,
        Boost::Applied { assumed: true, .. }
    ));
}

fn failed(class: FailureClass, at: Timestamp) -> Failure {
    Failure {
        write: Write::SetDesired,
        subject: "spot".into(),
        class,
        failures: 1,
        refusals: u32::from(class == FailureClass::Refused),
        since: at,
        last_at: at,
        error: "SetDesiredCapacity spot: failed".into(),
    }
}

#[test]
fn an_answered_failure_of_our_call_proves_it_did_not_happen() {
    let cfg = Config::default();
    for class in [
        FailureClass::Throttled,
        FailureClass::Busy,
        FailureClass::Conflict,
        FailureClass::Refused,
    ] {
        // Past its backoff, well before the activities would tell.
        let mut s = recorded_at_100(t(140), false, vec![]);
        s.failures = vec![failed(class, t(101))];
        let plan = decide(&s, &cfg);
        assert_eq!(raises(&plan), 1, "{class:?}: {:?}", plan.actions);
    }
    // No answer (a timeout, a lost reply) proves nothing: it may have taken effect.
    let mut s = recorded_at_100(t(140), true, vec![]);
    s.failures = vec![failed(FailureClass::Unavailable, t(101))];
    let plan = decide(&s, &cfg);
    assert_eq!(raises(&plan), 0, "{:?}", plan.actions);
    assert!(holds(&plan, Reason::RaiseUnconfirmed));
    // An answered failure before the record is an earlier boost's.
    let mut s = recorded_at_100(t(140), true, vec![]);
    s.failures = vec![failed(FailureClass::Throttled, t(99))];
    assert_eq!(raises(&decide(&s, &cfg)), 0);
}
