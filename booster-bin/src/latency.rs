//! From a signal to its SetDesiredCapacity, in phases: how long the change waited for a
//! pass (the debounce, or a pass already running), the snapshot (the watch caches and the
//! Auto Scaling describes), `decide`, the write-ahead ledger store, the boost marks and the
//! call itself. Measured only for boosts of signals recorded in the same pass, so that the
//! figure is the booster's share of a signal's latency and nothing else.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use booster_core::exec::{Effect, Executed};
use booster_core::{Action, Plan};

/// The names of the writes the boost latency is made of, as the fence records them.
pub const STORE_LEDGER: &str = "store ledger";
/// See [`STORE_LEDGER`].
pub const MARK_BOOST: &str = "mark boost";
/// See [`STORE_LEDGER`].
pub const SET_DESIRED: &str = "SetDesiredCapacity";

/// One write through the fence: what, of what (a node, a group), when and how long.
#[derive(Clone, Debug)]
pub struct Write {
    /// The fence's name for it ("store ledger", "mark boost", "SetDesiredCapacity", ...).
    pub what: &'static str,
    /// The node or group it concerns ("" for the ledger).
    pub subject: String,
    /// When it started.
    pub started: Instant,
    /// How long it took (failed or not).
    pub took: Duration,
}

/// The writes of the pass under way (drains and Events add theirs; only the boost's are
/// read). Bounded: a pass that is never read cannot grow it without end.
#[derive(Debug, Default)]
pub struct Writes(Mutex<Vec<Write>>);

const MAX_WRITES: usize = 4096;

impl Writes {
    /// Notes a write.
    pub fn record(&self, what: &'static str, subject: &str, started: Instant) {
        if let Ok(mut v) = self.0.lock() {
            if v.len() < MAX_WRITES {
                v.push(Write {
                    what,
                    subject: subject.to_string(),
                    started,
                    took: started.elapsed(),
                });
            }
        }
    }

