//! The Helm chart: it lints, renders, its arguments are accepted by the binary, and its RBAC
//! is deploy/rbac.yaml's (which a test runs against a real apiserver).

use std::path::PathBuf;
use std::process::Command;

fn helm() -> Option<PathBuf> {
    let p = std::env::var_os("BOOSTER_HELM")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".cache/aws-spots-booster/tools/bin/helm"))
        })?;
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var("BOOSTER_REQUIRE_HELM").as_deref() != Ok("1"),
        "helm not found at {}: `make helm` builds it",
        p.display()
    );
    eprintln!("SKIPPED chart test: helm not found (`make helm` builds it)");
    None
}

fn chart() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/helm/aws-spots-booster"
    )
    .to_string()
}

fn render(helm: &PathBuf, sets: &[&str]) -> String {
    let mut cmd = Command::new(helm);
    cmd.args(["template", "t", &chart(), "-n", "kube-system"]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().expect("helm runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn docs(text: &str) -> Vec<serde_json::Value> {
    text.split("\n---")
        .filter(|d| d.lines().any(|l| l.starts_with("kind:")))
        .map(|d| serde_saphyr::from_str(d).expect("YAML"))
        .collect()
}

#[test]
fn the_chart_lints_and_its_arguments_are_the_binarys() {
    let Some(helm) = helm() else { return };
    let lint = Command::new(&helm)
        .args(["lint", &chart()])
        .output()
        .expect("lint");
    assert!(
        lint.status.success(),
        "{}",
        String::from_utf8_lossy(&lint.stdout)
    );
    let text = render(
        &helm,
        &[
            "config.dryRun=true",
            "config.ignoredAutoscalingGroups={a,b}",
            "config.drainTimeout=3m",
            "clusterName=prod",
            "config.eventNamespaces={default,nth}",
        ],
    );
    let deployment = docs(&text)
        .into_iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment");
    let args: Vec<String> = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    let out = Command::new(env!("CARGO_BIN_EXE_aws-spots-booster"))
        .args(&args)
        .arg("--print-config")
        .output()
        .expect("binary");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(cfg["engine"]["dryRun"], true);
    assert_eq!(cfg["engine"]["drainTimeout"], "3m");
    assert_eq!(
        cfg["engine"]["ignoredGroups"],
        serde_json::json!(["a", "b"])
    );
    assert_eq!(cfg["connectionMode"], "incluster");
    assert_eq!(
        cfg["engine"]["clusterTag"],
        "k8s.io/cluster-autoscaler/prod"
    );
    assert_eq!(
        cfg["engine"]["eventNamespaces"],
        serde_json::json!(["default", "nth"])
    );
    assert_eq!(
        cfg["engine"]["nthFieldManagers"],
        serde_json::json!(["node-termination-handler"])
    );
    assert_eq!(cfg["leaderElect"], true);
}

#[test]
fn the_charts_rbac_is_the_tested_one() {
    let Some(helm) = helm() else { return };
    let rendered = docs(&render(&helm, &[]));
    let tested = docs(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/rbac.yaml"))
            .expect("rbac.yaml"),
    );
    // Every role, where it is bound, with its rules: the same set in both, and the ledger
    // and the Lease the booster may update, created in both.
    let roles = |ds: &[serde_json::Value]| {
        let mut v: Vec<String> = ds
            .iter()
            .filter(|d| {
                matches!(
                    d["kind"].as_str(),
                    Some("ClusterRole" | "Role" | "ConfigMap" | "Lease")
                )
            })
            .map(|d| {
                let what = match d["kind"].as_str() {
                    Some("ConfigMap" | "Lease") => d["metadata"]["name"].clone(),
                    _ => d["rules"].clone(),
                };
                format!("{} {} {}", d["kind"], d["metadata"]["namespace"], what)
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(roles(&rendered), roles(&tested));
    // No blanket write: `create` only where RBAC cannot name the object (evictions, our
    // own Events), `update`/`patch` of namespaced objects only by name.
    for d in rendered
        .iter()
        .filter(|d| matches!(d["kind"].as_str(), Some("ClusterRole" | "Role")))
    {
        for rule in d["rules"].as_array().expect("rules") {
            let verbs: Vec<&str> = rule["verbs"]
                .as_array()
                .expect("verbs")
                .iter()
                .filter_map(|v| v.as_str())
                .collect();
            let resources: Vec<&str> = rule["resources"]
                .as_array()
                .expect("resources")
                .iter()
                .filter_map(|v| v.as_str())
                .collect();
            let named = rule["resourceNames"]
                .as_array()
                .is_some_and(|n| !n.is_empty());
            if verbs.contains(&"create") {
                assert!(
                    resources == ["pods/eviction"] || resources == ["events"],
                    "create on {resources:?}"
                );
            }
            if verbs.iter().any(|v| *v == "update" || *v == "patch") {
                assert!(
                    named || resources == ["nodes"] || resources == ["events"],
                    "write on {resources:?}"
                );
            }
        }
    }
}

/// Every object the chart renders is accepted by a real kube-apiserver (server-side dry
/// run: validated, defaulted, admitted, not stored).
#[tokio::test]
async fn the_rendered_chart_passes_a_server_side_dry_run() {
    use booster_tests::control_plane::{available, ControlPlane};
    use kube::api::{Api, DynamicObject, PostParams};
    use kube::discovery::{oneshot, Scope};
    let Some(helm) = helm() else { return };
    if !available() {
        return;
    }
    let cp = ControlPlane::start(false).expect("control plane");
    let client = cp.admin().await.expect("ready");
    let text = render(&helm, &["podDisruptionBudget.enabled=true"]);
    let pp = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let mut kinds = Vec::new();
    for doc in docs(&text) {
        let obj: DynamicObject = serde_json::from_value(doc).expect("object");
        let types = obj.types.clone().expect("apiVersion and kind");
        let gvk = kube::api::GroupVersionKind::try_from(&types).expect("gvk");
        let (ar, caps) = oneshot::pinned_kind(&client, &gvk)
            .await
            .expect("known kind");
        let ns = obj
            .metadata
            .namespace
            .clone()
            .unwrap_or("kube-system".into());
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Cluster => Api::all_with(client.clone(), &ar),
            Scope::Namespaced => Api::namespaced_with(client.clone(), &ns, &ar),
        };
        api.create(&pp, &obj)
            .await
            .unwrap_or_else(|e| panic!("{} {:?}: {e}", types.kind, obj.metadata.name));
        kinds.push(types.kind);
    }
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "Deployment",
            "Lease",
            "PodDisruptionBudget",
            "Role",
            "Role",
            "RoleBinding",
            "RoleBinding",
            "Service",
            "ServiceAccount"
        ]
    );
}
