//! [`KubeCluster`]: the `Cluster` port on kube-rs, with reflectors for what changes often.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use booster_core::ports::{Cluster, ClusterView, DrainOutcome, DrainSpec, PortError};
use booster_core::{Ledger, Reason};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Node as KNode, Pod};
use kube::api::{Api, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event as KEvent, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Client, Resource};
use tokio::sync::Mutex;

use crate::changes::Changes;

use crate::convert::{self, PodCensus};
use crate::drain;
use crate::errors::port_error;
use crate::event::{EventStore, NthEvent};

/// Reads and compare-and-swaps of a node's taints before a conflict is returned.
const UNTAINT_ATTEMPTS: u32 = 5;

/// Where things live and how drains behave.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Namespace of cluster-autoscaler's status ConfigMap (`--namespace`).
    pub ca_namespace: String,
    /// Its name (`--configmap`).
    pub ca_configmap: String,
    /// Namespace of the ledger ConfigMap (the controller's own).
    pub namespace: String,
    /// Name of the ledger ConfigMap.
    pub ledger_configmap: String,
    /// Which pods a drain may evict.
    pub pods: convert::PodRules,
    /// Field manager and Event reporter name.
    pub manager: String,
    /// The reporting instance (pod name).
    pub instance: String,
    /// Evictions override the pods' grace period with this (upstream
    /// `--ignore-pods-grace-period` is `Some(0)`).
    pub eviction_grace_seconds: Option<u32>,
    /// What placeholder pods are made of, and their namespace.
    pub placeholders: crate::placeholders::PlaceholderSettings,
    /// The namespaces whose rebalance Events are read (`--event-namespaces`): the only ones
    /// watched, so that what others post elsewhere costs neither memory nor requests.
    pub event_namespaces: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            ca_namespace: "kube-system".into(),
            ca_configmap: "cluster-autoscaler-status".into(),
            namespace: "kube-system".into(),
            ledger_configmap: "aws-spots-booster-ledger".into(),
            pods: convert::PodRules::default(),
            manager: "aws-spots-booster".into(),
            instance: std::env::var("POD_NAME").unwrap_or_else(|_| "aws-spots-booster".into()),
            eviction_grace_seconds: None,
            placeholders: Default::default(),
            event_namespaces: vec![booster_core::config::NTH_EVENT_NAMESPACE.into()],
        }
    }
}

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

/// The ledger as this replica last read or wrote it. The watch lags our own writes by a
/// moment: until it shows the version we wrote, that write is the ledger.
#[derive(Default)]
struct LedgerState {
    /// resourceVersion the next write is conditioned on (compare-and-swap).
    version: Option<String>,
    /// Our last write, until the watch shows it (or a deadline: then it is read again).
    written: Option<(String, Ledger, Instant)>,
    /// A write conflicted: the next read is a GET, not the cache.
    reread: bool,
}

/// When the apiserver last answered this process (a watch item, a call that succeeded).
#[derive(Clone)]
struct Contact(Arc<std::sync::Mutex<Instant>>);

impl Contact {
    fn new() -> Self {
        Contact(Arc::new(std::sync::Mutex::new(Instant::now())))
    }

    fn touch(&self) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
    }

    fn age(&self) -> Duration {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .elapsed()
    }
}

/// Watches read from caches: a pass that finds no sign of the apiserver for this long asks
/// it something (one cheap GET), so that a black-holed connection fails the pass instead of
/// letting it decide, again and again, on a cache that no longer changes.
const CONTACT_MAX_AGE: Duration = Duration::from_secs(crate::WATCH_TIMEOUT_SECS as u64);

/// How long a running drain's count of the pods left stands for a list.
const DRAIN_SEEN_FRESH: Duration = Duration::from_secs(3);

/// How long a list of a signalled node's pods stands for the next one: passes follow Node
/// changes (in a big cluster, twice a second), a signalled node's pods change slower.
const CENSUS_FRESH: Duration = Duration::from_secs(5);

