//! The simulator: built-in scenarios, determinism, the storm result the project promises,
//! and DESIGN.md's properties over random scenarios.

use booster_core::{Config, Dur};
use booster_sim::scenario::{
    self, AppSpec, ChangeSpec, ForgedSpec, GroupSpec, Lead, Never, Range, RestartSpec, SignalSpec,
};
use booster_sim::{run, Policy, Report, Scenario};
use proptest::prelude::*;

/// The four policies the older comparisons are about (the standby ones have their own).
fn by_policy(s: &Scenario, seed: u64) -> [Report; 4] {
    [
        Policy::NthDrain,
        Policy::Upstream,
        Policy::Booster,
        Policy::BoosterPlaceholder,
    ]
    .map(|p| run(s, p, seed))
}

fn calls(r: &Report, op: &str) -> u64 {
    r.aws_calls.get(op).copied().unwrap_or(0)
}

#[test]
fn built_in_scenarios_parse_and_run_without_broken_properties() {
    let all = scenario::builtins().expect("built-ins parse");
    assert_eq!(all.len(), 19);
    for (s, (file, _)) in all.iter().zip(scenario::BUILTIN) {
        assert_eq!(&s.name, file, "scenario name matches its file");
        assert!(!s.description.is_empty(), "{} has a description", s.name);
        for seed in [1, 2, 3] {
            for policy in [
                Policy::Booster,
                Policy::BoosterStandby,
                Policy::BoosterAdaptive,
            ] {
                let r = run(s, policy, seed);
                assert!(
                    r.violations.is_empty(),
                    "{} {policy} seed {seed}: {:?}",
                    s.name,
                    r.violations
                );
                assert!(r.decisions > 0, "{}: the booster ran", s.name);
            }
        }
    }
}

/// `--boost-mode placeholder` on every built-in scenario: the properties hold, no
/// SetDesiredCapacity is ever sent (Cluster Autoscaler scales up for the placeholders), none
/// is left at the end, and where a boost helps it helps as desired capacity does.
#[test]
fn placeholder_mode_boosts_through_the_autoscaler_and_leaves_nothing() {
    for s in scenario::builtins().expect("built-ins parse") {
        for seed in [1, 2] {
            let [nth, _, desired, ph] = by_policy(&s, seed);
            let name = &s.name;
            assert!(
                ph.violations.is_empty(),
                "{name} {seed}: {:?}",
                ph.violations
            );
            assert_eq!(
                calls(&ph, "SetDesired"),
                0,
                "{name} {seed}: placeholders only"
            );
            assert_eq!(
                ph.placeholders_at_end, 0,
                "{name} {seed}: placeholders left"
            );
            assert_eq!(ph.unsignalled_nodes_touched, 0, "{name} {seed}");
            if desired.pending_pod_seconds == 0 && nth.pending_pod_seconds > 0 {
                assert!(
                    ph.pending_pod_seconds * 10 < nth.pending_pod_seconds,
                    "{name} {seed}: placeholder mode {} pending pod-s vs nth-drain {}",
                    ph.pending_pod_seconds,
                    nth.pending_pod_seconds
                );
            }
        }
    }
    let s = scenario::builtin("single-signal").expect("single-signal");
    let [_, _, _, ph] = by_policy(&s, 1);
    assert!(ph.placeholders_made > 0, "the signal got placeholders");
    assert_eq!(ph.pending_pod_seconds, 0, "{ph:?}");
}

#[test]
fn a_run_is_a_function_of_scenario_and_seed() {
    let s = scenario::builtin("storm").expect("storm");
    for p in Policy::ALL {
        assert_eq!(run(&s, p, 7), run(&s, p, 7), "{p} twice with one seed");
    }
    let differ = (1..6).any(|seed| run(&s, Policy::NthDrain, seed) != run(&s, Policy::NthDrain, 6));
    assert!(differ, "the seed changes the draws");
}

