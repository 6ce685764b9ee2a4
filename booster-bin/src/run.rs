//! The controller: flags, wiring, the event-driven loop, `/metrics`, `/healthz`, `/readyz`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use async_trait::async_trait;
use booster_core::ports::Leadership;
use booster_core::{Config, Dur};
use clap::{Args, ValueEnum};
use tokio::sync::watch;

use crate::controller::{wall_clock, Controller, Ports};
use crate::fence::{FencedCloud, FencedCluster};
use crate::health::Health;
use crate::metrics::Metrics;

fn dur(s: &str) -> Result<Dur, String> {
    Dur::parse(s).map_err(|e| e.to_string())
}

/// `--max-time-consider-new-node`: a window. The Go project writes it as the negative
/// offset it adds to now (`-10m`, its default); both forms mean the same window here.
pub(crate) fn window(s: &str) -> Result<Dur, String> {
    dur(s.strip_prefix('-').unwrap_or(s))
}

/// How to reach Kubernetes (the seed's flag).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// A kubeconfig file.
    Kubectl,
    /// The pod's service account.
    Incluster,
}

/// Least level logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// Everything the booster says about each pass.
    Debug,
    /// Actions, holds that change, warnings.
    Info,
    /// Only what needs a look.
    Warn,
    /// Only failures.
    Error,
}

/// How a signal's capacity is asked for in Auto Scaling groups (`--boost-mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BoostModeArg {
    /// SetDesiredCapacity on the signal's group.
    Desired,
    /// Placeholder pods; the autoscaler in charge provisions for them.
    Placeholder,
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable.
    Plain,
    /// One JSON object per line.
    Json,
}

