//! The CA-status parser against real and hand-made samples, malformed input, and arbitrary bytes.

use std::path::{Path, PathBuf};

use booster_core::ca_status::{parse, parse_bytes, CaStatusError, CaStatusFormat};
use booster_core::{CaNodeGroup, Timestamp};
use proptest::prelude::*;

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ca-status")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn group<'a>(groups: &'a [CaNodeGroup], name: &str) -> &'a CaNodeGroup {
    groups
        .iter()
        .find(|g| g.name == name)
        .unwrap_or_else(|| panic!("no group {name:?} in {groups:?}"))
}

#[test]
fn legacy_fixture() {
    let st = parse(&fixture("legacy-text.txt")).expect("parses");
    assert_eq!(st.format, CaStatusFormat::Legacy);
    assert_eq!(st.autoscaler_status, None);
    assert_eq!(
        st.time,
        Timestamp::parse_rfc3339("2023-03-27T10:38:18.722Z").ok()
    );
    assert_eq!(st.node_groups.len(), 2);
    let spot = group(&st.node_groups, "spot-workers");
    assert_eq!(
        (
            spot.ready,
            spot.unready,
            spot.not_started,
            spot.registered,
            spot.long_unregistered
        ),
        (4, 0, 1, 5, 0)
    );
    assert_eq!(
        (spot.cloud_provider_target, spot.min_size, spot.max_size),
        (6, 3, 10)
    );
    assert_eq!(spot.health.as_deref(), Some("Healthy"));
    assert_eq!(spot.scale_up.as_deref(), Some("InProgress"));
    let od = group(&st.node_groups, "ondemand-system");
    assert_eq!((od.ready, od.cloud_provider_target, od.max_size), (5, 5, 6));
}

#[test]
fn legacy_before_2020_without_resource_unready_or_long_unregistered() {
    let st = parse(&fixture("legacy-pre2020.txt")).expect("parses");
    assert_eq!(st.format, CaStatusFormat::Legacy);
    let g = group(&st.node_groups, "nodes.k8s.example.com");
    assert_eq!(
        (
            g.ready,
            g.registered,
            g.cloud_provider_target,
            g.min_size,
            g.max_size
        ),
        (3, 3, 3, 2, 8)
    );
    assert_eq!(g.long_unregistered, 0);
}

#[test]
fn legacy_initializing_has_no_groups() {
    let st = parse(&fixture("legacy-initializing.txt")).expect("parses");
    assert_eq!(st.autoscaler_status.as_deref(), Some("Initializing"));
    assert!(st.is_initializing());
    assert!(st.node_groups.is_empty());
}

#[test]
fn legacy_names_are_the_rest_of_the_line() {
    let st = parse(&fixture("legacy-odd-names.txt")).expect("parses");
    let names: Vec<&str> = st.node_groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "eks-spot (m5.large): team.a:blue",
            "Name: with: colons",
            "eksctl-prod-nodegroup-spot-1-NodeGroup-1A2B3C4D5E6F"
        ]
    );
    let odd = &st.node_groups[0];
    assert_eq!(odd.health.as_deref(), Some("Unhealthy"));
    assert!(!odd.is_healthy());
    assert!(odd.is_backing_off());
    assert_eq!(
        (
            odd.ready,
            odd.unready,
            odd.cloud_provider_target,
            odd.max_size
        ),
        (1, 1, 4, 50)
    );
    assert_eq!(st.node_groups[1].long_unregistered, 1);
    // +0100 CET is converted to UTC.
    assert_eq!(
        st.time,
        Timestamp::parse_rfc3339("2024-01-02T02:04:05.6Z").ok()
    );
}

#[test]
fn legacy_with_many_groups() {
    let mut text = String::from(
        "Cluster-autoscaler status at 2023-03-27 10:38:18 +0000 UTC:\nCluster-wide:\nNodeGroups:\n",
    );
    for i in 0..500 {
        text.push_str(&format!(
            "  Name:        group-{i}\n  Health:      Healthy (ready={i} unready=0 notStarted=0 longNotStarted=0 registered={i} longUnregistered=0 cloudProviderTarget={i} (minSize=0, maxSize=1000))\n\n"
        ));
    }
    let st = parse(&text).expect("parses");
    assert_eq!(st.node_groups.len(), 500);
    assert_eq!(st.node_groups[499].name, "group-499");
    assert_eq!(st.node_groups[499].cloud_provider_target, 499);
}

