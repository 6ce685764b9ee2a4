//! A controlled `kubectl drain`: evictions through the Eviction API, budgets respected.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use booster_core::ports::{DrainOutcome, DrainSpec, PortError};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, EvictParams, ListParams, PostParams, Preconditions};
use kube::Client;
use tokio::time::Instant;

use crate::convert::{pod_name, pod_role, PodRole, PodRules};
use crate::errors::{message_of, port_error, status_of};
use crate::surge::{Mover, PodSurges, Reporting, SurgeSettings, Verdict};

/// What a drain needs to move pods by surge (see [`crate::surge`]).
#[derive(Clone, Copy)]
pub struct SurgeCtx<'a> {
    /// The flags.
    pub settings: SurgeSettings,
    /// The field manager of its writes.
    pub manager: &'a str,
    /// Where its outcomes go.
    pub reporting: &'a Reporting,
}

/// Wait between passes over the node's pods, and before retrying a refused eviction.
const PASS: Duration = Duration::from_secs(1);
const RETRY_429: Duration = Duration::from_secs(5);
/// Before asking again for a pod whose eviction was refused for another reason (several
/// budgets on the pod: 500; an admission webhook: 403): it may change, but not often.
const RETRY_REFUSED: Duration = Duration::from_secs(15);
/// No single API call may hold a drain past its deadline.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

