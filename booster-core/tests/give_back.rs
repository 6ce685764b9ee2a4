//! Property: a give-back never undoes a cordon that is not the rebalance's, and never
//! touches a node NTH is interrupting. Over a signal's whole life (record, boost, waits,
//! expiry, give-back, NTH cordoning again), with the cordon's author at the signal, an
//! interruption notice at any pass and NTH's Event present or not drawn at random.

use booster_core::testkit::{apply_plan as apply, t, SnapshotBuilder};
use booster_core::{decide, Action, Config};
use proptest::prelude::*;

const NODE: &str = "spot-0";

/// Who had cordoned the node when NTH's taint came.
#[derive(Clone, Copy, Debug)]
enum Author {
    Nobody,
    Nth,
    Operator,
    OtherController,
}

impl Author {
    fn manager(self) -> Option<&'static str> {
        match self {
            Author::Nobody => None,
            Author::Nth => Some(booster_core::config::NTH_FIELD_MANAGER),
            Author::Operator => Some("kubectl-cordon"),
            Author::OtherController => Some("karpenter"),
        }
    }

    fn foreign(self) -> bool {
        matches!(self, Author::Operator | Author::OtherController)
    }
}

fn author() -> impl Strategy<Value = Author> {
    prop_oneof![
        Just(Author::Nobody),
        Just(Author::Nth),
        Just(Author::Operator),
        Just(Author::OtherController),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn a_give_back_keeps_what_is_not_the_rebalances(
        who in author(),
        with_event in any::<bool>(),
        steps in proptest::collection::vec(1u64..900, 4..14),
        notice_at in proptest::option::of(0usize..14),
        retaint_at in proptest::option::of(0usize..14),
    ) {
        let cfg = Config::default();
        let mut b = SnapshotBuilder::new(t(100)).group("spot", 1, 3, 10);
        if with_event {
            b = b.event(NODE, t(95), |_| {});
        }
        let mut s = b
            .with_node(NODE, |n| {
                // Pods a drain never gets out (a budget): the signal ends in a give-back.
                n.pods_to_evict = 3;
                n.rebalance_taint = true;
                n.tainted_at = Some(t(95));
                if let Some(m) = who.manager() {
                    n.unschedulable = true;
                    n.cordoned_by = Some(m.to_string());
                    n.cordoned_at = Some(t(10));
                }
            })
            .build();
        let mut now = 100;
        let mut released = false;
        for (pass, step) in std::iter::once(0).chain(steps.iter().copied()).enumerate() {
            now += step;
            s.now = t(now);
            s.signals.iter_mut().for_each(|e| e.created_at = Some(t(95)));
            if notice_at == Some(pass) {
                // NTH's interruption handling: its taint (and its cordon, a no-op if there).
                let n = s.nodes.iter_mut().find(|n| n.name == NODE).expect("node");
                n.interruption_taint = true;
                if !n.unschedulable {
                    n.unschedulable = true;
                    n.cordoned_by = Some(booster_core::config::NTH_FIELD_MANAGER.into());
                }
            }
            if retaint_at == Some(pass) {
                // NTH restarted and handled the recommendation again.
                let n = s.nodes.iter_mut().find(|n| n.name == NODE).expect("node");
                n.rebalance_taint = true;
                if !n.unschedulable {
                    n.unschedulable = true;
                    n.cordoned_by = Some(booster_core::config::NTH_FIELD_MANAGER.into());
                }
            }
            let interrupted = s.nodes.iter().any(|n| n.name == NODE && n.interruption_taint);
            let plan = decide(&s, &cfg);
            for a in &plan.actions {
                if let Action::Release { node, uncordon, .. } = a {
                    prop_assert!(node == NODE);
                    prop_assert!(!interrupted, "gave back a node being interrupted: {a}");
                    prop_assert!(
                        !(who.foreign() && *uncordon),
                        "undid the {who:?} cordon made before the signal: {a}"
                    );
                    released = true;
                }
            }
            apply(&mut s, &plan);
            if who.foreign() {
                let n = s.nodes.iter().find(|n| n.name == NODE).expect("node");
                prop_assert!(n.unschedulable, "the {who:?} cordon is gone after pass {pass}");
            }
        }
        // Liveness: past the expiry, a node nobody is interrupting was given back.
        let expired = now - 95 > cfg.signal_expiry.as_millis() / 1000 + 1;
        if expired && notice_at.is_none() {
            prop_assert!(released, "never given back: {:?}", s.ledger.entries.get(NODE));
        }
    }
}
