//! State that survives people: a Node name that comes back on another machine, a ledger
//! that is deleted after a boost.

use booster_core::testkit::{instance_of, t, SnapshotBuilder};
use booster_core::{decide, Action, Boost, Config, DrainState, Reason};

fn lines(p: &booster_core::Plan) -> Vec<String> {
    p.actions.iter().map(ToString::to_string).collect()
}

/// An entry of `spot-a-0`'s previous machine (retired, its instance gone), while a new
/// instance runs under the same Node name.
fn reused_name(now: u64) -> SnapshotBuilder {
    SnapshotBuilder::new(t(now))
        .group("spot-a", 1, 3, 10)
        .entry("spot-a-0", t(now - 300), |e| {
            e.instance_id = "i-0ld0ld0ld0ld0ld0".into();
            e.boost = Boost::Applied {
                to: 4,
                at: t(now - 295),
                assumed: false,
            };
            e.drain = DrainState::Draining {
                since: t(now - 200),
                attempt: 1,
            };
            e.retiring = Some(t(now - 100));
        })
}

#[test]
fn a_node_that_reuses_a_retired_nodes_name_is_not_taken_for_it() {
    let s = reused_name(1000).build();
    let p = decide(&s, &Config::default());
    let l = lines(&p);
    assert!(
        p.actions
            .iter()
            .any(|a| matches!(a, Action::Forget { node, .. } if node == "spot-a-0")),
        "the old machine's entry is forgotten: {l:?}"
    );
    assert!(
        !p.actions.iter().any(|a| matches!(
            a,
            Action::Cordon { .. }
                | Action::StartDrain { .. }
                | Action::Retire { .. }
                | Action::Release { .. }
        )),
        "nothing is done to the new machine for the old one's signal: {l:?}"
    );
}

#[test]
fn a_signal_on_a_node_that_reuses_a_name_is_a_new_signal() {
    let s = reused_name(1000).signal("spot-a-0", t(990)).build();
    let p = decide(&s, &Config::default());
    let l = lines(&p);
    let recorded = p.actions.iter().find_map(|a| match a {
        Action::RecordSignal { node, entry, .. } if node == "spot-a-0" => Some(entry),
        _ => None,
    });
    let entry = recorded.unwrap_or_else(|| panic!("a new entry for the new machine: {l:?}"));
    assert_eq!(entry.instance_id, instance_of("spot-a-0"));
    assert_eq!(entry.signal_at, t(990));
    assert!(
        matches!(entry.boost, Boost::Applying { from: 3, to: 4, .. }),
        "boosted as any new signal: {l:?}"
    );
    assert!(
        p.actions.iter().any(|a| matches!(
            a,
            Action::RecordSignal {
                reason: Reason::NewSignal,
                ..
            }
        )),
        "{l:?}"
    );
    assert!(
        !p.actions.iter().any(|a| matches!(
            a,
            Action::Hold {
                reason: Reason::RetireInFlight,
                ..
            }
        )),
        "{l:?}"
    );
}

/// After a boost of `spot-a-0` (desired 3 → 4, its replacement `spot-a-9` protected for
/// it), the ledger is deleted: only the Node's boost mark remains.
fn ledger_deleted_after_boost(now: u64) -> booster_core::Snapshot {
    let mut s = SnapshotBuilder::new(t(now))
        .group("spot-a", 1, 3, 10)
        .signal("spot-a-0", t(now - 60))
        .entry("spot-a-0", t(now - 60), |e| {
            e.boost = Boost::Applying {
                from: 3,
                to: 4,
                at: t(now - 55),
            };
        })
        .with_group("spot-a", |g| g.desired = 4)
        .node("spot-a", "spot-a-9", |n| {
            n.created_at = t(now - 20);
            n.scale_down_disabled = true;
            n.protected_for = Some("spot-a-0".into());
        })
        .with_node("spot-a-0", |n| n.unschedulable = true)
        .build();
    let mark = s.ledger.entries.remove("spot-a-0");
    if let Some(n) = s.nodes.iter_mut().find(|n| n.name == "spot-a-0") {
        n.boost_mark = mark;
    }
    s
}

