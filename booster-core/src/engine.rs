//! `decide`: snapshot in, plan out.
//!
//! One pass, in this order, so that the plan reads like the life of a signal:
//!
//! 1. new signals -> `RecordSignal` (with the boost already `Applying` when allowed);
//! 2. per group: settle an `Applying` boost (`SetDesired` while desired == from, else
//!    `ConfirmBoost`), start queued boosts (`BeginBoost`), and walk each entry (cordon,
//!    expiry, drain progress, retire, forget);
//! 3. drain starts, oldest signal first, within `max_concurrent_drains` and
//!    `time_between_drains`;
//! 4. replacements: protect new ones, unprotect those whose signal is handled.
//!
//! The engine never lowers desired capacity: `SetDesired` always has `to > from` with
//! `from` the observed desired capacity. Capacity goes back down only through a `Retire`
//! with `decrement`, which is set exactly when that signal's boost was applied.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;

use crate::ca_status::CaStatus;
use crate::config::Config;
use crate::ledger::{Boost, DrainState, Entry};
use crate::plan::{Action, Plan, Reason};
use crate::snapshot::{CaObservation, Group, Instance, Node, Snapshot};
use crate::time::Timestamp;

/// Computes the plan for `snapshot` under `config`. Pure and deterministic.
pub fn decide(snapshot: &Snapshot, config: &Config) -> Plan {
    let mut d = Decider::new(snapshot, config);
    d.record_new_signals();
    d.walk_groups();
    d.start_drains();
    d.replacements();
    d.plan.dry_run = config.dry_run;
    d.plan
}

/// Whether the cluster-autoscaler status allows boosts at `now`; `Err` says why not.
pub fn ca_gate<'a>(
    obs: &'a CaObservation,
    now: Timestamp,
    config: &Config,
) -> Result<&'a CaStatus, Reason> {
    match obs {
        CaObservation::Missing => Err(Reason::CaStatusMissing),
        CaObservation::Invalid { .. } => Err(Reason::CaStatusInvalid),
        CaObservation::Parsed { status, updated_at } => {
            if now.since(*updated_at) > config.ca_status_max_age {
                Err(Reason::CaStatusStale)
            } else if status.is_initializing() {
                Err(Reason::CaInitializing)
            } else {
                Ok(status)
            }
        }
    }
}

/// Whether configuration or tags keep the booster's hands off `group`.
pub fn untouchable(group: &Group, config: &Config) -> Option<Reason> {
    if config.ignored_groups.contains(&group.name) {
        Some(Reason::GroupIgnored)
    } else if group
        .tags
        .get(&config.opt_out_tag)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("false"))
    {
        Some(Reason::GroupOptedOut)
    } else {
        None
    }
}

struct DrainCandidate<'a> {
    node: &'a str,
    signal_at: Timestamp,
    reason: Reason,
}

struct Decider<'a> {
    s: &'a Snapshot,
    cfg: &'a Config,
    now: Timestamp,
    plan: Plan,
    groups: HashMap<&'a str, &'a Group>,
    /// instance id -> (group, instance)
    instances: HashMap<&'a str, (&'a Group, &'a Instance)>,
    nodes: HashMap<&'a str, &'a Node>,
    /// signalled node -> replacement nodes protected for it
    protected: HashMap<&'a str, Vec<&'a Node>>,
    /// group -> entries (active or released), sorted by (signal time, name)
    by_group: BTreeMap<&'a str, Vec<(&'a str, &'a Entry)>>,
    /// group -> new signals this pass: (node, signal time, instance id)
    fresh: BTreeMap<&'a str, Vec<(&'a str, Timestamp, &'a str)>>,
    /// groups whose desired capacity may move in this plan: no retire there
    boosting: Vec<&'a str>,
    candidates: Vec<DrainCandidate<'a>>,
    /// entries whose Draining is live (node present, instance not leaving)
    draining: u32,
    /// whether cluster-autoscaler's status allows boosts (same for every group)
    ca: Result<&'a CaStatus, Reason>,
}

