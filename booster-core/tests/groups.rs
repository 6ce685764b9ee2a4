//! Auto Scaling groups as production runs them, over several passes: fallback boosts, the
//! AZRebalance and Capacity Rebalancing warnings, weighted give-backs.

use booster_core::snapshot::LaunchFailure;
use booster_core::testkit::{apply_plan as apply, mk_instance, mk_node, t, SnapshotBuilder};
use booster_core::{decide, Action, Boost, Config, Plan, Reason};

fn lines(p: &Plan) -> Vec<String> {
    p.actions.iter().map(ToString::to_string).collect()
}

/// spot-a cannot launch (a failure 2 minutes ago), its fallback on-demand can.
fn dry_pool(now: u64) -> SnapshotBuilder {
    SnapshotBuilder::new(t(now))
        .group("spot-a", 1, 3, 10)
        .group("ondemand", 0, 1, 5)
        .with_group("spot-a", |g| {
            g.launch_failures.push(LaunchFailure {
                at: t(now - 120),
                message: "InsufficientInstanceCapacity: no spot capacity".into(),
            })
        })
}

fn with_fallback() -> Config {
    let mut c = Config::default();
    c.fallback_groups
        .insert("spot-a".into(), vec!["missing".into(), "ondemand".into()]);
    c
}

#[test]
fn a_group_that_cannot_launch_is_replaced_from_its_fallback_and_retired_without_decrement() {
    let cfg = with_fallback();
    let mut s = dry_pool(300).signal("spot-a-0", t(290)).build();
    let p = decide(&s, &cfg);
    // The raise goes to the fallback group, never to the one that cannot launch.
    assert_eq!(
        lines(&p),
        [
            "recordSignal spot-a-0 applying:1->2 in ondemand (newSignal)",
            "setDesired ondemand 1->2 (boostRecorded)"
        ]
    );
    assert!(p
        .warnings
        .iter()
        .any(|w| w.group == "spot-a" && w.reason == Reason::FallbackBoost));
    apply(&mut s, &p);
    assert_eq!(s.groups[0].desired, 3, "spot-a untouched");
    assert_eq!(s.groups[1].desired, 2, "ondemand raised");
    // The fallback's new node is the replacement: protected, then the drain starts.
    let mut rep = mk_node("ondemand-new", t(330));
    rep.instance_id = Some("i-ondemandnew".into());
    s.nodes.push(rep);
    s.groups[1].instances.push(mk_instance("i-ondemandnew"));
    s.now = t(340);
    let p = decide(&s, &cfg);
    assert!(
        lines(&p).contains(&"protect ondemand-new for spot-a-0 (replacementLaunched)".to_string()),
        "{:?}",
        lines(&p)
    );
    apply(&mut s, &p);
    let p = decide(&s, &cfg);
    assert!(
        lines(&p).contains(&"startDrain spot-a-0 #1 (replacementReady)".to_string()),
        "{:?}",
        lines(&p)
    );
    apply(&mut s, &p);
    // Drained: retired in its own group, without decrement (its desired was never raised).
    s.nodes[0].pods_to_evict = 0;
    s.now = t(400);
    let p = decide(&s, &cfg);
    assert!(
        lines(&p).contains(&"retire spot-a-0 keep-desired (drainComplete)".to_string()),
        "{:?}",
        lines(&p)
    );
    let retire = p
        .actions
        .iter()
        .find(|a| matches!(a, Action::Retire { .. }))
        .expect("retire");
    assert_eq!(retire.group(), Some("spot-a"));
}

#[test]
fn without_a_fallback_that_can_launch_the_signal_waits() {
    // The fallback group is itself failing.
    let s = dry_pool(300)
        .signal("spot-a-0", t(290))
        .with_group("ondemand", |g| {
            g.suspended_processes.insert("Launch".into());
        })
        .build();
    let p = decide(&s, &with_fallback());
    assert_eq!(
        lines(&p),
        [
            "recordSignal spot-a-0 queued:launchFailing (newSignal)",
            "hold spot-a-0 (launchFailing)"
        ]
    );
    // Each fallback passed over is named with its own reason.
    assert!(p
        .warnings
        .iter()
        .any(|w| w.group == "ondemand" && w.reason == Reason::LaunchSuspended));
    // One cluster-autoscaler does not manage is said to be that, not a launch problem.
    let mut s = s;
    if let booster_core::CaObservation::Parsed { status, .. } = &mut s.ca_status {
        status.node_groups.retain(|g| g.name != "ondemand");
    }
    let p = decide(&s, &with_fallback());
    assert!(
        p.warnings
            .iter()
            .any(|w| w.group == "ondemand" && w.reason == Reason::GroupNotInCaStatus),
        "{:?}",
        p.warnings
    );
    // Once the failure is older than the backoff, the own group is boosted again.
    let s = dry_pool(300).signal("spot-a-0", t(290)).build();
    let cfg = Config {
        launch_failure_backoff: booster_core::Dur::from_secs(60),
        ..Config::default()
    };
    assert_eq!(
        lines(&decide(&s, &cfg)),
        [
            "recordSignal spot-a-0 applying:3->4 (newSignal)",
            "setDesired spot-a 3->4 (boostRecorded)"
        ]
    );
}

