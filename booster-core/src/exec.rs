//! Runs a [`Plan`] through the ports. The binary and the simulator share this executor, so
//! the simulator exercises the same order of writes as production.
//!
//! Order of writes, for crash safety:
//! * ledger-only actions (`RecordSignal`, `BeginBoost`, `ConfirmBoost`, `Forget`, the ledger
//!   part of `StartDrain`) are applied to a working copy and stored once, at the end;
//! * a `SetDesired` is preceded by a store of what came before it (the `Applying` record,
//!   write-ahead: a crash after the call finds the boost recorded) and followed at once by
//!   its confirmation and a store, so that the window in which a crash leaves a boost
//!   unconfirmed is one API call wide;
//! * `Release` uncordons (unless the cordon was somebody else's before the signal) and
//!   removes NTH's rebalance taint first, and records the release after, so that a crash in between
//!   leaves an expired, unreleased entry that the next plan releases again;
//! * `Retire` is the other way round: `retiring` is stored first (with everything before
//!   it), then the terminate is sent, so that a crash never leads to a second one unseen;
//! * `Place` and `DeleteNodeClaim` are write-ahead too: the record is stored first, then
//!   the pods are made or the NodeClaim deleted;
//! * drains are returned to the caller, to be started only after the ledger that says they
//!   started is stored.
//!
//! * every other write to the world (cordon, protection, give-back, placeholders removed)
//!   is made only on a stored ledger: what the plan recorded before it is stored first, so
//!   that a ledger that cannot be stored (deleted, and the shipped RBAC may not re-create
//!   it) stops the plan before the booster touches anything.
//!
//! A failed ledger store stops the plan: later actions may depend on it. A failed port call
//! is reported and the plan goes on; the next snapshot decides again.

use crate::ledger::Ledger;
use crate::plan::{Action, Plan};
use crate::ports::{Cloud, Cluster, DrainSpec, PortError, RetireOutcome, SetDesiredOutcome};
use crate::time::Dur;

/// What happened to one action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Only the ledger changed.
    Recorded,
    /// The port call changed the world.
    Done,
    /// The world was already as asked (desired at or above, instance gone): nothing changed.
    AlreadyDone,
    /// The drain is returned in [`Executed::drains`] for the caller to start.
    DrainQueued,
    /// Dry run: computed and reported, not executed.
    DryRun,
    /// A `Hold`: nothing to do.
    Held,
}

/// The result of one action, by its index in the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Index into `plan.actions`.
    pub index: usize,
    /// What the port did, or why it failed.
    pub result: Result<Effect, PortError>,
}

/// What [`execute`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Executed {
    /// One per action reached, in plan order.
    pub outcomes: Vec<Outcome>,
    /// Drains to start now, in plan order (their `Draining` state is stored).
    pub drains: Vec<DrainSpec>,
    /// The ledger as stored at the end (unchanged on dry run or when a store failed).
    pub ledger: Ledger,
    /// Number of ledger stores made.
    pub stores: u32,
    /// Set when a ledger store failed: the plan stopped there.
    pub aborted: Option<PortError>,
}

impl Executed {
    /// The failed outcomes.
    pub fn failures(&self) -> impl Iterator<Item = (&Outcome, &PortError)> {
        self.outcomes
            .iter()
            .filter_map(|o| o.result.as_ref().err().map(|e| (o, e)))
    }
}

struct Run<'a> {
    cluster: &'a dyn Cluster,
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
    /// on it) and `false` is returned.
    async fn stored_or_abort(&mut self) -> bool {
        match self.flush().await {
            Ok(()) => true,
            Err(e) => {
                self.out.aborted = Some(e);
                false
            }
        }
    }

    fn record(&mut self, index: usize, result: Result<Effect, PortError>) {
        self.out.outcomes.push(Outcome { index, result });
    }
}

/// Marks each boosted node with its ledger entry before the boost's call: a boost whose
/// marks could not all be written is not made (this pass).
async fn mark_boosts(
    cluster: &dyn Cluster,
    ledger: &Ledger,
    nodes: &[String],
) -> Result<(), PortError> {
    for node in nodes {
        if let Some(e) = ledger.entries.get(node) {
            cluster.mark_boost(node, e).await?;
        }
    }
    Ok(())
}

