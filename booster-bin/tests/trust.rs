//! Only NTH can make the booster act: a tenant who may only create Events posts forged
//! `RebalanceRecommendation` Events of every kind, with the binary running against a real
//! kube-apiserver and moto, as the service account of deploy/rbac.yaml. Nothing moves; each
//! Event is counted as rejected; the genuine signal NTH posts next is boosted.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use booster_tests::control_plane::{available, create_via as create, ControlPlane};
use common::{free_port, get, sync_nodes};
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Node, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, PostParams};
use serde_json::json;

const TENANT: &str = "tenant";

fn rfc3339(secs_from_now: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    booster_core::Timestamp::from_unix_secs(now + secs_from_now).to_string()
}

/// A service account that may create Events in its namespace and in `default`, and
/// nothing else; a client with its token.
async fn tenant(cp: &ControlPlane, admin: &kube::Client) -> kube::Client {
    create(
        Api::<Namespace>::all(admin.clone()),
        json!({"metadata": {"name": TENANT}}),
    )
    .await;
    create(
        Api::<ServiceAccount>::namespaced(admin.clone(), TENANT),
        json!({"metadata": {"name": TENANT}}),
    )
    .await;
    for ns in [TENANT, "default"] {
        create(
            Api::<Role>::namespaced(admin.clone(), ns),
            json!({"metadata": {"name": "post-events"},
                   "rules": [{"apiGroups": [""], "resources": ["events"], "verbs": ["create"]}]}),
        )
        .await;
        create(
            Api::<RoleBinding>::namespaced(admin.clone(), ns),
            json!({"metadata": {"name": "post-events"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "post-events"},
                   "subjects": [{"kind": "ServiceAccount", "name": TENANT, "namespace": TENANT}]}),
        )
        .await;
    }
    let token = booster_tests::control_plane::token_for(admin, TENANT, TENANT).await;
    let kubeconfig = cp.kubeconfig_for(TENANT, &token).expect("kubeconfig");
    ControlPlane::client_from(&kubeconfig)
        .await
        .expect("tenant client")
}

/// A forged Event, NTH's exact form unless `tweak` changes it.
fn forged(
    n: usize,
    ns: &str,
    node: &str,
    instance: &str,
    tweak: impl FnOnce(&mut serde_json::Value),
) -> Event {
    let mut v = json!({
        "metadata": {"name": format!("forged-{n}"), "namespace": ns,
                     "annotations": {"instance-id": instance}},
        "involvedObject": {"kind": "Node", "name": node, "namespace": ns},
        "reason": "RebalanceRecommendation",
        "message": format!("Rebalance recommendation received. Instance will be cordoned at {} \n", rfc3339(-2 * 86_400)),
        "source": {"component": "aws-node-termination-handler"},
        "type": "Normal",
    });
    tweak(&mut v);
    serde_json::from_value(v).expect("event")
}

/// The `spots_booster_signals_rejected_total` samples, by reason.
fn rejected(port: u16) -> BTreeMap<String, u64> {
    let (_, text) = get(port, "/metrics").unwrap_or_default();
    text.lines()
        .filter_map(|l| l.strip_prefix("spots_booster_signals_rejected_total{reason=\""))
        .filter_map(|l| {
            let (reason, rest) = l.split_once("\"}")?;
            Some((reason.to_string(), rest.trim().parse().ok()?))
        })
        .collect()
}

/// What a forged Event could have changed on a Node.
fn node_state(n: &Node) -> (Option<bool>, Vec<String>) {
    let spec = n.spec.clone().unwrap_or_default();
    let mut taints: Vec<String> = spec
        .taints
        .unwrap_or_default()
        .into_iter()
        .map(|t| format!("{}={}:{}", t.key, t.value.unwrap_or_default(), t.effect))
        .collect();
    taints.sort();
    (spec.unschedulable, taints)
}

