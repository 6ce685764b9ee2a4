//! Whether a pod about to be evicted is moved by surge instead, from what its owners say.

use super::{SurgeMode, SurgeRecord};

/// What owns the pod, as its controller references say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// A ReplicaSet owned by this Deployment (the only owner a surge can move).
    Deployment(String),
    /// A ReplicaSet no Deployment owns.
    ReplicaSet(String),
    /// A StatefulSet: its pods have identities, and two of one would share them.
    StatefulSet(String),
    /// Another controller (a Job, an operator's kind), by kind.
    Other(String),
    /// Nothing: a bare pod, which nothing starts again.
    None,
}

/// A Deployment's strategy, as far as a surge cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// `RollingUpdate` with a `maxSurge` above zero: two of its pods may run at once.
    RollingUpdate,
    /// `RollingUpdate` with `maxSurge: 0`: the owner said never one more than its size.
    NoSurge,
    /// `Recreate`: never an old and a new pod at once.
    Recreate,
}

/// What a drain knows of a pod and its workload when it is about to evict it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadFacts {
    /// The pod's uid.
    pub pod_uid: String,
    /// Whether the pod is Ready (an unready pod's eviction costs no availability).
    pub pod_ready: bool,
    /// Its owner.
    pub owner: Owner,
    /// The least `disruptionsAllowed` of the budgets selecting the pod, if any does.
    pub budget_allows: Option<i32>,
    /// The rest is the Deployment's, and means nothing for other owners.
    /// `spec.replicas`.
    pub replicas: i32,
    /// Ready pods that stay: the Deployment's Ready pods on other nodes, plus this one if
    /// Ready (a sibling on the same node goes too, so it is not counted).
    pub ready_replicas: i32,
    /// Its strategy.
    pub strategy: Strategy,
    /// `spec.paused`.
    pub paused: bool,
    /// The last rollout is complete: observed, every replica updated and available.
    pub rollout_complete: bool,
    /// The pod template tolerates the cordon (`node.kubernetes.io/unschedulable`): the
    /// successor could start on the node being drained.
    pub tolerates_cordon: bool,
    /// The HorizontalPodAutoscaler that sets its replicas, if any.
    pub autoscaler: Option<String>,
    /// The GitOps tool (field manager) that owns `spec.replicas`, if any.
    pub gitops_manager: Option<String>,
    /// Its [`super::OPT_ANNOTATION`]: `Some(true)` opted in, `Some(false)` opted out.
    pub opt: Option<bool>,
    /// The surge under way for it, if any (its [`super::RECORD_ANNOTATION`]).
    pub record: Option<SurgeRecord>,
    /// It carries a [`super::RECORD_ANNOTATION`] that is not a record of ours (written by
    /// another version, or by hand): never surged over, never removed.
    pub foreign_record: bool,
}

/// Why a pod whose eviction costs availability is not moved by surge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// It has no Deployment (bare pod, StatefulSet, lone ReplicaSet, other controller).
    NotADeployment(String),
    /// `Recreate`: its owner never runs two at once.
    Recreate,
    /// `maxSurge: 0`: its owner never runs more than its size.
    MaxSurgeZero,
    /// A rollout is paused or under way: the size is not only ours to touch.
    RolloutInProgress,
    /// Its template tolerates the cordon: the successor could land on the drained node.
    ToleratesCordon,
    /// An autoscaler sets its replicas and would fight the surge.
    Autoscaled(String),
    /// A GitOps tool owns its replicas and would revert them.
    GitOps(String),
    /// Its size is zero: it is being scaled away.
    ScaledToZero,
    /// It carries a surge record we cannot read.
    ForeignRecord,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::NotADeployment(what) => {
                write!(f, "{what}: nothing can run its successor beside it")
            }
            SkipReason::Recreate => write!(f, "its strategy is Recreate"),
            SkipReason::MaxSurgeZero => {
                write!(f, "its rolling update allows no surge (maxSurge 0)")
            }
            SkipReason::RolloutInProgress => write!(f, "a rollout is paused or under way"),
            SkipReason::ToleratesCordon => write!(
                f,
                "its pods tolerate the cordon (node.kubernetes.io/unschedulable)"
            ),
            SkipReason::Autoscaled(hpa) => {
                write!(f, "HorizontalPodAutoscaler {hpa} sets its replicas")
            }
            SkipReason::GitOps(manager) => write!(
                f,
                "{manager} owns its replicas (annotate it {}=\"true\" to surge anyway)",
                super::OPT_ANNOTATION
            ),
            SkipReason::ScaledToZero => write!(f, "it is scaled to zero"),
            SkipReason::ForeignRecord => write!(
                f,
                "it carries a surge record ({}) that is not one of ours",
                super::RECORD_ANNOTATION
            ),
        }
    }
}

