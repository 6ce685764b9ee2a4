//! One self-contained HTML page (inline SVG, no script, no external resources): per
//! scenario, the nodes each policy had Ready and the capacity the workload could use,
//! against what it needed, and the scenario's figures.

use std::fmt::Write;

use booster_sim::{Policy, Report, Sample, Scenario};

const W: f64 = 560.0;
const H: f64 = 230.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 30.0;

pub(crate) fn color(p: Policy) -> &'static str {
    match p {
        Policy::NthDrain => "#d62728",
        Policy::Upstream => "#ff7f0e",
        Policy::Booster => "#1f77b4",
        Policy::BoosterPlaceholder => "#2ca02c",
        Policy::BoosterStandby => "#9467bd",
        Policy::BoosterAdaptive => "#8c564b",
    }
}

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

struct Axis {
    t_max: f64,
    y_min: f64,
    y_max: f64,
}

impl Axis {
    fn x(&self, t: f64) -> f64 {
        LEFT + (W - LEFT - RIGHT) * t / self.t_max.max(1.0)
    }
    fn y(&self, v: f64) -> f64 {
        TOP + (H - TOP - BOTTOM) * (1.0 - (v - self.y_min) / (self.y_max - self.y_min).max(1.0))
    }
}

fn path(axis: &Axis, points: impl Iterator<Item = (f64, f64)>) -> String {
    let mut d = String::new();
    for (i, (t, v)) in points.enumerate() {
        let _ = write!(
            d,
            "{}{:.1},{:.1}",
            if i == 0 { "M" } else { " L" },
            axis.x(t),
            axis.y(v)
        );
    }
    d
}

/// One chart: `value` of each policy's series against the needed line.
fn chart(title: &str, runs: &[&Report], value: fn(&Sample) -> f64) -> String {
    let all = runs.iter().flat_map(|r| r.series.iter());
    let (mut lo, mut hi, mut t_max) = (f64::MAX, f64::MIN, 0.0f64);
    for s in all {
        for v in [value(s), s.needed_nodes] {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        t_max = t_max.max(f64::from(s.t));
    }
    if lo > hi {
        return String::new();
    }
    let axis = Axis {
        t_max,
        y_min: (lo - 1.0).floor().max(0.0),
        y_max: (hi + 1.0).ceil(),
    };
    let mut svg = format!(
        r#"<svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = esc(title)
    );
    // Horizontal grid, at most ~8 lines.
    let span = axis.y_max - axis.y_min;
    let step = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]
        .into_iter()
        .find(|s| span / s <= 8.0)
        .unwrap_or(200.0);
    let mut v = (axis.y_min / step).ceil() * step;
    while v <= axis.y_max {
        let y = axis.y(v);
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{x2}" y1="{y:.1}" y2="{y:.1}" stroke="#e5e5e5"/><text x="{tx}" y="{ty:.1}" font-size="10" text-anchor="end" fill="#555">{v}</text>"##,
            x2 = W - RIGHT,
            tx = LEFT - 4.0,
            ty = y + 3.0
        );
        v += step;
    }
    // Time ticks every 5 or 10 minutes.
    let minutes = t_max / 60.0;
    let tick = if minutes > 40.0 { 10.0 } else { 5.0 };
    let mut m = 0.0;
    while m <= minutes {
        let x = axis.x(m * 60.0);
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{y1}" y2="{y2}" stroke="#999"/><text x="{x:.1}" y="{ty}" font-size="10" text-anchor="middle" fill="#555">{m}m</text>"##,
            y1 = H - BOTTOM,
            y2 = H - BOTTOM + 4.0,
            ty = H - BOTTOM + 15.0
        );
        m += tick;
    }
    if let Some(first) = runs.first() {
        let d = path(
            &axis,
            first
                .series
                .iter()
                .map(|s| (f64::from(s.t), s.needed_nodes)),
        );
        let _ = write!(
            svg,
            r##"<path d="{d}" fill="none" stroke="#222" stroke-width="1.5" stroke-dasharray="5 3"/>"##
        );
    }
    // Wider lines first, so that a policy hidden under another still shows at its edges.
    let n = runs.len();
    for (i, r) in runs.iter().enumerate() {
        let d = path(&axis, r.series.iter().map(|s| (f64::from(s.t), value(s))));
        let _ = write!(
            svg,
            r#"<path d="{d}" fill="none" stroke="{c}" stroke-width="{w:.1}" stroke-linejoin="round"/>"#,
            c = color(r.policy),
            w = 1.5 + 1.5 * (n - 1 - i) as f64,
        );
    }
    let _ = write!(
        svg,
        r##"<text x="{LEFT}" y="10" font-size="11" fill="#222">{t}</text></svg>"##,
        t = esc(title)
    );
    svg
}

