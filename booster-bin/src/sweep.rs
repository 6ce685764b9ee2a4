//! `simulate --sweep`: the follow-through sweep (`booster_sim::sweep`) as tables, one per
//! figure with a row per policy and a column per chance, as JSON, and as an HTML page with
//! a chart per figure and a line per policy.

use std::fmt::Write as _;
use std::io::Write;

use anyhow::{Context, Result};
use booster_sim::sweep::{sweep, SweepPoint, FOLLOW_THROUGH, SEEDS_PER_POINT};
use booster_sim::{Policy, Scenario};
use comfy_table::presets::UTF8_HORIZONTAL_ONLY;
use comfy_table::{Cell, CellAlignment, Table};
use std::path::Path;

use crate::html::{color, esc};

/// The scenario swept when none is named.
pub(crate) const DEFAULT_SCENARIO: &str = "follow-through";

/// One figure of the sweep: its title and how to read it from a point.
struct Figure {
    title: &'static str,
    value: fn(&SweepPoint) -> f64,
}

const FIGURES: [Figure; 5] = [
    Figure {
        title: "pods evicted or killed per recommendation",
        value: |p| p.disruptions_per_recommendation,
    },
    Figure {
        title: "extra node-seconds (paid for, not needed)",
        value: |p| p.extra_node_seconds,
    },
    Figure {
        title: "capacity deficit, node-seconds",
        value: |p| p.capacity_deficit_node_seconds,
    },
    Figure {
        title: "pending pod-seconds",
        value: |p| p.pending_pod_seconds,
    },
    Figure {
        title: "pods killed with their node",
        value: |p| p.pods_killed,
    },
];

/// Runs the sweep of `base` under `policies` from `seed`, and prints it (a table per figure,
/// or JSON); `html`: also a page with a chart per figure.
pub fn run(
    base: &Scenario,
    policies: &[Policy],
    seed: u64,
    html: Option<&Path>,
    json: bool,
) -> Result<()> {
    let points = sweep(base, &FOLLOW_THROUGH, policies, seed);
    if let Some(path) = html {
        std::fs::write(path, page(base, &points, policies))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let mut out = std::io::stdout().lock();
    if json {
        let v = serde_json::json!({ "scenario": base.name, "seed": seed, "seeds": SEEDS_PER_POINT, "points": points });
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "{}: each figure averaged over seeds {}..{}, per chance that a recommendation is followed by an interruption",
        base.name,
        seed,
        seed + SEEDS_PER_POINT - 1
    )?;
    for f in &FIGURES {
        writeln!(out, "\n{}\n{}", f.title, table(&points, policies, f))?;
    }
    Ok(())
}

fn table(points: &[SweepPoint], policies: &[Policy], f: &Figure) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_HORIZONTAL_ONLY);
    let mut header = vec![Cell::new("policy")];
    header.extend(FOLLOW_THROUGH.iter().map(|p| Cell::new(format!("{p}"))));
    t.set_header(header);
    for &policy in policies {
        let mut row = vec![Cell::new(policy.as_str())];
        for &chance in &FOLLOW_THROUGH {
            let v = points
                .iter()
                .find(|p| p.policy == policy && p.follow_through == chance)
                .map_or(f64::NAN, |p| (f.value)(p));
            row.push(Cell::new(format!("{v:.1}")).set_alignment(CellAlignment::Right));
        }
        t.add_row(row);
    }
    t
}

const W: f64 = 480.0;
const H: f64 = 220.0;
const PAD_LEFT: f64 = 52.0;
const PAD: f64 = 16.0;
const PAD_BOTTOM: f64 = 32.0;

/// One chart: the figure against the follow-through, a line per policy.
fn chart(points: &[SweepPoint], policies: &[Policy], f: &Figure) -> String {
    let top = points
        .iter()
        .map(|p| (f.value)(p))
        .fold(0.0f64, f64::max)
        .max(1.0);
    let x = |c: f64| PAD_LEFT + (W - PAD_LEFT - PAD) * c;
    let y = |v: f64| PAD + (H - PAD - PAD_BOTTOM) * (1.0 - v / top);
    let mut svg = format!(
        r#"<svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = esc(f.title)
    );
    for i in 0..=4 {
        let v = top * f64::from(i) / 4.0;
        let _ = write!(
            svg,
            r##"<line x1="{PAD_LEFT}" x2="{x2}" y1="{yy:.1}" y2="{yy:.1}" stroke="#e5e5e5"/><text x="{tx}" y="{ty:.1}" font-size="10" text-anchor="end" fill="#555">{v:.0}</text>"##,
            x2 = W - PAD,
            yy = y(v),
            tx = PAD_LEFT - 4.0,
            ty = y(v) + 3.0
        );
    }
    for c in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let _ = write!(
            svg,
            r##"<text x="{xx:.1}" y="{ty}" font-size="10" text-anchor="middle" fill="#555">{c}</text>"##,
            xx = x(c),
            ty = H - PAD_BOTTOM + 14.0
        );
    }
    for &policy in policies {
        let mut d = String::new();
        for (i, p) in points.iter().filter(|p| p.policy == policy).enumerate() {
            let _ = write!(
                d,
                "{}{:.1},{:.1}",
                if i == 0 { "M" } else { " L" },
                x(p.follow_through),
                y((f.value)(p))
            );
        }
        let _ = write!(
            svg,
            r#"<path d="{d}" fill="none" stroke="{c}" stroke-width="2"/>"#,
            c = color(policy)
        );
    }
    let _ = write!(
        svg,
        r##"<text x="{PAD_LEFT}" y="11" font-size="11" fill="#222">{t}</text><text x="{cx:.1}" y="{by}" font-size="10" text-anchor="middle" fill="#555">follow-through</text></svg>"##,
        t = esc(f.title),
        cx = x(0.5),
        by = H - 4.0
    );
    svg
}

fn page(base: &Scenario, points: &[SweepPoint], policies: &[Policy]) -> String {
    let mut legend = String::from(r#"<p class="legend">"#);
    for p in policies {
        let _ = write!(
            legend,
            r#"<span><i style="border-top:3px solid {}"></i>{}</span>"#,
            color(*p),
            p
        );
    }
    legend.push_str("</p>");
    let charts: String = FIGURES.iter().map(|f| chart(points, policies, f)).collect();
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>aws-spots-booster: follow-through sweep</title>
<style>
body{{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1200px}}
h1{{font-size:20px;margin:0 0 4px}} p{{margin:2px 0 8px;color:#444}}
.charts{{display:flex;flex-wrap:wrap;gap:8px}} svg{{background:#fff;border:1px solid #ddd}}
.legend span{{margin-right:16px;font-size:13px}} .legend i{{display:inline-block;width:22px;margin-right:5px;vertical-align:middle}}
</style></head><body>
<h1>When does a recommendation deserve a drain?</h1>
<p>Scenario <b>{n}</b>: {d} Each point is the mean of {seeds} seeds, with every recommendation followed by its interruption at the chance on the x axis.</p>
{legend}<div class="charts">{charts}</div></body></html>
"#,
        n = esc(&base.name),
        d = esc(&base.description),
        seeds = SEEDS_PER_POINT,
    )
}
