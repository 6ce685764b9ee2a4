//! `decide`: snapshot in, plan out.
//!
//! One pass, in this order, so that the plan reads like the life of a signal:
//!
//! 0. entries the ledger lost, rebuilt from the Nodes' boost marks (`recover.rs`);
//! 1. new signals -> `RecordSignal` (with the boost already `Applying` when allowed)
//!    (`signals.rs`);
//! 2. per group: settle an `Applying` boost left by an earlier pass (`SetDesired` while
//!    desired == from, else `ConfirmBoost`, in `settle.rs`), start queued boosts
//!    (`BeginBoost`), and send the `SetDesired` of what was granted this pass (`boosts.rs`),
//!    and walk each entry: how its signal ended (`outcomes.rs`), cordon, expiry, drain
//!    progress, retire, forget (`entries.rs`); a node ready to drain is drained on its
//!    recommendation or stands by for its interruption by `--drain-on` (`standby.rs`);
//! 3. drain starts, oldest signal first, within `max_concurrent_drains` and
//!    `time_between_drains` (`drains.rs`);
//! 4. replacements: protect new ones, unprotect those whose signal is handled
//!    (`replacements.rs`); the standby taint on those held for a node standing by, off
//!    every other (`steer.rs`);
//! 5. placeholder pods whose signal is handled are deleted (`placeholders.rs`, which also
//!    holds how a placeholder boost is asked for and when its replacement is there);
//! 6. when Auto Scaling did not answer, what needs it waits (`cloud.rs`);
//! 7. writes that failed lately wait for their backoff (`backoff.rs`); a signal whose
//!    boost, placeholders or retire was refused again and again is given back
//!    (`entries.rs`, with the records read through `Decider::refused_out`).
//!
//! This module holds `decide`, the indexes every step reads and the small helpers. What a
//! step finds for a later one (the new signals, the groups boosting, the drain candidates)
//! it returns, and `plan_for` passes it on: the order of the steps is the order of the calls.
//!
//! The engine never lowers desired capacity: `SetDesired` always has `to > from` with
//! `from` the observed desired capacity. Capacity goes back down only through a `Retire`
//! with `decrement`, which is set exactly when that signal's boost was applied.

mod backoff;
mod boosts;
mod cloud;
mod drains;
mod entries;
mod outcomes;
mod placeholders;
mod recover;
mod replacements;
mod settle;
mod signals;
mod standby;
mod steer;

pub use settle::{RAISE_SHOWS_WITHIN, RAISE_UNPROVEN_AFTER};

use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;

use crate::ca_status::CaStatus;
use crate::config::Config;
use crate::failures::{Failure, Write};
use crate::ledger::Entry;
use crate::plan::{Action, GroupWarning, Plan, Reason};
use crate::snapshot::{CaObservation, Group, Instance, Node, Snapshot};
use crate::time::Timestamp;

/// Computes the plan for `snapshot` under `config`. Pure and deterministic.
pub fn decide(snapshot: &Snapshot, config: &Config) -> Plan {
    let mut plan = with_lost_entries(snapshot, config);
    if snapshot.cloud_unavailable.is_some() {
        cloud::hold_what_needs_it(&mut plan);
    }
    backoff::hold_backed_off(&mut plan, snapshot);
    plan
}

fn with_lost_entries(snapshot: &Snapshot, config: &Config) -> Plan {
    let lost = recover::lost_entries(snapshot);
    if lost.is_empty() {
        return plan_for(snapshot, config);
    }
    // Decide as if the ledger had kept them, and store them back first.
    let mut s = snapshot.clone();
    for (node, e) in &lost {
        s.ledger.entries.insert(node.clone(), e.clone());
    }
    let mut plan = plan_for(&s, config);
    let mut actions: Vec<Action> = lost
        .into_iter()
        .map(|(node, entry)| Action::RecordSignal {
            node,
            entry,
            reason: Reason::LedgerRecovered,
        })
        .collect();
    actions.append(&mut plan.actions);
    plan.actions = actions;
    plan
}

