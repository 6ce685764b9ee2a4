//! booster-k8s against a real kube-apiserver (and kube-controller-manager's disruption
//! controller where PodDisruptionBudget status matters), started per test on loopback.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use booster_core::ports::{Cluster, DrainOutcome, DrainSpec, PortError};
use booster_core::{CaObservation, CaStatusFormat, Dur, Ledger, Reason, SignalSource};
use booster_k8s::lease::LeaseLock;
use booster_k8s::{KubeCluster, Settings};
use booster_tests::control_plane::{available, ControlPlane, Kubelet};
use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::json;

const NS: &str = "kube-system";

async fn setup(kcm: bool) -> Option<(ControlPlane, Client)> {
    if !available() {
        return None;
    }
    let started = Instant::now();
    let cp = ControlPlane::start(kcm).expect("control plane starts");
    let client = cp.admin().await.expect("apiserver ready");
    eprintln!("control plane ready in {:?}", started.elapsed());
    Some((cp, client))
}

async fn create<K>(client: &Client, ns: Option<&str>, obj: serde_json::Value) -> K
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
{
    let api: Api<K> = match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::default_namespaced(client.clone()),
    };
    let obj: K = serde_json::from_value(obj).expect("object");
    api.create(&PostParams::default(), &obj)
        .await
        .expect("create")
}

/// A Ready node with an AWS providerID.
async fn node(client: &Client, name: &str, extra: serde_json::Value) {
    let api: Api<Node> = Api::all(client.clone());
    let mut obj = json!({
        "metadata": {"name": name},
        "spec": {"providerID": format!("aws:///eu-west-1a/i-{name}")},
    });
    merge(&mut obj, extra);
    let n: Node = serde_json::from_value(obj).expect("node");
    api.create(&PostParams::default(), &n)
        .await
        .expect("node created");
    let status = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("node Ready");
}