#[test]
fn yaml_fixture() {
    let st = parse(&fixture("yaml.yaml")).expect("parses");
    assert_eq!(st.format, CaStatusFormat::Yaml);
    assert_eq!(st.autoscaler_status.as_deref(), Some("Running"));
    assert_eq!(
        st.time,
        Timestamp::parse_rfc3339("2024-06-10T12:00:00.123Z").ok()
    );
    let spot = group(&st.node_groups, "spot-workers");
    assert_eq!(
        (
            spot.ready,
            spot.registered,
            spot.cloud_provider_target,
            spot.min_size,
            spot.max_size
        ),
        (6, 6, 6, 3, 10)
    );
    assert_eq!(spot.scale_up.as_deref(), Some("NoActivity"));
    assert_eq!(group(&st.node_groups, "ondemand-system").max_size, 6);
}

#[test]
fn yaml_any_key_order_nulls_missing_and_unknown_fields() {
    let st = parse(&fixture("yaml-reordered.yaml")).expect("parses");
    assert_eq!(st.autoscaler_status.as_deref(), Some("Running"));
    let g = group(&st.node_groups, "spot workers (c6i): blue.v2");
    assert_eq!(g.health.as_deref(), Some("Unhealthy"));
    assert_eq!(
        (g.ready, g.unready, g.not_started, g.registered),
        (4, 2, 0, 6)
    );
    assert_eq!(
        (g.cloud_provider_target, g.min_size, g.max_size),
        (7, 0, 20)
    );
    assert!(g.is_backing_off());
    let od = group(&st.node_groups, "ondemand");
    assert_eq!(
        (od.ready, od.max_size, od.scale_up.as_deref()),
        (0, 0, None)
    );
}

#[test]
fn yaml_initializing_with_no_groups() {
    let st = parse(&fixture("yaml-initializing.yaml")).expect("parses");
    assert!(st.is_initializing());
    assert!(st.node_groups.is_empty());
}

/// Every sample shipped in ../shared/fixtures parses too (when that folder is beside the checkout).
#[test]
fn shared_fixtures_parse() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/ca-status");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!(
            "SKIPPED shared_fixtures_parse: {} not present (copies are in tests/fixtures)",
            dir.display()
        );
        return;
    };
    let mut n = 0;
    for e in entries.flatten() {
        let bytes = std::fs::read(e.path()).expect("readable");
        let st = parse_bytes(&bytes).unwrap_or_else(|err| panic!("{}: {err}", e.path().display()));
        assert!(!st.node_groups.is_empty(), "{}", e.path().display());
        n += 1;
    }
    assert!(n >= 2, "expected both formats in {}", dir.display());
}

