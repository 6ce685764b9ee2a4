//! A placeholder set made in part (a create refused half-way, a pod deleted by hand) is
//! completed, and the drain waits for the whole set to run.

use booster_core::testkit::{t, SnapshotBuilder};
use booster_core::{decide, Action, Boost, BoostMode, Config, Placeholders, Snapshot};

/// spot-0 signalled, its placeholders recorded; a set of `pods` out of `wanted`, all
/// running on the new node spot-3.
fn with_set(pods: u32, wanted: u32) -> Snapshot {
    let mut s = SnapshotBuilder::new(t(100))
        .group("spot", 1, 4, 6)
        .entry("spot-0", t(10), |e| {
            e.boost = Boost::Placeholders { at: t(20) }
        })
        .with_node("spot-0", |n| {
            n.unschedulable = true;
            n.pods_to_evict = 3;
        })
        .with_node("spot-3", |n| n.created_at = t(50))
        .build();
    s.placeholders = vec![Placeholders {
        node: "spot-0".into(),
        signal_at: t(10),
        pods,
        wanted,
        running: pods,
        hosts: vec!["spot-3".into()],
    }];
    s
}

fn cfg() -> Config {
    Config {
        boost_mode: BoostMode::Placeholder,
        ..Config::default()
    }
}

#[test]
fn a_set_short_of_pods_is_completed_and_its_drain_waits() {
    let plan = decide(&with_set(2, 3), &cfg());
    assert!(
        plan.actions
            .iter()
            .any(|a| matches!(a, Action::Place { node, .. } if node == "spot-0")),
        "{:?}",
        plan.actions
    );
    assert!(
        !plan
            .actions
            .iter()
            .any(|a| matches!(a, Action::StartDrain { .. })),
        "{:?}",
        plan.actions
    );
}

#[test]
fn a_whole_set_running_starts_the_drain_and_is_not_placed_again() {
    let plan = decide(&with_set(3, 3), &cfg());
    assert!(
        plan.actions
            .iter()
            .any(|a| matches!(a, Action::StartDrain { node, .. } if node == "spot-0")),
        "{:?}",
        plan.actions
    );
    assert!(!plan
        .actions
        .iter()
        .any(|a| matches!(a, Action::Place { .. })));
}

#[test]
fn a_set_of_an_older_version_counts_what_it_has() {
    // No set size on its pods (wanted 0): taken as whole, as before.
    let plan = decide(&with_set(2, 0), &cfg());
    assert!(plan
        .actions
        .iter()
        .any(|a| matches!(a, Action::StartDrain { .. })));
}
