//! cluster-autoscaler's part, every 2 s, as CA 1.34 with the AWS provider and
//! `--write-status-configmap=true` does it:
//!
//! - the `kube-system/cluster-autoscaler-status` ConfigMap, in YAML (CA >= 1.30) or the
//!   legacy text (CA <= 1.29), with the `cluster-autoscaler.kubernetes.io/last-updated`
//!   annotation; per group the registered/ready/not-started Nodes and `cloudProviderTarget`
//!   (the group's desired capacity);
//! - scale-up: pods unschedulable for want of room get `ceil(pods / 4)` more nodes, less
//!   the nodes already coming (target − registered), capped at max size.
//!
//! It never scales down: no scenario runs as long as CA's 10-minute unneeded time.
//!
//! With `BOOSTER_E2E_CA=<path to a cluster-autoscaler binary built with -tags aws>` the
//! real one runs instead ([`real_ca_args`]), its AWS provider pointed at moto through the
//! cloud config's service overrides. The Go module proxy this project builds from refuses
//! CA's module, so CI cannot build it.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::Client;

use super::{node_ready, unix_now, GROUP};

/// Counts CA reports for one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Nodes of the group registered.
    pub registered: usize,
    /// Of which Ready.
    pub ready: usize,
    /// The group's desired capacity.
    pub target: i32,
    /// Min size.
    pub min: i32,
    /// Max size.
    pub max: i32,
}

/// Go's `time.Time` string, as CA prints it.
fn go_time(unix: i64) -> String {
    booster_core::Timestamp::from_unix_secs(unix)
        .to_string()
        .replace('T', " ")
        .replace('Z', ".000000000 +0000 UTC")
}

/// The probe time, the Nodes not (yet) Ready, and the scale-up state.
fn common(c: &Counts, unix: i64) -> (String, usize, &'static str) {
    let scale_up = if c.target as usize > c.registered {
        "InProgress"
    } else {
        "NoActivity"
    };
    (go_time(unix), c.registered - c.ready, scale_up)
}

/// The status text in the YAML form.
pub fn yaml_status(c: &Counts, unix: i64) -> String {
    let (t, unready, scale_up) = common(c, unix);
    format!(
        "time: {t}\nautoscalerStatus: Running\nclusterWide:\n  health:\n    status: Healthy\n    nodeCounts:\n      registered:\n        total: {reg}\n        ready: {ready}\n        notStarted: {unready}\n      longUnregistered: 0\n      unregistered: 0\n    lastProbeTime: \"{t}\"\n  scaleUp:\n    status: {scale_up}\n    lastProbeTime: \"{t}\"\nnodeGroups:\n- name: {GROUP}\n  health:\n    status: Healthy\n    nodeCounts:\n      registered:\n        total: {reg}\n        ready: {ready}\n        notStarted: {unready}\n      longUnregistered: 0\n      unregistered: 0\n    cloudProviderTarget: {target}\n    minSize: {min}\n    maxSize: {max}\n    lastProbeTime: \"{t}\"\n  scaleUp:\n    status: {scale_up}\n    lastProbeTime: \"{t}\"\n  scaleDown:\n    status: NoCandidates\n    lastProbeTime: \"{t}\"\n",
        reg = c.registered,
        ready = c.ready,
        target = c.target,
        min = c.min,
        max = c.max,
    )
}

/// The status text in the legacy form.
pub fn legacy_status(c: &Counts, unix: i64) -> String {
    let (t, unready, scale_up) = common(c, unix);
    format!(
        "Cluster-autoscaler status at {t}:\nCluster-wide:\n  Health:      Healthy (ready={ready} unready=0 (resourceUnready=0) notStarted={unready} longNotStarted=0 registered={reg} longUnregistered=0)\n               LastProbeTime:      {t}\n               LastTransitionTime: {t}\n  ScaleUp:     {scale_up} (ready={ready} registered={reg})\n               LastProbeTime:      {t}\n               LastTransitionTime: {t}\n  ScaleDown:   NoCandidates (candidates=0)\n               LastProbeTime:      {t}\n               LastTransitionTime: {t}\n\nNodeGroups:\n  Name:        {GROUP}\n  Health:      Healthy (ready={ready} unready=0 (resourceUnready=0) notStarted={unready} longNotStarted=0 registered={reg} longUnregistered=0 cloudProviderTarget={target} (minSize={min}, maxSize={max}))\n               LastProbeTime:      {t}\n               LastTransitionTime: {t}\n  ScaleUp:     {scale_up} (ready={ready} cloudProviderTarget={target})\n               LastProbeTime:      {t}\n               LastTransitionTime: {t}\n  ScaleDown:   NoCandidates (candidates=0)\n               LastProbeTime:      {t}\n               LastTransitionTime: {t}\n\n",
        reg = c.registered,
        ready = c.ready,
        target = c.target,
        min = c.min,
        max = c.max,
    )
}

