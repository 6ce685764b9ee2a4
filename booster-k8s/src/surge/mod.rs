//! Surge before evict, on a real cluster: a drain hands each pod to [`Mover::handle`]
//! before it evicts it, and a pass settles the surges no drain runs any more ([`settle`]).
//! What to do is `booster_core::surge`'s to decide; this reads the facts and writes.

mod facts;
mod report;
mod selector;
mod settle;
mod writes;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use booster_core::ports::PortError;
use booster_core::surge::{
    assess, step, Assessment, Observed, Step, SurgeMode, SurgeOutcome, SurgeRecord, DELETION_COST,
    LOWEST_COST,
};
use booster_core::{Dur, Timestamp};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};
use kube::Client;
use tokio::time::Instant;

use crate::convert::pod_name;
use facts::Target;
use report::Subject;
pub use report::{Reporting, SurgeLog};
pub use settle::settle;

/// No single call of a surge may hold a drain longer.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a pod handed over may stay before its surge is looked at again (the
/// ReplicaSet controller removes it within a second or two).
const HANDOVER_WAIT: Duration = Duration::from_secs(20);
/// Surges of one pod within one drain attempt before it is evicted as any other.
const MAX_STARTS: u32 = 2;

/// How drains surge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SurgeSettings {
    /// Which pods (`--surge`).
    pub mode: SurgeMode,
    /// How long a successor may take to be Ready before the surge is undone
    /// (`--surge-timeout`).
    pub timeout: Dur,
}

impl Default for SurgeSettings {
    fn default() -> Self {
        SurgeSettings {
            mode: SurgeMode::default(),
            timeout: Dur::from_mins(5),
        }
    }
}

/// One API call, within [`CALL_TIMEOUT`].
pub(crate) async fn call<T>(
    context: &str,
    f: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, PortError> {
    tokio::time::timeout(CALL_TIMEOUT, f)
        .await
        .map_err(|_| PortError::Unavailable(format!("{context}: timed out")))?
        .map_err(|e| crate::errors::port_error(context, e))
}

fn now() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Timestamp::from_unix_millis(ms)
}

/// What a drain does with a pod now.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Evict it (as it would without surges).
    Evict,
    /// Leave it this pass, for this reason (reported as what holds the drain).
    Hold(String),
}

/// What one drain attempt remembers of its pods' surges, by pod uid.
#[derive(Default)]
pub struct PodSurges {
    evict: BTreeSet<String>,
    handed: BTreeMap<String, Instant>,
    starts: BTreeMap<String, u32>,
    /// The Deployment of each pod read, for its reports.
    owners: BTreeMap<String, String>,
}

/// Moves pods by surge for a drain.
pub struct Mover<'a> {
    /// The client.
    pub client: &'a Client,
    /// The flags.
    pub settings: SurgeSettings,
    /// The field manager of the writes.
    pub manager: &'a str,
    /// Where outcomes go.
    pub reporting: &'a Reporting,
    /// A dry run: nothing written, what would surge said in the log.
    pub dry_run: bool,
    /// The node being drained.
    pub node: &'a str,
}

