//! Error paths moto cannot produce, against a client mocked with aws-smithy-mocks: moto
//! accepts any desired capacity (no MaxSize/MinSize check), answers unknown groups and
//! instances with an HTTP 500 page, and never throttles or reports activities in progress.

use std::time::Duration;

use aws_sdk_autoscaling::config::retry::RetryConfig;
use aws_sdk_autoscaling::error::ErrorMetadata;
use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput;
use aws_sdk_autoscaling::operation::describe_auto_scaling_instances::DescribeAutoScalingInstancesOutput;
use aws_sdk_autoscaling::operation::set_desired_capacity::{
    SetDesiredCapacityError, SetDesiredCapacityOutput,
};
use aws_sdk_autoscaling::operation::terminate_instance_in_auto_scaling_group::TerminateInstanceInAutoScalingGroupError;
use aws_sdk_autoscaling::types::error::{ResourceContentionFault, ScalingActivityInProgressFault};
use aws_sdk_autoscaling::types::{
    AutoScalingGroup, AutoScalingInstanceDetails, Instance, LifecycleState,
};
use aws_sdk_autoscaling::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use booster_aws::{AutoScaling, Settings};
use booster_core::ports::{Cloud, PortError, RetireOutcome};

fn group(desired: i32, max: i32) -> AutoScalingGroup {
    AutoScalingGroup::builder()
        .auto_scaling_group_name("spot")
        .min_size(1)
        .max_size(max)
        .desired_capacity(desired)
        .instances(
            Instance::builder()
                .instance_id("i-1")
                .availability_zone("eu-west-1a")
                .lifecycle_state(LifecycleState::InService)
                .health_status("Healthy")
                .protected_from_scale_in(false)
                .build(),
        )
        .build()
}

fn describe(desired: i32, max: i32) -> Rule {
    mock!(Client::describe_auto_scaling_groups).then_output(move || {
        DescribeAutoScalingGroupsOutput::builder()
            .auto_scaling_groups(group(desired, max))
            .build()
    })
}

fn meta(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

fn adapter(rules: &[&Rule], attempts: u32) -> AutoScaling {
    let client = mock_client!(aws_sdk_autoscaling, RuleMode::MatchAny, rules, |c| c
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(attempts)
                .with_initial_backoff(Duration::from_millis(1))
        ));
    AutoScaling::from_client(client, Settings::default())
}

async fn set_desired_failing_with(err: SetDesiredCapacityError) -> Result<(), PortError> {
    let d = describe(2, 5);
    let err = std::sync::Mutex::new(Some(err));
    let set = mock!(Client::set_desired_capacity).then_error(move || {
        err.lock()
            .ok()
            .and_then(|mut e| e.take())
            .unwrap_or_else(|| SetDesiredCapacityError::generic(meta("Unexpected", "called twice")))
    });
    let a = adapter(&[&d, &set], 1);
    let r = a.set_desired("spot", 2, 3).await.map(|_| ());
    assert_eq!(set.num_calls(), 1);
    assert_eq!(
        a.calls().of("SetDesiredCapacity"),
        1,
        "the failed call is counted"
    );
    r
}

#[tokio::test]
async fn validation_error_above_max_is_rejected() {
    let r = set_desired_failing_with(SetDesiredCapacityError::generic(meta(
        "ValidationError",
        "New SetDesiredCapacity value 3 is above max value 2 for the AutoScalingGroup.",
    )))
    .await;
    assert!(
        matches!(&r, Err(PortError::Rejected(m)) if m.contains("above max")),
        "{r:?}"
    );
}

#[tokio::test]
async fn activity_in_progress_and_contention_are_busy() {
    let r = set_desired_failing_with(SetDesiredCapacityError::ScalingActivityInProgressFault(
        ScalingActivityInProgressFault::builder()
            .message("Scaling activity in progress")
            .meta(meta(
                "ScalingActivityInProgress",
                "Scaling activity in progress",
            ))
            .build(),
    ))
    .await;
    assert!(matches!(r, Err(PortError::Busy(_))), "{r:?}");
    let r = set_desired_failing_with(SetDesiredCapacityError::ResourceContentionFault(
        ResourceContentionFault::builder()
            .message("You already have a pending update")
            .meta(meta(
                "ResourceContention",
                "You already have a pending update",
            ))
            .build(),
    ))
    .await;
    assert!(
        matches!(&r, Err(PortError::Busy(m)) if m.contains("ResourceContention")),
        "{r:?}"
    );
}

