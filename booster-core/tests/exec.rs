//! The executor's order of writes, against mockall ports: what is stored before what is
//! done, and that a dry run calls no port.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use booster_core::exec::{drains_to_resume, execute, Effect, Executed};
use booster_core::ports::{DrainSpec, PortError, SetDesiredOutcome};
use booster_core::testkit::mocks::{MockCloud, MockCluster};
use booster_core::testkit::{mk_node, t};
use booster_core::{Action, Boost, DrainState, Dur, Entry, Ledger, Plan, Reason};
use mockall::{predicate::eq, Sequence};

/// The Auto Scaling and Kubernetes sides, mocked.
type MockAws = MockCloud;
type MockKube = MockCluster;

/// The mocks answer at once: one poll completes the executor.
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("mock ports never wait"),
    }
}

fn run(plan: &Plan, ledger: &Ledger, aws: &MockAws, kube: &MockKube) -> Executed {
    ready(execute(plan, ledger, aws, kube, Dur::from_secs(120)))
}

fn entry(boost: Boost) -> Entry {
    Entry {
        instance_id: "i-a".into(),
        group: "spot".into(),
        signal_at: t(0),
        boost,
        drain: DrainState::NotStarted,
        released_at: None,
        fallback: None,
        retiring: None,
        cordoned_before: false,
        pool: String::new(),
        outcome: None,
    }
}

fn ledger_with(node: &str, e: Entry) -> Ledger {
    let mut l = Ledger::default();
    l.entries.insert(node.into(), e);
    l
}

/// Node `a`'s boost recorded as `Applying` 3 -> 4.
fn applying_3_to_4() -> Ledger {
    ledger_with(
        "a",
        entry(Boost::Applying {
            from: 3,
            to: 4,
            at: t(0),
        }),
    )
}

/// The SetDesired that applies it.
fn raise_3_to_4() -> Action {
    Action::SetDesired {
        group: "spot".into(),
        from: 3,
        to: 4,
        nodes: vec!["a".into()],
        reason: Reason::BoostRecorded,
    }
}

fn plan(actions: Vec<Action>) -> Plan {
    Plan {
        actions,
        ..Plan::default()
    }
}

#[test]
fn a_drain_is_handed_out_only_with_its_ledger_stored() {
    let ledger = ledger_with(
        "a",
        entry(Boost::Queued {
            reason: Reason::NewSignal,
        }),
    );
    let mut kube = MockKube::new();
    kube.expect_store_ledger()
        .withf(|l| {
            matches!(
                l.entries["a"].drain,
                DrainState::Draining { attempt: 1, .. }
            )
        })
        .times(1)
        .returning(|_| Ok(()));
    let p = plan(vec![Action::StartDrain {
        node: "a".into(),
        attempt: 1,
        at: t(10),
        reason: Reason::ReplacementReady,
    }]);
    let ex = run(&p, &ledger, &MockAws::new(), &kube);
    assert_eq!(ex.stores, 1);
    assert_eq!(ex.drains.len(), 1);
    assert_eq!(ex.drains[0].node, "a");
    assert_eq!(ex.drains[0].timeout, Dur::from_secs(120));
    assert_eq!(ex.outcomes[0].result, Ok(Effect::DrainQueued));
}

#[test]
fn a_raise_is_confirmed_and_stored_before_anything_else_runs() {
    let ledger = applying_3_to_4();
    let mut seq = Sequence::new();
    let mut aws = MockAws::new();
    let mut kube = MockKube::new();
    aws.expect_set_desired()
        .with(eq("spot"), eq(3), eq(4))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(SetDesiredOutcome::Raised));
    kube.expect_store_ledger()
        .withf(|l| matches!(l.entries["a"].boost, Boost::Applied { assumed: false, .. }))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(()));
    kube.expect_set_unschedulable()
        .with(eq("a"), eq(true))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    let p = plan(vec![
        raise_3_to_4(),
        Action::Cordon {
            node: "a".into(),
            reason: Reason::SignalledNodeSchedulable,
        },
    ]);
    let ex = run(&p, &ledger, &aws, &kube);
    assert_eq!(ex.stores, 1, "nothing left to store at the end");
    assert!(ex.aborted.is_none());
    assert_eq!(ex.outcomes[0].result, Ok(Effect::Done));
}

#[test]
fn a_group_already_at_the_target_confirms_the_boost_as_assumed() {
    let ledger = applying_3_to_4();
    let mut aws = MockAws::new();
    let mut kube = MockKube::new();
    aws.expect_set_desired()
        .returning(|_, _, _| Ok(SetDesiredOutcome::AlreadyAtOrAbove));
    kube.expect_store_ledger()
        .withf(|l| matches!(l.entries["a"].boost, Boost::Applied { assumed: true, .. }))
        .times(1)
        .returning(|_| Ok(()));
    let p = plan(vec![raise_3_to_4()]);
    let ex = run(&p, &ledger, &aws, &kube);
    assert_eq!(ex.outcomes[0].result, Ok(Effect::AlreadyDone));
}

