//! The watches behind [`super::KubeCluster`]: reflectors of Nodes, ConfigMaps and placeholder
//! pods, the rebalance Event watches, and the sign that the apiserver still answers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Node as KNode, Pod};
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Client, Resource};
use tokio::task::JoinHandle;

use super::Settings;
use crate::changes::Changes;
use crate::convert;
use crate::event::{EventStore, NthEvent};

/// Drops what the engine never reads, so that 5,000 Nodes stay small in memory.
fn slim_node(n: &mut KNode) {
    convert::slim_managed_fields(n);
    if let Some(a) = n.metadata.annotations.as_mut() {
        a.retain(|k, _| {
            k == convert::SCALE_DOWN_DISABLED
                || k == convert::PROTECTED_FOR
                || k == convert::BOOST_MARK
                || k == convert::DO_NOT_DISRUPT
        });
    }
    if let Some(l) = n.metadata.labels.as_mut() {
        l.retain(|k, _| k == convert::NODEPOOL_LABEL);
    }
    if let Some(s) = n.status.as_mut() {
        s.images = None;
        s.volumes_attached = None;
        s.volumes_in_use = None;
        s.addresses = None;
        s.allocatable = None;
        s.capacity = None;
        s.daemon_endpoints = None;
        s.node_info = None;
        s.config = None;
        s.runtime_handlers = None;
        s.features = None;
        if let Some(cs) = s.conditions.as_mut() {
            cs.retain(|c| c.type_ == "Ready");
            for c in cs {
                c.message = None;
                c.reason = None;
            }
        }
    }
    if let Some(s) = n.spec.as_mut() {
        s.pod_cidr = None;
        s.pod_cidrs = None;
        s.config_source = None;
    }
}

/// When the apiserver last answered this process (a watch item, a call that succeeded).
#[derive(Clone)]
pub(super) struct Contact(Arc<std::sync::Mutex<Instant>>);

impl Contact {
    pub(super) fn new() -> Self {
        Contact(Arc::new(std::sync::Mutex::new(Instant::now())))
    }

    pub(super) fn touch(&self) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
    }

    pub(super) fn age(&self) -> Duration {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .elapsed()
    }
}

/// Watches read from caches: a pass that finds no sign of the apiserver for this long asks
/// it something (one cheap GET), so that a black-holed connection fails the pass instead of
/// letting it decide, again and again, on a cache that no longer changes.
pub(super) const CONTACT_MAX_AGE: Duration = Duration::from_secs(crate::WATCH_TIMEOUT_SECS as u64);

/// Set once a watch has been refused (403): readiness stops waiting for it.
#[derive(Default)]
struct Denied {
    flag: std::sync::atomic::AtomicBool,
    notify: tokio::sync::Notify,
}

impl Denied {
    fn set(&self) {
        if !self.flag.swap(true, std::sync::atomic::Ordering::Relaxed) {
            self.notify.notify_waiters();
        }
    }

    async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            if self.flag.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
            notified.await;
        }
    }
}

fn refused(e: &watcher::Error) -> bool {
    match e {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => crate::errors::status_of(e) == Some(403),
        watcher::Error::WatchError(s) => s.code == 403,
        watcher::Error::NoResourceVersion => false,
    }
}

fn spawn_reflector<K>(
    api: Api<K>,
    cfg: watcher::Config,
    slim: fn(&mut K),
    changed: Arc<Changes>,
    contact: Contact,
    denied: Option<Arc<Denied>>,
) -> (Store<K>, JoinHandle<()>)
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(api, cfg)
        .default_backoff()
        .modify(slim)
        .reflect(writer)
        .applied_objects();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            match item {
                Ok(_) => contact.touch(),
                Err(e) => {
                    tracing::warn!(error = %e, "watch error; retrying with backoff");
                    if let Some(d) = denied.as_ref().filter(|_| refused(&e)) {
                        d.set();
                    }
                }
            }
            // A permit is kept when the loop is not waiting (mid-pass): no change is lost.
            changed.changed();
        }
    });
    (reader, task)
}

/// The Events of one rebalance `reason` about Nodes, into an [`EventStore`] of their own (a
/// relist replaces a store whole). Small list pages: an Event may be a megabyte, and a page
/// is read whole.
fn spawn_event_watch(
    api: Api<NthEvent>,
    reason: &str,
    changed: Arc<Changes>,
    contact: Contact,
) -> (EventStore, JoinHandle<()>) {
    let store = EventStore::default();
    let cfg = watcher::Config::default()
        .fields(&format!("reason={reason},involvedObject.kind=Node"))
        .timeout(crate::WATCH_TIMEOUT_SECS)
        .page_size(10);
    let s = store.clone();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(watcher(api, cfg).default_backoff());
        while let Some(item) = stream.next().await {
            match item {
                Ok(ev) => {
                    contact.touch();
                    if s.apply(ev) {
                        changed.changed();
                    }
                }
                Err(e) => tracing::warn!(error = %e, "Event watch error; retrying with backoff"),
            }
        }
    });
    (store, task)
}

