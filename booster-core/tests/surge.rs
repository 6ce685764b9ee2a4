//! Surge before evict: which pods are moved by surge, which are evicted and reported, and
//! each step of a surge under way (booster_core::surge).

use booster_core::surge::{
    assess, step, Assessment, Observed, Owner, SkipReason, Step, Strategy as Plan, SurgeMode,
    SurgeRecord, UndoReason, WorkloadFacts,
};
use booster_core::testkit::t;
use proptest::prelude::*;

/// A Ready pod, the only one of a settled RollingUpdate Deployment with no budget.
fn alone() -> WorkloadFacts {
    WorkloadFacts {
        owner: Owner::Deployment("solo".into()),
        replicas: 1,
        ready_replicas: 1,
        rollout_complete: true,
        ..WorkloadFacts::of_pod("uid-1", true)
    }
}

fn record(uid: &str) -> SurgeRecord {
    SurgeRecord {
        pod_uid: uid.into(),
        pod: "solo-abc".into(),
        node: "spot-0".into(),
        from: 1,
        to: 2,
        started: t(100),
        deadline: t(400),
        prior_cost: None,
    }
}

#[test]
fn a_workload_of_one_is_surged_under_both_modes_and_never_when_off() {
    assert_eq!(
        assess(&alone(), SurgeMode::SingleReplica),
        Assessment::Surge
    );
    assert_eq!(
        assess(&alone(), SurgeMode::BudgetBlocked),
        Assessment::Surge
    );
    assert_eq!(assess(&alone(), SurgeMode::Off), Assessment::Evict);
}

#[test]
fn a_pod_with_ready_siblings_is_evicted() {
    let f = WorkloadFacts {
        replicas: 3,
        ready_replicas: 3,
        budget_allows: Some(1),
        ..alone()
    };
    assert_eq!(assess(&f, SurgeMode::BudgetBlocked), Assessment::Evict);
}

#[test]
fn a_budget_allowing_nothing_is_surged_only_under_budget_blocked_or_by_opt_in() {
    let f = WorkloadFacts {
        replicas: 3,
        ready_replicas: 3,
        budget_allows: Some(0),
        ..alone()
    };
    assert_eq!(assess(&f, SurgeMode::SingleReplica), Assessment::Evict);
    assert_eq!(assess(&f, SurgeMode::BudgetBlocked), Assessment::Surge);
    let opted_in = WorkloadFacts {
        opt: Some(true),
        ..f.clone()
    };
    assert_eq!(
        assess(&opted_in, SurgeMode::SingleReplica),
        Assessment::Surge
    );
    assert_eq!(
        assess(&opted_in, SurgeMode::Off),
        Assessment::Evict,
        "off is off"
    );
}

#[test]
fn an_opted_out_workload_is_always_evicted() {
    let f = WorkloadFacts {
        opt: Some(false),
        ..alone()
    };
    assert_eq!(assess(&f, SurgeMode::BudgetBlocked), Assessment::Evict);
}

#[test]
fn an_unready_pod_costs_no_availability() {
    let f = WorkloadFacts {
        pod_ready: false,
        ready_replicas: 0,
        ..alone()
    };
    assert_eq!(assess(&f, SurgeMode::SingleReplica), Assessment::Evict);
}