async fn states(admin: &kube::Client) -> BTreeMap<String, (Option<bool>, Vec<String>)> {
    Api::<Node>::all(admin.clone())
        .list(&Default::default())
        .await
        .expect("nodes")
        .items
        .iter()
        .map(|n| (n.metadata.name.clone().unwrap_or_default(), node_state(n)))
        .collect()
}

async fn desired(asg: &aws_sdk_autoscaling::Client) -> BTreeMap<String, i32> {
    asg.describe_auto_scaling_groups()
        .send()
        .await
        .expect("describe")
        .auto_scaling_groups()
        .iter()
        .map(|g| {
            (
                g.auto_scaling_group_name().unwrap_or_default().to_string(),
                g.desired_capacity().unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_tenant_who_may_only_create_events_cannot_make_the_booster_act() {
    use booster_tests::moto::Moto;
    if !available() {
        return;
    }
    let Some(moto) = Moto::start() else { return };
    let cp = ControlPlane::start(false).expect("control plane");
    let admin = cp.admin().await.expect("ready");
    let asg = moto.client();
    for (group, cluster) in [("spot", "prod"), ("other", "staging")] {
        let tag = format!("k8s.io/cluster-autoscaler/{cluster}");
        common::group(&asg, group, 2, 5, &[(&tag, "owned")]).await;
    }
    let (_, ours) = sync_nodes(&asg, &admin, "spot").await;
    let (_, theirs) = sync_nodes(&asg, &admin, "other").await;
    let (a, b) = (format!("node-{}", ours[0]), format!("node-{}", ours[1]));
    let c = format!("node-{}", theirs[0]);
    let go_now = rfc3339(0).replace('T', " ").replace('Z', " +0000 UTC");
    let groups: String = ["spot", "other"]
        .iter()
        .map(|g| format!("- name: {g}\n  health:\n    status: Healthy\n    nodeCounts:\n      registered:\n        total: 2\n        ready: 2\n    cloudProviderTarget: 2\n    minSize: 1\n    maxSize: 5\n  scaleUp:\n    status: NoActivity\n"))
        .collect();
    create(
        Api::<ConfigMap>::namespaced(admin.clone(), "kube-system"),
        json!({"metadata": {"name": "cluster-autoscaler-status"},
               "data": {"status": format!("time: {go_now}\nautoscalerStatus: Running\nnodeGroups:\n{groups}")}}),
    )
    .await;
    // NTH really did signal the other cluster's node: the booster must still leave it be.
    booster_tests::e2e::nth::rebalance(&admin, &c, &theirs[0], &rfc3339(0)).await;

    let t = tenant(&cp, &admin).await;
    let default: Api<Event> = Api::namespaced(t.clone(), "default");
    let own: Api<Event> = Api::namespaced(t.clone(), TENANT);
    let pp = PostParams::default();
    // An Event posted before its Node exists is about an earlier node of that name (the
    // booster first sees both together).
    default
        .create(
            &pp,
            &forged(0, "default", "node-reused", "", |v| {
                v["metadata"]["annotations"] = json!({});
            }),
        )
        .await
        .expect("before node");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    create(
        Api::<Node>::all(admin.clone()),
        json!({"metadata": {"name": "node-reused"}, "spec": {"providerID": "aws:///eu-west-1a/i-0reused"}}),
    )
    .await;

    // The booster runs as the service account of deploy/rbac.yaml: everything it does
    // here, it does with the shipped rights.
    let kubeconfig = common::shipped_kubeconfig(&cp, &admin).await;
    let port = free_port();
    let log = cp.dir.join("booster.log");
    let (out, err) = booster_tests::control_plane::log_to(&log).expect("log");
    let mut child = common::Running(
        common::booster(
            &kubeconfig,
            port,
            &moto.url,
            &[
                "--leader-elect=false",
                "--resync",
                "2s",
                "--cluster-name",
                "prod",
                "--corroboration-window",
                "10s",
            ],
        )
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("controller"),
    );
    common::wait_ready(port, 60);
    let before_nodes = states(&admin).await;
    let before_desired = desired(&asg).await;

    let (ia, ib) = (ours[0].as_str(), ours[1].as_str());
    let mut n = 1;
    let mut next = || {
        n += 1;
        n
    };
    own.create(&pp, &forged(next(), TENANT, &a, ia, |_| {}))
        .await
        .expect("own namespace");
    default
        .create(
            &pp,
            &forged(next(), "default", &a, ia, |v| {
                v["source"]["component"] = json!("kubectl")
            }),
        )
        .await
        .expect("component");
    default
        .create(
            &pp,
            &forged(next(), "default", "ip-10-9-9-9.ghost", ia, |_| {}),
        )
        .await
        .expect("no such node");
    default
        .create(
            &pp,
            &forged(next(), "default", &a, "i-0ffffffffffffffff", |_| {}),
        )
        .await
        .expect("instance");
    default
        .create(
            &pp,
            &forged(next(), "default", &b, ib, |v| {
                v["message"] = json!(format!(
                    "Rebalance recommendation received. Instance will be cordoned at {} \n",
                    rfc3339(86_400)
                ))
            }),
        )
        .await
        .expect("future");
    // NTH's exact form, past time, by the hundred; and for the other cluster's node.
    for node in [&a, &b, &c] {
        let inst = if *node == c {
            &theirs[0]
        } else if *node == a {
            &ours[0]
        } else {
            &ours[1]
        };
        for _ in 0..100 {
            default
                .create(&pp, &forged(next(), "default", node, inst, |_| {}))
                .await
                .expect("flood");
        }
    }
    let posted = n;

    // 30 s with the booster running: nothing changes, everything is counted.
    let settle = Instant::now();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let after_nodes = states(&admin).await;
    let after_desired = desired(&asg).await;
    let counts = rejected(port);
    eprintln!("rejected after {:?}: {counts:?}", settle.elapsed());
    let (_, metrics) = get(port, "/metrics").unwrap_or_default();
    let holds: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("spots_booster_holds{"))
        .collect();
    assert_eq!(after_desired, before_desired, "no boost");
    for (name, state) in &before_nodes {
        assert_eq!(after_nodes.get(name), Some(state), "{name} untouched");
    }
    // Its own namespace is not read at all (the booster watches --event-namespaces only,
    // and may list Events nowhere else): not even counted.
    assert_eq!(counts.get("namespace"), Some(&0), "{counts:?}");
    for reason in [
        "component",
        "unknownNode",
        "instanceMismatch",
        "futureTime",
        "beforeNode",
    ] {
        assert_eq!(counts.get(reason), Some(&1), "{reason}: {counts:?}");
    }
    // The other cluster's node is corroborated by NTH, so its 100 are claims, not rejections;
    // its group is refused instead.
    assert_eq!(counts.get("uncorroborated"), Some(&200), "{counts:?}");
    assert_eq!(counts.values().sum::<u64>(), posted as u64 - 100 - 1);
    assert!(
        holds
            .iter()
            .any(|l| l.contains("GroupNotThisCluster") && l.ends_with(" 1")),
        "{holds:?}"
    );

    // The genuine signal, as NTH writes it: boosted.
    booster_tests::e2e::nth::rebalance(&admin, &a, ia, &rfc3339(0)).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let boosted = loop {
        let d = desired(&asg).await;
        if d.get("spot") == Some(&3) || Instant::now() > deadline {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    child.stop();
    assert_eq!(
        boosted.get("spot"),
        Some(&3),
        "the genuine signal is boosted; log {}",
        log.display()
    );
    assert_eq!(
        boosted.get("other"),
        Some(&2),
        "never the other cluster's group"
    );
    eprintln!(
        "trust: {posted} forged Events, {} rejected, 0 actions; genuine signal boosted",
        counts.values().sum::<u64>()
    );
}
