//! The YAML format (cluster-autoscaler >= 1.30).
//!
//! Only the fields the booster uses are declared; every one is optional, so key order,
//! `null`s, missing optional fields and fields added by later versions do not matter.

use serde::Deserialize;

use super::{CaNodeGroup, CaStatus, CaStatusError, CaStatusFormat};
use crate::time::Timestamp;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc {
    time: Option<String>,
    autoscaler_status: Option<String>,
    cluster_wide: Option<serde::de::IgnoredAny>,
    node_groups: Option<Vec<Group>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Group {
    name: Option<String>,
    health: Option<Health>,
    scale_up: Option<Condition>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Health {
    status: Option<String>,
    node_counts: Option<NodeCounts>,
    cloud_provider_target: Option<u32>,
    min_size: Option<u32>,
    max_size: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NodeCounts {
    registered: Option<Registered>,
    long_unregistered: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Registered {
    total: Option<u32>,
    ready: Option<u32>,
    not_started: Option<u32>,
    unready: Option<Unready>,
}

#[derive(Deserialize)]
struct Unready {
    total: Option<u32>,
}

#[derive(Deserialize)]
struct Condition {
    status: Option<String>,
}

pub(super) fn parse(input: &str) -> Result<CaStatus, CaStatusError> {
    let doc: Doc = serde_saphyr::from_str(input).map_err(|e| CaStatusError::Yaml {
        message: one_line(&e.to_string()),
    })?;
    if doc.autoscaler_status.is_none() && doc.node_groups.is_none() && doc.cluster_wide.is_none() {
        return Err(CaStatusError::NotCaStatus(
            "a YAML mapping without `autoscalerStatus`, `clusterWide` or `nodeGroups`".to_string(),
        ));
    }
    let mut node_groups = Vec::new();
    for (i, g) in doc.node_groups.unwrap_or_default().into_iter().enumerate() {
        let name = g.name.map(|n| n.trim().to_string()).unwrap_or_default();
        if name.is_empty() {
            return Err(CaStatusError::Yaml {
                message: format!("nodeGroups[{i}] has no name"),
            });
        }
        let health = g.health;
        let counts = health.as_ref().and_then(|h| h.node_counts.as_ref());
        let registered = counts.and_then(|c| c.registered.as_ref());
        node_groups.push(CaNodeGroup {
            name,
            health: health.as_ref().and_then(|h| h.status.clone()),
            ready: registered.and_then(|r| r.ready).unwrap_or(0),
            unready: registered
                .and_then(|r| r.unready.as_ref())
                .and_then(|u| u.total)
                .unwrap_or(0),
            not_started: registered.and_then(|r| r.not_started).unwrap_or(0),
            registered: registered.and_then(|r| r.total).unwrap_or(0),
            long_unregistered: counts.and_then(|c| c.long_unregistered).unwrap_or(0),
            cloud_provider_target: health
                .as_ref()
                .and_then(|h| h.cloud_provider_target)
                .unwrap_or(0),
            min_size: health.as_ref().and_then(|h| h.min_size).unwrap_or(0),
            max_size: health.as_ref().and_then(|h| h.max_size).unwrap_or(0),
            scale_up: g.scale_up.and_then(|s| s.status),
        });
    }
    Ok(CaStatus {
        format: CaStatusFormat::Yaml,
        // CA writes Go's time.String() form here; accept RFC 3339 too. Unreadable is not fatal.
        time: doc.time.as_deref().and_then(|t| {
            Timestamp::parse_go(t)
                .or_else(|_| Timestamp::parse_rfc3339(t))
                .ok()
        }),
        autoscaler_status: doc.autoscaler_status,
        node_groups,
    })
}

/// A YAML reader's message on one line, bounded, keeping its line and column (for errors
/// about any YAML input: the CA status here, the simulator's scenarios).
pub fn one_line(msg: &str) -> String {
    // The reader appends a source snippet after `-->`; the line and column come before it.
    let head = msg.split("-->").next().unwrap_or(msg);
    let flat = head.split_whitespace().collect::<Vec<_>>().join(" ");
    flat.chars().take(300).collect()
}
