//! Where a surge's outcomes go: a log line, an Event on the node related to the workload
//! (posted at once: a booster killed a moment later has said it), and the log the
//! controller's metrics read.

use std::sync::{Arc, Mutex};

use booster_core::surge::{SurgeOutcome, SurgeReport};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder};

/// What the surges did since the controller last looked, for its metrics.
pub type SurgeLog = Arc<Mutex<Vec<SurgeReport>>>;

/// The longest [`SurgeLog`] kept: a controller that stopped reading must not grow it.
const MAX_KEPT: usize = 1_000;

/// Where outcomes go.
#[derive(Clone)]
pub struct Reporting {
    /// For the controller's metrics.
    pub log: SurgeLog,
    /// Posts the Events.
    pub recorder: Recorder,
}

/// The workload (or pod) a report is about.
pub(crate) struct Subject<'a> {
    pub kind: &'static str,
    pub namespace: &'a str,
    pub name: &'a str,
}

impl Subject<'_> {
    fn reference(&self) -> ObjectReference {
        ObjectReference {
            api_version: Some(if self.kind == "Pod" { "v1" } else { "apps/v1" }.into()),
            kind: Some(self.kind.into()),
            namespace: Some(self.namespace.into()),
            name: Some(self.name.into()),
            ..ObjectReference::default()
        }
    }
}

impl Reporting {
    /// Reports `outcome` of `subject`'s surge on `node`.
    pub(crate) async fn report(
        &self,
        node: &str,
        subject: Subject<'_>,
        outcome: SurgeOutcome,
        message: String,
    ) {
        let workload = format!("{}/{}", subject.namespace, subject.name);
        if outcome.is_warning() {
            tracing::warn!(node, %workload, outcome = outcome.as_str(), "surge: {message}");
        } else {
            tracing::info!(node, %workload, outcome = outcome.as_str(), "surge: {message}");
        }
        // The Event is about the node (where an operator looks during a drain) and related
        // to the workload: one series per workload, not one for all of them.
        let reason = outcome.reason();
        let ev = Event {
            type_: if outcome.is_warning() {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.as_str().to_string(),
            note: Some(
                format!("{workload}: {message}")
                    .chars()
                    .take(1000)
                    .collect(),
            ),
            action: reason.code(),
            secondary: Some(subject.reference()),
        };
        let regarding = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(node.to_string()),
            ..ObjectReference::default()
        };
        if let Err(e) = self.recorder.publish(&ev, &regarding).await {
            tracing::warn!(node, %workload, error = %e, "surge Event not posted");
        }
        if let Ok(mut l) = self.log.lock() {
            if l.len() < MAX_KEPT {
                l.push(SurgeReport {
                    node: node.to_string(),
                    workload,
                    outcome,
                    message,
                });
            }
        }
    }
}