#[test]
fn a_deleted_ledger_is_rebuilt_from_the_boost_marks_and_nothing_is_boosted_twice() {
    let s = ledger_deleted_after_boost(1000);
    assert!(s.ledger.entries.is_empty());
    let p = decide(&s, &Config::default());
    let l = lines(&p);
    assert!(
        matches!(&p.actions[0], Action::RecordSignal { node, reason: Reason::LedgerRecovered, entry }
            if node == "spot-a-0" && matches!(entry.boost, Boost::Applying { from: 3, to: 4, .. })),
        "the entry comes back first, as it was: {l:?}"
    );
    assert!(
        !p.actions
            .iter()
            .any(|a| matches!(a, Action::SetDesired { .. } | Action::BeginBoost { .. })),
        "no second boost: {l:?}"
    );
    assert!(
        !p.actions.iter().any(|a| matches!(
            a,
            Action::RecordSignal {
                reason: Reason::NewSignal,
                ..
            }
        )),
        "{l:?}"
    );
    assert!(
        !p.actions
            .iter()
            .any(|a| matches!(a, Action::Unprotect { .. })),
        "the replacement keeps its protection: {l:?}"
    );
}

#[test]
fn a_mark_that_was_given_back_or_belongs_to_another_machine_brings_nothing_back() {
    let mut s = ledger_deleted_after_boost(1000);
    for n in s.nodes.iter_mut() {
        if let Some(m) = n.boost_mark.as_mut() {
            m.instance_id = "i-someoneelse0000".into();
        }
    }
    let p = decide(&s, &Config::default());
    assert!(!p.actions.iter().any(|a| matches!(
        a,
        Action::RecordSignal {
            reason: Reason::LedgerRecovered,
            ..
        }
    )));
    let mut s = ledger_deleted_after_boost(1000);
    for n in s.nodes.iter_mut() {
        if let Some(m) = n.boost_mark.as_mut() {
            m.released_at = Some(t(900));
        }
    }
    let p = decide(&s, &Config::default());
    assert!(!p.actions.iter().any(|a| matches!(
        a,
        Action::RecordSignal {
            reason: Reason::LedgerRecovered,
            ..
        }
    )));
}

/// A mark on a node that shows no signal (schedulable, no NTH taint) is somebody's
/// annotation, not a boost to recover: nothing is cordoned, drained or retired for it.
#[test]
fn a_mark_on_a_node_that_shows_no_signal_brings_nothing_back() {
    let mut s = ledger_deleted_after_boost(1000);
    for n in s.nodes.iter_mut().filter(|n| n.name == "spot-a-0") {
        n.unschedulable = false;
        n.rebalance_taint = false;
        n.tainted_at = None;
    }
    s.signals.clear();
    let p = decide(&s, &Config::default());
    let l = lines(&p);
    assert!(
        !p.actions
            .iter()
            .any(|a| a.node() == Some("spot-a-0") && !matches!(a, Action::Hold { .. })),
        "{l:?}"
    );
    // The same node cordoned (as every signalled node is until given back): rebuilt.
    let mut s = ledger_deleted_after_boost(1000);
    s.signals.clear();
    for n in s.nodes.iter_mut().filter(|n| n.name == "spot-a-0") {
        n.rebalance_taint = false;
        n.tainted_at = None;
    }
    let p = decide(&s, &Config::default());
    assert!(p.actions.iter().any(|a| matches!(
        a,
        Action::RecordSignal {
            reason: Reason::LedgerRecovered,
            ..
        }
    )));
}

#[test]
fn an_entry_given_back_two_expiries_ago_is_pruned_unless_nth_taints_the_node_again() {
    let cfg = Config::default();
    let expiry = cfg.signal_expiry.as_millis() / 1000;
    let now = 10 * expiry;
    let given_back = |released: u64| {
        SnapshotBuilder::new(t(now))
            .group("spot-a", 1, 3, 10)
            .entry("spot-a-0", t(released - expiry), |e| {
                e.boost = Boost::Abandoned {
                    reason: Reason::AtMaxSize,
                };
                e.released_at = Some(t(released));
            })
    };
    let forgets = |s: &booster_core::Snapshot| {
        decide(s, &cfg).actions.iter().any(|a| {
            matches!(
                a,
                Action::Forget {
                    reason: Reason::ReleasedLongAgo,
                    ..
                }
            )
        })
    };
    assert!(forgets(&given_back(now - 2 * expiry).build()));
    assert!(
        !forgets(&given_back(now - 2 * expiry + 60).build()),
        "not before"
    );
    let retainted = given_back(now - 2 * expiry)
        .with_node("spot-a-0", |n| n.rebalance_taint = true)
        .build();
    assert!(
        !forgets(&retainted),
        "NTH's taint is back: given back again, not pruned"
    );
}
