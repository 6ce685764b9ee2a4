//! Step 2a: how a boost is asked for, granted or queued, and in which group (the boost a
//! group has in flight is settled first, in `settle.rs`).
//!
//! A signal wants a boost in its own group, in that group's units (the signalled
//! instance's weight). Some groups must not or cannot be boosted:
//!
//! * Capacity Rebalancing on: AWS launches the replacement itself, so a boost would add a
//!   second one. The signal is recorded without a boost (`Abandoned{capacityRebalance}`).
//! * Launch suspended, or a launch failed within `launch_failure_backoff`: the boost would
//!   launch nothing. The signal goes to the first fallback group that can launch, or waits.
//!
//! Boosts are then settled and granted per group boosted, own or fallback.

use std::collections::BTreeMap;

use super::{untouchable, Decider, Fresh};
use crate::ca_status::CaNodeGroup;
use crate::ledger::{Boost, DrainState, Entry};
use crate::plan::{Action, Reason};
use crate::snapshot::Group;
use crate::time::Timestamp;

/// A signal that wants a boost this pass.
#[derive(Clone, Copy)]
pub(super) struct Want<'a> {
    pub node: &'a str,
    pub signal_at: Timestamp,
    /// The signalled instance, for a signal seen for the first time (`None`: a queued
    /// entry).
    pub fresh: Option<&'a str>,
    /// The signal's own group.
    pub own: &'a Group,
    /// Units of the signalled instance in its own group.
    pub weight: u32,
}

/// What a group grants its wants this pass: the first `granted` of them (oldest first)
/// raise desired capacity from `from` to `to`; the others wait for `wait_reason`.
#[derive(Clone, Copy)]
struct Grant {
    granted: usize,
    from: u32,
    to: u32,
    wait_reason: Reason,
}