#[test]
fn a_release_uncordons_before_it_is_recorded() {
    let ledger = ledger_with(
        "a",
        entry(Boost::Queued {
            reason: Reason::AtMaxSize,
        }),
    );
    let mut seq = Sequence::new();
    let mut kube = MockKube::new();
    kube.expect_set_unschedulable()
        .with(eq("a"), eq(false))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _| Ok(()));
    kube.expect_remove_rebalance_taint()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(()));
    kube.expect_store_ledger()
        .withf(|l| l.entries["a"].released_at == Some(t(1800)))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(()));
    let p = plan(vec![Action::Release {
        node: "a".into(),
        uncordon: true,
        at: t(1800),
        reason: Reason::SignalExpired,
    }]);
    run(&p, &ledger, &MockAws::new(), &kube);
}

#[test]
fn a_release_that_keeps_the_cordon_only_removes_the_taint() {
    let ledger = ledger_with(
        "a",
        entry(Boost::Queued {
            reason: Reason::AtMaxSize,
        }),
    );
    let mut kube = MockKube::new();
    kube.expect_set_unschedulable().times(0);
    kube.expect_remove_rebalance_taint()
        .with(eq("a"))
        .times(1)
        .returning(|_| Ok(()));
    kube.expect_store_ledger()
        .withf(|l| l.entries["a"].released_at == Some(t(1800)))
        .times(1)
        .returning(|_| Ok(()));
    let p = plan(vec![Action::Release {
        node: "a".into(),
        uncordon: false,
        at: t(1800),
        reason: Reason::SignalExpired,
    }]);
    let ex = run(&p, &ledger, &MockAws::new(), &kube);
    assert_eq!(ex.failures().count(), 0);
}

#[test]
fn a_release_that_cannot_uncordon_is_not_recorded() {
    let ledger = ledger_with(
        "a",
        entry(Boost::Queued {
            reason: Reason::AtMaxSize,
        }),
    );
    let mut kube = MockKube::new();
    kube.expect_set_unschedulable()
        .returning(|_, _| Err(PortError::Throttled("429".into())));
    kube.expect_store_ledger().times(0);
    let p = plan(vec![Action::Release {
        node: "a".into(),
        uncordon: true,
        at: t(1800),
        reason: Reason::SignalExpired,
    }]);
    let ex = run(&p, &ledger, &MockAws::new(), &kube);
    assert_eq!(ex.ledger, ledger, "the next plan releases again");
    assert_eq!(ex.failures().count(), 1);
}

#[test]
fn a_dry_run_calls_no_port_at_all() {
    // Mocks without expectations fail the test on any call.
    let ledger = applying_3_to_4();
    let mut p = plan(vec![
        raise_3_to_4(),
        Action::StartDrain {
            node: "a".into(),
            attempt: 1,
            at: t(5),
            reason: Reason::ReplacementReady,
        },
        Action::Retire {
            node: "a".into(),
            group: "spot".into(),
            instance_id: "i-a".into(),
            decrement: true,
            at: t(5),
            reason: Reason::DrainComplete,
        },
        Action::Forget {
            node: "a".into(),
            reason: Reason::NodeGone,
        },
    ]);
    p.dry_run = true;
    let ex = run(&p, &ledger, &MockAws::new(), &MockKube::new());
    assert!(ex.outcomes.iter().all(|o| o.result == Ok(Effect::DryRun)));
    assert!(ex.drains.is_empty());
    assert_eq!(ex.stores, 0);
    assert_eq!(ex.ledger, ledger);
}

#[test]
fn a_failed_store_stops_the_plan_and_starts_no_drain() {
    let ledger = ledger_with(
        "a",
        entry(Boost::Queued {
            reason: Reason::NewSignal,
        }),
    );
    let mut aws = MockAws::new();
    let mut kube = MockKube::new();
    kube.expect_store_ledger()
        .returning(|_| Err(PortError::Conflict("resourceVersion changed".into())));
    // The retire's write-ahead store fails: no terminate is sent.
    aws.expect_retire().never();
    let p = plan(vec![
        Action::StartDrain {
            node: "a".into(),
            attempt: 1,
            at: t(5),
            reason: Reason::ReplacementReady,
        },
        Action::Retire {
            node: "b".into(),
            group: "spot".into(),
            instance_id: "i-b".into(),
            decrement: false,
            at: t(5),
            reason: Reason::SignalExpired,
        },
    ]);
    let ex = run(&p, &ledger, &aws, &kube);
    assert!(matches!(ex.aborted, Some(PortError::Conflict(_))));
    assert!(ex.drains.is_empty(), "its Draining state is not stored");
    assert_eq!(ex.ledger, ledger);
    assert_eq!(ex.outcomes.len(), 1, "the plan stopped at the retire");
}

