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

fn stdout_json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

fn deficit(doc: &serde_json::Value, policy: &str) -> f64 {
    doc["reports"]
        .as_array()
        .expect("reports")
        .iter()
        .find(|r| r["policy"] == policy)
        .and_then(|r| r["capacityDeficitNodeSeconds"].as_f64())
        .expect("the policy ran")
}

#[test]
fn simulate_storm_json_shows_the_booster_ahead_of_both_alternatives() {
    let out = run_with_stdin(&["simulate", "--scenario", "storm", "--json"], b"");
    let doc = stdout_json(&out);
    let b = deficit(&doc, "booster");
    assert!(b < deficit(&doc, "upstream") && b < deficit(&doc, "nth-drain"));
    let calls = |p: &str| {
        doc["reports"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["policy"] == p))
            .and_then(|r| r["awsCallsTotal"].as_u64())
            .expect("calls")
    };
    assert!(calls("booster") < calls("upstream"));
    assert!(
        doc["reports"][0].get("series").is_none(),
        "the JSON leaves the chart series to the HTML page"
    );
}

#[test]
fn simulate_without_arguments_prints_one_row_per_scenario_and_policy() {
    let out = run_with_stdin(&["simulate"], b"");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let rows = text
        .lines()
        .filter(|l| {
            ["nth-drain", "upstream", "booster"]
                .iter()
                .any(|p| l.contains(p))
        })
        .count();
    assert_eq!(
        rows,
        booster_sim::scenario::BUILTIN.len() * booster_sim::Policy::ALL.len(),
        "{text}"
    );
    // Readable in an ordinary terminal.
    let widest = text.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    assert!(widest <= 100, "{widest} columns:\n{text}");
}

#[test]
fn simulate_wide_prints_every_column() {
    let out = run_with_stdin(&["simulate", "--scenario", "storm", "--wide"], b"");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for column in [
        "by operation",
        "peak drains",
        "cordoned at end",
        "unsignalled touched",
    ] {
        assert!(text.contains(column), "{column} missing:\n{text}");
    }
}

#[test]
fn simulate_help_names_every_built_in_scenario() {
    let out = run_with_stdin(&["simulate", "--help"], b"");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).replace(char::is_whitespace, "");
    for (name, _) in booster_sim::scenario::BUILTIN {
        assert!(
            text.contains(name),
            "`simulate --help` does not name {name}"
        );
    }
}

#[test]
fn simulate_writes_a_self_contained_page_with_a_chart_per_scenario() {
    let dir = std::env::temp_dir().join(format!("asb-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let page = dir.join("sim.html");
    let scenario = dir.join("mine.yaml");
    std::fs::write(
        &scenario,
        "name: mine\ndescription: a copy\ngroups: [{name: g, max: 9, desired: 4}]\n\
         workload: [{name: w, replicas: 30}]\n\
         signals: [{group: g, at: 1m, lead: {min: 10m, max: 10m}}]\nduration: 20m\n",
    )
    .expect("scenario file");
    let args = [
        "simulate",
        "--scenario",
        "single-signal",
        "--scenario",
        scenario.to_str().expect("utf-8 path"),
        "--policy",
        "nth-drain,booster",
        "--html",
        page.to_str().expect("utf-8 path"),
    ];
    let out = run_with_stdin(&args, b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&page).expect("page written");
    assert_eq!(html.matches("<svg").count(), 4, "two charts per scenario");
    assert!(html.contains("<h2>mine</h2>") && html.contains("<h2>single-signal</h2>"));
    assert!(!html.contains("upstream"), "only the policies asked for");
    assert!(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn simulate_refuses_bad_arguments_in_one_line() {
    for (args, want) in [
        (vec!["simulate", "--policy", "karpenter"], "--policy"),
        (
            vec!["simulate", "--scenario", "nope"],
            "no built-in scenario",
        ),
        (
            vec!["simulate", "--scenario", "/nonexistent/x.yaml"],
            "reading",
        ),
    ] {
        let out = run_with_stdin(&args, b"");
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    }
}