/// Each group's counts, [`GROUP`] first.
async fn counts(
    asg: &aws_sdk_autoscaling::Client,
    nodes: &Api<Node>,
) -> Result<Vec<(String, Counts)>, String> {
    let mut groups = super::bridge::describe_all(asg).await?;
    groups.sort_by_key(|(n, _)| n != GROUP);
    let list = nodes
        .list(&ListParams::default().labels("type=kwok"))
        .await
        .map_err(|e| e.to_string())?;
    Ok(groups
        .into_iter()
        .map(|(name, g)| {
            let mine: Vec<&Node> = list
                .items
                .iter()
                .filter(|n| {
                    n.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(super::bridge::GROUP_LABEL))
                        == Some(&name)
                })
                .collect();
            let c = Counts {
                registered: mine.len(),
                ready: mine.iter().filter(|n| node_ready(n)).count(),
                target: g.desired,
                min: g.min,
                max: g.max,
            };
            (name, c)
        })
        .collect())
}

/// One more group's entry of the YAML form's `nodeGroups`.
fn yaml_group(name: &str, c: &Counts, unix: i64) -> String {
    let (t, unready, scale_up) = common(c, unix);
    format!(
        "- name: {name}\n  health:\n    status: Healthy\n    nodeCounts:\n      registered:\n        total: {reg}\n        ready: {ready}\n        notStarted: {unready}\n      longUnregistered: 0\n      unregistered: 0\n    cloudProviderTarget: {target}\n    minSize: {min}\n    maxSize: {max}\n    lastProbeTime: \"{t}\"\n  scaleUp:\n    status: {scale_up}\n    lastProbeTime: \"{t}\"\n  scaleDown:\n    status: NoCandidates\n    lastProbeTime: \"{t}\"\n",
        reg = c.registered,
        ready = c.ready,
        target = c.target,
        min = c.min,
        max = c.max,
    )
}

/// The real cluster-autoscaler's flags for the e2e world (and its cloud config, written into
/// `dir`): every group of the world by name (`groups`: min size, max size, name; a group CA
/// is not told of is one it neither scales nor reports), the status ConfigMap on, a 2 s
/// scan, AWS at `moto`.
pub fn real_ca_args(
    dir: &std::path::Path,
    kubeconfig: &std::path::Path,
    moto: &str,
    groups: &[(i32, i32, &str)],
) -> Result<Vec<String>, String> {
    let mut cloud = String::from("[Global]\n");
    for (i, service) in ["autoscaling", "ec2", "eks"].iter().enumerate() {
        cloud.push_str(&format!(
            "[ServiceOverride \"{n}\"]\nService = {service}\nRegion = eu-west-1\nURL = {moto}\nSigningRegion = eu-west-1\n",
            n = i + 1
        ));
    }
    let path = dir.join("ca-cloud-config.ini");
    std::fs::write(&path, cloud).map_err(|e| e.to_string())?;
    let mut args: Vec<String> = vec![
        "--cloud-provider=aws".into(),
        format!("--cloud-config={}", path.display()),
        format!("--kubeconfig={}", kubeconfig.display()),
    ];
    args.extend(
        groups
            .iter()
            .map(|(min, max, name)| format!("--nodes={min}:{max}:{name}")),
    );
    args.extend([
        "--write-status-configmap=true".into(),
        "--status-config-map-name=cluster-autoscaler-status".into(),
        "--namespace=kube-system".into(),
        "--scan-interval=2s".into(),
        "--leader-elect=false".into(),
        format!("--address=127.0.0.1:{}", crate::control_plane::free_port()),
        "--aws-use-static-instance-list=true".into(),
        "--expander=random".into(),
        "--v=2".into(),
    ]);
    Ok(args)
}

