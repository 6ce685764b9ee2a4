//! The pass as a whole, on mocked ports: what a replica that does not lead, a dry run, a
//! throttled write, a malformed CA status and a restart after any pass each lead to.

use super::*;
use booster_core::exec::Effect;
use booster_core::ports::{ClusterView, SetDesiredOutcome};
use booster_core::testkit::mocks::{MockCloud, MockCluster, MockLeadership};
use booster_core::testkit::{t, SnapshotBuilder};
use booster_core::{Boost, CaObservation};

use super::reporting::hold_message;

pub(super) fn clock() -> Timestamp {
    t(100)
}

/// A group `spot` of 3 nodes, `spot-0` signalled at t(90), CA fresh at t(100).
fn world(ca: Option<CaObservation>) -> Snapshot {
    let mut b = SnapshotBuilder::new(t(100))
        .group("spot", 1, 3, 6)
        .signal("spot-0", t(90));
    if let Some(ca) = ca {
        b = b.ca(ca);
    }
    b.build()
}

pub(super) fn view(s: &Snapshot) -> ClusterView {
    ClusterView {
        nodes: s.nodes.clone(),
        signals: s.signals.clone(),
        ca_status: s.ca_status.clone(),
        ledger: s.ledger.clone(),
        ..ClusterView::default()
    }
}

pub(super) fn ports(cluster: MockCluster, cloud: MockCloud, leader: bool) -> Ports {
    let mut l = MockLeadership::new();
    l.expect_is_leader().return_const(leader);
    Ports {
        cluster: Arc::new(cluster),
        cloud: Arc::new(cloud),
        leader: Arc::new(l),
        writes: Arc::default(),
    }
}

pub(super) fn observing(s: &Snapshot) -> (MockCluster, MockCloud) {
    let mut cluster = MockCluster::new();
    let v = view(s);
    cluster.expect_observe().returning(move || Ok(v.clone()));
    (cluster, describing(s))
}

/// Auto Scaling answering with `s`'s groups and no failed launches.
pub(super) fn describing(s: &Snapshot) -> MockCloud {
    let mut cloud = MockCloud::new();
    cloud
        .expect_scaling_activities()
        .returning(|_| Ok(Default::default()));
    let groups = s.groups.clone();
    cloud
        .expect_describe_groups()
        .returning(move |_| Ok(groups.clone()));
    cloud
}

#[tokio::test]
async fn a_replica_that_does_not_lead_computes_the_plan_and_writes_nothing() {
    let s = world(None);
    // No expectation on any mutating call: mockall fails the test if one is made.
    let (mut cluster, cloud) = observing(&s);
    cluster.expect_record_event().never();
    let mut c = Controller::new(ports(cluster, cloud, false), Config::default(), clock);
    let r = c.pass().await.expect("pass");
    assert!(!r.leader && r.plan.dry_run);
    assert!(r
        .plan
        .actions
        .iter()
        .any(|a| matches!(a, Action::RecordSignal { .. })));
    assert!(r
        .executed
        .outcomes
        .iter()
        .all(|o| matches!(o.result, Ok(Effect::DryRun | Effect::Held))));
    assert!(r.drains_started.is_empty());
}

#[tokio::test]
async fn dry_run_computes_the_plan_and_writes_nothing_and_shows_the_next_steps() {
    let s = world(None);
    let (mut cluster, cloud) = observing(&s);
    cluster.expect_record_event().never();
    let cfg = Config {
        dry_run: true,
        ..Config::default()
    };
    let mut c = Controller::new(ports(cluster, cloud, true), cfg, clock);
    let r = c.pass().await.expect("pass");
    assert!(r.leader && r.plan.dry_run);
    assert!(r
        .plan
        .actions
        .iter()
        .any(|a| matches!(a, Action::RecordSignal { .. })));
    assert!(
        r.plan
            .actions
            .iter()
            .any(|a| matches!(a, Action::SetDesired { .. })),
        "the raise is shown with its record: {:?}",
        r.plan.actions
    );
    assert_eq!(r.executed.stores, 0);
    // The next pass decides on the ledger the first would have written: a boost whose
    // raise is not known to have happened, as a live booster would see it.
    let r = c.pass().await.expect("pass");
    assert!(
        r.plan.actions.iter().any(|a| matches!(
            a,
            Action::Hold {
                reason: Reason::RaiseUnconfirmed,
                ..
            }
        )),
        "{:?}",
        r.plan.actions
    );
    assert_eq!(r.executed.stores, 0);
}

