//! The executor: a plan's actions through the ports in plan order, each ledger store placed
//! so that a crash at any point leaves a ledger the next pass can act on.

use std::ops::ControlFlow;

use super::{Effect, Executed, Outcome};
use crate::ledger::Ledger;
use crate::plan::{Action, Plan};
use crate::ports::{Cloud, Cluster, DrainSpec, PortError, RetireOutcome, SetDesiredOutcome};
use crate::time::{Dur, Timestamp};

/// Executes `plan` against `ledger` (the one observed with the snapshot). `drain_timeout`
/// bounds each drain started.
///
/// Order of writes, for crash safety:
/// * ledger-only actions (`RecordSignal`, `BeginBoost`, `ConfirmBoost`, `Forget`, the ledger
///   part of `StartDrain`) are applied to a working copy and stored once, at the end;
/// * a `SetDesired` is preceded by a store of what came before it (the `Applying` record,
///   write-ahead: a crash after the call finds the boost recorded) and followed at once by
///   its confirmation and a store, so that the window in which a crash leaves a boost
///   unconfirmed is one API call wide;
/// * `Release` uncordons (unless the cordon was somebody else's before the signal) and
///   removes NTH's rebalance taint first, and records the release after, so that a crash in between
///   leaves an expired, unreleased entry that the next plan releases again;
/// * `Retire` is the other way round: `retiring` is stored first (with everything before
///   it), then the terminate is sent, so that a crash never leads to a second one unseen;
/// * `Place` and `DeleteNodeClaim` are write-ahead too: the record is stored first, then
///   the pods are made or the NodeClaim deleted;
/// * drains are returned to the caller, to be started only after the ledger that says they
///   started is stored.
///
/// * every other write to the world (cordon, protection, give-back, placeholders removed)
///   is made only on a stored ledger: what the plan recorded before it is stored first, so
///   that a ledger that cannot be stored (deleted, and the shipped RBAC may not re-create
///   it) stops the plan before the booster touches anything.
///
/// A failed ledger store stops the plan: later actions may depend on it. A failed port call
/// is reported and the plan goes on; the next snapshot decides again.
pub async fn execute(
    plan: &Plan,
    ledger: &Ledger,
    cloud: &dyn Cloud,
    cluster: &dyn Cluster,
    drain_timeout: Dur,
) -> Executed {
    let mut run = Run {
        cluster,
        cloud,
        drain_timeout,
        stored: ledger.clone(),
        working: ledger.clone(),
        out: Executed::default(),
        durable: 0,
    };
    for (index, a) in plan.actions.iter().enumerate() {
        if run.step(plan.dry_run, index, a).await.is_break() {
            break;
        }
    }
    run.finish().await
}

struct Run<'a> {
    cluster: &'a dyn Cluster,
    cloud: &'a dyn Cloud,
    drain_timeout: Dur,
    stored: Ledger,
    working: Ledger,
    out: Executed,
    /// Outcomes before this index are in the stored ledger.
    durable: usize,
}