#[test]
fn malformed_inputs_give_typed_errors_that_say_where() {
    let legacy =
        "Cluster-autoscaler status at 2023-03-27 10:38:18 +0000 UTC:\nCluster-wide:\nNodeGroups:\n";
    let cases: Vec<(String, &str, &str)> = vec![
        (String::new(), "empty", "empty"),
        ("   \n\t".into(), "empty", "empty"),
        ("hello world".into(), "yaml", "YAML"),
        ("- a\n- b".into(), "yaml", "YAML"),
        ("{unclosed: [".into(), "yaml", "YAML"),
        ("foo: bar\nbaz: 1".into(), "not_ca_status", "autoscalerStatus"),
        ("nodeGroups:\n- health: {status: Healthy}".into(), "yaml", "nodeGroups[0] has no name"),
        (
            "nodeGroups:\n- name: a\n  health: {nodeCounts: {registered: {ready: lots}}}".into(),
            "yaml",
            "YAML",
        ),
        (
            "nodeGroups:\n- name: a\n  health: {maxSize: -3}".into(),
            "yaml",
            "YAML",
        ),
        (format!("{legacy}  Health:      Healthy (ready=1)\n"), "legacy", "line 4"),
        (format!("{legacy}  Name:        a\n"), "legacy", "line 4: group \"a\" has no `Health:` line"),
        (format!("{legacy}  Name:        \n"), "legacy", "line 4"),
        (
            format!("{legacy}  Name:        a\n  Health:      Healthy (ready=x1)\n"),
            "legacy",
            "line 5: `ready` is \"x1\"",
        ),
        (
            format!("{legacy}  Name:        a\n  Health:      (ready=1)\n"),
            "legacy",
            "no status word",
        ),
        (
            format!("{legacy}  Name:        a\n  Health:      Healthy (ready=99999999999)\n"),
            "legacy",
            "not a count",
        ),
        (
            format!("{legacy}  Name:        a\n  Health:      Healthy (ready=1)\n  Health:      Healthy (ready=1)\n"),
            "legacy",
            "second `Health:`",
        ),
        (
            "Cluster-autoscaler status at now:\nsomething else entirely\n".into(),
            "not_ca_status",
            "legacy header",
        ),
    ];
    for (input, label, needle) in cases {
        let err = parse(&input).expect_err(&format!("{input:?} must not parse"));
        assert_eq!(err.metric_label(), label, "{input:?}: {err}");
        let msg = err.to_string();
        assert!(
            msg.contains(needle),
            "{input:?}: message {msg:?} lacks {needle:?}"
        );
        assert!(!msg.contains('\n'), "one line: {msg:?}");
    }
    assert!(matches!(
        parse_bytes(b"time: \xff\xfe"),
        Err(CaStatusError::NotUtf8 { offset: 6 })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Arbitrary bytes never panic.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_bytes(&bytes);
    }

    /// Arbitrary text never panics.
    #[test]
    fn arbitrary_strings_never_panic(s in ".{0,400}") {
        let _ = parse(&s);
    }

    /// Text built from the format's own pieces, in any order, never panics.
    #[test]
    fn shuffled_format_pieces_never_panic(lines in proptest::collection::vec(prop_oneof![
        Just("Cluster-autoscaler status at 2023-03-27 10:38:18 +0000 UTC:".to_string()),
        Just("NodeGroups:".to_string()),
        Just("Cluster-wide:".to_string()),
        Just("Initializing".to_string()),
        "  Name: {0,9}[ -~]{0,30}",
        "  Health: {0,6}(Healthy|Unhealthy|\\(|)( ?\\(?[a-zA-Z]{0,12}=-?[0-9]{0,12}[,)]{0,2}){0,9}",
        "  ScaleUp: {0,5}[A-Za-z(]{0,12}",
        "nodeGroups:", "- name: [a-z]{0,5}", "  health: \\{status: [A-Za-z]{0,8}\\}",
        "autoscalerStatus: [A-Za-z]{0,10}", "[ -~]{0,40}",
    ], 0..30)) {
        let _ = parse(&lines.join("\n"));
    }

    /// A generated legacy status reads back exactly what was written.
    #[test]
    fn legacy_round_trip(groups in proptest::collection::vec(
        ("[a-zA-Z0-9][a-zA-Z0-9 ().:_-]{0,40}[a-zA-Z0-9)]", 0u32..500, 0u32..50, 0u32..500, 0u32..1000), 0..20)) {
        let mut text = String::from("Cluster-autoscaler status at 2023-03-27 10:38:18.7 +0000 UTC m=+1.5:\nCluster-wide:\n  Health:      Healthy (ready=1)\nNodeGroups:\n");
        for (name, ready, unready, target, max) in &groups {
            text.push_str(&format!("  Name:        {name}\n  Health:      Healthy (ready={ready} unready={unready} (resourceUnready=0) notStarted=0 longNotStarted=0 registered={ready} longUnregistered=0 cloudProviderTarget={target} (minSize=0, maxSize={max}))\n  ScaleUp:     NoActivity (ready={ready} cloudProviderTarget={target})\n\n"));
        }
        let st = parse(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(st.node_groups.len(), groups.len());
        for (g, (name, ready, unready, target, max)) in st.node_groups.iter().zip(&groups) {
            prop_assert_eq!(&g.name, name.trim());
            prop_assert_eq!((g.ready, g.unready, g.cloud_provider_target, g.max_size), (*ready, *unready, *target, *max));
        }
    }
}
