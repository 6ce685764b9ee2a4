//! Runs a [`Plan`](crate::plan::Plan) through the ports, and assembles the snapshot a pass
//! decides on. The binary and the simulator share both, so the simulator exercises the same
//! observation and the same order of writes as production.

mod assemble;
mod outcome;
mod resume;
mod run;

pub use assemble::{snapshot, snapshot_of, snapshot_tolerant, snapshot_without_cloud};
pub use outcome::{Effect, Executed, Outcome};
pub use resume::drains_to_resume;
pub use run::execute;
