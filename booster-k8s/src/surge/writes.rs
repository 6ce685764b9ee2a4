//! The surge's writes: every one conditional (the Deployment's resourceVersion, the pod's
//! uid), so that a surge never overwrites what somebody else changed meanwhile.

use booster_core::ports::PortError;
use booster_core::surge::{SurgeRecord, DELETION_COST, RECORD_ANNOTATION, SURGING_LABEL};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use kube::Client;
use serde_json::json;

use super::call;
use super::facts::Target;

fn params(manager: &str) -> PatchParams {
    PatchParams {
        field_manager: Some(manager.to_string()),
        ..PatchParams::default()
    }
}

/// Sets (or, with `None`, removes) the deletion cost of pod `ns/name` whose uid is `uid`.
pub(crate) async fn set_cost(
    client: &Client,
    manager: &str,
    (ns, name, uid): (&str, &str, &str),
    cost: Option<&str>,
) -> Result<(), PortError> {
    let patch = json!({"metadata": {"uid": uid, "annotations": {DELETION_COST: cost}}});
    call(
        &format!("set the deletion cost of pod {ns}/{name}"),
        Api::<Pod>::namespaced(client.clone(), ns).patch(
            name,
            &params(manager),
            &Patch::Merge(&patch),
        ),
    )
    .await
    .map(|_| ())
}

/// Raises the Deployment by one and records the surge, in one write.
pub(crate) async fn raise(
    client: &Client,
    manager: &str,
    t: &Target,
    record: &SurgeRecord,
) -> Result<(), PortError> {
    let patch = json!({
        "metadata": {
            "resourceVersion": t.resource_version,
            "labels": {SURGING_LABEL: "true"},
            "annotations": {RECORD_ANNOTATION: record.to_annotation()},
        },
        "spec": {"replicas": record.to},
    });
    deployment(client, manager, t, &patch, "raise").await
}

/// Removes the record, and sets the size back to `to` when given, in one write.
pub(crate) async fn end(
    client: &Client,
    manager: &str,
    t: &Target,
    to: Option<i32>,
) -> Result<(), PortError> {
    let mut patch = json!({
        "metadata": {
            "resourceVersion": t.resource_version,
            "labels": {SURGING_LABEL: null},
            "annotations": {RECORD_ANNOTATION: null},
        },
    });
    if let Some(n) = to {
        patch["spec"] = json!({"replicas": n});
    }
    deployment(client, manager, t, &patch, "end the surge of").await
}

async fn deployment(
    client: &Client,
    manager: &str,
    t: &Target,
    patch: &serde_json::Value,
    what: &str,
) -> Result<(), PortError> {
    call(
        &format!("{what} Deployment {}/{}", t.namespace, t.name),
        Api::<Deployment>::namespaced(client.clone(), &t.namespace).patch(
            &t.name,
            &params(manager),
            &Patch::Merge(patch),
        ),
    )
    .await
    .map(|_| ())
}
