//! [`NthEvent`] decoded off the wire: the fields of an Event that are read, each by a
//! reader that keeps a bounded amount of it; the rest is skipped unread.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::{Deserialize, Deserializer};

use super::fields::{bounded, bounded_time, claimed_time, instance_id};
use super::nth_event::NthEvent;
use booster_core::Timestamp;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    #[serde(default)]
    metadata: WireMeta,
    #[serde(default)]
    involved_object: WireRef,
    #[serde(default, deserialize_with = "bounded")]
    reason: Option<String>,
    #[serde(default, deserialize_with = "claimed_time")]
    message: Option<Timestamp>,
    #[serde(default)]
    source: WireSource,
    #[serde(default, deserialize_with = "bounded")]
    reporting_component: Option<String>,
    #[serde(default, deserialize_with = "bounded_time")]
    event_time: Option<Timestamp>,
    #[serde(default, deserialize_with = "bounded_time")]
    first_timestamp: Option<Timestamp>,
    #[serde(default, deserialize_with = "bounded_time")]
    last_timestamp: Option<Timestamp>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireMeta {
    #[serde(default, deserialize_with = "bounded")]
    name: Option<String>,
    #[serde(default, deserialize_with = "bounded")]
    namespace: Option<String>,
    #[serde(default, deserialize_with = "bounded")]
    uid: Option<String>,
    #[serde(default, deserialize_with = "bounded")]
    resource_version: Option<String>,
    #[serde(default)]
    creation_timestamp: Option<Time>,
    #[serde(default, deserialize_with = "instance_id")]
    annotations: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireRef {
    #[serde(default, deserialize_with = "bounded")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "bounded")]
    name: Option<String>,
}

#[derive(Default, Deserialize)]
struct WireSource {
    #[serde(default, deserialize_with = "bounded")]
    component: Option<String>,
}

impl<'de> Deserialize<'de> for NthEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = Wire::deserialize(d)?;
        let m = w.metadata;
        Ok(NthEvent {
            metadata: ObjectMeta {
                name: m.name,
                namespace: m.namespace,
                uid: m.uid,
                resource_version: m.resource_version,
                creation_timestamp: m.creation_timestamp,
                ..ObjectMeta::default()
            },
            kind: w.involved_object.kind,
            node: w.involved_object.name,
            reason: w.reason,
            component: w.source.component.or(w.reporting_component),
            instance_id: m.annotations,
            claimed: w.message,
            own_time: w.event_time.or(w.first_timestamp).or(w.last_timestamp),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_and_odd_fields_are_dropped_not_kept_and_never_fail_the_event() {
        let big = "x".repeat(1 << 20);
        let json = serde_json::json!({
            "metadata": {
                "name": "e", "namespace": "default",
                "annotations": {"filler": big, "instance-id": "i-0abc", "n": 5},
                "labels": {"a": big},
                "managedFields": [{"manager": big}],
            },
            "involvedObject": {"kind": "Node", "name": big},
            "reason": "RebalanceRecommendation",
            "message": format!("{big} cordoned at 2024-05-02T14:03:10Z"),
            "source": {"component": 17},
            "count": 3,
            "series": {"count": 2},
        })
        .to_string();
        let e: NthEvent = serde_json::from_str(&json).expect("decodes");
        assert_eq!(e.instance_id.as_deref(), Some("i-0abc"));
        assert_eq!(e.node, None, "a megabyte name is no Node's");
        assert_eq!(e.component, None);
        // The claimed time is read through the filler; the text itself is not kept.
        assert_eq!(
            e.claimed,
            Timestamp::parse_rfc3339("2024-05-02T14:03:10Z").ok()
        );
        assert!(e.signal().is_none());
        // What is kept is small, whatever was sent.
        assert!(format!("{e:?}").len() < 1000);
    }
}