#[tokio::test]
async fn a_throttled_raise_is_reported_and_retried_on_the_next_pass() {
    // Recorded long enough ago for its raise to show in the scaling activities, which
    // show none: it did not take effect, and is sent.
    let s = SnapshotBuilder::new(t(100))
        .group("spot", 1, 3, 6)
        .entry("spot-0", t(20), |e| {
            e.boost = Boost::Applying {
                from: 3,
                to: 4,
                at: t(30),
            }
        })
        .with_node("spot-0", |n| n.unschedulable = true)
        .build();
    let (mut cluster, mut cloud) = observing(&s);
    let mut calls = 0;
    cloud
        .expect_set_desired()
        .times(2)
        .returning(move |_, _, _| {
            calls += 1;
            if calls == 1 {
                Err(PortError::Throttled("Rate exceeded".into()))
            } else {
                Ok(SetDesiredOutcome::Raised)
            }
        });
    cluster
        .expect_record_event()
        .withf(|_, _, msg, warning| !*warning || msg.contains("throttled"))
        .returning(|_, _, _, _| Ok(()));
    cluster.expect_store_ledger().returning(|_| Ok(()));
    static NOW: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    fn ticking() -> Timestamp {
        t(100).plus(booster_core::Dur::from_millis(
            NOW.load(std::sync::atomic::Ordering::SeqCst).unsigned_abs(),
        ))
    }
    let mut c = Controller::new(ports(cluster, cloud, true), Config::default(), ticking);
    let first = c.pass().await.expect("pass");
    assert!(
        matches!(
            first.executed.failures().next(),
            Some((_, PortError::Throttled(_)))
        ),
        "{:?}",
        first.plan.actions
    );
    // Not again at pass rate: a hold that names the throttling, and a wake-up.
    NOW.fetch_add(1_000, std::sync::atomic::Ordering::SeqCst);
    let held = c.pass().await.expect("pass");
    assert!(!held
        .plan
        .actions
        .iter()
        .any(|a| matches!(a, Action::SetDesired { .. })));
    assert!(held.plan.actions.iter().any(|a| matches!(
        a,
        Action::Hold {
            reason: Reason::WriteBackingOff,
            ..
        }
    )));
    let text = hold_message(&held.snapshot, "spot-0", Reason::WriteBackingOff);
    assert!(text.contains("Rate exceeded"), "{text}");
    let due = held.plan.next_wakeup.expect("a wake-up for the retry");
    NOW.store(
        i64::try_from(due.since(t(100)).as_millis()).unwrap_or(i64::MAX),
        std::sync::atomic::Ordering::SeqCst,
    );
    let second = c.pass().await.expect("pass");
    assert_eq!(second.executed.failures().count(), 0);
    assert!(second
        .plan
        .actions
        .iter()
        .any(|a| matches!(a, Action::SetDesired { .. })));
}

#[tokio::test]
async fn a_malformed_ca_status_means_no_boost_and_a_warning_event() {
    let s = world(Some(CaObservation::Invalid {
        error: "legacy status, line 3: garbage".into(),
    }));
    let (mut cluster, cloud) = observing(&s);
    // The signal is recorded (queued), never boosted: no SetDesired expectation.
    cluster.expect_store_ledger().times(1).returning(|l| {
        assert!(matches!(
            l.entries["spot-0"].boost,
            Boost::Queued {
                reason: Reason::CaStatusInvalid
            }
        ));
        Ok(())
    });
    cluster
        .expect_record_event()
        .withf(|node, reason, _, warning| {
            node == "spot-0" && *reason == Reason::CaStatusInvalid && *warning
        })
        .times(1)
        .returning(|_, _, _, _| Ok(()));
    // The record of the signal itself is a Normal Event.
    cluster
        .expect_record_event()
        .withf(|_, reason, _, warning| *reason == Reason::NewSignal && !*warning)
        .times(1)
        .returning(|_, _, _, _| Ok(()));
    let mut c = Controller::new(ports(cluster, cloud, true), Config::default(), clock);
    let r = c.pass().await.expect("pass");
    assert!(!r
        .plan
        .actions
        .iter()
        .any(|a| matches!(a, Action::SetDesired { .. } | Action::BeginBoost { .. })));
}

/// A scripted signal, with the controller restarted (a new process: nothing kept in
/// memory) after every possible number of passes: one raise, ever.
#[tokio::test]
async fn no_second_boost_across_a_restart_after_any_pass() {
    use std::sync::Mutex;
    for restart_after in 0..6 {
        let base = world(None);
        let state = Arc::new(Mutex::new((base.clone(), 0u32)));
        let build = |state: Arc<Mutex<(Snapshot, u32)>>| {
            let mut cluster = MockCluster::new();
            let st = state.clone();
            cluster.expect_observe().returning(move || {
                let s = st
                    .lock()
                    .map_err(|_| PortError::Unavailable("lock".into()))?;
                Ok(view(&s.0))
            });
            let st = state.clone();
            cluster.expect_store_ledger().returning(move |l| {
                st.lock()
                    .map_err(|_| PortError::Unavailable("lock".into()))?
                    .0
                    .ledger = l.clone();
                Ok(())
            });
            cluster.expect_set_unschedulable().returning(|_, _| Ok(()));
            cluster.expect_record_event().returning(|_, _, _, _| Ok(()));
            let mut cloud = MockCloud::new();
            cloud
                .expect_scaling_activities()
                .returning(|_| Ok(Default::default()));
            let st = state.clone();
            cloud.expect_describe_groups().returning(move |_| {
                Ok(st
                    .lock()
                    .map_err(|_| PortError::Unavailable("lock".into()))?
                    .0
                    .groups
                    .clone())
            });
            let st = state.clone();
            cloud.expect_set_desired().returning(move |_, _, to| {
                let mut s = st
                    .lock()
                    .map_err(|_| PortError::Unavailable("lock".into()))?;
                if s.0.groups[0].desired >= to {
                    return Ok(SetDesiredOutcome::AlreadyAtOrAbove);
                }
                s.0.groups[0].desired = to;
                s.1 += 1;
                Ok(SetDesiredOutcome::Raised)
            });
            Controller::new(ports(cluster, cloud, true), Config::default(), clock)
        };
        let mut c = build(state.clone());
        for pass in 0..6 {
            if pass == restart_after {
                c.shutdown();
                c = build(state.clone());
            }
            c.pass().await.expect("pass");
        }
        let (s, raises) = state.lock().map(|s| (s.0.clone(), s.1)).expect("state");
        assert_eq!(raises, 1, "restart after pass {restart_after}");
        assert_eq!(s.groups[0].desired, 4);
        assert!(matches!(
            s.ledger.entries["spot-0"].boost,
            Boost::Applied { assumed: false, .. }
        ));
    }
}
