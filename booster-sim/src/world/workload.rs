//! The workload: Deployments' pods kept at their replica count, the Eviction API with its
//! PodDisruptionBudgets, and graceful termination.

use booster_core::time::Timestamp;

use crate::rng;
use crate::scenario::{AppSpec, Range};

use super::{World, K_TERM};

pub(super) struct Pod {
    pub(super) app: usize,
    pub(super) node: Option<String>,
    pub(super) running_at: Option<Timestamp>,
    pub(super) terminating_until: Option<Timestamp>,
}

impl Pod {
    pub(super) fn terminating(&self) -> bool {
        self.terminating_until.is_some()
    }
    pub(super) fn running(&self, now: Timestamp) -> bool {
        !self.terminating() && self.running_at.is_some_and(|t| t <= now)
    }
}

pub(super) struct App {
    pub(super) name: String,
    pub(super) replicas: u32,
    pub(super) pdb_max_unavailable: Option<u32>,
    pub(super) termination: Range,
}

impl App {
    pub(super) fn from_spec(a: &AppSpec) -> Self {
        App {
            name: a.name.clone(),
            replicas: a.replicas,
            pdb_max_unavailable: a.pdb_max_unavailable,
            termination: a.termination,
        }
    }
}

impl World {
    /// The workload's first pods.
    pub(super) fn start_pods(&mut self, workload: &[AppSpec], long_ago: Timestamp) {
        // Pods start bound and running, packed onto the initial nodes.
        let names: Vec<String> = self.nodes.keys().cloned().collect();
        let slots: u64 = self
            .nodes
            .values()
            .map(|n| u64::from(self.node_room(n.group)))
            .sum();
        let mut slot = 0u64;
        for (ai, a) in workload.iter().enumerate() {
            for _ in 0..a.replicas {
                // Spread round-robin, as the scheduler's least-allocated scoring would.
                let node = (slot < slots)
                    .then(|| {
                        names
                            .get((slot % names.len().max(1) as u64) as usize)
                            .cloned()
                    })
                    .flatten();
                let running_at = node.as_ref().map(|_| long_ago);
                self.add_pod(ai, node, running_at);
                slot += 1;
            }
        }
    }

    fn add_pod(&mut self, app: usize, node: Option<String>, running_at: Option<Timestamp>) {
        self.pods.insert(
            self.next_pod,
            Pod {
                app,
                node,
                running_at,
                terminating_until: None,
            },
        );
        self.next_pod += 1;
    }

    pub(super) fn pods_on<'a>(
        &'a self,
        node: &'a str,
    ) -> impl Iterator<Item = (&'a u64, &'a Pod)> + 'a {
        self.pods
            .iter()
            .filter(move |(_, p)| p.node.as_deref() == Some(node))
    }

    /// Non-DaemonSet pods bound to the node, terminating ones included (kubectl drain waits
    /// for them).
    pub fn pods_to_evict(&self, node: &str) -> u32 {
        self.pods_on(node).count() as u32
    }

    pub(super) fn app_running(&self, app: usize) -> u32 {
        let now = self.now;
        self.pods
            .values()
            .filter(|p| p.app == app && p.running(now))
            .count() as u32
    }

    /// The Eviction API: refused (429) when the app's PodDisruptionBudget has no room.
    pub(super) fn evict(&mut self, pod: u64) -> Result<(), String> {
        let Some(p) = self.pods.get(&pod) else {
            return Ok(());
        };
        if p.terminating() {
            return Ok(());
        }
        let app = p.app;
        let a = &self.apps[app];
        if let Some(max_unavailable) = a.pdb_max_unavailable {
            let min_available = a.replicas.saturating_sub(max_unavailable);
            if p.running(self.now) && self.app_running(app) <= min_available {
                return Err(format!(
                    "pod {}/{} (PodDisruptionBudget {})",
                    a.name, pod, a.name
                ));
            }
        }
        self.terminate(pod);
        self.reconcile_replicas();
        self.bump();
        Ok(())
    }

    /// `pod` starts its graceful termination (its app's grace period, drawn per pod), and
    /// counts as a disruption.
    pub(super) fn terminate(&mut self, pod: u64) {
        let Some(app) = self.pods.get(&pod).map(|p| p.app) else {
            return;
        };
        let grace = self.apps[app]
            .termination
            .at(rng::unit(self.seed, &[K_TERM, pod]));
        let until = self.now.plus(grace);
        if let Some(p) = self.pods.get_mut(&pod) {
            p.terminating_until = Some(until);
        }
        self.metrics.evictions += 1;
    }

    pub(super) fn reconcile_replicas(&mut self) {
        for ai in 0..self.apps.len() {
            let want = self.apps[ai].replicas;
            let live: Vec<u64> = self
                .pods
                .iter()
                .filter(|(_, p)| p.app == ai && !p.terminating())
                .map(|(k, _)| *k)
                .collect();
            let have = live.len() as u32;
            if have < want {
                for _ in have..want {
                    self.add_pod(ai, None, None);
                }
            } else if have > want {
                // Scale-in removes pending pods first, then the newest.
                let mut order = live;
                order.sort_by_key(|k| {
                    (
                        self.pods.get(k).is_some_and(|p| p.node.is_some()),
                        std::cmp::Reverse(*k),
                    )
                });
                for k in order.into_iter().take((have - want) as usize) {
                    self.pods.remove(&k);
                }
            }
        }
    }

    pub(super) fn pods_progress(&mut self) {
        let now = self.now;
        let before = self.pods.len();
        self.pods
            .retain(|_, p| p.terminating_until.is_none_or(|t| t > now));
        if self.pods.len() != before {
            self.bump();
        }
    }
}
