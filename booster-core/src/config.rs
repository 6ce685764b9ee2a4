//! Every tunable of the engine. The binary fills it from flags; the defaults match the
//! upstream Go project's flags where one exists.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::time::Dur;

/// The engine's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Config {
    /// Nodes added on top of the one replacement each signal gets (upstream
    /// `--extra-nodes-over-calculation`, applied per signal here).
    pub extra_nodes_per_signal: u32,
    /// The most nodes our boosts may have outstanding in one group at once; signals past it
    /// wait for a slot. 0 means no cap other than the group's max size.
    pub boost_cap_per_group: u32,
    /// The most drains running at once (upstream `--max-concurrent-drains`).
    pub max_concurrent_drains: u32,
    /// The least time between two drain starts (upstream `--time-between-drains`).
    pub time_between_drains: Dur,
    /// How long one drain attempt may take before it is reported and retried
    /// (upstream `--drain-timeout`).
    pub drain_timeout: Dur,
    /// How long a node whose boost was applied waits for its replacement to be Ready before
    /// it is drained anyway. A signal that got no boost is never drained ahead (that would
    /// only make its pods Pending sooner): it waits for a boost, its interruption (NTH drains
    /// it then) or its expiry.
    pub replacement_wait: Dur,
    /// After this long a signal that has not turned into an interruption expires: a finished
    /// drain is retired, anything else is given back (uncordoned).
    pub signal_expiry: Dur,
    /// A node created longer ago than this is not taken as a replacement (upstream
    /// `--max-time-consider-new-node`).
    pub new_node_window: Dur,
    /// A cluster-autoscaler status older than this counts as stale: no boosts.
    pub ca_status_max_age: Dur,
    /// Groups never touched (upstream `--ignored-autoscaling-groups`).
    pub ignored_groups: BTreeSet<String>,
    /// A group with this tag set to `false` is never touched.
    pub opt_out_tag: String,
    /// Boost only; leave draining to somebody else (upstream `--disable-drain`).
    pub disable_drain: bool,
    /// Compute and report the plan, change nothing (upstream `--dry-run`).
    pub dry_run: bool,
    /// Namespaces whose Events are read as signals (NTH writes to `default`).
    pub event_namespaces: BTreeSet<String>,
    /// Event source components read as signals (`source.component` or
    /// `reportingComponent`; NTH's is `aws-node-termination-handler`).
    pub event_components: BTreeSet<String>,
    /// Field managers whose cordon corroborates an Event (NTH's is its binary's name,
    /// `node-termination-handler`).
    pub nth_field_managers: BTreeSet<String>,
    /// How far an Event's claimed time may be ahead of its creation (clocks differ).
    pub clock_skew: Dur,
    /// NTH posts its Event and cordons a moment apart: an Event backs NTH's cordon only if
    /// the two were made this close (both times are the apiserver's), and an Event nothing
    /// backs is reported as rejected once it is this old.
    pub corroboration_window: Dur,
    /// When set, only groups that carry this tag key are touched (Cluster Autoscaler's
    /// auto-discovery tag `k8s.io/cluster-autoscaler/<cluster-name>`).
    pub cluster_tag: Option<String>,
    /// Fallback groups, in order, by group: boosted instead when the group cannot launch
    /// (`--fallback-groups`; a group's [`FALLBACK_TAG`] adds to it).
    pub fallback_groups: BTreeMap<String, Vec<String>>,
    /// A group whose launch failed within this long is not boosted (its fallback is).
    pub launch_failure_backoff: Dur,
    /// How capacity is asked for in Auto Scaling groups (`--boost-mode`). Karpenter
    /// NodePools always get placeholders: they have no desired capacity.
    pub boost_mode: BoostMode,
    /// Refusals in a row (AccessDenied, ValidationError, HTTP 403/422) after which a
    /// signal's boost, placeholders or retire is given up and the node given back
    /// (`--refusals-before-give-up`). Throttling, conflicts and timeouts only back off.
    pub refusals_before_give_up: u32,
    /// When a signalled node with its replacement Ready is drained (`--drain-on`).
    pub drain_on: DrainOn,
    /// The rule of `--drain-on adaptive`.
    pub adaptive: AdaptiveRule,
}

/// When a signalled node is drained.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DrainOn {
    /// On the recommendation, as soon as the replacement is Ready (or the replacement wait
    /// is over): every recommendation costs a drain.
    #[default]
    Rebalance,
    /// Standby: boost and keep the replacement Ready and protected; drain only when the
    /// interruption notice comes (NTH's `spot-itn` taint). At the expiry with no
    /// interruption the node is given back and the replacement unprotected, so that
    /// Cluster Autoscaler removes whichever node is least needed.
    Interruption,
    /// Per pool, from the evidence: drain on the recommendation in a storm, after an
    /// interruption in the pool, or when the pool's recent recommendations mostly became
    /// interruptions; standby otherwise (see [`AdaptiveRule`]).
    Adaptive,
}