/// Readings per node, each with when it was taken (the drains' progress has this shape).
type Timed<T> = std::sync::Mutex<std::collections::BTreeMap<String, (T, tokio::time::Instant)>>;

/// `node`'s reading in `map`, if it is younger than `max`.
fn fresh<T: Clone>(map: &Timed<T>, node: &str, max: Duration) -> Option<T> {
    let map = map.lock().ok()?;
    let (v, at) = map.get(node)?;
    (at.elapsed() < max).then(|| v.clone())
}

/// How long our own write is trusted over a watch that does not show it yet.
const WRITTEN_TRUSTED: Duration = Duration::from_secs(30);

/// The Kubernetes side of the booster.
pub struct KubeCluster {
    client: Client,
    settings: Settings,
    nodes: Store<KNode>,
    /// NTH's `RebalanceRecommendation` and Karpenter's `SpotRebalanceRecommendation`
    /// Events (claims, never proof), one store per watched namespace and reason.
    events: Vec<EventStore>,
    ca: Store<ConfigMap>,
    /// The ledger ConfigMap, watched (no GET per pass).
    ledger: Store<ConfigMap>,
    /// The booster's placeholder pods, watched in its namespace.
    placeholders: Store<Pod>,
    placeholders_denied: Arc<Denied>,
    /// What this replica knows of the ledger beyond the watch.
    ledger_state: Mutex<LedgerState>,
    changed: Arc<Changes>,
    contact: Contact,
    /// What this process's drains last saw.
    drains: drain::Progress,
    /// The last list of each signalled node's pods, and when.
    censuses: Timed<PodCensus>,
    recorder: Recorder,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for KubeCluster {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

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
) -> (Store<K>, tokio::task::JoinHandle<()>)
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
) -> (EventStore, tokio::task::JoinHandle<()>) {
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

impl KubeCluster {
    /// Starts the watches (Nodes; rebalance Events in `--event-namespaces`; the CA status
    /// ConfigMap). Call [`KubeCluster::ready`] before the first `observe`.
    pub fn start(client: Client, mut settings: Settings) -> Self {
        // One namespace setting: the drain's rules follow where placeholders are made.
        settings.pods.placeholder_namespace = settings.placeholders.namespace.clone();
        let changed = Arc::new(Changes::default());
        let contact = Contact::new();
        let (nodes, t1) = spawn_reflector(
            Api::<KNode>::all(client.clone()),
            watcher::Config::default().timeout(crate::WATCH_TIMEOUT_SECS),
            slim_node,
            changed.clone(),
            contact.clone(),
            None,
        );
        // A field selector takes one value per field: one watch per reason, and one per
        // namespace read (Karpenter's Events about Nodes land in `default`, as NTH's).
        let mut namespaces = settings.event_namespaces.clone();
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
        let (ca, t3) = spawn_reflector(
            Api::<ConfigMap>::namespaced(client.clone(), &settings.ca_namespace),
            watcher::Config::default()
                .timeout(crate::WATCH_TIMEOUT_SECS)
                .fields(&format!("metadata.name={}", settings.ca_configmap)),
            |c: &mut ConfigMap| c.metadata.managed_fields = None,
            changed.clone(),
            contact.clone(),
            None,
        );
        let (ledger, t4) = spawn_reflector(
            Api::<ConfigMap>::namespaced(client.clone(), &settings.namespace),
            watcher::Config::default()
                .timeout(crate::WATCH_TIMEOUT_SECS)
                .fields(&format!("metadata.name={}", settings.ledger_configmap)),
            |c: &mut ConfigMap| c.metadata.managed_fields = None,
            changed.clone(),
            contact.clone(),
            None,
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
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: settings.manager.clone(),
                instance: Some(settings.instance.clone()),
            },
        );
        KubeCluster {
            client,
            settings,
            nodes,
            events,
            ca,
            ledger,
            placeholders,
            placeholders_denied,
            ledger_state: Mutex::new(LedgerState::default()),
            changed,
            contact,
            drains: drain::Progress::default(),
            censuses: Default::default(),
            recorder,
            tasks: [t1, t3, t4, t5].into_iter().chain(tasks).collect(),
        }
    }

    /// Waits until every watch has listed once (readiness).
    pub async fn ready(&self, timeout: Duration) -> Result<(), PortError> {
        let all = async {
            self.nodes.wait_until_ready().await.ok();
            for e in &self.events {
                e.wait_until_ready().await;
            }
            self.ca.wait_until_ready().await.ok();
            self.ledger.wait_until_ready().await.ok();
            tokio::select! {
                _ = self.placeholders.wait_until_ready() => {}
                () = self.placeholders_denied.wait() => tracing::error!(
                    namespace = %self.settings.placeholders.namespace,
                    "may not watch placeholder pods (apply the chart's or deploy/rbac.yaml's \
                     placeholder Role): placeholder boosts fail and leftovers stay"
                ),
            }
        };
        tokio::time::timeout(timeout, all)
            .await
            .map_err(|_| PortError::Unavailable("watches did not list within the timeout".into()))
    }

    /// Woken on any watched change (the loop waits on it between passes). One waiter: a
    /// change that arrives while nobody waits wakes the next wait at once.
    pub fn changes(&self) -> Arc<Changes> {
        self.changed.clone()
    }

    fn node_api(&self) -> Api<KNode> {
        Api::all(self.client.clone())
    }

    fn ledger_api(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), &self.settings.namespace)
    }

    async fn pods_on(&self, node: &str) -> Result<Vec<Pod>, PortError> {
        Api::<Pod>::all(self.client.clone())
            .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
            .await
            .map(|l| l.items)
            .map_err(|e| port_error(&format!("list pods on {node}"), e))
    }

    /// The pods of a signalled node: while this process drains it, what its drain saw at
    /// most 3 s ago; else a list (which also finds the pods no drain may evict, and those
    /// somebody else is evicting).
    async fn census(&self, node: &str) -> Result<PodCensus, PortError> {
        if let Some(left) = fresh(&self.drains, node, DRAIN_SEEN_FRESH) {
            return Ok(PodCensus::count(left));
        }
        if let Some(census) = fresh(&self.censuses, node, CENSUS_FRESH) {
            return Ok(census);
        }
        let pods = self.pods_on(node).await?;
        let census = PodCensus::of(&pods, &self.settings.pods);
        if let Ok(mut c) = self.censuses.lock() {
            c.insert(
                node.to_string(),
                (census.clone(), tokio::time::Instant::now()),
            );
        }
        Ok(census)
    }

    /// The ledger from the watch; our own last write while the watch does not show it yet;
    /// a GET after a conflict.
    async fn read_ledger(&self) -> Result<Ledger, PortError> {
        let name = &self.settings.ledger_configmap;
        let mut st = self.ledger_state.lock().await;
        let cm = if st.reread {
            let cm = self
                .ledger_api()
                .get_opt(name)
                .await
                .map_err(|e| port_error(&format!("get ConfigMap {name}"), e))?;
            st.reread = false;
            st.written = None;
            cm.map(Arc::new)
        } else {
            let cached = self
                .ledger
                .state()
                .into_iter()
                .find(|c| c.metadata.name.as_deref() == Some(name.as_str()));
            if let Some((version, ledger, at)) = st.written.clone() {
                let caught_up = cached
                    .as_ref()
                    .is_some_and(|c| c.metadata.resource_version.as_deref() == Some(&version));
                if !caught_up && at.elapsed() < WRITTEN_TRUSTED {
                    st.version = Some(version);
                    return Ok(ledger);
                }
                st.written = None;
            }
            cached
        };
        match cm {
            None => {
                st.version = None;
                Ok(Ledger::default())
            }
            Some(cm) => {
                st.version = cm.metadata.resource_version.clone();
                // A ledger we cannot read must stop the controller, not be overwritten.
                convert::ledger_of(&cm).map_err(|e| PortError::Rejected(e.to_string()))
            }
        }
    }

    async fn patch_node(
        &self,
        node: &str,
        patch: serde_json::Value,
        what: &str,
    ) -> Result<(), PortError> {
        // Under our own name: the apiserver records who wrote each field, and the boost
        // mark is believed only from us.
        let pp = PatchParams {
            field_manager: Some(self.settings.manager.clone()),
            ..PatchParams::default()
        };
        self.node_api()
            .patch(node, &pp, &Patch::Merge(&patch))
            .await
            .map(|_| self.contact.touch())
            .map_err(|e| port_error(&format!("{what} node {node}"), e))
    }

    /// The node's object reference, for Events.
    fn node_ref(&self, node: &str) -> k8s_openapi::api::core::v1::ObjectReference {
        self.nodes
            .get(&reflector::ObjectRef::new(node))
            .map(|n| n.object_ref(&()))
            .unwrap_or_else(|| k8s_openapi::api::core::v1::ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Node".into()),
                name: Some(node.to_string()),
                ..Default::default()
            })
    }
}

