//! Parser throughput and `decide` at cluster sizes (200 groups, 10% of nodes signalled,
//! half of those already in the ledger in various states).

use std::hint::black_box;

use booster_core::ca_status::parse;
use booster_core::ledger::{Boost, DrainState, Entry};
use booster_core::testkit::{mk_ca_group, mk_instance, mk_node, nth_event, t, T0};
use booster_core::{decide, CaObservation, CaStatus, CaStatusFormat, Config, Group, Snapshot};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn legacy_status(groups: usize) -> String {
    let mut s = String::from("Cluster-autoscaler status at 2023-03-27 10:38:18.722053187 +0000 UTC m=+1998.421365271:\nCluster-wide:\n  Health:      Healthy (ready=10 unready=0 (resourceUnready=0) notStarted=0 longNotStarted=0 registered=10 longUnregistered=0)\nNodeGroups:\n");
    for i in 0..groups {
        s.push_str(&format!("  Name:        eks-spot-workers-{i}-NodeGroup-1A2B3C\n  Health:      Healthy (ready={i} unready=0 (resourceUnready=0) notStarted=1 longNotStarted=0 registered={i} longUnregistered=0 cloudProviderTarget={i} (minSize=1, maxSize=100))\n               LastProbeTime:      2023-03-27 10:38:18.722053187 +0000 UTC m=+1998.421365271\n               LastTransitionTime: 2023-03-27 10:25:12.791878569 +0000 UTC m=+1192.491190653\n  ScaleUp:     NoActivity (ready={i} cloudProviderTarget={i})\n               LastProbeTime:      2023-03-27 10:38:18.722053187 +0000 UTC m=+1998.421365271\n               LastTransitionTime: 2023-03-27 10:25:12.791878569 +0000 UTC m=+1192.491190653\n  ScaleDown:   NoCandidates (candidates=0)\n               LastProbeTime:      2023-03-27 10:38:18.722053187 +0000 UTC m=+1998.421365271\n               LastTransitionTime: 2023-03-27 10:05:23.104429118 +0000 UTC m=+2.803741202\n\n"));
    }
    s
}

fn yaml_status(groups: usize) -> String {
    let mut s = String::from(
        "time: 2024-06-10 12:00:00.123456789 +0000 UTC\nautoscalerStatus: Running\nnodeGroups:\n",
    );
    for i in 0..groups {
        s.push_str(&format!("- name: eks-spot-workers-{i}\n  health:\n    status: Healthy\n    nodeCounts:\n      registered:\n        total: {i}\n        ready: {i}\n        notStarted: 0\n        unready:\n          total: 0\n          resourceUnready: 0\n      longUnregistered: 0\n      unregistered: 0\n    cloudProviderTarget: {i}\n    minSize: 1\n    maxSize: 100\n    lastProbeTime: \"2024-06-10T12:00:00.1Z\"\n    lastTransitionTime: \"2024-06-01T08:00:00Z\"\n  scaleUp:\n    status: NoActivity\n    lastProbeTime: \"2024-06-10T12:00:00.1Z\"\n    lastTransitionTime: \"2024-06-01T08:00:00Z\"\n  scaleDown:\n    status: NoCandidates\n    lastProbeTime: \"2024-06-10T12:00:00.1Z\"\n    lastTransitionTime: \"2024-06-01T08:00:00Z\"\n"));
    }
    s
}

/// `nodes` nodes over 200 groups, 10% signalled; of those, half are in the ledger.
pub fn cluster(nodes: usize) -> Snapshot {
    let groups = 200;
    let now = t(600);
    let mut s = Snapshot {
        now,
        ..Snapshot::default()
    };
    for g in 0..groups {
        s.groups.push(Group {
            name: format!("group-{g}"),
            min_size: 0,
            max_size: (nodes / groups + 20) as u32,
            desired: 0,
            ..Group::default()
        });
    }
    for i in 0..nodes {
        let g = i % groups;
        let name = format!("ip-10-0-{}-{}.eu-west-1.compute.internal", i / 250, i % 250);
        let mut n = mk_node(&name, T0);
        n.pods_to_evict = (i % 7) as u32;
        let id = n.instance_id.clone().unwrap_or_default();
        s.groups[g].instances.push(mk_instance(&id));
        s.groups[g].desired += 1;
        if i % 10 == 0 {
            let at = t(100 + (i % 400) as u64);
            s.signals.push(nth_event(&name, at));
            n.rebalance_taint = true;
            n.tainted_at = Some(at);
            if i % 20 == 0 {
                let boost = match i % 60 {
                    0 => Boost::Applying {
                        from: 1,
                        to: 2,
                        at: t(110),
                    },
                    20 => Boost::Applied {
                        to: 2,
                        at: t(110),
                        assumed: false,
                    },
                    _ => Boost::Queued {
                        reason: booster_core::Reason::AtMaxSize,
                    },
                };
                let drain = if i % 80 == 0 {
                    DrainState::Draining {
                        since: t(300),
                        attempt: 1,
                    }
                } else {
                    DrainState::NotStarted
                };
                s.ledger.entries.insert(
                    name.clone(),
                    Entry {
                        instance_id: id,
                        group: format!("group-{g}"),
                        signal_at: t(100),
                        boost,
                        drain,
                        released_at: None,
                        fallback: None,
                        retiring: None,
                        cordoned_before: false,
                        pool: String::new(),
                        outcome: None,
                    },
                );
                n.unschedulable = true;
            }
        }
        s.nodes.push(n);
    }
    s.ca_status = CaObservation::Parsed {
        status: CaStatus {
            format: CaStatusFormat::Yaml,
            time: Some(now),
            autoscaler_status: Some("Running".into()),
            node_groups: s.groups.iter().map(mk_ca_group).collect(),
        },
        updated_at: now,
    };
    s
}

fn parser(c: &mut Criterion) {
    let mut g = c.benchmark_group("ca_status_parse");
    for (name, text) in [
        ("legacy_200_groups", legacy_status(200)),
        ("yaml_200_groups", yaml_status(200)),
    ] {
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_function(name, |b| b.iter(|| parse(black_box(&text))));
    }
    g.finish();
}

fn engine(c: &mut Criterion) {
    let mut g = c.benchmark_group("decide");
    let cfg = Config::default();
    for n in [100usize, 1_000, 5_000, 20_000] {
        let s = cluster(n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &s, |b, s| {
            b.iter(|| decide(black_box(s), &cfg))
        });
    }
    g.finish();
}

criterion_group!(benches, parser, engine);
criterion_main!(benches);
