//! Surges no drain runs any more (the signal was given back or retired while its drain
//! waited, or the booster restarted and the drain is not resumed): finished or undone, so
//! that none is left with a Deployment one pod larger than its owner asked.

use std::collections::BTreeSet;

use booster_core::ports::PortError;
use booster_core::surge::{step, Observed, Step, SurgeOutcome, SurgeRecord, SURGING_LABEL};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::Client;

use super::facts::{deployment_facts, Target};
use super::{call, now, writes, Reporting};

/// Settles every surge whose node has no drain under way (`draining`).
pub async fn settle(
    client: &Client,
    manager: &str,
    reporting: &Reporting,
    draining: &BTreeSet<String>,
) -> Result<(), PortError> {
    let surging = call(
        "list Deployments being surged",
        Api::<Deployment>::all(client.clone()).list(&ListParams::default().labels(SURGING_LABEL)),
    )
    .await?;
    for d in surging.items {
        let mut f = booster_core::surge::WorkloadFacts::of_pod("", false);
        deployment_facts(&mut f, &d);
        let t = Target {
            namespace: d.metadata.namespace.clone().unwrap_or_default(),
            name: d.metadata.name.clone().unwrap_or_default(),
            resource_version: d.metadata.resource_version.clone().unwrap_or_default(),
            replicas: f.replicas,
            selector: None,
            record: f.record.clone(),
        };
        if f.foreign_record {
            // Somebody else's (or another version's) record: left as it is.
            continue;
        }
        let Some(r) = f.record else {
            // Our label without a record: only the label goes.
            let _ = writes::end(client, manager, &t, None).await;
            continue;
        };
        if draining.contains(&r.node) {
            continue;
        }
        if let Err(e) = settle_one(client, manager, reporting, &t, &r).await {
            tracing::warn!(deployment = %format!("{}/{}", t.namespace, t.name), error = %e, "surge not settled; trying again");
        }
    }
    Ok(())
}

async fn settle_one(
    client: &Client,
    manager: &str,
    reporting: &Reporting,
    t: &Target,
    r: &SurgeRecord,
) -> Result<(), PortError> {
    let pods = Api::<Pod>::namespaced(client.clone(), &t.namespace);
    let old = match call(
        &format!("get pod {}/{}", t.namespace, r.pod),
        pods.get(&r.pod),
    )
    .await
    {
        Ok(p) => Some(p),
        Err(PortError::NotFound(_)) => None,
        Err(e) => return Err(e),
    };
    let old_there = old.as_ref().is_some_and(|p| {
        p.metadata.uid.as_deref() == Some(r.pod_uid.as_str())
            && p.metadata.deletion_timestamp.is_none()
    });
    let o = Observed {
        replicas: t.replicas,
        old_pod_there: old_there,
        ready_others: 0,
        ready_elsewhere: 0,
        now: now(),
    };
    let key = (t.namespace.as_str(), r.pod.as_str(), r.pod_uid.as_str());
    let (outcome, message) = match step(r, &o, false) {
        Step::Finish | Step::HandOver => {
            writes::end(client, manager, t, Some(r.from)).await?;
            (
                SurgeOutcome::HandedOver,
                format!(
                    "{} went while no drain ran; back to {} replicas",
                    r.pod, r.from
                ),
            )
        }
        Step::Undo(why) => {
            if old_there {
                writes::set_cost(client, manager, key, r.prior_cost.as_deref()).await?;
            }
            writes::end(client, manager, t, Some(r.from)).await?;
            (
                SurgeOutcome::Undone,
                format!(
                    "undone: {why}; back to {} replicas, {} stays",
                    r.from, r.pod
                ),
            )
        }
        Step::Abandon => {
            if old_there {
                writes::set_cost(client, manager, key, r.prior_cost.as_deref()).await?;
            }
            writes::end(client, manager, t, None).await?;
            (
                SurgeOutcome::Abandoned,
                format!(
                    "its replicas were set to {} by somebody else; left as they are",
                    t.replicas
                ),
            )
        }
        Step::Wait => return Ok(()),
    };
    reporting
        .report(&r.node, t.subject(), outcome, message)
        .await;
    Ok(())
}
