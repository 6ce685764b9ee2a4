//! What the binary's test files share: starting the binary, reading its HTTP endpoints,
//! and playing the Auto Scaling group's part for Nodes.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kube::Api;

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_aws-spots-booster"))
}

/// The controller with test AWS credentials (no instance metadata) and `args`.
pub fn controller(args: &[&str]) -> Command {
    let mut c = bin();
    c.args(args)
        .envs(booster_tests::moto::TEST_AWS_ENV)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

/// Waits until `/readyz` answers 200.
pub fn wait_ready(port: u16, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !matches!(get(port, "/readyz"), Some((200, _))) {
        assert!(Instant::now() < deadline, "not ready in {secs} s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A free port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port()
}

/// `GET path` on loopback: status code and the whole answer.
pub fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, text))
}

/// Plays the Auto Scaling group's and the kubelet's part: every in-service instance of
/// `group` in moto gets a Ready Node; returns the group's desired capacity and instances.
pub async fn sync_nodes(
    asg: &aws_sdk_autoscaling::Client,
    kube: &kube::Client,
    group: &str,
) -> (i32, Vec<String>) {
    use k8s_openapi::api::core::v1::Node;
    let out = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(group)
        .send()
        .await
        .expect("describe");
    let g = &out.auto_scaling_groups()[0];
    let ids: Vec<String> = g
        .instances()
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect();
    let nodes: Api<Node> = Api::all(kube.clone());
    for id in &ids {
        let name = format!("node-{id}");
        if nodes.get_opt(&name).await.expect("get").is_some() {
            continue;
        }
        let n: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "spec": {"providerID": format!("aws:///eu-west-1a/{id}")},
        }))
        .expect("node");
        nodes.create(&Default::default(), &n).await.expect("node");
        let status =
            serde_json::json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        nodes
            .patch_status(
                &name,
                &Default::default(),
                &kube::api::Patch::Merge(&status),
            )
            .await
            .expect("ready");
    }
    (g.desired_capacity().unwrap_or_default(), ids)
}

/// A `/proc/<pid>/status` figure in MiB (`VmRSS`, `VmHWM`).
pub fn status_mib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0)
        / 1024
}

/// Resident memory now, MiB.
pub fn rss_mib(pid: u32) -> u64 {
    status_mib(pid, "VmRSS:")
}

/// A child process killed when dropped, so that a failing assertion leaves no controller
/// running behind the test.
pub struct Running(pub std::process::Child);

impl Running {
    /// Its pid.
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// SIGTERM, then waits for it.
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .stdout(Stdio::null())
            .status();
        let _ = self.0.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The controller on `kubeconfig`, its endpoints on 127.0.0.1:`port`, AWS at `aws`, and
/// `extra` flags.
pub fn booster(kubeconfig: &str, port: u16, aws: &str, extra: &[&str]) -> Command {
    let port = port.to_string();
    let mut args = vec![
        "--kubeconfig",
        kubeconfig,
        "--metrics-host",
        "127.0.0.1",
        "--metrics-port",
        &port,
        "--aws-region",
        "eu-west-1",
        "--aws-endpoint-url",
        aws,
    ];
    args.extend_from_slice(extra);
    controller(&args)
}

/// An Auto Scaling group `name` in moto (one zone, launch configuration `lc`, made on first
/// use), tagged with `tags`.
pub async fn group(
    asg: &aws_sdk_autoscaling::Client,
    name: &str,
    desired: i32,
    max: i32,
    tags: &[(&str, &str)],
) {
    use aws_sdk_autoscaling::types::Tag;
    // Already there from an earlier group: the error is the answer.
    let _ = asg
        .create_launch_configuration()
        .launch_configuration_name("lc")
        .image_id("ami-12c6146b")
        .instance_type("m5.large")
        .send()
        .await;
    let mut req = asg
        .create_auto_scaling_group()
        .auto_scaling_group_name(name)
        .launch_configuration_name("lc")
        .min_size(1)
        .max_size(max)
        .desired_capacity(desired)
        .availability_zones("eu-west-1a");
    for (k, v) in tags {
        req = req.tags(
            Tag::builder()
                .key(*k)
                .value(*v)
                .resource_id(name)
                .resource_type("auto-scaling-group")
                .propagate_at_launch(false)
                .build(),
        );
    }
    req.send().await.expect("group");
}

/// deploy/rbac.yaml applied with `admin`, and a kubeconfig (its path) for the booster's
/// ServiceAccount: the booster then runs with the rights production gives it.
pub async fn shipped_kubeconfig(
    cp: &booster_tests::control_plane::ControlPlane,
    admin: &kube::Client,
) -> String {
    booster_tests::control_plane::apply_rbac(admin).await;
    let token =
        booster_tests::control_plane::token_for(admin, "kube-system", "aws-spots-booster").await;
    cp.kubeconfig_for("booster", &token)
        .expect("kubeconfig")
        .display()
        .to_string()
}