/// The steps of one pass, in order. Each hands the next what it found: the new signals, the
/// groups whose desired capacity may move (no retire there), the entries ready to drain.
fn plan_for(snapshot: &Snapshot, config: &Config) -> Plan {
    let mut d = Decider::new(snapshot, config);
    let fresh = d.record_new_signals();
    let names = d.groups_walked(&fresh);
    let boosting = d.boost_groups(&names, &fresh);
    let drains = d.walk_entries(&names, &fresh, &boosting);
    d.start_drains(drains);
    d.replacements();
    d.steer();
    d.protect_hosts();
    d.sweep_placeholders();
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
    } else if group.kind == crate::snapshot::GroupKind::AutoScaling
        && config
            .cluster_tag
            .as_ref()
            .is_some_and(|k| !group.tags.contains_key(k))
    {
        // A NodePool is this cluster's by being in it.
        Some(Reason::GroupNotThisCluster)
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

/// A new signal of this pass: (node, signal time, instance id).
type FreshSignal<'a> = (&'a str, Timestamp, &'a str);

/// The new signals of this pass, by group.
type Fresh<'a> = BTreeMap<&'a str, Vec<FreshSignal<'a>>>;

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
    /// group boosted (own or fallback) -> entries whose boost raises it, same order
    boosted_in: BTreeMap<&'a str, Vec<(&'a str, &'a Entry)>>,
    /// whether cluster-autoscaler's status allows boosts (same for every group)
    ca: Result<&'a CaStatus, Reason>,
    /// failed writes, by write and object
    failures: HashMap<(Write, &'a str), &'a Failure>,
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
        let mut boosted_in: BTreeMap<&str, Vec<(&str, &Entry)>> = BTreeMap::new();
        for v in by_group.values() {
            for &(n, e) in v {
                boosted_in.entry(e.boost_group()).or_default().push((n, e));
            }
        }
        for v in boosted_in.values_mut() {
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
            boosted_in,
            ca: ca_gate(&s.ca_status, s.now, cfg),
            failures: crate::failures::index(&s.failures),
        }
    }

    fn push(&mut self, a: Action) {
        self.plan.actions.push(a);
    }

    /// Warns about `group` once in this plan (the driver warns once per group and reason).
    fn warn(&mut self, group: &str, node: &str, reason: Reason) {
        let w = GroupWarning {
            group: group.to_string(),
            node: node.to_string(),
            reason,
        };
        if !self
            .plan
            .warnings
            .iter()
            .any(|x| x.group == w.group && x.reason == w.reason)
        {
            self.plan.warnings.push(w);
        }
    }

    /// Whether `node` is cordoned by somebody other than NTH and the booster as its signal is
    /// recorded: an operator's or another controller's cordon, which a give-back must keep.
    /// An unknown author counts as NTH's only when NTH's taint is there to say so.
    fn cordoned_before(&self, node: &str) -> bool {
        let Some(n) = self.nodes.get(node) else {
            return false;
        };
        n.unschedulable
            && match n.cordoned_by.as_deref() {
                Some(m) => {
                    m != crate::config::BOOSTER_FIELD_MANAGER
                        && !self.cfg.nth_field_managers.contains(m)
                }
                None => !n.rebalance_taint,
            }
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

    /// The record of `write` on `subject` if it was refused `refusals_before_give_up` times
    /// in a row, the last of them at or after `since` (the signal's step it is about began
    /// then: refusals of an earlier signal's write do not give this one up unsent).
    fn refused_out(&self, write: Write, subject: &str, since: Timestamp) -> Option<&'a Failure> {
        let limit = self.cfg.refusals_before_give_up.max(1);
        self.failures
            .get(&(write, subject))
            .copied()
            .filter(|f| f.refusals >= limit && f.last_at >= since)
    }

    fn expired(&self, signal_at: Timestamp) -> bool {
        self.now.since(signal_at) >= self.cfg.signal_expiry
    }

    /// The group exists and neither configuration nor tags keep us off it.
    fn touchable_group(&self, name: &str) -> bool {
        self.groups
            .get(name)
            .is_some_and(|g| untouchable(g, self.cfg).is_none())
    }

    fn live(&self, node: &str, e: &Entry) -> bool {
        e.released_at.is_none() && !self.gone(node, e)
    }

    /// The node is gone and its instance is gone or leaving.
    fn gone(&self, node: &str, e: &Entry) -> bool {
        self.node_of(node, e).is_none() && self.instance_leaving_or_absent(e)
    }

    /// The entry's node: the Node of that name, if it is still the entry's machine. Names
    /// come back (EKS names nodes after their private IP): a Node of the same name on
    /// another instance is a new node, and the entry's node is gone.
    fn node_of(&self, name: &str, e: &Entry) -> Option<&'a Node> {
        self.nodes.get(name).copied().filter(|n| same_machine(n, e))
    }

    /// The pool (`<instance type>/<zone>`) of an instance, as its group lists it (`?/?`
    /// when it is not listed).
    fn pool_of(&self, instance_id: &str) -> String {
        self.instances
            .get(instance_id)
            .map(|(_, i)| crate::outcomes::pool_key(&i.instance_type, &i.az))
            .unwrap_or_else(|| crate::outcomes::pool_key("", ""))
    }

    fn instance_leaving_or_absent(&self, e: &Entry) -> bool {
        self.instances
            .get(e.instance_id.as_str())
            .is_none_or(|(_, i)| i.lifecycle.is_leaving())
    }
}

/// Whether `e` was recorded for the machine `n` runs on (when the Node names no instance,
/// nothing says otherwise).
pub(super) fn same_machine(n: &Node, e: &Entry) -> bool {
    n.instance_id
        .as_deref()
        .is_none_or(|id| id == e.instance_id)
}
