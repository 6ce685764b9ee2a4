//! What the binary needs from the outside world. `booster-k8s` implements [`Cluster`] and
//! [`Leadership`], `booster-aws` implements [`Cloud`]; unit tests use mocks.
//!
//! Every mutating call is idempotent: a restarted controller may repeat the last call it
//! made before it died, and the result must be the same as making it once.

use async_trait::async_trait;

use crate::ca_status::CaStatus;
use crate::ledger::Ledger;
use crate::plan::Reason;
use crate::snapshot::{Activities, CaObservation, Group, Node, Signal};

/// A failure of a port call, classified so that the loop knows whether to retry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// The service asked us to slow down (HTTP 429, AWS `Throttling`): retry with backoff.
    #[error("throttled: {0}")]
    Throttled(String),
    /// A write lost an optimistic-concurrency race (HTTP 409): re-read, then retry.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The object does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The service refused the request as invalid (AWS `ValidationError`, HTTP 422): do not retry as is.
    #[error("rejected: {0}")]
    Rejected(String),
    /// The target is busy (AWS `ScalingActivityInProgress`, `ResourceContention`): retry later.
    #[error("busy: {0}")]
    Busy(String),
    /// Credentials or permissions are missing (HTTP 401/403, AWS `AccessDenied`).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Network errors, timeouts, 5xx: retry.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl PortError {
    /// Whether the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            PortError::Throttled(_)
                | PortError::Conflict(_)
                | PortError::Busy(_)
                | PortError::Unavailable(_)
        )
    }

    /// A short, stable label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            PortError::Throttled(_) => "throttled",
            PortError::Conflict(_) => "conflict",
            PortError::NotFound(_) => "not_found",
            PortError::Rejected(_) => "rejected",
            PortError::Busy(_) => "busy",
            PortError::Forbidden(_) => "forbidden",
            PortError::Unavailable(_) => "unavailable",
        }
    }
}

/// What `set_desired` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetDesiredOutcome {
    /// Desired capacity was raised to the value asked for.
    Raised,
    /// The group was already at or above it: no call was made.
    AlreadyAtOrAbove,
}

/// What `retire` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetireOutcome {
    /// The instance is now terminating.
    Terminated,
    /// It was already terminating or gone: nothing to do.
    AlreadyGone,
}

/// How a drain attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DrainOutcome {
    /// Every evictable pod is gone.
    Drained,
    /// The attempt hit its deadline; `blocker` names the pod (and PodDisruptionBudget) in the way.
    TimedOut {
        /// `namespace/pod`, and the budget that refused it when known.
        blocker: String,
    },
    /// The driver stopped it: its signal ended (given back, retired, forgotten) while it
    /// ran, and no eviction may follow.
    Stopped {
        /// Why, in words.
        why: String,
    },
}

/// What the drain of one node must respect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrainSpec {
    /// The node.
    pub node: String,
    /// Deadline for this attempt, from its start.
    pub timeout: crate::time::Dur,
    /// Ask the apiserver to validate only (`dryRun=All`).
    pub dry_run: bool,
}

