//! Auto Scaling's part of the pass's snapshot: after its describes fail, the snapshot
//! carries the last groups it described and Auto Scaling is left alone for a backoff.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use booster_core::ports::{Cloud, ClusterView};
use booster_core::{Group, Snapshot, Timestamp};

type Backoff = Box<dyn Iterator<Item = Duration> + Send>;

/// Waits before Auto Scaling is asked again after a failure: 2 s doubling to a minute,
/// jittered.
fn cloud_backoff() -> Backoff {
    use backon::BackoffBuilder;
    Box::new(
        backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_secs(2))
            .with_max_delay(Duration::from_secs(60))
            .with_jitter()
            .without_max_times()
            .build(),
    )
}

/// What the controller keeps of Auto Scaling between passes.
pub(super) struct CloudGate {
    /// Instance ids already looked up with `groups_of`.
    unknown: BTreeSet<String>,
    /// The groups of the last pass Auto Scaling answered.
    last_groups: Vec<Group>,
    /// Auto Scaling's describes failed: not asked again before this instant, and why.
    cloud_down: Option<(Instant, String)>,
    cloud_backoff: Backoff,
}

impl CloudGate {
    pub(super) fn new() -> Self {
        CloudGate {
            unknown: BTreeSet::new(),
            last_groups: Vec::new(),
            cloud_down: None,
            cloud_backoff: cloud_backoff(),
        }
    }

    /// The snapshot of the cluster's `view` at `now`, with Auto Scaling's groups when it
    /// answers; when it fails, with the last groups it described and why (the engine holds
    /// what needs AWS), so that each pass is not held by a call that times out.
    pub(super) async fn snapshot(
        &mut self,
        view: ClusterView,
        cloud: &dyn Cloud,
        now: Timestamp,
    ) -> Snapshot {
        if let Some((until, why)) = self
            .cloud_down
            .as_ref()
            .filter(|(u, _)| Instant::now() < *u)
        {
            let why = format!(
                "{why} (asked again in {}s)",
                until.saturating_duration_since(Instant::now()).as_secs()
            );
            return booster_core::exec::snapshot_without_cloud(view, now, &self.last_groups, why);
        }
        let s = booster_core::exec::snapshot_tolerant(
            view,
            cloud,
            now,
            &mut self.unknown,
            &self.last_groups,
        )
        .await;
        match &s.cloud_unavailable {
            None => {
                self.last_groups = s.groups.clone();
                self.cloud_down = None;
                self.cloud_backoff = cloud_backoff();
            }
            Some(why) => self.cloud_failed(why.clone()),
        }
        s
    }

    fn cloud_failed(&mut self, why: String) {
        let wait = self.cloud_backoff.next().unwrap_or(Duration::from_secs(60));
        tracing::warn!(
            error = %why,
            retry_in_s = wait.as_secs(),
            groups_known = self.last_groups.len(),
            "Auto Scaling did not answer: Kubernetes-only steps go on, boosts and retires wait"
        );
        self.cloud_down = Some((Instant::now() + wait, why));
    }

    /// Forgets the instance ids of nodes that are gone.
    pub(super) fn forget_gone(&mut self, snapshot: &Snapshot) {
        let ids: BTreeSet<&str> = snapshot
            .nodes
            .iter()
            .filter_map(|n| n.instance_id.as_deref())
            .collect();
        self.unknown.retain(|id| ids.contains(id.as_str()));
    }
}