/// Both rebalance reasons in each of `namespaces`, one watch apiece.
fn spawn_event_watches(
    client: &Client,
    namespaces: &[String],
    changed: &Arc<Changes>,
    contact: &Contact,
) -> (Vec<EventStore>, Vec<JoinHandle<()>>) {
    // A field selector takes one value per field: one watch per reason, and one per
    // namespace read (Karpenter's Events about Nodes land in `default`, as NTH's).
    let mut namespaces = namespaces.to_vec();
    namespaces.sort_unstable();
    namespaces.dedup();
    let mut events = Vec::new();
    let mut tasks = Vec::new();
    for ns in &namespaces {
        for reason in [crate::event::NTH_REASON, crate::event::KARPENTER_REASON] {
            let (store, task) = spawn_event_watch(
                Api::<NthEvent>::namespaced(client.clone(), ns),
                reason,
                changed.clone(),
                contact.clone(),
            );
            events.push(store);
            tasks.push(task);
        }
    }
    (events, tasks)
}

/// The one ConfigMap `namespace/name`.
fn spawn_configmap_watch(
    client: &Client,
    namespace: &str,
    name: &str,
    changed: &Arc<Changes>,
    contact: &Contact,
) -> (Store<ConfigMap>, JoinHandle<()>) {
    spawn_reflector(
        Api::<ConfigMap>::namespaced(client.clone(), namespace),
        watcher::Config::default()
            .timeout(crate::WATCH_TIMEOUT_SECS)
            .fields(&format!("metadata.name={name}")),
        |c: &mut ConfigMap| c.metadata.managed_fields = None,
        changed.clone(),
        contact.clone(),
        None,
    )
}

/// The watched caches, and the tasks that fill them (stopped when this is dropped).
pub(super) struct Watches {
    pub(super) nodes: Store<KNode>,
    /// NTH's `RebalanceRecommendation` and Karpenter's `SpotRebalanceRecommendation`
    /// Events (claims, never proof), one store per watched namespace and reason.
    pub(super) events: Vec<EventStore>,
    pub(super) ca: Store<ConfigMap>,
    /// The ledger ConfigMap, watched (no GET per pass).
    pub(super) ledger: Store<ConfigMap>,
    /// The booster's placeholder pods, watched in its namespace.
    pub(super) placeholders: Store<Pod>,
    placeholders_denied: Arc<Denied>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Watches {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Watches {
    /// Starts every watch; each item touches `contact` and wakes `changed`.
    pub(super) fn spawn(
        client: &Client,
        settings: &Settings,
        changed: &Arc<Changes>,
        contact: &Contact,
    ) -> Self {
        let (nodes, t1) = spawn_reflector(
            Api::<KNode>::all(client.clone()),
            watcher::Config::default().timeout(crate::WATCH_TIMEOUT_SECS),
            slim_node,
            changed.clone(),
            contact.clone(),
            None,
        );
        let (events, event_tasks) =
            spawn_event_watches(client, &settings.event_namespaces, changed, contact);
        let (ca, t3) = spawn_configmap_watch(
            client,
            &settings.ca_namespace,
            &settings.ca_configmap,
            changed,
            contact,
        );
        let (ledger, t4) = spawn_configmap_watch(
            client,
            &settings.namespace,
            &settings.ledger_configmap,
            changed,
            contact,
        );
        // A booster upgraded without its new Role must still start (desired mode needs no
        // placeholders): a refused watch counts as listed, empty, and says so.
        let placeholders_denied = Arc::new(Denied::default());
        let (placeholders, t5) = spawn_reflector(
            Api::<Pod>::namespaced(client.clone(), &settings.placeholders.namespace),
            watcher::Config::default()
                .timeout(crate::WATCH_TIMEOUT_SECS)
                .labels(crate::placeholders::LABEL),
            |p: &mut Pod| p.metadata.managed_fields = None,
            changed.clone(),
            contact.clone(),
            Some(placeholders_denied.clone()),
        );
        Watches {
            nodes,
            events,
            ca,
            ledger,
            placeholders,
            placeholders_denied,
            tasks: [t1, t3, t4, t5].into_iter().chain(event_tasks).collect(),
        }
    }

    /// Returns once every watch has listed once, or (placeholder pods only) been refused.
    pub(super) async fn listed(&self, placeholder_namespace: &str) {
        self.nodes.wait_until_ready().await.ok();
        for e in &self.events {
            e.wait_until_ready().await;
        }
        self.ca.wait_until_ready().await.ok();
        self.ledger.wait_until_ready().await.ok();
        tokio::select! {
            _ = self.placeholders.wait_until_ready() => {}
            () = self.placeholders_denied.wait() => tracing::error!(
                namespace = %placeholder_namespace,
                "may not watch placeholder pods (apply the chart's or deploy/rbac.yaml's \
                 placeholder Role): placeholder boosts fail and leftovers stay"
            ),
        }
    }
}