/// Pods the scheduler reported unschedulable.
async fn unschedulable(pods: &Api<Pod>) -> usize {
    pods.list(&ListParams::default().fields("spec.nodeName="))
        .await
        .map(|l| {
            l.items
                .iter()
                .filter(|p| {
                    p.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| {
                            c.iter().any(|c| {
                                c.type_ == "PodScheduled"
                                    && c.status == "False"
                                    && c.reason.as_deref() == Some("Unschedulable")
                            })
                        })
                })
                .count()
        })
        .unwrap_or(0)
}

/// Runs until aborted.
pub async fn run(asg: aws_sdk_autoscaling::Client, kube: Client, legacy: bool) {
    let nodes: Api<Node> = Api::all(kube.clone());
    let pods: Api<Pod> = Api::all(kube.clone());
    let cms: Api<ConfigMap> = Api::namespaced(kube, "kube-system");
    let pp = PatchParams::apply("cluster-autoscaler").force();
    loop {
        match counts(&asg, &nodes).await {
            Ok(all) if all.first().is_some_and(|(n, _)| n == GROUP) => {
                let c = all[0].1;
                let now = unix_now();
                let mut status = if legacy {
                    legacy_status(&c, now)
                } else {
                    yaml_status(&c, now)
                };
                if !legacy {
                    for (name, other) in &all[1..] {
                        status.push_str(&yaml_group(name, other, now));
                    }
                }
                let cm = serde_json::json!({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {
                        "name": "cluster-autoscaler-status",
                        "namespace": "kube-system",
                        "annotations": {"cluster-autoscaler.kubernetes.io/last-updated": go_time(now)}
                    },
                    "data": {"status": status}
                });
                if let Err(e) = cms
                    .patch("cluster-autoscaler-status", &pp, &Patch::Apply(&cm))
                    .await
                {
                    eprintln!("ca: status: {e}");
                }
                let pending = unschedulable(&pods).await;
                let upcoming = (c.target as usize).saturating_sub(c.registered);
                let needed = pending.div_ceil(4).saturating_sub(upcoming);
                if needed > 0 && c.target < c.max {
                    let to = (c.target + needed as i32).min(c.max);
                    let _ = asg
                        .set_desired_capacity()
                        .auto_scaling_group_name(GROUP)
                        .desired_capacity(to)
                        .honor_cooldown(false)
                        .send()
                        .await;
                }
            }
            Ok(_) => eprintln!("ca: group {GROUP} not found"),
            Err(e) => eprintln!("ca: {e}"),
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use booster_core::ca_status::parse;

    #[test]
    fn the_real_ca_is_told_every_group() {
        let dir = std::env::temp_dir().join(format!("asb-ca-args-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let groups = [(1, 8, GROUP), (0, 3, super::super::FALLBACK)];
        let args = real_ca_args(
            &dir,
            std::path::Path::new("k"),
            "http://127.0.0.1:1",
            &groups,
        )
        .expect("args");
        let nodes: Vec<&String> = args.iter().filter(|a| a.starts_with("--nodes=")).collect();
        assert_eq!(
            nodes,
            ["--nodes=1:8:spot-workers", "--nodes=0:3:ondemand-workers"]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn both_forms_parse_with_the_booster_parser() {
        let c = Counts {
            registered: 4,
            ready: 3,
            target: 5,
            min: 1,
            max: 8,
        };
        for text in [
            yaml_status(&c, 1_764_000_000),
            legacy_status(&c, 1_764_000_000),
        ] {
            let s = parse(&text).expect("parses");
            let g = s
                .node_groups
                .iter()
                .find(|g| g.name == GROUP)
                .expect("group");
            assert_eq!(g.cloud_provider_target, 5, "{text}");
            assert_eq!(g.ready, 3);
            assert_eq!(g.max_size, 8);
        }
    }
}