#[test]
fn a_failed_call_is_reported_and_the_rest_of_the_plan_runs() {
    let mut kube = MockKube::new();
    kube.expect_set_unschedulable()
        .returning(|_, _| Err(PortError::Throttled("429".into())));
    kube.expect_protect()
        .with(eq("r"), eq("a"))
        .times(1)
        .returning(|_, _| Ok(()));
    let p = plan(vec![
        Action::Cordon {
            node: "a".into(),
            reason: Reason::SignalledNodeSchedulable,
        },
        Action::Protect {
            node: "r".into(),
            for_node: "a".into(),
            reason: Reason::ReplacementLaunched,
        },
        Action::Hold {
            node: "a".into(),
            reason: Reason::WaitingForReplacement,
        },
    ]);
    let ex = run(&p, &Ledger::default(), &MockAws::new(), &kube);
    let results: Vec<_> = ex.outcomes.iter().map(|o| o.result.clone()).collect();
    assert_eq!(
        results,
        vec![
            Err(PortError::Throttled("429".into())),
            Ok(Effect::Done),
            Ok(Effect::Held)
        ]
    );
}

#[test]
fn drains_resume_after_a_restart_with_what_is_left_of_their_timeout() {
    let mut e = entry(Boost::Applied {
        to: 4,
        at: t(0),
        assumed: false,
    });
    e.drain = DrainState::Draining {
        since: t(100),
        attempt: 1,
    };
    let mut ledger = ledger_with("a", e.clone());
    ledger.entries.insert("b".into(), e.clone()); // running here already
    ledger.entries.insert("c".into(), e.clone()); // drained
    let mut old = e.clone();
    old.drain = DrainState::Draining {
        since: t(0),
        attempt: 1,
    };
    ledger.entries.insert("d".into(), old); // past its timeout: the engine retries
    let mut released = e;
    released.released_at = Some(t(150));
    ledger.entries.insert("e".into(), released);
    let mut nodes: Vec<_> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|n| {
            let mut node = mk_node(n, t(0));
            node.pods_to_evict = 3;
            node
        })
        .collect();
    nodes[2].pods_to_evict = 0;
    let running: BTreeSet<String> = ["b".to_string()].into();
    let specs = drains_to_resume(&ledger, &nodes, &running, t(160), Dur::from_secs(120));
    assert_eq!(
        specs,
        vec![DrainSpec {
            node: "a".into(),
            timeout: Dur::from_secs(60),
            dry_run: false,
        }]
    );
}

/// A node whose group lookup fails (no credentials, Auto Scaling down) makes the pass go on
/// without Auto Scaling, as a failed describe does: the controller then backs off instead
/// of asking again in every pass. Karpenter's NodePools stay in the snapshot.
#[test]
fn a_failed_group_lookup_is_auto_scaling_down_and_nodepools_stay() {
    use booster_core::ports::ClusterView;
    use booster_core::{Group, GroupKind};
    let mut aws = MockAws::new();
    aws.expect_describe_groups().returning(|_| Ok(Vec::new()));
    aws.expect_groups_of()
        .times(1)
        .returning(|_| Err(PortError::Unavailable("no credentials".into())));
    let view = ClusterView {
        nodes: vec![mk_node("system-1", t(0))],
        node_pools: vec![Group {
            name: "nodepool/spot".into(),
            kind: GroupKind::NodePool,
            ..Group::default()
        }],
        ..ClusterView::default()
    };
    let mut asked = BTreeSet::new();
    let s = ready(booster_core::exec::snapshot_tolerant(
        view,
        &aws,
        t(0),
        &mut asked,
        &[],
    ));
    assert!(
        s.cloud_unavailable
            .as_deref()
            .is_some_and(|w| w.contains("no credentials")),
        "{:?}",
        s.cloud_unavailable
    );
    assert!(asked.is_empty(), "asked again once Auto Scaling answers");
    let names: Vec<&str> = s.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["nodepool/spot"]);
}

/// The ledger was deleted and the shipped RBAC may not re-create it: the entry rebuilt from
/// the boost mark cannot be stored, so the plan touches nothing in the world (no
/// protection), and the record is reported as not made.
#[test]
fn an_unstorable_ledger_stops_the_plan_before_any_world_write() {
    let mut kube = MockKube::new();
    kube.expect_store_ledger()
        .times(1)
        .returning(|_| Err(PortError::Forbidden("configmaps is forbidden".into())));
    kube.expect_protect().never();
    let p = Plan {
        actions: vec![
            Action::RecordSignal {
                node: "a".into(),
                entry: entry(Boost::Applied {
                    to: 4,
                    at: t(0),
                    assumed: false,
                }),
                reason: Reason::LedgerRecovered,
            },
            Action::Protect {
                node: "b".into(),
                for_node: "a".into(),
                reason: Reason::ReplacementLaunched,
            },
        ],
        ..Plan::default()
    };
    let ex = run(&p, &Ledger::default(), &MockAws::new(), &kube);
    assert!(matches!(ex.aborted, Some(PortError::Forbidden(_))));
    assert!(matches!(
        ex.outcomes.as_slice(),
        [o] if matches!(o.result, Err(PortError::Forbidden(_)))
    ));
    assert_eq!(ex.ledger, Ledger::default());
}