impl Mover<'_> {
    /// Whether `p` is evicted now, or held while its successor starts.
    pub async fn handle(&self, p: &Pod, state: &mut PodSurges) -> Verdict {
        let uid = p.metadata.uid.clone().unwrap_or_default();
        if self.settings.mode == SurgeMode::Off || p.metadata.deletion_timestamp.is_some() {
            return Verdict::Evict;
        }
        if let Some(at) = state.handed.get(&uid) {
            if at.elapsed() < HANDOVER_WAIT {
                return Verdict::Hold(
                    "handed over to its successor: its ReplicaSet removes it".into(),
                );
            }
            // Still there: the ReplicaSet removed another pod. Looked at again.
            state.handed.remove(&uid);
        }
        if state.evict.contains(&uid) {
            return Verdict::Evict;
        }
        let (facts, target) = match facts::read(self.client, p).await {
            Ok(x) => x,
            Err(e) if e.is_retryable() => {
                return Verdict::Hold(format!("surge: its owners not read ({e}); asking again"))
            }
            Err(e) => {
                self.skip(
                    p,
                    state,
                    &uid,
                    format!("its owners could not be read ({e})"),
                )
                .await;
                return Verdict::Evict;
            }
        };
        let workload = target
            .as_ref()
            .map_or_else(|| pod_name(p), |t| format!("{}/{}", t.namespace, t.name));
        if let Some(t) = &target {
            state.owners.insert(uid.clone(), t.name.clone());
        }
        match (assess(&facts, self.settings.mode), target) {
            (Assessment::Evict, _) => {
                state.evict.insert(uid);
                Verdict::Evict
            }
            (Assessment::Skip(why), _) => {
                self.skip(p, state, &uid, format!("{why}; evicted instead"))
                    .await;
                Verdict::Evict
            }
            (Assessment::Wait, _) => {
                Verdict::Hold(format!("another pod of {workload} is being moved by surge"))
            }
            (Assessment::Surge, Some(t)) => self.start(p, &t, state, &uid).await,
            (Assessment::Resume, Some(t)) => match t.record.clone() {
                Some(r) => self.advance(&t, &r, state, &uid).await,
                None => Verdict::Evict,
            },
            (_, None) => Verdict::Evict,
        }
    }

    /// Reports that `p` is evicted though it costs availability, and why.
    async fn skip(&self, p: &Pod, state: &mut PodSurges, uid: &str, why: String) {
        let (kind, name) = match owner_deployment(p, state) {
            Some(d) => ("Deployment", d),
            None => ("Pod", p.metadata.name.clone().unwrap_or_default()),
        };
        let namespace = p.metadata.namespace.clone().unwrap_or_default();
        let subject = Subject {
            kind,
            namespace: &namespace,
            name: &name,
        };
        self.reporting
            .report(self.node, subject, SurgeOutcome::Skipped, why)
            .await;
        state.evict.insert(uid.to_string());
    }

    async fn start(&self, p: &Pod, t: &Target, state: &mut PodSurges, uid: &str) -> Verdict {
        let workload = format!("{}/{}", t.namespace, t.name);
        if self.dry_run {
            tracing::info!(node = self.node, workload, pod = %pod_name(p), "dry run: would move by surge");
            return Verdict::Evict;
        }
        let starts = state.starts.entry(uid.to_string()).or_default();
        if *starts >= MAX_STARTS {
            self.skip(
                p,
                state,
                uid,
                format!("surged {MAX_STARTS} times in this attempt already; evicted instead"),
            )
            .await;
            return Verdict::Evict;
        }
        *starts += 1;
        let name = p.metadata.name.clone().unwrap_or_default();
        let prior = p
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(DELETION_COST))
            .cloned();
        let lowest = LOWEST_COST.to_string();
        let pod_key = (t.namespace.as_str(), name.as_str(), uid);
        if let Err(e) = writes::set_cost(self.client, self.manager, pod_key, Some(&lowest)).await {
            return self.refused(p, state, uid, &workload, e).await;
        }
        let started = now();
        let record = SurgeRecord {
            pod_uid: uid.to_string(),
            pod: name.clone(),
            node: self.node.to_string(),
            from: t.replicas,
            to: t.replicas.saturating_add(1),
            started,
            deadline: started.plus(self.settings.timeout),
            prior_cost: prior.clone(),
        };
        if let Err(e) = writes::raise(self.client, self.manager, t, &record).await {
            // The pod keeps its lowest cost only while it is ours to move.
            if !e.is_retryable() {
                let _ =
                    writes::set_cost(self.client, self.manager, pod_key, prior.as_deref()).await;
            }
            return self.refused(p, state, uid, &workload, e).await;
        }
        self.reporting
            .report(
                self.node,
                t.subject(),
                SurgeOutcome::Started,
                format!(
                    "raised from {} to {} replicas so that {} is replaced before it goes",
                    record.from,
                    record.to,
                    pod_name(p)
                ),
            )
            .await;
        Verdict::Hold(format!(
            "moved by surge: {workload} raised to {}",
            record.to
        ))
    }

    /// A write refused: a retryable one is asked again next pass; any other makes the pod
    /// evicted as any other, and says why.
    async fn refused(
        &self,
        p: &Pod,
        state: &mut PodSurges,
        uid: &str,
        workload: &str,
        e: PortError,
    ) -> Verdict {
        if e.is_retryable() {
            return Verdict::Hold(format!("surge of {workload}: {e}; trying again"));
        }
        self.skip(
            p,
            state,
            uid,
            format!("surge refused ({e}); evicted instead"),
        )
        .await;
        Verdict::Evict
    }

    async fn advance(
        &self,
        t: &Target,
        r: &SurgeRecord,
        state: &mut PodSurges,
        uid: &str,
    ) -> Verdict {
        let workload = format!("{}/{}", t.namespace, t.name);
        let (ready_others, ready_elsewhere) = match ready_pods(self.client, t, r).await {
            Ok(n) => n,
            Err(e) => return Verdict::Hold(format!("surge of {workload}: {e}; asking again")),
        };
        let o = Observed {
            replicas: t.replicas,
            old_pod_there: true,
            ready_others,
            ready_elsewhere,
            now: now(),
        };
        let waited = o.now.since(r.started).as_secs_f64();
        match step(r, &o, true) {
            Step::Wait => Verdict::Hold(format!(
                "moved by surge: the successor in {workload} is not Ready yet ({waited:.0} s)"
            )),
            Step::HandOver | Step::Finish => {
                match writes::end(self.client, self.manager, t, Some(r.from)).await {
                    Ok(()) => {
                        self.reporting.report(
                            self.node,
                            t.subject(),
                            SurgeOutcome::HandedOver,
                            format!(
                                "successor Ready elsewhere after {waited:.0} s; back to {} replicas, {} goes",
                                r.from, r.pod
                            ),
                        ).await;
                        state.handed.insert(uid.to_string(), Instant::now());
                        Verdict::Hold(
                            "handed over to its successor: its ReplicaSet removes it".into(),
                        )
                    }
                    Err(e) => Verdict::Hold(format!("surge of {workload}: {e}; trying again")),
                }
            }
            Step::Undo(why) => {
                let key = (t.namespace.as_str(), r.pod.as_str(), uid);
                let undone = async {
                    writes::set_cost(self.client, self.manager, key, r.prior_cost.as_deref())
                        .await?;
                    writes::end(self.client, self.manager, t, Some(r.from)).await
                };
                match undone.await {
                    Ok(()) => {
                        self.end_reported(
                            state,
                            uid,
                            t,
                            SurgeOutcome::Undone,
                            format!("undone: {why}; {} is evicted instead", r.pod),
                        )
                        .await;
                        Verdict::Evict
                    }
                    Err(e) => Verdict::Hold(format!(
                        "undoing the surge of {workload}: {e}; trying again"
                    )),
                }
            }
            Step::Abandon => {
                let key = (t.namespace.as_str(), r.pod.as_str(), uid);
                let _ =
                    writes::set_cost(self.client, self.manager, key, r.prior_cost.as_deref()).await;
                match writes::end(self.client, self.manager, t, None).await {
                    Ok(()) => {
                        self.end_reported(state, uid, t, SurgeOutcome::Abandoned, format!(
                            "its replicas were set to {} by somebody else during the surge; left as they are, {} is evicted instead",
                            t.replicas, r.pod
                        )).await;
                        Verdict::Evict
                    }
                    Err(e) => {
                        Verdict::Hold(format!("ending the surge of {workload}: {e}; trying again"))
                    }
                }
            }
        }
    }

    async fn end_reported(
        &self,
        state: &mut PodSurges,
        uid: &str,
        t: &Target,
        outcome: SurgeOutcome,
        message: String,
    ) {
        self.reporting
            .report(self.node, t.subject(), outcome, message)
            .await;
        state.evict.insert(uid.to_string());
    }
}