impl<'a> Decider<'a> {
    fn new(s: &'a Snapshot, cfg: &'a Config) -> Self {
        let mut groups = HashMap::with_capacity_and_hasher(s.groups.len(), Default::default());
        let mut instances = HashMap::with_capacity_and_hasher(
            s.groups.iter().map(|g| g.instances.len()).sum(),
            Default::default(),
        );
        for g in &s.groups {
            groups.insert(g.name.as_str(), g);
            for i in &g.instances {
                instances.insert(i.id.as_str(), (g, i));
            }
        }
        let mut nodes = HashMap::with_capacity_and_hasher(s.nodes.len(), Default::default());
        let mut protected: HashMap<&str, Vec<&Node>> = HashMap::default();
        for n in &s.nodes {
            nodes.insert(n.name.as_str(), n);
            // Only protections still on: a spent replacement (marker without the
            // scale-down annotation) stands in for nobody.
            if let Some(f) = n.protected_for.as_ref().filter(|_| n.scale_down_disabled) {
                protected.entry(f.as_str()).or_default().push(n);
            }
        }
        let mut by_group: BTreeMap<&str, Vec<(&str, &Entry)>> = BTreeMap::new();
        for (name, e) in &s.ledger.entries {
            by_group
                .entry(e.group.as_str())
                .or_default()
                .push((name.as_str(), e));
        }
        for v in by_group.values_mut() {
            v.sort_by_key(|(n, e)| (e.signal_at, *n));
        }
        Decider {
            s,
            cfg,
            now: s.now,
            plan: Plan::default(),
            groups,
            instances,
            nodes,
            protected,
            by_group,
            fresh: BTreeMap::new(),
            boosting: Vec::new(),
            candidates: Vec::new(),
            draining: 0,
            ca: ca_gate(&s.ca_status, s.now, cfg),
        }
    }

    fn push(&mut self, a: Action) {
        self.plan.actions.push(a);
    }

    fn hold(&mut self, node: &str, reason: Reason) {
        self.push(Action::Hold {
            node: node.to_string(),
            reason,
        });
    }

    /// Asks to be called again at `t` if that is in the future.
    fn wake_at(&mut self, t: Timestamp) {
        if t > self.now {
            self.plan.next_wakeup = Some(self.plan.next_wakeup.map_or(t, |w| w.min(t)));
        }
    }

    fn expired(&self, signal_at: Timestamp) -> bool {
        self.now.since(signal_at) >= self.cfg.signal_expiry
    }

    /// Step 1: signals for nodes without a live entry.
    fn record_new_signals(&mut self) {
        // Fold the sources per node: earliest for the entry, latest to spot a new signal.
        let mut per_node: BTreeMap<&str, (Timestamp, Timestamp)> = BTreeMap::new();
        for sig in &self.s.signals {
            let slot = per_node
                .entry(sig.node.as_str())
                .or_insert((sig.at, sig.at));
            slot.0 = slot.0.min(sig.at);
            slot.1 = slot.1.max(sig.at);
        }
        for (node_name, (earliest, latest)) in per_node {
            let reason = match self.s.ledger.entries.get(node_name) {
                None => Reason::NewSignal,
                Some(e) => match e.released_at {
                    // A released signal is always older than its release (expiry > 0), so a signal
                    // at the release instant is a new one.
                    Some(rel) if latest >= rel => Reason::SignalAfterRelease,
                    _ => continue,
                },
            };
            let signal_at = if reason == Reason::SignalAfterRelease {
                latest
            } else {
                earliest
            };
            // A signal for a node we cannot see is an Event that outlived its node.
            let Some(node) = self.nodes.get(node_name).copied() else {
                continue;
            };
            let Some((group, instance_id)) = node
                .instance_id
                .as_deref()
                .and_then(|id| self.instances.get(id).map(|(g, _)| (*g, id)))
            else {
                self.hold(node_name, Reason::UnknownGroup);
                continue;
            };
            if let Some(why) = untouchable(group, self.cfg) {
                self.hold(node_name, why);
                continue;
            }
            if self.expired(signal_at) {
                let entry = Entry {
                    instance_id: instance_id.to_string(),
                    group: group.name.clone(),
                    signal_at,
                    boost: Boost::Abandoned {
                        reason: Reason::SignalExpired,
                    },
                    drain: DrainState::NotStarted,
                    released_at: Some(self.now),
                };
                self.push(Action::RecordSignal {
                    node: node_name.to_string(),
                    entry,
                    reason: Reason::StaleSignal,
                });
                if node.unschedulable || node.rebalance_taint {
                    self.push(Action::Release {
                        node: node_name.to_string(),
                        at: self.now,
                        reason: Reason::SignalExpired,
                    });
                }
                continue;
            }
            self.fresh.entry(group.name.as_str()).or_default().push((
                node_name,
                signal_at,
                instance_id,
            ));
        }
    }