/// The controller's flags; each can also come from the environment variable named.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// How to reach the apiserver.
    #[arg(long, value_enum, default_value = "kubectl", env = "CONNECTION_MODE")]
    pub connection_mode: Mode,
    /// Kubeconfig for `kubectl` mode, `~` expanded [default: $KUBECONFIG, else ~/.kube/config]
    #[arg(long, env = "KUBECONFIG_PATH", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Namespace of cluster-autoscaler's status ConfigMap.
    #[arg(
        long,
        visible_alias = "ca-status-namespace",
        default_value = "kube-system",
        env = "CA_STATUS_NAMESPACE"
    )]
    pub namespace: String,
    /// Name of cluster-autoscaler's status ConfigMap.
    #[arg(
        long,
        visible_alias = "ca-status-name",
        default_value = "cluster-autoscaler-status",
        env = "CA_STATUS_NAME"
    )]
    pub configmap: String,
    /// Compute, log and export the plan; change nothing.
    #[arg(long, env = "DRY_RUN", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub dry_run: bool,
    /// Comma-separated Auto Scaling groups never touched.
    #[arg(long, default_value = "", env = "IGNORED_AUTOSCALING_GROUPS")]
    pub ignored_autoscaling_groups: String,
    /// Nodes added per signal on top of its replacement.
    #[arg(long, default_value_t = 0, env = "EXTRA_NODES_OVER_CALCULATION")]
    pub extra_nodes_over_calculation: u32,
    /// Boost only; leave draining to somebody else.
    #[arg(long, env = "DISABLE_DRAIN", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub disable_drain: bool,
    /// One drain attempt's deadline (Go duration, e.g. 2m).
    #[arg(long, default_value = "120s", value_parser = dur, env = "DRAIN_TIMEOUT")]
    pub drain_timeout: Dur,
    /// Drains at once.
    #[arg(long, default_value_t = 5, env = "MAX_CONCURRENT_DRAINS")]
    pub max_concurrent_drains: u32,
    /// Least time between two drain starts.
    #[arg(long, default_value = "60s", value_parser = dur, env = "TIME_BETWEEN_DRAINS")]
    pub time_between_drains: Dur,
    /// Evict with a zero grace period instead of each pod's own.
    #[arg(long, env = "IGNORE_PODS_GRACE_PERIOD", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub ignore_pods_grace_period: bool,
    /// Evict pods no controller owns (nothing recreates them), as `kubectl drain --force`
    /// does; without it such a pod blocks the drain and is reported.
    #[arg(long, env = "DRAIN_FORCE", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub drain_force: bool,
    /// Evict pods with emptyDir volumes (their data is lost), as `kubectl drain
    /// --delete-emptydir-data` does; without it such a pod blocks the drain and is reported.
    #[arg(long, env = "DRAIN_DELETE_EMPTYDIR_DATA", num_args = 0..=1, default_value_t = false, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub drain_delete_emptydir_data: bool,
    /// A node created longer ago than this is no replacement. The Go project's negative
    /// form (`-10m`, `-20m`) means the same window.
    #[arg(long, default_value = "10m", value_parser = window, allow_hyphen_values = true, env = "MAX_TIME_CONSIDER_NEW_NODE")]
    pub max_time_consider_new_node: Dur,
    /// Port of /metrics, /healthz and /readyz.
    #[arg(long, default_value_t = 2112, env = "METRICS_PORT")]
    pub metrics_port: u16,
    /// Address they listen on.
    #[arg(long, default_value = "0.0.0.0", env = "METRICS_HOST")]
    pub metrics_host: String,
    /// Log format (RUST_LOG filters).
    #[arg(long, value_enum, default_value = "plain", env = "LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Least level logged when RUST_LOG is unset (the Go project's example spells it
    /// `--zap-log-level`).
    #[arg(
        long,
        value_enum,
        visible_alias = "zap-log-level",
        default_value = "info",
        env = "LOG_LEVEL"
    )]
    pub log_level: LogLevel,
    /// A signal with no interruption after this long expires: drained nodes are retired,
    /// others given back.
    #[arg(long, default_value = "30m", value_parser = dur, env = "SIGNAL_EXPIRY")]
    pub signal_expiry: Dur,
    /// Most boosted nodes outstanding per group (0: only max size limits).
    #[arg(long, default_value_t = 10, env = "BOOST_CAP")]
    pub boost_cap: u32,
    /// How long a boosted signal waits for its replacement to be Ready.
    #[arg(long, default_value = "6m", value_parser = dur, env = "REPLACEMENT_WAIT")]
    pub replacement_wait: Dur,
    /// A cluster-autoscaler status older than this is stale: no boosts.
    #[arg(long, default_value = "3m", value_parser = dur, env = "CA_STATUS_MAX_AGE")]
    pub ca_status_max_age: Dur,
    /// Tag whose value `false` opts a group out.
    #[arg(long, default_value = booster_core::config::DEFAULT_OPT_OUT_TAG, env = "OPT_OUT_TAG")]
    pub opt_out_tag: String,
    /// Elect a leader with a Lease (run more than one replica safely).
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set, env = "LEADER_ELECT")]
    pub leader_elect: bool,
    /// Print the settings these flags give, as JSON, and exit.
    #[arg(long)]
    pub print_config: bool,
    /// The Lease's name.
    #[arg(long, default_value = "aws-spots-booster", env = "LEASE_NAME")]
    pub lease_name: String,
    /// How long a standby waits, after it last saw the Lease change, before taking it.
    #[arg(long, default_value = "15s", value_parser = dur, env = "LEADER_ELECT_LEASE_DURATION")]
    pub leader_elect_lease_duration: Dur,
    /// How long the leader keeps acting without a successful renewal (shorter than the
    /// lease duration: it stops before anyone may take over).
    #[arg(long, default_value = "10s", value_parser = dur, env = "LEADER_ELECT_RENEW_DEADLINE")]
    pub leader_elect_renew_deadline: Dur,
    /// How often each replica tries to acquire or renew the Lease.
    #[arg(long, default_value = "2s", value_parser = dur, env = "LEADER_ELECT_RETRY_PERIOD")]
    pub leader_elect_retry_period: Dur,
    /// The ledger ConfigMap's name (created with the RBAC: the booster may only update it).
    #[arg(long, default_value = "aws-spots-booster-ledger", env = "LEDGER_NAME")]
    pub ledger_name: String,
    /// Namespace of the Lease and the ledger ConfigMap (the pod's own).
    #[arg(long, default_value = "kube-system", env = "POD_NAMESPACE")]
    pub lease_namespace: String,
    /// AWS region (else the SDK's chain: AWS_REGION, profile, IMDS).
    #[arg(long, env = "AWS_REGION")]
    pub aws_region: Option<String>,
    /// AWS endpoint override (tests, LocalStack-style setups).
    #[arg(long, env = "AWS_ENDPOINT_URL")]
    pub aws_endpoint_url: Option<String>,
    /// Auto Scaling calls per second at most, all calls together (bursts of three
    /// seconds' worth); far below the account's limits, which Cluster Autoscaler shares.
    /// 0: no limit.
    #[arg(long, default_value_t = 2, env = "AWS_CALLS_PER_SECOND")]
    pub aws_calls_per_second: u32,
    /// Refusals in a row (AccessDenied, ValidationError, HTTP 403) after which a signal's
    /// boost, placeholders or retire is given up and its node given back; throttling,
    /// conflicts and timeouts only back off.
    #[arg(long, default_value_t = 3, env = "REFUSALS_BEFORE_GIVE_UP")]
    pub refusals_before_give_up: u32,
    /// A pass runs at least this often.
    #[arg(long, default_value = "60s", value_parser = dur, env = "RESYNC")]
    pub resync: Dur,
    /// Comma-separated namespaces whose RebalanceRecommendation Events are read (NTH writes
    /// to `default`); Events elsewhere are rejected.
    #[arg(long, default_value = booster_core::config::NTH_EVENT_NAMESPACE, env = "EVENT_NAMESPACES")]
    pub event_namespaces: String,
    /// Comma-separated Event source components read as claims (NTH's, and Karpenter's
    /// `SpotRebalanceRecommendation`); a claim still needs NTH's cordon or taint.
    #[arg(long, default_value = booster_core::config::DEFAULT_EVENT_COMPONENTS, env = "EVENT_COMPONENTS")]
    pub event_components: String,
    /// Comma-separated field managers whose cordon backs an Event (NTH's binary name).
    #[arg(long, default_value = booster_core::config::NTH_FIELD_MANAGER, env = "NTH_FIELD_MANAGERS")]
    pub nth_field_managers: String,
    /// How far an Event's claimed time may run ahead of its creation.
    #[arg(long, default_value = "2m", value_parser = dur, env = "SIGNAL_CLOCK_SKEW")]
    pub signal_clock_skew: Dur,
    /// How close NTH's cordon and its Event must be, and how long an Event may wait for
    /// the Node to back it before it is counted as rejected.
    #[arg(long, default_value = "60s", value_parser = dur, env = "CORROBORATION_WINDOW")]
    pub corroboration_window: Dur,
    /// This cluster's name: only groups tagged `k8s.io/cluster-autoscaler/<name>` (Cluster
    /// Autoscaler's auto-discovery tag) are touched.
    #[arg(long, env = "CLUSTER_NAME", value_name = "NAME")]
    pub cluster_name: Option<String>,
    /// The tag key a group must carry to be touched (instead of the one `--cluster-name`
    /// gives).
    #[arg(long, env = "CLUSTER_TAG", value_name = "KEY")]
    pub cluster_tag: Option<String>,
    /// Groups to boost instead when a group cannot launch, in order:
    /// `spot-a=spot-b|ondemand-a,spot-c=ondemand-c` (a group's `aws-spots-booster/fallback-groups`
    /// tag adds to it).
    #[arg(long, default_value = "", value_parser = fallbacks, env = "FALLBACK_GROUPS", value_name = "GROUP=FALLBACK|...")]
    pub fallback_groups: BTreeMap<String, Vec<String>>,
    /// A group whose launch failed within this long is not boosted (its fallback is).
    #[arg(long, default_value = "10m", value_parser = dur, env = "LAUNCH_FAILURE_BACKOFF")]
    pub launch_failure_backoff: Dur,
    /// How capacity is asked for in Auto Scaling groups: `desired` raises the group's
    /// desired capacity; `placeholder` creates placeholder pods sized after the signalled
    /// node's pods and lets Cluster Autoscaler pick the group (no SetDesiredCapacity
    /// permission needed). Karpenter nodes always get placeholders.
    #[arg(long, value_enum, default_value = "desired", env = "BOOST_MODE")]
    pub boost_mode: BoostModeArg,
    /// The image of placeholder pods (a pause container).
    #[arg(
        long,
        default_value = "registry.k8s.io/pause:3.10",
        env = "PLACEHOLDER_IMAGE"
    )]
    pub placeholder_image: String,
    /// The PriorityClass of placeholder pods: below every workload (the chart makes one,
    /// value -10: not below Cluster Autoscaler's expendable cutoff).
    #[arg(
        long,
        default_value = "aws-spots-booster-placeholder",
        env = "PLACEHOLDER_PRIORITY_CLASS"
    )]
    pub placeholder_priority_class: String,
    /// The namespace of placeholder pods: their own (the chart and `deploy/rbac.yaml` make
    /// it), where the booster may create pods, and nowhere else.
    #[arg(
        long,
        default_value = booster_k8s::placeholders::DEFAULT_NAMESPACE,
        env = "PLACEHOLDER_NAMESPACE"
    )]
    pub placeholder_namespace: String,
}

