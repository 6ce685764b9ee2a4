//! Who wrote a Node's cordon, rebalance taint and boost mark, and when, read from its
//! `managedFields` (which the apiserver records, so nobody can fake them).

use k8s_openapi::api::core::v1::Node as KNode;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};

use super::names::{BOOST_MARK, REBALANCE_TAINT};

/// The `managedFields` entry (of the Node itself, not its status) whose fields under
/// `section` (`f:spec`, `f:metadata`) pass `owns`.
pub(super) fn owner<'a>(
    n: &'a KNode,
    section: &str,
    owns: impl Fn(&serde_json::Value) -> bool,
) -> Option<&'a ManagedFieldsEntry> {
    n.metadata.managed_fields.as_ref()?.iter().find(|m| {
        m.subresource.as_deref().unwrap_or_default().is_empty()
            && m.fields_v1
                .as_ref()
                .and_then(|f| f.0.get(section))
                .is_some_and(&owns)
    })
}

pub(super) fn owns_boost_mark(meta: &serde_json::Value) -> bool {
    meta.get("f:annotations")
        .and_then(|a| a.get(format!("f:{BOOST_MARK}")))
        .is_some()
}

pub(super) fn owns_unschedulable(spec: &serde_json::Value) -> bool {
    spec.get("f:unschedulable").is_some()
}

/// Owns NTH's taint: the whole list (an atomic list) or its entry (a list keyed by key).
pub(super) fn owns_rebalance_taint(spec: &serde_json::Value) -> bool {
    let Some(taints) = spec.get("f:taints").and_then(|t| t.as_object()) else {
        return false;
    };
    let keyed = taints.keys().any(|k| k.starts_with("k:"));
    !keyed
        || taints
            .keys()
            .any(|k| k.starts_with("k:") && k.contains(REBALANCE_TAINT))
}

/// Keeps, of the Node's `managedFields`, only who owns `spec.unschedulable`, the taints and
/// the boost mark, and when they wrote it: the apiserver records both, so an Event cannot
/// fake them.
pub(crate) fn slim_managed_fields(n: &mut KNode) {
    let mut kept = Vec::new();
    if let Some(m) = owner(n, "f:spec", owns_unschedulable) {
        kept.push(reduced(
            m,
            serde_json::json!({"f:spec": {"f:unschedulable": {}}}),
        ));
    }
    if let Some(m) = owner(n, "f:spec", owns_rebalance_taint) {
        kept.push(reduced(m, serde_json::json!({"f:spec": {"f:taints": {}}})));
    }
    if let Some(m) = owner(n, "f:metadata", owns_boost_mark) {
        kept.push(reduced(
            m,
            serde_json::json!({"f:metadata": {"f:annotations": {format!("f:{BOOST_MARK}"): {}}}}),
        ));
    }
    n.metadata.managed_fields = Some(kept);
}

fn reduced(m: &ManagedFieldsEntry, fields: serde_json::Value) -> ManagedFieldsEntry {
    ManagedFieldsEntry {
        manager: m.manager.clone(),
        time: m.time.clone(),
        fields_v1: Some(FieldsV1(fields)),
        ..ManagedFieldsEntry::default()
    }
}