#[test]
fn a_fallback_named_by_tag_is_used_too() {
    let s = dry_pool(300)
        .signal("spot-a-0", t(290))
        .with_group("spot-a", |g| {
            g.tags.insert(
                booster_core::config::FALLBACK_TAG.into(),
                " ondemand ".into(),
            );
        })
        .build();
    assert_eq!(
        lines(&decide(&s, &Config::default())),
        [
            "recordSignal spot-a-0 applying:1->2 in ondemand (newSignal)",
            "setDesired ondemand 1->2 (boostRecorded)"
        ]
    );
}

#[test]
fn retiring_in_a_zone_balanced_group_warns_about_az_rebalance_once_suspended_no_more() {
    let base = || {
        SnapshotBuilder::new(t(1000))
            .group("spot", 1, 4, 10)
            .entry("spot-0", t(0), |e| {
                e.boost = Boost::Applied {
                    to: 4,
                    at: t(10),
                    assumed: false,
                };
                e.drain = booster_core::DrainState::Draining {
                    since: t(900),
                    attempt: 1,
                };
            })
            .with_node("spot-0", |n| n.pods_to_evict = 0)
    };
    let two_zones =
        |g: &mut booster_core::Group| g.azs = vec!["eu-west-1a".into(), "eu-west-1b".into()];
    let p = decide(
        &base().with_group("spot", two_zones).build(),
        &Config::default(),
    );
    assert!(lines(&p).contains(&"retire spot-0 decrement (drainComplete)".to_string()));
    assert_eq!(p.warnings.len(), 1);
    assert_eq!(p.warnings[0].reason, Reason::AzRebalanceActive);
    assert_eq!(p.warnings[0].node, "spot-0");
    let suspended = base()
        .with_group("spot", two_zones)
        .with_group("spot", |g| {
            g.suspended_processes.insert("AZRebalance".into());
        })
        .build();
    assert!(decide(&suspended, &Config::default()).warnings.is_empty());
    // One zone: nothing to rebalance.
    assert!(decide(&base().build(), &Config::default())
        .warnings
        .is_empty());
}

#[test]
fn a_capacity_rebalancing_group_never_gets_a_raise_whatever_happens() {
    let mut s = SnapshotBuilder::new(t(100))
        .group("mng", 1, 3, 10)
        .with_group("mng", |g| {
            g.capacity_rebalance = true;
            g.tags.insert("eks:nodegroup-name".into(), "spot".into());
        })
        .signal("mng-0", t(90))
        .build();
    let cfg = Config::default();
    for step in 0..40 {
        let p = decide(&s, &cfg);
        assert!(
            !p.actions.iter().any(|a| matches!(
                a,
                Action::SetDesired { .. }
                    | Action::BeginBoost { .. }
                    | Action::StartDrain { .. }
                    | Action::Retire { .. }
            )),
            "step {step}: {:?}",
            lines(&p)
        );
        if step == 0 {
            assert!(p
                .warnings
                .iter()
                .any(|w| w.reason == Reason::CapacityRebalance));
        }
        apply(&mut s, &p);
        s.now = s.now.plus(booster_core::Dur::from_mins(1));
    }
    // Expired after 30 minutes: NTH's cordon and taint are given back.
    assert!(s.ledger.entries["mng-0"].released_at.is_some());
    assert!(!s.nodes[0].unschedulable && !s.nodes[0].rebalance_taint);
}

/// The booster's own protection is taken back even when the replacement's group was ignored
/// after it was set: `scale-down-disabled` is never left for good.
#[test]
fn a_protection_is_taken_back_even_in_a_group_ignored_since() {
    let s = SnapshotBuilder::new(t(100))
        .group("spot", 1, 3, 6)
        .with_node("spot-2", |n| {
            n.protected_for = Some("spot-9".into());
            n.scale_down_disabled = true;
        })
        .build();
    let mut cfg = Config::default();
    cfg.ignored_groups.insert("spot".into());
    let p = decide(&s, &cfg);
    assert!(
        p.actions
            .iter()
            .any(|a| matches!(a, Action::Unprotect { node, .. } if node == "spot-2")),
        "{:?}",
        lines(&p)
    );
}
