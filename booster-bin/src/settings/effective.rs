//! What the flags configure: the engine's settings, the Kubernetes and Auto Scaling
//! adapters', leader-election and pass timings, and `--print-config`, which shows them.

use std::time::Duration;

use anyhow::{Context, Result};
use booster_core::surge::SurgeMode;
use booster_core::{AdaptiveRule, Config, DrainOn};

use super::{list, std_dur, BoostModeArg, DrainOnArg, Mode, RunArgs, SurgeArg};

impl RunArgs {
    /// Leader-election timings from the flags, refused when two replicas could act at once.
    pub fn lease_timings(&self) -> Result<booster_k8s::lease::Timings> {
        let t = booster_k8s::lease::Timings {
            lease_duration: std_dur(self.leader_elect_lease_duration),
            renew_deadline: std_dur(self.leader_elect_renew_deadline),
            retry_period: std_dur(self.leader_elect_retry_period),
        };
        t.validate()
            .map_err(|e| anyhow::anyhow!("--leader-elect-*: {e}"))?;
        Ok(t)
    }

    /// The longest one pass may take before the watchdog ends it (it is then retried).
    pub fn pass_timeout(&self) -> Duration {
        // Above the longest single call (an Auto Scaling call with its retries, 20 s; a
        // Kubernetes read, 30 s), so that the watchdog ends wedged passes, not slow calls.
        (2 * std_dur(self.resync)).max(Duration::from_secs(60))
    }

    /// `/healthz` fails when no pass has had the apiserver's answer for this long.
    pub fn liveness_window(&self) -> Duration {
        (3 * std_dur(self.resync)).max(self.pass_timeout() + std_dur(self.resync))
    }

    /// The Kubernetes client these flags name.
    pub async fn kube(&self) -> Result<kube::Client> {
        let mode = match self.connection_mode {
            Mode::Kubectl => booster_k8s::ConnectionMode::Kubectl,
            Mode::Incluster => booster_k8s::ConnectionMode::InCluster,
        };
        booster_k8s::client(mode, self.kubeconfig.as_deref())
            .await
            .context("connecting to Kubernetes")
    }

    /// The Kubernetes adapter's settings; `identity` names this replica.
    pub fn kube_settings(&self, identity: &str) -> booster_k8s::Settings {
        booster_k8s::Settings {
            ca_namespace: self.namespace.clone(),
            ca_configmap: self.configmap.clone(),
            event_namespaces: list(&self.event_namespaces).into_iter().collect(),
            namespace: self.lease_namespace.clone(),
            ledger_configmap: self.ledger_name.clone(),
            instance: identity.to_string(),
            eviction_grace_seconds: self.ignore_pods_grace_period.then_some(0),
            pods: booster_k8s::convert::PodRules {
                evict_unowned: self.drain_force,
                evict_emptydir: self.drain_delete_emptydir_data,
                ..booster_k8s::convert::PodRules::default()
            },
            placeholders: booster_k8s::placeholders::PlaceholderSettings {
                namespace: self.placeholder_namespace.clone(),
                image: self.placeholder_image.clone(),
                priority_class: self.placeholder_priority_class.clone(),
            },
            surge: booster_k8s::surge::SurgeSettings {
                mode: match self.surge {
                    SurgeArg::Off => SurgeMode::Off,
                    SurgeArg::SingleReplica => SurgeMode::SingleReplica,
                    SurgeArg::BudgetBlocked => SurgeMode::BudgetBlocked,
                },
                timeout: self.surge_timeout,
            },
            dry_run: self.dry_run,
            ..booster_k8s::Settings::default()
        }
    }

