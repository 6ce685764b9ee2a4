//! Step 2a: how a group's boost is asked for, settled and queued.

use super::Decider;
use crate::ledger::{Boost, DrainState, Entry};
use crate::plan::{Action, Reason};
use crate::snapshot::Group;
use crate::time::Timestamp;

impl<'a> Decider<'a> {
    pub(super) fn boosts(
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
}
