//! The drains' surges (README, "Workloads of one"): those no drain runs any more are
//! settled, and what every surge did is taken for the metrics (the port posts its Events).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use booster_core::exec::Executed;
use booster_core::surge::SurgeReport;
use booster_core::Plan;

use super::Controller;

/// Between two looks for surges no drain runs (one list of the Deployments so labelled).
const SETTLE_EVERY: Duration = Duration::from_secs(15);

impl Controller {
    /// Settles the surges of nodes with no drain under way (the leader only, at most every
    /// [`SETTLE_EVERY`]), and returns what the surges did since the last pass.
    pub(super) async fn surges(
        &mut self,
        plan: &Plan,
        executed: &Executed,
        leader: bool,
    ) -> Vec<SurgeReport> {
        let due = self
            .surges_settled
            .is_none_or(|at| at.elapsed() >= SETTLE_EVERY);
        if leader && !plan.dry_run && executed.aborted.is_none() && due {
            self.surges_settled = Some(Instant::now());
            let draining: BTreeSet<String> = executed
                .ledger
                .entries
                .iter()
                .filter(|(_, e)| super::drains::under_way(e))
                .map(|(n, _)| n.clone())
                .chain(self.drains.nodes())
                .collect();
            if let Err(e) = self.ports.cluster.settle_surges(&draining).await {
                tracing::warn!(error = %e, "surges not settled; trying again");
            }
        }
        self.ports.cluster.take_surge_reports()
    }
}