/// Never worse than today: each workload a surge cannot move is evicted as before, and the
/// reason is the real one.
#[test]
fn what_cannot_surge_is_evicted_and_reported_with_its_cause() {
    let cases: Vec<(WorkloadFacts, &str)> = vec![
        (
            WorkloadFacts {
                strategy: Plan::Recreate,
                ..alone()
            },
            "recreate",
        ),
        (
            WorkloadFacts {
                strategy: Plan::NoSurge,
                ..alone()
            },
            "maxSurgeZero",
        ),
        (
            WorkloadFacts {
                owner: Owner::StatefulSet("db".into()),
                budget_allows: Some(0),
                ..alone()
            },
            "notADeployment",
        ),
        (
            WorkloadFacts {
                owner: Owner::None,
                ..alone()
            },
            "notADeployment",
        ),
        (
            WorkloadFacts {
                owner: Owner::ReplicaSet("lone".into()),
                ..alone()
            },
            "notADeployment",
        ),
        (
            WorkloadFacts {
                rollout_complete: false,
                ..alone()
            },
            "rolloutInProgress",
        ),
        (
            WorkloadFacts {
                paused: true,
                ..alone()
            },
            "rolloutInProgress",
        ),
        (
            WorkloadFacts {
                tolerates_cordon: true,
                ..alone()
            },
            "toleratesCordon",
        ),
        (
            WorkloadFacts {
                autoscaler: Some("solo".into()),
                ..alone()
            },
            "autoscaled",
        ),
        (
            WorkloadFacts {
                gitops_manager: Some("argocd-controller".into()),
                ..alone()
            },
            "gitOps",
        ),
        (
            WorkloadFacts {
                foreign_record: true,
                ..alone()
            },
            "foreignRecord",
        ),
    ];
    for (f, code) in cases {
        match assess(&f, SurgeMode::BudgetBlocked) {
            Assessment::Skip(why) => assert_eq!(why.code(), code, "{f:?}: {why}"),
            other => panic!("{f:?}: {other:?}, not skipped"),
        }
    }
    // An opt-in overrides only the GitOps doubt (a revert is safe, see the module).
    let f = WorkloadFacts {
        gitops_manager: Some("kustomize-controller".into()),
        opt: Some(true),
        ..alone()
    };
    assert_eq!(assess(&f, SurgeMode::SingleReplica), Assessment::Surge);
    let f = WorkloadFacts {
        strategy: Plan::Recreate,
        opt: Some(true),
        ..alone()
    };
    assert_eq!(
        assess(&f, SurgeMode::SingleReplica),
        Assessment::Skip(SkipReason::Recreate)
    );
}

#[test]
fn a_surge_under_way_is_resumed_for_its_pod_and_blocks_a_second_one() {
    let mine = WorkloadFacts {
        record: Some(record("uid-1")),
        ..alone()
    };
    let other = WorkloadFacts {
        record: Some(record("uid-0")),
        ..alone()
    };
    for mode in [
        SurgeMode::Off,
        SurgeMode::SingleReplica,
        SurgeMode::BudgetBlocked,
    ] {
        assert_eq!(assess(&mine, mode), Assessment::Resume, "{mode:?}");
        assert_eq!(assess(&other, mode), Assessment::Wait, "{mode:?}");
    }
}

#[test]
fn the_steps_of_a_surge() {
    let r = record("uid-1");
    let o = |replicas, old, ready, at| Observed {
        replicas,
        old_pod_there: old,
        ready_others: ready,
        ready_elsewhere: ready,
        now: t(at),
    };
    assert_eq!(step(&r, &o(2, true, 0, 200), true), Step::Wait);
    assert_eq!(step(&r, &o(2, true, 1, 200), true), Step::HandOver);
    assert_eq!(
        step(&r, &o(2, true, 0, 400), true),
        Step::Undo(UndoReason::NotReadyInTime)
    );
    assert_eq!(
        step(&r, &o(2, true, 1, 200), false),
        Step::Undo(UndoReason::DrainEnded),
        "no hand-over for a signal given back: the pod stays"
    );
    assert_eq!(step(&r, &o(2, false, 0, 200), true), Step::Finish);
    assert_eq!(step(&r, &o(1, true, 1, 200), true), Step::Abandon);
    assert_eq!(step(&r, &o(5, true, 1, 200), false), Step::Abandon);
}

/// A Deployment of 3 whose budget allows nothing, two of its pods on the drained node: the
/// first is handed over once its successor makes 3 Ready besides it, though one of those 3
/// is the second pod, still on the drained node.
#[test]
fn siblings_on_the_drained_node_count_towards_the_size_not_as_the_successor() {
    let r = SurgeRecord {
        from: 3,
        to: 4,
        ..record("a")
    };
    let before = Observed {
        replicas: 4,
        old_pod_there: true,
        ready_others: 2,
        ready_elsewhere: 1,
        now: t(200),
    };
    assert_eq!(step(&r, &before, true), Step::Wait);
    let after = Observed {
        ready_others: 3,
        ready_elsewhere: 2,
        ..before
    };
    assert_eq!(step(&r, &after, true), Step::HandOver);
    let none_elsewhere = Observed {
        ready_others: 3,
        ready_elsewhere: 0,
        ..before
    };
    assert_eq!(step(&r, &none_elsewhere, true), Step::Wait);
}

