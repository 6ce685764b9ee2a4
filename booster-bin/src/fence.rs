//! Writes fenced by leadership. The pass checks the Lease once when it starts, but a pass
//! (and a drain) can outlive a renewal that fails: every write through these ports starts
//! only while this replica still leads, and is abandoned as soon as its lead runs out, so
//! that a replica that lost the Lease stops writing before another may take it (the renew
//! deadline is shorter than the lease duration the others wait). The lead is the one the
//! Lease has *while the call runs*: a renewal during a slow call (an SDK retrying a
//! throttled write) extends it, so only a lead really lost abandons a write.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use booster_core::ports::{
    Cloud, Cluster, ClusterView, DrainOutcome, DrainSpec, Leadership, PortError, RetireOutcome,
    SetDesiredOutcome,
};
use booster_core::snapshot::Activities;
use booster_core::{Group, Ledger, Reason};

use crate::latency::{Writes, MARK_BOOST, SET_DESIRED, STORE_LEDGER};

/// How often a running drain checks that this replica still leads.
const DRAIN_LEAD_CHECK: Duration = Duration::from_millis(500);

async fn fenced<T>(
    leader: &dyn Leadership,
    writes: &Writes,
    (what, subject): (&'static str, &str),
    call: impl Future<Output = Result<T, PortError>>,
) -> Result<T, PortError> {
    if leader.lead_left().await.is_none() {
        return Err(PortError::Unavailable(format!(
            "{what}: not leading, write withheld"
        )));
    }
    let started = Instant::now();
    let r = tokio::select! {
        r = call => r,
        () = lead_lost(leader) => Err(PortError::Unavailable(format!(
            "{what}: leadership ran out during the call"
        ))),
    };
    writes.record(what, subject, started);
    r
}

/// Resolves when this replica's lead runs out: it sleeps until the lead as last renewed
/// would end (at most [`DRAIN_LEAD_CHECK`]) and looks again, so a renewal in between moves
/// the end and a lost one ends it on time.
async fn lead_lost(leader: &dyn Leadership) {
    loop {
        match leader.lead_left().await {
            None => return,
            Some(left) => tokio::time::sleep(left.min(DRAIN_LEAD_CHECK)).await,
        }
    }
}

/// A [`Cluster`] whose writes are fenced by `leader`.
pub struct FencedCluster {
    /// The real one.
    pub inner: Arc<dyn Cluster>,
    /// The Lease.
    pub leader: Arc<dyn Leadership>,
    /// Where each write's timing goes.
    pub writes: Arc<Writes>,
}

#[async_trait]
impl Cluster for FencedCluster {
    async fn observe(&self) -> Result<ClusterView, PortError> {
        self.inner.observe().await
    }

    async fn store_ledger(&self, ledger: &Ledger) -> Result<(), PortError> {
        fenced(
            self.leader.as_ref(),
            &self.writes,
            (STORE_LEDGER, ""),
            self.inner.store_ledger(ledger),
        )
        .await
    }

    async fn set_unschedulable(&self, node: &str, unschedulable: bool) -> Result<(), PortError> {
        fenced(
            self.leader.as_ref(),
            &self.writes,
            ("cordon", node),
            self.inner.set_unschedulable(node, unschedulable),
        )
        .await
    }

    async fn remove_rebalance_taint(&self, node: &str) -> Result<(), PortError> {
        fenced(
            self.leader.as_ref(),
            &self.writes,
            ("untaint", node),
            self.inner.remove_rebalance_taint(node),
        )
        .await
    }

    async fn protect(&self, node: &str, for_node: &str) -> Result<(), PortError> {
        fenced(
            self.leader.as_ref(),
            &self.writes,
            ("protect", node),
            self.inner.protect(node, for_node),
        )
        .await
    }

    async fn unprotect(&self, node: &str) -> Result<(), PortError> {
        fenced(
            self.leader.as_ref(),
            &self.writes,
            ("unprotect", node),
            self.inner.unprotect(node),
        )
        .await
    }

    async fn set_standby_taint(&self, node: &str, standby: bool) -> Result<(), PortError> {
        fenced(
            self.leader.as_ref(),
            &self.writes,
            ("steer", node),
            self.inner.set_standby_taint(node, standby),
        )
        .await
    }

    async fn mark_boost(&self, node: &str, entry: &booster_core::Entry) -> Result<(), PortError> {
        fenced(
            self.leader.as_ref(),
            &self.writes,
            (MARK_BOOST, node),
            self.inner.mark_boost(node, entry),
        )
        .await
    }

    async fn place_placeholders(
        &self,
        node: &str,
        signal_at: booster_core::Timestamp,
    ) -> Result<u32, PortError> {
        fenced(
            self.leader.as_ref(),
            &self.writes,
            ("place", node),
            self.inner.place_placeholders(node, signal_at),
        )
        .await
    }

    async fn remove_placeholders(&self, node: &str) -> Result<(), PortError> {
        fenced(
            self.leader.as_ref(),
            &self.writes,
            ("unplace", node),
            self.inner.remove_placeholders(node),
        )
        .await
    }

    async fn delete_nodeclaim(&self, name: &str) -> Result<(), PortError> {
        fenced(
            self.leader.as_ref(),
            &self.writes,
            ("delete nodeclaim", name),
            self.inner.delete_nodeclaim(name),
        )
        .await
    }

    async fn clear_boost_mark(&self, node: &str) -> Result<(), PortError> {
        fenced(
            self.leader.as_ref(),
            &self.writes,
            ("clear boost mark", node),
            self.inner.clear_boost_mark(node),
        )
        .await
    }

    async fn settle_surges(
        &self,
        draining: &std::collections::BTreeSet<String>,
    ) -> Result<(), PortError> {
        fenced(
            self.leader.as_ref(),
            &self.writes,
            ("settle surges", ""),
            self.inner.settle_surges(draining),
        )
        .await
    }

    fn take_surge_reports(&self) -> Vec<booster_core::surge::SurgeReport> {
        self.inner.take_surge_reports()
    }

    /// A drain is long (its own deadline): it runs while this replica leads and stops at
    /// the first check that finds it does not (the ledger keeps it; the next leader resumes).
    async fn drain(&self, spec: &DrainSpec) -> Result<DrainOutcome, PortError> {
        if spec.dry_run {
            return self.inner.drain(spec).await;
        }
        tokio::select! {
            r = self.inner.drain(spec) => r,
            () = lead_lost(self.leader.as_ref()) => Err(PortError::Unavailable(format!(
                "drain of {}: leadership lost, stopped", spec.node
            ))),
        }
    }

    async fn record_event(
        &self,
        node: &str,
        reason: Reason,
        message: &str,
        warning: bool,
    ) -> Result<(), PortError> {
        self.inner
            .record_event(node, reason, message, warning)
            .await
    }
}

/// A [`Cloud`] whose writes are fenced by `leader`.
pub struct FencedCloud {
    /// The real one.
    pub inner: Arc<dyn Cloud>,
    /// The Lease.
    pub leader: Arc<dyn Leadership>,
    /// Where each write's timing goes.
    pub writes: Arc<Writes>,
}

#[async_trait]
impl Cloud for FencedCloud {
    async fn describe_groups(&self, names: &[String]) -> Result<Vec<Group>, PortError> {
        self.inner.describe_groups(names).await
    }

    async fn groups_of(&self, instance_ids: &[String]) -> Result<Vec<(String, String)>, PortError> {
        self.inner.groups_of(instance_ids).await
    }

    async fn set_desired(
        &self,
        group: &str,
        from: u32,
        desired: u32,
    ) -> Result<SetDesiredOutcome, PortError> {
        fenced(
            self.leader.as_ref(),
            &self.writes,
            (SET_DESIRED, group),
            self.inner.set_desired(group, from, desired),
        )
        .await
    }

    async fn retire(&self, instance_id: &str, decrement: bool) -> Result<RetireOutcome, PortError> {
        fenced(
            self.leader.as_ref(),
            &self.writes,
            ("TerminateInstanceInAutoScalingGroup", instance_id),
            self.inner.retire(instance_id, decrement),
        )
        .await
    }

    async fn scaling_activities(&self, group: &str) -> Result<Activities, PortError> {
        self.inner.scaling_activities(group).await
    }

    fn forget_cached(&self) {
        self.inner.forget_cached();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use booster_core::testkit::mocks::{MockCloud, MockLeadership};

    struct RunsOut(std::time::Instant, Duration);

    #[async_trait]
    impl Leadership for RunsOut {
        async fn is_leader(&self) -> bool {
            self.0.elapsed() < self.1
        }
        async fn lead_left(&self) -> Option<Duration> {
            self.1
                .checked_sub(self.0.elapsed())
                .filter(|d| !d.is_zero())
        }
    }

    #[tokio::test]
    async fn a_replica_that_does_not_lead_sends_no_write() {
        let mut leader = MockLeadership::new();
        leader.expect_is_leader().returning(|| false);
        let mut cloud = MockCloud::new();
        cloud.expect_set_desired().never();
        cloud.expect_retire().never();
        let c = FencedCloud {
            inner: Arc::new(cloud),
            leader: Arc::new(leader),
            writes: Arc::default(),
        };
        let e = c.set_desired("g", 3, 4).await.err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("not leading")));
        assert!(c.retire("i-1", true).await.is_err());
    }

    #[tokio::test]
    async fn a_write_that_outlives_the_lead_is_abandoned() {
        struct Hangs;
        #[async_trait]
        impl Cloud for Hangs {
            async fn describe_groups(&self, _: &[String]) -> Result<Vec<Group>, PortError> {
                Ok(vec![])
            }
            async fn groups_of(&self, _: &[String]) -> Result<Vec<(String, String)>, PortError> {
                Ok(vec![])
            }
            async fn set_desired(
                &self,
                _: &str,
                _: u32,
                _: u32,
            ) -> Result<SetDesiredOutcome, PortError> {
                std::future::pending().await
            }
            async fn retire(&self, _: &str, _: bool) -> Result<RetireOutcome, PortError> {
                std::future::pending().await
            }
            async fn scaling_activities(&self, _: &str) -> Result<Activities, PortError> {
                Ok(Activities::default())
            }
        }
        let c = FencedCloud {
            inner: Arc::new(Hangs),
            leader: Arc::new(RunsOut(
                std::time::Instant::now(),
                Duration::from_millis(200),
            )),
            writes: Arc::default(),
        };
        let started = std::time::Instant::now();
        let r = c.set_desired("g", 3, 4).await;
        assert!(r.is_err_and(|e| e.to_string().contains("ran out")));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    /// The Lease is renewed every moment, each renewal leaving 200 ms.
    struct Renewed;

    #[async_trait]
    impl Leadership for Renewed {
        async fn is_leader(&self) -> bool {
            true
        }
        async fn lead_left(&self) -> Option<Duration> {
            Some(Duration::from_millis(200))
        }
    }

    /// A write slowed by retries (600 ms) outlives the lead it started with (200 ms) but
    /// not the lead renewed while it ran: it is not abandoned.
    #[tokio::test]
    async fn a_slow_write_under_a_renewed_lease_goes_through() {
        let mut cloud = MockCloud::new();
        cloud
            .expect_set_desired()
            .returning(|_, _, _| Ok(SetDesiredOutcome::Raised));
        let c = FencedCloud {
            inner: Arc::new(cloud),
            leader: Arc::new(Renewed),
            writes: Arc::default(),
        };
        let slow = async {
            tokio::time::sleep(Duration::from_millis(600)).await;
            c.inner.set_desired("g", 3, 4).await
        };
        let r = fenced(c.leader.as_ref(), &c.writes, (SET_DESIRED, "g"), slow).await;
        assert_eq!(r, Ok(SetDesiredOutcome::Raised));
    }
}