/// The Deployment of `p` when this attempt has read it.
fn owner_deployment(p: &Pod, state: &PodSurges) -> Option<String> {
    state.owners.get(p.metadata.uid.as_deref()?).cloned()
}

/// Ready pods of the Deployment other than the one moved, not terminating: all of them,
/// and those on a schedulable node other than the drained one.
async fn ready_pods(client: &Client, t: &Target, r: &SurgeRecord) -> Result<(i32, i32), PortError> {
    let Some(sel) = t.selector.as_deref() else {
        return Ok((0, 0));
    };
    let pods = call(
        &format!("list the pods of {}/{}", t.namespace, t.name),
        Api::<Pod>::namespaced(client.clone(), &t.namespace)
            .list(&ListParams::default().labels(sel)),
    )
    .await?;
    let nodes = Api::<Node>::all(client.clone());
    let mut schedulable: BTreeMap<String, bool> = BTreeMap::new();
    let (mut others, mut n) = (0, 0);
    for p in pods.items {
        let node = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        if p.metadata.uid.as_deref() == Some(r.pod_uid.as_str())
            || p.metadata.deletion_timestamp.is_some()
            || !facts::is_ready(&p)
        {
            continue;
        }
        others += 1;
        if node.is_empty() || node == r.node {
            continue;
        }
        if !schedulable.contains_key(&node) {
            let n_obj = call(&format!("get node {node}"), nodes.get(&node)).await;
            let ok = n_obj.is_ok_and(|n| !n.spec.and_then(|s| s.unschedulable).unwrap_or(false));
            schedulable.insert(node.clone(), ok);
        }
        if schedulable.get(&node) == Some(&true) {
            n += 1;
        }
    }
    Ok((others, n))
}
