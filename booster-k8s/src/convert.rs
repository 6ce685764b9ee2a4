//! Kubernetes objects to the core's snapshot types, and back for the ledger.

use std::collections::BTreeMap;

use booster_core::ca_status;
use booster_core::snapshot::instance_id_from_provider_id;
use booster_core::{CaObservation, Ledger, Node, Signal, SignalSource, Timestamp};
use k8s_openapi::api::core::v1::{ConfigMap, Event, Node as KNode, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// NTH's taint on a node with a rebalance recommendation.
pub const REBALANCE_TAINT: &str = "aws-node-termination-handler/rebalance-recommendation";
/// Cluster Autoscaler's scale-down opt-out annotation.
pub const SCALE_DOWN_DISABLED: &str = "cluster-autoscaler.kubernetes.io/scale-down-disabled";
/// The booster's marker on a replacement: the signalled node it stands (or stood) in for.
pub const PROTECTED_FOR: &str = "aws-spots-booster/protected-for";
/// CA's annotation on its status ConfigMap.
pub const CA_LAST_UPDATED: &str = "cluster-autoscaler.kubernetes.io/last-updated";
/// The key of the ledger in its ConfigMap.
pub const LEDGER_KEY: &str = "ledger.json";

pub(crate) fn ts(t: &Time) -> Timestamp {
    Timestamp::from_unix_millis(t.0.as_millisecond())
}

/// The core's view of a Node.
pub fn node_of(n: &KNode, pods_to_evict: u32) -> Node {
    let meta = &n.metadata;
    let spec = n.spec.as_ref();
    let annotations = meta.annotations.as_ref();
    let ann = |k: &str| annotations.and_then(|a| a.get(k)).map(String::as_str);
    Node {
        name: meta.name.clone().unwrap_or_default(),
        instance_id: spec
            .and_then(|s| s.provider_id.as_deref())
            .and_then(instance_id_from_provider_id)
            .map(str::to_string),
        created_at: meta.creation_timestamp.as_ref().map(ts).unwrap_or_default(),
        ready: n
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")),
        unschedulable: spec.and_then(|s| s.unschedulable).unwrap_or(false),
        rebalance_taint: rebalance_taint_at(n).is_some(),
        scale_down_disabled: ann(SCALE_DOWN_DISABLED).is_some_and(|v| v.trim() == "true"),
        protected_for: ann(PROTECTED_FOR).map(str::to_string),
        pods_to_evict,
    }
}

/// `Some(time added, if known)` when the node carries NTH's rebalance taint.
pub(crate) fn rebalance_taint_at(n: &KNode) -> Option<Option<Timestamp>> {
    n.spec
        .as_ref()?
        .taints
        .as_ref()?
        .iter()
        .find(|t| t.key == REBALANCE_TAINT)
        .map(|t| t.time_added.as_ref().map(ts))
}

/// The time an NTH rebalance Event stands for: the `… cordoned at <RFC 3339>` time in its
/// message (both the IMDS and the queue-processor forms), else the Event's own times.
pub fn event_time(e: &Event) -> Option<Timestamp> {
    let from_message = e.message.as_deref().and_then(|m| {
        let at = m.find(" at ")?;
        let word = m[at + 4..].split_whitespace().next()?;
        Timestamp::parse_rfc3339(word.trim_end_matches(['.', ','])).ok()
    });
    from_message
        .or_else(|| {
            e.event_time
                .as_ref()
                .map(|t| Timestamp::from_unix_millis(t.0.as_millisecond()))
        })
        .or_else(|| e.first_timestamp.as_ref().map(ts))
        .or_else(|| e.last_timestamp.as_ref().map(ts))
        .or_else(|| e.metadata.creation_timestamp.as_ref().map(ts))
}

/// A signal from an NTH Event, if it is one about a Node.
pub fn signal_of_event(e: &Event) -> Option<Signal> {
    if e.reason.as_deref() != Some("RebalanceRecommendation") {
        return None;
    }
    if e.involved_object.kind.as_deref() != Some("Node") {
        return None;
    }
    Some(Signal {
        node: e.involved_object.name.clone()?,
        at: event_time(e)?,
        source: SignalSource::Event,
    })
}

/// A signal from NTH's taint. Its time is the taint's, else `fallback` (the time the node's
/// entry was recorded, or now).
pub fn signal_of_taint(n: &KNode, fallback: Timestamp) -> Option<Signal> {
    let at = rebalance_taint_at(n)?;
    Some(Signal {
        node: n.metadata.name.clone()?,
        at: at.unwrap_or(fallback),
        source: SignalSource::Taint,
    })
}

/// cluster-autoscaler's status ConfigMap as the engine sees it.
pub fn ca_observation(cm: Option<&ConfigMap>) -> CaObservation {
    let Some(cm) = cm else {
        return CaObservation::Missing;
    };
    let Some(text) = cm.data.as_ref().and_then(|d| d.get("status")) else {
        return CaObservation::Missing;
    };
    match ca_status::parse(text) {
        Err(e) => CaObservation::Invalid {
            error: e.to_string(),
        },
        Ok(status) => {
            let annotated = cm
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(CA_LAST_UPDATED))
                .and_then(|v| Timestamp::parse_go(v).ok());
            match annotated.or(status.time) {
                Some(updated_at) => CaObservation::Parsed { status, updated_at },
                None => CaObservation::Invalid {
                    error: "status has no time and the ConfigMap no last-updated annotation".into(),
                },
            }
        }
    }
}

