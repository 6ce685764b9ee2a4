//! The controller binary as an SRE runs it: flags, a real kube-apiserver, /readyz,
//! /metrics, the Lease, and SIGTERM.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use booster_tests::control_plane::{available, ControlPlane};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_aws-spots-booster"))
}

fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, text))
}

#[test]
fn bad_flag_values_give_one_line_naming_the_flag() {
    for (args, flag) in [
        (vec!["--drain-timeout", "5x"], "--drain-timeout"),
        (
            vec!["--max-concurrent-drains=lots"],
            "--max-concurrent-drains",
        ),
        (vec!["--connection-mode", "magic"], "--connection-mode"),
        (vec!["--log-format", "xml"], "--log-format"),
    ] {
        let out = bin().args(&args).output().expect("runs");
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(flag), "{args:?}: {err}");
    }
    let help = bin().arg("--help").output().expect("help");
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--connection-mode",
        "--kubeconfig",
        "--namespace",
        "--configmap",
        "--dry-run",
        "--ignored-autoscaling-groups",
        "--extra-nodes-over-calculation",
        "--disable-drain",
        "--drain-timeout",
        "--max-concurrent-drains",
        "--time-between-drains",
        "--ignore-pods-grace-period",
        "--max-time-consider-new-node",
        "--metrics-port",
        "--metrics-host",
        "--log-format",
        "--leader-elect",
        "--lease-name",
    ] {
        assert!(text.contains(flag), "--help lists {flag}");
    }
}

#[tokio::test]
async fn the_controller_serves_readiness_and_metrics_holds_the_lease_and_stops_on_sigterm() {
    if !available() {
        return;
    }
    let cp = ControlPlane::start(false).expect("control plane");
    let admin = cp.admin().await.expect("ready");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let kubeconfig = cp.kubeconfig.display().to_string();
    let mut child = bin()
        .args([
            "--connection-mode",
            "kubectl",
            "--kubeconfig",
            &kubeconfig,
            // The upstream project's spellings are accepted too.
            "--ca-status-namespace",
            "kube-system",
            "--ca-status-name",
            "cluster-autoscaler-status",
            "--dry-run",
            "--metrics-host",
            "127.0.0.1",
            "--metrics-port",
            &port.to_string(),
            "--log-format",
            "json",
            "--aws-region",
            "eu-west-1",
            "--aws-endpoint-url",
            "http://127.0.0.1:9",
        ])
        .env("POD_NAME", "replica-under-test")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("controller starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((200, _)) = get(port, "/readyz") {
            break;
        }
        assert!(Instant::now() < deadline, "not ready in 30 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(matches!(get(port, "/healthz"), Some((200, _))));
    let deadline = Instant::now() + Duration::from_secs(20);
    let metrics = loop {
        let (_, text) = get(port, "/metrics").expect("metrics");
        if text.contains("spots_booster_leader 1") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(metrics.contains("spots_booster_leader 1"), "{metrics}");
    assert!(
        metrics.contains("spots_booster_passes_total{outcome=\"ok\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("spots_booster_ca_status_age_seconds -1"),
        "no CA status: {metrics}"
    );
    let leases: Api<Lease> = Api::namespaced(admin.clone(), "kube-system");
    let lease = leases.get("aws-spots-booster").await.expect("lease");
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("replica-under-test")
    );

    // SIGTERM: it stops within the grace period and hands the Lease back.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(code) = child.try_wait().expect("wait") {
            break code;
        }
        assert!(Instant::now() < deadline, "did not stop within 10 s");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(code.success(), "{code:?}");
    let lease = leases.get("aws-spots-booster").await.expect("lease");
    assert_eq!(lease.spec.and_then(|s| s.holder_identity), None, "released");
    let mut logs = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut logs);
    }
    let first = logs.lines().next().unwrap_or_default();
    assert!(
        serde_json::from_str::<serde_json::Value>(first).is_ok(),
        "JSON logs: {first}"
    );
}
