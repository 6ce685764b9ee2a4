//! The driver's side of the failure policy: what the executor did with a plan becomes the
//! records of [`crate::failures`] that the next snapshot carries.

use std::collections::BTreeMap;

use crate::exec::Executed;
use crate::failures::{Failure, FailureClass, Write, ERROR_CHARS};
use crate::plan::Plan;
use crate::ports::PortError;
use crate::time::{Dur, Timestamp};

impl FailureClass {
    /// The class of a port error.
    pub fn of(e: &PortError) -> Self {
        match e {
            PortError::Forbidden(_) | PortError::Rejected(_) | PortError::NotFound(_) => {
                FailureClass::Refused
            }
            PortError::Throttled(_) => FailureClass::Throttled,
            PortError::Conflict(_) => FailureClass::Conflict,
            PortError::Busy(_) => FailureClass::Busy,
            PortError::Unavailable(_) => FailureClass::Unavailable,
        }
    }
}

/// The driver's record of failed writes: kept in memory between passes (a restart starts
/// with none, so the first write after it is sent once more), bounded by what the plans
/// name, and forgotten once a write succeeds or has not failed for [`FORGET_AFTER`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FailureLog {
    records: BTreeMap<(Write, String), Failure>,
}

/// A record untouched this long is dropped: longer than any backoff, so a write that keeps
/// failing keeps its count.
pub const FORGET_AFTER: Dur = Dur::from_mins(30);

impl FailureLog {
    /// Takes in what the executor did with `plan` at `now`: a failed write adds to its
    /// record, a write that went through drops it. Actions not executed change nothing.
    pub fn note(&mut self, plan: &Plan, executed: &Executed, now: Timestamp) {
        for o in &executed.outcomes {
            let Some((write, subject)) = plan.actions.get(o.index).and_then(Write::of) else {
                continue;
            };
            let key = (write, subject.to_string());
            match &o.result {
                // Not sent: says nothing of how the write fares.
                Ok(crate::exec::Effect::DryRun | crate::exec::Effect::Held) => {}
                Ok(_) => {
                    self.records.remove(&key);
                }
                Err(e) => self.failed(key, e, now),
            }
        }
        self.records
            .retain(|_, f| now.since(f.last_at) < FORGET_AFTER);
    }

    fn failed(&mut self, key: (Write, String), e: &PortError, now: Timestamp) {
        let class = FailureClass::of(e);
        let error: String = e.to_string().chars().take(ERROR_CHARS).collect();
        let f = self.records.entry(key.clone()).or_insert_with(|| Failure {
            write: key.0,
            subject: key.1,
            class,
            failures: 0,
            refusals: 0,
            since: now,
            last_at: now,
            error: String::new(),
        });
        f.class = class;
        f.failures = f.failures.saturating_add(1);
        f.refusals = if class == FailureClass::Refused {
            f.refusals.saturating_add(1)
        } else {
            0
        };
        f.last_at = now;
        f.error = error;
    }

    /// The records, for the snapshot.
    pub fn records(&self) -> Vec<Failure> {
        self.records.values().cloned().collect()
    }

    /// How many records there are.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}
