//! Table-driven tests of `decide`: one small snapshot per case, the expected plan as lines.

use booster_core::testkit::{t, SnapshotBuilder, T0};
use booster_core::{
    decide, Boost, CaObservation, Config, DrainState, Dur, Lifecycle, Reason, Snapshot,
};

fn lines(s: &Snapshot, cfg: &Config) -> Vec<String> {
    decide(s, cfg)
        .actions
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn applied(at: u64) -> impl FnOnce(&mut booster_core::Entry) {
    move |e| {
        e.boost = Boost::Applied {
            to: 4,
            at: t(at),
            assumed: false,
        };
    }
}

fn applying(from: u32, to: u32, at: u64) -> impl FnOnce(&mut booster_core::Entry) {
    move |e| {
        e.boost = Boost::Applying {
            from,
            to,
            at: t(at),
        };
    }
}

fn draining(since: u64) -> impl FnOnce(&mut booster_core::Entry) {
    move |e| {
        e.boost = Boost::Applied {
            to: 4,
            at: t(0),
            assumed: false,
        };
        e.drain = DrainState::Draining {
            since: t(since),
            attempt: 1,
        };
    }
}

/// A replacement created at t(30), Ready, protected for `spot-0`.
fn ready_replacement(n: &mut booster_core::Node) {
    n.created_at = t(30);
    n.protected_for = Some("spot-0".into());
    n.scale_down_disabled = true;
}

/// spot: 3 nodes spot-0..2, min 1, max 10; `spot-0` signalled at t(0).
fn spot(now: u64) -> SnapshotBuilder {
    SnapshotBuilder::new(t(now)).group("spot", 1, 3, 10)
}

struct Case {
    name: &'static str,
    snapshot: Snapshot,
    config: Config,
    expect: &'static [&'static str],
}