impl DrainOn {
    /// The flag's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DrainOn::Rebalance => "rebalance",
            DrainOn::Interruption => "interruption",
            DrainOn::Adaptive => "adaptive",
        }
    }
}

/// When `--drain-on adaptive` drains on the recommendation rather than standing by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct AdaptiveRule {
    /// Drain on the recommendation when at least this many recommendations (this one
    /// included) arrived in the node's pool within [`AdaptiveRule::storm_window`]
    /// (`--adaptive-storm-signals`): interruptions cluster.
    pub storm_signals: u32,
    /// The storm window, also how long an interruption in a pool makes its next
    /// recommendations drain at once (`--adaptive-storm-window`).
    pub storm_window: Dur,
    /// Drain on the recommendation when at least this share, in percent, of the pool's
    /// recent known outcomes were interruptions (`--adaptive-follow-through`)...
    pub follow_through_percent: u32,
    /// ...and at least this many known outcomes back it (`--adaptive-min-outcomes`).
    pub min_outcomes: u32,
}

impl Default for AdaptiveRule {
    fn default() -> Self {
        AdaptiveRule {
            storm_signals: 3,
            storm_window: Dur::from_mins(10),
            follow_through_percent: 50,
            min_outcomes: 5,
        }
    }
}

/// How a signal's replacement capacity is asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BoostMode {
    /// Raise the signal's Auto Scaling group's desired capacity (`SetDesiredCapacity`).
    #[default]
    Desired,
    /// Create placeholder pods that ask for what the signalled node's pods ask for: the
    /// autoscaler in charge (Cluster Autoscaler, Karpenter) provisions their node by its own
    /// rules (expander, similar groups, max sizes, weights). No Auto Scaling write is needed
    /// for the boost.
    Placeholder,
}

impl BoostMode {
    /// The flag's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            BoostMode::Desired => "desired",
            BoostMode::Placeholder => "placeholder",
        }
    }
}

/// The default opt-out tag key.
pub const DEFAULT_OPT_OUT_TAG: &str = "aws-spots-booster/enabled";
/// The group tag naming fallback groups, comma-separated, in order.
pub const FALLBACK_TAG: &str = "aws-spots-booster/fallback-groups";
/// NTH's Event source component.
pub const NTH_COMPONENT: &str = "aws-node-termination-handler";
/// Karpenter's Event source component (its `SpotRebalanceRecommendation` Events).
pub const KARPENTER_COMPONENT: &str = "karpenter";
/// The default `--event-components`: NTH's and Karpenter's.
pub const DEFAULT_EVENT_COMPONENTS: &str = "aws-node-termination-handler,karpenter";
/// The field manager of NTH's writes to Nodes (client-go's default: its binary's name).
pub const NTH_FIELD_MANAGER: &str = "node-termination-handler";
/// The field manager of the booster's own writes to Nodes.
pub const BOOSTER_FIELD_MANAGER: &str = "aws-spots-booster";
/// The namespace NTH writes its Events to.
pub const NTH_EVENT_NAMESPACE: &str = "default";
/// The tag key Cluster Autoscaler's auto-discovery gives a cluster's groups.
pub fn cluster_tag_for(cluster_name: &str) -> String {
    format!("k8s.io/cluster-autoscaler/{cluster_name}")
}

fn set_of(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

impl Default for Config {
    fn default() -> Self {
        Config {
            extra_nodes_per_signal: 0,
            boost_cap_per_group: 10,
            max_concurrent_drains: 5,
            time_between_drains: Dur::from_secs(60),
            drain_timeout: Dur::from_secs(120),
            replacement_wait: Dur::from_mins(6),
            signal_expiry: Dur::from_mins(30),
            new_node_window: Dur::from_mins(10),
            ca_status_max_age: Dur::from_mins(3),
            ignored_groups: BTreeSet::new(),
            opt_out_tag: DEFAULT_OPT_OUT_TAG.to_string(),
            disable_drain: false,
            dry_run: false,
            event_namespaces: set_of(&[NTH_EVENT_NAMESPACE]),
            event_components: set_of(&[NTH_COMPONENT, KARPENTER_COMPONENT]),
            nth_field_managers: set_of(&[NTH_FIELD_MANAGER]),
            clock_skew: Dur::from_secs(120),
            corroboration_window: Dur::from_secs(60),
            cluster_tag: None,
            fallback_groups: BTreeMap::new(),
            launch_failure_backoff: Dur::from_mins(10),
            boost_mode: BoostMode::Desired,
            refusals_before_give_up: 3,
            drain_on: DrainOn::Rebalance,
            adaptive: AdaptiveRule::default(),
        }
    }
}

impl Config {
    /// Nodes one signal's boost adds: its replacement plus the extra.
    pub fn nodes_per_signal(&self) -> u32 {
        1u32.saturating_add(self.extra_nodes_per_signal)
    }
}