fn describe(blockers: &BTreeMap<String, String>) -> String {
    blockers
        .iter()
        .map(|(pod, why)| format!("{pod} ({why})"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The budget in the pod's namespace whose selector matches it, by name (matchLabels only).
async fn budget_of(client: &Client, p: &Pod) -> Option<String> {
    let ns = p.metadata.namespace.as_deref()?;
    let labels = p.metadata.labels.clone().unwrap_or_default();
    let pdbs = Api::<PodDisruptionBudget>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .ok()?;
    pdbs.items.into_iter().find_map(|b| {
        let sel = b.spec.as_ref()?.selector.as_ref()?.match_labels.clone()?;
        sel.iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            .then(|| b.metadata.name.unwrap_or_default())
    })
}

/// The pods each running drain saw left at its last look, and when: a pass reads them
/// instead of listing the node's pods again (it runs on every watch change, and pods change
/// all through a drain).
pub type Progress = std::sync::Arc<std::sync::Mutex<BTreeMap<String, (u32, Instant)>>>;

/// One drain attempt of `spec.node`, to its end or its timeout, reporting what it sees
/// in `progress`.
pub async fn run_reporting(
    client: &Client,
    spec: &DrainSpec,
    rules: &PodRules,
    grace_seconds: Option<u32>,
    progress: &Progress,
    surge: SurgeCtx<'_>,
) -> Result<DrainOutcome, PortError> {
    let r = drain_loop(
        client,
        spec,
        rules,
        grace_seconds,
        Some(progress),
        Some(surge),
    )
    .await;
    if let Ok(mut p) = progress.lock() {
        p.remove(&spec.node);
    }
    r
}

/// One drain attempt of `spec.node`, to its end or its timeout.
/// `grace_seconds` overrides the pods' termination grace period (upstream
/// `--ignore-pods-grace-period` sets 0); `None` honours each pod's own.
pub async fn run(
    client: &Client,
    spec: &DrainSpec,
    rules: &PodRules,
    grace_seconds: Option<u32>,
) -> Result<DrainOutcome, PortError> {
    drain_loop(client, spec, rules, grace_seconds, None, None).await
}

async fn drain_loop(
    client: &Client,
    spec: &DrainSpec,
    rules: &PodRules,
    grace_seconds: Option<u32>,
    progress: Option<&Progress>,
    surge: Option<SurgeCtx<'_>>,
) -> Result<DrainOutcome, PortError> {
    let node = spec.node.as_str();
    let deadline = Instant::now() + Duration::from_millis(spec.timeout.as_millis());
    let all = Api::<Pod>::all(client.clone());
    let mut attempt = Attempt::default();
    let mover = surge.map(|c| Mover {
        client,
        settings: c.settings,
        manager: c.manager,
        reporting: c.reporting,
        dry_run: spec.dry_run,
        node,
    });
    let mut surges = PodSurges::default();
    loop {
        let pods = pods_on(&all, node).await?;
        let todo: Vec<&Pod> = pods
            .iter()
            .filter(|p| pod_role(p, rules) != PodRole::Ignore)
            .collect();
        report(progress, node, todo.len());
        if todo.is_empty() {
            return Ok(DrainOutcome::Drained);
        }
        attempt.forget_settled(&todo);
        surges.seen(&todo);
        for p in &todo {
            let uid = p.metadata.uid.clone().unwrap_or_default();
            let name = pod_name(p);
            if let PodRole::Keep(why) = pod_role(p, rules) {
                attempt.blockers.insert(name, why.into());
                continue;
            }
            if attempt.waiting_on(&uid) {
                continue;
            }
            if let Some(m) = &mover {
                if let Verdict::Hold(why) = m.handle(p, &mut surges).await {
                    attempt.blockers.insert(name, why);
                    continue;
                }
            }
            let eviction = request_eviction(client, spec, grace_seconds, p, &uid).await?;
            attempt.record(client, spec, p, uid, name, eviction).await;
        }
        if let Some(outcome) = attempt.end_of_pass(spec, &todo, deadline) {
            return Ok(outcome);
        }
        tokio::time::sleep(PASS).await;
    }
}

/// The pods bound to `node`, whatever their role.
async fn pods_on(all: &Api<Pod>, node: &str) -> Result<Vec<Pod>, PortError> {
    Ok(tokio::time::timeout(
        CALL_TIMEOUT,
        all.list(&ListParams::default().fields(&format!("spec.nodeName={node}"))),
    )
    .await
    .map_err(|_| PortError::Unavailable(format!("list pods on {node}: timed out")))?
    .map_err(|e| port_error(&format!("list pods on {node}"), e))?
    .items)
}

fn report(progress: Option<&Progress>, node: &str, left: usize) {
    if let Some(Ok(mut p)) = progress.map(|p| p.lock()) {
        p.insert(node.to_string(), (left as u32, Instant::now()));
    }
}

/// What became of one eviction request.
enum Eviction {
    /// Accepted (in a dry run: would be).
    Accepted,
    /// Gone, or replaced under the same name: nothing to evict.
    Gone,
    /// No answer within [`CALL_TIMEOUT`].
    TimedOut,
    /// A PodDisruptionBudget said no (429).
    Budget,
    /// Refused for this pod only, and why.
    Refused(String),
}

/// Asks the Eviction API to evict `p`. `Err` only when the apiserver gave no answer at all
/// (the connection): the attempt ends; the engine retries it.
async fn request_eviction(
    client: &Client,
    spec: &DrainSpec,
    grace_seconds: Option<u32>,
    p: &Pod,
    uid: &str,
) -> Result<Eviction, PortError> {
    let ns = p.metadata.namespace.as_deref().unwrap_or("default");
    let params = EvictParams {
        delete_options: Some(DeleteParams {
            // Only this pod: a replacement with the same name is not evicted by us.
            preconditions: Some(Preconditions {
                uid: Some(uid.to_string()),
                resource_version: None,
            }),
            dry_run: spec.dry_run,
            grace_period_seconds: grace_seconds,
            ..DeleteParams::default()
        }),
        post_options: PostParams {
            dry_run: spec.dry_run,
            ..PostParams::default()
        },
    };
    let pod = p.metadata.name.as_deref().unwrap_or_default();
    let call = Api::<Pod>::namespaced(client.clone(), ns);
    let answer = tokio::time::timeout(CALL_TIMEOUT, call.evict(pod, &params)).await;
    let Ok(answer) = answer else {
        return Ok(Eviction::TimedOut);
    };
    Ok(match answer {
        Ok(_) => Eviction::Accepted,
        Err(e) if matches!(status_of(&e), Some(404 | 409)) => Eviction::Gone,
        Err(e) if status_of(&e) == Some(429) => Eviction::Budget,
        // Refused for this pod only (several budgets select it: 500; an admission
        // webhook denies it: 403; anything else the apiserver says): it is reported
        // and asked again later, and the drain goes on with the others.
        Err(e) if status_of(&e).is_some() => {
            let code = status_of(&e).unwrap_or_default();
            Eviction::Refused(format!("eviction refused ({code}): {}", message_of(&e)))
        }
        Err(e) => return Err(port_error(&format!("evict {}", pod_name(p)), e)),
    })
}

/// What one drain attempt remembers from pass to pass, by pod uid and by pod name.
#[derive(Default)]
struct Attempt {
    evicted: BTreeSet<String>,
    retry_at: BTreeMap<String, Instant>,
    /// Pods in the way and why, reported all together when the attempt ends.
    blockers: BTreeMap<String, String>,
}

impl Attempt {
    /// Keeps only budget refusals still waiting for their retry; protected pods are
    /// found again by the pass, gone pods are no blockers.
    fn forget_settled(&mut self, todo: &[&Pod]) {
        let retry_at = &self.retry_at;
        self.blockers.retain(|name, _| {
            todo.iter().any(|p| {
                &pod_name(p) == name
                    && p.metadata
                        .uid
                        .as_ref()
                        .is_some_and(|u| retry_at.contains_key(u))
            })
        });
    }

    /// Whether the pod was evicted already, or is not to be asked again yet.
    fn waiting_on(&self, uid: &str) -> bool {
        self.evicted.contains(uid) || self.retry_at.get(uid).is_some_and(|t| *t > Instant::now())
    }

    /// Takes in the answer to the eviction of `p` (`uid`, `name`).
    async fn record(
        &mut self,
        client: &Client,
        spec: &DrainSpec,
        p: &Pod,
        uid: String,
        name: String,
        eviction: Eviction,
    ) {
        let node = spec.node.as_str();
        match eviction {
            Eviction::TimedOut => {
                tracing::warn!(node, pod = %name, "eviction call timed out; retrying later");
                self.retry_at.insert(uid, Instant::now() + RETRY_429);
            }
            Eviction::Accepted => {
                tracing::info!(node, pod = %name, dry_run = spec.dry_run, "evicted");
                self.retry_at.remove(&uid);
                self.evicted.insert(uid);
            }
            Eviction::Gone => {
                self.evicted.insert(uid);
            }
            Eviction::Budget => {
                // Name the budget once per pod, not on every retry.
                if let Entry::Vacant(slot) = self.blockers.entry(name) {
                    let ns = p.metadata.namespace.as_deref().unwrap_or("default");
                    let why = budget_of(client, p).await.map_or_else(
                        || "a PodDisruptionBudget".to_string(),
                        |b| format!("PodDisruptionBudget {ns}/{b}"),
                    );
                    tracing::info!(node, pod = %slot.key(), blocked_by = %why, "eviction refused; retrying later");
                    slot.insert(format!("blocked by {why}"));
                }
                self.retry_at.insert(uid, Instant::now() + RETRY_429);
            }
            Eviction::Refused(why) => {
                if self.blockers.get(&name) != Some(&why) {
                    tracing::warn!(node, pod = %name, %why, "eviction refused; going on with the other pods");
                }
                self.blockers.insert(name, why);
                self.retry_at.insert(uid, Instant::now() + RETRY_REFUSED);
            }
        }
    }

    /// How the attempt ends after a pass over `todo`, if it does.
    fn end_of_pass(
        &self,
        spec: &DrainSpec,
        todo: &[&Pod],
        deadline: Instant,
    ) -> Option<DrainOutcome> {
        if spec.dry_run {
            // Nothing goes away in a dry run: one pass says whether every eviction would pass.
            return Some(if self.blockers.is_empty() {
                DrainOutcome::Drained
            } else {
                DrainOutcome::TimedOut {
                    blocker: describe(&self.blockers),
                }
            });
        }
        if Instant::now() >= deadline {
            let blocker = if self.blockers.is_empty() {
                let left: Vec<String> = todo.iter().take(3).map(|p| pod_name(p)).collect();
                format!("pods still terminating: {}", left.join(", "))
            } else {
                describe(&self.blockers)
            };
            return Some(DrainOutcome::TimedOut { blocker });
        }
        None
    }
}
