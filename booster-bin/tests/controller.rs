//! The controller binary as an SRE runs it: flags, a real kube-apiserver, /readyz,
//! /metrics, the Lease, and SIGTERM.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use booster_tests::control_plane::{available, ControlPlane};
use common::{bin, controller, free_port, get, rss_mib, sync_nodes, wait_ready};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;

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
    let port = free_port();
    let kubeconfig = cp.kubeconfig.display().to_string();
    let mut child = controller(&[
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
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("controller starts");
    wait_ready(port, 30);
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

#[tokio::test]
async fn the_binary_boosts_drains_and_retires_a_signalled_node_with_a_real_apiserver_and_moto() {
    use booster_tests::control_plane::Kubelet;
    use booster_tests::moto::Moto;
    use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
    if !available() {
        return;
    }
    let Some(moto) = Moto::start() else { return };
    let cp = ControlPlane::start(false).expect("control plane");
    let admin = cp.admin().await.expect("ready");
    let _kubelet = Kubelet::start(admin.clone(), Duration::from_secs(1));
    let asg = moto.client();
    common::group(&asg, "spot", 2, 5, &[]).await;
    let (_, ids) = sync_nodes(&asg, &admin, "spot").await;
    let victim = format!("node-{}", ids[0]);
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web-1", "namespace": "default"},
        "spec": {"nodeName": victim, "containers": [{"name": "c", "image": "pause"}]},
    }))
    .expect("pod");
    Api::<Pod>::namespaced(admin.clone(), "default")
        .create(&Default::default(), &pod)
        .await
        .expect("pod");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let now = booster_core::Timestamp::from_unix_secs(now);
    let go_now = now.to_string().replace('T', " ").replace('Z', " +0000 UTC");
    let status = format!(
        "time: {go_now}\nautoscalerStatus: Running\nnodeGroups:\n- name: spot\n  health:\n    status: Healthy\n    nodeCounts:\n      registered:\n        total: 2\n        ready: 2\n    cloudProviderTarget: 2\n    minSize: 1\n    maxSize: 5\n  scaleUp:\n    status: NoActivity\n"
    );
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "cluster-autoscaler-status", "namespace": "kube-system"}, "data": {"status": status}}))
    .expect("cm");
    Api::<ConfigMap>::namespaced(admin.clone(), "kube-system")
        .create(&Default::default(), &cm)
        .await
        .expect("cm");
    booster_tests::e2e::nth::rebalance(&admin, &victim, &ids[0], &now.to_string()).await;

    let port = free_port();
    let kubeconfig = cp.kubeconfig.display().to_string();
    let mut child = controller(&[
        "--kubeconfig",
        &kubeconfig,
        "--leader-elect=false",
        // web-1 is a bare pod: evicted only with kubectl drain's --force.
        "--drain-force",
        "--time-between-drains",
        "1s",
        "--resync",
        "2s",
        "--metrics-host",
        "127.0.0.1",
        "--metrics-port",
        &port.to_string(),
        "--aws-region",
        "eu-west-1",
        "--aws-endpoint-url",
        &moto.url,
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("controller");

    // The group launches, the instance registers as a Node a moment later; the booster
    // drains the signalled node onto it and retires the old instance with decrement.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut max_desired = 2;
    let done = loop {
        let (desired, ids_now) = sync_nodes(&asg, &admin, "spot").await;
        max_desired = max_desired.max(desired);
        if max_desired == 3 && desired == 2 && !ids_now.contains(&ids[0]) {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(1200)).await;
    };
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert!(
        done,
        "no boost, drain and retire within 90 s (max desired {max_desired})"
    );
    assert_eq!(max_desired, 3, "one boost for one signal");
    let pods = Api::<Pod>::namespaced(admin.clone(), "default")
        .list(&Default::default())
        .await
        .expect("pods");
    assert!(
        pods.items
            .iter()
            .all(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(victim.as_str())),
        "drained"
    );
    let n = Api::<Node>::all(admin.clone())
        .get(&victim)
        .await
        .expect("node");
    assert_eq!(
        n.spec.and_then(|s| s.unschedulable),
        Some(true),
        "cordoned before the drain"
    );
}

/// Starts the binary in dry-run against `kubeconfig`, waits for /readyz, returns its RSS.
fn rss_when_ready(kubeconfig: &str, aws: &str) -> u64 {
    let port = free_port();
    let mut child = common::booster(
        kubeconfig,
        port,
        aws,
        &["--dry-run", "--leader-elect=false"],
    )
    .spawn()
    .expect("controller");
    wait_ready(port, 60);
    std::thread::sleep(Duration::from_secs(3));
    let rss = rss_mib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    rss
}

/// The figures for the notes (`make controller-memory`, release build): the binary's size,
/// its RSS idle and with 5,000 Nodes in the apiserver.
#[tokio::test]
#[ignore = "a measurement, not a check: make controller-memory"]
async fn binary_size_and_rss() {
    if !available() {
        return;
    }
    // A reachable AWS: the controller asks once which group the nodes' instances are in.
    let Some(moto) = booster_tests::moto::Moto::start() else {
        return;
    };
    let size = std::fs::metadata(env!("CARGO_BIN_EXE_aws-spots-booster"))
        .map(|m| m.len())
        .unwrap_or(0);
    let cp = ControlPlane::start(false).expect("control plane");
    let admin = cp.admin().await.expect("ready");
    let kubeconfig = cp.kubeconfig.display().to_string();
    let idle = rss_when_ready(&kubeconfig, &moto.url);
    booster_tests::control_plane::create_nodes(&admin, "node", 5000).await;
    let loaded = rss_when_ready(&kubeconfig, &moto.url);
    eprintln!(
        "binary {} MiB; RSS idle {idle} MiB; with 5000 Nodes {loaded} MiB",
        size / (1024 * 1024)
    );
}
