//! Drains as `kubectl drain` runs them, for NTH or the controller under test: evictions
//! retried while a budget refuses, until the node is empty, the deadline, or the runner dies.

use std::collections::BTreeMap;

use booster_core::time::{Dur, Timestamp};

use super::World;

/// Who runs a drain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Actor {
    /// AWS Node Termination Handler.
    Nth,
    /// The controller under test (booster or upstream).
    Controller,
}

/// Where a drain stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DrainState {
    Running,
    Drained,
    TimedOut(String),
    /// Its process died (controller restart).
    Aborted,
    NodeGone,
}

pub(super) struct DrainProc {
    pub(super) node: String,
    pub(super) actor: Actor,
    deadline: Timestamp,
    retry_at: BTreeMap<u64, Timestamp>,
    blocker: Option<String>,
    pub(super) state: DrainState,
}

impl World {
    /// Starts a drain and returns its id.
    pub fn start_drain(&mut self, node: &str, actor: Actor, timeout: Dur) -> u64 {
        let id = self.next_drain;
        self.next_drain += 1;
        self.drains.insert(
            id,
            DrainProc {
                node: node.to_string(),
                actor,
                deadline: self.now.plus(timeout),
                retry_at: BTreeMap::new(),
                blocker: None,
                state: DrainState::Running,
            },
        );
        self.progress_drain(id);
        id
    }

    pub fn drain_state(&self, id: u64) -> DrainState {
        self.drains
            .get(&id)
            .map_or(DrainState::Aborted, |d| d.state.clone())
    }

    /// The controller died: its drains die with it.
    pub fn abort_drains(&mut self, actor: Actor) {
        for d in self.drains.values_mut() {
            if d.actor == actor && d.state == DrainState::Running {
                d.state = DrainState::Aborted;
            }
        }
    }

    pub(super) fn progress_drains(&mut self) {
        let ids: Vec<u64> = self
            .drains
            .iter()
            .filter(|(_, d)| d.state == DrainState::Running)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.progress_drain(id);
        }
    }

    fn progress_drain(&mut self, id: u64) {
        let Some(d) = self.drains.get(&id) else {
            return;
        };
        let node = d.node.clone();
        if !self.nodes.contains_key(&node) {
            if let Some(d) = self.drains.get_mut(&id) {
                d.state = DrainState::NodeGone;
            }
            return;
        }
        let now = self.now;
        let todo: Vec<u64> = self
            .pods_on(&node)
            .filter(|(_, p)| !p.terminating())
            .map(|(k, _)| *k)
            .filter(|k| d.retry_at.get(k).is_none_or(|t| *t <= now))
            .collect();
        let retry = self.sc.timing.eviction_retry;
        let actor = d.actor;
        for pod in todo {
            if actor == Actor::Controller && self.held_for_surge(&node, pod) {
                continue;
            }
            if let Err(blocker) = self.evict(pod) {
                if let Some(d) = self.drains.get_mut(&id) {
                    d.retry_at.insert(pod, now.plus(retry));
                    d.blocker = Some(blocker);
                }
            }
        }
        let left = self.pods_to_evict(&node);
        if let Some(d) = self.drains.get_mut(&id) {
            if left == 0 {
                d.state = DrainState::Drained;
            } else if now >= d.deadline {
                d.state = DrainState::TimedOut(
                    d.blocker
                        .clone()
                        .unwrap_or_else(|| "pods still terminating".into()),
                );
            }
        }
    }
}
