//! What a simulated run contains: groups, workload, signals and the timings of the peers.
//! Scenarios are YAML files (see `booster-sim/scenarios/`); every field but `name`,
//! `groups` and `workload` has a default.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use booster_core::config::Config;
use booster_core::time::Dur;

/// One scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    /// Short name, used on the command line and in reports.
    pub name: String,
    /// One or two sentences for the report.
    #[serde(default)]
    pub description: String,
    /// Length of the run (default 60m).
    #[serde(default = "defaults::duration")]
    pub duration: Dur,
    /// Pods of the workload one node holds (every pod requests the same share).
    #[serde(default = "defaults::pods_per_node")]
    pub pods_per_node: u32,
    /// Auto Scaling groups; nodes start Ready and full.
    pub groups: Vec<GroupSpec>,
    /// Deployments.
    pub workload: Vec<AppSpec>,
    /// Rebalance recommendations.
    #[serde(default)]
    pub signals: Vec<SignalSpec>,
    /// Forged `RebalanceRecommendation` Events a tenant posts (one who may only create
    /// Events): every kind of forgery, about the group's nodes.
    #[serde(default)]
    pub forged: Vec<ForgedSpec>,
    /// Replica changes of the workload over time.
    #[serde(default)]
    pub changes: Vec<ChangeSpec>,
    /// Restarts of the controller under test (booster or upstream).
    #[serde(default)]
    pub restarts: Vec<RestartSpec>,
    /// Cluster Autoscaler's settings.
    #[serde(default)]
    pub cluster_autoscaler: CaSpec,
    /// How long the machinery takes.
    #[serde(default)]
    pub timing: Timing,
    /// The booster's settings for this scenario (the engine's [`Config`]); the drain
    /// settings also apply to `upstream`.
    #[serde(default)]
    pub booster: Config,
}

/// A uniform distribution of durations; `min == max` is a fixed value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// Lower bound.
    pub min: Dur,
    /// Upper bound (inclusive).
    pub max: Dur,
}

impl Range {
    /// A fixed duration.
    pub const fn fixed(d: Dur) -> Self {
        Range { min: d, max: d }
    }

    /// The value at `u` in `[0, 1)`.
    pub fn at(&self, u: f64) -> Dur {
        let lo = self.min.as_millis().min(self.max.as_millis());
        let hi = self.min.as_millis().max(self.max.as_millis());
        Dur::from_millis(lo + ((hi - lo) as f64 * u) as u64)
    }
}

/// An Auto Scaling group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupSpec {
    /// Name.
    pub name: String,
    /// Min size.
    #[serde(default)]
    pub min: u32,
    /// Max size.
    pub max: u32,
    /// Desired capacity at the start; that many nodes start Ready.
    pub desired: u32,
    /// Availability zones instances are spread over.
    #[serde(default = "defaults::azs")]
    pub azs: Vec<String>,
    /// Launch to Ready (default 60s..180s).
    #[serde(default = "defaults::boot")]
    pub boot: Range,
    /// Tags (e.g. the opt-out tag, or the fallback groups' tag).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Units of capacity per instance (`WeightedCapacity`): min, max and desired are in
    /// units, and a node holds `weight × podsPerNode` pods.
    #[serde(default = "defaults::weight")]
    pub weight: u32,
    /// `CapacityRebalance`: AWS launches a replacement for a signalled instance itself and
    /// terminates the old one once the replacement is in service.
    #[serde(default)]
    pub capacity_rebalance: bool,
    /// An EKS managed node group: EKS drains the old node before AWS terminates it.
    #[serde(default)]
    pub eks_managed: bool,
    /// `SuspendedProcesses` (`AZRebalance`, `Launch`). Unless `AZRebalance` is suspended,
    /// AWS rebalances zones after a terminate with decrement leaves them uneven. Default:
    /// `[AZRebalance]`, as Cluster Autoscaler's AWS documentation advises.
    #[serde(default = "defaults::suspended")]
    pub suspended_processes: Vec<String>,
    /// Launches fail in this window (no spot capacity in the pools): Failed scaling
    /// activities, no instance.
    #[serde(default)]
    pub dry_pool: Option<DryPool>,
}

/// A window in which a group cannot launch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DryPool {
    /// From the start of the run.
    pub at: Dur,
    /// How long.
    #[serde(rename = "for")]
    pub lasts: Dur,
}

/// A Deployment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppSpec {
    /// Name.
    pub name: String,
    /// Replicas.
    pub replicas: u32,
    /// A PodDisruptionBudget's `maxUnavailable`, if the app has one.
    #[serde(default)]
    pub pdb_max_unavailable: Option<u32>,
    /// Graceful termination after an eviction (default 5s..30s).
    #[serde(default = "defaults::termination")]
    pub termination: Range,
}

