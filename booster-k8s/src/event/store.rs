//! [`EventStore`]: the signals of the Events watched, held within a fixed bound.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use booster_core::Signal;

use super::nth_event::NthEvent;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> NthEvent {
        serde_json::from_str(json).expect("event")
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
}
