//! What a surge decision needs to know of a pod: its owners, their strategy and size, the
//! budgets that select it, the autoscaler and GitOps tool that may size it.

use booster_core::ports::PortError;
use booster_core::surge::{
    Owner, Strategy, SurgeRecord, WorkloadFacts, OPT_ANNOTATION, RECORD_ANNOTATION,
};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, ListParams};
use kube::Client;

use super::{call, selector};

/// The Deployment a surge would move, as read.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub namespace: String,
    pub name: String,
    /// Its resourceVersion: every write is conditional on it.
    pub resource_version: String,
    /// `spec.replicas`.
    pub replicas: i32,
    /// Its pods' selector as a query.
    pub selector: Option<String>,
    /// The surge under way, if any.
    pub record: Option<SurgeRecord>,
}

impl Target {
    /// It, as what a report is about.
    pub(crate) fn subject(&self) -> super::Subject<'_> {
        super::Subject {
            kind: "Deployment",
            namespace: &self.namespace,
            name: &self.name,
        }
    }
}

/// Field managers of GitOps tools that revert drift in what they own.
const GITOPS_MANAGERS: [&str; 5] = [
    "argocd",
    "kustomize-controller",
    "helm-controller",
    "fleet-agent",
    "flux",
];

fn controller_of(refs: Option<&Vec<OwnerReference>>) -> Option<&OwnerReference> {
    refs?.iter().find(|r| r.controller == Some(true))
}

pub(crate) fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The facts of `p`, and its Deployment when it has one.
pub(crate) async fn read(
    client: &Client,
    p: &Pod,
) -> Result<(WorkloadFacts, Option<Target>), PortError> {
    let ns = p.metadata.namespace.clone().unwrap_or_default();
    let mut f = WorkloadFacts::of_pod(p.metadata.uid.as_deref().unwrap_or_default(), is_ready(p));
    f.budget_allows = budget_allows(client, &ns, p).await?;
    let Some(owner) = controller_of(p.metadata.owner_references.as_ref()) else {
        return Ok((f, None));
    };
    match owner.kind.as_str() {
        "ReplicaSet" => {}
        "StatefulSet" => {
            f.owner = Owner::StatefulSet(owner.name.clone());
            return Ok((f, None));
        }
        kind => {
            f.owner = Owner::Other(kind.to_string());
            return Ok((f, None));
        }
    }
    let rs = call(
        &format!("get ReplicaSet {ns}/{}", owner.name),
        Api::<ReplicaSet>::namespaced(client.clone(), &ns).get(&owner.name),
    )
    .await?;
    let Some(d_ref) = controller_of(rs.metadata.owner_references.as_ref())
        .filter(|r| r.kind == "Deployment")
        .cloned()
    else {
        f.owner = Owner::ReplicaSet(owner.name.clone());
        f.replicas = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        f.ready_replicas = rs
            .status
            .as_ref()
            .and_then(|s| s.ready_replicas)
            .unwrap_or(0);
        return Ok((f, None));
    };
    let d = call(
        &format!("get Deployment {ns}/{}", d_ref.name),
        Api::<Deployment>::namespaced(client.clone(), &ns).get(&d_ref.name),
    )
    .await?;
    if d.metadata.uid.as_deref() != Some(d_ref.uid.as_str()) {
        // Deleted and made again under the same name: not the pod's owner any more.
        f.owner = Owner::ReplicaSet(owner.name.clone());
        return Ok((f, None));
    }
    f.owner = Owner::Deployment(d_ref.name.clone());
    deployment_facts(&mut f, &d);
    f.autoscaler = autoscaler_of(client, &ns, &d_ref.name).await?;
    let target = target_of(&d, f.replicas, f.record.clone());
    // Whether it is the last Ready replica, counted off this node: a sibling here goes too.
    // Not needed when a surge is under way, or for a pod that is not Ready.
    let sel = target
        .selector
        .as_deref()
        .filter(|_| f.pod_ready && f.record.is_none());
    if let Some(sel) = sel {
        let node = p.spec.as_ref().and_then(|s| s.node_name.as_deref());
        f.ready_replicas = 1 + ready_off(client, &ns, sel, node).await?;
    }
    Ok((f, Some(target)))
}

/// The Deployment as a surge's target, of `replicas` and `record` as its facts read them.
fn target_of(d: &Deployment, replicas: i32, record: Option<SurgeRecord>) -> Target {
    Target {
        namespace: d.metadata.namespace.clone().unwrap_or_default(),
        name: d.metadata.name.clone().unwrap_or_default(),
        resource_version: d.metadata.resource_version.clone().unwrap_or_default(),
        replicas,
        selector: d.spec.as_ref().and_then(|s| selector::query(&s.selector)),
        record,
    }
}

