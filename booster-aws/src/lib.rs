//! AWS adapter of aws-spots-booster: [`AutoScaling`] implements
//! [`booster_core::ports::Cloud`] with aws-sdk-autoscaling.
//!
//! * Describes are batched and paginated, and cached for a short TTL (15 s) that our own
//!   writes invalidate: however often the loop runs, steady state costs at most four
//!   DescribeAutoScalingGroups calls a minute (one with the loop's 60 s resync).
//! * `set_desired` re-reads the group, never lowers desired capacity, never goes above max
//!   size, and skips the call when the group is already at or above the value.
//! * `retire` checks the instance first, so that repeating it after a restart is a no-op.
//! * A group tagged `<opt-out tag>=false` is refused, whatever the engine asked.
//! * Every API call is counted by operation and outcome ([`Calls`]).
//! * Every API call waits for the adapter's own rate limit first ([`Settings::calls_per_second`],
//!   shared by all calls, far below the account's limits that Cluster Autoscaler shares).
//!   The SDK retries in its standard mode, a few attempts: throttling then comes back to
//!   the controller, which backs off that one write (see `booster_core::failures`) while
//!   the others go on. The adaptive mode would instead slow every call down, reads
//!   included, until each pass timed out and counted Auto Scaling as down.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod activities;
mod errors;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_autoscaling::types::AutoScalingGroup;
use aws_sdk_autoscaling::Client;
use booster_core::config::DEFAULT_OPT_OUT_TAG;
use booster_core::ports::{Cloud, DescribeCache, PortError, RetireOutcome, SetDesiredOutcome};
use booster_core::snapshot::Activities;
use booster_core::{Group, Instance, Lifecycle};

use errors::port_error;

/// DescribeAutoScalingGroups takes this many names per call (the API's page size is 100).
const NAMES_PER_CALL: usize = 50;
/// DescribeAutoScalingInstances takes up to 50 instance ids per call.
const IDS_PER_CALL: usize = 50;

/// How the adapter connects and behaves.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Region; the default chain (`AWS_REGION`, profile, IMDS) when unset.
    pub region: Option<String>,
    /// Endpoint override (tests, LocalStack-style setups); `AWS_ENDPOINT_URL` also works.
    pub endpoint_url: Option<String>,
    /// A group with this tag set to `false` is never touched.
    pub opt_out_tag: String,
    /// When set, a group without this tag key (this cluster's) is never touched.
    pub cluster_tag: Option<String>,
    /// How long a describe is reused.
    pub describe_ttl: Duration,
    /// Attempts per call, the first included (standard retry mode: jittered exponential
    /// backoff and a retry quota).
    pub max_attempts: u32,
    /// Calls per second the adapter makes at most, in all (bursts of up to three
    /// seconds' worth). 0: no limit.
    pub calls_per_second: u32,
    /// Deadline of one attempt of a call.
    pub attempt_timeout: Duration,
    /// Deadline of a call, its retries included.
    pub operation_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            region: None,
            endpoint_url: None,
            opt_out_tag: DEFAULT_OPT_OUT_TAG.to_string(),
            cluster_tag: None,
            // The simulator's figures assume the same.
            describe_ttl: Duration::from_secs(15),
            max_attempts: 3,
            calls_per_second: 2,
            attempt_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(20),
        }
    }
}

/// Loads the SDK configuration: the default credential chain (environment, profile,
/// IRSA web identity, EKS Pod Identity, IMDS), the region and endpoint from `settings` when
/// set, and the standard retry mode.
pub async fn sdk_config(settings: &Settings) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(settings.max_attempts.max(1)))
        // Without these only connecting has a deadline: a call whose answer never comes
        // would hold the pass forever.
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .read_timeout(settings.attempt_timeout)
                .operation_attempt_timeout(settings.attempt_timeout)
                .operation_timeout(settings.operation_timeout)
                .build(),
        );
    if let Some(r) = &settings.region {
        loader = loader.region(Region::new(r.clone()));
    }
    if let Some(e) = &settings.endpoint_url {
        loader = loader.endpoint_url(e);
    }
    loader.load().await
}

/// API calls by `(operation, outcome)`; outcome is `ok` or a [`PortError::metric_label`].
/// SDK retries of one call count once, with the final outcome.
#[derive(Debug, Default)]
pub struct Calls {
    counts: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

impl Calls {
    fn record<T>(&self, op: &'static str, r: &Result<T, PortError>) {
        let outcome = match r {
            Ok(_) => "ok",
            Err(e) => e.metric_label(),
        };
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        *c.entry((op, outcome)).or_default() += 1;
    }

