//! Prints every booster action (Holds left out) of one built-in scenario:
//! `cargo run -p booster-sim --example trace -- SCENARIO|FILE.yaml [SEED] [POLICY]`.
use booster_core::Action;
use booster_sim::{self as sim, scenario, Policy, START};

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "single-signal".into());
    let seed = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    let sc = if name.ends_with(".yaml") {
        match std::fs::read_to_string(&name).map(|t| booster_sim::Scenario::from_yaml(&t)) {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return eprintln!("{e}"),
            Err(e) => return eprintln!("{e}"),
        }
    } else {
        match scenario::builtin(&name) {
            Ok(s) => s,
            Err(e) => return eprintln!("{e}"),
        }
    };
    let policy = args
        .next()
        .and_then(|p| Policy::parse(&p))
        .unwrap_or(Policy::Booster);
    let r = sim::run_traced(&sc, policy, seed, &mut |s, plan| {
        for a in plan
            .actions
            .iter()
            .filter(|a| !matches!(a, Action::Hold { .. }))
        {
            println!("{:>6}s  {a}", s.now.since(START).as_millis() / 1000);
        }
    });
    for p in r
        .series
        .iter()
        .filter(|p| p.pending_pods > 0 || p.usable_nodes < p.needed_nodes)
    {
        println!(
            "t={}s ready={} usable={:.2} needed={:.2} pending={}",
            p.t, p.ready_nodes, p.usable_nodes, p.needed_nodes, p.pending_pods
        );
    }
}
