//! cluster-autoscaler's status ConfigMap, read into what the engine sees of it.

use booster_core::ca_status;
use booster_core::{CaObservation, Timestamp};
use k8s_openapi::api::core::v1::ConfigMap;

use super::names::CA_LAST_UPDATED;

/// cluster-autoscaler's status ConfigMap as the engine sees it.
pub fn ca_observation(cm: Option<&ConfigMap>) -> CaObservation {
    let Some(cm) = cm else {
        return CaObservation::Missing;
    };
    let Some(text) = cm.data.as_ref().and_then(|d| d.get("status")) else {
        return CaObservation::Missing;
    };
    match ca_status::parse(text) {
        Err(e) => CaObservation::Invalid {
            error: e.to_string(),
        },
        Ok(status) => {
            let annotated = cm
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(CA_LAST_UPDATED))
                .and_then(|v| Timestamp::parse_go(v).ok());
            match annotated.or(status.time) {
                Some(updated_at) => CaObservation::Parsed { status, updated_at },
                None => CaObservation::Invalid {
                    error: "status has no time and the ConfigMap no last-updated annotation".into(),
                },
            }
        }
    }
}