/// When a signalled node is interrupted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Lead {
    /// `never`: the recommendation never turns into an interruption.
    Never(Never),
    /// Time from the recommendation to the instance's termination.
    After(Range),
}

/// The word `never`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Never {
    /// never
    Never,
}

/// Rebalance recommendations for some of a group's initial nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignalSpec {
    /// The group.
    pub group: String,
    /// First signal, from the start of the run.
    pub at: Dur,
    /// How many of the group's initial nodes (chosen by the seed); default 1.
    #[serde(default)]
    pub count: Option<u32>,
    /// Or which share of them (0..1), rounded up.
    #[serde(default)]
    pub fraction: Option<f64>,
    /// The signals are spread over this window after `at` (default 0: all at once).
    #[serde(default)]
    pub within: Dur,
    /// Only nodes in this Availability Zone are signalled (a pool running dry).
    #[serde(default)]
    pub zone: Option<String>,
    /// Recommendation to interruption, or `never`.
    pub lead: Lead,
    /// The chance (0 to 1) that each recommendation is followed by its interruption `lead`
    /// later; the others never are. Unset: every one with a lead is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_through: Option<f64>,
}

/// Forged Events about a group's initial nodes, cycling through the kinds of forgery: in
/// the tenant's namespace, from another component, about a Node that does not exist, with
/// another instance id, claiming a future time, in NTH's exact form claiming a time long
/// past, created before their Node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ForgedSpec {
    /// The group whose nodes they name.
    pub group: String,
    /// The first one, from the start of the run.
    pub at: Dur,
    /// How many.
    pub count: u32,
    /// Spread evenly over this window after `at`.
    #[serde(default)]
    pub within: Dur,
}

/// A change of a Deployment's replicas.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangeSpec {
    /// When, from the start of the run.
    pub at: Dur,
    /// The Deployment.
    pub app: String,
    /// Its new replica count.
    pub replicas: u32,
}

/// The controller under test stops at `at` and comes back `down` later, with nothing kept
/// in memory (in-flight drains die with it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestartSpec {
    /// When it dies.
    pub at: Dur,
    /// How long it stays down.
    #[serde(default = "defaults::down")]
    pub down: Dur,
}

/// Cluster Autoscaler's settings (its flag names, camelCased).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct CaSpec {
    /// `--scan-interval`.
    pub scan_interval: Dur,
    /// `--scale-down-unneeded-time`.
    pub scale_down_unneeded_time: Dur,
    /// `--scale-down-delay-after-add`.
    pub scale_down_delay_after_add: Dur,
    /// `--scale-down-utilization-threshold`.
    pub scale_down_utilization_threshold: f64,
    /// `--max-node-provision-time`: capacity asked for that has not come by then is given
    /// up, and the group is backed off.
    pub max_node_provision_time: Dur,
    /// How long a group is backed off after a failed scale-up.
    pub backoff: Dur,
}

impl Default for CaSpec {
    fn default() -> Self {
        CaSpec {
            scan_interval: Dur::from_secs(10),
            scale_down_unneeded_time: Dur::from_mins(10),
            scale_down_delay_after_add: Dur::from_mins(10),
            scale_down_utilization_threshold: 0.5,
            max_node_provision_time: Dur::from_mins(15),
            backoff: Dur::from_mins(5),
        }
    }
}

/// How long the machinery takes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Timing {
    /// A bound pod to Running.
    pub pod_start: Dur,
    /// A node registers this long before it turns Ready.
    pub node_registers_before_ready: Dur,
    /// TerminateInstance to the Node object's deletion.
    pub shutdown: Dur,
    /// The spot interruption notice comes this long before the termination; NTH then
    /// cordons and drains the node (under every policy).
    pub interruption_notice: Dur,
    /// NTH's drain timeout.
    pub nth_drain_timeout: Dur,
    /// Retry interval of an eviction refused with 429.
    pub eviction_retry: Dur,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            pod_start: Dur::from_secs(5),
            node_registers_before_ready: Dur::from_secs(20),
            shutdown: Dur::from_secs(30),
            interruption_notice: Dur::from_secs(120),
            nth_drain_timeout: Dur::from_secs(120),
            eviction_retry: Dur::from_secs(5),
        }
    }
}

mod defaults {
    use super::Range;
    use booster_core::time::Dur;

    pub fn duration() -> Dur {
        Dur::from_mins(60)
    }
    pub fn pods_per_node() -> u32 {
        8
    }
    pub fn azs() -> Vec<String> {
        ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }
    pub fn boot() -> Range {
        Range {
            min: Dur::from_secs(60),
            max: Dur::from_secs(180),
        }
    }
    pub fn termination() -> Range {
        Range {
            min: Dur::from_secs(5),
            max: Dur::from_secs(30),
        }
    }
    pub fn down() -> Dur {
        Dur::from_secs(30)
    }
    pub fn weight() -> u32 {
        1
    }
    pub fn suspended() -> Vec<String> {
        vec!["AZRebalance".into()]
    }
}

