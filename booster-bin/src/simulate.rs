//! `aws-spots-booster simulate`: scenarios × policies, a table, JSON, an HTML page.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use booster_sim::{self as sim, scenario, Policy, Report, Scenario};
use comfy_table::presets::{UTF8_FULL_CONDENSED, UTF8_HORIZONTAL_ONLY};
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table, TableComponent};
use indicatif::{ProgressBar, ProgressStyle};

use crate::html;

/// What `simulate` was asked.
pub struct Args {
    pub scenarios: Vec<String>,
    pub policy: String,
    pub seed: u64,
    pub json: bool,
    pub html: Option<PathBuf>,
    /// Every column, however wide; else the headline figures in at most 100 columns.
    pub wide: bool,
    /// Run the follow-through sweep instead (`sweep.rs`).
    pub sweep: bool,
}

/// The widest the headline table may be when the terminal's width is not known.
pub const HEADLINE_WIDTH: u16 = 100;

/// A built-in name, or a file when the argument names one (or looks like a path).
fn load(arg: &str) -> Result<Scenario> {
    let path = Path::new(arg);
    let looks_like_file = path.exists()
        || arg.contains('/')
        || arg.ends_with(".yaml")
        || arg.ends_with(".yml")
        || arg.ends_with(".json");
    if looks_like_file {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Scenario::from_yaml(&text).with_context(|| format!("{}", path.display()))
    } else {
        Ok(scenario::builtin(arg)?)
    }
}

fn policies(arg: &str) -> Result<Vec<Policy>> {
    if arg == "all" {
        return Ok(Policy::ALL.to_vec());
    }
    arg.split(',')
        .map(|p| {
            Policy::parse(p.trim()).with_context(|| {
                format!("--policy: unknown policy {p:?} (all, nth-drain, upstream, booster, booster-placeholder, booster-standby, booster-adaptive)")
            })
        })
        .collect()
}

