//! # booster-core
//!
//! The pure decision engine of aws-spots-booster. No I/O, no clock, no async runtime:
//!
//! ```text
//!  adapters (k8s, aws)          booster-core                      binary
//!  ───────────────────   ┌──────────────────────────┐   ─────────────────────────
//!  Nodes, Events,   ───▶ │ Snapshot ──decide()──▶ Plan │ ──▶ each Action to its port
//!  CA ConfigMap,         │   (now is a field)         │     (Cluster / Cloud)
//!  Auto Scaling groups   └──────────────────────────┘   next snapshot shows the result
//! ```
//!
//! * [`ca_status`] parses cluster-autoscaler's status ConfigMap in both formats.
//! * [`snapshot`] holds what the adapters observed, [`config`] every tunable.
//! * [`engine::decide`] turns a snapshot into a [`plan::Plan`].
//! * [`ports`] declares what the binary needs from Kubernetes and AWS.
//! * [`ledger`] is the durable state that lives in the cluster and survives restarts.
//! * [`exec::execute`] runs a plan through the ports, in a crash-safe order.
//! * [`failures`] records failed writes, which the engine backs off and gives up on.
//!
//! The simulator that replays scenarios against this engine in virtual time is its own
//! crate, `booster-sim`: an embedder of the engine does not compile it.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms, missing_docs)]
#![warn(clippy::disallowed_methods)]

pub mod ca_status;
pub mod config;
pub mod engine;
pub mod exec;
pub mod failure_log;
pub mod failures;
mod journal;
pub mod ledger;
pub mod outcomes;
pub mod plan;
pub mod ports;
pub mod reason;
pub mod snapshot;
pub mod surge;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod time;

pub use ca_status::{CaNodeGroup, CaStatus, CaStatusError, CaStatusFormat};
pub use config::{AdaptiveRule, BoostMode, Config, DrainOn};
pub use engine::decide;
pub use ledger::{Boost, DrainState, Entry, Ledger};
pub use plan::{Action, Plan, Reason, Rejected, Rejection};
pub use snapshot::{
    CaObservation, Group, GroupKind, Instance, Lifecycle, Node, Placeholders, Signal, SignalSource,
    Snapshot,
};
pub use time::{Dur, Timestamp};
