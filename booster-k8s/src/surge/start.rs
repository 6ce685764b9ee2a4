//! The start of a surge: the Deployment raised by one with its record, then the pod to
//! move marked to go first.

use booster_core::surge::{SurgeOutcome, SurgeRecord, DELETION_COST, LOWEST_COST};
use k8s_openapi::api::core::v1::Pod;

use super::facts::Target;
use super::{now, writes, Mover, PodSurges, Verdict, MAX_STARTS};
use crate::convert::pod_name;
use booster_core::ports::PortError;

impl Mover<'_> {
    pub(super) async fn start(
        &self,
        p: &Pod,
        t: &Target,
        state: &mut PodSurges,
        uid: &str,
    ) -> Verdict {
        let workload = format!("{}/{}", t.namespace, t.name);
        if self.dry_run {
            tracing::info!(node = self.node, workload, pod = %pod_name(p), "dry run: would move by surge");
            return Verdict::Evict;
        }
        if state.starts.get(uid).copied().unwrap_or_default() >= MAX_STARTS {
            let why = format!("surged {MAX_STARTS} times in this attempt already; evicted instead");
            self.skip(p, state, uid, why).await;
            return Verdict::Evict;
        }
        let name = p.metadata.name.clone().unwrap_or_default();
        let started = now();
        let record = SurgeRecord {
            pod_uid: uid.to_string(),
            pod: name.clone(),
            node: self.node.to_string(),
            from: t.replicas,
            to: t.replicas.saturating_add(1),
            started,
            deadline: started.plus(self.settings.timeout),
            prior_cost: p
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(DELETION_COST))
                .cloned(),
        };
        // The raise first, with the record: a pod marked to go first is never left without
        // a record that restores it. Until the mark is on, the successor (not Ready) ranks
        // first anyway; the hand-over puts the mark on if it is not.
        if let Err(e) = writes::raise(self.client, self.manager, t, &record).await {
            return self.refused(p, state, uid, &workload, e).await;
        }
        *state.starts.entry(uid.to_string()).or_default() += 1;
        let lowest = LOWEST_COST.to_string();
        let key = (t.namespace.as_str(), name.as_str(), uid);
        if let Err(e) = writes::set_cost(self.client, self.manager, key, Some(&lowest)).await {
            tracing::warn!(node = self.node, workload, error = %e, "deletion cost not set; set again before the hand-over");
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
}
