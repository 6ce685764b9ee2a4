//! The Auto Scaling API as the simulated cloud port calls it: describes, scaling
//! activities, SetDesiredCapacity and TerminateInstanceInAutoScalingGroup.

use std::collections::BTreeMap;

use booster_core::ports::PortError;
use booster_core::snapshot::{Group, Instance, Lifecycle};

use super::autoscaling::InstState;
use super::World;

impl World {
    /// Auto Scaling groups as DescribeAutoScalingGroups shows them.
    pub fn describe(&self, names: &[String]) -> Vec<Group> {
        self.groups
            .iter()
            .filter(|g| names.iter().any(|n| n == &g.name))
            .map(|g| Group {
                name: g.name.clone(),
                min_size: g.min,
                max_size: g.max,
                desired: g.desired,
                instances: g
                    .instances
                    .iter()
                    .filter(|i| i.state != InstState::Gone)
                    .map(|i| Instance {
                        id: i.id.clone(),
                        az: i.az.clone(),
                        lifecycle: match i.state {
                            InstState::Pending => Lifecycle::Pending,
                            InstState::InService => Lifecycle::InService,
                            InstState::Terminating | InstState::Gone => Lifecycle::Terminating,
                        },
                        healthy: true,
                        protected_from_scale_in: false,
                        instance_type: format!("w{}", g.weight),
                        weight: (g.weight != 1).then_some(g.weight),
                    })
                    .collect(),
                tags: g.tags.clone(),
                capacity_rebalance: g.capacity_rebalance,
                suspended_processes: g.suspended.clone(),
                azs: g.azs.clone(),
                weights: if g.weight == 1 {
                    BTreeMap::new()
                } else {
                    BTreeMap::from([(format!("w{}", g.weight), g.weight)])
                },
                warm_pool: false,
                launch_failures: Vec::new(),
                raises: Vec::new(),
                activities_read: false,
                kind: booster_core::snapshot::GroupKind::AutoScaling,
            })
            .collect()
    }

    /// DescribeScalingActivities: the group's failed activities and its raises, newest
    /// first.
    pub fn scaling_activities(&self, group: &str) -> booster_core::snapshot::Activities {
        self.groups
            .iter()
            .find(|g| g.name == group)
            .map(|g| booster_core::snapshot::Activities {
                failures: g.failures.clone(),
                raises: g.raises.clone(),
            })
            .unwrap_or_default()
    }

    /// DescribeAutoScalingInstances: the group of each live instance.
    pub fn groups_of(&self, ids: &[String]) -> Vec<(String, String)> {
        ids.iter()
            .filter_map(|id| {
                self.live_instance(id)
                    .map(|(gi, _)| (id.clone(), self.groups[gi].name.clone()))
            })
            .collect()
    }

    pub fn group_desired(&self, name: &str) -> Option<(u32, u32, u32)> {
        self.groups
            .iter()
            .find(|g| g.name == name)
            .map(|g| (g.min, g.desired, g.max))
    }

    pub fn group_name(&self, gi: usize) -> &str {
        &self.groups[gi].name
    }

    /// SetDesiredCapacity as AWS does it: any value within min..=max.
    pub fn set_desired(&mut self, group: &str, desired: u32) -> Result<(), PortError> {
        let Some(g) = self.groups.iter_mut().find(|g| g.name == group) else {
            return Err(PortError::NotFound(format!("Auto Scaling group {group}")));
        };
        if desired > g.max || desired < g.min {
            return Err(PortError::Rejected(format!(
                "ValidationError: desired {desired} outside {}..={} of {group}",
                g.min, g.max
            )));
        }
        if desired < g.desired {
            self.metrics.desired_lowered += 1;
        }
        // A raise that the group's overage absorbs launches nothing.
        if desired > g.desired && desired <= g.capacity() {
            self.metrics.raises_without_launch += 1;
        }
        if desired > g.desired {
            g.raise_to(desired, self.now);
        } else {
            g.desired = desired;
        }
        self.bump();
        Ok(())
    }

    /// TerminateInstanceInAutoScalingGroup. `Ok(false)`: already terminating or gone.
    pub fn retire(&mut self, instance: &str, decrement: bool) -> Result<bool, PortError> {
        let Some((gi, _)) = self.live_instance(instance) else {
            return Ok(false);
        };
        let g = &mut self.groups[gi];
        if decrement {
            if g.desired < g.min + g.weight {
                return Err(PortError::Rejected(format!(
                    "ValidationError: {} is at its min size {}",
                    g.name, g.min
                )));
            }
            g.desired -= g.weight;
        }
        self.terminate_instance(instance);
        if decrement {
            self.maybe_az_rebalance(gi);
        }
        Ok(true)
    }
}