#[test]
fn a_record_not_ours_is_refused() {
    assert!(SurgeRecord::parse(&record("u").to_annotation()).is_ok());
    let bad = record("u").to_annotation().replace("\"to\":2", "\"to\":7");
    assert!(SurgeRecord::parse(&bad).is_err());
    assert!(SurgeRecord::parse("{}").is_err());
    assert!(SurgeRecord::parse(&"x".repeat(10_000)).is_err());
    let extra = record("u").to_annotation().replace('{', "{\"evil\":1,");
    assert!(SurgeRecord::parse(&extra).is_err());
}

fn facts() -> impl Strategy<Value = WorkloadFacts> {
    (
        any::<bool>(),
        0..4i32,
        0..4i32,
        prop::option::of(-1..3i32),
        0..3u8,
        0..5u8,
        prop::option::of(any::<bool>()),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(ready, replicas, ready_n, budget, strat, owner, opt, complete, hpa, gitops)| {
                WorkloadFacts {
                    pod_ready: ready,
                    replicas,
                    ready_replicas: ready_n,
                    budget_allows: budget,
                    strategy: [Plan::RollingUpdate, Plan::NoSurge, Plan::Recreate][strat as usize],
                    owner: match owner {
                        0 | 1 => Owner::Deployment("d".into()),
                        2 => Owner::StatefulSet("s".into()),
                        3 => Owner::ReplicaSet("r".into()),
                        _ => Owner::None,
                    },
                    opt,
                    rollout_complete: complete,
                    autoscaler: hpa.then(|| "h".into()),
                    gitops_manager: gitops.then(|| "argocd-controller".into()),
                    ..alone()
                }
            },
        )
}

proptest! {
    /// A surge starts only for a settled RollingUpdate Deployment nobody else sizes, whose
    /// eviction would cost availability, never for a workload that opted out or with
    /// surges off.
    #[test]
    fn a_surge_starts_only_where_it_is_safe_and_needed(f in facts(), m in 0..3u8) {
        let mode = [SurgeMode::Off, SurgeMode::SingleReplica, SurgeMode::BudgetBlocked][m as usize];
        if assess(&f, mode) == Assessment::Surge {
            prop_assert!(mode != SurgeMode::Off);
            prop_assert!(f.opt != Some(false));
            prop_assert!(matches!(f.owner, Owner::Deployment(_)));
            prop_assert_eq!(f.strategy, Plan::RollingUpdate);
            prop_assert!(f.rollout_complete && f.replicas > 0 && f.autoscaler.is_none());
            prop_assert!(f.pod_ready || f.budget_allows.is_some_and(|b| b <= 0));
            prop_assert!(f.ready_replicas <= 1 || f.budget_allows.is_some_and(|b| b <= 0));
            prop_assert!(f.gitops_manager.is_none() || f.opt == Some(true));
        }
    }

    /// The size goes back down only when the record still holds it (nobody else changed
    /// it), and the old pod is handed over only with enough Ready pods elsewhere and its
    /// drain still running; past the deadline, never a wait.
    #[test]
    fn a_surge_never_hands_over_early_nor_waits_forever(
        replicas in 0..4i32, old in any::<bool>(), ready in 0..3i32, elsewhere in 0..3i32,
        at in 0..600u64, running in any::<bool>()
    ) {
        let r = record("uid-1");
        let elsewhere = elsewhere.min(ready);
        let o = Observed { replicas, old_pod_there: old, ready_others: ready, ready_elsewhere: elsewhere, now: t(at) };
        match step(&r, &o, running) {
            Step::HandOver => prop_assert!(running && ready >= r.from && elsewhere >= 1 && replicas == r.to && old),
            Step::Wait => prop_assert!(running && t(at) < r.deadline && (ready < r.from || elsewhere == 0)),
            Step::Finish | Step::Undo(_) => prop_assert_eq!(replicas, r.to),
            Step::Abandon => prop_assert!(replicas != r.to),
        }
    }
}
