//! A whole simulated storm per policy: the simulator's own speed (`make run` replays every
//! built-in scenario under every policy).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};

/// A whole simulated storm (45 simulated minutes, 20 nodes, 158 pods) per policy.
fn simulator(c: &mut Criterion) {
    let mut g = c.benchmark_group("simulate_storm");
    g.sample_size(10);
    let Ok(storm) = booster_sim::scenario::builtin("storm") else {
        return;
    };
    for p in booster_sim::Policy::ALL {
        g.bench_function(p.as_str(), |b| {
            b.iter(|| booster_sim::run(black_box(&storm), p, 1))
        });
    }
    g.finish();
}

criterion_group!(benches, simulator);
criterion_main!(benches);
