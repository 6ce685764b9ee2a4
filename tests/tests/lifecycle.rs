//! The life of one signal, plan by plan, as the controller would live it: each plan is
//! executed (world part, then ledger part) and the next snapshot shows the result.

use booster_core::testkit::{apply_to_node, instance_of, mk_instance, mk_node, t, SnapshotBuilder};
use booster_core::{decide, Action, Config, Lifecycle, Snapshot};

/// Executes the plan's mutations on the snapshot as the adapters would.
fn execute(s: &mut Snapshot, actions: &[Action]) {
    for a in actions {
        match a {
            Action::SetDesired { group, to, .. } => {
                let g = s
                    .groups
                    .iter_mut()
                    .find(|g| &g.name == group)
                    .expect("group");
                let raised = g.desired < *to;
                g.desired = g.desired.max(*to);
                if let Some(c) = a.set_desired_confirmation(raised) {
                    s.ledger.apply(&c);
                }
            }
            Action::Cordon { node, .. }
            | Action::Protect { node, .. }
            | Action::Unprotect { node, .. }
            | Action::Release { node, .. } => apply_to_node(node_mut(s, node), a),
            Action::Retire {
                instance_id,
                decrement,
                group,
                ..
            } => {
                let g = s
                    .groups
                    .iter_mut()
                    .find(|g| &g.name == group)
                    .expect("group");
                if let Some(i) = g.instances.iter_mut().find(|i| &i.id == instance_id) {
                    i.lifecycle = Lifecycle::Terminating;
                }
                if *decrement {
                    g.desired -= 1;
                }
            }
            _ => {}
        }
        s.ledger.apply(a);
    }
}

fn node_mut<'a>(s: &'a mut Snapshot, name: &str) -> &'a mut booster_core::Node {
    s.nodes.iter_mut().find(|n| n.name == name).expect("node")
}

fn step(s: &mut Snapshot, cfg: &Config) -> Vec<String> {
    let plan = decide(s, cfg);
    let lines = plan.mutations().map(ToString::to_string).collect();
    execute(s, &plan.actions);
    lines
}

#[test]
fn one_signal_from_recommendation_to_retirement() {
    let cfg = Config::default();
    let mut s = SnapshotBuilder::new(t(10))
        .group("spot", 1, 3, 10)
        .with_node("spot-0", |n| n.pods_to_evict = 4)
        .signal("spot-0", t(9))
        .build();

    // The signal is recorded with its boost, and desired capacity raised in the same pass
    // (the executor stores the record before the call)...
    assert_eq!(
        step(&mut s, &cfg),
        [
            "recordSignal spot-0 applying:3->4 (newSignal)",
            "setDesired spot 3->4 (boostRecorded)"
        ]
    );
    // ...then the node is cordoned.
    assert_eq!(
        step(&mut s, &cfg),
        ["cordon spot-0 (signalledNodeSchedulable)"]
    );
    assert_eq!(s.groups[0].desired, 4);
    // Nothing more until the replacement appears: no repeated call.
    assert_eq!(step(&mut s, &cfg), Vec::<String>::new());

    // The Auto Scaling group launches the replacement; it is protected from scale-down.
    s.now = t(40);
    let mut new = mk_node("spot-new", t(35));
    new.ready = false;
    s.groups[0]
        .instances
        .push(mk_instance(&instance_of("spot-new")));
    s.nodes.push(new);
    assert_eq!(
        step(&mut s, &cfg),
        ["protect spot-new for spot-0 (replacementLaunched)"]
    );

    // It becomes Ready: the drain starts.
    s.now = t(150);
    node_mut(&mut s, "spot-new").ready = true;
    assert_eq!(
        step(&mut s, &cfg),
        ["startDrain spot-0 #1 (replacementReady)"]
    );

    // Pods are evicted; once none is left the instance is retired with decrement and the
    // replacement loses its protection.
    s.now = t(200);
    node_mut(&mut s, "spot-0").pods_to_evict = 0;
    assert_eq!(
        step(&mut s, &cfg),
        [
            "retire spot-0 decrement (drainComplete)",
            "unprotect spot-new (signalHandled)"
        ]
    );
    assert_eq!(
        s.groups[0].desired, 3,
        "back to the size cluster-autoscaler wanted"
    );

    // The node goes away; the ledger forgets it and nothing is left behind.
    s.now = t(260);
    s.nodes.retain(|n| n.name != "spot-0");
    s.groups[0]
        .instances
        .retain(|i| i.lifecycle != Lifecycle::Terminating);
    s.signals.clear();
    // Retired by us: whether an interruption would have come is unknown.
    assert_eq!(
        step(&mut s, &cfg),
        [
            "recordOutcome spot-0 unknown in ?/eu-west-1a (outcomeUnknown)",
            "forget spot-0 (nodeGone)"
        ]
    );
    assert!(s.ledger.entries.is_empty());
    assert_eq!(
        s.ledger.outcomes.pool("?/eu-west-1a").map(|p| p.unknown),
        Some(1),
        "counted once, kept after the entry is forgotten"
    );
    assert!(s
        .nodes
        .iter()
        .all(|n| !n.unschedulable && !n.scale_down_disabled));
    assert_eq!(step(&mut s, &cfg), Vec::<String>::new());
}