fn legend(policies: &[Policy]) -> String {
    let mut s = String::from(
        r#"<p class="legend"><span><i style="border-top:2px dashed #222"></i>needed</span>"#,
    );
    for p in policies {
        let _ = write!(
            s,
            r#"<span><i style="border-top:3px solid {}"></i>{}</span>"#,
            color(*p),
            p
        );
    }
    s.push_str("</p>");
    s
}

fn figures(runs: &[&Report]) -> String {
    let mut s = String::from(
        "<table><tr><th>policy</th><th>capacity deficit<br>node·s</th><th>pending<br>pod·s</th>\
         <th>over-provisioned<br>node·s</th><th>AWS calls</th><th>peak<br>drains</th>\
         <th>cordoned<br>at end</th><th>pods<br>killed</th></tr>",
    );
    for r in runs {
        let calls: Vec<String> = r
            .aws_calls
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = write!(
            s,
            r#"<tr><td><b style="color:{c}">{p}</b></td><td>{d:.0}</td><td>{pe}</td><td>{o:.0}</td><td title="{ct}">{n}</td><td>{pk}</td><td>{co}</td><td>{k}</td></tr>"#,
            c = color(r.policy),
            p = r.policy,
            d = r.capacity_deficit_node_seconds,
            pe = r.pending_pod_seconds,
            o = r.over_provisioned_node_seconds,
            ct = esc(&calls.join(", ")),
            n = r.aws_calls_total,
            pk = r.peak_concurrent_drains,
            co = r.cordoned_at_end,
            k = r.pods_killed,
        );
    }
    s.push_str("</table>");
    s
}

/// The page.
pub fn page(scenarios: &[Scenario], reports: &[Report], seed: u64) -> String {
    let mut policies: Vec<Policy> = reports.iter().map(|r| r.policy).collect();
    policies.sort();
    policies.dedup();
    let mut body = String::new();
    for sc in scenarios {
        let runs: Vec<&Report> = reports.iter().filter(|r| r.scenario == sc.name).collect();
        if runs.is_empty() {
            continue;
        }
        let _ = write!(
            body,
            r#"<section><h2>{n}</h2><p>{d}</p><div class="charts">{a}{b}</div>{f}</section>"#,
            n = esc(&sc.name),
            d = esc(&sc.description),
            a = chart("Ready nodes", &runs, |s| f64::from(s.ready_nodes)),
            b = chart("Usable capacity (nodes)", &runs, |s| s.usable_nodes),
            f = figures(&runs),
        );
    }
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>aws-spots-booster simulation</title>
<style>
body{{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1200px}}
h1{{font-size:20px;margin:0 0 4px}} h2{{font-size:16px;margin:24px 0 2px}} p{{margin:2px 0 8px;color:#444}}
.charts{{display:flex;flex-wrap:wrap;gap:8px}} svg{{background:#fff;border:1px solid #ddd}}
table{{border-collapse:collapse;font-size:13px;margin-top:6px}} td,th{{border:1px solid #ddd;padding:3px 8px;text-align:right}}
td:first-child,th:first-child{{text-align:left}} th{{background:#f6f6f6;font-weight:600}}
.legend span{{margin-right:16px;font-size:13px}} .legend i{{display:inline-block;width:22px;margin-right:5px;vertical-align:middle}}
</style></head><body>
<h1>aws-spots-booster: policies side by side</h1>
<p>Seed {seed}. Each scenario runs under each policy on the same draws. <b>Ready nodes</b>: nodes Ready whose instance is not terminating.
<b>Usable capacity</b>: room on schedulable Ready nodes plus the running pods of cordoned ones, in nodes. Below the dashed line the workload is short of capacity.</p>
{legend}
{body}
</body></html>
"#,
        legend = legend(&policies),
    )
}