/// `--fallback-groups`: `group=fallback|fallback,group=fallback`.
fn fallbacks(s: &str) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut out = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (group, rest) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?} is not GROUP=FALLBACK[|FALLBACK...]"))?;
        let list: Vec<String> = rest
            .split('|')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect();
        if group.trim().is_empty() || list.is_empty() {
            return Err(format!("{part:?} is not GROUP=FALLBACK[|FALLBACK...]"));
        }
        out.insert(group.trim().to_string(), list);
    }
    Ok(out)
}

/// A comma-separated flag as a set, blanks dropped.
fn list(s: &str) -> BTreeSet<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `Dur` as a std `Duration`.
fn std_dur(d: Dur) -> Duration {
    Duration::from_millis(d.as_millis())
}

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
        }
    }
}

/// `--leader-elect=false`: this replica always leads.
struct AlwaysLeader;

#[async_trait]
impl Leadership for AlwaysLeader {
    async fn is_leader(&self) -> bool {
        true
    }
}

fn init_logs(format: LogFormat, level: LogLevel) {
    let level = format!("{level:?}").to_lowercase();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // Colours only on a terminal: `kubectl logs` and log shippers get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    let _ = match format {
        LogFormat::Plain => b.try_init(),
        LogFormat::Json => b.json().flatten_event(true).try_init(),
    };
}