/// `t` read again (its resourceVersion, size and record now).
pub(crate) async fn refresh(client: &Client, t: &Target) -> Result<Target, PortError> {
    let d = call(
        &format!("get Deployment {}/{}", t.namespace, t.name),
        Api::<Deployment>::namespaced(client.clone(), &t.namespace).get(&t.name),
    )
    .await?;
    let mut f = WorkloadFacts::of_pod("", false);
    deployment_facts(&mut f, &d);
    Ok(target_of(&d, f.replicas, f.record))
}

/// Ready pods selected by `sel` in `ns`, not terminating, on a node other than `node`.
async fn ready_off(
    client: &Client,
    ns: &str,
    sel: &str,
    node: Option<&str>,
) -> Result<i32, PortError> {
    let pods = call(
        &format!("list pods {sel} in {ns}"),
        Api::<Pod>::namespaced(client.clone(), ns).list(&ListParams::default().labels(sel)),
    )
    .await?;
    Ok(pods
        .items
        .iter()
        .filter(|q| q.metadata.deletion_timestamp.is_none() && is_ready(q))
        .filter(|q| q.spec.as_ref().and_then(|s| s.node_name.as_deref()) != node)
        .count() as i32)
}

/// What the Deployment itself says.
pub(crate) fn deployment_facts(f: &mut WorkloadFacts, d: &Deployment) {
    let spec = d.spec.as_ref();
    let status = d.status.as_ref();
    f.replicas = spec.and_then(|s| s.replicas).unwrap_or(1);
    f.ready_replicas = status.and_then(|s| s.ready_replicas).unwrap_or(0);
    f.paused = spec.and_then(|s| s.paused).unwrap_or(false);
    f.strategy = strategy(d);
    f.rollout_complete = status.is_some_and(|s| {
        s.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
            && s.replicas.unwrap_or(0) == f.replicas
            && s.updated_replicas.unwrap_or(0) == f.replicas
            && s.available_replicas.unwrap_or(0) >= f.replicas
    });
    f.tolerates_cordon = spec
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.tolerations.as_ref())
        .is_some_and(|ts| {
            ts.iter().any(|t| {
                let key = t.key.as_deref().unwrap_or_default();
                let effect_ok = t
                    .effect
                    .as_deref()
                    .is_none_or(|e| e.is_empty() || e == "NoSchedule");
                effect_ok
                    && (key == "node.kubernetes.io/unschedulable"
                        || (key.is_empty() && t.operator.as_deref() == Some("Exists")))
            })
        });
    let annotations = d.metadata.annotations.as_ref();
    f.opt = match annotations
        .and_then(|a| a.get(OPT_ANNOTATION))
        .map(String::as_str)
    {
        Some("true") => Some(true),
        Some("false") => Some(false),
        _ => None,
    };
    let record = annotations.and_then(|a| a.get(RECORD_ANNOTATION));
    f.record = record.and_then(|r| match SurgeRecord::parse(r) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!(deployment = ?d.metadata.name, error = %e, "surge record not ours: left as it is");
            None
        }
    });
    f.foreign_record = record.is_some() && f.record.is_none();
    f.gitops_manager = d.metadata.managed_fields.iter().flatten().find_map(|m| {
        let manager = m.manager.as_deref().unwrap_or_default();
        let owns_replicas = m
            .fields_v1
            .as_ref()
            .and_then(|f| f.0.get("f:spec"))
            .and_then(|s| s.get("f:replicas"))
            .is_some();
        (owns_replicas && GITOPS_MANAGERS.iter().any(|g| manager.contains(g)))
            .then(|| manager.to_string())
    });
}

fn strategy(d: &Deployment) -> Strategy {
    let Some(s) = d.spec.as_ref().and_then(|s| s.strategy.as_ref()) else {
        return Strategy::RollingUpdate;
    };
    if s.type_.as_deref() == Some("Recreate") {
        return Strategy::Recreate;
    }
    let zero = match s.rolling_update.as_ref().and_then(|r| r.max_surge.as_ref()) {
        Some(IntOrString::Int(n)) => *n <= 0,
        Some(IntOrString::String(p)) => p
            .trim_end_matches('%')
            .trim()
            .parse::<i64>()
            .is_ok_and(|n| n <= 0),
        // 25 % by default, rounded up: at least one.
        None => false,
    };
    if zero {
        Strategy::NoSurge
    } else {
        Strategy::RollingUpdate
    }
}

