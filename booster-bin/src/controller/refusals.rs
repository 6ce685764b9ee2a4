//! The controller with the real Auto Scaling adapter, its client answering every write
//! with AccessDenied (aws-smithy-mocks: moto never refuses), passes every 2 s of virtual
//! time as a watch storm would drive them: the calls it makes, and the give-back.

use std::sync::{Arc, Mutex};

use aws_sdk_autoscaling::error::ErrorMetadata;
use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput;
use aws_sdk_autoscaling::operation::describe_auto_scaling_instances::DescribeAutoScalingInstancesOutput;
use aws_sdk_autoscaling::operation::describe_scaling_activities::DescribeScalingActivitiesOutput;
use aws_sdk_autoscaling::operation::set_desired_capacity::SetDesiredCapacityError;
use aws_sdk_autoscaling::operation::terminate_instance_in_auto_scaling_group::TerminateInstanceInAutoScalingGroupError;
use aws_sdk_autoscaling::types::{AutoScalingGroup, AutoScalingInstanceDetails, Instance};
use aws_sdk_autoscaling::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use booster_core::ports::{ClusterView, PortError};
use booster_core::testkit::mocks::{MockCluster, MockLeadership};
use booster_core::testkit::{
    apply_to_node, expired_and_drained, most_in_a_minute, t, SnapshotBuilder,
};
use booster_core::{Action, Boost, Config, Reason, Snapshot, Timestamp};

use super::{Controller, Ports};

fn sdk_group(g: &booster_core::Group) -> AutoScalingGroup {
    AutoScalingGroup::builder()
        .auto_scaling_group_name(&g.name)
        .min_size(g.min_size as i32)
        .max_size(g.max_size as i32)
        .desired_capacity(g.desired as i32)
        .set_instances(Some(
            g.instances
                .iter()
                .map(|i| {
                    Instance::builder()
                        .instance_id(&i.id)
                        .availability_zone(&i.az)
                        .lifecycle_state(aws_sdk_autoscaling::types::LifecycleState::InService)
                        .health_status("Healthy")
                        .protected_from_scale_in(false)
                        .build()
                })
                .collect(),
        ))
        .build()
}

fn denied() -> ErrorMetadata {
    ErrorMetadata::builder()
        .code("AccessDenied")
        .message("User: arn:aws:sts::1:assumed-role/booster is not authorized")
        .build()
}

/// A Kubernetes side that keeps what is written to it: the ledger, cordons, Events.
fn cluster(
    world: Arc<Mutex<Snapshot>>,
    events: Arc<Mutex<Vec<(Reason, String, bool)>>>,
) -> MockCluster {
    let mut c = MockCluster::new();
    let w = world.clone();
    c.expect_observe().returning(move || {
        let s = w
            .lock()
            .map_err(|_| PortError::Unavailable("lock".into()))?;
        Ok(ClusterView {
            nodes: s.nodes.clone(),
            signals: s.signals.clone(),
            ca_status: s.ca_status.clone(),
            ledger: s.ledger.clone(),
            ..ClusterView::default()
        })
    });
    let w = world.clone();
    c.expect_store_ledger().returning(move |l| {
        w.lock()
            .map_err(|_| PortError::Unavailable("lock".into()))?
            .ledger = l.clone();
        Ok(())
    });
    let w = world.clone();
    c.expect_set_unschedulable().returning(move |node, on| {
        let mut s = w
            .lock()
            .map_err(|_| PortError::Unavailable("lock".into()))?;
        if let Some(n) = s.nodes.iter_mut().find(|n| n.name == node) {
            let a = if on {
                Action::Cordon {
                    node: node.into(),
                    reason: Reason::SignalledNodeSchedulable,
                }
            } else {
                Action::Release {
                    node: node.into(),
                    uncordon: true,
                    at: t(0),
                    reason: Reason::SignalExpired,
                }
            };
            apply_to_node(n, &a);
        }
        Ok(())
    });
    c.expect_remove_rebalance_taint().returning(|_| Ok(()));
    c.expect_unprotect().returning(|_| Ok(()));
    c.expect_protect().returning(|_, _| Ok(()));
    c.expect_record_event()
        .returning(move |_, reason, message, warning| {
            if let Ok(mut e) = events.lock() {
                e.push((reason, message.to_string(), warning));
            }
            Ok(())
        });
    c
}

fn ports(cluster: MockCluster, cloud: booster_aws::AutoScaling) -> Ports {
    let mut l = MockLeadership::new();
    l.expect_is_leader().return_const(true);
    Ports {
        cluster: Arc::new(cluster),
        cloud: Arc::new(cloud),
        leader: Arc::new(l),
        writes: Arc::default(),
    }
}

fn adapter(rules: &[&Rule]) -> booster_aws::AutoScaling {
    let client = mock_client!(aws_sdk_autoscaling, RuleMode::MatchAny, rules);
    booster_aws::AutoScaling::from_client(client, booster_aws::Settings::default())
}

/// Runs passes every 2 s of the clock `now` for `minutes`; returns the times of the calls
/// `count` reports, as they grew.
async fn drive(
    c: &mut Controller,
    now: &'static std::sync::atomic::AtomicI64,
    minutes: u64,
    count: impl Fn() -> usize,
) -> Vec<Timestamp> {
    let mut at = Vec::new();
    for _ in 0..minutes * 30 {
        let before = count();
        c.pass().await.expect("pass");
        let t = Timestamp::from_unix_millis(now.load(std::sync::atomic::Ordering::SeqCst));
        at.extend(std::iter::repeat_n(t, count().saturating_sub(before)));
        now.fetch_add(2_000, std::sync::atomic::Ordering::SeqCst);
    }
    at
}