#[test]
fn storm_booster_has_less_deficit_than_both_and_fewer_calls_than_upstream() {
    let s = scenario::builtin("storm").expect("storm");
    for seed in 1..=5 {
        let [nth, up, b, _] = by_policy(&s, seed);
        assert!(
            b.signals >= 6,
            "seed {seed}: the storm happened ({} signals)",
            b.signals
        );
        let deficits = (
            b.capacity_deficit_node_seconds,
            nth.capacity_deficit_node_seconds,
            up.capacity_deficit_node_seconds,
        );
        assert_eq!(
            deficits.0, 0.0,
            "seed {seed}: deficits (booster, nth-drain, upstream) {deficits:?}"
        );
        assert!(deficits.1 > 0.0, "seed {seed}: {deficits:?}");
        // Upstream over-provisions enough to hide some storms, but not the default one, and
        // it kills pods: it terminates nodes whose drain failed and lowers desired capacity.
        if seed == 1 {
            assert!(deficits.2 > 0.0, "{deficits:?}");
        }
        assert!(up.pods_killed > 0 && up.desired_lowered > 0, "seed {seed}");
        assert!(b.over_provisioned_node_seconds < up.over_provisioned_node_seconds);
        assert!(b.aws_calls_total < up.aws_calls_total, "seed {seed}: calls");
        assert_eq!(
            calls(&b, "SetDesiredCapacity"),
            u64::from(b.signals),
            "one raise per signal"
        );
        assert!(b.peak_concurrent_drains <= s.booster.max_concurrent_drains);
        assert_eq!(
            b.pods_killed, 0,
            "seed {seed}: every pod evicted, none killed"
        );
        assert_eq!(b.desired_lowered, 0);
    }
}

#[test]
fn steady_state_costs_one_describe_a_minute() {
    let s = scenario::builtin("steady").expect("steady");
    let [_, up, b, _] = by_policy(&s, 1);
    let minutes = s.duration.as_millis() / 60_000;
    assert_eq!(b.aws_calls_total, calls(&b, "DescribeAutoScalingGroups"));
    assert!(
        b.aws_calls_total <= minutes + 1,
        "{} calls in {minutes} min",
        b.aws_calls_total
    );
    assert_eq!(
        calls(&up, "DescribeTags"),
        minutes * 12,
        "upstream polls tags every 5 s"
    );
}

/// Property 11 in the simulator: 70 forged Events of every kind move the booster not at
/// all (the same calls as with none), and the genuine recommendation is still handled;
/// upstream, which believes any Event, cordons and drains nodes nobody signalled.
#[test]
fn forged_events_change_nothing_under_the_booster() {
    let s = scenario::builtin("forged-events").expect("scenario");
    let clean = Scenario {
        forged: Vec::new(),
        ..s.clone()
    };
    for seed in [1, 2, 3] {
        let [_, up, b, _] = by_policy(&s, seed);
        let base = run(&clean, Policy::Booster, seed);
        assert_eq!(b.forged_events, 70);
        assert_eq!(b.unsignalled_nodes_touched, 0, "seed {seed}");
        // Forged Events wake the loop, so they cost passes; the describe cache (15 s) bounds
        // what that costs AWS over the 10 minutes they come in. No write differs.
        for op in ["SetDesiredCapacity", "TerminateInstanceInAutoScalingGroup"] {
            assert_eq!(calls(&b, op), calls(&base, op), "seed {seed}: {op}");
        }
        let describes = calls(&b, "DescribeAutoScalingGroups");
        assert!(
            describes <= calls(&base, "DescribeAutoScalingGroups") + 10 * 4,
            "seed {seed}: {describes} describes"
        );
        assert_eq!(
            calls(&b, "SetDesiredCapacity"),
            1,
            "the genuine one boosted"
        );
        assert_eq!(
            b.capacity_deficit_node_seconds, base.capacity_deficit_node_seconds,
            "seed {seed}"
        );
        assert!(
            up.unsignalled_nodes_touched > 0,
            "seed {seed}: upstream believes them"
        );
    }
}