/// The least `disruptionsAllowed` of the budgets that select `p` (a budget not yet
/// computed allows none).
async fn budget_allows(client: &Client, ns: &str, p: &Pod) -> Result<Option<i32>, PortError> {
    let labels = p.metadata.labels.clone().unwrap_or_default();
    let pdbs = call(
        &format!("list PodDisruptionBudgets in {ns}"),
        Api::<PodDisruptionBudget>::namespaced(client.clone(), ns).list(&ListParams::default()),
    )
    .await?;
    Ok(pdbs
        .items
        .iter()
        .filter(|b| {
            b.spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .is_some_and(|sel| selector::selects(sel, &labels))
        })
        .map(|b| b.status.as_ref().map_or(0, |s| s.disruptions_allowed))
        .min())
}

/// The HorizontalPodAutoscaler sizing Deployment `name`, if any.
async fn autoscaler_of(client: &Client, ns: &str, name: &str) -> Result<Option<String>, PortError> {
    let hpas = call(
        &format!("list HorizontalPodAutoscalers in {ns}"),
        Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), ns).list(&ListParams::default()),
    )
    .await?;
    Ok(hpas.items.into_iter().find_map(|h| {
        let t = &h.spec.as_ref()?.scale_target_ref;
        (t.kind == "Deployment" && t.name == name)
            .then(|| format!("{ns}/{}", h.metadata.name.unwrap_or_default()))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts_of(d: serde_json::Value) -> WorkloadFacts {
        let d: Deployment = serde_json::from_value(d).expect("deployment");
        let mut f = WorkloadFacts::of_pod("u", true);
        deployment_facts(&mut f, &d);
        f
    }

    fn with_spec(spec: serde_json::Value) -> serde_json::Value {
        let mut base = serde_json::json!({
            "metadata": {"name": "d", "generation": 2},
            "spec": {"replicas": 1, "selector": {}, "template": {}},
            "status": {"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1,
                "availableReplicas": 1, "readyReplicas": 1}
        });
        if let (Some(s), Some(extra)) = (base["spec"].as_object_mut(), spec.as_object()) {
            for (k, v) in extra {
                s.insert(k.clone(), v.clone());
            }
        }
        base
    }

    #[test]
    fn the_strategy_says_whether_two_may_run_at_once() {
        let f = facts_of(with_spec(serde_json::json!({})));
        assert_eq!(f.strategy, Strategy::RollingUpdate, "25 % by default: one");
        assert!(f.rollout_complete);
        for (surge, want) in [
            (serde_json::json!(0), Strategy::NoSurge),
            (serde_json::json!("0%"), Strategy::NoSurge),
            (serde_json::json!("0"), Strategy::NoSurge),
            (serde_json::json!(1), Strategy::RollingUpdate),
            (serde_json::json!("10%"), Strategy::RollingUpdate),
        ] {
            let f = facts_of(with_spec(serde_json::json!({"strategy": {
                "type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": 1}
            }})));
            assert_eq!(f.strategy, want, "maxSurge {surge}");
        }
        let f = facts_of(with_spec(
            serde_json::json!({"strategy": {"type": "Recreate"}}),
        ));
        assert_eq!(f.strategy, Strategy::Recreate);
    }

    #[test]
    fn a_rollout_under_way_a_cordon_toleration_and_the_annotations_are_read() {
        let mut d = with_spec(serde_json::json!({"template": {"spec": {
            "containers": [],
            "tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]
        }}}));
        d["status"]["updatedReplicas"] = serde_json::json!(0);
        d["metadata"]["annotations"] = serde_json::json!({
            OPT_ANNOTATION: "false",
            RECORD_ANNOTATION: "{not json"
        });
        let f = facts_of(d);
        assert!(!f.rollout_complete);
        assert!(f.tolerates_cordon);
        assert_eq!(f.opt, Some(false));
        assert_eq!(f.record, None, "a record not ours is ignored");
        let everything = facts_of(with_spec(serde_json::json!({"template": {"spec": {
            "containers": [], "tolerations": [{"operator": "Exists"}]
        }}})));
        assert!(everything.tolerates_cordon);
    }

    #[test]
    fn a_gitops_tool_owning_the_replicas_is_named() {
        let mut d = with_spec(serde_json::json!({}));
        d["metadata"]["managedFields"] = serde_json::json!([
            {"manager": "kube-controller-manager", "operation": "Update",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:replicas": {}}}},
            {"manager": "argocd-controller", "operation": "Apply",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}, "f:template": {}}}}
        ]);
        assert_eq!(
            facts_of(d.clone()).gitops_manager.as_deref(),
            Some("argocd-controller")
        );
        d["metadata"]["managedFields"][1]["fieldsV1"] =
            serde_json::json!({"f:spec": {"f:template": {}}});
        assert_eq!(facts_of(d).gitops_manager, None, "replicas left out of Git");
    }
}