    /// Every count so far.
    pub fn snapshot(&self) -> BTreeMap<(&'static str, &'static str), u64> {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Calls of one operation, whatever their outcome.
    pub fn of(&self, op: &str) -> u64 {
        self.snapshot()
            .iter()
            .filter(|((o, _), _)| *o == op)
            .map(|(_, n)| n)
            .sum()
    }
}

/// The Auto Scaling adapter.
pub struct AutoScaling {
    client: Client,
    settings: Settings,
    calls: Arc<Calls>,
    cache: Mutex<DescribeCache<Instant>>,
    /// DescribeScalingActivities answers by group, reused for the describe TTL.
    activities: Mutex<BTreeMap<String, (Instant, Activities)>>,
    /// The pace of all calls (`None`: no limit).
    pace: Option<governor::DefaultDirectRateLimiter>,
}

/// The most scaling activities read per group: the recent ones are all that matter.
const ACTIVITIES_PER_CALL: i32 = 20;

fn to_u32(v: Option<i32>) -> u32 {
    v.and_then(|v| u32::try_from(v).ok()).unwrap_or(0)
}

fn group_of(g: &AutoScalingGroup) -> Group {
    // Weights from the overrides; an override without a type (attribute-based selection)
    // has no weight to key by and is left out.
    let weights: BTreeMap<String, u32> = g
        .mixed_instances_policy()
        .and_then(|p| p.launch_template())
        .map(|lt| lt.overrides())
        .unwrap_or_default()
        .iter()
        .filter_map(|o| {
            let w = o.weighted_capacity()?.trim().parse::<u32>().ok()?;
            Some((o.instance_type()?.to_string(), w.max(1)))
        })
        .collect();
    Group {
        name: g.auto_scaling_group_name().unwrap_or_default().to_string(),
        min_size: to_u32(g.min_size()),
        max_size: to_u32(g.max_size()),
        desired: to_u32(g.desired_capacity()),
        instances: g
            .instances()
            .iter()
            .map(|i| Instance {
                id: i.instance_id().unwrap_or_default().to_string(),
                az: i.availability_zone().unwrap_or_default().to_string(),
                lifecycle: Lifecycle::from_aws(i.lifecycle_state().map_or("", |s| s.as_str())),
                healthy: i.health_status().is_some_and(|h| h == "Healthy"),
                protected_from_scale_in: i.protected_from_scale_in().unwrap_or(false),
                instance_type: i.instance_type().unwrap_or_default().to_string(),
                weight: i
                    .weighted_capacity()
                    .and_then(|w| w.trim().parse::<u32>().ok()),
            })
            .collect(),
        tags: g
            .tags()
            .iter()
            .filter_map(|t| {
                Some((
                    t.key()?.to_string(),
                    t.value().unwrap_or_default().to_string(),
                ))
            })
            .collect(),
        capacity_rebalance: g.capacity_rebalance().unwrap_or(false),
        suspended_processes: g
            .suspended_processes()
            .iter()
            .filter_map(|p| p.process_name().map(str::to_string))
            .collect(),
        azs: g.availability_zones().to_vec(),
        weights,
        warm_pool: g.warm_pool_configuration().is_some(),
        launch_failures: Vec::new(),
        raises: Vec::new(),
        activities_read: false,
        kind: booster_core::GroupKind::AutoScaling,
    }
}

impl AutoScaling {
    /// An adapter on `config` (see [`sdk_config`]).
    pub fn new(config: &SdkConfig, settings: Settings) -> Self {
        Self::from_client(Client::new(config), settings)
    }

    /// An adapter on a ready client (tests use a mocked one).
    pub fn from_client(client: Client, settings: Settings) -> Self {
        AutoScaling {
            client,
            calls: Arc::new(Calls::default()),
            cache: Mutex::new(DescribeCache::default()),
            activities: Mutex::new(BTreeMap::new()),
            pace: std::num::NonZeroU32::new(settings.calls_per_second).map(|n| {
                let burst = n.saturating_mul(std::num::NonZeroU32::MIN.saturating_add(2));
                governor::RateLimiter::direct(governor::Quota::per_second(n).allow_burst(burst))
            }),
            settings,
        }
    }

    /// Waits for the rate limit to let one call of `op` go; a wait longer than a call's
    /// own deadline is reported as throttling (ours), so that the write backs off.
    async fn paced(&self, op: &str) -> Result<(), PortError> {
        let Some(limit) = &self.pace else {
            return Ok(());
        };
        tokio::time::timeout(self.settings.operation_timeout, limit.until_ready())
            .await
            .map_err(|_| {
                PortError::Throttled(format!(
                    "{op}: the booster's own Auto Scaling rate limit ({}/s) is saturated",
                    self.settings.calls_per_second
                ))
            })
    }

