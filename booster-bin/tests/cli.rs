//! The binary's offline commands, run as a user runs them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_aws-spots-booster"))
}

fn run_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("binary ends")
}

fn fixture_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![root.join("../booster-core/tests/fixtures/ca-status")];
    let shared = root.join("../../shared/fixtures/ca-status");
    if shared.is_dir() {
        dirs.push(shared);
    } else {
        eprintln!(
            "SKIPPED ../shared/fixtures: not beside this checkout; the repository copies are used"
        );
    }
    dirs
}

const KEYS: [&str; 11] = [
    "name",
    "health",
    "ready",
    "unready",
    "notStarted",
    "registered",
    "longUnregistered",
    "cloudProviderTarget",
    "minSize",
    "maxSize",
    "scaleUp",
];

#[test]
fn inspect_ca_status_parses_every_fixture_into_the_documented_json() {
    let mut seen = 0;
    for dir in fixture_dirs() {
        for entry in std::fs::read_dir(&dir).expect("fixture dir").flatten() {
            let path = entry.path();
            let out = bin()
                .args(["inspect", "ca-status"])
                .arg(&path)
                .output()
                .expect("runs");
            assert!(
                out.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
            let obj = v.as_object().expect("an object");
            let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(
                keys,
                ["autoscalerStatus", "format", "nodeGroups"],
                "{}",
                path.display()
            );
            let format = obj["format"].as_str().expect("format is a string");
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            assert_eq!(
                format,
                if ext == "txt" { "legacy" } else { "yaml" },
                "{}",
                path.display()
            );
            assert!(obj["autoscalerStatus"].is_string() || obj["autoscalerStatus"].is_null());
            for g in obj["nodeGroups"]
                .as_array()
                .expect("nodeGroups is an array")
            {
                let g = g.as_object().expect("group object");
                let mut gk: Vec<&str> = g.keys().map(String::as_str).collect();
                gk.sort_unstable();
                let mut want = KEYS.to_vec();
                want.sort_unstable();
                assert_eq!(gk, want);
                for k in &KEYS[2..10] {
                    assert!(g[*k].is_u64(), "{k} is an integer in {}", path.display());
                }
            }
            seen += 1;
        }
    }
    assert!(seen >= 7, "expected the repository's fixtures, saw {seen}");
}

#[test]
fn inspect_reads_standard_input() {
    let text = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../booster-core/tests/fixtures/ca-status/legacy-text.txt"
    ))
    .expect("fixture");
    let out = run_with_stdin(&["inspect", "ca-status", "-"], &text);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["nodeGroups"][0]["name"], "spot-workers");
    assert_eq!(v["nodeGroups"][0]["cloudProviderTarget"], 6);
}

#[test]
fn inspect_rejects_what_is_not_a_ca_status_with_one_line() {
    for input in [
        &b""[..],
        b"hello: world\n",
        b"{bad",
        b"\xff\xfe\x00",
        b"Cluster-autoscaler status at x:\nNodeGroups:\n  Name: a\n",
    ] {
        let out = run_with_stdin(&["inspect", "ca-status", "-"], input);
        assert!(!out.status.success(), "{input:?} accepted");
        assert!(out.stdout.is_empty(), "nothing on stdout for {input:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "one line for {input:?}: {err:?}"
        );
        assert!(err.starts_with("error: -: "), "{err:?}");
    }
    let missing = bin()
        .args(["inspect", "ca-status", "/nonexistent/status"])
        .output()
        .expect("runs");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/status"));
}

#[test]
fn plan_prints_the_plan_for_the_example_snapshot() {
    let snap = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/snapshot.json");
    let out = bin()
        .args(["plan", "--snapshot", snap])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON plan");
    assert_eq!(v["actions"][0]["action"], "recordSignal");
    assert_eq!(v["actions"][0]["entry"]["boost"]["to"], 5);
    assert_eq!(v["dryRun"], false);

    let dry = run_with_stdin(
        &["plan", "--snapshot", snap, "--config", "-"],
        br#"{"dryRun": true, "maxConcurrentDrains": 2}"#,
    );
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let d: serde_json::Value = serde_json::from_slice(&dry.stdout).expect("JSON plan");
    assert_eq!(d["dryRun"], true);
    assert_eq!(d["actions"], v["actions"]);

    let bad = run_with_stdin(&["plan", "--snapshot", "-"], b"{\"now\": 3}");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not a Snapshot"));
}
