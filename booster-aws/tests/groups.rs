//! What changes the meaning of desired capacity, as the adapter reads it: Capacity
//! Rebalancing, suspended processes, zones, instance weights, warm pools and failed
//! launches. Against moto where it models them (5.2.5 stores CapacityRebalance,
//! SuspendedProcesses, a MixedInstancesPolicy and warm pools); with aws-smithy-mocks where
//! it does not (moto returns no instance `WeightedCapacity` and no scaling activities).

use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput;
use aws_sdk_autoscaling::operation::describe_scaling_activities::DescribeScalingActivitiesOutput;
use aws_sdk_autoscaling::primitives::DateTime;
use aws_sdk_autoscaling::types::{
    Activity, AutoScalingGroup, Instance, LaunchTemplate, LaunchTemplateOverrides,
    LaunchTemplateSpecification, LifecycleState, MixedInstancesPolicy, ScalingActivityStatusCode,
};
use aws_sdk_autoscaling::Client;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use booster_aws::{AutoScaling, Settings};
use booster_core::ports::Cloud;
use booster_tests::moto::Moto;

/// A group `mng` with Capacity Rebalancing on, as an EKS managed spot node group has.
async fn managed_like_group(c: &aws_sdk_autoscaling::Client, desired: i32, zones: &[&str]) {
    c.create_launch_configuration()
        .launch_configuration_name("lc")
        .image_id("ami-12c6146b")
        .instance_type("m5.large")
        .send()
        .await
        .expect("launch configuration");
    let mut req = c
        .create_auto_scaling_group()
        .auto_scaling_group_name("mng")
        .launch_configuration_name("lc")
        .min_size(1)
        .max_size(10)
        .desired_capacity(desired)
        .capacity_rebalance(true);
    for z in zones {
        req = req.availability_zones(*z);
    }
    req.send().await.expect("managed-like group");
}

#[tokio::test]
async fn capacity_rebalance_suspended_processes_zones_weights_and_warm_pools_from_moto() {
    let Some(m) = Moto::start() else { return };
    let c = m.client();
    managed_like_group(&c, 2, &["eu-west-1a", "eu-west-1b"]).await;
    c.suspend_processes()
        .auto_scaling_group_name("mng")
        .scaling_processes("AZRebalance")
        .send()
        .await
        .expect("suspend AZRebalance");
    c.put_warm_pool()
        .auto_scaling_group_name("mng")
        .min_size(1)
        .send()
        .await
        .expect("warm pool");
    let a = AutoScaling::from_client(c.clone(), Settings::default());
    let g = a
        .describe_groups(&["mng".to_string()])
        .await
        .expect("describe")
        .pop()
        .expect("the group");
    assert!(g.capacity_rebalance);
    assert!(g.suspended("AZRebalance") && !g.suspended("Launch"));
    assert_eq!(g.azs, ["eu-west-1a", "eu-west-1b"]);
    assert!(g.warm_pool);
    assert!(!g.weighted(), "no weights: one unit an instance");
    assert_eq!(g.capacity(), 2);
}