    /// The call counter, for the binary's metrics.
    pub fn calls(&self) -> Arc<Calls> {
        self.calls.clone()
    }

    /// Forgets cached describes (done after every write of ours).
    pub fn invalidate(&self) {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    fn opted_out(&self, g: &Group) -> bool {
        g.tags
            .get(&self.settings.opt_out_tag)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("false"))
    }

    /// DescribeAutoScalingGroups for `names`, batched and paginated, without the cache.
    async fn fetch(&self, names: &[String]) -> Result<Vec<Group>, PortError> {
        let mut out = Vec::with_capacity(names.len());
        for chunk in names.chunks(NAMES_PER_CALL) {
            let mut pages = self
                .client
                .describe_auto_scaling_groups()
                .set_auto_scaling_group_names(Some(chunk.to_vec()))
                .max_records(100)
                .into_paginator()
                .send();
            // One page per chunk (the chunk is within a page's records): paced once.
            self.paced("DescribeAutoScalingGroups").await?;
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| port_error("DescribeAutoScalingGroups", &e));
                self.calls.record("DescribeAutoScalingGroups", &page);
                out.extend(page?.auto_scaling_groups().iter().map(group_of));
            }
        }
        Ok(out)
    }

    /// One group, fresh.
    async fn fetch_one(&self, name: &str) -> Result<Group, PortError> {
        self.fetch(&[name.to_string()])
            .await?
            .into_iter()
            .find(|g| g.name == name)
            .ok_or_else(|| PortError::NotFound(format!("Auto Scaling group {name} not found")))
    }

    /// The engine's own guard, again at the last moment: an opted-out group, or one that
    /// is not this cluster's, is never written to.
    fn refuse_untouchable(&self, g: &Group, what: &str) -> Result<(), PortError> {
        if self.opted_out(g) {
            tracing::warn!(group = %g.name, tag = %self.settings.opt_out_tag, "refused {what}: the group opted out");
            return Err(PortError::Rejected(format!(
                "{what}: group {} is opted out by tag {}=false",
                g.name, self.settings.opt_out_tag
            )));
        }
        if let Some(tag) = self
            .settings
            .cluster_tag
            .as_ref()
            .filter(|t| !g.tags.contains_key(*t))
        {
            tracing::warn!(group = %g.name, tag = %tag, "refused {what}: the group is not this cluster's");
            return Err(PortError::Rejected(format!(
                "{what}: group {} does not carry this cluster's tag {tag}",
                g.name
            )));
        }
        Ok(())
    }
}

