//! The report `status` prints: what the ledger holds of each signalled node and group, and
//! what the next pass does for it, built from a snapshot and the plan made of it.

use std::collections::BTreeMap;

use booster_core::ledger::{Boost, DrainState, Entry};
use booster_core::snapshot::{CaObservation, Node};
use booster_core::{Action, CaNodeGroup, Config, Dur, Plan, Snapshot, Timestamp};
use serde::Serialize;

use super::pools::{pool_rows, PoolRow};

/// What the booster holds now.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// When it was read.
    pub now: Timestamp,
    /// cluster-autoscaler's status, in a few words.
    pub ca_status: String,
    /// Why Auto Scaling could not be read, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_unavailable: Option<String>,
    /// One row per node in the ledger.
    pub nodes: Vec<NodeRow>,
    /// One row per group the ledger or the signals name.
    pub groups: Vec<GroupRow>,
    /// How past signals ended, per pool (kept in the ledger).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pools: Vec<PoolRow>,
    /// `--drain-on`.
    #[serde(skip)]
    pub drain_on: &'static str,
}

/// A signalled node.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeRow {
    pub node: String,
    pub group: String,
    pub instance: String,
    /// Seconds since the signal was issued.
    pub signal_age_s: i64,
    pub boost: BoostView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replacement: Option<Replacement>,
    pub drain: DrainView,
    /// Given back (the signal expired), waiting for the node to go.
    pub released: bool,
    /// What the next pass does for it: actions, or the hold it waits in.
    pub next: Vec<Step>,
    /// Seconds until the signal expires (negative: expired).
    pub expires_in_s: i64,
}

/// The boost of a signal.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BoostView {
    /// `queued`, `applying`, `applied` or `abandoned`.
    pub state: &'static str,
    /// The group raised (the fallback group when one is used).
    pub group: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<u32>,
    /// Applied by the booster's own call (`false`: seen at the target, assumed; its retire
    /// does not decrement).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ours: Option<bool>,
    /// Why it waits or was abandoned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The node that stands in for a signalled one.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Replacement {
    pub node: String,
    pub ready: bool,
}

/// The drain of a signalled node.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DrainView {
    /// `notStarted`, `draining` or `byOthers`.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// Pods a drain still has to evict.
    pub pods_left: u32,
    /// Pods no drain may evict, `ns/name: why`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blockers: Vec<String>,
}

/// One thing the next pass does, or waits for.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// The action (`hold` for a wait), as the logs print it.
    pub action: String,
    /// The reason's code.
    pub reason: String,
    /// The reason in a sentence.
    pub why: &'static str,
}

/// A group the booster is handling signals of.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupRow {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desired: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    /// What cluster-autoscaler's status says of it.
    pub ca_health: String,
    /// Holds of its nodes, with how many nodes wait in each.
    pub holds: BTreeMap<String, usize>,
    /// What an operator should know about it (Capacity Rebalancing, AZRebalance, launches
    /// failing).
    pub warnings: Vec<String>,
}

impl Report {
    /// The report of `snapshot` and the `plan` the engine made of it under `cfg`.
    pub fn of(snapshot: &Snapshot, plan: &Plan, cfg: &Config) -> Report {
        let now = snapshot.now;
        let nodes = node_rows(snapshot, plan, cfg);
        let groups = group_rows(snapshot, plan, &nodes);
        Report {
            now,
            ca_status: ca_words(&snapshot.ca_status, now),
            cloud_unavailable: snapshot.cloud_unavailable.clone(),
            nodes,
            groups,
            pools: pool_rows(&snapshot.ledger.outcomes),
            drain_on: cfg.drain_on.as_str(),
        }
    }
}

/// One row per ledger entry, in the ledger's order.
fn node_rows(snapshot: &Snapshot, plan: &Plan, cfg: &Config) -> Vec<NodeRow> {
    let now = snapshot.now;
    let node = |name: &str| snapshot.nodes.iter().find(|n| n.name == name);
    snapshot
        .ledger
        .entries
        .iter()
        .map(|(name, e)| NodeRow {
            node: name.clone(),
            group: e.group.clone(),
            instance: e.instance_id.clone(),
            signal_age_s: seconds_between(e.signal_at, now),
            boost: boost_view(e),
            replacement: snapshot
                .nodes
                .iter()
                .find(|n| n.protected_for.as_deref() == Some(name.as_str()))
                .map(|r| Replacement {
                    node: r.name.clone(),
                    ready: r.ready,
                }),
            drain: drain_view(e, node(name)),
            released: e.released_at.is_some(),
            next: plan
                .actions
                .iter()
                .filter(|a| a.node() == Some(name.as_str()))
                .map(step)
                .collect(),
            expires_in_s: seconds_between(now, e.signal_at.plus(cfg.signal_expiry)),
        })
        .collect()
}