/// Executes `plan` against `ledger` (the one observed with the snapshot). `drain_timeout`
/// bounds each drain started.
pub async fn execute(
    plan: &Plan,
    ledger: &Ledger,
    cloud: &dyn Cloud,
    cluster: &dyn Cluster,
    drain_timeout: Dur,
) -> Executed {
    let mut run = Run {
        cluster,
        stored: ledger.clone(),
        working: ledger.clone(),
        out: Executed::default(),
        durable: 0,
    };
    for (index, a) in plan.actions.iter().enumerate() {
        if let Action::Hold { .. } = a {
            run.record(index, Ok(Effect::Held));
            continue;
        }
        if plan.dry_run {
            run.record(index, Ok(Effect::DryRun));
            continue;
        }
        let touches_world = matches!(
            a,
            Action::Cordon { .. }
                | Action::Protect { .. }
                | Action::Unprotect { .. }
                | Action::Release { .. }
                | Action::Unplace { .. }
        );
        if touches_world && !run.stored_or_abort().await {
            break;
        }
        let result = match a {
            Action::RecordSignal { .. }
            | Action::BeginBoost { .. }
            | Action::ConfirmBoost { .. }
            | Action::FollowDrain { .. }
            | Action::Forget { .. } => {
                run.working.apply(a);
                Ok(Effect::Recorded)
            }
            Action::SetDesired {
                group,
                from,
                to,
                nodes,
                ..
            } => {
                // Write-ahead: the `Applying` record is stored before the call.
                if !run.stored_or_abort().await {
                    break;
                }
                let raised = match mark_boosts(cluster, &run.working, nodes).await {
                    Ok(()) => cloud.set_desired(group, *from, *to).await,
                    Err(e) => Err(e),
                };
                match raised.map(|o| o == SetDesiredOutcome::Raised) {
                    Err(e) => Err(e),
                    Ok(raised) => {
                        if let Some(confirm) = a.set_desired_confirmation(raised) {
                            run.working.apply(&confirm);
                            // The marks say the raise was ours, so that a retire after the
                            // ledger's loss still gives it back. Best effort: a mark left
                            // at `applying` costs only that give-back (CA scales it down).
                            let _ = mark_boosts(cluster, &run.working, nodes).await;
                        }
                        let effect = if raised {
                            Effect::Done
                        } else {
                            Effect::AlreadyDone
                        };
                        run.record(index, Ok(effect));
                        if !run.stored_or_abort().await {
                            break;
                        }
                        continue;
                    }
                }
            }
            Action::Cordon { node, .. } => cluster
                .set_unschedulable(node, true)
                .await
                .map(|()| Effect::Done),
            Action::Protect { node, for_node, .. } => {
                cluster.protect(node, for_node).await.map(|()| Effect::Done)
            }
            Action::Unprotect { node, .. } => cluster.unprotect(node).await.map(|()| Effect::Done),
            Action::Release { node, uncordon, .. } => {
                let r = if *uncordon {
                    cluster.set_unschedulable(node, false).await
                } else {
                    Ok(())
                };
                let r = match r {
                    Ok(()) => cluster.remove_rebalance_taint(node).await,
                    Err(e) => Err(e),
                };
                // Given back: no mark must bring the signal back if the ledger is lost.
                let r = match r {
                    Ok(()) => cluster.clear_boost_mark(node).await,
                    Err(e) => Err(e),
                };
                r.map(|()| {
                    run.working.apply(a);
                    Effect::Done
                })
            }
            Action::StartDrain { node, .. } => {
                run.working.apply(a);
                run.out.drains.push(DrainSpec {
                    node: node.clone(),
                    timeout: drain_timeout,
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
                run.working.apply(a);
                if !run.stored_or_abort().await {
                    break;
                }
                cloud
                    .retire(instance_id, *decrement)
                    .await
                    .map(|o| match o {
                        RetireOutcome::Terminated => Effect::Done,
                        RetireOutcome::AlreadyGone => Effect::AlreadyDone,
                    })
            }
            Action::Place {
                node, signal_at, ..
            } => {
                // Write-ahead, as for a boost: the record and the node's mark come first,
                // so that a crash after the pods were made finds them recorded.
                run.working.apply(a);
                if !run.stored_or_abort().await {
                    break;
                }
                let made =
                    match mark_boosts(cluster, &run.working, std::slice::from_ref(node)).await {
                        Ok(()) => cluster.place_placeholders(node, *signal_at).await,
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
            Action::Unplace { node, .. } => cluster
                .remove_placeholders(node)
                .await
                .map(|()| Effect::Done),
            Action::DeleteNodeClaim { nodeclaim, .. } => {
                // Write-ahead, as for a retire.
                run.working.apply(a);
                if !run.stored_or_abort().await {
                    break;
                }
                match cluster.delete_nodeclaim(nodeclaim).await {
                    Ok(()) => Ok(Effect::Done),
                    Err(PortError::NotFound(_)) => Ok(Effect::AlreadyDone),
                    Err(e) => Err(e),
                }
            }
            Action::Hold { .. } => Ok(Effect::Held),
        };
        run.record(index, result);
    }
    if run.out.aborted.is_none() {
        run.stored_or_abort().await;
    }
    if let Some(e) = run.out.aborted.clone() {
        // Nothing after the last store is durable: do not start drains it did not record,
        // and report the records it did not keep as not made.
        run.out.drains.clear();
        for o in &mut run.out.outcomes[run.durable..] {
            if matches!(o.result, Ok(Effect::Recorded | Effect::DrainQueued)) {
                o.result = Err(e.clone());
            }
        }
    }
    run.out.ledger = run.stored;
    run.out
}

/// Drains the ledger says are under way but that no task of this process runs (after a
/// restart, or when a task died): each resumes with what is left of its attempt's timeout.
/// `running` names the nodes this process drains now. Past the timeout, the engine starts
/// the next attempt itself.
pub fn drains_to_resume(
    ledger: &Ledger,
    nodes: &[crate::snapshot::Node],
    running: &std::collections::BTreeSet<String>,
    now: crate::time::Timestamp,
    drain_timeout: Dur,
) -> Vec<DrainSpec> {
    ledger
        .entries
        .iter()
        .filter(|(node, e)| e.released_at.is_none() && !running.contains(*node))
        .filter_map(|(node, e)| match e.drain {
            crate::ledger::DrainState::Draining { since, .. } => {
                let deadline = since.plus(drain_timeout);
                let left = nodes
                    .iter()
                    .find(|n| &n.name == node)
                    .is_some_and(|n| n.pods_to_evict > 0);
                (left && now < deadline).then(|| DrainSpec {
                    node: node.clone(),
                    timeout: deadline.since(now),
                    dry_run: false,
                })
            }
            crate::ledger::DrainState::NotStarted | crate::ledger::DrainState::ByOthers { .. } => {
                None
            }
        })
        .collect()
}

/// Builds the snapshot for one pass: observes the cluster, describes the groups it names,
/// and, for nodes whose instance no described group lists (a launch newer than the cached
/// describe, or a group cluster-autoscaler does not report), asks once which group they
/// are in and describes again. `asked` remembers the instance ids already asked about.
pub async fn snapshot(
    cluster: &dyn Cluster,
    cloud: &dyn Cloud,
    now: crate::time::Timestamp,
    asked: &mut std::collections::BTreeSet<String>,
) -> Result<crate::snapshot::Snapshot, PortError> {
    let view = cluster.observe().await?;
    snapshot_of(view, cloud, now, asked).await
}

/// [`snapshot`] from a view already observed: the caller can tell the cluster's answer from
/// the cloud's (the controller's liveness is about the first).
pub async fn snapshot_of(
    view: crate::ports::ClusterView,
    cloud: &dyn Cloud,
    now: crate::time::Timestamp,
    asked: &mut std::collections::BTreeSet<String>,
) -> Result<crate::snapshot::Snapshot, PortError> {
    let groups = describe(&view, cloud, asked).await?;
    Ok(complete(view, cloud, now, groups).await)
}

/// [`snapshot_of`] that never fails on the cloud: when Auto Scaling does not answer, the
/// snapshot carries `last` (the groups of the last pass it answered) and says so in
/// `cloud_unavailable`, and the engine holds what needs AWS.
pub async fn snapshot_tolerant(
    view: crate::ports::ClusterView,
    cloud: &dyn Cloud,
    now: crate::time::Timestamp,
    asked: &mut std::collections::BTreeSet<String>,
    last: &[crate::snapshot::Group],
) -> crate::snapshot::Snapshot {
    match describe(&view, cloud, asked).await {
        Ok(groups) => complete(view, cloud, now, groups).await,
        Err(e) => snapshot_without_cloud(view, now, last, e.to_string()),
    }
}

/// The snapshot without asking Auto Scaling (it failed a moment ago and is being given
/// time): `last` groups, `why` in `cloud_unavailable`.
pub fn snapshot_without_cloud(
    view: crate::ports::ClusterView,
    now: crate::time::Timestamp,
    last: &[crate::snapshot::Group],
    why: String,
) -> crate::snapshot::Snapshot {
    let mut groups: Vec<crate::snapshot::Group> = last
        .iter()
        .filter(|g| g.kind == crate::snapshot::GroupKind::AutoScaling)
        .cloned()
        .collect();
    groups.extend(view.node_pools);
    crate::snapshot::Snapshot {
        now,
        ca_status: view.ca_status,
        groups,
        nodes: view.nodes,
        signals: view.signals,
        ledger: view.ledger,
        cloud_unavailable: Some(why),
        placeholders: view.placeholders,
        failures: Vec::new(),
    }
}

/// The groups the view needs; nodes in no group described are asked about once.
async fn describe(
    view: &crate::ports::ClusterView,
    cloud: &dyn Cloud,
    asked: &mut std::collections::BTreeSet<String>,
) -> Result<Vec<crate::snapshot::Group>, PortError> {
    let mut names = view.groups_to_describe();
    let mut groups = cloud.describe_groups(&names).await?;
    // A NodeClaim's instance is Karpenter's, in no Auto Scaling group: not asked about.
    let known: std::collections::BTreeSet<&str> = groups
        .iter()
        .chain(&view.node_pools)
        .flat_map(|g| g.instances.iter().map(|i| i.id.as_str()))
        .collect();
    let fresh: Vec<String> = view
        .nodes
        .iter()
        .filter_map(|n| n.instance_id.as_deref())
        .filter(|id| !known.contains(id) && !asked.contains(*id))
        .map(str::to_string)
        .collect();
    if !fresh.is_empty() {
        // A refusal of the ids themselves is not asked again; any other failure is Auto
        // Scaling's, as a describe's would be: the pass goes on without it and the caller
        // backs off, rather than every pass waiting on a lookup that fails (no credentials
        // in a Karpenter-only cluster, say).
        let found = match cloud.groups_of(&fresh).await {
            Ok(found) => {
                asked.extend(fresh);
                found
            }
            Err(PortError::Rejected(_) | PortError::NotFound(_)) => {
                asked.extend(fresh);
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        if !found.is_empty() {
            names.extend(found.into_iter().map(|(_, g)| g));
            names.sort_unstable();
            names.dedup();
            cloud.forget_cached();
            groups = cloud.describe_groups(&names).await?;
        }
    }
    Ok(groups)
}

async fn complete(
    view: crate::ports::ClusterView,
    cloud: &dyn Cloud,
    now: crate::time::Timestamp,
    mut groups: Vec<crate::snapshot::Group>,
) -> crate::snapshot::Snapshot {
    // Scaling activities, only where a boost waits for its capacity: the one place they
    // change a decision (launch failures; whether a raise took effect), and a bounded number
    // of calls. A failing call is no reason to stop.
    for g in groups.iter_mut() {
        let waiting = view.ledger.entries.values().any(|e| {
            e.released_at.is_none()
                && e.retiring.is_none()
                && e.boost_group() == g.name
                && matches!(
                    e.boost,
                    crate::ledger::Boost::Applying { .. } | crate::ledger::Boost::Applied { .. }
                )
        });
        if waiting {
            // Unread activities prove nothing either way: `activities_read` says which.
            if let Ok(a) = cloud.scaling_activities(&g.name).await {
                g.launch_failures = a.failures;
                g.raises = a.raises;
                g.activities_read = true;
            }
        }
    }
    groups.extend(view.node_pools);
    crate::snapshot::Snapshot {
        now,
        ca_status: view.ca_status,
        groups,
        nodes: view.nodes,
        signals: view.signals,
        ledger: view.ledger,
        cloud_unavailable: None,
        placeholders: view.placeholders,
        failures: Vec::new(),
    }
}
