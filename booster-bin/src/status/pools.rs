//! How past signals ended, per pool (instance type/zone), from the ledger: the evidence
//! `--drain-on adaptive` decides from.

use std::fmt::Write as _;

use booster_core::outcomes::Outcomes;
use serde::Serialize;

/// One pool's outcomes.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolRow {
    /// `<instance type>/<zone>`.
    pub pool: String,
    /// The group of its last signal.
    pub group: String,
    /// Signals followed by an interruption, since the ledger began.
    pub interrupted: u32,
    /// Signals that expired without one.
    pub not_interrupted: u32,
    /// Signals whose end nobody could tell (retired or given back first).
    pub unknown: u32,
    /// Of the recent known outcomes (at most 20), how many.
    pub recent_known: u32,
    /// ...and how many of them were interruptions.
    pub recent_interrupted: u32,
    /// Median recommendation-to-interruption time of the recent interruptions, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub median_lead_s: Option<u64>,
}

/// The rows, by pool name.
pub fn pool_rows(outcomes: &Outcomes) -> Vec<PoolRow> {
    outcomes
        .0
        .iter()
        .map(|(pool, p)| {
            let (recent_known, recent_interrupted) = p.known_recent();
            PoolRow {
                pool: pool.clone(),
                group: p.group.clone(),
                interrupted: p.interrupted,
                not_interrupted: p.not_interrupted,
                unknown: p.unknown,
                recent_known,
                recent_interrupted,
                median_lead_s: p.median_lead().map(|d| d.as_millis() / 1000),
            }
        })
        .collect()
}

/// The pools as lines under the table; nothing when no outcome is known yet.
pub fn pool_lines(rows: &[PoolRow], drain_on: &str) -> String {
    let mut out = String::new();
    if rows.is_empty() {
        return out;
    }
    let _ = writeln!(out, "Outcomes by pool (--drain-on {drain_on}):");
    for r in rows {
        let lead = r
            .median_lead_s
            .map_or(String::new(), |s| format!(", median lead {s}s"));
        let _ = writeln!(
            out,
            "  {} ({}): interrupted {}, not interrupted {}, unknown {}; recent {}/{} interrupted{}",
            r.pool,
            r.group,
            r.interrupted,
            r.not_interrupted,
            r.unknown,
            r.recent_interrupted,
            r.recent_known,
            lead
        );
    }
    out
}