/// One row per group the rows name, as their group or the group their boost raised, sorted
/// by name.
fn group_rows(snapshot: &Snapshot, plan: &Plan, nodes: &[NodeRow]) -> Vec<GroupRow> {
    let mut names: Vec<String> = nodes.iter().map(|n| n.group.clone()).collect();
    names.extend(nodes.iter().map(|n| n.boost.group.clone()));
    names.sort();
    names.dedup();
    let ca_groups = match &snapshot.ca_status {
        CaObservation::Parsed { status, .. } => status.node_groups.clone(),
        _ => Vec::new(),
    };
    names
        .into_iter()
        .map(|name| group_row(snapshot, plan, nodes, &ca_groups, name))
        .collect()
}

fn group_row(
    snapshot: &Snapshot,
    plan: &Plan,
    nodes: &[NodeRow],
    ca_groups: &[CaNodeGroup],
    name: String,
) -> GroupRow {
    let g = snapshot.groups.iter().find(|g| g.name == name);
    let mut holds = BTreeMap::new();
    for n in nodes.iter().filter(|n| n.group == name) {
        for s in n.next.iter().filter(|s| s.action.starts_with("hold ")) {
            *holds.entry(s.reason.clone()).or_insert(0) += 1;
        }
    }
    let mut warnings: Vec<String> = plan
        .warnings
        .iter()
        .filter(|w| w.group == name)
        .map(|w| w.reason.code())
        .collect();
    warnings.dedup();
    GroupRow {
        desired: g.map(|g| g.desired),
        min: g.map(|g| g.min_size),
        max: g.map(|g| g.max_size),
        ca_health: ca_groups
            .iter()
            .find(|c| c.name == name)
            .map_or("not in the CA status".into(), |c| {
                c.health.clone().unwrap_or_else(|| "listed".into())
            }),
        holds,
        warnings,
        name,
    }
}

fn boost_view(e: &Entry) -> BoostView {
    let group = e.boost_group().to_string();
    let mut v = BoostView {
        state: "",
        group,
        from: None,
        to: None,
        ours: None,
        reason: None,
    };
    match &e.boost {
        Boost::Queued { reason } => {
            v.state = "queued";
            v.reason = Some(reason.code());
        }
        Boost::Applying { from, to, .. } => {
            v.state = "applying";
            (v.from, v.to) = (Some(*from), Some(*to));
        }
        Boost::Applied { to, assumed, .. } => {
            v.state = "applied";
            (v.to, v.ours) = (Some(*to), Some(!assumed));
        }
        Boost::Placeholders { .. } => {
            v.state = "placeholders";
            v.ours = Some(true);
        }
        Boost::Abandoned { reason } => {
            v.state = "abandoned";
            v.reason = Some(reason.code());
        }
    }
    v
}

fn drain_view(e: &Entry, node: Option<&Node>) -> DrainView {
    let (state, since, attempt) = match e.drain {
        DrainState::NotStarted => ("notStarted", None, None),
        DrainState::Draining { since, attempt } => ("draining", Some(since), Some(attempt)),
        DrainState::ByOthers { since } => ("byOthers", Some(since), None),
    };
    DrainView {
        state,
        since,
        attempt,
        pods_left: node.map_or(0, |n| n.pods_to_evict),
        blockers: node.map(|n| n.unevictable.clone()).unwrap_or_default(),
    }
}

fn step(a: &Action) -> Step {
    let r = a.reason();
    Step {
        action: a.to_string(),
        reason: r.code(),
        why: r.describe(),
    }
}

fn ca_words(ca: &CaObservation, now: Timestamp) -> String {
    match ca {
        CaObservation::Missing => "missing (no boosts)".into(),
        CaObservation::Invalid { error } => format!("unreadable (no boosts): {error}"),
        CaObservation::Parsed { status, .. } => format!(
            "{}, {} old",
            status.autoscaler_status.as_deref().unwrap_or("status"),
            ca.age(now).unwrap_or_default()
        ),
    }
}

pub(super) fn seconds_between(from: Timestamp, to: Timestamp) -> i64 {
    (to.unix_millis() - from.unix_millis()) / 1000
}

/// Seconds as the report prints them (`1m40s`; negative as zero).
pub(super) fn secs(s: i64) -> String {
    Dur::from_secs(s.max(0) as u64).to_string()
}
