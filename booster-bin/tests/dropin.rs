//! Drop-in for the Go project DocPlanner/aws-spots-booster: each flag of its README's flag
//! table, written as that table's "Example" column writes it, and its example manifest's
//! arguments, start this binary (`--print-config`) with the meaning its README gives.
//! The examples are restated here from its README; where its own binary would read them
//! otherwise (Go's bool flags, a positive window), the README's "What still differs" says so.

use std::process::Command;

use booster_core::Dur;
use serde_json::Value;

fn print_config(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_aws-spots-booster"))
        .args(args)
        .arg("--print-config")
        .env_clear()
        .output()
        .expect("binary runs");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn at<'a>(doc: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(doc, |v, k| {
        v.get(k).unwrap_or_else(|| panic!("{path} in {doc}"))
    })
}

fn dur(v: &Value) -> Dur {
    serde_json::from_value(v.clone()).expect("a duration")
}

#[test]
fn every_example_of_the_go_projects_flag_table_means_what_its_readme_says() {
    let d = |s: &str| Dur::parse(s).expect("duration");
    // (the README's example, where the setting shows, what it must be)
    let cases: Vec<(&[&str], &str, Value)> = vec![
        (
            &["--connection-mode", "incluster"],
            "connectionMode",
            "incluster".into(),
        ),
        (&["--dry-run", "true"], "engine.dryRun", true.into()),
        (
            &["--ca-status-namespace", "default"],
            "caStatus.namespace",
            "default".into(),
        ),
        (
            &["--ca-status-name", "another-cm"],
            "caStatus.name",
            "another-cm".into(),
        ),
        (
            &["--ignored-autoscaling-groups", "eks-one,eks-two"],
            "engine.ignoredGroups",
            serde_json::json!(["eks-one", "eks-two"]),
        ),
        (
            &["--extra-nodes-over-calculation", "3"],
            "engine.extraNodesPerSignal",
            3.into(),
        ),
        (
            &["--disable-drain", "true"],
            "engine.disableDrain",
            true.into(),
        ),
        (
            &["--max-concurrent-drains", "7"],
            "engine.maxConcurrentDrains",
            7.into(),
        ),
        (
            &["--ignore-pods-grace-period", "true"],
            "ignorePodsGracePeriod",
            true.into(),
        ),
        (
            &["--metrics-port", "8080"],
            "metrics",
            "0.0.0.0:8080".into(),
        ),
        (
            &["--metrics-host", "0.1.0.2"],
            "metrics",
            "0.1.0.2:2112".into(),
        ),
    ];
    for (args, path, want) in cases {
        assert_eq!(at(&print_config(args), path), &want, "{args:?}");
    }
    let durations: Vec<(&[&str], &str, Dur)> = vec![
        (&["--drain-timeout", "2m"], "engine.drainTimeout", d("120s")),
        (
            &["--time-between-drains", "1m"],
            "engine.timeBetweenDrains",
            d("60s"),
        ),
        // Its default and its example are negative: the window reaching back from now.
        (
            &["--max-time-consider-new-node", "-20m"],
            "engine.newNodeWindow",
            d("20m"),
        ),
        (
            &["--max-time-consider-new-node=-10m"],
            "engine.newNodeWindow",
            d("10m"),
        ),
        (
            &["--max-time-consider-new-node", "20m"],
            "engine.newNodeWindow",
            d("20m"),
        ),
    ];
    for (args, path, want) in durations {
        assert_eq!(dur(at(&print_config(args), path)), want, "{args:?}");
    }
    // `--kubeconfig "~/.kube/config"` is accepted (it is read only when connecting).
    print_config(&["--kubeconfig", "~/.kube/config"]);
}

#[test]
fn the_go_projects_defaults_and_example_manifest_start_this_binary() {
    // No flags: the defaults its README's table gives (time-between-drains: 60s there).
    let doc = print_config(&[]);
    assert_eq!(at(&doc, "connectionMode"), "kubectl");
    assert_eq!(at(&doc, "caStatus.namespace"), "kube-system");
    assert_eq!(at(&doc, "caStatus.name"), "cluster-autoscaler-status");
    assert_eq!(at(&doc, "engine.dryRun"), false);
    assert_eq!(at(&doc, "engine.disableDrain"), false);
    assert_eq!(at(&doc, "engine.extraNodesPerSignal"), 0);
    assert_eq!(at(&doc, "engine.maxConcurrentDrains"), 5);
    assert_eq!(at(&doc, "metrics"), "0.0.0.0:2112");
    let d = |p: &str| dur(at(&doc, p));
    assert_eq!(d("engine.drainTimeout"), Dur::from_secs(120));
    assert_eq!(d("engine.timeBetweenDrains"), Dur::from_secs(60));
    assert_eq!(d("engine.newNodeWindow"), Dur::from_secs(600));

    // docs/examples/simple-deployment.yaml's arguments, `=` form included.
    let doc = print_config(&[
        "--zap-log-level=debug",
        "--max-concurrent-drains=5",
        "--time-between-drains=60s",
        "--extra-nodes-over-calculation=3",
    ]);
    assert_eq!(at(&doc, "logLevel"), "debug");
    assert_eq!(at(&doc, "engine.maxConcurrentDrains"), 5);
    assert_eq!(at(&doc, "engine.extraNodesPerSignal"), 3);
    assert_eq!(
        dur(at(&doc, "engine.timeBetweenDrains")),
        Dur::from_secs(60)
    );

    // A bool written with its value, then more flags: they count here.
    let doc = print_config(&["--dry-run", "false", "--max-concurrent-drains", "2"]);
    assert_eq!(at(&doc, "engine.dryRun"), false);
    assert_eq!(at(&doc, "engine.maxConcurrentDrains"), 2);
}

#[test]
fn help_lists_the_go_projects_spellings() {
    let out = Command::new(env!("CARGO_BIN_EXE_aws-spots-booster"))
        .arg("--help")
        .output()
        .expect("binary runs");
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--ca-status-namespace",
        "--ca-status-name",
        "--zap-log-level",
        "--max-time-consider-new-node",
        "--extra-nodes-over-calculation",
        "--ignored-autoscaling-groups",
    ] {
        assert!(help.contains(flag), "{flag} not in --help:\n{help}");
    }
}

#[test]
fn every_command_has_help_with_an_example() {
    for args in [
        &["--help"][..],
        &["simulate", "--help"],
        &["inspect", "--help"],
        &["inspect", "ca-status", "--help"],
        &["plan", "--help"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_aws-spots-booster"))
            .args(args)
            .output()
            .expect("binary runs");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{args:?}");
        assert!(help.contains("Example"), "{args:?}:\n{help}");
        assert!(help.contains("aws-spots-booster "), "{args:?}:\n{help}");
    }
}

#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_aws-spots-booster"))
        .args(["simulate", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("binary runs");
    // `| head -c 0`: the reader is gone before the first line (the simulation takes
    // seconds before it writes anything).
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("ends");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {err}", out.status);
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.trim().is_empty(), "nothing said: {err}");
}
