//! `aws-spots-booster status [NODE]`: what the booster holds now and why. It observes the
//! cluster (the ledger, the Nodes and their pods, the CA status, NTH's signals) and Auto
//! Scaling as a pass does, and asks the engine for the plan it would make from that, with
//! the flags given. It reads; it never writes (no Lease, no ledger, no Event, no AWS write).

mod explain;
mod pools;
mod read;
mod report;
mod table;
#[cfg(test)]
mod tests;

use anyhow::Result;

use self::report::Report;

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
    let snapshot = read::snapshot(args).await?;
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