async fn shutdown_signal(tx: watch::Sender<bool>) {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down: no new work; in-flight state stays in the ledger");
    let _ = tx.send(true);
}

async fn serve(addr: SocketAddr, metrics: Arc<Mutex<Metrics>>, health: Arc<Health>) -> Result<()> {
    use axum::http::StatusCode;
    use axum::routing::get;
    let m = metrics.clone();
    let answer = |r: Result<String, String>| match r {
        Ok(body) => (StatusCode::OK, body),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    };
    let (live, ready) = (health.clone(), health);
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let text = m.lock().map(|m| m.encode()).unwrap_or_default();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        text,
                    )
                }
            }),
        )
        .route(
            "/healthz",
            get(move || {
                let r = answer(live.live());
                async move { r }
            }),
        )
        .route(
            "/readyz",
            get(move || {
                let r = answer(ready.ready());
                async move { r }
            }),
        );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("--metrics-host/--metrics-port: cannot listen on {addr}"))?;
    axum::serve(listener, app).await.context("metrics server")
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

/// Runs the controller until SIGTERM.
pub async fn run(args: RunArgs) -> Result<()> {
    init_logs(args.log_format, args.log_level);
    let cfg = args.engine_config();
    let timings = args.lease_timings()?;
    // End-to-end tests run a replica with a wrong clock; nothing else sets this.
    if let Some(secs) = std::env::var("BOOSTER_TEST_CLOCK_OFFSET_SECS")
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
    {
        tracing::warn!(
            offset_s = secs,
            "test clock offset: this replica's wall clock is off"
        );
        crate::controller::offset_clock_for_tests(secs * 1000);
        booster_k8s::lease::offset_clock_for_tests(secs * 1000);
    }
    let addr: SocketAddr = format!("{}:{}", args.metrics_host, args.metrics_port)
        .parse()
        .with_context(|| format!("--metrics-host {:?} is not an address", args.metrics_host))?;
    let kube = args.kube().await?;
    let identity = std::env::var("POD_NAME")
        .unwrap_or_else(|_| format!("aws-spots-booster-{}", std::process::id()));
    let cluster = Arc::new(booster_k8s::KubeCluster::start(
        kube.clone(),
        args.kube_settings(&identity),
    ));
    let cloud = Arc::new(args.cloud().await);
    let calls = cloud.calls();

    let (stop_tx, mut stop_rx) = watch::channel(false);
    tokio::spawn(shutdown_signal(stop_tx));
    // The elector stops (and releases the Lease) only when told, after the loop's writes
    // have stopped: releasing first would let the other replica act while a pass still
    // writes.
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let (leader, elector_task): (Arc<dyn Leadership>, _) = if args.leader_elect {
        let elector = Arc::new(booster_k8s::lease::Elector::new(
            booster_k8s::lease::LeaseLock::new(
                kube.clone(),
                &args.lease_namespace,
                &args.lease_name,
                &identity,
                timings,
            ),
        ));
        let e = elector.clone();
        let task = tokio::spawn(async move {
            e.run(async move {
                let _ = release_rx.await;
            })
            .await;
        });
        (elector, Some(task))
    } else {
        (Arc::new(AlwaysLeader), None)
    };

    let metrics = Arc::new(Mutex::new(Metrics::new()));
    let health = Arc::new(Health::new(args.liveness_window()));
    {
        let (m, h) = (metrics.clone(), health.clone());
        tokio::spawn(async move {
            if let Err(e) = serve(addr, m, h).await {
                tracing::error!(error = %format!("{e:#}"), "metrics server stopped");
            }
        });
    }
    // Not ready until every watch has listed once, however long that takes: a cluster with
    // many (or huge) Events lists for minutes, and exiting would only start the list again.
    let listing = Instant::now();
    while cluster.ready(Duration::from_secs(60)).await.is_err() {
        tracing::warn!(
            waited_s = listing.elapsed().as_secs(),
            "still listing Nodes, Events and the CA status; not ready yet"
        );
        if *stop_rx.borrow() {
            return Ok(());
        }
    }
    health.synced();
    tracing::info!(
        dry_run = cfg.dry_run,
        leader_elect = args.leader_elect,
        pass_timeout_s = args.pass_timeout().as_secs(),
        liveness_window_s = args.liveness_window().as_secs(),
        "watches synced; controller running"
    );

    let changes = cluster.changes();
    let writes = Arc::new(crate::latency::Writes::default());
    let mut controller = Controller::new(
        Ports {
            cluster: Arc::new(FencedCluster {
                inner: cluster.clone(),
                leader: leader.clone(),
                writes: writes.clone(),
            }),
            cloud: Arc::new(FencedCloud {
                inner: cloud.clone(),
                leader: leader.clone(),
                writes: writes.clone(),
            }),
            leader: leader.clone(),
            writes,
        },
        cfg.clone(),
        wall_clock,
    );
    let resync = std_dur(args.resync);
    let pass_timeout = args.pass_timeout();
    let mut failures = backoff(resync);
    loop {
        controller.woken_at(changes.take_first());
        let outcome = match tokio::time::timeout(pass_timeout, controller.pass()).await {
            Ok(r) => r.map_err(|e| (e.metric_label(), e.to_string())),
            Err(_) => Err((
                "timeout",
                format!(
                    "the pass took longer than {}s and was stopped",
                    pass_timeout.as_secs()
                ),
            )),
        };
        let leading = leader.is_leader().await;
        let wake = match outcome {
            Ok(report) => {
                // A ledger that cannot be stored (deleted, and the shipped RBAC may not
                // create it; over a ConfigMap's size) stops every plan: the replica cannot
                // act, and says why. A lost race (409) is only read again.
                let ledger = report
                    .executed
                    .aborted
                    .as_ref()
                    .filter(|e| !matches!(e, booster_core::ports::PortError::Conflict(_)));
                let done = match (ledger, &report.snapshot.cloud_unavailable) {
                    (Some(e), _) => Err(format!("the ledger cannot be stored: {e}")),
                    (None, None) => Ok(()),
                    (None, Some(why)) => Err(format!("Auto Scaling unavailable: {why}")),
                };
                health.pass_ended(done, controller.observed_at(), leading);
                failures = backoff(resync);
                let wake = report.plan.next_wakeup;
                for node in &report.drains_started {
                    tracing::info!(node = %node, "drain started");
                }
                log_boost_latency(&report.boost_latency);
                if let Ok(mut m) = metrics.lock() {
                    m.record(&report, cfg.new_node_window);
                    m.drains_running(controller.running_drains());
                    m.aws_calls(calls.snapshot());
                }
                wake.map(|w| Duration::from_millis(w.since(wall_clock()).as_millis()))
            }
            Err((label, e)) => {
                health.pass_ended(Err(e.clone()), controller.observed_at(), leading);
                let delay = failures.next().unwrap_or(resync);
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "pass failed");
                if let Ok(mut m) = metrics.lock() {
                    m.failed_pass(label);
                    m.aws_calls(calls.snapshot());
                }
                // Back off: watch changes do not cut the wait short, or a failing call
                // would be retried on every Node heartbeat.
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop_rx.wait_for(|s| *s) => break,
                }
                continue;
            }
        };
        let until_wake = wake.unwrap_or(resync).min(resync);
        tokio::select! {
            _ = changes.notified() => settle(&changes).await,
            _ = tokio::time::sleep(until_wake) => {}
            _ = stop_rx.wait_for(|s| *s) => break,
        }
        if *stop_rx.borrow() {
            break;
        }
    }
    // No pass runs now; the drains stop, then the Lease goes.
    controller.shutdown();
    let _ = release_tx.send(());
    if let Some(task) = elector_task {
        let _ =
            tokio::time::timeout(timings.call_timeout() * 2 + Duration::from_secs(1), task).await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// A burst of watch events (NTH's cordon then its Event, a storm) settles into one pass:
/// the pass starts once the watches have been quiet for `QUIET`, and at the latest `SETTLE_MAX`
/// after the first change, so that a lone signal waits a tenth of a second and a busy
/// cluster's heartbeats do not run more than two passes a second.
async fn settle(changes: &booster_k8s::Changes) {
    const QUIET: Duration = Duration::from_millis(100);
    const SETTLE_MAX: Duration = Duration::from_millis(500);
    let until = tokio::time::Instant::now() + SETTLE_MAX;
    loop {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero()
            || tokio::time::timeout(QUIET.min(left), changes.notified())
                .await
                .is_err()
        {
            return;
        }
    }
}

/// One line per boost of a fresh signal, with its phases in milliseconds (and the instant
/// of the change that started it, to compare with when the signal was written).
fn log_boost_latency(boosts: &[crate::latency::BoostLatency]) {
    let ms = |d: Duration| d.as_millis() as u64;
    for b in boosts {
        let woken = wall_clock().unix_millis() - b.woken.elapsed().as_millis() as i64;
        tracing::info!(
            group = %b.group,
            nodes = %b.nodes.join(","),
            woken_unix_ms = woken,
            wait_ms = ms(b.wait),
            snapshot_ms = ms(b.snapshot),
            decide_ms = ms(b.decide),
            ledger_ms = ms(b.ledger),
            marks_ms = ms(b.marks),
            aws_ms = ms(b.aws),
            total_ms = ms(b.total),
            "signal boosted: booster's share of its latency"
        );
    }
}

/// Delays between failed passes: exponential from 1 s up to the resync, with jitter, so
/// that replicas (and a fleet of clusters) do not retry in step.
fn backoff(resync: Duration) -> impl Iterator<Item = Duration> {
    use backon::BackoffBuilder;
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(1))
        .with_max_delay(resync.max(Duration::from_secs(1)))
        .with_jitter()
        .without_max_times()
        .build()
}