    /// Step 2: per group, boosts and the life of each entry.
    fn walk_groups(&mut self) {
        let mut names: Vec<&'a str> = self.by_group.keys().copied().collect();
        names.extend(self.fresh.keys().copied());
        names.sort_unstable();
        names.dedup();
        for name in names {
            let entries = self.by_group.get(name).cloned().unwrap_or_default();
            let fresh = self.fresh.remove(name).unwrap_or_default();
            match self.groups.get(name).copied() {
                Some(group) if untouchable(group, self.cfg).is_none() => {
                    self.boosts(group, &entries, &fresh);
                    for (node, entry) in entries {
                        self.walk_entry(group, node, entry);
                    }
                }
                // A group that disappeared, or was ignored after its signals were recorded:
                // forget the entries of nodes that are gone, touch nothing else.
                _ => {
                    for (node, _) in entries {
                        if !self.nodes.contains_key(node) {
                            self.push(Action::Forget {
                                node: node.to_string(),
                                reason: Reason::NodeGone,
                            });
                        }
                    }
                }
            }
        }
    }

    /// The group exists and neither configuration nor tags keep us off it.
    fn touchable_group(&self, name: &str) -> bool {
        self.groups
            .get(name)
            .is_some_and(|g| untouchable(g, self.cfg).is_none())
    }

    /// The node's instance is in a group we may touch.
    fn touchable_node(&self, n: &Node) -> bool {
        n.instance_id
            .as_deref()
            .and_then(|id| self.instances.get(id))
            .is_some_and(|(g, _)| untouchable(g, self.cfg).is_none())
    }

    fn live(&self, node: &str, e: &Entry) -> bool {
        e.released_at.is_none() && !self.gone(node, e)
    }

    /// The node is gone and its instance is gone or leaving.
    fn gone(&self, node: &str, e: &Entry) -> bool {
        !self.nodes.contains_key(node) && self.instance_leaving_or_absent(e)
    }

    fn instance_leaving_or_absent(&self, e: &Entry) -> bool {
        self.instances
            .get(e.instance_id.as_str())
            .is_none_or(|(_, i)| i.lifecycle.is_leaving())
    }