#[async_trait]
impl Cluster for KubeCluster {
    async fn observe(&self) -> Result<ClusterView, PortError> {
        if self.contact.age() > CONTACT_MAX_AGE {
            let name = &self.settings.ledger_configmap;
            self.ledger_api()
                .get_opt(name)
                .await
                .map_err(|e| port_error("the apiserver, asked after a quiet spell", e))?;
            self.contact.touch();
        }
        let ledger = self.read_ledger().await?;
        // Every signalled node not given back: the engine reads its pods before a drain
        // (none is started that cannot finish, nor a second one) and while it runs.
        // Nodes with a boost mark count too: an entry the engine rebuilds from its mark
        // (the ledger lost it) has its pods counted before any drain, like any other.
        let all = self.nodes.state();
        let signalled: BTreeSet<String> = ledger
            .entries
            .iter()
            .filter(|(_, e)| e.released_at.is_none())
            .map(|(n, _)| n.clone())
            .chain(
                all.iter()
                    .filter(|n| {
                        n.metadata
                            .annotations
                            .as_ref()
                            .is_some_and(|a| a.contains_key(convert::BOOST_MARK))
                    })
                    .filter_map(|n| n.metadata.name.clone()),
            )
            .collect();
        if let Ok(mut c) = self.censuses.lock() {
            c.retain(|n, _| signalled.contains(n));
        }
        let mut nodes = Vec::new();
        let mut signals = Vec::new();
        for n in &all {
            let name = n.metadata.name.clone().unwrap_or_default();
            let pods = if signalled.contains(&name) {
                // One node's pods that cannot be listed stop only that node's drain from
                // counting as done (taken as one pod left), not the pass.
                self.census(&name).await.unwrap_or_else(|e| {
                    tracing::warn!(node = %name, error = %e, "pods of a signalled node not listed; its drain is not taken as done");
                    PodCensus::count(1)
                })
            } else {
                PodCensus::default()
            };
            nodes.push(convert::node_of(n, pods));
        }
        let ready: BTreeSet<&str> = nodes
            .iter()
            .filter(|n| n.ready)
            .map(|n| n.name.as_str())
            .collect();
        let placeholders = crate::placeholders::sets_of(
            self.placeholders.state().iter().map(|p| p.as_ref()),
            |h| ready.contains(h),
        );
        let node_pools = convert::node_pools(&all);
        for e in &self.events {
            signals.extend(e.signals());
        }
        let ca_status = convert::ca_observation(
            self.ca
                .state()
                .iter()
                .find(|c| c.metadata.name.as_deref() == Some(self.settings.ca_configmap.as_str()))
                .map(|c| c.as_ref()),
        );
        Ok(ClusterView {
            nodes,
            signals,
            ca_status,
            ledger,
            placeholders,
            node_pools,
        })
    }