/// Capacity Rebalancing: AWS launches one replacement per signal itself. The booster adds
/// none (no SetDesiredCapacity at all); upstream's raises add more.
#[test]
fn capacity_rebalancing_gets_no_second_replacement_from_the_booster() {
    let s = scenario::builtin("capacity-rebalance").expect("scenario");
    for seed in [1, 2, 3] {
        let [nth, up, b, _] = by_policy(&s, seed);
        assert_eq!(calls(&b, "SetDesiredCapacity"), 0, "seed {seed}");
        assert_eq!(
            calls(&b, "TerminateInstanceInAutoScalingGroup"),
            0,
            "AWS retires"
        );
        // AWS's own replacements (2 signals) plus what the interruptions relaunch.
        assert!(
            b.instances_launched <= nth.instances_launched,
            "seed {seed}"
        );
        assert!(
            up.instances_launched > b.instances_launched,
            "seed {seed}: upstream adds"
        );
        assert_eq!(b.cordoned_at_end, 0);
        assert!(b.violations.is_empty(), "{:?}", b.violations);
    }
}

/// Weights: the booster's raise is the instance's weight, never one the overage absorbs;
/// upstream counts nodes and sets desired capacity far below what the group holds.
#[test]
fn weighted_groups_get_boosts_that_launch() {
    let s = scenario::builtin("weighted").expect("scenario");
    let [nth, up, b, _] = by_policy(&s, 1);
    assert_eq!(b.raises_without_launch, 0);
    assert_eq!(calls(&b, "SetDesiredCapacity"), 1);
    assert_eq!(b.capacity_deficit_node_seconds, 0.0);
    assert!(nth.capacity_deficit_node_seconds > 0.0);
    assert!(
        up.desired_lowered > 0,
        "upstream's node count lowers a unit target"
    );
}

/// AZRebalance: active, it terminates an undrained instance after the retires leave a
/// zone short; suspended, it does not.
#[test]
fn az_rebalance_terminates_undrained_unless_suspended() {
    let s = scenario::builtin("az-rebalance").expect("scenario");
    let b = run(&s, Policy::Booster, 1);
    assert!(b.az_rebalance_terminations > 0);
    let mut suspended = s.clone();
    suspended.groups[0].suspended_processes = vec!["AZRebalance".into()];
    let b = run(&suspended, Policy::Booster, 1);
    assert_eq!(b.az_rebalance_terminations, 0);
    assert_eq!(b.pods_killed, 0);
}

/// A pool that cannot launch: with a fallback group named, the booster's capacity deficit
/// is below both others'; without one it boosts nothing it knows will not launch.
#[test]
fn a_dry_pool_with_a_fallback_keeps_the_workload_whole() {
    let with = scenario::builtin("dry-pool-fallback").expect("scenario");
    let without = scenario::builtin("dry-pool").expect("scenario");
    for seed in [1, 2, 3] {
        let [nth, up, b, _] = by_policy(&with, seed);
        assert!(
            b.capacity_deficit_node_seconds < nth.capacity_deficit_node_seconds
                && b.capacity_deficit_node_seconds < up.capacity_deficit_node_seconds,
            "seed {seed}: booster {} nth-drain {} upstream {}",
            b.capacity_deficit_node_seconds,
            nth.capacity_deficit_node_seconds,
            up.capacity_deficit_node_seconds
        );
        assert!(b.violations.is_empty(), "{:?}", b.violations);
        let alone = run(&without, Policy::Booster, seed);
        assert!(b.capacity_deficit_node_seconds < alone.capacity_deficit_node_seconds);
    }
}

#[test]
fn never_interrupted_leaves_nothing_cordoned_under_the_booster() {
    let s = scenario::builtin("never-interrupted").expect("scenario");
    let [nth, _, b, _] = by_policy(&s, 1);
    assert_eq!(b.cordoned_at_end, 0);
    assert_eq!(
        calls(&b, "TerminateInstanceInAutoScalingGroup"),
        2,
        "both retired after their drain"
    );
    // NTH alone drains and leaves them cordoned: the contrast this scenario documents.
    assert!(nth.cordoned_at_end > 0);
}