    /// The Auto Scaling adapter these flags configure.
    pub async fn cloud(&self) -> booster_aws::AutoScaling {
        let settings = booster_aws::Settings {
            region: self.aws_region.clone(),
            endpoint_url: self.aws_endpoint_url.clone(),
            opt_out_tag: self.opt_out_tag.clone(),
            cluster_tag: self.engine_config().cluster_tag,
            calls_per_second: self.aws_calls_per_second,
            ..booster_aws::Settings::default()
        };
        let sdk = booster_aws::sdk_config(&settings).await;
        booster_aws::AutoScaling::new(&sdk, settings)
    }

    /// The engine's settings.
    pub fn engine_config(&self) -> Config {
        Config {
            extra_nodes_per_signal: self.extra_nodes_over_calculation,
            boost_cap_per_group: self.boost_cap,
            max_concurrent_drains: self.max_concurrent_drains,
            time_between_drains: self.time_between_drains,
            drain_timeout: self.drain_timeout,
            replacement_wait: self.replacement_wait,
            signal_expiry: self.signal_expiry,
            new_node_window: self.max_time_consider_new_node,
            ca_status_max_age: self.ca_status_max_age,
            ignored_groups: list(&self.ignored_autoscaling_groups),
            opt_out_tag: self.opt_out_tag.clone(),
            disable_drain: self.disable_drain,
            dry_run: self.dry_run,
            event_namespaces: list(&self.event_namespaces),
            event_components: list(&self.event_components),
            nth_field_managers: list(&self.nth_field_managers),
            clock_skew: self.signal_clock_skew,
            corroboration_window: self.corroboration_window,
            cluster_tag: self.cluster_tag.clone().or_else(|| {
                self.cluster_name
                    .as_deref()
                    .map(booster_core::config::cluster_tag_for)
            }),
            fallback_groups: self.fallback_groups.clone(),
            launch_failure_backoff: self.launch_failure_backoff,
            refusals_before_give_up: self.refusals_before_give_up.max(1),
            boost_mode: match self.boost_mode {
                BoostModeArg::Desired => booster_core::BoostMode::Desired,
                BoostModeArg::Placeholder => booster_core::BoostMode::Placeholder,
            },
            drain_on: match self.drain_on {
                DrainOnArg::Rebalance => DrainOn::Rebalance,
                DrainOnArg::Interruption => DrainOn::Interruption,
                DrainOnArg::Adaptive => DrainOn::Adaptive,
            },
            adaptive: AdaptiveRule {
                storm_signals: self.adaptive_storm_signals,
                storm_window: self.adaptive_storm_window,
                follow_through_percent: self.adaptive_follow_through,
                min_outcomes: self.adaptive_min_outcomes,
            },
        }
    }
}

/// The effective settings, for `--print-config`.
pub fn print_config(args: &RunArgs) -> Result<()> {
    let doc = serde_json::json!({
        "engine": args.engine_config(),
        "connectionMode": format!("{:?}", args.connection_mode).to_lowercase(),
        "caStatus": {"namespace": args.namespace, "name": args.configmap},
        "leaderElect": args.leader_elect,
        "lease": {"namespace": args.lease_namespace, "name": args.lease_name},
        "ledger": {"namespace": args.lease_namespace, "name": args.ledger_name},
        "metrics": format!("{}:{}", args.metrics_host, args.metrics_port),
        "ignorePodsGracePeriod": args.ignore_pods_grace_period,
        "drainForce": args.drain_force,
        "drainDeleteEmptydirData": args.drain_delete_emptydir_data,
        "logFormat": format!("{:?}", args.log_format).to_lowercase(),
        "logLevel": format!("{:?}", args.log_level).to_lowercase(),
        "resync": args.resync,
        "leaderElection": {
            "leaseDuration": args.leader_elect_lease_duration,
            "renewDeadline": args.leader_elect_renew_deadline,
            "retryPeriod": args.leader_elect_retry_period,
        },
        "passTimeout": format!("{}s", args.pass_timeout().as_secs()),
        "livenessWindow": format!("{}s", args.liveness_window().as_secs()),
    });
    crate::print_json(&doc)
}