/// A scenario file that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    /// Not valid YAML for a scenario.
    #[error("scenario is not valid: {0}")]
    Syntax(String),
    /// Valid YAML, inconsistent content.
    #[error("scenario {name:?}: {what}")]
    Invalid {
        /// The scenario's name.
        name: String,
        /// What is wrong.
        what: String,
    },
    /// No built-in scenario has that name.
    #[error("no built-in scenario {0:?} (try one of: {1})")]
    Unknown(String, String),
}

impl Scenario {
    /// Reads and checks a scenario from YAML (or JSON).
    pub fn from_yaml(text: &str) -> Result<Self, ScenarioError> {
        let s: Scenario = serde_saphyr::from_str(text).map_err(|e| {
            ScenarioError::Syntax(booster_core::ca_status::one_line(&e.to_string()))
        })?;
        s.check()?;
        Ok(s)
    }

    /// Refuses what the simulator cannot run.
    pub fn check(&self) -> Result<(), ScenarioError> {
        let bad = |what: String| ScenarioError::Invalid {
            name: self.name.clone(),
            what,
        };
        if self.name.trim().is_empty() {
            return Err(bad("name is empty".into()));
        }
        if self.pods_per_node == 0 {
            return Err(bad("podsPerNode must be at least 1".into()));
        }
        if self.duration > Dur::from_mins(24 * 60) || self.duration == Dur::ZERO {
            return Err(bad("duration must be between 1s and 24h".into()));
        }
        if self.groups.is_empty() {
            return Err(bad("no groups".into()));
        }
        for g in &self.groups {
            if g.min > g.desired || g.desired > g.max {
                return Err(bad(format!(
                    "group {}: need min <= desired <= max, got {} <= {} <= {}",
                    g.name, g.min, g.desired, g.max
                )));
            }
            if g.max > 5_000 {
                return Err(bad(format!("group {}: max above 5000", g.name)));
            }
            if g.weight == 0 || g.weight > 999 {
                return Err(bad(format!("group {}: weight must be 1..=999", g.name)));
            }
            if g.azs.is_empty() {
                return Err(bad(format!("group {}: no availability zones", g.name)));
            }
        }
        let pods: u64 = self.workload.iter().map(|a| u64::from(a.replicas)).sum();
        if pods > 200_000 {
            return Err(bad("more than 200000 pods".into()));
        }
        for s in &self.signals {
            if !self.groups.iter().any(|g| g.name == s.group) {
                return Err(bad(format!("signal for unknown group {}", s.group)));
            }
            if let Some(f) = s.fraction {
                if !(0.0..=1.0).contains(&f) {
                    return Err(bad(format!("signal fraction {f} outside 0..1")));
                }
            }
        }
        for f in &self.forged {
            if !self.groups.iter().any(|g| g.name == f.group) {
                return Err(bad(format!("forged Events for unknown group {}", f.group)));
            }
            if f.count > 100_000 {
                return Err(bad("more than 100000 forged Events".into()));
            }
        }
        for c in &self.changes {
            if !self.workload.iter().any(|a| a.name == c.app) {
                return Err(bad(format!("change for unknown app {}", c.app)));
            }
        }
        Ok(())
    }
}

macro_rules! builtin {
    ($($file:literal),* $(,)?) => {
        /// The built-in scenarios, in report order: `(name, YAML)`.
        pub const BUILTIN: &[(&str, &str)] = &[
            $(($file, include_str!(concat!("../scenarios/", $file, ".yaml"))),)*
        ];
    };
}

builtin!(
    "steady",
    "single-signal",
    "storm",
    "long-lead",
    "short-lead",
    "never-interrupted",
    "ca-scale-up",
    "at-max-size",
    "single-az",
    "pdb-blocking",
    "restart-mid-drain",
    "forged-events",
    "capacity-rebalance",
    "weighted",
    "az-rebalance",
    "dry-pool",
    "follow-through",
    "dry-pool-fallback",
    "workloads-of-one",
);

/// A built-in scenario by name.
pub fn builtin(name: &str) -> Result<Scenario, ScenarioError> {
    let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name) else {
        let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
        return Err(ScenarioError::Unknown(name.to_string(), names.join(", ")));
    };
    Scenario::from_yaml(text)
}

/// Every built-in scenario.
pub fn builtins() -> Result<Vec<Scenario>, ScenarioError> {
    BUILTIN.iter().map(|(n, _)| builtin(n)).collect()
}
