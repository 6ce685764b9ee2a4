//! Surge before evict, on a real cluster: a drain hands each pod to [`Mover::handle`]
//! before it evicts it, and a pass settles the surges no drain runs any more ([`settle`]).
//! What to do is `booster_core::surge`'s to decide; this reads the facts and writes.

mod advance;
mod facts;
mod report;
mod selector;
mod settle;
mod start;
mod writes;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use booster_core::ports::PortError;
use booster_core::surge::{assess, Assessment, SurgeMode, SurgeOutcome};
use booster_core::{Dur, Timestamp};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use tokio::time::Instant;

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
    /// Pods to evict as any other.
    evict: BTreeSet<String>,
    /// Pods handed over to their successor, with their Deployment (`ns/name`) and when:
    /// until each is gone, no other pod of that Deployment goes (its budget still counts it).
    handed: BTreeMap<String, (String, Instant)>,
    /// Surges started per pod in this attempt.
    starts: BTreeMap<String, u32>,
    /// The Deployment of each pod read, for its reports.
    owners: BTreeMap<String, String>,
}

impl PodSurges {
    /// Forgets the handed-over pods that are gone or terminating (`left`: the node's pods
    /// now).
    pub fn seen(&mut self, left: &[&Pod]) {
        self.handed.retain(|uid, _| {
            left.iter().any(|p| {
                p.metadata.uid.as_deref() == Some(uid.as_str())
                    && p.metadata.deletion_timestamp.is_none()
            })
        });
    }

    /// A pod of `workload` other than `uid` handed over and not gone yet.
    fn handing(&self, workload: &str, uid: &str) -> Option<&str> {
        self.handed
            .iter()
            .find(|(u, (w, _))| w == workload && u.as_str() != uid)
            .map(|(u, _)| u.as_str())
    }
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
        if let Some((_, at)) = state.handed.get(&uid) {
            if at.elapsed() < HANDOVER_WAIT {
                return Verdict::Hold(
                    "handed over to its successor: its ReplicaSet removes it".into(),
                );
            }
            // Still there: the ReplicaSet removed another pod. Looked at again.
            state.handed.remove(&uid);
        }
        // A pod already read whose Deployment has a pod handed over and not gone yet waits,
        // even one set to be evicted: its budget still counts the one handed over.
        if let Some(name) = state.owners.get(&uid) {
            let ns = p.metadata.namespace.as_deref().unwrap_or_default();
            let workload = format!("{ns}/{name}");
            if let Some(other) = state.handing(&workload, &uid) {
                return Verdict::Hold(format!(
                    "a pod of {workload} handed over ({other}) goes first"
                ));
            }
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
        let Some(t) = target else {
            return match assess(&facts, self.settings.mode) {
                Assessment::Skip(why) => {
                    self.skip(p, state, &uid, format!("{why}; evicted instead"))
                        .await;
                    Verdict::Evict
                }
                _ => {
                    state.evict.insert(uid);
                    Verdict::Evict
                }
            };
        };
        let workload = format!("{}/{}", t.namespace, t.name);
        state.owners.insert(uid.clone(), t.name.clone());
        if let Some(other) = state.handing(&workload, &uid) {
            // Its budget counts the pod handed over until it goes.
            return Verdict::Hold(format!(
                "a pod of {workload} handed over ({other}) goes first"
            ));
        }
        match assess(&facts, self.settings.mode) {
            Assessment::Evict => {
                state.evict.insert(uid);
                Verdict::Evict
            }
            Assessment::Skip(why) => {
                self.skip(p, state, &uid, format!("{why}; evicted instead"))
                    .await;
                Verdict::Evict
            }
            Assessment::Wait => self.wait_for_other(&t).await,
            Assessment::Surge => self.start(p, &t, state, &uid).await,
            Assessment::Resume => match t.record.clone() {
                Some(r) => self.advance(p, &t, &r, state, &uid).await,
                None => Verdict::Evict,
            },
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

    /// Reports `outcome` of the surge of `t`, and makes its pod evicted as any other.
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
