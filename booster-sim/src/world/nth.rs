//! AWS Node Termination Handler: a rebalance recommendation becomes an Event, a cordon and
//! a taint (and a drain under `nth-drain`); an interruption notice, a cordon and a drain.

use booster_core::time::{Dur, Timestamp};

use super::autoscaling::{node_name, Standin};
use super::drains::Actor;
use super::events::RebalanceEvent;
use super::nodes::NTH_MANAGER;
use super::timeline::Timed;
use super::World;

impl World {
    /// NTH turns a rebalance recommendation into an Event and a cordon (and a drain under
    /// `nth-drain`).
    pub(super) fn rebalance(&mut self, group: usize, initial: u32, lead: Option<Dur>) {
        let id = format!("i-{}-{:04}", self.groups[group].name, initial);
        let name = node_name(&id);
        if self.live_instance(&id).is_none() || !self.nodes.contains_key(&name) {
            return;
        }
        self.metrics.signals += 1;
        self.genuine.insert(name.clone());
        self.events.push(RebalanceEvent {
            node: name.clone(),
            at: self.now,
            created: self.now,
            forged: None,
        });
        let now = self.now;
        if let Some(n) = self.nodes.get_mut(&name) {
            // NTH's recommended settings: Events and the taint on.
            n.cordon(NTH_MANAGER, now);
            n.taint = true;
            n.tainted_at = Some(now);
        }
        if self.nth_drains_on_rebalance {
            let timeout = self.sc.timing.nth_drain_timeout;
            self.start_drain(&name, Actor::Nth, timeout);
        }
        if self.groups[group].capacity_rebalance {
            self.launch_standin(group, Standin::Replaces(id.clone()));
        }
        if let Some(lead) = lead {
            let kill = self.now.plus(lead);
            let notice_ms = kill
                .unix_millis()
                .saturating_sub(self.sc.timing.interruption_notice.as_millis() as i64)
                .max(self.now.unix_millis());
            self.timeline.push((
                Timestamp::from_unix_millis(notice_ms),
                Timed::Notice {
                    instance: id.clone(),
                },
            ));
            self.timeline.push((kill, Timed::Kill { instance: id }));
            self.sort_timeline();
        }
        self.bump();
    }

    /// NTH on a spot interruption notice: cordon and drain until the end.
    pub(super) fn interruption_notice(&mut self, id: &str) {
        if self.live_instance(id).is_none() {
            return;
        }
        let name = node_name(id);
        self.genuine.insert(name.clone());
        let now = self.now;
        if let Some(n) = self.nodes.get_mut(&name) {
            n.cordon(NTH_MANAGER, now);
            n.itn_taint = true;
            let notice = self.sc.timing.interruption_notice;
            self.start_drain(&name, Actor::Nth, notice);
            self.bump();
        }
    }
}
