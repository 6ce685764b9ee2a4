//! Nodes and the kubelet's part: a Node registers for its instance, turns Ready, and goes
//! when the instance shuts down, taking its pods with it; cordons and their managers.

use booster_core::ports::PortError;
use booster_core::time::Timestamp;

use super::autoscaling::{node_name, InstState};
use super::World;

/// The field managers of the cordons the simulated peers make.
pub(super) const NTH_MANAGER: &str = booster_core::config::NTH_FIELD_MANAGER;
pub(super) const CA_MANAGER: &str = "cluster-autoscaler";
pub(crate) const BOOSTER_MANAGER: &str = "aws-spots-booster";

pub(crate) struct SimNode {
    pub name: String,
    pub instance_id: String,
    pub group: usize,
    pub created_at: Timestamp,
    pub ready_since: Option<Timestamp>,
    pub unschedulable: bool,
    /// The field manager of the cordon, as `managedFields` would show it.
    pub cordoned_by: Option<&'static str>,
    pub cordoned_at: Option<Timestamp>,
    pub taint: bool,
    pub tainted_at: Option<Timestamp>,
    /// NTH's spot-itn taint (its interruption handling, taints on).
    pub itn_taint: bool,
    /// The booster's standby taint (`PreferNoSchedule`).
    pub standby_taint: bool,
    pub protected_for: Option<String>,
    pub scale_down_disabled: bool,
    /// Upstream's `asbooster.docplanner.com/ignore-recent-ready` annotation.
    pub upstream_ignore: bool,
}

impl SimNode {
    /// A cordon by `manager` at `at`; an uncordon when `manager` is `None`.
    pub(crate) fn cordon(&mut self, manager: &'static str, at: Timestamp) {
        if !self.unschedulable {
            self.unschedulable = true;
            self.cordoned_by = Some(manager);
            self.cordoned_at = Some(at);
        }
    }

    pub(crate) fn uncordon(&mut self) {
        self.unschedulable = false;
        self.cordoned_by = None;
        self.cordoned_at = None;
    }
}

impl World {
    pub(super) fn register(&mut self, gi: usize, id: &str, at: Timestamp) {
        let name = node_name(id);
        self.nodes.insert(
            name.clone(),
            SimNode {
                name,
                instance_id: id.to_string(),
                group: gi,
                created_at: at,
                ready_since: None,
                unschedulable: false,
                cordoned_by: None,
                cordoned_at: None,
                taint: false,
                tainted_at: None,
                itn_taint: false,
                standby_taint: false,
                protected_for: None,
                scale_down_disabled: false,
                upstream_ignore: false,
            },
        );
        self.bump();
    }

    pub(super) fn delete_node(&mut self, name: &str) {
        if self.nodes.remove(name).is_none() {
            return;
        }
        let mut killed = 0;
        self.pods.retain(|_, p| {
            if p.node.as_deref() != Some(name) {
                return true;
            }
            if !p.terminating() {
                killed += 1;
            }
            false
        });
        self.metrics.pods_killed += killed;
        self.placeholders
            .retain(|_, p| p.node.as_deref() != Some(name));
        self.ca.unneeded_since.remove(name);
        self.reconcile_replicas();
        self.bump();
    }

    pub(super) fn instances(&mut self) {
        let now = self.now;
        let mut register = Vec::new();
        let mut ready = Vec::new();
        let mut delete = Vec::new();
        for (gi, g) in self.groups.iter_mut().enumerate() {
            for i in &mut g.instances {
                match i.state {
                    InstState::Pending => {
                        if i.register_at <= now && !self.nodes.contains_key(&node_name(&i.id)) {
                            register.push((gi, i.id.clone(), i.register_at));
                        }
                        if i.ready_at <= now {
                            i.state = InstState::InService;
                            ready.push(node_name(&i.id));
                        }
                    }
                    InstState::Terminating => {
                        if i.node_gone_at.is_some_and(|t| t <= now) {
                            delete.push(node_name(&i.id));
                        }
                        if i.gone_at.is_some_and(|t| t <= now) {
                            i.state = InstState::Gone;
                        }
                    }
                    InstState::InService | InstState::Gone => {}
                }
            }
        }
        for (gi, id, at) in register {
            self.register(gi, &id, at);
        }
        for name in ready {
            if let Some(n) = self.nodes.get_mut(&name) {
                n.ready_since = Some(now);
                self.version += 1;
            }
        }
        for name in delete {
            self.delete_node(&name);
        }
    }

    pub(super) fn instance_leaving(&self, id: &str) -> bool {
        self.live_instance(id).is_none()
    }

    pub fn node_mut(&mut self, name: &str) -> Result<&mut SimNode, PortError> {
        self.version += 1;
        self.nodes
            .get_mut(name)
            .ok_or_else(|| PortError::NotFound(format!("node {name}")))
    }

    /// Nodes still cordoned (and not on their way out) at the end.
    pub fn cordoned(&self) -> u32 {
        self.nodes
            .values()
            .filter(|n| n.unschedulable && !self.instance_leaving(&n.instance_id))
            .count() as u32
    }
}