impl Run<'_> {
    async fn flush(&mut self) -> Result<(), PortError> {
        if self.working == self.stored {
            self.durable = self.out.outcomes.len();
            return Ok(());
        }
        self.cluster.store_ledger(&self.working).await?;
        self.stored = self.working.clone();
        self.out.stores += 1;
        self.durable = self.out.outcomes.len();
        Ok(())
    }

    /// Stores the working ledger; on failure the plan is aborted (later actions may depend
    /// on it) and `Break` is returned.
    async fn stored_or_abort(&mut self) -> ControlFlow<()> {
        match self.flush().await {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                self.out.aborted = Some(e);
                ControlFlow::Break(())
            }
        }
    }

    /// Applies `a` to the working ledger and stores it before the call it records.
    async fn write_ahead(&mut self, a: &Action) -> ControlFlow<()> {
        self.working.apply(a);
        self.stored_or_abort().await
    }

    fn record(&mut self, index: usize, result: Result<Effect, PortError>) {
        self.out.outcomes.push(Outcome { index, result });
    }

    /// One action of the plan: a hold or a dry run is only reported; a write to the world
    /// waits for the store of what came before it. `Break`: a store failed, the plan stops.
    async fn step(&mut self, dry_run: bool, index: usize, a: &Action) -> ControlFlow<()> {
        if let Action::Hold { .. } = a {
            self.record(index, Ok(Effect::Held));
            return ControlFlow::Continue(());
        }
        if dry_run {
            self.record(index, Ok(Effect::DryRun));
            return ControlFlow::Continue(());
        }
        if touches_world(a) {
            self.stored_or_abort().await?;
        }
        self.perform(index, a).await
    }

    /// Makes the calls of one action and records what they did.
    async fn perform(&mut self, index: usize, a: &Action) -> ControlFlow<()> {
        let cluster = self.cluster;
        let result = match a {
            Action::RecordSignal { .. }
            | Action::BeginBoost { .. }
            | Action::ConfirmBoost { .. }
            | Action::FollowDrain { .. }
            | Action::RecordOutcome { .. }
            | Action::Forget { .. } => {
                self.working.apply(a);
                Ok(Effect::Recorded)
            }
            Action::SetDesired {
                group,
                from,
                to,
                nodes,
                ..
            } => return self.set_desired(index, a, group, (*from, *to), nodes).await,
            Action::Cordon { node, .. } => cluster
                .set_unschedulable(node, true)
                .await
                .map(|()| Effect::Done),
            Action::Protect { node, for_node, .. } => {
                cluster.protect(node, for_node).await.map(|()| Effect::Done)
            }
            Action::Unprotect { node, .. } => cluster.unprotect(node).await.map(|()| Effect::Done),
            Action::Steer { node, standby, .. } => cluster
                .set_standby_taint(node, *standby)
                .await
                .map(|()| Effect::Done),
            Action::Release { node, uncordon, .. } => self.release(a, node, *uncordon).await,
            Action::StartDrain { node, .. } => {
                self.working.apply(a);
                self.out.drains.push(DrainSpec {
                    node: node.clone(),
                    timeout: self.drain_timeout,
                    dry_run: false,
                });
                Ok(Effect::DrainQueued)
            }
            Action::Retire {
                instance_id,
                decrement,
                ..
            } => {
                // Write-ahead: `retiring` is stored before the call, so that a repeated
                // pass or a restart sees the terminate was (maybe) sent.
                self.write_ahead(a).await?;
                self.retire(instance_id, *decrement).await
            }
            Action::Place {
                node, signal_at, ..
            } => {
                // Write-ahead, as for a boost: the record and the node's mark come first,
                // so that a crash after the pods were made finds them recorded.
                self.write_ahead(a).await?;
                self.place(node, *signal_at).await
            }
            Action::Unplace { node, .. } => cluster
                .remove_placeholders(node)
                .await
                .map(|()| Effect::Done),
            Action::DeleteNodeClaim { nodeclaim, .. } => {
                // Write-ahead, as for a retire.
                self.write_ahead(a).await?;
                match cluster.delete_nodeclaim(nodeclaim).await {
                    Ok(()) => Ok(Effect::Done),
                    Err(PortError::NotFound(_)) => Ok(Effect::AlreadyDone),
                    Err(e) => Err(e),
                }
            }
            Action::Hold { .. } => Ok(Effect::Held),
        };
        self.record(index, result);
        ControlFlow::Continue(())
    }

    /// The raise of a boost, between the store of its `Applying` record and the store of
    /// its confirmation. Records its own outcome.
    async fn set_desired(
        &mut self,
        index: usize,
        a: &Action,
        group: &str,
        (from, to): (u32, u32),
        nodes: &[String],
    ) -> ControlFlow<()> {
        // Write-ahead: the `Applying` record is stored before the call.
        self.stored_or_abort().await?;
        let raised = match mark_boosts(self.cluster, &self.working, nodes).await {
            Ok(()) => self.cloud.set_desired(group, from, to).await,
            Err(e) => Err(e),
        };
        let raised = match raised.map(|o| o == SetDesiredOutcome::Raised) {
            Err(e) => {
                self.record(index, Err(e));
                return ControlFlow::Continue(());
            }
            Ok(raised) => raised,
        };
        if let Some(confirm) = a.set_desired_confirmation(raised) {
            self.working.apply(&confirm);
            // The marks say the raise was ours, so that a retire after the
            // ledger's loss still gives it back. Best effort: a mark left
            // at `applying` costs only that give-back (CA scales it down).
            let _ = mark_boosts(self.cluster, &self.working, nodes).await;
        }
        let effect = if raised {
            Effect::Done
        } else {
            Effect::AlreadyDone
        };
        self.record(index, Ok(effect));
        self.stored_or_abort().await
    }

    /// The terminate of a retire, after its `retiring` record was stored.
    async fn retire(&self, instance_id: &str, decrement: bool) -> Result<Effect, PortError> {
        self.cloud
            .retire(instance_id, decrement)
            .await
            .map(|o| match o {
                RetireOutcome::Terminated => Effect::Done,
                RetireOutcome::AlreadyGone => Effect::AlreadyDone,
            })
    }

    /// The pods of a placeholder boost, after its record was stored: the node's mark
    /// first, as for a boost.
    async fn place(&self, node: &str, signal_at: Timestamp) -> Result<Effect, PortError> {
        let made = match mark_boost(self.cluster, &self.working, node).await {
            Ok(()) => self.cluster.place_placeholders(node, signal_at).await,
            Err(e) => Err(e),
        };
        made.map(|n| {
            if n > 0 {
                Effect::Done
            } else {
                Effect::AlreadyDone
            }
        })
    }

    /// A give-back: the node's writes first, the ledger's record of them after.
    async fn release(
        &mut self,
        a: &Action,
        node: &str,
        uncordon: bool,
    ) -> Result<Effect, PortError> {
        let r = if uncordon {
            self.cluster.set_unschedulable(node, false).await
        } else {
            Ok(())
        };
        let r = match r {
            Ok(()) => self.cluster.remove_rebalance_taint(node).await,
            Err(e) => Err(e),
        };
        // Given back: no mark must bring the signal back if the ledger is lost.
        let r = match r {
            Ok(()) => self.cluster.clear_boost_mark(node).await,
            Err(e) => Err(e),
        };
        r.map(|()| {
            self.working.apply(a);
            Effect::Done
        })
    }

    /// The last store, then what a failed store leaves of the run.
    async fn finish(mut self) -> Executed {
        if self.out.aborted.is_none() {
            let _ = self.stored_or_abort().await;
        }
        if let Some(e) = self.out.aborted.clone() {
            // Nothing after the last store is durable: do not start drains it did not record,
            // and report the records it did not keep as not made.
            self.out.drains.clear();
            for o in &mut self.out.outcomes[self.durable..] {
                if matches!(o.result, Ok(Effect::Recorded | Effect::DrainQueued)) {
                    o.result = Err(e.clone());
                }
            }
        }
        self.out.ledger = self.stored;
        self.out
    }
}

/// Writes to the world that are made only on a stored ledger.
fn touches_world(a: &Action) -> bool {
    matches!(
        a,
        Action::Cordon { .. }
            | Action::Protect { .. }
            | Action::Unprotect { .. }
            | Action::Steer { .. }
            | Action::Release { .. }
            | Action::Unplace { .. }
    )
}

/// Marks each boosted node with its ledger entry before the boost's call: a boost whose
/// marks could not all be written is not made (this pass).
async fn mark_boosts(
    cluster: &dyn Cluster,
    ledger: &Ledger,
    nodes: &[String],
) -> Result<(), PortError> {
    for node in nodes {
        mark_boost(cluster, ledger, node).await?;
    }
    Ok(())
}

/// Marks `node` with its ledger entry, if it has one.
async fn mark_boost(cluster: &dyn Cluster, ledger: &Ledger, node: &str) -> Result<(), PortError> {
    if let Some(e) = ledger.entries.get(node) {
        cluster.mark_boost(node, e).await?;
    }
    Ok(())
}