    fn boosts(
        &mut self,
        group: &'a Group,
        entries: &[(&'a str, &'a Entry)],
        fresh: &[(&'a str, Timestamp, &'a str)],
    ) {
        let ca = self.ca;
        let ca_group = ca.ok().and_then(|st| st.group(&group.name));
        // The tighter of the cloud's and cluster-autoscaler's max size.
        let max = match ca_group {
            Some(g) if g.max_size > 0 => group.max_size.min(g.max_size),
            _ => group.max_size,
        };

        // Settle a boost being applied. All `Applying` entries of a group share from/to.
        let applying: Vec<(&str, u32, u32)> = entries
            .iter()
            .filter(|(n, e)| e.released_at.is_none() && !self.gone(n, e))
            .filter_map(|(n, e)| match e.boost {
                Boost::Applying { from, to, .. } => Some((*n, from, to)),
                _ => None,
            })
            .collect();
        let mut in_flight = false;
        if let Some(&(_, from, to)) = applying.first() {
            let nodes: Vec<String> = applying.iter().map(|(n, ..)| n.to_string()).collect();
            let desired = group.desired;
            let target = to.min(max);
            if desired >= target {
                let applied = target > from || desired >= to;
                let reason = if applied {
                    Reason::DesiredReached
                } else {
                    Reason::MaxSizeBelowTarget
                };
                self.push(Action::ConfirmBoost {
                    group: group.name.clone(),
                    nodes,
                    applied,
                    reason,
                });
            } else if desired == from {
                self.push(Action::SetDesired {
                    group: group.name.clone(),
                    from,
                    to: target,
                    nodes,
                    reason: Reason::BoostRecorded,
                });
            } else {
                // Somebody else moved desired capacity since the record. Repeating the call
                // could boost twice for one signal; taking it as done cannot.
                self.push(Action::ConfirmBoost {
                    group: group.name.clone(),
                    nodes,
                    applied: true,
                    reason: Reason::DesiredChangedByOthers,
                });
            }
            in_flight = true;
            self.boosting.push(group.name.as_str());
        }

        // Who wants a boost: queued entries and fresh signals, oldest first.
        let mut wanting: Vec<(&str, Timestamp, Option<&str>)> = entries
            .iter()
            .filter(|(n, e)| self.live(n, e) && !self.expired(e.signal_at))
            .filter(|(_, e)| matches!(e.boost, Boost::Queued { .. }))
            .map(|(n, e)| (*n, e.signal_at, None))
            .collect();
        wanting.extend(fresh.iter().map(|(n, at, id)| (*n, *at, Some(*id))));
        if wanting.is_empty() {
            return;
        }
        wanting.sort_by_key(|(n, at, _)| (*at, *n));

        let per = self.cfg.nodes_per_signal();
        let gate = match (ca, ca_group) {
            (Err(why), _) => Err(why),
            (Ok(_), None) => Err(Reason::GroupNotInCaStatus),
            (Ok(_), Some(g)) if !g.is_healthy() => Err(Reason::GroupUnhealthy),
            (Ok(_), Some(g)) if g.is_backing_off() => Err(Reason::GroupBackingOff),
            _ if in_flight => Err(Reason::BoostInFlight),
            _ => Ok(()),
        };
        let (granted, wait_reason) = match gate {
            Err(why) => (0, why),
            Ok(()) => {
                let outstanding: u32 = entries
                    .iter()
                    .filter(|(n, e)| self.live(n, e) && matches!(e.boost, Boost::Applied { .. }))
                    .filter(|(_, e)| !self.instance_leaving_or_absent(e))
                    .count() as u32;
                let cap_room = if self.cfg.boost_cap_per_group == 0 {
                    u32::MAX
                } else {
                    self.cfg
                        .boost_cap_per_group
                        .saturating_sub(outstanding.saturating_mul(per))
                };
                let size_room = max.saturating_sub(group.desired);
                let by_cap = cap_room / per;
                let by_size = size_room / per;
                let n = (wanting.len() as u32).min(by_cap).min(by_size);
                let why = if by_size <= by_cap {
                    Reason::AtMaxSize
                } else {
                    Reason::BoostCapReached
                };
                (n as usize, why)
            }
        };

        let from = group.desired;
        let to = from.saturating_add((granted as u32).saturating_mul(per));
        let mut begun = Vec::new();
        for (i, (node, signal_at, fresh_id)) in wanting.iter().enumerate() {
            let boost = if i < granted {
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
            match fresh_id {
                Some(id) => {
                    let reason = if self.s.ledger.entries.contains_key(*node) {
                        Reason::SignalAfterRelease
                    } else {
                        Reason::NewSignal
                    };
                    self.push(Action::RecordSignal {
                        node: node.to_string(),
                        entry: Entry {
                            instance_id: id.to_string(),
                            group: group.name.clone(),
                            signal_at: *signal_at,
                            boost,
                            drain: DrainState::NotStarted,
                            released_at: None,
                        },
                        reason,
                    });
                    if i >= granted {
                        self.hold(node, wait_reason);
                    }
                }
                None if i < granted => begun.push(node.to_string()),
                None => self.hold(node, wait_reason),
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
        if granted > 0 && !in_flight {
            self.boosting.push(group.name.as_str());
        }
        // Fresh signals still count as drain candidates once recorded: next pass.
    }

    fn walk_entry(&mut self, group: &'a Group, name: &'a str, e: &'a Entry) {
        let node = self.nodes.get(name).copied();
        let leaving = self.instance_leaving_or_absent(e);
        let Some(node) = node else {
            if leaving || e.released_at.is_some() || self.expired(e.signal_at) {
                self.push(Action::Forget {
                    node: name.to_string(),
                    reason: Reason::NodeGone,
                });
            } else {
                self.hold(name, Reason::NodeMissing);
                self.wake_at(e.signal_at.plus(self.cfg.signal_expiry));
            }
            return;
        };
        if let Some(released_at) = e.released_at {
            // NTH's taint is back on a node we gave back: NTH cordoned it again for the same
            // recommendation, so it is given back again. A cordon without the taint is
            // somebody else's and stays.
            if node.rebalance_taint && !leaving {
                self.push(Action::Release {
                    node: name.to_string(),
                    at: released_at,
                    reason: Reason::RetaintedAfterRelease,
                });
            }
            return;
        }
        let draining = matches!(e.drain, DrainState::Draining { .. });
        let drained = draining && node.pods_to_evict == 0;
        if draining && !leaving && !drained {
            self.draining += 1;
        }

        if self.expired(e.signal_at) {
            if drained && !leaving {
                self.retire(group, name, e, Reason::SignalExpired);
            } else if !leaving {
                self.push(Action::Release {
                    node: name.to_string(),
                    at: self.now,
                    reason: Reason::SignalExpired,
                });
            }
            return;
        }
        self.wake_at(e.signal_at.plus(self.cfg.signal_expiry));
        if leaving {
            // Retired (or interrupted): wait for the node to go, then forget.
            return;
        }
        if !node.unschedulable {
            self.push(Action::Cordon {
                node: name.to_string(),
                reason: Reason::SignalledNodeSchedulable,
            });
        }

        match e.drain {
            DrainState::NotStarted if self.cfg.disable_drain => {
                self.hold(name, Reason::DrainDisabled)
            }
            DrainState::NotStarted => self.drain_readiness(name, e),
            DrainState::Draining { .. } if drained => {
                self.retire(group, name, e, Reason::DrainComplete)
            }
            DrainState::Draining { since, attempt } => {
                let deadline = since.plus(self.cfg.drain_timeout);
                if self.now >= deadline {
                    self.push(Action::StartDrain {
                        node: name.to_string(),
                        attempt: attempt.saturating_add(1),
                        at: self.now,
                        reason: Reason::DrainTimedOut,
                    });
                } else {
                    self.hold(name, Reason::Draining);
                    self.wake_at(deadline);
                }
            }
        }
    }

    /// Whether a signalled node may be drained now, and if not, until when it waits.
    fn drain_readiness(&mut self, name: &'a str, e: &'a Entry) {
        let wait = self.cfg.replacement_wait;
        let ready_replacement = self
            .protected
            .get(name)
            .is_some_and(|reps| reps.iter().any(|r| r.ready && !r.unschedulable));
        let (reason, deadline) = match &e.boost {
            Boost::Applying { .. } => (Reason::BoostInFlight, None),
            Boost::Applied { .. } if ready_replacement => (Reason::ReplacementReady, None),
            Boost::Applied { at, .. } => (Reason::ReplacementWaitOver, Some(at.plus(wait))),
            // No new capacity: a drain would only make pods Pending sooner. The node waits
            // for a boost slot, its interruption (NTH drains it then) or its expiry.
            Boost::Queued { reason } => (*reason, None),
            Boost::Abandoned { .. } => (Reason::NoReplacementComing, None),
        };
        match (reason, deadline) {
            (Reason::BoostInFlight, _) => self.hold(name, Reason::BoostInFlight),
            // `boosts` already said why a queued signal waits.
            (_, None) if matches!(e.boost, Boost::Queued { .. }) => {}
            (_, None) if !matches!(e.boost, Boost::Applied { .. }) => self.hold(name, reason),
            (_, Some(d)) if self.now < d => {
                let why = if matches!(e.boost, Boost::Applied { .. }) {
                    Reason::WaitingForReplacement
                } else {
                    reason
                };
                self.hold(name, why);
                self.wake_at(d);
            }
            _ => self.candidates.push(DrainCandidate {
                node: name,
                signal_at: e.signal_at,
                reason,
            }),
        }
    }

    fn retire(&mut self, group: &'a Group, name: &str, e: &Entry, reason: Reason) {
        if self.boosting.contains(&group.name.as_str()) {
            self.hold(name, Reason::RetireWaitsForBoost);
            return;
        }
        // Only a boost we made is given back; an assumed one was somebody else's capacity.
        let boosted = matches!(e.boost, Boost::Applied { assumed: false, .. });
        self.push(Action::Retire {
            node: name.to_string(),
            group: group.name.clone(),
            instance_id: e.instance_id.clone(),
            // Never below min size: the API would refuse, and CA owns that floor.
            decrement: boosted && group.desired > group.min_size,
            reason,
        });
    }

    /// Step 3: drain starts within the concurrency limit and the spacing.
    fn start_drains(&mut self) {
        let mut cands = std::mem::take(&mut self.candidates);
        if cands.is_empty() {
            return;
        }
        cands.sort_by_key(|c| (c.signal_at, c.node));
        let mut slots = self.cfg.max_concurrent_drains.saturating_sub(self.draining);
        let spacing = self.cfg.time_between_drains;
        let mut next_allowed = self
            .s
            .ledger
            .last_drain_started_at
            .map_or(Timestamp::EPOCH, |t| t.plus(spacing));
        for c in cands {
            if slots == 0 {
                self.hold(c.node, Reason::DrainSlotsFull);
            } else if self.now < next_allowed {
                self.hold(c.node, Reason::DrainSpacing);
                self.wake_at(next_allowed);
            } else {
                self.push(Action::StartDrain {
                    node: c.node.to_string(),
                    attempt: 1,
                    at: self.now,
                    reason: c.reason,
                });
                slots -= 1;
                next_allowed = self.now.plus(spacing);
                if next_allowed > self.now {
                    self.wake_at(next_allowed);
                }
            }
        }
    }

    /// Step 4: protect replacements from scale-down while their signal waits; unprotect after.
    fn replacements(&mut self) {
        // Unprotect: protections whose signal is handled or unknown.
        for n in &self.s.nodes {
            let Some(for_node) = n.protected_for.as_deref() else {
                continue;
            };
            if !n.scale_down_disabled {
                continue; // already unprotected: the marker stays
            }
            if !self.touchable_node(n) {
                continue;
            }
            let reason = match self.s.ledger.entries.get(for_node) {
                None => Some(Reason::ProtectionOrphaned),
                Some(e) if e.released_at.is_some() || self.gone(for_node, e) => {
                    Some(Reason::SignalHandled)
                }
                Some(e) if self.instance_leaving_or_absent(e) => Some(Reason::SignalHandled),
                Some(e) => {
                    let drained = matches!(e.drain, DrainState::Draining { .. })
                        && self
                            .nodes
                            .get(for_node)
                            .is_some_and(|sn| sn.pods_to_evict == 0);
                    drained.then_some(Reason::SignalHandled)
                }
            };
            if let Some(reason) = reason {
                self.push(Action::Unprotect {
                    node: n.name.clone(),
                    reason,
                });
            }
        }

        // Protect: pair each boosted signal still waiting for its drain with one node of its
        // group created after the boost, oldest first on both sides.
        // Entries are already grouped (and sorted) in `by_group`; skip groups we may not touch.
        let mut waiting: BTreeMap<&str, Vec<(Timestamp, &str)>> = BTreeMap::new();
        for (&group, entries) in &self.by_group {
            if !self.touchable_group(group) {
                continue;
            }
            for &(name, e) in entries {
                let Some(at) = e.boost.boosted_at() else {
                    continue;
                };
                if !self.live(name, e)
                    || self.expired(e.signal_at)
                    || self.protected.contains_key(name)
                {
                    continue;
                }
                let pods_left = self.nodes.get(name).is_some_and(|n| n.pods_to_evict > 0);
                if matches!(e.drain, DrainState::Draining { .. }) && !pods_left {
                    continue;
                }
                waiting.entry(group).or_default().push((at, name));
            }
        }
        if waiting.is_empty() {
            return;
        }
        let window = self.cfg.new_node_window;
        let mut fresh_nodes: BTreeMap<&str, Vec<(Timestamp, &str)>> = BTreeMap::new();
        for n in &self.s.nodes {
            let eligible = n.protected_for.is_none()
                && !n.scale_down_disabled
                && !n.unschedulable
                && self.now.since(n.created_at) <= window;
            if !eligible {
                continue;
            }
            let Some((g, _)) = n
                .instance_id
                .as_deref()
                .and_then(|id| self.instances.get(id))
            else {
                continue;
            };
            // Cheapest test first: most groups have no signal waiting.
            if waiting.contains_key(g.name.as_str()) && !self.s.ledger.entries.contains_key(&n.name)
            {
                fresh_nodes
                    .entry(g.name.as_str())
                    .or_default()
                    .push((n.created_at, n.name.as_str()));
            }
        }
        for (group, mut sigs) in waiting {
            let Some(mut cands) = fresh_nodes.remove(group) else {
                continue;
            };
            sigs.sort_unstable();
            cands.sort_unstable();
            let mut next = 0;
            for (boost_at, sig) in sigs {
                // Strictly after: no instance boots in the instant its boost is recorded.
                while next < cands.len() && cands[next].0 <= boost_at {
                    next += 1;
                }
                let Some(&(_, rep)) = cands.get(next) else {
                    break;
                };
                next += 1;
                self.push(Action::Protect {
                    node: rep.to_string(),
                    for_node: sig.to_string(),
                    reason: Reason::ReplacementLaunched,
                });
            }
        }
    }
}