/// The engine and the executor over the real adapter and moto, for a Capacity Rebalancing
/// group with a signalled node, pass after pass: no SetDesiredCapacity is ever sent.
#[tokio::test]
async fn a_capacity_rebalancing_group_never_gets_a_set_desired_capacity() {
    use booster_core::testkit::mocks::MockCluster;
    use booster_core::testkit::{mk_ca_group, mk_node};
    use booster_core::{decide, CaObservation, CaStatus, CaStatusFormat, Config, Ledger, Snapshot};
    use std::sync::{Arc, Mutex};
    let Some(m) = Moto::start() else { return };
    let c = m.client();
    managed_like_group(&c, 3, &["eu-west-1a"]).await;
    let a = AutoScaling::from_client(c.clone(), Settings::default());
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut cluster = MockCluster::new();
    let l = ledger.clone();
    cluster.expect_store_ledger().returning(move |x| {
        *l.lock().expect("ledger") = x.clone();
        Ok(())
    });
    cluster.expect_set_unschedulable().returning(|_, _| Ok(()));
    cluster
        .expect_remove_rebalance_taint()
        .returning(|_| Ok(()));
    let mut now = booster_core::testkit::t(100);
    for pass in 0..20 {
        let groups = a.describe_groups(&["mng".into()]).await.expect("describe");
        let nodes: Vec<_> = groups[0]
            .instances
            .iter()
            .enumerate()
            .map(|(k, i)| {
                let mut n = mk_node(&format!("n{k}"), booster_core::testkit::T0);
                n.instance_id = Some(i.id.clone());
                if k == 0 {
                    n.unschedulable = true;
                    n.rebalance_taint = true;
                    n.tainted_at = Some(booster_core::testkit::t(90));
                }
                n
            })
            .collect();
        let status = CaStatus {
            format: CaStatusFormat::Yaml,
            time: Some(now),
            autoscaler_status: Some("Running".into()),
            node_groups: groups.iter().map(mk_ca_group).collect(),
        };
        let s = Snapshot {
            now,
            ca_status: CaObservation::Parsed {
                status,
                updated_at: now,
            },
            groups,
            nodes,
            signals: Vec::new(),
            ledger: ledger.lock().expect("ledger").clone(),
            cloud_unavailable: None,
            placeholders: Vec::new(),
            failures: Vec::new(),
        };
        let plan = decide(&s, &Config::default());
        let done = booster_core::exec::execute(
            &plan,
            &s.ledger,
            &a,
            &cluster,
            Config::default().drain_timeout,
        )
        .await;
        assert!(done.aborted.is_none(), "pass {pass}");
        now = now.plus(booster_core::Dur::from_mins(2));
    }
    assert_eq!(a.calls().of("SetDesiredCapacity"), 0);
    assert_eq!(a.calls().of("TerminateInstanceInAutoScalingGroup"), 0);
    let g = a.describe_groups(&["mng".into()]).await.expect("describe");
    assert_eq!(g[0].desired, 3);
    let l = ledger.lock().expect("ledger").clone();
    assert!(
        l.entries["n0"].released_at.is_some(),
        "given back after the expiry: {l:?}"
    );
}

