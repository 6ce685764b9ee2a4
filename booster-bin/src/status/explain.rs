//! `status NODE`: one node in sentences, a line per stage of its handling (boost,
//! replacement, drain, what the next pass does, expiry).

use booster_core::{Snapshot, Timestamp};

use super::report::{
    seconds_between, secs, BoostView, DrainView, NodeRow, Replacement, Report, Step,
};

impl Report {
    /// `status NODE`: the node in sentences.
    pub fn explain(&self, node: &str, snapshot: &Snapshot) -> String {
        let Some(n) = self.nodes.iter().find(|n| n.node == node) else {
            return not_signalled(node, snapshot);
        };
        let mut lines = vec![
            signalled(n),
            boost(&n.boost),
            replacement(n.replacement.as_ref()),
            drain(&n.drain, self.now),
        ];
        if !n.drain.blockers.is_empty() {
            lines.push(format!(
                "Pods no drain may evict: {}.",
                n.drain.blockers.join("; ")
            ));
        }
        if n.released {
            lines.push("It was given back; the entry waits for the node to go.".into());
        }
        lines.extend(n.next.iter().map(next));
        lines.push(expiry(n.expires_in_s));
        let mut out = String::new();
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
        out
    }
}

/// A node the ledger does not hold: unknown, a replacement, or just a node (cordoned or
/// not).
fn not_signalled(node: &str, snapshot: &Snapshot) -> String {
    let known = snapshot.nodes.iter().find(|n| n.name == node);
    match known {
        None => format!("{node}: no such Node.\n"),
        Some(k) => {
            match &k.protected_for {
                Some(of) => format!(
                "{node} is not signalled. It stands in for {of} (the booster's replacement{}).\n",
                if k.scale_down_disabled { ", protected from scale-down" } else { "" }
            ),
                None => format!(
                    "{node} is not signalled: the booster has nothing on record for it{}.\n",
                    if k.unschedulable {
                        " (it is cordoned, by somebody else or without a proven signal)"
                    } else {
                        ""
                    }
                ),
            }
        }
    }
}

fn signalled(n: &NodeRow) -> String {
    format!(
        "{} (instance {}, group {}) was signalled {} ago.",
        n.node,
        n.instance,
        n.group,
        secs(n.signal_age_s)
    )
}

fn boost(b: &BoostView) -> String {
    match b.state {
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
    }
}

fn replacement(r: Option<&Replacement>) -> String {
    format!(
        "Replacement: {}.",
        r.map_or("none yet".into(), |r| format!(
            "{}, {}",
            r.node,
            if r.ready { "Ready" } else { "not Ready yet" }
        ))
    )
}

fn drain(d: &DrainView, now: Timestamp) -> String {
    match d.state {
        "draining" => format!(
            "Drain: attempt {} started {} ago, {} pods left.",
            d.attempt.unwrap_or(1),
            secs(seconds_between(d.since.unwrap_or(now), now)),
            d.pods_left
        ),
        "byOthers" => format!(
            "Drain: somebody else (NTH in queue-processor mode?) has been evicting its pods for {}; the booster follows, {} pods left.",
            secs(seconds_between(d.since.unwrap_or(now), now)),
            d.pods_left
        ),
        _ => format!("Drain: not started, {} pods on the node.", d.pods_left),
    }
}

fn next(s: &Step) -> String {
    if s.action.starts_with("hold ") {
        format!("Waiting ({}): {}.", s.reason, s.why)
    } else {
        format!("Next: {} — {}.", s.action, s.why)
    }
}

fn expiry(expires_in_s: i64) -> String {
    format!(
        "The signal {} {}: a drained node is then retired, any other given back.",
        if expires_in_s >= 0 {
            "expires in"
        } else {
            "expired"
        },
        if expires_in_s >= 0 {
            secs(expires_in_s)
        } else {
            format!("{} ago", secs(-expires_in_s))
        }
    )
}