fn case(name: &'static str, snapshot: SnapshotBuilder, expect: &'static [&'static str]) -> Case {
    Case {
        name,
        snapshot: snapshot.build(),
        config: Config::default(),
        expect,
    }
}

fn with(mut c: Case, f: impl FnOnce(&mut Config)) -> Case {
    f(&mut c.config);
    c
}

#[test]
fn table() {
    let cases =
        vec![
        case("steady state: nothing to do", spot(0), &[]),
        case(
            "new signal: recorded with its boost, raised in the same pass",
            spot(5).signal("spot-0", t(0)),
            &[
                "recordSignal spot-0 applying:3->4 (newSignal)",
                "setDesired spot 3->4 (boostRecorded)",
            ],
        ),
        case(
            "two signals in one group share one boost",
            spot(5).signal("spot-1", t(1)).signal("spot-0", t(0)),
            &[
                "recordSignal spot-0 applying:3->5 (newSignal)",
                "recordSignal spot-1 applying:3->5 (newSignal)",
                "setDesired spot 3->5 (boostRecorded)",
            ],
        ),
        case(
            "recorded boost, desired still at from, too early to know whether it took effect: waits",
            spot(6).entry("spot-0", t(0), applying(3, 4, 5)),
            &[
                "hold spot-0 (raiseUnconfirmed)",
                "cordon spot-0 (signalledNodeSchedulable)",
                "hold spot-0 (boostInFlight)",
            ],
        ),
        case(
            "recorded boost, desired still at from, no raise in the activities a minute on: set desired",
            spot(65)
                .with_group("spot", |g| g.activities_read = true)
                .entry("spot-0", t(0), applying(3, 4, 5)),
            &[
                "setDesired spot 3->4 (boostRecorded)",
                "cordon spot-0 (signalledNodeSchedulable)",
                "hold spot-0 (boostInFlight)",
            ],
        ),
        case(
            "desired reached: confirm",
            spot(7)
                .with_group("spot", |g| g.desired = 4)
                .entry("spot-0", t(0), applying(3, 4, 5)),
            &[
                "confirmBoost spot [spot-0] applied (desiredReached)",
                "cordon spot-0 (signalledNodeSchedulable)",
                "hold spot-0 (boostInFlight)",
            ],
        ),
        case(
            "desired moved by somebody else: taken as done, never set again",
            spot(7)
                .with_group("spot", |g| g.desired = 2)
                .entry("spot-0", t(0), applying(3, 4, 5)),
            &[
                "confirmBoost spot [spot-0] applied (desiredChangedByOthers)",
                "cordon spot-0 (signalledNodeSchedulable)",
                "hold spot-0 (boostInFlight)",
            ],
        ),
        case(
            "max size lowered under the target: abandoned",
            spot(7)
                .with_group("spot", |g| g.max_size = 3)
                .entry("spot-0", t(0), applying(3, 4, 5)),
            &[
                "confirmBoost spot [spot-0] abandoned (maxSizeBelowTarget)",
                "cordon spot-0 (signalledNodeSchedulable)",
                "hold spot-0 (boostInFlight)",
            ],
        ),
        case(
            "group at max: queued, no boost",
            spot(5)
                .with_group("spot", |g| g.max_size = 3)
                .signal("spot-0", t(0)),
            &[
                "recordSignal spot-0 queued:atMaxSize (newSignal)",
                "hold spot-0 (atMaxSize)",
            ],
        ),
        case(
            "room for one of two signals",
            spot(5)
                .with_group("spot", |g| g.max_size = 4)
                .signal("spot-0", t(0))
                .signal("spot-1", t(1)),
            &[
                "recordSignal spot-0 applying:3->4 (newSignal)",
                "recordSignal spot-1 queued:atMaxSize (newSignal)",
                "hold spot-1 (atMaxSize)",
                "setDesired spot 3->4 (boostRecorded)",
            ],
        ),
        with(
            case(
                "boost cap reached by an outstanding boost",
                spot(20)
                    .entry("spot-1", t(0), applied(5))
                    .signal("spot-0", t(10)),
                &[
                    "recordSignal spot-0 queued:boostCapReached (newSignal)",
                    "hold spot-0 (boostCapReached)",
                    "cordon spot-1 (signalledNodeSchedulable)",
                    "hold spot-1 (waitingForReplacement)",
                ],
            ),
            |c| c.boost_cap_per_group = 1,
        ),
        case(
            "CA status missing: no boost",
            spot(5).ca(CaObservation::Missing).signal("spot-0", t(0)),
            &[
                "recordSignal spot-0 queued:caStatusMissing (newSignal)",
                "hold spot-0 (caStatusMissing)",
            ],
        ),
        case(
            "CA status unparseable: no boost",
            spot(5)
                .ca(CaObservation::Invalid {
                    error: "bad".into(),
                })
                .signal("spot-0", t(0)),
            &[
                "recordSignal spot-0 queued:caStatusInvalid (newSignal)",
                "hold spot-0 (caStatusInvalid)",
            ],
        ),
        case(
            "group unknown to CA: no boost",
            spot(5)
                .ca(CaObservation::Parsed {
                    status: booster_core::CaStatus {
                        format: booster_core::CaStatusFormat::Yaml,
                        time: None,
                        autoscaler_status: Some("Running".into()),
                        node_groups: vec![],
                    },
                    updated_at: t(5),
                })
                .signal("spot-0", t(0)),
            &[
                "recordSignal spot-0 queued:groupNotInCaStatus (newSignal)",
                "hold spot-0 (groupNotInCaStatus)",
            ],
        ),
        with(
            case(
                "ignored group: only reported",
                spot(5).signal("spot-0", t(0)),
                &["hold spot-0 (groupIgnored)"],
            ),
            |c| {
                c.ignored_groups.insert("spot".into());
            },
        ),
        case(
            "opted out by tag: only reported",
            spot(5)
                .with_group("spot", |g| {
                    g.tags
                        .insert("aws-spots-booster/enabled".into(), "False".into());
                })
                .signal("spot-0", t(0)),
            &["hold spot-0 (groupOptedOut)"],
        ),
        case(
            "signal for a node of no known group",
            spot(5).node("other", "stray", |_| {}).signal("stray", t(0)),
            &["hold stray (unknownGroup)"],
        ),
        case(
            "boosted, replacement launched: protect it",
            spot(60)
                .entry("spot-0", t(0), applied(5))
                .node("spot", "new-1", |n| {
                    n.created_at = t(30);
                    n.ready = false;
                })
                .with_node("spot-0", |n| n.unschedulable = true),
            &[
                "hold spot-0 (waitingForReplacement)",
                "protect new-1 for spot-0 (replacementLaunched)",
            ],
        ),
        case(
            "a node older than the boost is no replacement",
            spot(60)
                .entry("spot-0", t(10), applied(10))
                .node("spot", "old", |n| n.created_at = t(3))
                .with_node("spot-0", |n| n.unschedulable = true),
            &["hold spot-0 (waitingForReplacement)"],
        ),
        case(
            "replacement Ready: drain",
            spot(200)
                .entry("spot-0", t(0), applied(5))
                .node("spot", "new-1", ready_replacement)
                .with_node("spot-0", |n| n.unschedulable = true),
            &["startDrain spot-0 #1 (replacementReady)"],
        ),
        case(
            "replacement wait over: drain anyway",
            spot(5 + 360)
                .entry("spot-0", t(0), applied(5))
                .with_node("spot-0", |n| n.unschedulable = true),
            &["startDrain spot-0 #1 (replacementWaitOver)"],
        ),
        case(
            "pods no drain may evict: no drain started, the Event names them",
            spot(200)
                .entry("spot-0", t(0), applied(5))
                .node("spot", "new-1", ready_replacement)
                .with_node("spot-0", |n| {
                    n.unschedulable = true;
                    n.pods_to_evict = 3;
                    n.unevictable = vec!["db/pg-0: annotated not to be disrupted".into()];
                }),
            &["hold spot-0 (podsNeverEvicted)"],
        ),
        case(
            "pods no drain may evict, past the replacement wait: still no drain",
            spot(5 + 360)
                .entry("spot-0", t(0), applied(5))
                .with_node("spot-0", |n| {
                    n.unschedulable = true;
                    n.unevictable = vec!["default/bare: no controller".into()];
                }),
            &["hold spot-0 (podsNeverEvicted)"],
        ),
        case(
            "somebody else evicting the pods: the booster follows, starts no drain",
            spot(200)
                .entry("spot-0", t(0), applied(5))
                .node("spot", "new-1", ready_replacement)
                .with_node("spot-0", |n| {
                    n.unschedulable = true;
                    n.pods_to_evict = 3;
                    n.evicted_by_others = 2;
                }),
            &["followDrain spot-0 (drainedByOthers)"],
        ),
        case(
            "followed drain, pods left, none being evicted now: still no drain of ours",
            spot(200)
                .entry("spot-0", t(0), |e| {
                    applied(5)(e);
                    e.drain = DrainState::ByOthers { since: t(20) };
                })
                .node("spot", "new-1", ready_replacement)
                .with_node("spot-0", |n| {
                    n.unschedulable = true;
                    n.pods_to_evict = 1;
                }),
            &["hold spot-0 (drainedByOthers)"],
        ),
        case(
            "followed drain done, replacement not Ready yet: retired, the boost given back",
            spot(40)
                .entry("spot-0", t(0), |e| {
                    applied(5)(e);
                    e.drain = DrainState::ByOthers { since: t(20) };
                })
                .with_node("spot-0", |n| n.unschedulable = true),
            &["retire spot-0 decrement (drainComplete)"],
        ),
        case(
            "queued past the wait: never drained into no capacity",
            spot(400)
                .with_group("spot", |g| g.max_size = 3)
                .entry("spot-0", t(0), |_| {})
                .with_node("spot-0", |n| n.unschedulable = true),
            &["hold spot-0 (atMaxSize)"],
        ),
        case(
            "abandoned boost: waits for the interruption or the expiry",
            spot(400)
                .entry("spot-0", t(0), |e| {
                    e.boost = Boost::Abandoned {
                        reason: Reason::MaxSizeBelowTarget,
                    }
                })
                .with_node("spot-0", |n| n.unschedulable = true),
            &["hold spot-0 (noReplacementComing)"],
        ),
        with(
            case(
                "concurrency: two slots, three ready to drain",
                SnapshotBuilder::new(t(1000))
                    .group("spot", 1, 5, 10)
                    .entry("spot-0", t(0), applied(5))
                    .entry("spot-1", t(1), applied(5))
                    .entry("spot-2", t(2), applied(5))
                    .with_node("spot-0", |n| n.unschedulable = true)
                    .with_node("spot-1", |n| n.unschedulable = true)
                    .with_node("spot-2", |n| n.unschedulable = true),
                &[
                    "startDrain spot-0 #1 (replacementWaitOver)",
                    "startDrain spot-1 #1 (replacementWaitOver)",
                    "hold spot-2 (drainSlotsFull)",
                ],
            ),
            |c| {
                c.max_concurrent_drains = 2;
                c.time_between_drains = Dur::ZERO;
            },
        ),
        case(
            "spacing: one drain per time-between-drains",
            SnapshotBuilder::new(t(1000))
                .group("spot", 1, 5, 10)
                .entry("spot-0", t(0), applied(5))
                .entry("spot-1", t(1), applied(5))
                .with_node("spot-0", |n| n.unschedulable = true)
                .with_node("spot-1", |n| n.unschedulable = true),
            &[
                "startDrain spot-0 #1 (replacementWaitOver)",
                "hold spot-1 (drainSpacing)",
            ],
        ),
        case(
            "spacing counts from the ledger's last drain start",
            spot(1000)
                .last_drain(t(970))
                .entry("spot-0", t(0), applied(5))
                .with_node("spot-0", |n| n.unschedulable = true),
            &["hold spot-0 (drainSpacing)"],
        ),
        case(
            "drain complete after a boost: retire with decrement",
            spot(500)
                .with_group("spot", |g| g.desired = 4)
                .entry("spot-0", t(0), draining(400))
                .with_node("spot-0", |n| n.unschedulable = true),
            &["retire spot-0 decrement (drainComplete)"],
        ),
        case(
            "drain complete without a boost: retire, desired kept",
            spot(500)
                .entry("spot-0", t(0), |e| {
                    e.boost = Boost::Abandoned {
                        reason: booster_core::Reason::DrainStartedFirst,
                    };
                    e.drain = DrainState::Draining {
                        since: t(400),
                        attempt: 1,
                    };
                })
                .with_node("spot-0", |n| n.unschedulable = true),
            &["retire spot-0 keep-desired (drainComplete)"],
        ),
        case(
            "an assumed boost is not given back",
            spot(500)
                .with_group("spot", |g| g.desired = 6)
                .entry("spot-0", t(0), |e| {
                    e.boost = Boost::Applied {
                        to: 4,
                        at: t(0),
                        assumed: true,
                    };
                    e.drain = DrainState::Draining {
                        since: t(400),
                        attempt: 1,
                    };
                })
                .with_node("spot-0", |n| n.unschedulable = true),
            &["retire spot-0 keep-desired (drainComplete)"],
        ),
        case(
            "never decrement below min size",
            spot(500)
                .with_group("spot", |g| g.min_size = 3)
                .entry("spot-0", t(0), draining(400))
                .with_node("spot-0", |n| n.unschedulable = true),
            &["retire spot-0 keep-desired (drainComplete)"],
        ),
        case(
            "drain under way",
            spot(450)
                .entry("spot-0", t(0), draining(400))
                .with_node("spot-0", |n| {
                    n.unschedulable = true;
                    n.pods_to_evict = 3;
                }),
            &["hold spot-0 (draining)"],
        ),
        case(
            "drain attempt timed out: retried",
            spot(530)
                .entry("spot-0", t(0), draining(400))
                .with_node("spot-0", |n| {
                    n.unschedulable = true;
                    n.pods_to_evict = 1;
                }),
            &["startDrain spot-0 #2 (drainTimedOut)"],
        ),
        case(
            "retired: waits for the node to go",
            spot(520)
                .entry("spot-0", t(0), |e| {
                    draining(400)(e);
                    e.retiring = Some(t(500));
                })
                .with_node("spot-0", |n| n.unschedulable = true)
                .with_group("spot", |g| {
                    g.instances[0].lifecycle = Lifecycle::Terminating
                }),
            &[
                "recordOutcome spot-0 unknown in ?/eu-west-1a (outcomeUnknown)",],
        ),
        case(
            "node and instance gone: forget, unprotect its replacement",
            spot(600)
                .entry("spot-0", t(0), draining(400))
                .with_group("spot", |g| {
                    g.instances.remove(0);
                })
                .with_node("spot-1", |n| {
                    n.protected_for = Some("spot-0".into());
                    n.scale_down_disabled = true;
                })
                .with_node("spot-0", |n| n.name = "deleted".into()),
            &[
                "recordOutcome spot-0 interrupted in ?/? (interrupted)",
                "forget spot-0 (nodeGone)",
                "unprotect spot-1 (signalHandled)",
            ],
        ),
        case(
            "protection pointing at no entry is removed",
            spot(10).with_node("spot-1", |n| {
                n.protected_for = Some("ghost".into());
                n.scale_down_disabled = true;
            }),
            &["unprotect spot-1 (protectionOrphaned)"],
        ),
        case(
            "a spent replacement stands in for no second signal",
            spot(200)
                .entry("spot-1", t(100), applied(5))
                .with_node("spot-1", |n| n.unschedulable = true)
                .node("spot", "fresh", |n| {
                    n.created_at = t(150);
                    n.protected_for = Some("spot-0".into());
                })
                .with_group("spot", |g| g.desired = 5),
            &["hold spot-1 (waitingForReplacement)"],
        ),
        case(
            "retire waits while the group's boost settles",
            spot(500)
                .with_group("spot", |g| g.desired = 4)
                .entry("spot-0", t(0), draining(400))
                .entry("spot-1", t(430), applying(4, 5, 430))
                .with_group("spot", |g| g.activities_read = true)
                .with_node("spot-0", |n| n.unschedulable = true)
                .with_node("spot-1", |n| n.unschedulable = true),
            &[
                "setDesired spot 4->5 (boostRecorded)",
                "hold spot-0 (retireWaitsForBoost)",
                "hold spot-1 (boostInFlight)",
            ],
        ),
        case(
            "expired before its drain: given back",
            spot(1800)
                .entry("spot-0", t(0), applied(5))
                .with_node("spot-0", |n| n.unschedulable = true),
            &[
                "recordOutcome spot-0 notInterrupted in ?/eu-west-1a (signalExpired)","release spot-0 (signalExpired)"],
        ),
        case(
            "expired with its drain done: retired",
            spot(1800)
                .with_group("spot", |g| g.desired = 4)
                .entry("spot-0", t(0), draining(1700))
                .with_node("spot-0", |n| n.unschedulable = true),
            &[
                "recordOutcome spot-0 notInterrupted in ?/eu-west-1a (signalExpired)","retire spot-0 decrement (signalExpired)"],
        ),
        case(
            "a signal first seen after its expiry: recorded released, node given back",
            spot(4000)
                .signal("spot-0", t(0))
                .with_node("spot-0", |n| n.unschedulable = true),
            &[
                "recordSignal spot-0 abandoned:signalExpired released (staleSignal)",
                "release spot-0 (signalExpired)",
            ],
        ),
        case(
            "released entry: an old signal is not handled again",
            spot(4000)
                .event("spot-0", t(0), |_| {})
                .entry("spot-0", t(0), |e| e.released_at = Some(t(1800))),
            &[],
        ),
        case(
            "released entry: NTH cordons and taints again (restarted): given back again",
            spot(4000)
                .signal("spot-0", t(0))
                .entry("spot-0", t(0), |e| e.released_at = Some(t(1800)))
                .with_node("spot-0", |n| {
                    n.unschedulable = true;
                    n.rebalance_taint = true;
                }),
            &["release spot-0 (retaintedAfterRelease)"],
        ),
        case(
            "released entry: a cordon without NTH's taint is somebody else's",
            spot(4000)
                .event("spot-0", t(0), |_| {})
                .entry("spot-0", t(0), |e| e.released_at = Some(t(1800)))
                .with_node("spot-0", |n| n.unschedulable = true),
            &[],
        ),
        case(
            "released entry: a newer signal starts over",
            spot(4000)
                .signal("spot-0", t(3990))
                .entry("spot-0", t(0), |e| e.released_at = Some(t(1800))),
            &[
                "recordSignal spot-0 applying:3->4 (signalAfterRelease)",
                "setDesired spot 3->4 (boostRecorded)",
            ],
        ),
        with(
            case(
                "drain disabled: boost only",
                spot(1000)
                    .entry("spot-0", t(0), applied(5))
                    .with_node("spot-0", |n| n.unschedulable = true),
                &["hold spot-0 (drainDisabled)"],
            ),
            |c| c.disable_drain = true,
        ),
        // Trust: only what a node-level actor writes makes an Event count.
        case(
            "an Event alone (no taint, no cordon) does nothing",
            spot(100).event("spot-0", t(90), |_| {}),
            &[],
        ),
        case(
            "an Event on a node an operator cordoned does nothing",
            spot(100)
                .event("spot-0", t(90), |_| {})
                .with_node("spot-0", |n| {
                    n.unschedulable = true;
                    n.cordoned_by = Some("kubectl-cordon".into());
                    n.cordoned_at = Some(t(10));
                }),
            &[],
        ),
        case(
            "an Event on a node NTH cordoned is a signal from the cordon's time",
            spot(100)
                .event("spot-0", t(85), |e| e.at = t(5))
                .with_node("spot-0", |n| {
                    n.unschedulable = true;
                    n.cordoned_by = Some("node-termination-handler".into());
                    n.cordoned_at = Some(t(90));
                }),
            &[
                "recordSignal spot-0 applying:3->4 (newSignal)",
                "setDesired spot 3->4 (boostRecorded)",
            ],
        ),
        case(
            "an Event posted long after NTH's cordon (for an interruption, say) does nothing",
            spot(400)
                .event("spot-0", t(390), |_| {})
                .with_node("spot-0", |n| {
                    n.unschedulable = true;
                    n.cordoned_by = Some("node-termination-handler".into());
                    n.cordoned_at = Some(t(90));
                }),
            &[],
        ),
        // Give-back: never undo what is not the rebalance's.
        case(
            "NTH's taint on a node an operator had cordoned: the cordon is noted as not ours",
            spot(100).with_node("spot-0", |n| {
                n.unschedulable = true;
                n.cordoned_by = Some("kubectl-cordon".into());
                n.cordoned_at = Some(t(10));
                n.rebalance_taint = true;
                n.tainted_at = Some(t(90));
            }),
            &[
                "recordSignal spot-0 applying:3->4 cordoned-before (newSignal)",
                "setDesired spot 3->4 (boostRecorded)",
            ],
        ),
        case(
            "an operator's cordon before the signal survives its expiry (only NTH's taint goes)",
            spot(4000)
                .entry("spot-0", t(0), |e| e.cordoned_before = true)
                .with_node("spot-0", |n| {
                    n.unschedulable = true;
                    n.cordoned_by = Some("kubectl-cordon".into());
                    n.rebalance_taint = true;
                }),
            &[
                "recordOutcome spot-0 notInterrupted in ?/eu-west-1a (signalExpired)","release spot-0 keep-cordon (signalExpired)"],
        ),
        case(
            "an interruption notice just before the expiry: the node is not given back",
            spot(4000).entry("spot-0", t(0), |_| {}).with_node("spot-0", |n| {
                n.unschedulable = true;
                n.cordoned_by = Some("node-termination-handler".into());
                n.rebalance_taint = true;
                n.interruption_taint = true;
            }),
            &[
                "recordOutcome spot-0 interrupted in ?/eu-west-1a (interrupted)","hold spot-0 (interruptionUnderway)"],
        ),
        case(
            "NTH cordoned a given-back node again while it is being interrupted: left alone",
            spot(4000)
                .entry("spot-0", t(0), |e| e.released_at = Some(t(3700)))
                .with_node("spot-0", |n| {
                    n.unschedulable = true;
                    n.rebalance_taint = true;
                    n.interruption_taint = true;
                }),
            &[
                "recordOutcome spot-0 interrupted in ?/eu-west-1a (interrupted)","hold spot-0 (interruptionUnderway)"],
        ),
        case(
            "NTH's cordon without an Event is not a signal (NTH cordons for interruptions too)",
            spot(100).with_node("spot-0", |n| {
                n.unschedulable = true;
                n.cordoned_by = Some("node-termination-handler".into());
                n.cordoned_at = Some(t(90));
            }),
            &[],
        ),
        case(
            "NTH's taint alone is a signal",
            spot(100).with_node("spot-0", |n| {
                n.rebalance_taint = true;
                n.tainted_at = Some(t(90));
            }),
            &[
                "recordSignal spot-0 applying:3->4 (newSignal)",
                "setDesired spot 3->4 (boostRecorded)",
            ],
        ),
        case(
            "a forged Event claiming a time long past does not expire a fresh taint",
            spot(4000)
                .event("spot-0", t(0), |_| {})
                .with_node("spot-0", |n| {
                    n.rebalance_taint = true;
                    n.tainted_at = Some(t(3990));
                }),
            &[
                "recordSignal spot-0 applying:3->4 (newSignal)",
                "setDesired spot 3->4 (boostRecorded)",
            ],
        ),
        case(
            "an old taint is expired whatever an Event claims",
            spot(4000)
                .event("spot-0", t(3990), |_| {})
                .with_node("spot-0", |n| {
                    n.unschedulable = true;
                    n.rebalance_taint = true;
                    n.tainted_at = Some(t(10));
                }),
            &[
                "recordSignal spot-0 abandoned:signalExpired released (staleSignal)",
                "release spot-0 (signalExpired)",
            ],
        ),
        with(
            case(
                "a group without the cluster's tag is refused",
                spot(100).signal("spot-0", t(90)),
                &["hold spot-0 (groupNotThisCluster)"],
            ),
            |c| c.cluster_tag = Some("k8s.io/cluster-autoscaler/prod".into()),
        ),
        with(
            case(
                "a group with the cluster's tag is boosted",
                spot(100).signal("spot-0", t(90)).with_group("spot", |g| {
                    g.tags
                        .insert("k8s.io/cluster-autoscaler/prod".into(), "owned".into());
                }),
                &[
                    "recordSignal spot-0 applying:3->4 (newSignal)",
                    "setDesired spot 3->4 (boostRecorded)",
                ],
            ),
            |c| c.cluster_tag = Some("k8s.io/cluster-autoscaler/prod".into()),
        ),
        // Groups as production runs them.
        case(
            "Capacity Rebalancing: recorded without a boost, not cordoned, nothing else",
            spot(100)
                .signal("spot-0", t(90))
                .with_group("spot", |g| g.capacity_rebalance = true),
            &[
                "recordSignal spot-0 abandoned:capacityRebalance (newSignal)",
                "hold spot-0 (capacityRebalance)",
            ],
        ),
        case(
            "Capacity Rebalancing: the entry waits for AWS, no drain, no retire",
            spot(200)
                .signal("spot-0", t(90))
                .entry("spot-0", t(90), |e| {
                    e.boost = Boost::Abandoned {
                        reason: Reason::CapacityRebalance,
                    }
                })
                .with_group("spot", |g| g.capacity_rebalance = true),
            &["hold spot-0 (capacityRebalance)"],
        ),
        case(
            "Capacity Rebalancing: NTH's cordon is given back at expiry if AWS did not replace",
            spot(2000)
                .signal("spot-0", t(90))
                .entry("spot-0", t(90), |e| {
                    e.boost = Boost::Abandoned {
                        reason: Reason::CapacityRebalance,
                    }
                })
                .with_node("spot-0", |n| n.unschedulable = true)
                .with_group("spot", |g| g.capacity_rebalance = true),
            &[
                "recordOutcome spot-0 notInterrupted in ?/eu-west-1a (signalExpired)","release spot-0 (signalExpired)"],
        ),
        case(
            "Capacity Rebalancing turned on before the raise: the recorded boost is dropped",
            spot(100)
                .entry("spot-0", t(90), applying(3, 4, 95))
                .with_node("spot-0", |n| n.unschedulable = true)
                .with_group("spot", |g| g.capacity_rebalance = true),
            &[
                "confirmBoost spot [spot-0] abandoned (capacityRebalance)",
                "hold spot-0 (boostInFlight)",
            ],
        ),
        case(
            "weights: the boost is the signalled instance's weight",
            spot(100).signal("spot-0", t(90)).with_group("spot", |g| {
                g.desired = 6;
                g.weights.insert("m5.2xlarge".into(), 2);
                for i in &mut g.instances {
                    i.instance_type = "m5.2xlarge".into();
                }
            }),
            &[
                "recordSignal spot-0 applying:6->8 (newSignal)",
                "setDesired spot 6->8 (boostRecorded)",
            ],
        ),
        case(
            "weights: an overage that would absorb the raise: just above capacity instead",
            spot(100).signal("spot-0", t(90)).with_group("spot", |g| {
                // 3 instances of 4 units: capacity 12 for a desired 9.
                g.desired = 9;
                g.max_size = 40;
                g.weights.insert("m5.4xlarge".into(), 4);
                for i in &mut g.instances {
                    i.instance_type = "m5.4xlarge".into();
                }
            }),
            &[
                "recordSignal spot-0 applying:9->13 (newSignal)",
                "setDesired spot 9->13 (boostRecorded)",
            ],
        ),
        case(
            "weights: the retire gives back the instance's weight, never below min",
            spot(1000)
                .entry("spot-0", t(0), draining(900))
                .with_node("spot-0", |n| {
                    n.pods_to_evict = 0;
                    n.unschedulable = true;
                })
                .with_group("spot", |g| {
                    g.desired = 5;
                    g.min_size = 2;
                    g.weights.insert("m5.4xlarge".into(), 4);
                    for i in &mut g.instances {
                        i.instance_type = "m5.4xlarge".into();
                    }
                }),
            &["retire spot-0 keep-desired (drainComplete)"],
        ),
        case(
            "Launch suspended: no boost, the signal waits",
            spot(100).signal("spot-0", t(90)).with_group("spot", |g| {
                g.suspended_processes.insert("Launch".into());
            }),
            &[
                "recordSignal spot-0 queued:launchSuspended (newSignal)",
                "hold spot-0 (launchSuspended)",
            ],
        ),
        case(
            "a launch failure since the boost: drained at once, not after the replacement wait",
            spot(200)
                .entry("spot-0", t(90), applied(100))
                .with_node("spot-0", |n| n.unschedulable = true)
                .with_group("spot", |g| {
                    g.desired = 4;
                    g.launch_failures
                        .push(booster_core::snapshot::LaunchFailure {
                            at: t(110),
                            message: "InsufficientInstanceCapacity".into(),
                        });
                }),
            &["startDrain spot-0 #1 (launchFailed)"],
        ),
        case(
            "a retire in flight is not sent again for a minute",
            spot(1000)
                .entry("spot-0", t(0), |e| {
                    draining(900)(e);
                    e.retiring = Some(t(980));
                })
                .with_node("spot-0", |n| {
                    n.pods_to_evict = 0;
                    n.unschedulable = true;
                }),
            &["hold spot-0 (retireInFlight)"],
        ),
        case(
            "a retire in flight a minute ago is sent again (the adapter reads the instance first)",
            spot(1000)
                .entry("spot-0", t(0), |e| {
                    draining(900)(e);
                    e.retiring = Some(t(930));
                })
                .with_node("spot-0", |n| {
                    n.pods_to_evict = 0;
                    n.unschedulable = true;
                }),
            &["retire spot-0 decrement (drainComplete)"],
        ),
    ];

    let mut failures = Vec::new();
    for c in &cases {
        let got = lines(&c.snapshot, &c.config);
        let want: Vec<String> = c.expect.iter().map(|s| s.to_string()).collect();
        if got != want {
            failures.push(format!("{}:\n  want {want:#?}\n  got  {got:#?}", c.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Every kind of forged Event is rejected with its reason, and a genuine one among them is
/// handled.
#[test]
fn forged_events_are_rejected_with_their_reason_and_a_genuine_one_is_handled() {
    use booster_core::Rejected;
    let s = spot(100)
        .node("spot", "fresh", |n| n.created_at = t(50))
        .event("spot-1", t(90), |e| e.namespace = "tenant".into())
        .event("spot-1", t(90), |e| e.component = "kubectl".into())
        .event("ghost", t(90), |_| {})
        .event("spot-1", t(90), |e| e.instance_id = Some("i-other".into()))
        .event("spot-1", t(90), |e| e.at = t(100 + 3600))
        .event("fresh", t(40), |_| {})
        .event("spot-2", t(10), |_| {})
        .signal("spot-0", t(95))
        .build();
    let plan = decide(&s, &Config::default());
    let got: Vec<(&str, Rejected)> = plan
        .rejected
        .iter()
        .map(|r| (r.node.as_str(), r.reason))
        .collect();
    assert_eq!(
        got,
        vec![
            ("spot-1", Rejected::Namespace),
            ("spot-1", Rejected::Component),
            ("ghost", Rejected::UnknownNode),
            ("spot-1", Rejected::InstanceMismatch),
            ("spot-1", Rejected::FutureTime),
            ("fresh", Rejected::BeforeNode),
            // Created 90 s ago, past the 60 s grace, and nothing on the node backs it.
            ("spot-2", Rejected::Uncorroborated),
        ]
    );
    let acted: Vec<String> = plan.mutations().map(ToString::to_string).collect();
    assert_eq!(
        acted,
        vec![
            "recordSignal spot-0 applying:3->4 (newSignal)",
            "setDesired spot 3->4 (boostRecorded)"
        ]
    );
    // Within the grace, an uncorroborated Event is not judged yet.
    let young = spot(100).event("spot-2", t(80), |_| {}).build();
    assert!(decide(&young, &Config::default()).rejected.is_empty());
}

#[test]
fn stale_ca_status_blocks_boosts_and_says_when_it_went_stale() {
    let mut s = spot(5).signal("spot-0", t(0)).build();
    if let CaObservation::Parsed { updated_at, .. } = &mut s.ca_status {
        *updated_at = T0.plus(Dur::from_secs(5)).plus(Dur::ZERO);
    }
    s.now = t(5 + 181);
    let got = lines(&s, &Config::default());
    assert_eq!(
        got,
        [
            "recordSignal spot-0 queued:caStatusStale (newSignal)",
            "hold spot-0 (caStatusStale)"
        ]
    );
}

#[test]
fn initializing_autoscaler_blocks_boosts() {
    let mut s = spot(5).signal("spot-0", t(0)).build();
    if let CaObservation::Parsed { status, .. } = &mut s.ca_status {
        status.autoscaler_status = Some("Initializing".into());
    }
    assert_eq!(
        lines(&s, &Config::default())[0],
        "recordSignal spot-0 queued:caInitializing (newSignal)"
    );
}

#[test]
fn unhealthy_or_backing_off_group_is_not_boosted() {
    for (field, word, reason) in [
        ("health", "Unhealthy", "groupUnhealthy"),
        ("scaleUp", "Backoff", "groupBackingOff"),
    ] {
        let mut s = spot(5).signal("spot-0", t(0)).build();
        if let CaObservation::Parsed { status, .. } = &mut s.ca_status {
            let g = &mut status.node_groups[0];
            match field {
                "health" => g.health = Some(word.into()),
                _ => g.scale_up = Some(word.into()),
            }
        }
        assert_eq!(
            lines(&s, &Config::default())[0],
            format!("recordSignal spot-0 queued:{reason} (newSignal)")
        );
    }
}

#[test]
fn ca_max_size_tighter_than_the_cloud_one_wins() {
    let mut s = spot(5).signal("spot-0", t(0)).build();
    if let CaObservation::Parsed { status, .. } = &mut s.ca_status {
        status.node_groups[0].max_size = 3;
    }
    assert_eq!(
        lines(&s, &Config::default())[0],
        "recordSignal spot-0 queued:atMaxSize (newSignal)"
    );
}

#[test]
fn extra_nodes_per_signal() {
    let s = spot(5).signal("spot-0", t(0)).build();
    let cfg = Config {
        extra_nodes_per_signal: 2,
        ..Config::default()
    };
    assert_eq!(
        lines(&s, &cfg),
        [
            "recordSignal spot-0 applying:3->6 (newSignal)",
            "setDesired spot 3->6 (boostRecorded)"
        ]
    );
}

#[test]
fn next_wakeup_is_the_nearest_deadline() {
    let cfg = Config::default();
    // Waiting for a replacement: wake at boost + replacement_wait (6m), before expiry (30m).
    let s = spot(60)
        .entry("spot-0", t(0), applied(5))
        .with_node("spot-0", |n| n.unschedulable = true)
        .build();
    assert_eq!(decide(&s, &cfg).next_wakeup, Some(t(5 + 360)));
    // Draining: wake at the attempt's timeout.
    let s = spot(450)
        .entry("spot-0", t(0), draining(400))
        .with_node("spot-0", |n| {
            n.unschedulable = true;
            n.pods_to_evict = 2;
        })
        .build();
    assert_eq!(decide(&s, &cfg).next_wakeup, Some(t(520)));
    // Nothing pending on time.
    assert_eq!(decide(&spot(0).build(), &cfg).next_wakeup, None);
}

#[test]
fn dry_run_computes_the_same_plan_and_flags_it() {
    let s = spot(5)
        .signal("spot-0", t(0))
        .signal("spot-1", t(2))
        .build();
    let wet = decide(&s, &Config::default());
    let dry = decide(
        &s,
        &Config {
            dry_run: true,
            ..Config::default()
        },
    );
    assert!(dry.dry_run && !wet.dry_run);
    assert_eq!(dry.actions, wet.actions);
    assert!(!dry.actions.is_empty());
}

#[test]
fn snapshot_and_plan_round_trip_through_json() {
    let s = spot(200)
        .entry("spot-0", t(0), draining(100))
        .entry("spot-1", t(3), applying(3, 4, 4))
        .signal("spot-2", t(150))
        .with_node("spot-0", |n| n.pods_to_evict = 2)
        .build();
    let json = serde_json::to_string_pretty(&s).expect("serialises");
    let back: Snapshot = serde_json::from_str(&json).expect("deserialises");
    assert_eq!(back, s);
    let plan = decide(&s, &Config::default());
    let pj = serde_json::to_string(&plan).expect("serialises");
    let pback: booster_core::Plan = serde_json::from_str(&pj).expect("deserialises");
    assert_eq!(pback, plan);
    let cj = serde_json::to_string(&Config::default()).expect("serialises");
    assert!(cj.contains("\"timeBetweenDrains\":\"1m\""), "{cj}");
}

#[test]
fn example_snapshot_in_the_repository_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/snapshot.json");
    let text = std::fs::read_to_string(path).expect("examples/snapshot.json exists");
    let s: Snapshot = serde_json::from_str(&text).expect("examples/snapshot.json is a Snapshot");
    let plan = decide(&s, &Config::default());
    assert!(
        plan.mutations().count() > 0,
        "the example should show the engine doing something"
    );
}

#[test]
fn reason_codes_match_their_json_form() {
    for r in booster_core::Reason::ALL {
        let json = serde_json::to_string(r).expect("serialises");
        assert_eq!(json, format!("\"{r}\""), "{r:?}");
        assert_eq!(
            r.as_str().to_ascii_lowercase(),
            r.code().to_ascii_lowercase()
        );
    }
    assert!(booster_core::Reason::ALL.len() > 30);
}

/// NTH's defaults leave only a cordon: reported (never acted on), unlike a cordon that NTH's
/// taint, an Event, an interruption taint or our own entry explains, or an operator's.
#[test]
fn nths_cordons_with_nothing_that_says_why_are_reported() {
    let nth = |n: &mut booster_core::Node| {
        n.unschedulable = true;
        n.cordoned_by = Some("node-termination-handler".into());
    };
    let s = SnapshotBuilder::new(t(100))
        .group("spot", 1, 6, 10)
        .with_node("spot-0", nth)
        .with_node("spot-1", |n| {
            nth(n);
            n.rebalance_taint = true;
        })
        .with_node("spot-2", |n| {
            nth(n);
            n.interruption_taint = true;
        })
        .with_node("spot-3", nth)
        .event("spot-3", t(95), |_| {})
        .with_node("spot-4", |n| {
            n.unschedulable = true;
            n.cordoned_by = Some("kubectl-cordon".into());
        })
        .with_node("spot-5", nth)
        .entry("spot-5", t(50), |_| {})
        .build();
    let cfg = Config::default();
    assert_eq!(
        s.unexplained_nth_cordons(&cfg.nth_field_managers),
        vec!["spot-0"]
    );
    assert!(
        decide(&s, &cfg)
            .mutations()
            .all(|a| a.node() != Some("spot-0")),
        "never acted on"
    );
}

/// The Capacity Rebalancing warning lasts while its signal does (it backs a gauge), not
/// only in the pass that recorded it.
#[test]
fn the_capacity_rebalancing_warning_lasts_while_its_signal_does() {
    let s = spot(200)
        .with_group("spot", |g| g.capacity_rebalance = true)
        .entry("spot-0", t(100), |e| {
            e.boost = booster_core::Boost::Abandoned {
                reason: Reason::CapacityRebalance,
            }
        })
        .with_node("spot-0", |n| {
            n.unschedulable = true;
            n.rebalance_taint = true;
        })
        .build();
    let plan = decide(&s, &Config::default());
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.group == "spot" && w.reason == Reason::CapacityRebalance),
        "{:?}",
        plan.warnings
    );
}

/// Karpenter's `SpotRebalanceRecommendation` Event is a claim like NTH's: it backs NTH's
/// cordon made within the window, and alone it is rejected as uncorroborated.
#[test]
fn karpenters_event_backs_nths_cordon_and_alone_does_nothing() {
    use booster_core::Rejected;
    let karpenter = |e: &mut booster_core::Signal| {
        e.component = booster_core::config::KARPENTER_COMPONENT.into();
        e.instance_id = None;
    };
    let s = spot(100)
        .with_node("spot-1", |n| {
            n.unschedulable = true;
            n.cordoned_by = Some(booster_core::config::NTH_FIELD_MANAGER.into());
            n.cordoned_at = Some(t(91));
        })
        .event("spot-1", t(90), karpenter)
        .event("spot-2", t(10), karpenter)
        .build();
    let plan = decide(&s, &Config::default());
    let rejected: Vec<(&str, Rejected)> = plan
        .rejected
        .iter()
        .map(|r| (r.node.as_str(), r.reason))
        .collect();
    assert_eq!(rejected, vec![("spot-2", Rejected::Uncorroborated)]);
    let acted: Vec<String> = plan.mutations().map(ToString::to_string).collect();
    assert_eq!(acted[0], "recordSignal spot-1 applying:3->4 (newSignal)");
    assert!(
        !acted.iter().any(|a| a.contains("spot-2")),
        "nothing for the Event alone: {acted:?}"
    );
}

/// After a give-back, a new signal is told by NTH's own write (its taint or cordon, at a
/// server time after the release), never by the time an Event claims: a tenant's Event
/// claiming a later time, with the taint left from before, is no new signal.
#[test]
fn a_new_signal_after_a_give_back_needs_nths_write_after_it() {
    let cfg = Config::default();
    let world = |tainted_at: u64| {
        spot(700)
            .entry("spot-0", t(10), |e| {
                e.released_at = Some(t(500));
                e.boost = Boost::Abandoned {
                    reason: Reason::SignalExpired,
                };
            })
            .with_node("spot-0", |n| {
                n.rebalance_taint = true;
                n.tainted_at = Some(t(tainted_at));
            })
            .event("spot-0", t(600), |e| e.created_at = Some(t(600)))
            .build()
    };
    let recorded = |s: &Snapshot| {
        decide(s, &cfg).actions.iter().any(|a| {
            matches!(
                a,
                booster_core::Action::RecordSignal {
                    reason: Reason::SignalAfterRelease,
                    ..
                }
            )
        })
    };
    assert!(
        !recorded(&world(100)),
        "the claim alone makes no new signal"
    );
    assert!(
        recorded(&world(650)),
        "NTH tainted it again after the release"
    );
}
