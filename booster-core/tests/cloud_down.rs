//! Auto Scaling does not answer: the engine decides on the last groups it described, holds
//! every step that needs AWS and goes on with the Kubernetes-only ones.

use booster_core::testkit::{t, SnapshotBuilder};
use booster_core::{decide, Action, Boost, Config, DrainState, Plan, Reason, Snapshot};

const NOW: u64 = 10_000;

fn world(f: impl FnOnce(SnapshotBuilder) -> SnapshotBuilder) -> Snapshot {
    f(SnapshotBuilder::new(t(NOW)).group("spot-a", 1, 4, 10)).build()
}

/// The plan with AWS down, and with it answering.
fn both(s: &Snapshot) -> (Plan, Plan) {
    let cfg = Config::default();
    let mut down = s.clone();
    down.cloud_unavailable = Some("unavailable: DescribeAutoScalingGroups: timed out".into());
    (decide(&down, &cfg), decide(s, &cfg))
}

fn lines(p: &Plan) -> Vec<String> {
    p.actions.iter().map(ToString::to_string).collect()
}

fn needs_aws(a: &Action) -> bool {
    matches!(
        a,
        Action::SetDesired { .. }
            | Action::Retire { .. }
            | Action::BeginBoost { .. }
            | Action::ConfirmBoost { .. }
    ) || matches!(a, Action::RecordSignal { entry, .. } if matches!(entry.boost, Boost::Applying { .. }))
}

fn held(p: &Plan, node: &str) -> bool {
    p.actions.iter().any(
        |a| matches!(a, Action::Hold { node: n, reason: Reason::CloudUnavailable } if n == node),
    )
}

#[test]
fn a_new_signal_is_recorded_and_its_boost_waits_for_aws() {
    let s = world(|b| b.signal("spot-a-0", t(NOW - 5)));
    let (down, up) = both(&s);
    assert!(up.actions.iter().any(needs_aws), "{:?}", lines(&up));
    assert!(!down.actions.iter().any(needs_aws), "{:?}", lines(&down));
    assert!(
        down.actions
            .iter()
            .any(|a| matches!(a, Action::RecordSignal { entry, .. }
            if entry.boost == Boost::Queued { reason: Reason::CloudUnavailable })),
        "{:?}",
        lines(&down)
    );
}

#[test]
fn a_boost_being_applied_and_a_retire_wait_for_aws() {
    let s = world(|b| {
        // Recorded long enough ago for the scaling activities to show the raise, which they
        // do not: with AWS up, it is sent again.
        b.signal("spot-a-3", t(NOW - 100))
            .entry("spot-a-3", t(NOW - 100), |e| {
                e.boost = Boost::Applying {
                    from: 4,
                    to: 5,
                    at: t(NOW - 90),
                };
            })
            .with_group("spot-a", |g| g.activities_read = true)
            .with_node("spot-a-3", |n| n.unschedulable = true)
    });
    let (down, up) = both(&s);
    assert!(up.actions.iter().any(needs_aws), "{:?}", lines(&up));
    assert!(!down.actions.iter().any(needs_aws), "{:?}", lines(&down));
    assert!(held(&down, "spot-a-3"), "{:?}", lines(&down));

    let s = world(|b| {
        b.signal("spot-a-1", t(NOW - 300))
            .entry("spot-a-1", t(NOW - 300), |e| {
                e.boost = Boost::Applied {
                    to: 4,
                    at: t(NOW - 290),
                    assumed: false,
                };
                e.drain = DrainState::Draining {
                    since: t(NOW - 100),
                    attempt: 1,
                };
            })
            .with_node("spot-a-1", |n| n.unschedulable = true)
    });
    let (down, up) = both(&s);
    assert!(
        up.actions
            .iter()
            .any(|a| matches!(a, Action::Retire { .. })),
        "{:?}",
        lines(&up)
    );
    assert!(!down.actions.iter().any(needs_aws), "{:?}", lines(&down));
    assert!(held(&down, "spot-a-1"), "{:?}", lines(&down));
}

#[test]
fn a_give_back_goes_on_with_aws_down() {
    let expiry = Config::default().signal_expiry.as_millis() / 1000;
    let at = t(NOW - expiry - 10);
    let s = world(|b| {
        b.signal("spot-a-2", at)
            .entry("spot-a-2", at, |e| {
                e.boost = Boost::Abandoned {
                    reason: Reason::AtMaxSize,
                };
            })
            .with_node("spot-a-2", |n| n.unschedulable = true)
    });
    let (down, _) = both(&s);
    assert!(
        down.actions
            .iter()
            .any(|a| matches!(a, Action::Release { node, .. } if node == "spot-a-2")),
        "{:?}",
        lines(&down)
    );
}
