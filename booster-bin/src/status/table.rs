//! `status` without a node: the report as a table of signalled nodes, then a line per
//! group.

use std::fmt::Write as _;

use super::report::{secs, BoostView, DrainView, GroupRow, NodeRow, Report, Step};

impl Report {
    /// The table an operator reads.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "CA status: {}", self.ca_status);
        if let Some(why) = &self.cloud_unavailable {
            let _ = writeln!(out, "Auto Scaling: unavailable ({why}); groups not shown");
        }
        if self.nodes.is_empty() {
            let _ = writeln!(out, "No signalled node.");
        } else {
            let _ = writeln!(out, "{}", self.node_table());
        }
        for g in &self.groups {
            let _ = writeln!(out, "{}", group_line(g));
        }
        out.push_str(&super::pools::pool_lines(&self.pools, self.drain_on));
        out
    }

    fn node_table(&self) -> comfy_table::Table {
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
            t.add_row(node_cells(n));
        }
        t
    }
}

fn node_cells(n: &NodeRow) -> [String; 8] {
    [
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
    ]
}

fn group_line(g: &GroupRow) -> String {
    let size = match (g.desired, g.min, g.max) {
        (Some(d), Some(lo), Some(hi)) => format!("desired {d} (min {lo}, max {hi})"),
        _ => "not described".into(),
    };
    let holds: Vec<String> = g.holds.iter().map(|(r, n)| format!("{r} ×{n}")).collect();
    format!(
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
    )
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