impl SkipReason {
    /// The camelCase label for metrics.
    pub fn code(&self) -> &'static str {
        match self {
            SkipReason::NotADeployment(_) => "notADeployment",
            SkipReason::Recreate => "recreate",
            SkipReason::MaxSurgeZero => "maxSurgeZero",
            SkipReason::RolloutInProgress => "rolloutInProgress",
            SkipReason::ToleratesCordon => "toleratesCordon",
            SkipReason::Autoscaled(_) => "autoscaled",
            SkipReason::GitOps(_) => "gitOps",
            SkipReason::ScaledToZero => "scaledToZero",
            SkipReason::ForeignRecord => "foreignRecord",
        }
    }
}

/// What the drain does with the pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Assessment {
    /// Evict it: its eviction costs no availability, or surges are off for it.
    Evict,
    /// Evict it, though it costs availability, and say why it could not be surged.
    Skip(SkipReason),
    /// Start a surge for it.
    Surge,
    /// Its surge is under way (a record for this pod): go on with it.
    Resume,
    /// Another pod of the same Deployment is being surged: neither evict nor surge it yet.
    Wait,
}

/// Whether evicting the pod would cost availability, under `mode` and the opt annotation.
fn costs_availability(f: &WorkloadFacts, mode: SurgeMode) -> bool {
    let mode = match f.opt {
        Some(false) => return false,
        Some(true) if mode != SurgeMode::Off => SurgeMode::BudgetBlocked,
        _ => mode,
    };
    let alone = f.pod_ready && f.ready_replicas <= 1 && f.owner_is_deployment();
    // A pod with no Deployment: no count of its Ready siblings, only its budget says.
    let last_of_its_kind = f.pod_ready && matches!(f.owner, Owner::None);
    let budget = f.budget_allows.is_some_and(|n| n <= 0);
    match mode {
        SurgeMode::Off => false,
        SurgeMode::SingleReplica => alone || last_of_its_kind,
        SurgeMode::BudgetBlocked => alone || last_of_its_kind || budget,
    }
}

impl WorkloadFacts {
    /// What is known of pod `uid` before its owners are read: no owner, no budget.
    pub fn of_pod(uid: &str, ready: bool) -> Self {
        WorkloadFacts {
            pod_uid: uid.to_string(),
            pod_ready: ready,
            owner: Owner::None,
            budget_allows: None,
            replicas: 0,
            ready_replicas: 0,
            strategy: Strategy::RollingUpdate,
            paused: false,
            rollout_complete: false,
            tolerates_cordon: false,
            autoscaler: None,
            gitops_manager: None,
            opt: None,
            record: None,
            foreign_record: false,
        }
    }

    /// Whether `replicas` and `ready_replicas` count its siblings (a Deployment's, or a
    /// lone ReplicaSet's).
    fn owner_is_deployment(&self) -> bool {
        matches!(self.owner, Owner::Deployment(_) | Owner::ReplicaSet(_))
    }
}

/// What to do with a pod about to be evicted, under `mode`.
pub fn assess(f: &WorkloadFacts, mode: SurgeMode) -> Assessment {
    // A surge under way is finished or undone whatever the mode is now (it may have been
    // started before a restart with another): it is never left half done.
    if let Some(r) = &f.record {
        return if r.pod_uid == f.pod_uid {
            Assessment::Resume
        } else {
            Assessment::Wait
        };
    }
    if mode == SurgeMode::Off || !costs_availability(f, mode) {
        return Assessment::Evict;
    }
    let skip = match &f.owner {
        Owner::Deployment(_) => None,
        Owner::ReplicaSet(n) => Some(SkipReason::NotADeployment(format!(
            "ReplicaSet {n} (no Deployment)"
        ))),
        Owner::StatefulSet(n) => Some(SkipReason::NotADeployment(format!("StatefulSet {n}"))),
        Owner::Other(kind) => Some(SkipReason::NotADeployment(format!("owned by a {kind}"))),
        Owner::None => Some(SkipReason::NotADeployment("a bare pod".into())),
    }
    .or(match f.strategy {
        Strategy::Recreate => Some(SkipReason::Recreate),
        Strategy::NoSurge => Some(SkipReason::MaxSurgeZero),
        Strategy::RollingUpdate => None,
    })
    .or_else(|| f.foreign_record.then_some(SkipReason::ForeignRecord))
    .or_else(|| (f.replicas <= 0).then_some(SkipReason::ScaledToZero))
    .or_else(|| (f.paused || !f.rollout_complete).then_some(SkipReason::RolloutInProgress))
    .or_else(|| f.tolerates_cordon.then_some(SkipReason::ToleratesCordon))
    .or_else(|| f.autoscaler.clone().map(SkipReason::Autoscaled))
    .or_else(|| {
        f.gitops_manager
            .clone()
            .filter(|_| f.opt != Some(true))
            .map(SkipReason::GitOps)
    });
    match skip {
        Some(why) => Assessment::Skip(why),
        None => Assessment::Surge,
    }
}
