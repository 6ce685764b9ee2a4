//! Surge before evict, as the booster's drains do it (booster_core::surge decides): the
//! Deployment one larger until the successor runs on another node, then back, the old pod
//! going first; undone at the timeout, or when no drain of its node runs any more.

use booster_core::surge::{
    assess, step, Assessment, Observed, Owner, Step, SurgeMode, SurgeRecord, WorkloadFacts,
};
use booster_core::time::Dur;

use super::drains::DrainState;
use super::World;

/// How long a successor may take (`--surge-timeout`'s default).
const SURGE_TIMEOUT: Dur = Dur::from_mins(5);

/// What the drain does with a pod.
enum Verdict {
    Evict,
    Hold,
}

impl World {
    /// Whether the controller's drain of `node` holds `pod` for its surge (else evicts it).
    pub(super) fn held_for_surge(&mut self, node: &str, pod: u64) -> bool {
        matches!(self.surge_verdict(node, pod), Verdict::Hold)
    }

    fn surge_verdict(&mut self, node: &str, pod: u64) -> Verdict {
        if self.surge == SurgeMode::Off {
            return Verdict::Evict;
        }
        let Some(p) = self.pods.get(&pod) else {
            return Verdict::Evict;
        };
        let app = p.app;
        let a = &self.apps[app];
        let running = self.app_running(app);
        let facts = WorkloadFacts {
            owner: Owner::Deployment(a.name.clone()),
            budget_allows: a.pdb_max_unavailable.map(|m| {
                let min = a.replicas.saturating_sub(m);
                running as i32 - min as i32
            }),
            replicas: a.replicas as i32,
            ready_replicas: running as i32,
            rollout_complete: true,
            record: self.surges.get(&app).cloned(),
            ..WorkloadFacts::of_pod(&pod.to_string(), p.running(self.now))
        };
        match assess(&facts, self.surge) {
            Assessment::Evict | Assessment::Skip(_) => Verdict::Evict,
            Assessment::Wait => Verdict::Hold,
            Assessment::Surge => {
                let from = self.apps[app].replicas as i32;
                self.surges.insert(
                    app,
                    SurgeRecord {
                        pod_uid: pod.to_string(),
                        pod: pod.to_string(),
                        node: node.to_string(),
                        from,
                        to: from + 1,
                        started: self.now,
                        deadline: self.now.plus(SURGE_TIMEOUT),
                        prior_cost: None,
                    },
                );
                self.apps[app].replicas += 1;
                self.reconcile_replicas();
                self.bump();
                Verdict::Hold
            }
            Assessment::Resume => self.advance_surge(app, pod, true),
        }
    }

    /// Settles each surge whose node no drain of the controller runs any more.
    pub(super) fn settle_surges(&mut self) {
        let orphans: Vec<(usize, u64)> = self
            .surges
            .iter()
            .filter(|(_, r)| {
                !self
                    .drains
                    .values()
                    .any(|d| d.node == r.node && d.state == DrainState::Running)
            })
            .filter_map(|(app, r)| Some((*app, r.pod_uid.parse().ok()?)))
            .collect();
        for (app, pod) in orphans {
            self.advance_surge(app, pod, false);
        }
    }

    fn advance_surge(&mut self, app: usize, pod: u64, drain_running: bool) -> Verdict {
        let Some(r) = self.surges.get(&app).cloned() else {
            return Verdict::Evict;
        };
        let now = self.now;
        let old_there = self.pods.get(&pod).is_some_and(|p| !p.terminating());
        let others: Vec<&Option<String>> = self
            .pods
            .iter()
            .filter(|(k, p)| **k != pod && p.app == app && p.running(now))
            .map(|(_, p)| &p.node)
            .collect();
        let ready_elsewhere = others
            .iter()
            .filter(|n| {
                n.as_deref().is_some_and(|n| {
                    n != r.node && self.nodes.get(n).is_some_and(|x| !x.unschedulable)
                })
            })
            .count() as i32;
        let o = Observed {
            replicas: self.apps[app].replicas as i32,
            old_pod_there: old_there,
            ready_others: others.len() as i32,
            ready_elsewhere,
            now,
        };
        let verdict = match step(&r, &o, drain_running) {
            Step::Wait => return Verdict::Hold,
            Step::HandOver => {
                // The ReplicaSet removes the old pod first (its deletion cost): it
                // terminates gracefully, with no budget asked.
                self.apps[app].replicas = r.from as u32;
                self.terminate(pod);
                self.metrics.surges_handed_over += 1;
                Verdict::Hold
            }
            Step::Finish | Step::Undo(_) => {
                self.apps[app].replicas = r.from as u32;
                Verdict::Evict
            }
            Step::Abandon => Verdict::Evict,
        };
        self.surges.remove(&app);
        self.reconcile_replicas();
        self.bump();
        verdict
    }
}