#[test]
fn a_restart_mid_drain_does_not_boost_twice_and_the_drain_completes() {
    let s = scenario::builtin("restart-mid-drain").expect("scenario");
    assert!(!s.restarts.is_empty());
    let b = run(&s, Policy::Booster, 1);
    assert!(b.violations.is_empty(), "{:?}", b.violations);
    assert_eq!(calls(&b, "SetDesiredCapacity"), 1);
    assert_eq!(
        calls(&b, "TerminateInstanceInAutoScalingGroup"),
        1,
        "retired after its drain"
    );
    assert_eq!(b.interruptions, 0, "retired before its interruption");
    assert_eq!(b.cordoned_at_end, 0);
}

#[test]
fn at_max_size_the_booster_never_drains_into_no_capacity() {
    let s = scenario::builtin("at-max-size").expect("scenario");
    let [nth, up, b, _] = by_policy(&s, 1);
    assert_eq!(calls(&b, "SetDesiredCapacity"), 0, "no room to boost");
    assert!(b.capacity_deficit_node_seconds <= up.capacity_deficit_node_seconds);
    assert!(b.capacity_deficit_node_seconds < nth.capacity_deficit_node_seconds);
}

#[test]
fn a_blocking_budget_is_never_forced_by_the_booster() {
    let s = scenario::builtin("pdb-blocking").expect("scenario");
    let b = run(&s, Policy::Booster, 1);
    // The budget allows no eviction of the `ledger` pod: the booster must neither retire the
    // node under it nor force it; only the interruption takes it.
    assert_eq!(calls(&b, "TerminateInstanceInAutoScalingGroup"), 0);
    assert_eq!(b.interruptions, 1);
    assert_eq!(
        b.pods_killed, 1,
        "only the pod the budget protected dies, with its node"
    );
}

