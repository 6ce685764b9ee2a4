//! `aws-spots-booster`: the controller binary.
//!
//! With no subcommand it runs the controller (flags: `--help`); `simulate`, `inspect
//! ca-status` and `plan` are offline commands.
#![forbid(unsafe_code)]

mod controller;
mod fence;
mod health;
mod html;
mod latency;
mod metrics;
mod run;
mod simulate;

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
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: run::RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Replay scenarios under nth-drain, upstream and booster in virtual time and compare
    /// them. With no arguments: every built-in scenario, every policy, a table.
    Simulate {
        /// A built-in scenario name or a scenario file (YAML); repeat for several.
        /// Built-in: steady, single-signal, storm, long-lead, short-lead, never-interrupted,
        /// ca-scale-up, at-max-size, single-az, pdb-blocking, restart-mid-drain, forged-events,
        /// capacity-rebalance, weighted, az-rebalance, dry-pool, dry-pool-fallback.
        #[arg(long = "scenario", value_name = "NAME|FILE")]
        scenarios: Vec<String>,
        /// `all`, or a comma-separated list of nth-drain, upstream, booster.
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
    },
    /// Read an input the controller consumes and print what it understands of it.
    Inspect {
        #[command(subcommand)]
        what: Inspect,
    },
    /// Offline what-if: read a Snapshot (JSON) and print the Plan the engine makes for it.
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

fn print_json<T: Serialize>(value: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

fn dispatch(cli: Cli) -> Result<()> {
    let Some(command) = cli.command else {
        if cli.run.print_config {
            return run::print_config(&cli.run);
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        return rt.block_on(run::run(cli.run));
    };
    match command {
        Command::Simulate {
            scenarios,
            policy,
            seed,
            json,
            html,
        } => simulate::run(simulate::Args {
            scenarios,
            policy,
            seed,
            json,
            html,
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
        Err(e) => {
            // One line: the context chain, outermost first.
            let msg: Vec<String> = e.chain().map(ToString::to_string).collect();
            eprintln!("error: {}", msg.join(": "));
            ExitCode::FAILURE
        }
    }
}
