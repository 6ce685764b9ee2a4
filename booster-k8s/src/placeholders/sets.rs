//! The placeholder sets the watch sees, read back from their pods' annotations.

use std::collections::BTreeMap;

use booster_core::{Placeholders, Timestamp};
use k8s_openapi::api::core::v1::Pod;

use super::{FOR_ANNOTATION, MAX_PER_SIGNAL, SET_SIZE_ANNOTATION, SIGNAL_ANNOTATION};

/// The sets of placeholders among `pods` (the watch's), with how many run on a Ready node
/// other than the one they stand for (`ready` tells whether a node is Ready).
pub fn sets_of<'a>(
    pods: impl Iterator<Item = &'a Pod>,
    ready: impl Fn(&str) -> bool,
) -> Vec<Placeholders> {
    let mut sets: BTreeMap<(String, Timestamp), Placeholders> = BTreeMap::new();
    for p in pods {
        let ann = p.metadata.annotations.as_ref();
        let get = |k: &str| ann.and_then(|a| a.get(k));
        let (Some(node), Some(at)) = (
            get(FOR_ANNOTATION),
            get(SIGNAL_ANNOTATION).and_then(|v| v.trim().parse::<i64>().ok()),
        ) else {
            continue;
        };
        if p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let at = Timestamp::from_unix_millis(at);
        let set = sets
            .entry((node.clone(), at))
            .or_insert_with(|| Placeholders {
                node: node.clone(),
                signal_at: at,
                ..Placeholders::default()
            });
        set.pods += 1;
        let size = get(SET_SIZE_ANNOTATION).and_then(|v| v.trim().parse::<u32>().ok());
        // A set is as big as its pods say, never more than a signal gets.
        set.wanted = set.wanted.max(size.unwrap_or(0).min(MAX_PER_SIGNAL as u32));
        let host = p.spec.as_ref().and_then(|s| s.node_name.as_deref());
        let running = p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
        if let Some(h) = host {
            if running && h != node && ready(h) {
                set.running += 1;
            }
            if !set.hosts.iter().any(|x| x == h) {
                set.hosts.push(h.to_string());
            }
        }
    }
    sets.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::super::{pods_for, PlaceholderSettings};
    use super::*;
    use k8s_openapi::api::core::v1::Node as KNode;

    fn pod_json(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    #[test]
    fn sets_count_only_running_pods_on_another_ready_node() {
        let at = Timestamp::from_unix_millis(1_700_000_000_000);
        let node: KNode = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n1", "uid": "u-1"}}))
        .expect("node");
        let app = pod_json(serde_json::json!({"spec": {"containers": [{"name": "c"}]}}));
        let mut made = pods_for(
            &node,
            at,
            &[&app, &app, &app, &app],
            &PlaceholderSettings::default(),
        );
        let place = |p: &mut Pod, host: &str, phase: &str| {
            p.spec.as_mut().expect("set").node_name = Some(host.into());
            p.status = Some(k8s_openapi::api::core::v1::PodStatus {
                phase: Some(phase.into()),
                ..Default::default()
            });
        };
        place(&mut made[0], "r1", "Running");
        place(&mut made[1], "r2", "Running"); // r2 is not Ready
        place(&mut made[2], "r1", "Pending");
        made[3].metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        let sets = sets_of(made.iter(), |h| h == "r1");
        assert_eq!(sets.len(), 1);
        assert_eq!((sets[0].pods, sets[0].running), (3, 1));
        // The set says it was made with four: it is short of one.
        assert_eq!(sets[0].wanted, 4);
        assert_eq!(sets[0].hosts, ["r1", "r2"]);
        assert_eq!((sets[0].node.as_str(), sets[0].signal_at), ("n1", at));
    }
}