#[tokio::test]
async fn a_refused_raise_costs_a_few_calls_then_the_node_is_given_back() {
    static NOW: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    NOW.store(t(100).unix_millis(), std::sync::atomic::Ordering::SeqCst);
    fn clock() -> Timestamp {
        Timestamp::from_unix_millis(NOW.load(std::sync::atomic::Ordering::SeqCst))
    }
    let mut s = SnapshotBuilder::new(t(100))
        .group("spot", 1, 3, 6)
        .signal("spot-0", t(90))
        .build();
    if let Some(n) = s.nodes.iter_mut().find(|n| n.name == "spot-0") {
        n.unschedulable = true;
    }
    let g = s.groups[0].clone();
    let describe = mock!(Client::describe_auto_scaling_groups).then_output(move || {
        DescribeAutoScalingGroupsOutput::builder()
            .auto_scaling_groups(sdk_group(&g))
            .build()
    });
    let activities = mock!(Client::describe_scaling_activities)
        .then_output(|| DescribeScalingActivitiesOutput::builder().build());
    let set = mock!(Client::set_desired_capacity)
        .then_error(|| SetDesiredCapacityError::generic(denied()));
    let cloud = adapter(&[&describe, &activities, &set]);
    let world = Arc::new(Mutex::new(s));
    let events = Arc::new(Mutex::new(Vec::new()));
    let mut c = Controller::new(
        ports(cluster(world.clone(), events.clone()), cloud),
        Config::default(),
        clock,
    );
    let sets = drive(&mut c, &NOW, 10, || set.num_calls()).await;
    let cfg = Config::default();
    assert_eq!(sets.len() as u32, cfg.refusals_before_give_up, "{sets:?}");
    assert!(most_in_a_minute(&sets) <= 2, "{sets:?}");
    // Each raise re-reads its group first: 2 calls a try, and only describes' TTL between.
    let describes = describe.num_calls() as u64;
    println!(
        "refused raise: {} SetDesiredCapacity over {} s, {describes} DescribeAutoScalingGroups in 10 minutes",
        sets.len(),
        sets.last().zip(sets.first()).map_or(0, |(l, f)| l.since(*f).as_millis() / 1000)
    );
    let w = world.lock().expect("world");
    let e = &w.ledger.entries["spot-0"];
    assert_eq!(
        e.boost,
        Boost::Abandoned {
            reason: Reason::BoostRefused
        }
    );
    assert!(e.released_at.is_some(), "given back");
    assert!(
        !w.nodes
            .iter()
            .any(|n| n.name == "spot-0" && n.unschedulable),
        "uncordoned"
    );
    let ev = events.lock().expect("events");
    assert!(
        ev.iter()
            .any(|(r, m, warn)| *r == Reason::BoostRefused && *warn && m.contains("AccessDenied")),
        "a Warning Event names the refusal: {ev:?}"
    );
}

#[tokio::test]
async fn a_refused_retire_of_an_expired_drained_node_is_given_back_not_cordoned_for_good() {
    static NOW: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let start = t(100).plus(Config::default().signal_expiry);
    NOW.store(start.unix_millis(), std::sync::atomic::Ordering::SeqCst);
    fn clock() -> Timestamp {
        Timestamp::from_unix_millis(NOW.load(std::sync::atomic::Ordering::SeqCst))
    }
    let s = expired_and_drained();
    let g = s.groups[0].clone();
    let id = g
        .instances
        .iter()
        .find(|i| i.id == booster_core::testkit::instance_of("spot-0"))
        .map(|i| i.id.clone())
        .expect("instance");
    let describe = mock!(Client::describe_auto_scaling_groups).then_output(move || {
        DescribeAutoScalingGroupsOutput::builder()
            .auto_scaling_groups(sdk_group(&g))
            .build()
    });
    let lookup = mock!(Client::describe_auto_scaling_instances).then_output(move || {
        DescribeAutoScalingInstancesOutput::builder()
            .auto_scaling_instances(
                AutoScalingInstanceDetails::builder()
                    .instance_id(&id)
                    .auto_scaling_group_name("spot")
                    .build(),
            )
            .build()
    });
    let activities = mock!(Client::describe_scaling_activities)
        .then_output(|| DescribeScalingActivitiesOutput::builder().build());
    let terminate = mock!(Client::terminate_instance_in_auto_scaling_group)
        .then_error(|| TerminateInstanceInAutoScalingGroupError::generic(denied()));
    let cloud = adapter(&[&describe, &lookup, &activities, &terminate]);
    let world = Arc::new(Mutex::new(s));
    let events = Arc::new(Mutex::new(Vec::new()));
    let mut c = Controller::new(
        ports(cluster(world.clone(), events), cloud),
        Config::default(),
        clock,
    );
    let sent = drive(&mut c, &NOW, 10, || terminate.num_calls()).await;
    println!(
        "refused retire: {} TerminateInstanceInAutoScalingGroup over {} s, then given back",
        sent.len(),
        sent.last()
            .zip(sent.first())
            .map_or(0, |(l, f)| l.since(*f).as_millis() / 1000)
    );
    assert_eq!(
        sent.len() as u32,
        Config::default().refusals_before_give_up,
        "{sent:?}"
    );
    let w = world.lock().expect("world");
    assert!(
        w.ledger.entries["spot-0"].released_at.is_some(),
        "given back"
    );
    assert!(
        !w.nodes
            .iter()
            .any(|n| n.name == "spot-0" && n.unschedulable),
        "not cordoned for good"
    );
}
