//! The report as a whole, from a snapshot: its rows, its table, its sentences and its JSON.

use booster_core::ledger::{Boost, DrainState};
use booster_core::Config;

use super::report::Report;

#[test]
fn a_signalled_node_mid_drain_shows_its_boost_replacement_drain_and_expiry() {
    use booster_core::testkit::{t, SnapshotBuilder};
    let snap = SnapshotBuilder::new(t(400))
        .group("spot", 1, 4, 8)
        .signal("spot-0", t(100))
        .with_node("spot-0", |n| {
            n.unschedulable = true;
            n.pods_to_evict = 3;
            n.unevictable = vec!["default/db: do-not-disrupt".into()];
        })
        .with_node("spot-3", |n| {
            n.protected_for = Some("spot-0".into());
            n.scale_down_disabled = true;
        })
        .entry("spot-0", t(100), |e| {
            e.boost = Boost::Applied {
                to: 4,
                at: t(101),
                assumed: false,
            };
            e.drain = DrainState::Draining {
                since: t(300),
                attempt: 1,
            };
        })
        .build();
    let cfg = Config::default();
    let plan = booster_core::decide(&snap, &cfg);
    let r = Report::of(&snap, &plan, &cfg);
    assert_eq!(r.nodes.len(), 1);
    let n = &r.nodes[0];
    assert_eq!((n.drain.state, n.drain.pods_left), ("draining", 3));
    assert_eq!((n.boost.state, n.boost.ours), ("applied", Some(true)));
    assert_eq!(
        n.replacement.as_ref().map(|r| r.node.as_str()),
        Some("spot-3")
    );
    assert_eq!(n.signal_age_s, 300);
    assert_eq!(n.expires_in_s, 30 * 60 - 300);
    assert_eq!(r.groups.len(), 1);
    assert_eq!(r.groups[0].desired, Some(4));
    let table = r.table();
    assert!(table.contains("spot-0 (i-spot0)"), "{table}");
    assert!(table.contains("→4 ours"), "{table}");
    assert!(table.contains("#1 3 left, 1 kept"), "{table}");
    assert!(table.contains("spot-3 Ready"), "{table}");
    assert!(
        table.contains("group spot: desired 4 (min 1, max 8)"),
        "{table}"
    );
    let text = r.explain("spot-0", &snap);
    assert!(
        text.contains("Drain: attempt 1 started 1m40s ago, 3 pods left."),
        "{text}"
    );
    assert!(text.contains("default/db: do-not-disrupt"), "{text}");
    assert!(text.contains("The signal expires in 25m"), "{text}");
    assert!(r.explain("spot-3", &snap).contains("stands in for spot-0"));
    assert!(r.explain("nowhere", &snap).contains("no such Node"));
    let json = serde_json::to_value(&r).expect("json");
    assert_eq!(json["nodes"][0]["drain"]["state"], "draining");
}