#[async_trait]
impl Cloud for AutoScaling {
    async fn describe_groups(&self, names: &[String]) -> Result<Vec<Group>, PortError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let ttl = self.settings.describe_ttl;
        if let Some(hit) = self
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(names, |at: Instant| at.elapsed() < ttl)
        {
            return Ok(hit);
        }
        let groups = self.fetch(names).await?;
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .put(Instant::now(), names, &groups);
        Ok(groups)
    }

    async fn groups_of(&self, instance_ids: &[String]) -> Result<Vec<(String, String)>, PortError> {
        let mut out = Vec::new();
        for chunk in instance_ids.chunks(IDS_PER_CALL) {
            let mut pages = self
                .client
                .describe_auto_scaling_instances()
                .set_instance_ids(Some(chunk.to_vec()))
                .max_records(50)
                .into_paginator()
                .send();
            // One page per chunk (the chunk is within a page's records): paced once.
            self.paced("DescribeAutoScalingInstances").await?;
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| port_error("DescribeAutoScalingInstances", &e));
                self.calls.record("DescribeAutoScalingInstances", &page);
                out.extend(page?.auto_scaling_instances().iter().filter_map(|i| {
                    Some((
                        i.instance_id()?.to_string(),
                        i.auto_scaling_group_name()?.to_string(),
                    ))
                }));
            }
        }
        Ok(out)
    }

    async fn set_desired(
        &self,
        group: &str,
        from: u32,
        desired: u32,
    ) -> Result<SetDesiredOutcome, PortError> {
        // The engine decided on a view a few seconds old: re-read before writing.
        let g = self.fetch_one(group).await?;
        self.refuse_untouchable(&g, "SetDesiredCapacity")?;
        if g.desired >= desired {
            tracing::info!(
                group,
                desired,
                current = g.desired,
                "desired capacity already at or above: no call"
            );
            return Ok(SetDesiredOutcome::AlreadyAtOrAbove);
        }
        // Somebody (CA) moved it since the plan: raising to `desired` now would not be the
        // boost the engine computed. It decides again on the next pass.
        if g.desired != from {
            // The cached describe the engine decided on is stale: the next pass reads anew.
            self.invalidate();
            return Err(PortError::Conflict(format!(
                "SetDesiredCapacity {group}: desired capacity is {}, not the {from} planned with",
                g.desired
            )));
        }
        if desired > g.max_size {
            return Err(PortError::Rejected(format!(
                "SetDesiredCapacity {group}: {desired} is above the group's max size {}",
                g.max_size
            )));
        }
        let value = i32::try_from(desired).map_err(|_| {
            PortError::Rejected(format!(
                "SetDesiredCapacity {group}: {desired} is out of range"
            ))
        })?;
        self.paced("SetDesiredCapacity").await?;
        let r = self
            .client
            .set_desired_capacity()
            .auto_scaling_group_name(group)
            .desired_capacity(value)
            .honor_cooldown(false)
            .send()
            .await
            .map_err(|e| port_error(&format!("SetDesiredCapacity {group}"), &e));
        self.calls.record("SetDesiredCapacity", &r);
        self.invalidate();
        r?;
        tracing::info!(
            group,
            from = g.desired,
            to = desired,
            "desired capacity raised"
        );
        Ok(SetDesiredOutcome::Raised)
    }

    async fn scaling_activities(&self, group: &str) -> Result<Activities, PortError> {
        let ttl = self.settings.describe_ttl;
        if let Some((at, a)) = self
            .activities
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(group)
        {
            if at.elapsed() < ttl {
                return Ok(a.clone());
            }
        }
        self.paced("DescribeScalingActivities").await?;
        let r = self
            .client
            .describe_scaling_activities()
            .auto_scaling_group_name(group)
            .max_records(ACTIVITIES_PER_CALL)
            .send()
            .await
            .map_err(|e| port_error(&format!("DescribeScalingActivities {group}"), &e));
        self.calls.record("DescribeScalingActivities", &r);
        let read = activities::read(r?.activities());
        if let Some(f) = read.failures.first() {
            tracing::warn!(group, at = %f.at, message = %f.message, "the group failed to launch");
        }
        let mut cache = self
            .activities
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Bounded: one entry per group asked about, and the old ones go.
        cache.retain(|_, (at, _)| at.elapsed() < ttl);
        cache.insert(group.to_string(), (Instant::now(), read.clone()));
        Ok(read)
    }

    fn forget_cached(&self) {
        self.invalidate();
    }

    async fn retire(&self, instance_id: &str, decrement: bool) -> Result<RetireOutcome, PortError> {
        // Look first: a retire repeated after a restart must be a no-op, and the API's answer
        // for an instance already gone is an error (a 500 page from some emulators).
        let found = self.groups_of(&[instance_id.to_string()]).await?;
        let Some((_, group)) = found.into_iter().find(|(id, _)| id == instance_id) else {
            tracing::info!(
                instance_id,
                "instance is in no Auto Scaling group any more: nothing to retire"
            );
            return Ok(RetireOutcome::AlreadyGone);
        };
        let g = self.fetch_one(&group).await?;
        self.refuse_untouchable(&g, "TerminateInstanceInAutoScalingGroup")?;
        if g.instances
            .iter()
            .any(|i| i.id == instance_id && i.lifecycle.is_leaving())
        {
            return Ok(RetireOutcome::AlreadyGone);
        }
        self.paced("TerminateInstanceInAutoScalingGroup").await?;
        let r = self
            .client
            .terminate_instance_in_auto_scaling_group()
            .instance_id(instance_id)
            .should_decrement_desired_capacity(decrement)
            .send()
            .await
            .map_err(|e| {
                port_error(
                    &format!("TerminateInstanceInAutoScalingGroup {instance_id}"),
                    &e,
                )
            });
        self.calls.record("TerminateInstanceInAutoScalingGroup", &r);
        self.invalidate();
        match r {
            Ok(_) => {
                tracing::info!(instance_id, group, decrement, "instance retired");
                Ok(RetireOutcome::Terminated)
            }
            // Gone between our look and the call.
            Err(PortError::NotFound(_)) => Ok(RetireOutcome::AlreadyGone),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn settings_choose_region_endpoint_and_retries() {
        let c = sdk_config(&Settings {
            region: Some("eu-west-3".into()),
            endpoint_url: Some("http://127.0.0.1:4566".into()),
            max_attempts: 7,
            ..Settings::default()
        })
        .await;
        assert_eq!(c.region().map(|r| r.as_ref()), Some("eu-west-3"));
        assert_eq!(c.endpoint_url(), Some("http://127.0.0.1:4566"));
        let retry = c.retry_config().map(|r| (r.mode(), r.max_attempts()));
        assert_eq!(retry, Some((aws_config::retry::RetryMode::Standard, 7)));
    }
}