#[test]
fn scenario_files_refuse_nonsense_with_a_clear_error() {
    let bad = [
        ("name: x\ngroups: []\nworkload: []\n", "no groups"),
        (
            "name: x\ngroups: [{name: a, min: 5, max: 3, desired: 4}]\nworkload: []\n",
            "min <= desired <= max",
        ),
        (
            "name: x\ngroups: [{name: a, max: 3, desired: 2}]\nworkload: []\nsignals: [{group: b, at: 1m, lead: never}]\n",
            "unknown group b",
        ),
        ("name: x\ngroups: [{name: a, max: 3, desired: 2}]\nworkload: []\npodsPerNode: 0\n", "podsPerNode"),
        ("name: [\n", "not valid"),
        ("name: x\ngroups: [{name: a, max: 3, desired: 2, size: 4}]\nworkload: []\n", "not valid"),
    ];
    for (text, want) in bad {
        let err = Scenario::from_yaml(text).expect_err(text).to_string();
        assert!(err.contains(want), "{text:?}: {err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }
    assert!(scenario::builtin("nope")
        .expect_err("unknown")
        .to_string()
        .contains("storm"));
}

/// nth-drain and booster on a scenario given as YAML, seed 0; the booster broke nothing.
fn nth_and_booster(yaml: &str) -> (Report, Report) {
    let s = Scenario::from_yaml(yaml).expect("scenario");
    let b = run(&s, Policy::Booster, 0);
    assert!(b.violations.is_empty(), "{:?}", b.violations);
    (run(&s, Policy::NthDrain, 0), b)
}

/// The counterexample proptest found to "never more deficit than nth-drain", kept as a
/// scenario: a signal with a 139 s lead, then the workload grows by 10 pods at 201 s. The
/// booster used to run a drain of its own on the node NTH was already draining for its
/// interruption notice (79 s), retire it at 123 s and lose to nth-drain, whose group
/// replacement, launched two seconds before the growth, absorbed it. It now follows NTH's
/// drain (a second drain only doubles the evictions), retires the emptied node at 100 s with
/// decrement (the boost's replacement is still on its way and counts), and the pods Pending
/// meanwhile have Cluster Autoscaler add the node that absorbs the growth. Kept to hold the
/// reversal: fewer Pending samples before the growth, and no more deficit than nth-drain.
#[test]
fn growth_right_after_an_interruption_drain_no_longer_favours_nth_drain() {
    let (nth, b) = nth_and_booster(
        "name: growth-after-retire
duration: 50m
groups: [{name: spot, min: 1, max: 5, desired: 4, azs: [a, b], boot: {min: 60s, max: 60s}}]
workload:
  - {name: web, replicas: 21, pdbMaxUnavailable: 3, termination: {min: 5s, max: 20s}}
  - {name: critical, replicas: 4, pdbMaxUnavailable: 2, termination: {min: 10s, max: 10s}}
signals: [{group: spot, at: 60s, count: 1, lead: {min: 139s, max: 139s}}]
changes: [{at: 201s, app: web, replicas: 31}]
",
    );
    let pending_before_growth = |r: &Report| {
        r.series
            .iter()
            .filter(|p| p.t < 200 && p.pending_pods > 0)
            .count()
    };
    assert!(pending_before_growth(&b) < pending_before_growth(&nth));
    assert!(
        b.capacity_deficit_node_seconds <= nth.capacity_deficit_node_seconds,
        "the counterexample is back: {} vs {}",
        b.capacity_deficit_node_seconds,
        nth.capacity_deficit_node_seconds
    );
}

/// The second counterexample proptest found (after 2,133 passing cases): the booster is
/// down from 101 s to 160 s, the signal comes at 155 s with a 121 s lead, so NTH's
/// interruption drain starts at once under every policy. Cluster Autoscaler's scan at 160 s
/// adds a node for the Pending pods inside that second; the booster, back at 160 s, acted
/// one loop pass later when it recorded a boost in one pass and raised desired in the next
/// (one second of one node's pods, hence the one node-second of slack in the property).
/// Recorded and raised in the same pass, it is no longer behind.
#[test]
fn a_booster_down_at_the_signal_reacts_one_pass_late() {
    let (nth, b) = nth_and_booster(
        "name: down-at-signal
duration: 50m
groups: [{name: spot, min: 1, max: 5, desired: 4, azs: [a, b], boot: {min: 115s, max: 115s}}]
workload:
  - {name: web, replicas: 23, pdbMaxUnavailable: 2, termination: {min: 5s, max: 20s}}
  - {name: critical, replicas: 4, pdbMaxUnavailable: 1, termination: {min: 10s, max: 10s}}
signals: [{group: spot, at: 155s, count: 1, lead: {min: 121s, max: 121s}}]
restarts: [{at: 101s, down: 59s}]
",
    );
    let extra = b.capacity_deficit_node_seconds - nth.capacity_deficit_node_seconds;
    assert!(extra <= 1.0, "{extra}");
    assert!(
        extra <= 0.0,
        "raised in the pass that records: not behind NTH ({extra})"
    );
}

// ---- random scenarios ------------------------------------------------------------------

const BOOT_MAX_S: u64 = 150;

/// Settings the random scenarios vary: initial nodes, room above them, signals, their
/// spread, lead in seconds (None: never), start of the signals, restarts, budgets, how full
/// the nodes are, and a growth of the workload (Cluster Autoscaler scaling up).
fn random_scenario() -> impl Strategy<Value = Scenario> {
    (
        4u32..14,
        0u32..8,
        1u32..5,
        0u64..120,
        prop_oneof![3 => (60u64..1500).prop_map(Some), 1 => Just(None)],
        60u64..400,
        proptest::collection::vec((100u64..1500, 10u64..60), 0..3),
        prop_oneof![Just(None), Just(Some(1u32)), Just(Some(2u32))],
        (
            70u32..100,
            proptest::option::of((60u64..900, 1u32..30)),
            60u64..=BOOT_MAX_S,
        ),
    )
        .prop_map(
            |(desired, room, signals, within, lead, at, restarts, pdb, (fill, growth, boot))| {
                let ppn = 8u32;
                let pods = desired * ppn * fill / 100;
                let critical = desired.min(pods);
                Scenario {
                    name: "random".into(),
                    description: String::new(),
                    duration: Dur::from_mins(50),
                    pods_per_node: ppn,
                    groups: vec![GroupSpec {
                        name: "spot".into(),
                        min: 1,
                        max: desired + room,
                        desired,
                        azs: vec!["a".into(), "b".into()],
                        // One boot time per case: with a drawn boot per instance, a
                        // policy that launches earlier can still draw a longer boot and
                        // lose on luck alone (the `luck` test below shows one); the
                        // comparison is about the algorithm.
                        boot: Range::fixed(Dur::from_secs(boot)),
                        tags: Default::default(),
                        weight: 1,
                        capacity_rebalance: false,
                        eks_managed: false,
                        suspended_processes: vec!["AZRebalance".into()],
                        dry_pool: None,
                    }],
                    workload: vec![
                        AppSpec {
                            name: "web".into(),
                            replicas: pods - critical,
                            pdb_max_unavailable: pdb.map(|p| p + 1),
                            termination: Range {
                                min: Dur::from_secs(5),
                                max: Dur::from_secs(20),
                            },
                        },
                        AppSpec {
                            name: "critical".into(),
                            replicas: critical,
                            pdb_max_unavailable: pdb,
                            termination: Range::fixed(Dur::from_secs(10)),
                        },
                    ],
                    signals: vec![SignalSpec {
                        group: "spot".into(),
                        at: Dur::from_secs(at),
                        count: Some(signals),
                        fraction: None,
                        within: Dur::from_secs(within),
                        zone: None,
                        lead: match lead {
                            Some(s) => Lead::After(Range::fixed(Dur::from_secs(s))),
                            None => Lead::Never(Never::Never),
                        },
                        follow_through: None,
                    }],
                    // A tenant's forged Events around the genuine ones.
                    forged: vec![ForgedSpec {
                        group: "spot".into(),
                        at: Dur::from_secs(at / 2),
                        count: signals * 7,
                        within: Dur::from_secs(within + 600),
                    }],
                    // Cluster Autoscaler's own scale-up, racing the boosts.
                    changes: growth
                        .map(|(at, more)| ChangeSpec {
                            at: Dur::from_secs(at),
                            app: "web".into(),
                            replicas: pods - critical + more,
                        })
                        .into_iter()
                        .collect(),
                    restarts: restarts
                        .into_iter()
                        .map(|(at, down)| RestartSpec {
                            at: Dur::from_secs(at),
                            down: Dur::from_secs(down),
                        })
                        .collect(),
                    cluster_autoscaler: Default::default(),
                    timing: Default::default(),
                    booster: Config::default(),
                }
            },
        )
}

/// The lead time past which the booster has time for everything: the spread of the
/// signals, a boot, the drains one after the other (spacing plus a generous drain each),
/// and a minute of reaction and slack.
fn enough_lead(s: &Scenario) -> Dur {
    let sig = &s.signals[0];
    let n = u64::from(sig.count.unwrap_or(1));
    let spacing = s.booster.time_between_drains.as_millis() / 1000;
    Dur::from_secs(sig.within.as_millis() / 1000 + BOOT_MAX_S + n * (spacing + 90) + 60)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn booster_keeps_the_properties_and_never_loses_to_nth_drain(s in random_scenario(), seed in 0u64..1000) {
        let nth = run(&s, Policy::NthDrain, seed);
        let b = run(&s, Policy::Booster, seed);
        prop_assert!(b.violations.is_empty(), "{:?}", b.violations);
        prop_assert_eq!(b.desired_lowered, 0, "property 2");
        prop_assert_eq!(b.unsignalled_nodes_touched, 0, "property 11: a forged Event made it act");
        prop_assert!(b.peak_concurrent_drains <= s.booster.max_concurrent_drains + 1);
        // With the workload growing as well, nth-drain can be lucky (a launch of its own
        // that happens to absorb the growth): the first case found is kept, reversed since,
        // as `growth_right_after_an_interruption_drain_no_longer_favours_nth_drain`.
        // One node-second of slack: when the booster is down as the signal comes, it reacts
        // one loop pass after Cluster Autoscaler would (see
        // `a_booster_down_at_the_signal_reacts_one_pass_late`).
        if s.changes.is_empty() {
            prop_assert!(
                b.capacity_deficit_node_seconds <= nth.capacity_deficit_node_seconds + 1.0,
                "deficit booster {} > nth-drain {}",
                b.capacity_deficit_node_seconds,
                nth.capacity_deficit_node_seconds
            );
        }
        // Property 6: with time for the expiry to pass, nothing stays cordoned.
        let last = s.signals[0].at.as_millis() + s.signals[0].within.as_millis();
        if s.duration.as_millis() > last + s.booster.signal_expiry.as_millis() + 300_000 {
            prop_assert_eq!(b.cordoned_at_end, 0);
        }
        // With time for a boot and the drains, and room to boost, no capacity is missing.
        let room = s.groups[0].max - s.groups[0].desired;
        if let Lead::After(r) = s.signals[0].lead {
            if r.min >= enough_lead(&s)
                && room >= s.signals[0].count.unwrap_or(1)
                && s.restarts.is_empty()
                && s.changes.is_empty()
            {
                prop_assert_eq!(b.capacity_deficit_node_seconds, 0.0);
            }
        }
    }
}

/// Issue 29's promise: when a fifth of recommendations become interruptions, standing by
/// evicts at least three times fewer pods per recommendation than draining on every
/// recommendation; the adaptive rule, which also drains on its pool evidence, evicts fewer
/// too; and neither leaves pods pending longer than NTH's drain.
#[test]
fn standby_evicts_several_times_fewer_pods_at_a_low_follow_through() {
    let base = scenario::builtin("follow-through").expect("built-in");
    let points = booster_sim::sweep::sweep(
        &base,
        &[0.2],
        &[
            Policy::NthDrain,
            Policy::Booster,
            Policy::BoosterStandby,
            Policy::BoosterAdaptive,
        ],
        1,
    );
    let of = |p: Policy| points.iter().find(|x| x.policy == p).expect("point");
    let (nth, rebalance) = (of(Policy::NthDrain), of(Policy::Booster));
    for (p, times) in [
        (Policy::BoosterStandby, 3.0),
        (Policy::BoosterAdaptive, 1.5),
    ] {
        let x = of(p);
        assert!(
            x.disruptions_per_recommendation * times <= rebalance.disruptions_per_recommendation,
            "{p}: {:.1} pods per recommendation against {:.1} draining on each",
            x.disruptions_per_recommendation,
            rebalance.disruptions_per_recommendation
        );
        assert!(
            x.pending_pod_seconds <= nth.pending_pod_seconds,
            "{p}: {:.0} pending pod-seconds against nth-drain's {:.0}",
            x.pending_pod_seconds,
            nth.pending_pod_seconds
        );
    }
}

/// Workloads of one on signalled nodes: the booster moves each by surge, so none is ever
/// without a Ready pod; NTH alone evicts them (an outage while the successor starts) or
/// has its eviction refused until the pod dies with its node.
#[test]
fn workloads_of_one_never_lose_their_last_ready_pod_under_the_booster() {
    let s = scenario::builtin("workloads-of-one").expect("scenario");
    let mut nth_down = 0;
    for seed in [1, 2, 3] {
        for policy in [Policy::Booster, Policy::BoosterPlaceholder] {
            let r = run(&s, policy, seed);
            assert_eq!(r.zero_ready_seconds, 0, "{policy:?} seed {seed}");
            assert!(r.surges_handed_over > 0, "{policy:?} seed {seed}: surged");
            assert!(r.violations.is_empty(), "{:?}", r.violations);
        }
        let nth = run(&s, Policy::NthDrain, seed);
        assert_eq!(nth.surges_handed_over, 0, "NTH evicts");
        nth_down += nth.zero_ready_seconds;
    }
    assert!(
        nth_down > 0,
        "NTH alone leaves some workload without a Ready pod"
    );
}