    /// The writes so far, emptied.
    pub fn take(&self) -> Vec<Write> {
        self.0
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

/// When a pass's steps happened.
#[derive(Clone, Copy, Debug)]
pub struct PassClock {
    /// The first watched change this pass acts on (the pass's start when a timer woke it).
    pub woken: Instant,
    /// The pass started.
    pub started: Instant,
    /// The snapshot was taken.
    pub observed: Instant,
    /// `decide` returned.
    pub decided: Instant,
}

/// One boost's latency, by phase.
#[derive(Clone, Debug, PartialEq)]
pub struct BoostLatency {
    /// The group raised.
    pub group: String,
    /// The signalled nodes it boosts.
    pub nodes: Vec<String>,
    /// The watched change it started from.
    pub woken: Instant,
    /// The change's wait for the pass: debounce, or a pass already running.
    pub wait: Duration,
    /// Taking the snapshot.
    pub snapshot: Duration,
    /// `decide`.
    pub decide: Duration,
    /// Ledger stores before the call (the write-ahead record).
    pub ledger: Duration,
    /// Boost marks on the nodes before the call.
    pub marks: Duration,
    /// SetDesiredCapacity itself.
    pub aws: Duration,
    /// From the change to the call's answer.
    pub total: Duration,
}

impl BoostLatency {
    /// The phases with their metric label.
    pub fn phases(&self) -> [(&'static str, Duration); 7] {
        [
            ("wait", self.wait),
            ("snapshot", self.snapshot),
            ("decide", self.decide),
            ("ledger", self.ledger),
            ("marks", self.marks),
            ("aws", self.aws),
            ("total", self.total),
        ]
    }
}

/// The latency of each boost `executed` raised for a signal `plan` recorded in this pass.
pub fn of_boosts(
    clock: PassClock,
    plan: &Plan,
    executed: &Executed,
    writes: &[Write],
) -> Vec<BoostLatency> {
    let fresh: Vec<&str> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::RecordSignal { node, .. } => Some(node.as_str()),
            _ => None,
        })
        .collect();
    let since = |from: Instant, to: Instant| to.saturating_duration_since(from);
    let mut out = Vec::new();
    for o in &executed.outcomes {
        let Some(Action::SetDesired { group, nodes, .. }) = plan.actions.get(o.index) else {
            continue;
        };
        if o.result != Ok(Effect::Done) || !nodes.iter().any(|n| fresh.contains(&n.as_str())) {
            continue;
        }
        let Some(call) = writes
            .iter()
            .find(|w| w.what == SET_DESIRED && &w.subject == group)
        else {
            continue;
        };
        let before = |what: &str| -> Duration {
            writes
                .iter()
                .filter(|w| {
                    w.what == what && w.started >= clock.decided && w.started < call.started
                })
                .map(|w| w.took)
                .sum()
        };
        out.push(BoostLatency {
            group: group.clone(),
            nodes: nodes.clone(),
            woken: clock.woken,
            wait: since(clock.woken, clock.started),
            snapshot: since(clock.started, clock.observed),
            decide: since(clock.observed, clock.decided),
            ledger: before(STORE_LEDGER),
            marks: before(MARK_BOOST),
            aws: call.took,
            total: since(clock.woken, call.started + call.took),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use booster_core::exec::Outcome;
    use booster_core::ledger::{Boost, DrainState, Entry};
    use booster_core::{Reason, Timestamp};

    fn record(node: &str) -> Action {
        Action::RecordSignal {
            node: node.into(),
            entry: Entry {
                instance_id: "i-1".into(),
                group: "spot".into(),
                signal_at: Timestamp::from_unix_secs(0),
                boost: Boost::Applying {
                    from: 3,
                    to: 4,
                    at: Timestamp::from_unix_secs(0),
                },
                drain: DrainState::NotStarted,
                released_at: None,
                fallback: None,
                retiring: None,
                cordoned_before: false,
                pool: String::new(),
                outcome: None,
            },
            reason: Reason::NewSignal,
        }
    }

    fn raise(node: &str) -> Action {
        Action::SetDesired {
            group: "spot".into(),
            from: 3,
            to: 4,
            nodes: vec![node.into()],
            reason: Reason::BoostRecorded,
        }
    }

    #[test]
    fn phases_add_up_and_only_fresh_signals_count() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let clock = PassClock {
            woken: t0,
            started: ms(500),
            observed: ms(600),
            decided: ms(601),
        };
        let w = |what, subject: &str, at, took| Write {
            what,
            subject: subject.into(),
            started: ms(at),
            took: Duration::from_millis(took),
        };
        let writes = vec![
            w(STORE_LEDGER, "", 602, 20),
            w(MARK_BOOST, "n1", 622, 10),
            w(SET_DESIRED, "spot", 632, 40),
            w(STORE_LEDGER, "", 672, 20),
        ];
        let plan = Plan {
            actions: vec![record("n1"), raise("n1")],
            ..Plan::default()
        };
        let executed = Executed {
            outcomes: vec![
                Outcome {
                    index: 0,
                    result: Ok(Effect::Recorded),
                },
                Outcome {
                    index: 1,
                    result: Ok(Effect::Done),
                },
            ],
            ..Executed::default()
        };
        let got = of_boosts(clock, &plan, &executed, &writes);
        assert_eq!(got.len(), 1);
        let b = &got[0];
        assert_eq!(b.wait, Duration::from_millis(500));
        assert_eq!(b.snapshot, Duration::from_millis(100));
        assert_eq!(
            b.ledger,
            Duration::from_millis(20),
            "the store after the call is not its"
        );
        assert_eq!(b.marks, Duration::from_millis(10));
        assert_eq!(b.aws, Duration::from_millis(40));
        assert_eq!(b.total, Duration::from_millis(672));

        // A raise of an entry recorded by an earlier pass is no signal's latency.
        let plan = Plan {
            actions: vec![raise("n0"), raise("n0")],
            ..Plan::default()
        };
        assert!(of_boosts(clock, &plan, &executed, &writes).is_empty());
    }
}