pub fn run(args: Args) -> Result<()> {
    if args.sweep {
        let base = match args.scenarios.first() {
            Some(s) => load(s)?,
            None => scenario::builtin(crate::sweep::DEFAULT_SCENARIO)?,
        };
        let policies = policies(&args.policy)?;
        return crate::sweep::run(&base, &policies, args.seed, args.html.as_deref(), args.json);
    }
    let scenarios: Vec<Scenario> = if args.scenarios.is_empty() {
        scenario::builtins()?
    } else {
        args.scenarios
            .iter()
            .map(|s| load(s))
            .collect::<Result<_>>()?
    };
    let policies = policies(&args.policy)?;
    if policies.is_empty() {
        bail!("--policy: no policy given");
    }
    let bar = ProgressBar::new((scenarios.len() * policies.len()) as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} simulating [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let reports = sim::run_all(&scenarios, &policies, args.seed, &mut |r| {
        bar.set_message(format!("{} / {}", r.scenario, r.policy));
        bar.inc(1);
    });
    bar.finish_and_clear();

    if let Some(path) = &args.html {
        let page = html::page(&scenarios, &reports, args.seed);
        std::fs::write(path, page).with_context(|| format!("writing {}", path.display()))?;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let mut v = serde_json::json!({ "seed": args.seed, "reports": reports });
        // The series belong to the HTML page; keep the JSON readable.
        if let Some(rs) = v.get_mut("reports").and_then(|r| r.as_array_mut()) {
            for r in rs {
                if let Some(o) = r.as_object_mut() {
                    o.remove("series");
                }
            }
        }
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
    } else {
        let t = if args.wide {
            table(&reports)
        } else {
            headline(&reports, terminal_width())
        };
        writeln!(out, "{t}")?;
        writeln!(
            out,
            "seed {}; deficit and over-provisioning in node-seconds, pending in pod-seconds; AWS: the\n\
             policy's Auto Scaling calls (not Cluster Autoscaler's); killed: pods that died with their\n\
             node; 0-ready: seconds a workload had no Ready pod (summed over workloads).{}",
            args.seed,
            if args.wide {
                ""
            } else {
                "\nMore columns: --wide, --json, --html FILE."
            }
        )?;
        if let Some(path) = &args.html {
            writeln!(out, "charts: {}", path.display())?;
        }
    }
    let broken: Vec<String> = reports
        .iter()
        .filter(|r| {
            matches!(
                r.policy,
                Policy::Booster | Policy::BoosterStandby | Policy::BoosterAdaptive
            )
        })
        .flat_map(|r| {
            r.violations
                .iter()
                .map(move |v| format!("{}: {v}", r.scenario))
        })
        .collect();
    if !broken.is_empty() {
        bail!(
            "booster broke a property: {}",
            broken.into_iter().take(5).collect::<Vec<_>>().join("; ")
        );
    }
    Ok(())
}

/// Short names of the AWS operations, for the table.
fn short(op: &str) -> &str {
    match op {
        "DescribeAutoScalingGroups" => "Describe",
        "SetDesiredCapacity" => "SetDesired",
        "TerminateInstanceInAutoScalingGroup" => "Terminate",
        "DescribeTags" => "Tags",
        other => other,
    }
}

fn calls(c: &BTreeMap<String, u64>) -> String {
    if c.is_empty() {
        return "-".into();
    }
    c.iter()
        .map(|(op, n)| format!("{} {n}", short(op)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The terminal's width when the shell says it (`COLUMNS`), else [`HEADLINE_WIDTH`]; never
/// wider than that.
fn terminal_width() -> u16 {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<u16>().ok())
        .filter(|w| *w >= 40)
        .map_or(HEADLINE_WIDTH, |w| w.min(HEADLINE_WIDTH))
}

/// The figures a reader compares first, one row per scenario and policy, at most `width`
/// columns wide (cells wrap when the terminal is narrower than the table).
pub fn headline(reports: &[Report], width: u16) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_HORIZONTAL_ONLY);
    // A line under the header, none between rows.
    t.remove_style(TableComponent::HorizontalLines);
    t.remove_style(TableComponent::MiddleIntersections);
    t.remove_style(TableComponent::LeftBorderIntersections);
    t.remove_style(TableComponent::RightBorderIntersections);
    // Natural widths fit 100 columns; cells wrap only in a narrower terminal.
    if width < HEADLINE_WIDTH {
        t.set_content_arrangement(ContentArrangement::Dynamic);
        t.set_width(width);
    }
    // Short headers: the headline fits 100 columns (the footnote says what each counts).
    t.set_header(LEADING.iter().chain(&["killed", "0-ready"]));
    for r in reports {
        let mut row = leading(r);
        row.push(num(r.pods_killed.to_string()));
        row.push(num(r.zero_ready_seconds.to_string()));
        t.add_row(row);
    }
    t
}

/// The columns both tables start with.
const LEADING: [&str; 6] = [
    "scenario",
    "policy",
    "deficit",
    "pending",
    "over-prov",
    "AWS",
];

/// The cells of [`LEADING`] for one report.
fn leading(r: &Report) -> Vec<Cell> {
    vec![
        Cell::new(&r.scenario),
        Cell::new(r.policy),
        num(format!("{:.0}", r.capacity_deficit_node_seconds)),
        num(r.pending_pod_seconds.to_string()),
        num(format!("{:.0}", r.over_provisioned_node_seconds)),
        num(r.aws_calls_total.to_string()),
    ]
}

fn num(s: String) -> Cell {
    Cell::new(s).set_alignment(CellAlignment::Right)
}

/// Every figure, one row per scenario and policy (`--wide`).
pub fn table(reports: &[Report]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(LEADING.iter().chain(&[
        "by operation",
        "peak drains",
        "cordoned at end",
        "pods killed",
        "0-ready",
        "surged",
        "launched",
        "unsignalled touched",
    ]));
    for r in reports {
        let mut row = leading(r);
        row.extend([
            Cell::new(calls(&r.aws_calls)),
            num(r.peak_concurrent_drains.to_string()),
            num(r.cordoned_at_end.to_string()),
            num(r.pods_killed.to_string()),
            num(r.zero_ready_seconds.to_string()),
            num(r.surges_handed_over.to_string()),
            num(r.instances_launched.to_string()),
            num(r.unsignalled_nodes_touched.to_string()),
        ]);
        t.add_row(row);
    }
    t
}
