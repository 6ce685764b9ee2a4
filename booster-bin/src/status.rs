//! `aws-spots-booster status [NODE]`: what the booster holds now and why. It observes the
//! cluster (the ledger, the Nodes and their pods, the CA status, NTH's signals) and Auto
//! Scaling as a pass does, and asks the engine for the plan it would make from that, with
//! the flags given. It reads; it never writes (no Lease, no ledger, no Event, no AWS write).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Context, Result};

use booster_core::ledger::{Boost, DrainState, Entry};
use booster_core::snapshot::{CaObservation, Node};
use booster_core::{Action, Config, Dur, Plan, Snapshot, Timestamp};
use serde::Serialize;

/// How `status` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// A table (with `NODE`: sentences).
    Table,
    /// The report as JSON, for scripts.
    Json,
}

/// Reads the cluster and Auto Scaling once, as a pass does, and prints what the booster
/// holds (`node`: that node only).
pub async fn run(
    args: &crate::settings::RunArgs,
    node: Option<&str>,
    output: Output,
) -> Result<()> {
    let cfg = args.engine_config();
    let kube = args.kube().await?;
    let cluster =
        booster_k8s::KubeCluster::start(kube, args.kube_settings("aws-spots-booster-status"));
    cluster
        .ready(Duration::from_secs(60))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("listing Nodes, Events, the CA status and the ledger")?;
    let view = booster_core::ports::Cluster::observe(&cluster)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("reading the cluster")?;
    let cloud = args.cloud().await;
    let now = crate::controller::wall_clock();
    let snapshot =
        booster_core::exec::snapshot_tolerant(view, &cloud, now, &mut BTreeSet::new(), &[]).await;
    let plan = booster_core::decide(&snapshot, &cfg);
    let mut report = Report::of(&snapshot, &plan, &cfg);
    if let Some(n) = node {
        report.nodes.retain(|r| r.node == n);
    }
    match (output, node) {
        (Output::Json, _) => crate::print_json(&report),
        (Output::Table, Some(n)) => print(&report.explain(n, &snapshot)),
        (Output::Table, None) => print(&report.table()),
    }
}

