//! [`NthEvent`]: the part of a core/v1 Event that the engine reads, decoded straight off
//! the wire.
//!
//! Anyone who may create Events writes these objects, so their size is the poster's choice:
//! a message or annotations of a megabyte each, by the thousand. Decoding into
//! `k8s_openapi`'s `Event` and trimming afterwards would hold every message for a moment
//! and keep what the trimming forgets. This type keeps only bounded fields: the message is
//! read for the time it claims and dropped as it is parsed, annotations other than
//! `instance-id` are skipped unread, and an over-long string is kept as absent.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use booster_core::{Signal, SignalSource, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

/// The longest value kept: Kubernetes names are at most 253 bytes; anything longer in a
/// field we read is not one of ours.
const MAX_FIELD: usize = 253;
/// NTH's annotation with the instance id it runs on.
pub const INSTANCE_ID_ANNOTATION: &str = "instance-id";

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

/// The signals of the Events watched, by Event: each Event costs its [`Signal`] (a few
/// hundred bytes) and nothing else. A reflector store would keep the object, its metadata
/// and an index entry, several times that, for objects anyone may post by the thousand.
#[derive(Clone, Default)]
pub struct EventStore {
    inner: Arc<RwLock<Inner>>,
    ready: Arc<tokio::sync::Notify>,
}

#[derive(Default)]
struct Inner {
    live: HashMap<String, Signal>,
    /// A (re)list under way: it replaces `live` when it is complete.
    listing: Option<HashMap<String, Signal>>,
    listed: bool,
    /// Events not kept because the store was full, since the start.
    dropped: u64,
}

/// The most Events one store keeps. Whoever may create Events in a watched namespace
/// chooses how many there are; past this many a new one is dropped (counted and logged),
/// so memory stays bounded whatever is posted. An Event is only ever a claim: NTH's taint
/// and cordon, which only a node-level actor writes, still show a signal whose Event was
/// dropped (README, "Which signals count").
pub const MAX_KEPT: usize = 10_000;

/// Inserts `sig` under `key` unless the map is full and does not have it; returns whether
/// it changed, and counts a drop.
fn keep(map: &mut HashMap<String, Signal>, dropped: &mut u64, key: String, sig: Signal) -> bool {
    if map.len() >= MAX_KEPT && !map.contains_key(&key) {
        *dropped += 1;
        // The first, then one line per thousand: a flood is reported, not echoed.
        if *dropped % 1000 == 1 {
            tracing::warn!(
                kept = MAX_KEPT,
                dropped = *dropped,
                event = %key,
                "too many rebalance Events in the watched namespaces: new ones are not kept (signals still show by NTH's taint or cordon)"
            );
        }
        return false;
    }
    map.insert(key, sig.clone()) != Some(sig)
}

fn key(e: &NthEvent) -> String {
    format!(
        "{}/{}",
        e.metadata.namespace.as_deref().unwrap_or_default(),
        e.metadata.name.as_deref().unwrap_or_default()
    )
}

impl EventStore {
    /// Applies one watcher event; returns whether the set of signals may have changed.
    pub fn apply(&self, ev: kube::runtime::watcher::Event<NthEvent>) -> bool {
        use kube::runtime::watcher::Event as W;
        let mut s = self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match ev {
            // NTH repeats an Event by bumping its count: the same signal, no change.
            W::Apply(e) => match e.signal() {
                Some(sig) => {
                    let Inner { live, dropped, .. } = &mut *s;
                    keep(live, dropped, key(&e), sig)
                }
                None => s.live.remove(&key(&e)).is_some(),
            },
            W::Delete(e) => s.live.remove(&key(&e)).is_some(),
            W::Init => {
                s.listing = Some(HashMap::new());
                false
            }
            W::InitApply(e) => {
                let Inner {
                    listing, dropped, ..
                } = &mut *s;
                if let (Some(sig), Some(l)) = (e.signal(), listing.as_mut()) {
                    keep(l, dropped, key(&e), sig);
                }
                false
            }
            W::InitDone => {
                if let Some(l) = s.listing.take() {
                    s.live = l;
                }
                s.live.shrink_to_fit();
                s.listed = true;
                self.ready.notify_waiters();
                true
            }
        }
    }

    /// The signals, in no particular order.
    pub fn signals(&self) -> Vec<Signal> {
        let s = self
            .inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.live.values().cloned().collect()
    }

