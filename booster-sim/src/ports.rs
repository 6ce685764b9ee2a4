//! The port traits implemented over the simulated world, so that policies drive it through
//! the same interface the binary drives Kubernetes and AWS with.

use std::collections::BTreeMap;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use async_trait::async_trait;

use booster_core::ledger::Ledger;
use booster_core::plan::Reason;
use booster_core::ports::{
    Cloud, Cluster, ClusterView, DescribeCache, DrainOutcome, DrainSpec, PortError, RetireOutcome,
    SetDesiredOutcome,
};
use booster_core::snapshot::Group;
use booster_core::time::{Dur, Timestamp};

use super::world::{Actor, DrainState, World};

pub(crate) type Shared = Arc<Mutex<World>>;

/// The world, even if a panic elsewhere poisoned the lock (the simulator never panics on
/// purpose; a poisoned lock only means a test already failed).
pub(crate) fn lock(w: &Shared) -> MutexGuard<'_, World> {
    w.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Polls a future once. The simulator's port calls complete at once; drains are polled
/// again every simulated second until they end.
pub(crate) fn poll_once<F: Future + ?Sized>(f: std::pin::Pin<&mut F>) -> Option<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    match f.poll(&mut cx) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

/// Runs a future that completes without waiting.
pub(crate) fn now<F: Future>(f: F) -> Result<F::Output, PortError> {
    let f = pin!(f);
    poll_once(f).ok_or_else(|| PortError::Unavailable("simulated call did not complete".into()))
}

/// How long DescribeAutoScalingGroups answers are reused; our own writes invalidate them.
pub(crate) const DESCRIBE_TTL: Dur = Dur::from_secs(15);

/// The Auto Scaling side, counting calls by operation.
pub(crate) struct SimCloud {
    w: Shared,
    cache: Mutex<DescribeCache<Timestamp>>,
    /// DescribeScalingActivities answers by group, reused as the adapter does.
    activities: Mutex<BTreeMap<String, (Timestamp, booster_core::snapshot::Activities)>>,
}

impl SimCloud {
    pub fn new(w: Shared) -> Self {
        SimCloud {
            w,
            cache: Mutex::new(DescribeCache::default()),
            activities: Mutex::new(BTreeMap::new()),
        }
    }

    fn count(w: &mut World, op: &'static str) {
        *w.metrics.calls.entry(op).or_default() += 1;
    }

    /// Drops cached describes (after our own writes, or when a node's instance is unknown).
    pub fn invalidate(&self) {
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// A raw SetDesiredCapacity, any value (upstream's call; it may lower capacity).
    pub fn set_desired_capacity(&self, group: &str, desired: u32) -> Result<(), PortError> {
        let mut w = lock(&self.w);
        Self::count(&mut w, "SetDesiredCapacity");
        w.set_desired(group, desired)
    }

    /// DescribeTags (upstream polls it).
    pub fn describe_tags(&self) {
        let mut w = lock(&self.w);
        Self::count(&mut w, "DescribeTags");
    }
}

#[async_trait]
impl Cloud for SimCloud {
    async fn describe_groups(&self, names: &[String]) -> Result<Vec<Group>, PortError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut w = lock(&self.w);
        let now = w.now;
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(hit) = cache.get(names, |at| now.since(at) < DESCRIBE_TTL) {
            return Ok(hit);
        }
        // The API takes up to 100 names per call.
        for _ in 0..names.len().div_ceil(100) {
            Self::count(&mut w, "DescribeAutoScalingGroups");
        }
        let groups = w.describe(names);
        cache.put(now, names, &groups);
        Ok(groups)
    }

    async fn groups_of(&self, instance_ids: &[String]) -> Result<Vec<(String, String)>, PortError> {
        let mut w = lock(&self.w);
        // The API takes up to 50 instance ids per call.
        for _ in 0..instance_ids.len().div_ceil(50) {
            Self::count(&mut w, "DescribeAutoScalingInstances");
        }
        Ok(w.groups_of(instance_ids))
    }

    async fn set_desired(
        &self,
        group: &str,
        from: u32,
        desired: u32,
    ) -> Result<SetDesiredOutcome, PortError> {
        let r = {
            let mut w = lock(&self.w);
            // Re-read the group: the engine's view may be a few seconds old.
            Self::count(&mut w, "DescribeAutoScalingGroups");
            let (_, current, max) = w
                .group_desired(group)
                .ok_or_else(|| PortError::NotFound(format!("Auto Scaling group {group}")))?;
            if current >= desired {
                Ok(SetDesiredOutcome::AlreadyAtOrAbove)
            } else if current != from {
                Err(PortError::Conflict(format!(
                    "desired capacity of {group} is {current}, not {from}"
                )))
            } else if desired > max {
                Err(PortError::Rejected(format!(
                    "desired {desired} above max size {max} of {group}"
                )))
            } else {
                Self::count(&mut w, "SetDesiredCapacity");
                w.set_desired(group, desired)
                    .map(|()| SetDesiredOutcome::Raised)
            }
        };
        self.invalidate();
        r
    }