    async fn store_ledger(&self, ledger: &Ledger) -> Result<(), PortError> {
        let name = self.settings.ledger_configmap.clone();
        let mut st = self.ledger_state.lock().await;
        let version = st.version.clone();
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(self.settings.namespace.clone()),
                resource_version: version.clone(),
                ..ObjectMeta::default()
            },
            data: Some(convert::ledger_data(ledger).map_err(|e| {
                PortError::Rejected(format!("the ledger cannot be serialised: {e}"))
            })?),
            ..ConfigMap::default()
        };
        let pp = PostParams {
            field_manager: Some(self.settings.manager.clone()),
            ..PostParams::default()
        };
        let ns = &self.settings.namespace;
        let stored = match version.as_ref() {
            // Replace with the version we read: 409 if somebody wrote in between.
            Some(_) => self.ledger_api().replace(&name, &pp, &cm).await,
            None => self.ledger_api().create(&pp, &cm).await.inspect_err(|e| {
                // The shipped RBAC allows no `create`: the chart makes the ConfigMap.
                if crate::errors::status_of(e) == Some(403) {
                    tracing::error!(
                        configmap = %format!("{ns}/{name}"),
                        "the ledger ConfigMap is missing and this account may not create it: \
                         nothing is done until it exists (kubectl -n {ns} create configmap {name}, \
                         or upgrade the Helm release)"
                    );
                }
            }),
        }
        .map_err(|e| port_error(&format!("store ledger ConfigMap {ns}/{name}"), e));
        match stored {
            Ok(cm) => {
                st.version = cm.metadata.resource_version.clone();
                st.written = st
                    .version
                    .clone()
                    .map(|v| (v, ledger.clone(), Instant::now()));
                Ok(())
            }
            Err(e) => {
                // Somebody wrote or deleted it in between: read it fresh next time.
                if matches!(e, PortError::Conflict(_) | PortError::NotFound(_)) {
                    st.reread = true;
                }
                Err(e)
            }
        }
    }

    async fn set_unschedulable(&self, node: &str, unschedulable: bool) -> Result<(), PortError> {
        let what = if unschedulable { "cordon" } else { "uncordon" };
        self.patch_node(
            node,
            serde_json::json!({ "spec": { "unschedulable": unschedulable } }),
            what,
        )
        .await
    }

    async fn remove_rebalance_taint(&self, node: &str) -> Result<(), PortError> {
        // A compare-and-swap on the node's resourceVersion, so that a taint somebody adds
        // meanwhile is not lost; a node object changes often (status, heartbeats from its
        // kubelet or kwok), so a conflict is read again and retried, as client-go's
        // RetryOnConflict does.
        let mut attempt = 1;
        loop {
            let n = self
                .node_api()
                .get(node)
                .await
                .map_err(|e| port_error(&format!("get node {node}"), e))?;
            let taints = n.spec.and_then(|s| s.taints).unwrap_or_default();
            if !taints.iter().any(|t| t.key == convert::REBALANCE_TAINT) {
                return Ok(());
            }
            let kept: Vec<_> = taints
                .into_iter()
                .filter(|t| t.key != convert::REBALANCE_TAINT)
                .collect();
            let r = self
                .patch_node(
                    node,
                    serde_json::json!({
                        "metadata": { "resourceVersion": n.metadata.resource_version },
                        "spec": { "taints": kept },
                    }),
                    "untaint",
                )
                .await;
            match r {
                Err(PortError::Conflict(_)) if attempt < UNTAINT_ATTEMPTS => {
                    tracing::debug!(
                        node,
                        attempt,
                        "node changed while untainting; reading it again"
                    );
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                }
                other => return other,
            }
        }
    }

    async fn protect(&self, node: &str, for_node: &str) -> Result<(), PortError> {
        self.patch_node(
            node,
            serde_json::json!({ "metadata": { "annotations": {
                convert::SCALE_DOWN_DISABLED: "true",
                convert::PROTECTED_FOR: for_node,
            }}}),
            "protect",
        )
        .await
    }

    async fn unprotect(&self, node: &str) -> Result<(), PortError> {
        // The protected-for marker stays: a replacement stands in for one signal only.
        self.patch_node(
            node,
            serde_json::json!({ "metadata": { "annotations": { convert::SCALE_DOWN_DISABLED: null }}}),
            "unprotect",
        )
        .await
    }

    async fn mark_boost(&self, node: &str, entry: &booster_core::Entry) -> Result<(), PortError> {
        self.patch_node(
            node,
            serde_json::json!({ "metadata": { "annotations": {
                convert::BOOST_MARK: convert::boost_mark_value(entry),
            }}}),
            "mark boost on",
        )
        .await
    }

    async fn clear_boost_mark(&self, node: &str) -> Result<(), PortError> {
        self.patch_node(
            node,
            serde_json::json!({ "metadata": { "annotations": { convert::BOOST_MARK: null }}}),
            "clear boost mark on",
        )
        .await
    }

    async fn drain(&self, spec: &DrainSpec) -> Result<DrainOutcome, PortError> {
        drain::run_reporting(
            &self.client,
            spec,
            &self.settings.pods,
            self.settings.eviction_grace_seconds,
            &self.drains,
        )
        .await
    }

    async fn place_placeholders(
        &self,
        node: &str,
        signal_at: booster_core::Timestamp,
    ) -> Result<u32, PortError> {
        let Some(n) = self.nodes.get(&reflector::ObjectRef::new(node)) else {
            return Err(PortError::NotFound(format!("node {node}")));
        };
        let pods = self.pods_on(node).await?;
        let evictable: Vec<&Pod> = pods
            .iter()
            .filter(|p| convert::pod_role(p, &self.settings.pods) == convert::PodRole::Evict)
            .collect();
        let settings = &self.settings.placeholders;
        let wanted = crate::placeholders::pods_for(&n, signal_at, &evictable, settings);
        let api = Api::<Pod>::namespaced(self.client.clone(), &settings.namespace);
        let pp = PostParams {
            field_manager: Some(self.settings.manager.clone()),
            ..PostParams::default()
        };
        let mut made = 0;
        let mut failed = None;
        // Every pod is tried, whatever happened to the one before: a set made in part is
        // completed by the next try, not stopped at its first refusal.
        for p in &wanted {
            match api.create(&pp, p).await {
                Ok(_) => made += 1,
                // Made before (a repeated pass, a restart): the set is not made twice.
                Err(e) if crate::errors::status_of(&e) == Some(409) => {}
                Err(e) => {
                    failed.get_or_insert(port_error(&format!("create placeholder for {node}"), e));
                }
            }
        }
        self.contact.touch();
        match failed {
            Some(e) => Err(e),
            None => Ok(made),
        }
    }

    async fn remove_placeholders(&self, node: &str) -> Result<(), PortError> {
        let api =
            Api::<Pod>::namespaced(self.client.clone(), &self.settings.placeholders.namespace);
        let selector = format!(
            "{}={}",
            crate::placeholders::FOR_LABEL,
            crate::placeholders::for_label(node)
        );
        let dp = kube::api::DeleteParams {
            grace_period_seconds: Some(0),
            ..kube::api::DeleteParams::default()
        };
        api.delete_collection(&dp, &ListParams::default().labels(&selector))
            .await
            .map(|_| self.contact.touch())
            .map_err(|e| port_error(&format!("delete placeholders of {node}"), e))
    }

    async fn delete_nodeclaim(&self, name: &str) -> Result<(), PortError> {
        convert::nodeclaims(self.client.clone())
            .delete(name, &kube::api::DeleteParams::default())
            .await
            .map(|_| self.contact.touch())
            .map_err(|e| port_error(&format!("delete NodeClaim {name}"), e))
    }

    async fn record_event(
        &self,
        node: &str,
        reason: Reason,
        message: &str,
        warning: bool,
    ) -> Result<(), PortError> {
        let ev = KEvent {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.as_str().to_string(),
            note: Some(message.chars().take(1000).collect()),
            action: reason.code(),
            secondary: None,
        };
        self.recorder
            .publish(&ev, &self.node_ref(node))
            .await
            .map_err(|e| port_error(&format!("record Event on node {node}"), e))
    }
}