/// The Auto Scaling side.
#[async_trait]
pub trait Cloud: Send + Sync {
    /// Groups by name, with instances and tags. Unknown names are left out.
    async fn describe_groups(&self, names: &[String]) -> Result<Vec<Group>, PortError>;
    /// The group of each instance that is in one, as `(instance id, group name)`; instances
    /// in no Auto Scaling group are left out. For nodes whose group cluster-autoscaler does
    /// not report (self-managed and kops groups found by instance, not by label).
    async fn groups_of(&self, instance_ids: &[String]) -> Result<Vec<(String, String)>, PortError>;
    /// Raises desired capacity from `from` to `to` (absolute values, `to > from`), after
    /// reading the group again: only while its desired capacity is still `from`;
    /// [`SetDesiredOutcome::AlreadyAtOrAbove`] when it is at `to` or above, and
    /// [`PortError::Conflict`] when it moved elsewhere (the engine then decides again).
    async fn set_desired(
        &self,
        group: &str,
        from: u32,
        to: u32,
    ) -> Result<SetDesiredOutcome, PortError>;
    /// Terminates an instance, decrementing desired capacity when `decrement` is set.
    async fn retire(&self, instance_id: &str, decrement: bool) -> Result<RetireOutcome, PortError>;
    /// What the group's recent scaling activities (DescribeScalingActivities) tell: the
    /// launches that did not happen, and the raises of desired capacity that did. Asked only
    /// for groups with a boost in flight.
    async fn scaling_activities(&self, group: &str) -> Result<Activities, PortError>;
    /// Drops cached describes, so that the next one reads the groups fresh (a node whose
    /// instance no cached group lists was just seen). Adapters without a cache ignore it.
    fn forget_cached(&self) {}
}

/// What the Kubernetes side observed, for one snapshot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterView {
    /// Nodes.
    pub nodes: Vec<Node>,
    /// Signals from Events and taints.
    pub signals: Vec<Signal>,
    /// The cluster-autoscaler status.
    pub ca_status: CaObservation,
    /// The ledger as stored.
    pub ledger: Ledger,
    /// The booster's placeholder pods, per signal.
    pub placeholders: Vec<crate::snapshot::Placeholders>,
    /// Karpenter NodePools as groups ([`crate::snapshot::GroupKind::NodePool`]), their
    /// NodeClaims as instances: the Kubernetes side knows them, Auto Scaling does not.
    pub node_pools: Vec<Group>,
}

impl ClusterView {
    /// The group names cluster-autoscaler reports, to describe on the cloud side.
    pub fn ca_group_names(&self) -> Vec<String> {
        match &self.ca_status {
            CaObservation::Parsed { status, .. } => names_of(status),
            _ => Vec::new(),
        }
    }
}

impl ClusterView {
    /// The groups to describe on the cloud side: those cluster-autoscaler reports and those
    /// the ledger still has entries in, sorted and without repeats.
    pub fn groups_to_describe(&self) -> Vec<String> {
        let mut names = self.ca_group_names();
        names.extend(self.ledger.entries.values().map(|e| e.group.clone()));
        names.retain(|n| !self.node_pools.iter().any(|p| &p.name == n));
        names.sort_unstable();
        names.dedup();
        names
    }
}

fn names_of(status: &CaStatus) -> Vec<String> {
    status.node_groups.iter().map(|g| g.name.clone()).collect()
}