    async fn scaling_activities(
        &self,
        group: &str,
    ) -> Result<booster_core::snapshot::Activities, PortError> {
        let mut w = lock(&self.w);
        let now = w.now;
        let mut cache = self
            .activities
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((_, a)) = cache
            .get(group)
            .filter(|(at, _)| now.since(*at) < DESCRIBE_TTL)
        {
            return Ok(a.clone());
        }
        Self::count(&mut w, "DescribeScalingActivities");
        let a = w.scaling_activities(group);
        cache.insert(group.to_string(), (now, a.clone()));
        Ok(a)
    }

    fn forget_cached(&self) {
        self.invalidate();
    }

    async fn retire(&self, instance_id: &str, decrement: bool) -> Result<RetireOutcome, PortError> {
        let r = {
            let mut w = lock(&self.w);
            Self::count(&mut w, "TerminateInstanceInAutoScalingGroup");
            w.touched_by_controller(&super::world::node_name(instance_id));
            w.retire(instance_id, decrement).map(|done| {
                if done {
                    RetireOutcome::Terminated
                } else {
                    RetireOutcome::AlreadyGone
                }
            })
        };
        self.invalidate();
        r
    }
}

/// The Kubernetes side.
pub(crate) struct SimCluster {
    w: Shared,
}

impl SimCluster {
    pub fn new(w: Shared) -> Self {
        SimCluster { w }
    }

    /// Upstream's `asbooster.docplanner.com/ignore-recent-ready` annotation.
    pub fn annotate_ignore(&self, node: &str) -> Result<(), PortError> {
        lock(&self.w)
            .node_mut(node)
            .map(|n| n.upstream_ignore = true)
    }
}

#[async_trait]
impl Cluster for SimCluster {
    async fn observe(&self) -> Result<ClusterView, PortError> {
        Ok(lock(&self.w).cluster_view())
    }

    async fn store_ledger(&self, ledger: &Ledger) -> Result<(), PortError> {
        let mut w = lock(&self.w);
        w.ledger = ledger.clone();
        w.version += 1;
        Ok(())
    }

    async fn set_unschedulable(&self, node: &str, unschedulable: bool) -> Result<(), PortError> {
        let mut w = lock(&self.w);
        let now = w.now;
        if unschedulable {
            w.touched_by_controller(node);
        }
        w.node_mut(node).map(|n| {
            if unschedulable {
                n.cordon(super::world::BOOSTER_MANAGER, now)
            } else {
                n.uncordon()
            }
        })
    }

    async fn remove_rebalance_taint(&self, node: &str) -> Result<(), PortError> {
        lock(&self.w).node_mut(node).map(|n| {
            n.taint = false;
            n.tainted_at = None;
        })
    }

    async fn protect(&self, node: &str, for_node: &str) -> Result<(), PortError> {
        lock(&self.w).node_mut(node).map(|n| {
            n.protected_for = Some(for_node.to_string());
            n.scale_down_disabled = true;
        })
    }

    async fn unprotect(&self, node: &str) -> Result<(), PortError> {
        // The marker stays: a replacement stands in for one signal only.
        lock(&self.w)
            .node_mut(node)
            .map(|n| n.scale_down_disabled = false)
    }

    async fn set_standby_taint(&self, node: &str, standby: bool) -> Result<(), PortError> {
        lock(&self.w)
            .node_mut(node)
            .map(|n| n.standby_taint = standby)
    }

    async fn drain(&self, spec: &DrainSpec) -> Result<DrainOutcome, PortError> {
        let id = {
            let mut w = lock(&self.w);
            w.node_mut(&spec.node)?;
            if spec.dry_run {
                return Ok(DrainOutcome::Drained);
            }
            w.touched_by_controller(&spec.node);
            w.start_drain(&spec.node, Actor::Controller, spec.timeout)
        };
        poll_fn(|_| match lock(&self.w).drain_state(id) {
            DrainState::Running => Poll::Pending,
            DrainState::Drained => Poll::Ready(Ok(DrainOutcome::Drained)),
            DrainState::TimedOut(blocker) => Poll::Ready(Ok(DrainOutcome::TimedOut { blocker })),
            DrainState::Aborted => Poll::Ready(Err(PortError::Unavailable(
                "drain aborted: the controller stopped".into(),
            ))),
            DrainState::NodeGone => Poll::Ready(Err(PortError::NotFound(format!(
                "node {} is gone",
                spec.node
            )))),
        })
        .await
    }

    async fn place_placeholders(&self, node: &str, signal_at: Timestamp) -> Result<u32, PortError> {
        let mut w = lock(&self.w);
        w.node_mut(node)?;
        Ok(w.place(node, signal_at))
    }

    async fn remove_placeholders(&self, node: &str) -> Result<(), PortError> {
        lock(&self.w).unplace(node);
        Ok(())
    }

    async fn delete_nodeclaim(&self, name: &str) -> Result<(), PortError> {
        // The simulated world has Auto Scaling groups only.
        Err(PortError::NotFound(format!("nodeclaim {name}")))
    }

    async fn record_event(
        &self,
        _node: &str,
        _reason: Reason,
        _message: &str,
        _warning: bool,
    ) -> Result<(), PortError> {
        Ok(())
    }
}
