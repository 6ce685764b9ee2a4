//! [`NthEvent`]: the kube resource it is, and the claim ([`Signal`]) it makes.

use std::borrow::Cow;

use booster_core::{Signal, SignalSource, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

/// NTH's Event reason for a rebalance recommendation.
pub const NTH_REASON: &str = "RebalanceRecommendation";
/// Karpenter's (its interruption queue's) Event reason for one. Karpenter does nothing else
/// on it: no taint, no cordon, so its Event can only be a claim that NTH's cordon backs.
pub const KARPENTER_REASON: &str = "SpotRebalanceRecommendation";

/// A `RebalanceRecommendation`-candidate Event, reduced to bounded fields.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NthEvent {
    /// Name, namespace, uid, resourceVersion and creation time; nothing else.
    pub metadata: ObjectMeta,
    /// `involvedObject.kind`.
    pub kind: Option<String>,
    /// `involvedObject.name`.
    pub node: Option<String>,
    /// `reason`.
    pub reason: Option<String>,
    /// `source.component`, else `reportingComponent`.
    pub component: Option<String>,
    /// The `instance-id` annotation.
    pub instance_id: Option<String>,
    /// The time the message claims (`… cordoned at <RFC 3339>`).
    pub claimed: Option<Timestamp>,
    /// `eventTime`, `firstTimestamp` or `lastTimestamp`, the first one set.
    pub own_time: Option<Timestamp>,
}

impl kube::Resource for NthEvent {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "Event".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "events".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

pub(crate) fn ts(t: &Time) -> Timestamp {
    Timestamp::from_unix_millis(t.0.as_millisecond())
}

impl NthEvent {
    /// The claim it makes, for the engine to vet; `None` unless it is a rebalance Event
    /// about a Node with a name and a time.
    pub fn signal(&self) -> Option<Signal> {
        if !matches!(self.reason.as_deref(), Some(NTH_REASON | KARPENTER_REASON))
            || self.kind.as_deref() != Some("Node")
        {
            return None;
        }
        let meta = &self.metadata;
        let created_at = meta.creation_timestamp.as_ref().map(ts);
        let node = self.node.as_deref()?;
        Some(Signal {
            id: format!(
                "{}/{}",
                meta.namespace.as_deref().unwrap_or_default(),
                meta.name.as_deref().unwrap_or_default()
            ),
            namespace: meta.namespace.clone().unwrap_or_default(),
            component: self.component.clone().unwrap_or_default(),
            instance_id: self.instance_id.clone(),
            created_at,
            source: SignalSource::Event,
            ..Signal::event(node, self.claimed.or(self.own_time).or(created_at)?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> NthEvent {
        serde_json::from_str(json).expect("event")
    }

    #[test]
    fn both_nth_message_forms_give_the_cordon_time() {
        let imds = event(
            r#"{"metadata":{"name":"a","namespace":"default","creationTimestamp":"2024-05-02T14:03:11Z"},"involvedObject":{"kind":"Node","name":"n1"},"reason":"RebalanceRecommendation","message":"Rebalance recommendation received. Instance will be cordoned at 2024-05-02T14:03:10Z \n","source":{"component":"aws-node-termination-handler"}}"#,
        );
        let s = imds.signal().expect("imds");
        assert_eq!(
            (s.node.as_str(), s.at, s.id.as_str()),
            (
                "n1",
                Timestamp::parse_rfc3339("2024-05-02T14:03:10Z").expect("t"),
                "default/a"
            )
        );
        assert_eq!(s.component, "aws-node-termination-handler");
        assert_eq!(
            s.created_at,
            Timestamp::parse_rfc3339("2024-05-02T14:03:11Z").ok()
        );
        let queue = event(
            r#"{"metadata":{"name":"b"},"involvedObject":{"kind":"Node","name":"n2"},"reason":"RebalanceRecommendation","message":"Rebalance recommendation event received. Instance i-0abc will be cordoned at 2024-05-02T14:05:00Z","firstTimestamp":"2024-05-02T14:05:09Z","reportingComponent":"x"}"#,
        );
        let s = queue.signal().expect("queue");
        assert_eq!(
            s.at,
            Timestamp::parse_rfc3339("2024-05-02T14:05:00Z").expect("t")
        );
        assert_eq!(s.component, "x");
        let odd = event(
            r#"{"metadata":{"name":"c","creationTimestamp":"2024-05-02T14:03:11Z"},"involvedObject":{"kind":"Node","name":"n3"},"reason":"RebalanceRecommendation","message":"garbage at noon"}"#,
        );
        assert_eq!(
            odd.signal().map(|s| s.at),
            Timestamp::parse_rfc3339("2024-05-02T14:03:11Z").ok()
        );
        let pod = event(
            r#"{"metadata":{"name":"d"},"involvedObject":{"kind":"Pod","name":"p"},"reason":"RebalanceRecommendation"}"#,
        );
        assert!(pod.signal().is_none());
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
            let ev: NthEvent = serde_json::from_str(&text).expect("an Event");
            let s = ev
                .signal()
                .unwrap_or_else(|| panic!("{:?} gives a signal", e.path()));
            assert_eq!(Some(s.node.as_str()), ev.node.as_deref());
            assert_eq!(s.namespace, "default");
            assert_eq!(s.component, "aws-node-termination-handler");
            assert!(s.instance_id.is_some());
            seen += 1;
        }
        assert!(seen > 0);
    }
}