#[tokio::test]
async fn an_unknown_group_is_not_found() {
    let empty = mock!(Client::describe_auto_scaling_groups)
        .then_output(|| DescribeAutoScalingGroupsOutput::builder().build());
    let a = adapter(&[&empty], 1);
    let r = a.set_desired("gone", 2, 3).await;
    assert!(
        matches!(&r, Err(PortError::NotFound(m)) if m.contains("gone")),
        "{r:?}"
    );
    // And the API's own answer for a write to an unknown group maps the same way.
    let r = set_desired_failing_with(SetDesiredCapacityError::generic(meta(
        "ValidationError",
        "AutoScalingGroup name not found - null",
    )))
    .await;
    assert!(matches!(r, Err(PortError::NotFound(_))), "{r:?}");
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk_then_surfaced_as_throttled() {
    let d = describe(2, 5);
    let throttle = || SetDesiredCapacityError::generic(meta("Throttling", "Rate exceeded"));
    // Twice throttled, then accepted: the SDK's retry absorbs it, we count one call.
    let flaky = mock!(Client::set_desired_capacity)
        .sequence()
        .error(throttle)
        .times(2)
        .output(|| SetDesiredCapacityOutput::builder().build())
        .build();
    let a = adapter(&[&d, &flaky], 3);
    assert!(a.set_desired("spot", 2, 3).await.is_ok());
    assert_eq!(flaky.num_calls(), 3);
    assert_eq!(a.calls().of("SetDesiredCapacity"), 1);
    // Always throttled: after the attempts, a Throttled error the loop backs off on.
    let d = describe(2, 5);
    let always = mock!(Client::set_desired_capacity)
        .sequence()
        .error(throttle)
        .repeatedly()
        .build();
    let a = adapter(&[&d, &always], 3);
    let r = a.set_desired("spot", 2, 3).await;
    assert!(
        matches!(&r, Err(e @ PortError::Throttled(_)) if e.is_retryable()),
        "{r:?}"
    );
    assert_eq!(always.num_calls(), 3);
    assert_eq!(
        a.calls()
            .snapshot()
            .get(&("SetDesiredCapacity", "throttled")),
        Some(&1)
    );
}

#[tokio::test]
async fn an_html_error_page_is_unavailable_not_a_crash() {
    let page = mock!(Client::describe_auto_scaling_groups)
        .sequence()
        .http_status(
            500,
            Some("<!doctype html><title>500 Internal Server Error</title>".into()),
        )
        .build();
    let a = adapter(&[&page], 1);
    let r = a.describe_groups(&["spot".into()]).await;
    assert!(matches!(r, Err(PortError::Unavailable(_))), "{r:?}");
}

#[tokio::test]
async fn a_retire_racing_the_instances_end_counts_as_done() {
    let where_ = mock!(Client::describe_auto_scaling_instances).then_output(|| {
        DescribeAutoScalingInstancesOutput::builder()
            .auto_scaling_instances(
                AutoScalingInstanceDetails::builder()
                    .instance_id("i-1")
                    .auto_scaling_group_name("spot")
                    .lifecycle_state("InService")
                    .build(),
            )
            .build()
    });
    let d = describe(2, 5);
    let gone = mock!(Client::terminate_instance_in_auto_scaling_group).then_error(|| {
        TerminateInstanceInAutoScalingGroupError::generic(meta(
            "ValidationError",
            "Instance Id not found - No managed instance found for instance ID: i-1",
        ))
    });
    let a = adapter(&[&where_, &d, &gone], 1);
    assert_eq!(a.retire("i-1", true).await, Ok(RetireOutcome::AlreadyGone));
    // Forbidden is surfaced as such (IAM policy missing an action).
    let d = describe(2, 5);
    let denied = mock!(Client::terminate_instance_in_auto_scaling_group).then_error(|| {
        TerminateInstanceInAutoScalingGroupError::generic(meta("AccessDenied", "not authorized"))
    });
    let a = adapter(&[&where_, &d, &denied], 1);
    let r = a.retire("i-1", true).await;
    assert!(matches!(r, Err(PortError::Forbidden(_))), "{r:?}");
}