/// The Kubernetes side.
#[async_trait]
pub trait Cluster: Send + Sync {
    /// The current view (from watches/caches, not a fresh list per call).
    async fn observe(&self) -> Result<ClusterView, PortError>;
    /// Stores the ledger, failing with [`PortError::Conflict`] if it changed since `observe`.
    async fn store_ledger(&self, ledger: &Ledger) -> Result<(), PortError>;
    /// Sets or clears `spec.unschedulable`.
    async fn set_unschedulable(&self, node: &str, unschedulable: bool) -> Result<(), PortError>;
    /// Removes NTH's rebalance-recommendation taint, if present.
    async fn remove_rebalance_taint(&self, node: &str) -> Result<(), PortError>;
    /// Protects a replacement from scale-down while `for_node` (the signalled node) waits.
    async fn protect(&self, node: &str, for_node: &str) -> Result<(), PortError>;
    /// Removes the booster's scale-down protection.
    async fn unprotect(&self, node: &str) -> Result<(), PortError>;
    /// Puts the booster's `PreferNoSchedule` standby taint on `node` (`standby`), or takes
    /// it off, keeping every other taint.
    async fn set_standby_taint(&self, node: &str, standby: bool) -> Result<(), PortError>;
    /// Runs one drain attempt to its end (evictions through the Eviction API).
    async fn drain(&self, spec: &DrainSpec) -> Result<DrainOutcome, PortError>;
    /// Finishes or undoes the surges (see [`crate::surge`]) of nodes with no drain under way
    /// (`draining` has those with one). Ports without surges do nothing.
    async fn settle_surges(
        &self,
        _draining: &std::collections::BTreeSet<String>,
    ) -> Result<(), PortError> {
        Ok(())
    }
    /// What the surges did since the last call (drained from the port's log).
    fn take_surge_reports(&self) -> Vec<crate::surge::SurgeReport> {
        Vec::new()
    }
    /// Writes `entry` on `node` as the mark of a boost made for it (before the boost's
    /// call), so that losing the ledger cannot cause a second boost. Ports that keep no
    /// marks (the simulator) do nothing.
    async fn mark_boost(
        &self,
        _node: &str,
        _entry: &crate::ledger::Entry,
    ) -> Result<(), PortError> {
        Ok(())
    }
    /// Removes the boost mark from `node` (it was given back).
    async fn clear_boost_mark(&self, _node: &str) -> Result<(), PortError> {
        Ok(())
    }
    /// Makes the placeholder pods of `node`'s signal at `signal_at` (see
    /// [`crate::plan::Action::Place`]); those already there are left as they are. Returns
    /// how many it made.
    async fn place_placeholders(
        &self,
        node: &str,
        signal_at: crate::time::Timestamp,
    ) -> Result<u32, PortError>;
    /// Deletes every placeholder pod made for `node`'s signals.
    async fn remove_placeholders(&self, node: &str) -> Result<(), PortError>;
    /// Deletes a Karpenter NodeClaim (Karpenter then terminates its instance). A NodeClaim
    /// already gone is [`PortError::NotFound`].
    async fn delete_nodeclaim(&self, name: &str) -> Result<(), PortError>;
    /// Records a Kubernetes Event on the node.
    async fn record_event(
        &self,
        node: &str,
        reason: Reason,
        message: &str,
        warning: bool,
    ) -> Result<(), PortError>;
}

/// Leader election: only the leader executes plans.
#[async_trait]
pub trait Leadership: Send + Sync {
    /// Whether this replica holds the lease now.
    async fn is_leader(&self) -> bool;

    /// How much longer this replica may write without renewing: a write is started only
    /// while some is left and abandoned when it runs out (`None`: not leading). Without
    /// a lease, leadership never runs out.
    async fn lead_left(&self) -> Option<std::time::Duration> {
        self.is_leader().await.then_some(std::time::Duration::MAX)
    }
}

/// The describe cache the cloud adapters share: the last answer, reused while it is fresh
/// and covers every name asked. `T` is the adapter's notion of time (a monotonic instant
/// in production, simulated time in the simulator); the caller says what is fresh.
#[derive(Clone, Debug)]
pub struct DescribeCache<T> {
    last: Option<(T, std::collections::BTreeSet<String>, Vec<Group>)>,
}

impl<T> Default for DescribeCache<T> {
    fn default() -> Self {
        DescribeCache { last: None }
    }
}

impl<T: Copy> DescribeCache<T> {
    /// The cached groups among `names`, if the answer is `fresh` and was asked for all of them.
    pub fn get(&self, names: &[String], fresh: impl Fn(T) -> bool) -> Option<Vec<Group>> {
        let (at, asked, groups) = self.last.as_ref()?;
        (fresh(*at) && names.iter().all(|n| asked.contains(n))).then(|| {
            groups
                .iter()
                .filter(|g| names.contains(&g.name))
                .cloned()
                .collect()
        })
    }

    /// Remembers the answer to `names` got at `at`.
    pub fn put(&mut self, at: T, names: &[String], groups: &[Group]) {
        self.last = Some((at, names.iter().cloned().collect(), groups.to_vec()));
    }

    /// Forgets it (after a write of ours).
    pub fn clear(&mut self) {
        self.last = None;
    }
}
