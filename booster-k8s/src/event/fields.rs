//! Field readers that never hold more than a bounded amount of what the poster sent, and
//! take a value of the wrong shape as absent instead of failing the Event.

use std::fmt;

use booster_core::Timestamp;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

/// The longest value kept: Kubernetes names are at most 253 bytes; anything longer in a
/// field we read is not one of ours.
const MAX_FIELD: usize = 253;
/// NTH's annotation with the instance id it runs on.
pub const INSTANCE_ID_ANNOTATION: &str = "instance-id";

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

pub(super) fn bounded<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_any(OrSkip(Bounded))
}

pub(super) fn bounded_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
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

pub(super) fn claimed_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
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

pub(super) fn instance_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
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
