//! The scenario's timeline: signals, forged Events and workload changes planned at the
//! start (interruptions are added as signals come), and handed out when due.

use booster_core::time::{Dur, Timestamp};

use crate::rng;
use crate::scenario::{Lead, SignalSpec};

use super::events::FORGERIES;
use super::{World, K_FOLLOW, K_FORGE, K_LEAD, K_PICK, K_SPREAD, START};

pub(super) enum Timed {
    Signal {
        group: usize,
        initial: u32,
        lead: Option<Dur>,
    },
    Notice {
        instance: String,
    },
    Kill {
        instance: String,
    },
    Change {
        app: usize,
        replicas: u32,
    },
    Forge {
        group: usize,
        initial: u32,
        kind: u8,
    },
}

impl World {
    pub(super) fn plan_timeline(&mut self) {
        let mut tl = Vec::new();
        for (si, s) in self.sc.signals.iter().enumerate() {
            tl.extend(self.signal_items(si, s));
        }
        tl.extend(self.forged_items());
        tl.extend(self.change_items());
        self.timeline = tl;
        self.sort_timeline();
    }

    /// The recommendations of signal `si`, each at its time in the signal's window and with
    /// its lead to an interruption.
    fn signal_items(&self, si: usize, s: &SignalSpec) -> Vec<(Timestamp, Timed)> {
        let Some(gi) = self.sc.groups.iter().position(|g| g.name == s.group) else {
            return Vec::new();
        };
        let picked = self.signalled_initials(si, s, gi);
        let count = picked.len();
        picked
            .into_iter()
            .enumerate()
            .map(|(j, k)| {
                let spread = if count > 1 {
                    Dur::from_millis(
                        (s.within.as_millis() as f64
                            * rng::unit(self.seed, &[K_SPREAD, si as u64, j as u64]))
                            as u64,
                    )
                } else {
                    Dur::ZERO
                };
                let at = START.plus(s.at).plus(spread);
                let follows = s
                    .follow_through
                    .is_none_or(|p| rng::unit(self.seed, &[K_FOLLOW, si as u64, j as u64]) < p);
                let lead = match s.lead {
                    Lead::After(r) if follows => {
                        Some(r.at(rng::unit(self.seed, &[K_LEAD, si as u64, j as u64])))
                    }
                    _ => None,
                };
                (
                    at,
                    Timed::Signal {
                        group: gi,
                        initial: k,
                        lead,
                    },
                )
            })
            .collect()
    }

    /// The initial instances of group `gi` (by launch index) that signal `si` names.
    fn signalled_initials(&self, si: usize, s: &SignalSpec, gi: usize) -> Vec<u32> {
        let sc = &self.sc;
        let initial = sc.groups[gi].desired.div_ceil(sc.groups[gi].weight.max(1));
        let count = match (s.count, s.fraction) {
            (Some(c), _) => c.min(initial),
            (None, Some(f)) => ((f * f64::from(initial)).ceil() as u32).min(initial),
            (None, None) => 1.min(initial),
        };
        // Pick `count` initial nodes by the seed: sort by a keyed hash.
        let in_zone = |k: &u32| {
            let id = format!("i-{}-{:04}", sc.groups[gi].name, k);
            s.zone.as_ref().is_none_or(|z| {
                self.groups[gi]
                    .instances
                    .iter()
                    .any(|i| i.id == id && &i.az == z)
            })
        };
        let mut order: Vec<u32> = (0..initial).filter(in_zone).collect();
        order.sort_by_key(|k| rng::hash(self.seed, &[K_PICK, si as u64, u64::from(*k)]));
        order.truncate(count as usize);
        order
    }

    /// A tenant's forged Events, evenly spread over each forgery's window.
    fn forged_items(&self) -> Vec<(Timestamp, Timed)> {
        let sc = &self.sc;
        let mut tl = Vec::new();
        for (fi, f) in sc.forged.iter().enumerate() {
            let Some(gi) = sc.groups.iter().position(|g| g.name == f.group) else {
                continue;
            };
            let initial = sc.groups[gi]
                .desired
                .div_ceil(sc.groups[gi].weight.max(1))
                .max(1);
            for j in 0..f.count {
                let step = f.within.as_millis() / u64::from(f.count.max(1));
                let at = START.plus(f.at).plus(Dur::from_millis(step * u64::from(j)));
                let pick = rng::hash(self.seed, &[K_FORGE, fi as u64, u64::from(j)]);
                tl.push((
                    at,
                    Timed::Forge {
                        group: gi,
                        initial: (pick % u64::from(initial)) as u32,
                        kind: (j % u32::from(FORGERIES)) as u8,
                    },
                ));
            }
        }
        tl
    }

    /// The workload's replica changes.
    fn change_items(&self) -> Vec<(Timestamp, Timed)> {
        let sc = &self.sc;
        let mut tl = Vec::new();
        for c in &sc.changes {
            if let Some(ai) = sc.workload.iter().position(|a| a.name == c.app) {
                tl.push((
                    START.plus(c.at),
                    Timed::Change {
                        app: ai,
                        replicas: c.replicas,
                    },
                ));
            }
        }
        tl
    }

    pub(super) fn sort_timeline(&mut self) {
        // Latest last, so that due items pop from the end.
        self.timeline.sort_by_key(|b| std::cmp::Reverse(b.0));
    }

    pub(super) fn timeline_due(&mut self) {
        while self.timeline.last().is_some_and(|(t, _)| *t <= self.now) {
            let Some((_, item)) = self.timeline.pop() else {
                break;
            };
            match item {
                Timed::Signal {
                    group,
                    initial,
                    lead,
                } => self.rebalance(group, initial, lead),
                Timed::Notice { instance } => self.interruption_notice(&instance),
                Timed::Kill { instance } => self.interrupt(&instance),
                Timed::Change { app, replicas } => {
                    if let Some(a) = self.apps.get_mut(app) {
                        a.replicas = replicas;
                    }
                    self.reconcile_replicas();
                }
                Timed::Forge {
                    group,
                    initial,
                    kind,
                } => self.forge(group, initial, kind),
            }
        }
    }
}