fn weighted_group() -> AutoScalingGroup {
    let overrides = |t: &str, w: &str| {
        LaunchTemplateOverrides::builder()
            .instance_type(t)
            .weighted_capacity(w)
            .build()
    };
    let instance = |id: &str, t: &str, w: Option<&str>| {
        let mut b = Instance::builder()
            .instance_id(id)
            .instance_type(t)
            .availability_zone("eu-west-1a")
            .lifecycle_state(LifecycleState::InService)
            .health_status("Healthy")
            .protected_from_scale_in(false);
        if let Some(w) = w {
            b = b.weighted_capacity(w);
        }
        b.build()
    };
    AutoScalingGroup::builder()
        .auto_scaling_group_name("weighted")
        .min_size(4)
        .max_size(60)
        .desired_capacity(10)
        .mixed_instances_policy(
            MixedInstancesPolicy::builder()
                .launch_template(
                    LaunchTemplate::builder()
                        .launch_template_specification(
                            LaunchTemplateSpecification::builder()
                                .launch_template_name("lt")
                                .build(),
                        )
                        .overrides(overrides("m5.xlarge", "2"))
                        .overrides(overrides("m5.2xlarge", "4"))
                        .overrides(
                            // Attribute-based selection: no type to key a weight by.
                            LaunchTemplateOverrides::builder()
                                .weighted_capacity("8")
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .instances(instance("i-1", "m5.2xlarge", Some("4")))
        .instances(instance("i-2", "m5.2xlarge", None))
        .instances(instance("i-3", "m5.xlarge", Some("junk")))
        .build()
}

#[tokio::test]
async fn weights_come_from_the_instance_or_its_override() {
    let describe = mock!(Client::describe_auto_scaling_groups).then_output(|| {
        DescribeAutoScalingGroupsOutput::builder()
            .auto_scaling_groups(weighted_group())
            .build()
    });
    let client = mock_client!(aws_sdk_autoscaling, RuleMode::MatchAny, &[&describe]);
    let a = AutoScaling::from_client(client, Settings::default());
    let g = a
        .describe_groups(&["weighted".into()])
        .await
        .expect("describe")
        .pop()
        .expect("group");
    assert!(g.weighted());
    assert_eq!(
        g.weights
            .iter()
            .map(|(t, w)| (t.as_str(), *w))
            .collect::<Vec<_>>(),
        [("m5.2xlarge", 4), ("m5.xlarge", 2)]
    );
    let w: Vec<u32> = g.instances.iter().map(|i| g.weight_of(i)).collect();
    // Its own WeightedCapacity; its type's override; garbage falls back to the override.
    assert_eq!(w, [4, 4, 2]);
    assert_eq!(g.capacity(), 10);
}

fn activity(status: ScalingActivityStatusCode, at: i64, message: &str) -> Activity {
    Activity::builder()
        .activity_id(format!("a-{at}"))
        .auto_scaling_group_name("spot")
        .cause("At 2024-06-10T12:00:00Z a user request update of AutoScalingGroup constraints")
        .start_time(DateTime::from_secs(at))
        .status_code(status)
        .status_message(message)
        .build()
}

#[tokio::test]
async fn failed_launches_come_from_the_scaling_activities_cut_and_cached() {
    // None of these causes changes desired capacity: no raise.
    let long = format!("InsufficientInstanceCapacity: {}", "x".repeat(5000));
    let activities = mock!(Client::describe_scaling_activities)
        .match_requests(|r| {
            r.auto_scaling_group_name() == Some("spot") && r.max_records() == Some(20)
        })
        .then_output(move || {
            DescribeScalingActivitiesOutput::builder()
                .activities(activity(
                    ScalingActivityStatusCode::Failed,
                    1_718_020_900,
                    &long,
                ))
                .activities(activity(
                    ScalingActivityStatusCode::Successful,
                    1_718_020_800,
                    "ok",
                ))
                .activities(activity(
                    ScalingActivityStatusCode::InProgress,
                    1_718_020_950,
                    "",
                ))
                .build()
        });
    let client = mock_client!(aws_sdk_autoscaling, RuleMode::MatchAny, &[&activities]);
    let a = AutoScaling::from_client(client, Settings::default());
    let read = a.scaling_activities("spot").await.expect("activities");
    let f = read.failures.clone();
    assert_eq!(f.len(), 1, "only the Failed one");
    assert_eq!(
        f[0].at,
        booster_core::Timestamp::from_unix_secs(1_718_020_900)
    );
    assert!(f[0].message.starts_with("InsufficientInstanceCapacity"));
    assert_eq!(f[0].message.chars().count(), 300, "cut");
    // Asked again within the describe TTL: from the cache.
    let again = a.scaling_activities("spot").await.expect("cached");
    assert_eq!(again, read);
    assert_eq!(activities.num_calls(), 1);
    assert_eq!(a.calls().of("DescribeScalingActivities"), 1);
    assert!(read.raises.is_empty(), "{:?}", read.raises);
}

#[tokio::test]
async fn raises_come_from_the_causes_failed_launches_included() {
    let raise = |id: &str, status, at: i64, cause: &str| {
        Activity::builder()
            .activity_id(id)
            .auto_scaling_group_name("spot")
            .cause(cause)
            .start_time(DateTime::from_secs(at))
            .status_code(status)
            .build()
    };
    let activities = mock!(Client::describe_scaling_activities).then_output(move || {
        DescribeScalingActivitiesOutput::builder()
            .activities(raise(
                "b",
                ScalingActivityStatusCode::Failed,
                1_718_020_900,
                "At 2024-06-10T12:01:30Z a user request explicitly set group desired capacity \
                 changing the desired capacity from 4 to 5.",
            ))
            .activities(raise(
                "a",
                ScalingActivityStatusCode::Successful,
                1_718_020_800,
                "At 2024-06-10T12:00:00Z a user request explicitly set group desired capacity \
                 changing the desired capacity from 3 to 4.  At 2024-06-10T12:00:05Z an \
                 instance was started in response to a difference between desired and \
                 running capacity, increasing the capacity from 3 to 4.",
            ))
            .build()
    });
    let client = mock_client!(aws_sdk_autoscaling, RuleMode::MatchAny, &[&activities]);
    let a = AutoScaling::from_client(client, Settings::default());
    let read = a.scaling_activities("spot").await.expect("activities");
    let got: Vec<(i64, u32, u32)> = read
        .raises
        .iter()
        .map(|r| (r.at.unix_millis() / 1000, r.from, r.to))
        .collect();
    assert_eq!(
        got,
        vec![(1_718_020_890, 4, 5), (1_718_020_800, 3, 4)],
        "newest first, each at its cause's own time"
    );
    assert_eq!(read.failures.len(), 1);
}
