//! A surge under way: waiting for the successor, then handing over, undoing or giving up;
//! and the surge of another pod of the same Deployment, which a pod waits for.

use std::collections::BTreeMap;

use booster_core::ports::PortError;
use booster_core::surge::{
    step, Observed, Step, SurgeOutcome, SurgeRecord, DELETION_COST, LOWEST_COST,
};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};
use kube::Client;
use tokio::time::Instant;

use super::facts::{self, Target};
use super::{call, now, writes, Mover, PodSurges, Verdict};

impl Mover<'_> {
    pub(super) async fn advance(
        &self,
        p: &Pod,
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
        // Read again just before the write: its status changes as pods come up, and a
        // write on what was read before the pod list would only meet a conflict.
        let t = match facts::refresh(self.client, t).await {
            Ok(fresh) if fresh.record.as_ref() == Some(r) => fresh,
            Ok(_) => {
                return Verdict::Hold(format!("the surge of {workload} changed; reading it again"))
            }
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
        let key = (t.namespace.as_str(), r.pod.as_str(), uid);
        match step(r, &o, true) {
            Step::Wait => Verdict::Hold(format!(
                "moved by surge: the successor in {workload} is not Ready yet ({waited:.0} s)"
            )),
            Step::HandOver | Step::Finish => {
                if !marked(p) {
                    let lowest = LOWEST_COST.to_string();
                    if let Err(e) =
                        writes::set_cost(self.client, self.manager, key, Some(&lowest)).await
                    {
                        return Verdict::Hold(format!("surge of {workload}: {e}; trying again"));
                    }
                }
                if let Err(e) = writes::end(self.client, self.manager, &t, Some(r.from)).await {
                    return Verdict::Hold(format!("surge of {workload}: {e}; trying again"));
                }
                let message = format!(
                    "successor Ready elsewhere after {waited:.0} s; back to {} replicas, {} goes",
                    r.from, r.pod
                );
                self.reporting
                    .report(self.node, t.subject(), SurgeOutcome::HandedOver, message)
                    .await;
                state
                    .handed
                    .insert(uid.to_string(), (workload, Instant::now()));
                Verdict::Hold("handed over to its successor: its ReplicaSet removes it".into())
            }
            Step::Undo(why) => {
                let undone = async {
                    writes::set_cost(self.client, self.manager, key, r.prior_cost.as_deref())
                        .await?;
                    writes::end(self.client, self.manager, &t, Some(r.from)).await
                };
                if let Err(e) = undone.await {
                    return Verdict::Hold(format!(
                        "undoing the surge of {workload}: {e}; trying again"
                    ));
                }
                let message = format!("undone: {why}; {} is evicted instead", r.pod);
                self.end_reported(state, uid, &t, SurgeOutcome::Undone, message)
                    .await;
                Verdict::Evict
            }
            Step::Abandon => {
                if let Err(e) =
                    writes::set_cost(self.client, self.manager, key, r.prior_cost.as_deref()).await
                {
                    // The record keeps what to restore: asked again next pass.
                    return Verdict::Hold(format!(
                        "ending the surge of {workload}: {e}; trying again"
                    ));
                }
                if let Err(e) = writes::end(self.client, self.manager, &t, None).await {
                    return Verdict::Hold(format!(
                        "ending the surge of {workload}: {e}; trying again"
                    ));
                }
                let message = format!(
                    "its replicas were set to {} by somebody else during the surge; left as they are, {} is evicted instead",
                    t.replicas, r.pod
                );
                self.end_reported(state, uid, &t, SurgeOutcome::Abandoned, message)
                    .await;
                Verdict::Evict
            }
        }
    }

    /// A pod whose Deployment is being surged for another pod waits; when that pod was on
    /// this node and is gone (evicted by somebody else, deleted), its surge is finished
    /// here, or nothing would ever end it while this drain runs.
    pub(super) async fn wait_for_other(&self, t: &Target) -> Verdict {
        let workload = format!("{}/{}", t.namespace, t.name);
        let held = Verdict::Hold(format!("another pod of {workload} is being moved by surge"));
        let Some(r) = t.record.as_ref().filter(|r| r.node == self.node) else {
            return held;
        };
        let pods = Api::<Pod>::namespaced(self.client.clone(), &t.namespace);
        let there = match call(
            &format!("get pod {}/{}", t.namespace, r.pod),
            pods.get(&r.pod),
        )
        .await
        {
            Ok(p) => {
                p.metadata.uid.as_deref() == Some(r.pod_uid.as_str())
                    && p.metadata.deletion_timestamp.is_none()
            }
            Err(PortError::NotFound(_)) => false,
            Err(_) => return held,
        };
        if there {
            return held;
        }
        // Back to its size only if it is still ours (the step's Finish or Abandon).
        let (to, outcome, message) = if t.replicas == r.to {
            (
                Some(r.from),
                SurgeOutcome::HandedOver,
                format!("{} went by other hands; back to {} replicas", r.pod, r.from),
            )
        } else {
            (
                None,
                SurgeOutcome::Abandoned,
                format!(
                    "{} went by other hands and its replicas were set to {} by somebody else; left as they are",
                    r.pod, t.replicas
                ),
            )
        };
        if writes::end(self.client, self.manager, t, to).await.is_ok() {
            self.reporting
                .report(self.node, t.subject(), outcome, message)
                .await;
        }
        held
    }
}

/// Whether the pod carries the lowest deletion cost already.
fn marked(p: &Pod) -> bool {
    p.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DELETION_COST))
        .is_some_and(|c| *c == LOWEST_COST.to_string())
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
    let (mut others, mut elsewhere) = (0, 0);
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
            let n = call(&format!("get node {node}"), nodes.get(&node)).await;
            let ok = n.is_ok_and(|n| !n.spec.and_then(|s| s.unschedulable).unwrap_or(false));
            schedulable.insert(node.clone(), ok);
        }
        if schedulable.get(&node) == Some(&true) {
            elsewhere += 1;
        }
    }
    Ok((others, elsewhere))
}