    /// Events held now.
    pub fn len(&self) -> usize {
        let s = self
            .inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.live.len()
    }

    /// Events not kept because the store was full ([`MAX_KEPT`]), since the start.
    pub fn dropped(&self) -> u64 {
        self.inner.read().map(|s| s.dropped).unwrap_or_default()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Returns once the first list is complete.
    pub async fn wait_until_ready(&self) {
        loop {
            let notified = self.ready.notified();
            if self.inner.read().map(|s| s.listed).unwrap_or(true) {
                return;
            }
            notified.await;
        }
    }
}

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

/// Reads a string without keeping more than `MAX_FIELD` bytes of it.
struct Bounded;

impl<'de> Visitor<'de> for Bounded {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok((v.len() <= MAX_FIELD).then(|| v.to_string()))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

fn bounded<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_any(OrSkip(Bounded))
}

fn bounded_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
    Ok(bounded(d)?.and_then(|s| Timestamp::parse_rfc3339(&s).ok()))
}

/// Reads the message for the time it claims, dropping the text as it goes.
struct ClaimedTime;

impl<'de> Visitor<'de> for ClaimedTime {
    type Value = Option<Timestamp>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a message")
    }
    fn visit_str<E: de::Error>(self, m: &str) -> Result<Self::Value, E> {
        Ok(claimed_in(m))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// The `… cordoned at <RFC 3339>` time of NTH's messages (both the IMDS and the
/// queue-processor forms).
pub fn claimed_in(m: &str) -> Option<Timestamp> {
    let at = m.find(" at ")?;
    let word = m[at + 4..].split_whitespace().next()?;
    Timestamp::parse_rfc3339(word.trim_end_matches(['.', ','])).ok()
}

fn claimed_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
    d.deserialize_any(OrSkip(ClaimedTime))
}

/// Keeps the `instance-id` annotation, skips every other one unread.
struct InstanceId;

impl<'de> Visitor<'de> for InstanceId {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("annotations")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<Key>()? {
            if key.0 {
                found = map.next_value_seed(OrSkip(Bounded))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

fn instance_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_any(OrSkip(InstanceId))
}

/// An annotation key, reduced to whether it is `instance-id`.
struct Key(bool);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(Key(v == INSTANCE_ID_ANNOTATION))
            }
        }
        d.deserialize_str(V)
    }
}

/// A visitor that takes a value of another shape (a number where a string belongs, say) as
/// absent instead of failing the whole Event, and so the whole watch page.
struct OrSkip<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for OrSkip<V>
where
    V::Value: Default,
{
    type Value = V::Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        self.0.visit_str(v)
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        self.0.visit_str(v)
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        self.0.visit_str(&v)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0
            .visit_map(map)
            .or_else(|_: A::Error| Ok(Default::default()))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Default::default())
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Default::default())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Default::default())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Default::default())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Default::default())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Default::default())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Default::default())
    }
}

impl<'de, V: Visitor<'de>> de::DeserializeSeed<'de> for OrSkip<V>
where
    V::Value: Default,
{
    type Value = V::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
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

    #[test]
    fn a_store_keeps_at_most_max_kept_and_counts_the_rest() {
        use kube::runtime::watcher::Event as W;
        let mk = |i: usize| {
            event(&format!(
                r#"{{"metadata":{{"name":"e{i}","namespace":"default","creationTimestamp":"2024-05-02T14:03:11Z"}},"involvedObject":{{"kind":"Node","name":"n{i}"}},"reason":"RebalanceRecommendation","message":"cordoned at 2024-05-02T14:03:10Z"}}"#
            ))
        };
        let store = EventStore::default();
        store.apply(W::Init);
        for i in 0..MAX_KEPT + 5 {
            store.apply(W::InitApply(mk(i)));
        }
        store.apply(W::InitDone);
        assert_eq!((store.len(), store.dropped()), (MAX_KEPT, 5));
        // Full: a new one is dropped, one it holds is still updated and deleted.
        assert!(!store.apply(W::Apply(mk(MAX_KEPT + 10))));
        assert_eq!((store.len(), store.dropped()), (MAX_KEPT, 6));
        assert!(store.apply(W::Delete(mk(0))));
        assert!(store.apply(W::Apply(mk(MAX_KEPT + 11))));
        assert_eq!(store.len(), MAX_KEPT);
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
