//! `aws-spots-booster`: the controller binary.
//!
//! With no subcommand it runs the controller (flags: `--help`); `simulate`, `inspect
//! ca-status` and `plan` are offline commands.
#![forbid(unsafe_code)]

#[cfg(feature = "controller")]
mod controller;
#[cfg(feature = "controller")]
mod fence;
#[cfg(feature = "controller")]
mod health;
mod html;
#[cfg(feature = "controller")]
mod latency;
#[cfg(feature = "controller")]
mod metrics;
#[cfg(feature = "controller")]
mod run;
#[cfg(feature = "controller")]
mod server;
#[cfg(feature = "controller")]
mod settings;
mod simulate;
#[cfg(feature = "controller")]
mod status;
mod sweep;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use booster_core::ca_status::{self, CaNodeGroup, CaStatusFormat};
use booster_core::{decide, Config, Snapshot};
use clap::{Parser, Subcommand};
use serde::Serialize;

/// Boosts Auto Scaling groups ahead of spot rebalance recommendations, then drains and
/// retires the signalled nodes.
#[derive(Parser)]
#[command(
    name = "aws-spots-booster",
    version,
    about,
    args_conflicts_with_subcommands = true,
    after_help = "Example (the controller, from a laptop, changing nothing):\n  aws-spots-booster --connection-mode kubectl --dry-run --max-concurrent-drains 2"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[cfg(feature = "controller")]
    #[command(flatten)]
    run: settings::RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Replay scenarios under nth-drain, upstream, booster, booster-placeholder
    /// (`--boost-mode placeholder`), booster-standby (`--drain-on interruption`) and
    /// booster-adaptive in virtual time and compare them. With no arguments: every
    /// built-in scenario, every policy, a table.
    #[command(
        after_help = "Examples:\n  aws-spots-booster simulate\n  aws-spots-booster simulate --scenario storm --policy booster,nth-drain --json\n  aws-spots-booster simulate --scenario my-cluster.yaml --html report.html\n  aws-spots-booster simulate --sweep --html sweep.html"
    )]
    Simulate {
        /// A built-in scenario name or a scenario file (YAML); repeat for several.
        /// Built-in: steady, single-signal, storm, long-lead, short-lead, never-interrupted,
        /// ca-scale-up, at-max-size, single-az, pdb-blocking, restart-mid-drain, forged-events,
        /// capacity-rebalance, weighted, az-rebalance, dry-pool, dry-pool-fallback,
        /// follow-through, workloads-of-one.
        #[arg(long = "scenario", value_name = "NAME|FILE")]
        scenarios: Vec<String>,
        /// `all`, or a comma-separated list of nth-drain, upstream, booster, booster-placeholder,
        /// booster-standby (`--drain-on interruption`), booster-adaptive (`--drain-on adaptive`).
        #[arg(long, default_value = "all", value_name = "all|NAME")]
        policy: String,
        /// Seed of every random draw (boot times, which nodes are signalled, lead times).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print the figures as JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Also write a self-contained HTML page with a capacity chart per scenario.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// Print every column (calls by operation, peak drains, nodes left cordoned, …);
        /// without it, the headline figures fit 100 columns.
        #[arg(long)]
        wide: bool,
        /// Run the follow-through sweep instead: the scenario (default `follow-through`) with
        /// every recommendation followed by its interruption at chances from 0.05 to 0.9,
        /// each point the mean of 5 seeds; a table per figure (`--html`: a chart per figure).
        #[arg(long)]
        sweep: bool,
    },
    /// Read an input the controller consumes and print what it understands of it.
    #[command(
        after_help = "Example:\n  kubectl -n kube-system get cm cluster-autoscaler-status -o jsonpath='{.data.status}' \\\n    | aws-spots-booster inspect ca-status -"
    )]
    Inspect {
        #[command(subcommand)]
        what: Inspect,
    },
    /// What the booster holds now and why: per signalled node its boost, replacement, drain
    /// and next step; per group its holds. Reads the cluster and Auto Scaling with the
    /// controller's flags; never writes.
    #[cfg(feature = "controller")]
    #[command(
        after_help = "Examples:\n  aws-spots-booster status\n  aws-spots-booster status ip-10-0-1-23.eu-west-1.compute.internal\n  aws-spots-booster status -o json --kubeconfig ~/.kube/prod | jq '.nodes[].next'"
    )]
    Status {
        /// One node, explained in sentences.
        node: Option<String>,
        /// `table` or `json`.
        #[arg(short = 'o', long, value_enum, default_value = "table")]
        output: status::Output,
        #[command(flatten)]
        run: Box<settings::RunArgs>,
    },
    /// Offline what-if: read a Snapshot (JSON) and print the Plan the engine makes for it.
    #[command(
        after_help = "Example:\n  aws-spots-booster plan --snapshot examples/snapshot.json --config my-settings.json"
    )]
    Plan {
        /// Snapshot JSON file (`-` for standard input); see examples/snapshot.json.
        #[arg(long, value_name = "FILE")]
        snapshot: PathBuf,
        /// Engine settings as JSON (camelCase keys, durations like "90s"); defaults otherwise.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum Inspect {
    /// Parse the `status` value of the cluster-autoscaler-status ConfigMap (legacy text or YAML).
    #[command(after_help = "Example:\n  aws-spots-booster inspect ca-status status.yaml")]
    CaStatus {
        /// File holding the status text, or `-` for standard input.
        #[arg(value_name = "FILE|-")]
        file: PathBuf,
    },
}