fn merge(a: &mut serde_json::Value, b: serde_json::Value) {
    match (a, b) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

async fn until<F, Fut, T>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn cluster(client: &Client) -> KubeCluster {
    let c = KubeCluster::start(client.clone(), Settings::default());
    c.ready(Duration::from_secs(30))
        .await
        .expect("watches ready");
    c
}

const LEGACY: &str = "Cluster-autoscaler status at 2024-06-10 12:00:00.000000000 +0000 UTC:\nCluster-wide:\n  Health:      Healthy (ready=2 unready=0 notStarted=0 longNotStarted=0 registered=2 longUnregistered=0)\nNodeGroups:\n  Name:        spot-a\n  Health:      Healthy (ready=2 unready=0 notStarted=0 longNotStarted=0 registered=2 longUnregistered=0 cloudProviderTarget=2 (minSize=1, maxSize=5))\n";
const YAML: &str = "time: 2024-06-10 12:05:00.000000000 +0000 UTC\nautoscalerStatus: Running\nnodeGroups:\n- name: spot-a\n  health:\n    status: Healthy\n    nodeCounts:\n      registered:\n        total: 3\n        ready: 3\n    cloudProviderTarget: 3\n    minSize: 1\n    maxSize: 5\n";

#[tokio::test]
async fn signals_nodes_and_the_ca_status_come_from_the_watches() {
    let Some((_cp, client)) = setup(false).await else {
        return;
    };
    node(&client, "n1", json!({})).await;
    node(&client, "n2", json!({})).await;
    let _: Event = create(
        &client,
        Some("default"),
        json!({
            "metadata": {"name": "n1.rebalance"},
            "involvedObject": {"kind": "Node", "name": "n1", "namespace": "default"},
            "reason": "RebalanceRecommendation",
            "message": "Rebalance recommendation received. Instance will be cordoned at 2024-06-10T12:00:05Z \n",
            "source": {"component": "aws-node-termination-handler"},
            "type": "Normal",
        }),
    )
    .await;
    let _: ConfigMap = create(
        &client,
        Some(NS),
        json!({"metadata": {"name": "cluster-autoscaler-status",
               "annotations": {"cluster-autoscaler.kubernetes.io/last-updated": "2024-06-10 12:00:00.000000000 +0000 UTC"}},
               "data": {"status": LEGACY}}),
    )
    .await;
    let c = cluster(&client).await;
    let view = c.observe().await.expect("observe");
    assert_eq!(view.nodes.len(), 2);
    let n1 = view.nodes.iter().find(|n| n.name == "n1").expect("n1");
    assert_eq!(n1.instance_id.as_deref(), Some("i-n1"));
    assert!(n1.ready && !n1.unschedulable);
    assert_eq!(view.signals.len(), 1);
    assert_eq!(view.signals[0].node, "n1");
    assert_eq!(view.signals[0].source, SignalSource::Event);
    assert_eq!(view.signals[0].at.to_string(), "2024-06-10T12:00:05Z");
    match &view.ca_status {
        CaObservation::Parsed { status, .. } => {
            assert_eq!(status.format, CaStatusFormat::Legacy);
            assert_eq!(status.node_groups[0].cloud_provider_target, 2);
        }
        other => panic!("{other:?}"),
    }

    // CA moves to the YAML format: the watch follows.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let patch = json!({"data": {"status": YAML}});
    cms.patch(
        "cluster-autoscaler-status",
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .expect("patch");
    until("the YAML status", || async {
        match c.observe().await.ok()?.ca_status {
            CaObservation::Parsed { status, .. } if status.format == CaStatusFormat::Yaml => {
                (status.node_groups[0].cloud_provider_target == 3).then_some(())
            }
            _ => None,
        }
    })
    .await;
    // Garbage: Invalid, never a panic.
    let patch = json!({"data": {"status": "not a status"}});
    cms.patch(
        "cluster-autoscaler-status",
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .expect("patch");
    until("the invalid status", || async {
        matches!(
            c.observe().await.ok()?.ca_status,
            CaObservation::Invalid { .. }
        )
        .then_some(())
    })
    .await;

    // The Event expires (deleted here); NTH's taint keeps the signal.
    let nodes: Api<Node> = Api::all(client.clone());
    let taint = json!({"spec": {"taints": [{"key": "aws-node-termination-handler/rebalance-recommendation", "effect": "NoSchedule", "value": "rebalance-recommendation-event"}]}});
    nodes
        .patch("n1", &PatchParams::default(), &Patch::Merge(&taint))
        .await
        .expect("taint");
    Api::<Event>::namespaced(client.clone(), "default")
        .delete("n1.rebalance", &DeleteParams::default())
        .await
        .expect("delete event");
    let signals = until("the taint signal alone", || async {
        let v = c.observe().await.ok()?;
        (v.signals.len() == 1 && v.signals[0].source == SignalSource::Taint).then_some(v.signals)
    })
    .await;
    assert_eq!(signals[0].node, "n1");
}

#[tokio::test]
async fn the_ledger_survives_a_new_instance_and_a_race_is_a_conflict() {
    let Some((_cp, client)) = setup(false).await else {
        return;
    };
    let a = cluster(&client).await;
    assert_eq!(
        a.observe().await.expect("observe").ledger,
        Ledger::default()
    );
    let mut ledger = Ledger {
        last_drain_started_at: Some(booster_core::testkit::t(60)),
        ..Ledger::default()
    };
    a.store_ledger(&ledger).await.expect("create");
    // A second replica (or a restarted one) reads it back.
    let b = cluster(&client).await;
    assert_eq!(b.observe().await.expect("observe").ledger, ledger);
    ledger.last_drain_started_at = Some(booster_core::testkit::t(120));
    b.store_ledger(&ledger).await.expect("b writes");
    // `a` read the old version: its write loses the race, nothing is overwritten.
    let r = a.store_ledger(&Ledger::default()).await;
    assert!(matches!(r, Err(PortError::Conflict(_))), "{r:?}");
    assert_eq!(a.observe().await.expect("re-read").ledger, ledger);
    a.store_ledger(&Ledger::default())
        .await
        .expect("after a re-read it writes");
}

#[tokio::test]
async fn node_actions_cordon_protect_untaint_and_record_events() {
    let Some((_cp, client)) = setup(false).await else {
        return;
    };
    node(
        &client,
        "n1",
        json!({"spec": {"taints": [{"key": "aws-node-termination-handler/rebalance-recommendation", "effect": "NoSchedule"}, {"key": "other", "effect": "NoSchedule"}]}}),
    )
    .await;
    node(&client, "r1", json!({})).await;
    let c = cluster(&client).await;
    let nodes: Api<Node> = Api::all(client.clone());
    c.set_unschedulable("n1", true).await.expect("cordon");
    c.remove_rebalance_taint("n1").await.expect("untaint");
    c.protect("r1", "n1").await.expect("protect");
    let n1 = nodes.get("n1").await.expect("n1");
    let spec = n1.spec.expect("spec");
    assert_eq!(spec.unschedulable, Some(true));
    let keys: Vec<String> = spec
        .taints
        .unwrap_or_default()
        .into_iter()
        .map(|t| t.key)
        .collect();
    assert!(
        keys.contains(&"other".to_string())
            && !keys
                .iter()
                .any(|k| k.starts_with("aws-node-termination-handler/")),
        "only NTH's taint removed: {keys:?}"
    );
    let ann = |n: &Node, k: &str| {
        n.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(k))
            .cloned()
    };
    let r1 = nodes.get("r1").await.expect("r1");
    assert_eq!(
        ann(&r1, "cluster-autoscaler.kubernetes.io/scale-down-disabled").as_deref(),
        Some("true")
    );
    assert_eq!(
        ann(&r1, "aws-spots-booster/protected-for").as_deref(),
        Some("n1")
    );
    c.unprotect("r1").await.expect("unprotect");
    let r1 = nodes.get("r1").await.expect("r1");
    assert_eq!(
        ann(&r1, "cluster-autoscaler.kubernetes.io/scale-down-disabled"),
        None
    );
    assert_eq!(
        ann(&r1, "aws-spots-booster/protected-for").as_deref(),
        Some("n1"),
        "the marker stays"
    );
    c.set_unschedulable("n1", false).await.expect("uncordon");
    assert_ne!(
        nodes
            .get("n1")
            .await
            .expect("n1")
            .spec
            .and_then(|s| s.unschedulable),
        Some(true)
    );
    // Every action and refusal becomes an Event on the node.
    c.record_event(
        "n1",
        Reason::DrainTimedOut,
        "drain blocked by PodDisruptionBudget default/web for pod default/web-1",
        true,
    )
    .await
    .expect("event");
    let evs = until("the Event", || async {
        let l = Api::<k8s_openapi::api::events::v1::Event>::all(client.clone())
            .list(&ListParams::default())
            .await
            .ok()?;
        l.items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("DrainTimedOut"))
    })
    .await;
    assert_eq!(evs.regarding.and_then(|r| r.name).as_deref(), Some("n1"));
    assert_eq!(evs.type_.as_deref(), Some("Warning"));
    assert!(evs.note.unwrap_or_default().contains("web-1"));
    // A node that does not exist is NotFound, not a panic.
    assert!(matches!(
        c.set_unschedulable("ghost", true).await,
        Err(PortError::NotFound(_))
    ));
}

fn pod(
    name: &str,
    node: &str,
    labels: serde_json::Value,
    extra: serde_json::Value,
) -> serde_json::Value {
    let mut p = json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "pause"}]},
    });
    merge(&mut p, extra);
    p
}

