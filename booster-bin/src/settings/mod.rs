//! The controller's settings from its flags (and their environment variables): the flags
//! themselves and their parsers here, what they configure in [`effective`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use booster_core::Dur;
use clap::{Args, ValueEnum};

mod effective;

pub use effective::print_config;

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

/// When a signalled node is drained (`--drain-on`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DrainOnArg {
    /// On the recommendation, once the replacement is Ready.
    Rebalance,
    /// Standby: at the interruption notice; given back at the expiry without one.
    Interruption,
    /// Per pool, from its storms, interruptions and recent outcomes.
    Adaptive,
}

/// Which pods a drain moves by surge before it would evict them (`--surge`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SurgeArg {
    /// None: every pod is evicted.
    Off,
    /// Pods whose eviction would leave their Deployment with no Ready replica.
    SingleReplica,
    /// Those, and pods whose PodDisruptionBudget allows no disruption now.
    BudgetBlocked,
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
    /// When a signalled node whose replacement is there is drained: `rebalance` on the
    /// recommendation; `interruption` (standby) only when its interruption notice comes,
    /// giving it back at the expiry without one (fewer evictions, more node-time);
    /// `adaptive` per pool: on the recommendation in a storm, after an interruption in the
    /// pool or when most of the pool's recent recommendations became interruptions.
    #[arg(long, value_enum, default_value = "rebalance", env = "DRAIN_ON")]
    pub drain_on: DrainOnArg,
    /// Surge before evict (README, "Workloads of one"): a drain moves these pods by raising
    /// their Deployment by one until the successor is Ready on another node, then back:
    /// `single-replica` (a Deployment with no other Ready replica), `budget-blocked` (also
    /// pods whose PodDisruptionBudget allows no disruption), `off`. A Deployment annotated
    /// `aws-spots-booster/surge: "false"` is never surged, `"true"` as with budget-blocked.
    #[arg(long, value_enum, default_value = "single-replica", env = "SURGE")]
    pub surge: SurgeArg,
    /// How long a surge's successor may take to be Ready before the surge is undone and
    /// the pod evicted as any other.
    #[arg(long, default_value = "5m", value_parser = dur, env = "SURGE_TIMEOUT")]
    pub surge_timeout: Dur,
    /// `--drain-on adaptive`: this many recommendations in one pool (instance type × zone)
    /// within `--adaptive-storm-window` make a storm (drain on the recommendation); 0: never.
    #[arg(long, default_value_t = 3, env = "ADAPTIVE_STORM_SIGNALS")]
    pub adaptive_storm_signals: u32,
    /// `--drain-on adaptive`: the storm window, also how long an interruption in a pool
    /// makes its next recommendations drain at once.
    #[arg(long, default_value = "10m", value_parser = dur, env = "ADAPTIVE_STORM_WINDOW")]
    pub adaptive_storm_window: Dur,
    /// `--drain-on adaptive`: drain on the recommendation in a pool where at least this
    /// share (0 to 1) of the recent known outcomes were interruptions...
    #[arg(long, default_value = "0.5", value_parser = share, env = "ADAPTIVE_FOLLOW_THROUGH")]
    pub adaptive_follow_through: u32,
    /// ...once at least this many known outcomes back it.
    #[arg(long, default_value_t = 5, env = "ADAPTIVE_MIN_OUTCOMES")]
    pub adaptive_min_outcomes: u32,
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

/// A share from 0 to 1, kept in whole percent.
fn share(s: &str) -> Result<u32, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok((v * 100.0).round() as u32),
        _ => Err(format!(
            "{s:?} is not a share from 0 to 1 (for example 0.5)"
        )),
    }
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
pub(crate) fn std_dur(d: Dur) -> Duration {
    Duration::from_millis(d.as_millis())
}