fn print(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

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

impl Report {
    /// The report of `snapshot` and the `plan` the engine made of it under `cfg`.
    pub fn of(snapshot: &Snapshot, plan: &Plan, cfg: &Config) -> Report {
        let now = snapshot.now;
        let node = |name: &str| snapshot.nodes.iter().find(|n| n.name == name);
        let nodes: Vec<NodeRow> = snapshot
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
            .collect();
        let mut names: Vec<String> = nodes.iter().map(|n| n.group.clone()).collect();
        names.extend(nodes.iter().map(|n| n.boost.group.clone()));
        names.sort();
        names.dedup();
        let ca_groups = match &snapshot.ca_status {
            CaObservation::Parsed { status, .. } => status.node_groups.clone(),
            _ => Vec::new(),
        };
        let groups = names
            .into_iter()
            .map(|name| {
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
            })
            .collect();
        Report {
            now,
            ca_status: ca_words(&snapshot.ca_status, now),
            cloud_unavailable: snapshot.cloud_unavailable.clone(),
            nodes,
            groups,
        }
    }

    /// The table an operator reads.
    pub fn table(&self) -> String {
        let mut t = comfy_table::Table::new();
        t.load_preset(comfy_table::presets::NOTHING);
        t.set_header([
            "NODE",
            "GROUP",
            "AGE",
            "BOOST",
            "REPLACEMENT",
            "DRAIN",
            "NEXT",
            "EXPIRES",
        ]);
        for n in &self.nodes {
            t.add_row([
                format!("{} ({})", n.node, n.instance),
                n.group.clone(),
                secs(n.signal_age_s),
                boost_cell(&n.boost),
                n.replacement.as_ref().map_or("-".into(), |r| {
                    format!(
                        "{}{}",
                        r.node,
                        if r.ready { " Ready" } else { " not Ready" }
                    )
                }),
                drain_cell(&n.drain, n.released),
                next_cell(&n.next),
                if n.expires_in_s >= 0 {
                    format!("in {}", secs(n.expires_in_s))
                } else {
                    format!("{} ago", secs(-n.expires_in_s))
                },
            ]);
        }
        let mut out = String::new();
        let _ = writeln!(out, "CA status: {}", self.ca_status);
        if let Some(why) = &self.cloud_unavailable {
            let _ = writeln!(out, "Auto Scaling: unavailable ({why}); groups not shown");
        }
        if self.nodes.is_empty() {
            let _ = writeln!(out, "No signalled node.");
        } else {
            let _ = writeln!(out, "{t}");
        }
        for g in &self.groups {
            let size = match (g.desired, g.min, g.max) {
                (Some(d), Some(lo), Some(hi)) => format!("desired {d} (min {lo}, max {hi})"),
                _ => "not described".into(),
            };
            let holds: Vec<String> = g.holds.iter().map(|(r, n)| format!("{r} ×{n}")).collect();
            let _ = writeln!(
                out,
                "group {}: {size}; CA: {}; holds: {}; warnings: {}",
                g.name,
                g.ca_health,
                if holds.is_empty() {
                    "none".into()
                } else {
                    holds.join(", ")
                },
                if g.warnings.is_empty() {
                    "none".into()
                } else {
                    g.warnings.join(", ")
                },
            );
        }
        out
    }

    /// `status NODE`: the node in sentences.
    pub fn explain(&self, node: &str, snapshot: &Snapshot) -> String {
        let Some(n) = self.nodes.iter().find(|n| n.node == node) else {
            let known = snapshot.nodes.iter().find(|n| n.name == node);
            return match known {
                None => format!("{node}: no such Node.\n"),
                Some(k) => match &k.protected_for {
                    Some(of) => format!(
                        "{node} is not signalled. It stands in for {of} (the booster's replacement{}).\n",
                        if k.scale_down_disabled { ", protected from scale-down" } else { "" }
                    ),
                    None => format!(
                        "{node} is not signalled: the booster has nothing on record for it{}.\n",
                        if k.unschedulable { " (it is cordoned, by somebody else or without a proven signal)" } else { "" }
                    ),
                },
            };
        };
        let mut out = format!(
            "{} (instance {}, group {}) was signalled {} ago.\n",
            n.node,
            n.instance,
            n.group,
            secs(n.signal_age_s)
        );
        let b = &n.boost;
        let boost = match b.state {
            "queued" => format!("Boost: waiting ({}).", b.reason.as_deref().unwrap_or("")),
            "applying" => format!(
                "Boost: raising {} from {} to {}.",
                b.group,
                b.from.unwrap_or_default(),
                b.to.unwrap_or_default()
            ),
            "applied" if b.ours == Some(true) => format!(
                "Boost: {} raised to {} by the booster; the retire gives it back.",
                b.group,
                b.to.unwrap_or_default()
            ),
            "applied" => format!(
                "Boost: {} was seen at {} without the booster's call; taken as done, the retire will not decrement.",
                b.group,
                b.to.unwrap_or_default()
            ),
            _ => format!("Boost: none ({}).", b.reason.as_deref().unwrap_or("")),
        };
        let _ = writeln!(out, "{boost}");
        let _ = writeln!(
            out,
            "Replacement: {}.",
            n.replacement
                .as_ref()
                .map_or("none yet".into(), |r| format!(
                    "{}, {}",
                    r.node,
                    if r.ready { "Ready" } else { "not Ready yet" }
                ))
        );
        let d = &n.drain;
        let drain = match d.state {
            "draining" => format!(
                "Drain: attempt {} started {} ago, {} pods left.",
                d.attempt.unwrap_or(1),
                secs(seconds_between(d.since.unwrap_or(self.now), self.now)),
                d.pods_left
            ),
            "byOthers" => format!(
                "Drain: somebody else (NTH in queue-processor mode?) has been evicting its pods for {}; the booster follows, {} pods left.",
                secs(seconds_between(d.since.unwrap_or(self.now), self.now)),
                d.pods_left
            ),
            _ => format!("Drain: not started, {} pods on the node.", d.pods_left),
        };
        let _ = writeln!(out, "{drain}");
        if !d.blockers.is_empty() {
            let _ = writeln!(out, "Pods no drain may evict: {}.", d.blockers.join("; "));
        }
        if n.released {
            let _ = writeln!(
                out,
                "It was given back; the entry waits for the node to go."
            );
        }
        for s in &n.next {
            if s.action.starts_with("hold ") {
                let _ = writeln!(out, "Waiting ({}): {}.", s.reason, s.why);
            } else {
                let _ = writeln!(out, "Next: {} — {}.", s.action, s.why);
            }
        }
        let _ = writeln!(
            out,
            "The signal {} {}: a drained node is then retired, any other given back.",
            if n.expires_in_s >= 0 {
                "expires in"
            } else {
                "expired"
            },
            if n.expires_in_s >= 0 {
                secs(n.expires_in_s)
            } else {
                format!("{} ago", secs(-n.expires_in_s))
            }
        );
        out
    }
}

fn seconds_between(from: Timestamp, to: Timestamp) -> i64 {
    (to.unix_millis() - from.unix_millis()) / 1000
}

fn secs(s: i64) -> String {
    Dur::from_secs(s.max(0) as u64).to_string()
}

fn boost_cell(b: &BoostView) -> String {
    match b.state {
        "applying" => format!(
            "{}→{} applying",
            b.from.unwrap_or_default(),
            b.to.unwrap_or_default()
        ),
        "applied" => format!(
            "→{} {}",
            b.to.unwrap_or_default(),
            if b.ours == Some(true) {
                "ours"
            } else {
                "assumed"
            }
        ),
        s => format!("{s} ({})", b.reason.as_deref().unwrap_or("")),
    }
}

fn drain_cell(d: &DrainView, released: bool) -> String {
    if released {
        return "given back".into();
    }
    let mut s = match d.state {
        "draining" => format!("#{} {} left", d.attempt.unwrap_or(1), d.pods_left),
        "byOthers" => format!("by others, {} left", d.pods_left),
        _ => format!("not started, {} pods", d.pods_left),
    };
    if !d.blockers.is_empty() {
        let _ = write!(s, ", {} kept", d.blockers.len());
    }
    s
}

fn next_cell(next: &[Step]) -> String {
    if next.is_empty() {
        return "-".into();
    }
    next.iter()
        .map(|s| match s.action.strip_prefix("hold ") {
            Some(_) => format!("wait: {}", s.reason),
            None => s.action.split(" (").next().unwrap_or_default().to_string(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signalled_node_mid_drain_shows_its_boost_replacement_drain_and_expiry() {
        use booster_core::testkit::{t, SnapshotBuilder};
        let snap = SnapshotBuilder::new(t(400))
            .group("spot", 1, 4, 8)
            .signal("spot-0", t(100))
            .with_node("spot-0", |n| {
                n.unschedulable = true;
                n.pods_to_evict = 3;
                n.unevictable = vec!["default/db: do-not-disrupt".into()];
            })
            .with_node("spot-3", |n| {
                n.protected_for = Some("spot-0".into());
                n.scale_down_disabled = true;
            })
            .entry("spot-0", t(100), |e| {
                e.boost = Boost::Applied {
                    to: 4,
                    at: t(101),
                    assumed: false,
                };
                e.drain = DrainState::Draining {
                    since: t(300),
                    attempt: 1,
                };
            })
            .build();
        let cfg = Config::default();
        let plan = booster_core::decide(&snap, &cfg);
        let r = Report::of(&snap, &plan, &cfg);
        assert_eq!(r.nodes.len(), 1);
        let n = &r.nodes[0];
        assert_eq!((n.drain.state, n.drain.pods_left), ("draining", 3));
        assert_eq!((n.boost.state, n.boost.ours), ("applied", Some(true)));
        assert_eq!(
            n.replacement.as_ref().map(|r| r.node.as_str()),
            Some("spot-3")
        );
        assert_eq!(n.signal_age_s, 300);
        assert_eq!(n.expires_in_s, 30 * 60 - 300);
        assert_eq!(r.groups.len(), 1);
        assert_eq!(r.groups[0].desired, Some(4));
        let table = r.table();
        assert!(table.contains("spot-0 (i-spot0)"), "{table}");
        assert!(table.contains("→4 ours"), "{table}");
        assert!(table.contains("#1 3 left, 1 kept"), "{table}");
        assert!(table.contains("spot-3 Ready"), "{table}");
        assert!(
            table.contains("group spot: desired 4 (min 1, max 8)"),
            "{table}"
        );
        let text = r.explain("spot-0", &snap);
        assert!(
            text.contains("Drain: attempt 1 started 1m40s ago, 3 pods left."),
            "{text}"
        );
        assert!(text.contains("default/db: do-not-disrupt"), "{text}");
        assert!(text.contains("The signal expires in 25m"), "{text}");
        assert!(r.explain("spot-3", &snap).contains("stands in for spot-0"));
        assert!(r.explain("nowhere", &snap).contains("no such Node"));
        let json = serde_json::to_value(&r).expect("json");
        assert_eq!(json["nodes"][0]["drain"]["state"], "draining");
    }
}