impl<'a> Decider<'a> {
    /// Step 2a: the boosts of the groups walked (`names`), for their queued entries and
    /// their new signals, and the boosts in flight settled. Returns the groups whose desired
    /// capacity may move in this plan: no retire there.
    pub(super) fn boost_groups(&mut self, names: &[&'a str], fresh: &Fresh<'a>) -> Vec<&'a str> {
        let mut wants = Vec::new();
        for &name in names {
            let Some(group) = self
                .groups
                .get(name)
                .copied()
                .filter(|g| untouchable(g, self.cfg).is_none())
            else {
                continue;
            };
            for &(node, e) in self
                .by_group
                .get(name)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                if self.live(node, e)
                    && !self.expired(e.signal_at)
                    && matches!(e.boost, Boost::Queued { .. })
                {
                    wants.push(self.want(group, node, e.signal_at, &e.instance_id, None));
                }
            }
            for &(node, at, id) in fresh.get(name).map(Vec::as_slice).unwrap_or_default() {
                wants.push(self.want(group, node, at, id, Some(id)));
            }
        }
        self.all_boosts(wants)
    }

    /// A want for `node` of `group`, weighing its instance.
    fn want(
        &self,
        group: &'a Group,
        node: &'a str,
        signal_at: Timestamp,
        instance_id: &str,
        fresh: Option<&'a str>,
    ) -> Want<'a> {
        let weight = self
            .instances
            .get(instance_id)
            .map_or(1, |(g, i)| g.weight_of(i));
        Want {
            node,
            signal_at,
            fresh,
            own: group,
            weight,
        }
    }

    /// Why `group` cannot launch now, if it cannot.
    pub(super) fn launch_problem(&self, group: &Group) -> Option<Reason> {
        if group.suspended("Launch") {
            return Some(Reason::LaunchSuspended);
        }
        let backoff = self.cfg.launch_failure_backoff;
        group
            .launch_failures
            .iter()
            .any(|f| self.now.since(f.at) < backoff)
            .then_some(Reason::LaunchFailing)
    }

    /// The fallback groups of `group`, in order: configured first, then its tag's.
    fn fallbacks(&self, group: &'a Group) -> Vec<&'a Group> {
        let mut names: Vec<&str> = self
            .cfg
            .fallback_groups
            .get(&group.name)
            .map(|v| v.iter().map(String::as_str).collect())
            .unwrap_or_default();
        if let Some(tag) = group.tags.get(crate::config::FALLBACK_TAG) {
            names.extend(tag.split(',').map(str::trim).filter(|s| !s.is_empty()));
        }
        let mut out: Vec<&'a Group> = Vec::new();
        for n in names {
            if let Some(g) = self.groups.get(n).copied() {
                if g.name != group.name && !out.iter().any(|o| o.name == g.name) {
                    out.push(g);
                }
            }
        }
        out
    }

    /// Why a fallback group cannot take a boost now, if it cannot: not ours to touch, not
    /// known to cluster-autoscaler or not healthy there, replacing instances itself, or
    /// unable to launch.
    fn fallback_problem(&self, g: &Group) -> Option<Reason> {
        if let Some(why) = untouchable(g, self.cfg) {
            return Some(why);
        }
        let ca = match self.ca {
            Err(why) => return Some(why),
            Ok(st) => st.group(&g.name),
        };
        match ca {
            None => Some(Reason::GroupNotInCaStatus),
            Some(c) if !c.is_healthy() => Some(Reason::GroupUnhealthy),
            Some(c) if c.is_backing_off() => Some(Reason::GroupBackingOff),
            Some(_) if g.capacity_rebalance => Some(Reason::CapacityRebalance),
            Some(_) => self.launch_problem(g),
        }
    }

    /// Where a signal of `own` is boosted: its own group, a fallback, or nowhere for now.
    /// Each fallback passed over is warned about with its own reason (a fallback that
    /// cluster-autoscaler does not manage is not a launch problem of the signal's group).
    fn route(&mut self, own: &'a Group, node: &str) -> Result<&'a Group, Reason> {
        let Some(problem) = self.launch_problem(own) else {
            return Ok(own);
        };
        for g in self.fallbacks(own) {
            match self.fallback_problem(g) {
                None => return Ok(g),
                Some(why) => self.warn(&g.name, node, why),
            }
        }
        Err(problem)
    }

    /// Records a signal of a Capacity Rebalancing group: no boost, ever.
    fn record_without_boost(&mut self, w: Want<'a>, id: &str, reason: Reason) {
        self.record_boost(&w, id, Boost::Abandoned { reason }, None);
        self.hold(w.node, reason);
    }

    /// Records a fresh signal in the ledger with the boost decided for it.
    pub(super) fn record_boost(
        &mut self,
        w: &Want<'a>,
        id: &str,
        boost: Boost,
        fallback: Option<String>,
    ) {
        let earlier = self.s.ledger.entries.get(w.node);
        let reason = if earlier.is_some_and(|e| self.node_of(w.node, e).is_some()) {
            Reason::SignalAfterRelease
        } else {
            Reason::NewSignal
        };
        self.push(Action::RecordSignal {
            node: w.node.to_string(),
            entry: Entry {
                instance_id: id.to_string(),
                group: w.own.name.clone(),
                signal_at: w.signal_at,
                boost,
                drain: DrainState::NotStarted,
                released_at: None,
                fallback,
                retiring: None,
                cordoned_before: self.cordoned_before(w.node),
                pool: self.pool_of(id),
                outcome: None,
            },
            reason,
        });
    }

    /// Sends each signal that wants a boost to the group to boost, settles and grants the
    /// boosts of every group involved. Returns the groups whose desired capacity may move.
    fn all_boosts(&mut self, wants: Vec<Want<'a>>) -> Vec<&'a str> {
        let mut boosting = Vec::new();
        let mut by_target: BTreeMap<&'a str, (&'a Group, Vec<Want<'a>>)> = BTreeMap::new();
        for w in wants {
            if w.own.capacity_rebalance {
                self.warn(&w.own.name, w.node, Reason::CapacityRebalance);
                match w.fresh {
                    Some(id) => self.record_without_boost(w, id, Reason::CapacityRebalance),
                    None => self.hold(w.node, Reason::CapacityRebalance),
                }
                continue;
            }
            if self.by_placeholders(w.own) {
                self.place_for(w);
                continue;
            }
            match self.route(w.own, w.node) {
                Ok(t) => {
                    if t.name != w.own.name {
                        self.warn(&w.own.name, w.node, Reason::FallbackBoost);
                    }
                    by_target
                        .entry(t.name.as_str())
                        .or_insert((t, Vec::new()))
                        .1
                        .push(w);
                }
                Err(why) => {
                    self.warn(&w.own.name, w.node, why);
                    if self.grant(w.own, &[], vec![w], Some(why)) {
                        boosting.push(w.own.name.as_str());
                    }
                }
            }
        }
        // Groups with a boost to settle but no new want take part too.
        let settling: Vec<&'a Group> = self
            .boosted_in
            .keys()
            .filter_map(|g| self.groups.get(g).copied())
            .filter(|g| !by_target.contains_key(g.name.as_str()))
            .filter(|g| untouchable(g, self.cfg).is_none())
            .collect();
        for g in settling {
            by_target.insert(g.name.as_str(), (g, Vec::new()));
        }
        for (name, (group, wants)) in by_target {
            let here = self.boosted_in.get(name).cloned().unwrap_or_default();
            if self.grant(group, &here, wants, None) {
                boosting.push(name);
            }
        }
        boosting
    }

    /// Settles the boost being applied in `group` (`here`: the entries boosted in it), then
    /// grants `wants` what the group allows, oldest first. `closed`: the group may not be
    /// boosted at all (the wants are queued with that reason). Returns whether desired
    /// capacity may move in this plan: a boost in flight, or one granted.
    fn grant(
        &mut self,
        group: &'a Group,
        here: &[(&'a str, &'a Entry)],
        mut wants: Vec<Want<'a>>,
        closed: Option<Reason>,
    ) -> bool {
        let ca_group = self.ca.ok().and_then(|st| st.group(&group.name));
        // The tighter of the cloud's and cluster-autoscaler's max size.
        let max = match ca_group {
            Some(g) if g.max_size > 0 => group.max_size.min(g.max_size),
            _ => group.max_size,
        };
        let in_flight = closed.is_none() && self.settle(group, here, max);
        if wants.is_empty() {
            return in_flight;
        }
        wants.sort_by_key(|w| (w.signal_at, w.node));
        let gate = self.gate(closed, ca_group, in_flight);
        let grant = self.size_grant(group, here, &wants, max, gate);
        self.record_grant(group, &wants, grant);
        // Fresh signals still count as drain candidates once recorded: next pass.
        in_flight || (grant.granted > 0 && grant.to > grant.from)
    }

    /// Whether `group` may be boosted this pass; `Err` says why its wants wait.
    fn gate(
        &self,
        closed: Option<Reason>,
        ca_group: Option<&CaNodeGroup>,
        in_flight: bool,
    ) -> Result<(), Reason> {
        match (closed, self.ca, ca_group) {
            (Some(why), _, _) => Err(why),
            (None, Err(why), _) => Err(why),
            (None, Ok(_), None) => Err(Reason::GroupNotInCaStatus),
            (None, Ok(_), Some(g)) if !g.is_healthy() => Err(Reason::GroupUnhealthy),
            (None, Ok(_), Some(g)) if g.is_backing_off() => Err(Reason::GroupBackingOff),
            _ if in_flight => Err(Reason::BoostInFlight),
            _ => Ok(()),
        }
    }

    /// How many of `wants` (sorted) the group's size and the boost cap let through, and the
    /// raise of desired capacity they make.
    fn size_grant(
        &self,
        group: &Group,
        here: &[(&'a str, &'a Entry)],
        wants: &[Want<'a>],
        max: u32,
        gate: Result<(), Reason>,
    ) -> Grant {
        let per = self.cfg.nodes_per_signal();
        let (granted, wait_reason) = match gate {
            Err(why) => (0, why),
            Ok(()) => {
                let outstanding = here
                    .iter()
                    .filter(|(n, e)| self.live(n, e) && matches!(e.boost, Boost::Applied { .. }))
                    .filter(|(_, e)| !self.instance_leaving_or_absent(e))
                    .count() as u32;
                let mut cap_room = if self.cfg.boost_cap_per_group == 0 {
                    u32::MAX
                } else {
                    self.cfg
                        .boost_cap_per_group
                        .saturating_sub(outstanding.saturating_mul(per))
                };
                let mut size_room = max.saturating_sub(group.desired);
                let mut n = 0;
                let mut why = Reason::AtMaxSize;
                for w in wants {
                    let u = units(group, w, per);
                    if u > size_room {
                        why = Reason::AtMaxSize;
                        break;
                    }
                    if per > cap_room {
                        why = Reason::BoostCapReached;
                        break;
                    }
                    size_room -= u;
                    cap_room -= per;
                    n += 1;
                }
                (n, why)
            }
        };

        let from = group.desired;
        let mut to = from.saturating_add(
            wants[..granted]
                .iter()
                .map(|w| units(group, w, per))
                .sum::<u32>(),
        );
        // With instance weights, capacity is often above desired: a raise the overage
        // absorbs launches nothing. Ask for just above the current capacity instead.
        if granted > 0 && group.weighted() && group.capacity() >= to {
            to = (group.capacity() + 1).min(max);
        }
        Grant {
            granted,
            from,
            to,
            wait_reason,
        }
    }

    /// Records each want's boost (`Applying` if granted, else queued), begins the granted
    /// ones already queued (`BeginBoost`) and sends the raise (`SetDesired`).
    fn record_grant(&mut self, group: &Group, wants: &[Want<'a>], grant: Grant) {
        let Grant {
            granted,
            from,
            to,
            wait_reason,
        } = grant;
        let mut begun = Vec::new();
        let mut boosted = Vec::new();
        for (i, w) in wants.iter().enumerate() {
            let boost = if i < granted && to > from {
                Boost::Applying {
                    from,
                    to,
                    at: self.now,
                }
            } else {
                Boost::Queued {
                    reason: wait_reason,
                }
            };
            let fallback = (group.name != w.own.name).then(|| group.name.clone());
            if matches!(boost, Boost::Applying { .. }) {
                boosted.push(w.node.to_string());
            }
            match w.fresh {
                Some(id) => {
                    let queued = matches!(boost, Boost::Queued { .. });
                    self.record_boost(w, id, boost, fallback.filter(|_| !queued));
                    if queued {
                        self.hold(w.node, wait_reason);
                    }
                }
                None if matches!(boost, Boost::Applying { .. }) => begun.push(w.node.to_string()),
                None => self.hold(w.node, wait_reason),
            }
        }
        if !begun.is_empty() {
            self.push(Action::BeginBoost {
                group: group.name.clone(),
                nodes: begun,
                from,
                to,
                at: self.now,
                reason: Reason::BoostAllowed,
            });
        }
        if !boosted.is_empty() {
            // In the same pass as the record: the executor stores the ledger (write-ahead)
            // before the call, so a crash between them leaves an `Applying` entry that the
            // next pass settles, never a second boost. A pass saved is a pass of latency.
            self.push(Action::SetDesired {
                group: group.name.clone(),
                from,
                to,
                nodes: boosted,
                reason: Reason::BoostRecorded,
            });
        }
    }
}

/// Units a want takes in `group`: its instance's weight at home; in a fallback, the
/// fallback's smallest instance (any of its instances is a replacement).
fn units(group: &Group, w: &Want<'_>, per: u32) -> u32 {
    let unit = if w.own.name == group.name {
        w.weight
    } else {
        group.weights.values().copied().min().unwrap_or(1).max(1)
    };
    unit.saturating_mul(per)
}
