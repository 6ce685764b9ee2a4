//! Step 2a, first part: the boost a group has in flight (`Applying`, left by an earlier
//! pass) is sent again, waited on or confirmed, on what desired capacity and the scaling
//! activities show.

use super::Decider;
use crate::failures::{FailureClass, Write};
use crate::ledger::{Boost, Entry};
use crate::plan::{Action, Reason};
use crate::snapshot::Group;
use crate::time::{Dur, Timestamp};

/// How long a raise that took effect may take to show in the scaling activities (AWS records
/// one when the launch it causes starts, within seconds).
pub const RAISE_SHOWS_WITHIN: Dur = Dur::from_secs(60);

/// How long a boost may wait to learn whether its raise took effect before it is taken as
/// done (no decrement at its retire): longer than a pass timeout and a restart.
pub const RAISE_UNPROVEN_AFTER: Dur = Dur::from_mins(5);

/// How far before a boost's record a raise in the activities may be (the activities carry
/// AWS's clock, the record ours).
const ACTIVITY_CLOCK_SLACK: Dur = Dur::from_secs(60);

/// What is known of a boost's raise while desired capacity stands at its base.
enum Evidence {
    /// It did not take effect: send it (again).
    NotApplied,
    /// Not known yet: wait until then.
    Wait(Timestamp),
    /// It took effect, or it is taken as done (the reason says which).
    Applied(Reason),
}

impl<'a> Decider<'a> {
    /// Whether the raise of a boost recorded at `since` from `from` took effect, while
    /// desired capacity stands at `from` again. Sending it again when it did is a second
    /// boost for one signal (a crash or a lost reply between the call and its record, and
    /// somebody lowered desired capacity since), so it is sent again only on evidence that
    /// it did not: an answered failure since the record (refused, throttled, busy, conflict:
    /// the call was not carried out), or scaling activities read long enough after the
    /// record that show no raise from `from`.
    fn raise_evidence(&self, group: &Group, from: u32, since: Timestamp) -> Evidence {
        let seen = group
            .raises
            .iter()
            .any(|r| r.from == from && r.to > from && r.at.plus(ACTIVITY_CLOCK_SLACK) >= since);
        if seen {
            return Evidence::Applied(Reason::RaiseSeenInActivities);
        }
        let answered = self
            .failures
            .get(&(Write::SetDesired, group.name.as_str()))
            .is_some_and(|f| f.last_at >= since && f.class != FailureClass::Unavailable);
        if answered {
            return Evidence::NotApplied;
        }
        let shown_by = since.plus(RAISE_SHOWS_WITHIN);
        if group.activities_read && self.now >= shown_by {
            return Evidence::NotApplied;
        }
        let give_up = since.plus(RAISE_UNPROVEN_AFTER);
        if self.now >= give_up {
            return Evidence::Applied(Reason::RaiseUnproven);
        }
        Evidence::Wait(if group.activities_read {
            shown_by
        } else {
            give_up
        })
    }

    /// Settles the boost being applied in `group`, if there is one: `SetDesired` while
    /// desired == from, else `ConfirmBoost`. Returns whether one was in flight (desired
    /// capacity may then move in this plan).
    pub(super) fn settle(
        &mut self,
        group: &'a Group,
        here: &[(&'a str, &'a Entry)],
        max: u32,
    ) -> bool {
        // All `Applying` entries of a group share from/to.
        let applying: Vec<(&str, u32, u32, Timestamp)> = here
            .iter()
            .filter(|(n, e)| e.released_at.is_none() && !self.gone(n, e))
            .filter_map(|(n, e)| match e.boost {
                Boost::Applying { from, to, at } => Some((*n, from, to, at)),
                _ => None,
            })
            .collect();
        let Some(&(_, from, to, _)) = applying.first() else {
            return false;
        };
        let nodes: Vec<String> = applying.iter().map(|(n, ..)| n.to_string()).collect();
        let desired = group.desired;
        let target = to.min(max);
        let since = applying.iter().map(|a| a.3).min().unwrap_or(self.now);
        let refused = self
            .refused_out(Write::SetDesired, &group.name, since)
            .is_some();
        if refused && desired == from {
            // Refused again and again since these signals were recorded: the write is
            // not the way (a permission, a tag, the group). Given up, never sent at pass
            // rate; the entries' walk gives the nodes back.
            self.confirm(group, nodes, false, Reason::BoostRefused);
            return false;
        }
        if group.capacity_rebalance && desired == from {
            // Capacity Rebalancing was turned on since the record: AWS replaces now.
            self.confirm(group, nodes, false, Reason::CapacityRebalance);
        } else if desired >= target {
            let applied = target > from || desired >= to;
            let reason = if applied {
                Reason::DesiredReached
            } else {
                Reason::MaxSizeBelowTarget
            };
            self.confirm(group, nodes, applied, reason);
        } else if desired == from {
            self.send_again_or_wait(group, nodes, from, target, since);
        } else {
            // Somebody else moved desired capacity since the record. Repeating the call
            // could boost twice for one signal; taking it as done cannot.
            self.confirm(group, nodes, true, Reason::DesiredChangedByOthers);
        }
        true
    }

    /// A boost whose group stands at its base again: sent again, waited on, or taken as
    /// done, on the evidence of its raise.
    fn send_again_or_wait(
        &mut self,
        group: &Group,
        nodes: Vec<String>,
        from: u32,
        target: u32,
        since: Timestamp,
    ) {
        match self.raise_evidence(group, from, since) {
            Evidence::NotApplied => self.push(Action::SetDesired {
                group: group.name.clone(),
                from,
                to: target,
                nodes,
                reason: Reason::BoostRecorded,
            }),
            Evidence::Wait(until) => {
                self.wake_at(until);
                for n in &nodes {
                    self.hold(n, Reason::RaiseUnconfirmed);
                }
            }
            Evidence::Applied(reason) => self.confirm(group, nodes, true, reason),
        }
    }

    fn confirm(&mut self, group: &Group, nodes: Vec<String>, applied: bool, reason: Reason) {
        self.push(Action::ConfirmBoost {
            group: group.name.clone(),
            nodes,
            applied,
            reason,
        });
    }
}