/// The JSON printed by `inspect ca-status`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CaStatusView<'a> {
    format: CaStatusFormat,
    autoscaler_status: Option<&'a str>,
    node_groups: &'a [CaNodeGroup],
}

fn read_input(path: &PathBuf) -> Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading standard input")?;
        Ok(buf)
    } else {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))
    }
}

/// Whether `e` is a write to a pipe whose reader has gone.
fn closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .and_then(|j| j.io_error_kind())
                .is_some_and(|k| k == std::io::ErrorKind::BrokenPipe)
    })
}

pub(crate) fn print_json<T: Serialize>(value: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

#[cfg(feature = "controller")]
fn controller(cli: Cli) -> Result<()> {
    if cli.run.print_config {
        return settings::print_config(&cli.run);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(run::run(cli.run))
}

#[cfg(not(feature = "controller"))]
fn controller(_: Cli) -> Result<()> {
    anyhow::bail!(
        "this build has the offline commands only (simulate, inspect, plan); the controller needs the default features (cargo build --release -p booster-bin)"
    )
}

fn dispatch(cli: Cli) -> Result<()> {
    let Some(command) = cli.command else {
        return controller(cli);
    };
    match command {
        Command::Simulate {
            scenarios,
            policy,
            seed,
            json,
            html,
            wide,
            sweep,
        } => simulate::run(simulate::Args {
            scenarios,
            policy,
            seed,
            json,
            html,
            wide,
            sweep,
        }),
        Command::Inspect {
            what: Inspect::CaStatus { file },
        } => {
            let bytes = read_input(&file)?;
            let status =
                ca_status::parse_bytes(&bytes).with_context(|| format!("{}", file.display()))?;
            print_json(&CaStatusView {
                format: status.format,
                autoscaler_status: status.autoscaler_status.as_deref(),
                node_groups: &status.node_groups,
            })
        }
        #[cfg(feature = "controller")]
        Command::Status { node, output, run } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            rt.block_on(status::run(&run, node.as_deref(), output))
        }
        Command::Plan { snapshot, config } => {
            let bytes = read_input(&snapshot)?;
            let snap: Snapshot = serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a Snapshot", snapshot.display()))?;
            let cfg: Config = match config {
                Some(path) => serde_json::from_slice(&read_input(&path)?)
                    .with_context(|| format!("{} is not an engine Config", path.display()))?,
                None => Config::default(),
            };
            print_json(&decide(&snap, &cfg))
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // One line that names the flag; `--help` has the rest.
            let text = e.to_string();
            eprintln!("{}", text.lines().next().unwrap_or("error: bad arguments"));
            return ExitCode::from(2);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // `aws-spots-booster --print-config | head`: the reader left; nothing to say.
        Err(e) if closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the context chain, outermost first.
            let msg: Vec<String> = e.chain().map(ToString::to_string).collect();
            eprintln!("error: {}", msg.join(": "));
            ExitCode::FAILURE
        }
    }
}