/// Why a ledger ConfigMap could not be read.
#[derive(Debug, thiserror::Error)]
#[error("ledger ConfigMap key {LEDGER_KEY} is not a ledger: {0}")]
pub struct LedgerError(String);

/// The ledger stored in a ConfigMap (an absent key is an empty ledger).
pub fn ledger_of(cm: &ConfigMap) -> Result<Ledger, LedgerError> {
    match cm.data.as_ref().and_then(|d| d.get(LEDGER_KEY)) {
        None => Ok(Ledger::default()),
        Some(text) => serde_json::from_str(text).map_err(|e| LedgerError(e.to_string())),
    }
}

/// The ConfigMap data holding `ledger`.
pub fn ledger_data(ledger: &Ledger) -> BTreeMap<String, String> {
    let text = serde_json::to_string_pretty(ledger).unwrap_or_else(|_| "{}".into());
    BTreeMap::from([(LEDGER_KEY.to_string(), text)])
}

/// What a drain does with a pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodRole {
    /// Evict it.
    Evict,
    /// Leave it: DaemonSet, mirror or terminal pod.
    Ignore,
    /// It must not be evicted (do-not-disrupt / safe-to-evict=false): it blocks the drain.
    Protected,
}

/// Annotations that keep a pod from being evicted, as `(key, value)`.
pub const DEFAULT_PROTECTING_ANNOTATIONS: [(&str, &str); 2] = [
    ("karpenter.sh/do-not-disrupt", "true"),
    ("cluster-autoscaler.kubernetes.io/safe-to-evict", "false"),
];

/// Classifies a pod for a drain.
pub fn pod_role(p: &Pod, protecting: &[(String, String)]) -> PodRole {
    let meta = &p.metadata;
    let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return PodRole::Ignore;
    }
    let annotations = meta.annotations.as_ref();
    if annotations.is_some_and(|a| a.contains_key("kubernetes.io/config.mirror")) {
        return PodRole::Ignore;
    }
    let daemon = meta.owner_references.as_ref().is_some_and(|os| {
        os.iter()
            .any(|o| o.kind == "DaemonSet" && o.controller == Some(true))
    });
    if daemon {
        return PodRole::Ignore;
    }
    let protected = protecting.iter().any(|(k, v)| {
        annotations
            .and_then(|a| a.get(k))
            .is_some_and(|x| x.trim().eq_ignore_ascii_case(v))
    });
    if protected {
        PodRole::Protected
    } else {
        PodRole::Evict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> Event {
        serde_json::from_str(json).expect("event")
    }

    #[test]
    fn both_nth_message_forms_give_the_cordon_time() {
        let imds = event(
            r#"{"metadata":{"name":"a","creationTimestamp":"2024-05-02T14:03:11Z"},"involvedObject":{"kind":"Node","name":"n1"},"reason":"RebalanceRecommendation","message":"Rebalance recommendation received. Instance will be cordoned at 2024-05-02T14:03:10Z \n"}"#,
        );
        let queue = event(
            r#"{"metadata":{"name":"b"},"involvedObject":{"kind":"Node","name":"n2"},"reason":"RebalanceRecommendation","message":"Rebalance recommendation event received. Instance i-0abc will be cordoned at 2024-05-02T14:05:00Z","firstTimestamp":"2024-05-02T14:05:09Z"}"#,
        );
        let s = signal_of_event(&imds).expect("imds");
        assert_eq!(
            (s.node.as_str(), s.at),
            (
                "n1",
                Timestamp::parse_rfc3339("2024-05-02T14:03:10Z").expect("t")
            )
        );
        let s = signal_of_event(&queue).expect("queue");
        assert_eq!(
            s.at,
            Timestamp::parse_rfc3339("2024-05-02T14:05:00Z").expect("t")
        );
        let odd = event(
            r#"{"metadata":{"name":"c","creationTimestamp":"2024-05-02T14:03:11Z"},"involvedObject":{"kind":"Node","name":"n3"},"reason":"RebalanceRecommendation","message":"garbage at noon"}"#,
        );
        assert_eq!(
            signal_of_event(&odd).map(|s| s.at),
            Timestamp::parse_rfc3339("2024-05-02T14:03:11Z").ok()
        );
        let pod = event(
            r#"{"metadata":{"name":"d"},"involvedObject":{"kind":"Pod","name":"p"},"reason":"RebalanceRecommendation"}"#,
        );
        assert!(signal_of_event(&pod).is_none());
    }

    #[test]
    fn the_shared_nth_event_samples_give_signals() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/fixtures/nth-events");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            eprintln!("SKIPPED ../shared/fixtures/nth-events: not beside this checkout");
            return;
        };
        let mut seen = 0;
        for e in entries.flatten() {
            let text = std::fs::read_to_string(e.path()).expect("fixture");
            let ev: Event = serde_json::from_str(&text).expect("an Event");
            let s = signal_of_event(&ev).unwrap_or_else(|| panic!("{:?} gives a signal", e.path()));
            assert_eq!(Some(s.node.as_str()), ev.involved_object.name.as_deref());
            seen += 1;
        }
        assert!(seen > 0);
    }
}
