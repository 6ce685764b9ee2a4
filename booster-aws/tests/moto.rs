//! The adapter against a moto server (PyPI `moto[server]`), through the real SDK client.
//! Each test starts its own server on 127.0.0.1 and a free port, and stops it at the end.
//! `make test` installs moto into `~/.cache/aws-spots-booster/venv` and sets
//! `BOOSTER_REQUIRE_MOTO=1`, so that a missing server fails instead of skipping.

use std::time::{Duration, Instant};

use aws_sdk_autoscaling::config::retry::RetryConfig;
use aws_sdk_autoscaling::types::Tag;
use aws_sdk_autoscaling::Client;
use booster_aws::{AutoScaling, Settings};
use booster_core::ports::{Cloud, PortError, RetireOutcome, SetDesiredOutcome};
use booster_tests::moto::Moto;

fn moto() -> Option<Moto> {
    Moto::start()
}

fn client(m: &Moto) -> Client {
    Client::from_conf(
        m.config()
            .retry_config(RetryConfig::standard().with_max_attempts(2))
            .build(),
    )
}

fn adapter(m: &Moto, settings: Settings) -> AutoScaling {
    AutoScaling::from_client(client(m), settings)
}

/// Creates groups `{prefix}-{i}` with `desired` instances each, through the SDK.
async fn groups(c: &Client, prefix: &str, n: usize, desired: i32, max: i32, tags: &[(&str, &str)]) {
    let lc = format!("{prefix}-lc");
    c.create_launch_configuration()
        .launch_configuration_name(&lc)
        .image_id("ami-12c6146b")
        .instance_type("m5.large")
        .send()
        .await
        .expect("launch configuration");
    for i in 0..n {
        let name = format!("{prefix}-{i}");
        let mut req = c
            .create_auto_scaling_group()
            .auto_scaling_group_name(&name)
            .launch_configuration_name(&lc)
            .min_size(1)
            .max_size(max)
            .desired_capacity(desired)
            .availability_zones("eu-west-1a")
            .availability_zones("eu-west-1b");
        for (k, v) in tags {
            req = req.tags(
                Tag::builder()
                    .key(*k)
                    .value(*v)
                    .resource_id(&name)
                    .resource_type("auto-scaling-group")
                    .propagate_at_launch(false)
                    .build(),
            );
        }
        req.send().await.expect("group");
    }
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

#[tokio::test]
async fn describes_more_groups_than_one_page_with_instances_and_tags() {
    let Some(m) = moto() else { return };
    let c = client(&m);
    groups(&c, "many", 120, 1, 4, &[("team", "web")]).await;
    let a = adapter(&m, Settings::default());
    let mut asked = names("many", 120);
    asked.push("no-such-group".into());
    let got = a.describe_groups(&asked).await.expect("describe");
    assert_eq!(got.len(), 120, "every group, the unknown name left out");
    let g = got.iter().find(|g| g.name == "many-77").expect("many-77");
    assert_eq!((g.min_size, g.desired, g.max_size), (1, 1, 4));
    assert_eq!(g.instances.len(), 1);
    let i = &g.instances[0];
    assert!(i.id.starts_with("i-") && i.az.starts_with("eu-west-1"));
    assert_eq!(i.lifecycle, booster_core::Lifecycle::InService);
    assert!(i.healthy && !i.protected_from_scale_in);
    assert_eq!(g.tags.get("team").map(String::as_str), Some("web"));
    // 121 names: three batches of at most 50.
    assert_eq!(a.calls().of("DescribeAutoScalingGroups"), 3);
    // Within the TTL the same question costs nothing.
    a.describe_groups(&asked[..10]).await.expect("cached");
    assert_eq!(a.calls().of("DescribeAutoScalingGroups"), 3);
}

#[tokio::test]
async fn maps_instances_to_their_groups_in_batches() {
    let Some(m) = moto() else { return };
    let c = client(&m);
    groups(&c, "map", 2, 30, 40, &[]).await;
    let a = adapter(&m, Settings::default());
    let described = a.describe_groups(&names("map", 2)).await.expect("describe");
    let mut ids: Vec<String> = described
        .iter()
        .flat_map(|g| g.instances.iter().map(|i| i.id.clone()))
        .collect();
    assert_eq!(ids.len(), 60);
    ids.push("i-0000000000000dead".into());
    let map = a.groups_of(&ids).await.expect("groups_of");
    assert_eq!(map.len(), 60, "the unknown instance is left out");
    for g in &described {
        for i in &g.instances {
            assert!(
                map.contains(&(i.id.clone(), g.name.clone())),
                "{} in {}",
                i.id,
                g.name
            );
        }
    }
    assert_eq!(
        a.calls().of("DescribeAutoScalingInstances"),
        2,
        "61 ids: two batches"
    );
}

#[tokio::test]
async fn set_desired_raises_once_and_describe_shows_the_new_instances() {
    let Some(m) = moto() else { return };
    let c = client(&m);
    groups(&c, "raise", 1, 2, 6, &[]).await;
    let a = adapter(&m, Settings::default());
    let g = ["raise-0".to_string()];
    assert_eq!(
        a.describe_groups(&g).await.expect("before")[0]
            .instances
            .len(),
        2
    );
    assert_eq!(
        a.set_desired("raise-0", 2, 3).await,
        Ok(SetDesiredOutcome::Raised)
    );
    let after = a.describe_groups(&g).await.expect("after");
    assert_eq!(after[0].desired, 3);
    assert_eq!(
        after[0].instances.len(),
        3,
        "our write invalidated the cache"
    );
    // Repeating it (a restart) or asking for less makes no write.
    assert_eq!(
        a.set_desired("raise-0", 2, 3).await,
        Ok(SetDesiredOutcome::AlreadyAtOrAbove)
    );
    assert_eq!(
        a.set_desired("raise-0", 2, 2).await,
        Ok(SetDesiredOutcome::AlreadyAtOrAbove)
    );
    assert_eq!(a.calls().of("SetDesiredCapacity"), 1);
}

/// The raise is the one the engine computed, or none: desired capacity must still be the
/// `from` it planned with when the adapter reads the group again.
#[tokio::test]
async fn set_desired_refuses_when_desired_moved_since_the_plan() {
    let Some(m) = moto() else { return };
    let c = client(&m);
    groups(&c, "moved", 1, 2, 6, &[]).await;
    let a = adapter(&m, Settings::default());
    // Cluster Autoscaler raises it to 3 between the plan (from 2) and the call.
    c.set_desired_capacity()
        .auto_scaling_group_name("moved-0")
        .desired_capacity(3)
        .send()
        .await
        .expect("CA's raise");
    let r = a.set_desired("moved-0", 2, 4).await;
    assert!(
        matches!(&r, Err(PortError::Conflict(m)) if m.contains("is 3, not the 2")),
        "{r:?}"
    );
    // Already at the target counts as done, without a call.
    assert_eq!(
        a.set_desired("moved-0", 2, 3).await,
        Ok(SetDesiredOutcome::AlreadyAtOrAbove)
    );
    assert_eq!(a.calls().of("SetDesiredCapacity"), 0);
    let g = a
        .describe_groups(&["moved-0".into()])
        .await
        .expect("describe");
    assert_eq!(g[0].desired, 3);
}

#[tokio::test]
async fn set_desired_checks_max_size_itself() {
    // moto accepts a desired capacity above max size; AWS would not, and we never ask.
    let Some(m) = moto() else { return };
    let c = client(&m);
    groups(&c, "max", 1, 3, 4, &[]).await;
    let a = adapter(&m, Settings::default());
    let r = a.set_desired("max-0", 3, 5).await;
    assert!(
        matches!(&r, Err(PortError::Rejected(m)) if m.contains("max size 4")),
        "{r:?}"
    );
    assert_eq!(a.calls().of("SetDesiredCapacity"), 0);
}

#[tokio::test]
async fn retire_with_decrement_lowers_desired_and_is_idempotent() {
    let Some(m) = moto() else { return };
    let c = client(&m);
    groups(&c, "retire", 1, 3, 5, &[]).await;
    let a = adapter(&m, Settings::default());
    let g = ["retire-0".to_string()];
    let before = a.describe_groups(&g).await.expect("describe");
    let victim = before[0].instances[0].id.clone();
    assert_eq!(a.retire(&victim, true).await, Ok(RetireOutcome::Terminated));
    let after = a.describe_groups(&g).await.expect("describe");
    assert_eq!(after[0].desired, 2);
    assert!(after[0].instances.iter().all(|i| i.id != victim));
    // Again, as a restarted controller would: nothing more happens.
    assert_eq!(
        a.retire(&victim, true).await,
        Ok(RetireOutcome::AlreadyGone)
    );
    assert_eq!(a.describe_groups(&g).await.expect("describe")[0].desired, 2);
    assert_eq!(a.calls().of("TerminateInstanceInAutoScalingGroup"), 1);
}

#[tokio::test]
async fn retire_without_decrement_keeps_desired() {
    let Some(m) = moto() else { return };
    let c = client(&m);
    groups(&c, "keep", 1, 2, 5, &[]).await;
    let a = adapter(&m, Settings::default());
    let g = ["keep-0".to_string()];
    let victim = a.describe_groups(&g).await.expect("describe")[0].instances[0]
        .id
        .clone();
    assert_eq!(
        a.retire(&victim, false).await,
        Ok(RetireOutcome::Terminated)
    );
    let after = a.describe_groups(&g).await.expect("describe");
    assert_eq!(after[0].desired, 2);
    assert!(after[0].instances.iter().all(|i| i.id != victim));
}

#[tokio::test]
async fn an_opted_out_group_is_never_touched() {
    let Some(m) = moto() else { return };
    let c = client(&m);
    groups(
        &c,
        "optout",
        1,
        2,
        5,
        &[("aws-spots-booster/enabled", "false")],
    )
    .await;
    groups(&c, "custom", 1, 2, 5, &[("example.com/booster", "FALSE")]).await;
    let a = adapter(&m, Settings::default());
    let id = a
        .describe_groups(&["optout-0".to_string()])
        .await
        .expect("describe")[0]
        .instances[0]
        .id
        .clone();
    assert!(matches!(
        a.set_desired("optout-0", 2, 3).await,
        Err(PortError::Rejected(_))
    ));
    assert!(matches!(
        a.retire(&id, true).await,
        Err(PortError::Rejected(_))
    ));
    // The tag key is configurable.
    let custom = adapter(
        &m,
        Settings {
            opt_out_tag: "example.com/booster".into(),
            ..Settings::default()
        },
    );
    assert!(matches!(
        custom.set_desired("custom-0", 2, 3).await,
        Err(PortError::Rejected(_))
    ));
    assert_eq!(
        custom.set_desired("optout-0", 2, 3).await,
        Ok(SetDesiredOutcome::Raised)
    );
    assert_eq!(
        a.calls().of("SetDesiredCapacity") + a.calls().of("TerminateInstanceInAutoScalingGroup"),
        0
    );
}

#[tokio::test]
async fn a_group_without_the_cluster_tag_is_never_touched() {
    let Some(m) = moto() else { return };
    let c = client(&m);
    groups(
        &c,
        "theirs",
        1,
        2,
        5,
        &[("k8s.io/cluster-autoscaler/other", "owned")],
    )
    .await;
    groups(
        &c,
        "ours",
        1,
        2,
        5,
        &[("k8s.io/cluster-autoscaler/prod", "owned")],
    )
    .await;
    let a = adapter(
        &m,
        Settings {
            cluster_tag: Some("k8s.io/cluster-autoscaler/prod".into()),
            ..Settings::default()
        },
    );
    let theirs = a
        .describe_groups(&["theirs-0".to_string()])
        .await
        .expect("describe")[0]
        .instances[0]
        .id
        .clone();
    for r in [
        a.set_desired("theirs-0", 2, 3).await.map(|_| ()),
        a.retire(&theirs, true).await.map(|_| ()),
    ] {
        assert!(
            matches!(&r, Err(PortError::Rejected(m)) if m.contains("this cluster's tag")),
            "{r:?}"
        );
    }
    assert_eq!(
        a.calls().of("SetDesiredCapacity") + a.calls().of("TerminateInstanceInAutoScalingGroup"),
        0,
        "nothing was sent for the other cluster's group"
    );
    assert_eq!(
        a.set_desired("ours-0", 2, 3).await,
        Ok(SetDesiredOutcome::Raised)
    );
}

/// The figures for the notes: what one signal and one minute of steady state cost.
#[tokio::test]
async fn calls_per_signal_and_in_steady_state() {
    let Some(m) = moto() else { return };
    let c = client(&m);
    groups(&c, "cost", 3, 4, 10, &[]).await;
    let a = adapter(
        &m,
        Settings {
            describe_ttl: Duration::from_millis(400),
            ..Settings::default()
        },
    );
    let all = names("cost", 3);
    // Steady state: a loop pass every 50 ms for 2 s describes at most once per TTL.
    let start = Instant::now();
    let mut passes = 0;
    while start.elapsed() < Duration::from_secs(2) {
        a.describe_groups(&all).await.expect("describe");
        passes += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let steady = a.calls().of("DescribeAutoScalingGroups");
    assert!(passes >= 20, "{passes} passes");
    assert!(steady <= 2000 / 400 + 1, "{steady} describes in 2 s");
    eprintln!("steady state: {passes} loop passes in 2 s, {steady} DescribeAutoScalingGroups (TTL 400 ms)");

    // One signal: boost, then retire the drained node with decrement.
    let before = a.calls().snapshot();
    assert_eq!(
        a.set_desired("cost-1", 4, 5).await,
        Ok(SetDesiredOutcome::Raised)
    );
    let victim = a.describe_groups(&all).await.expect("describe")[1].instances[0]
        .id
        .clone();
    assert_eq!(a.retire(&victim, true).await, Ok(RetireOutcome::Terminated));
    let after = a.calls().snapshot();
    let per_signal: Vec<(&str, u64)> = after
        .iter()
        .map(|((op, _), n)| (*op, n - before.get(&(*op, "ok")).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    eprintln!("one signal: {per_signal:?}");
    let of = |op: &str| {
        per_signal
            .iter()
            .find(|(o, _)| *o == op)
            .map_or(0, |(_, n)| *n)
    };
    assert_eq!(of("SetDesiredCapacity"), 1);
    assert_eq!(of("TerminateInstanceInAutoScalingGroup"), 1);
    assert_eq!(of("DescribeAutoScalingInstances"), 1);
    // set_desired's re-read, the describe after our write, retire's look at the group.
    assert_eq!(of("DescribeAutoScalingGroups"), 3);
}
