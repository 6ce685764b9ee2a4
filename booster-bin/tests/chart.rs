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
    // own Events, placeholder pods in our own namespace), `update`/`patch` of namespaced
    // objects only by name.
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
            // Pods are created (placeholders) only in their own namespace, where no service
            // account but `default` exists.
            let own_pods = resources == ["pods"]
                && d["kind"] == "Role"
                && d["metadata"]["namespace"] == "aws-spots-booster-placeholders";
            if verbs.contains(&"create") {
                assert!(
                    resources == ["pods/eviction"] || resources == ["events"] || own_pods,
                    "create on {resources:?}"
                );
            }
            // Surges patch Deployments and pods, in a role of their own that the chart
            // leaves out with `surge: off`.
            let surge_role = d["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with("-surge"));
            if verbs.iter().any(|v| *v == "update" || *v == "patch") {
                assert!(
                    named
                        || resources == ["nodes"]
                        || resources == ["events"]
                        || (surge_role && (resources == ["deployments"] || resources == ["pods"])),
                    "write on {resources:?}"
                );
            }
        }
    }
}

/// `surge: off` leaves the surge's rights out; the flag follows the value.
#[test]
fn surge_off_grants_no_write_on_workloads() {
    let Some(helm) = helm() else { return };
    let on = render(&helm, &[]);
    assert!(on.contains("--surge=single-replica"), "{on}");
    assert!(on.contains("aws-spots-booster-surge"));
    let off = render(&helm, &["config.surge=off"]);
    assert!(off.contains("--surge=off"));
    assert!(!off.contains("aws-spots-booster-surge"), "{off}");
    assert!(!off.contains("deployments"), "{off}");
    // `off` unquoted in a values file is YAML's false: the same.
    let values = std::env::temp_dir().join(format!("asb-surge-off-{}.yaml", std::process::id()));
    std::fs::write(&values, "config:\n  surge: off\n").expect("values");
    let out = Command::new(&helm)
        .args(["template", "t", &chart(), "-n", "kube-system", "-f"])
        .arg(&values)
        .output()
        .expect("helm runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(&values);
    assert!(text.contains("--surge=off"), "{text}");
    assert!(!text.contains("aws-spots-booster-surge"));
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
    let dry = PostParams {
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
        // A Namespace is made for real: the objects in it are checked next.
        let pp = if types.kind == "Namespace" {
            PostParams::default()
        } else {
            dry.clone()
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
            "ClusterRole",
            "ClusterRoleBinding",
            "ClusterRoleBinding",
            "ConfigMap",
            "Deployment",
            "Lease",
            "Namespace",
            "PodDisruptionBudget",
            "PriorityClass",
            "ResourceQuota",
            "Role",
            "Role",
            "Role",
            "Role",
            "RoleBinding",
            "RoleBinding",
            "RoleBinding",
            "RoleBinding",
            "Service",
            "ServiceAccount"
        ]
    );
}

/// The keys a user sets, as dotted paths: Kubernetes structures (affinity, resources, …)
/// and label or annotation maps are one key each.
fn value_keys(v: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
    const WHOLE: [&str; 9] = [
        "affinity",
        "resources",
        "nodeSelector",
        "tolerations",
        "topologySpreadConstraints",
        "env",
        "labels",
        "annotations",
        "extraArgs",
    ];
    let Some(map) = v.as_object() else { return };
    for (k, x) in map {
        let path = format!("{prefix}{k}");
        match x.as_object() {
            Some(m) if !m.is_empty() && !WHOLE.contains(&k.as_str()) => {
                value_keys(x, &format!("{path}."), out)
            }
            _ => out.push(path),
        }
    }
}

#[test]
fn the_docs_values_table_names_every_value_and_config_is_the_flags() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let values: serde_json::Value = serde_saphyr::from_str(
        &std::fs::read_to_string(format!("{}/values.yaml", chart())).expect("values.yaml"),
    )
    .expect("values parse");
    let mut keys = Vec::new();
    value_keys(&values, "", &mut keys);
    // docs/src/running.md has both tables: the chart's values, and the flags.
    let readme =
        std::fs::read_to_string(format!("{root}/docs/src/running.md")).expect("running.md");
    let start = readme.find("## Chart values").expect("the values table");
    let table: String = readme[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .collect::<Vec<_>>()
        .join("\n");
    // Every row's first cell names keys: each must be in values.yaml.
    let mut documented = Vec::new();
    for row in table.lines().skip(2) {
        let first = row.split('|').nth(1).unwrap_or_default();
        for k in first.split('`').skip(1).step_by(2) {
            documented.push(k.to_string());
        }
    }
    for k in &keys {
        let covered = documented.contains(k)
            || (k.starts_with("config.") && documented.iter().any(|d| d == "config.*"));
        assert!(
            covered,
            "values.yaml's `{k}` is not in the docs' values table"
        );
    }
    for d in documented.iter().filter(|d| *d != "config.*") {
        assert!(
            keys.contains(d),
            "the docs document `{d}`, values.yaml has no such key"
        );
    }
    // config.X is the flag --x (kebab case) of the flags table.
    for k in keys.iter().filter_map(|k| k.strip_prefix("config.")) {
        let mut flag = String::from("--");
        for c in k.chars() {
            if c.is_ascii_uppercase() {
                flag.push('-');
            }
            flag.push(c.to_ascii_lowercase());
        }
        assert!(
            readme.contains(&format!("`{flag}`")),
            "config.{k}: no flag {flag} in the docs' flags table"
        );
    }
}

#[test]
fn the_defaults_keep_the_replicas_apart_and_off_spot_and_monitoring_renders() {
    let Some(helm) = helm() else { return };
    let rendered = docs(&render(&helm, &[]));
    let deploy = rendered
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("Deployment");
    let spec = &deploy["spec"]["template"]["spec"];
    let anti =
        &spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0];
    assert_eq!(
        anti["podAffinityTerm"]["topologyKey"],
        "kubernetes.io/hostname"
    );
    let pref = spec["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        [0]["preference"]["matchExpressions"]
        .as_array()
        .expect("non-spot preference")
        .iter()
        .map(|e| e["key"].as_str().unwrap_or_default().to_string())
        .collect::<Vec<_>>();
    assert!(
        pref.contains(&"eks.amazonaws.com/capacityType".to_string()),
        "{pref:?}"
    );
    assert_eq!(
        spec["topologySpreadConstraints"][0]["topologyKey"],
        "topology.kubernetes.io/zone"
    );
    // The pods' labels are what the anti-affinity selects.
    let labels = &deploy["spec"]["template"]["metadata"]["labels"];
    assert_eq!(labels["app.kubernetes.io/name"], "aws-spots-booster");
    assert!(!rendered.iter().any(|d| d["kind"] == "PrometheusRule"));

    let rendered = docs(&render(
        &helm,
        &[
            "prometheusRule.enabled=true",
            "grafanaDashboard.enabled=true",
        ],
    ));
    let rule = rendered
        .iter()
        .find(|d| d["kind"] == "PrometheusRule")
        .expect("PrometheusRule");
    let shipped: serde_json::Value = serde_saphyr::from_str(
        &std::fs::read_to_string(format!("{}/files/alerts.yaml", chart())).expect("alerts"),
    )
    .expect("alerts parse");
    assert_eq!(rule["spec"]["groups"], shipped["groups"]);
    let cm = rendered
        .iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["labels"]["grafana_dashboard"] == "1")
        .expect("dashboard ConfigMap");
    let dash: serde_json::Value =
        serde_json::from_str(cm["data"]["aws-spots-booster.json"].as_str().expect("json"))
            .expect("dashboard JSON");
    assert_eq!(dash["uid"], "aws-spots-booster");
}