async fn pod_names(client: &Client, node: &str) -> Vec<String> {
    let mut v: Vec<String> = Api::<Pod>::all(client.clone())
        .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
        .await
        .expect("pods")
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn drains_respect_budgets_daemonsets_mirror_pods_and_do_not_disrupt() {
    let Some((_cp, client)) = setup(true).await else {
        return;
    };
    let _kubelet = Kubelet::start(client.clone(), Duration::from_millis(300));
    node(&client, "a", json!({})).await;
    node(&client, "b", json!({})).await;
    let web = json!({"app": "web"});
    for (name, n) in [("web-1", "a"), ("web-2", "b")] {
        let _: Pod = create(
            &client,
            Some("default"),
            pod(name, n, web.clone(), json!({})),
        )
        .await;
    }
    let _: Pod = create(
        &client,
        Some("default"),
        pod("agent-a", "a", json!({"app": "agent"}), json!({"metadata": {"ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "uid": "00000000-0000-0000-0000-000000000001", "controller": true}]}})),
    )
    .await;
    let _: Pod = create(
        &client,
        Some("default"),
        pod(
            "static-a",
            "a",
            json!({"app": "static"}),
            json!({"metadata": {"annotations": {"kubernetes.io/config.mirror": "abc"}}}),
        ),
    )
    .await;
    let _: Pod = create(
        &client,
        Some("default"),
        pod(
            "keep-a",
            "a",
            json!({"app": "keep"}),
            json!({"metadata": {"annotations": {"karpenter.sh/do-not-disrupt": "true"}}}),
        ),
    )
    .await;
    let _: PodDisruptionBudget = create(
        &client,
        Some("default"),
        json!({"metadata": {"name": "web"}, "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}}),
    )
    .await;
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "default");
    until("the budget's status", || async {
        let s = pdbs.get("web").await.ok()?.status?;
        (s.current_healthy == 2).then_some(())
    })
    .await;
    let c = cluster(&client).await;
    let spec = |secs: u64, dry_run: bool| DrainSpec {
        node: "a".into(),
        timeout: Dur::from_secs(secs),
        dry_run,
    };

    // Dry run: the server validates every eviction; nothing changes.
    let before: BTreeMap<String, String> = Api::<Pod>::namespaced(client.clone(), "default")
        .list(&ListParams::default())
        .await
        .expect("pods")
        .items
        .into_iter()
        .map(|p| {
            (
                p.metadata.name.unwrap_or_default(),
                p.metadata.resource_version.unwrap_or_default(),
            )
        })
        .collect();
    let dry = c.drain(&spec(5, true)).await.expect("dry run");
    assert_eq!(
        dry,
        DrainOutcome::TimedOut {
            blocker: "default/keep-a (annotated not to be disrupted); default/web-1 (blocked by PodDisruptionBudget default/web)".into()
        }
    );
    let after: BTreeMap<String, String> = Api::<Pod>::namespaced(client.clone(), "default")
        .list(&ListParams::default())
        .await
        .expect("pods")
        .items
        .into_iter()
        .map(|p| {
            (
                p.metadata.name.unwrap_or_default(),
                p.metadata.resource_version.unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(before, after, "a dry run writes nothing");

    // The budget refuses (429) and keep-a may not be disrupted: the attempt times out.
    let out = c.drain(&spec(4, false)).await.expect("drain");
    let DrainOutcome::TimedOut { blocker } = out else {
        panic!("{out:?}")
    };
    assert!(
        blocker.contains("default/keep-a (annotated")
            && blocker.contains("default/web-1 (blocked by PodDisruptionBudget default/web)"),
        "{blocker}"
    );
    assert_eq!(
        pod_names(&client, "a").await,
        vec!["agent-a", "keep-a", "static-a", "web-1"]
    );

    // A third web pod gives the budget room; keep-a loses its annotation.
    let _: Pod = create(
        &client,
        Some("default"),
        pod("web-3", "b", web.clone(), json!({})),
    )
    .await;
    until("room in the budget", || async {
        let s = pdbs.get("web").await.ok()?.status?;
        (s.disruptions_allowed >= 1).then_some(())
    })
    .await;
    let patch = json!({"metadata": {"annotations": {"karpenter.sh/do-not-disrupt": null}}});
    Api::<Pod>::namespaced(client.clone(), "default")
        .patch("keep-a", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("unannotate");
    let out = c.drain(&spec(30, false)).await.expect("drain");
    assert_eq!(out, DrainOutcome::Drained);
    assert_eq!(
        pod_names(&client, "a").await,
        vec!["agent-a", "static-a"],
        "DaemonSet and mirror pods stay"
    );
    assert_eq!(pod_names(&client, "b").await, vec!["web-2", "web-3"]);
}

#[tokio::test]
async fn the_lease_is_taken_over_when_its_holder_stops_or_leaves() {
    let Some((_cp, client)) = setup(false).await else {
        return;
    };
    let d = Duration::from_secs(2);
    let a = LeaseLock::new(client.clone(), NS, "aws-spots-booster", "replica-a", d);
    let b = LeaseLock::new(client.clone(), NS, "aws-spots-booster", "replica-b", d);
    assert_eq!(a.try_acquire_or_renew().await, Ok(true));
    assert_eq!(b.try_acquire_or_renew().await, Ok(false), "held and fresh");
    assert_eq!(a.try_acquire_or_renew().await, Ok(true), "renewed");
    // `a` dies without releasing: `b` takes over once the lease has expired.
    let started = Instant::now();
    until("b to lead", || async {
        (b.try_acquire_or_renew().await == Ok(true)).then_some(())
    })
    .await;
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "not before the lease expired"
    );
    assert_eq!(
        a.try_acquire_or_renew().await,
        Ok(false),
        "the old holder does not act"
    );
    // A clean stop hands over at once.
    b.release().await.expect("release");
    assert_eq!(a.try_acquire_or_renew().await, Ok(true));
    let lease = Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(client.clone(), NS)
        .get("aws-spots-booster")
        .await
        .expect("lease");
    assert_eq!(lease.spec.and_then(|s| s.lease_transitions), Some(2));
}

#[tokio::test]
async fn namespaces_are_created_for_the_tests() {
    // Guards the harness itself: the apiserver serves RBAC and the core API.
    let Some((_cp, client)) = setup(false).await else {
        return;
    };
    let ns: Api<Namespace> = Api::all(client.clone());
    let names: Vec<String> = ns
        .list(&ListParams::default())
        .await
        .expect("namespaces")
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(names.contains(&"kube-system".to_string()) && names.contains(&"default".to_string()));
}
