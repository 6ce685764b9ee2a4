//! Failed writes, as input to the engine, the way time is.
//!
//! The driver records every failed write per action and object (`FailureLog::note`, in
//! [`crate::failure_log`]), the
//! snapshot carries the records ([`crate::Snapshot::failures`]), and the engine turns them
//! into backoffs (a hold, and its own wake-up when the write may be sent again) and, after
//! a bounded number of refusals for one signal, into a give-back:
//!
//! ```text
//!  call fails ─▶ FailureLog::note (class, in a row, since, last) ─▶ Snapshot.failures
//!      ─▶ decide: before retry_at: Hold{writeBackingOff}, wake at retry_at
//!                 refused `refusals_before_give_up` times for this signal: give it back
//!  call succeeds ─▶ the record is dropped
//! ```
//!
//! Nothing here reads a clock: `now` comes with each call, and the jitter of a backoff is
//! derived from what failed, so that a replay decides the same.

use serde::{Deserialize, Serialize};

use crate::plan::Action;
use crate::time::{Dur, Timestamp};

/// How a call failed, as far as what to do next is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FailureClass {
    /// The service will not do it as asked (AWS AccessDenied, UnauthorizedOperation,
    /// ValidationError; HTTP 401/403/404/422): sending it again changes nothing until
    /// somebody fixes a permission, a tag or the object.
    Refused,
    /// The service asked us to slow down (AWS Throttling, RequestLimitExceeded; HTTP 429).
    Throttled,
    /// The object changed under the write (HTTP 409; desired capacity moved).
    Conflict,
    /// The target is busy (AWS ScalingActivityInProgress, ResourceContention).
    Busy,
    /// No answer: the network, a timeout, a 5xx, leadership running out during the call.
    Unavailable,
}

impl FailureClass {
    /// camelCase, as in JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Refused => "refused",
            FailureClass::Throttled => "throttled",
            FailureClass::Conflict => "conflict",
            FailureClass::Busy => "busy",
            FailureClass::Unavailable => "unavailable",
        }
    }

    /// The first wait after a failure of this class, and the most any later one waits.
    /// Refusals wait longest: only a person's fix makes them pass. Conflicts are re-read
    /// and decided again soon: the next snapshot shows what moved.
    pub fn backoff(self) -> (Dur, Dur) {
        match self {
            FailureClass::Refused => (Dur::from_secs(30), Dur::from_mins(10)),
            FailureClass::Throttled => (Dur::from_secs(5), Dur::from_mins(2)),
            FailureClass::Busy => (Dur::from_secs(10), Dur::from_mins(2)),
            FailureClass::Conflict => (Dur::from_secs(2), Dur::from_secs(30)),
            FailureClass::Unavailable => (Dur::from_secs(5), Dur::from_mins(2)),
        }
    }
}

/// A write the engine plans, as the failure records name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Write {
    /// `SetDesiredCapacity` (and the boost marks written before it), per group.
    SetDesired,
    /// `TerminateInstanceInAutoScalingGroup`, per node.
    Retire,
    /// A Karpenter NodeClaim's delete, per node.
    DeleteNodeClaim,
    /// Placeholder pods made, per node.
    Place,
    /// Placeholder pods deleted, per node.
    Unplace,
    /// A cordon, per node.
    Cordon,
    /// A give-back (uncordon, taint removed, mark cleared), per node.
    Release,
    /// A replacement protected from scale-down, per node.
    Protect,
    /// A replacement's protection removed, per node.
    Unprotect,
    /// The standby taint put on or taken off a replacement, per node.
    Steer,
}

impl Write {
    /// The write an action makes and what it is made on (a group for `SetDesired`, else a
    /// node); `None` for ledger-only actions and holds.
    pub fn of(a: &Action) -> Option<(Write, &str)> {
        Some(match a {
            Action::SetDesired { group, .. } => (Write::SetDesired, group),
            Action::Retire { node, .. } => (Write::Retire, node),
            Action::DeleteNodeClaim { node, .. } => (Write::DeleteNodeClaim, node),
            Action::Place { node, .. } => (Write::Place, node),
            Action::Unplace { node, .. } => (Write::Unplace, node),
            Action::Cordon { node, .. } => (Write::Cordon, node),
            Action::Release { node, .. } => (Write::Release, node),
            Action::Protect { node, .. } => (Write::Protect, node),
            Action::Unprotect { node, .. } => (Write::Unprotect, node),
            Action::Steer { node, .. } => (Write::Steer, node),
            Action::RecordSignal { .. }
            | Action::BeginBoost { .. }
            | Action::ConfirmBoost { .. }
            | Action::StartDrain { .. }
            | Action::FollowDrain { .. }
            | Action::RecordOutcome { .. }
            | Action::Forget { .. }
            | Action::Hold { .. } => return None,
        })
    }

    /// camelCase, as in JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Write::SetDesired => "setDesired",
            Write::Retire => "retire",
            Write::DeleteNodeClaim => "deleteNodeClaim",
            Write::Place => "place",
            Write::Unplace => "unplace",
            Write::Cordon => "cordon",
            Write::Release => "release",
            Write::Protect => "protect",
            Write::Unprotect => "unprotect",
            Write::Steer => "steer",
        }
    }
}

/// The failures in a row of one write on one object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    /// The write.
    pub write: Write,
    /// The group (`setDesired`) or node it was made on.
    pub subject: String,
    /// The class of the last failure.
    pub class: FailureClass,
    /// Failures in a row, the last included.
    pub failures: u32,
    /// Refusals in a row (any other failure class starts them again from zero).
    #[serde(default)]
    pub refusals: u32,
    /// When the first of them happened.
    pub since: Timestamp,
    /// When the last one happened.
    pub last_at: Timestamp,
    /// The last error, as the port said it (cut to [`ERROR_CHARS`] characters).
    pub error: String,
}

/// The longest error text a record keeps: an AWS or apiserver message is a sentence, a
/// proxy's HTML error page is not.
pub const ERROR_CHARS: usize = 300;

impl Failure {
    /// When the write may be sent again: the class's first wait doubled per failure in a
    /// row, capped, then spread by ±25 % (derived from the write, its object and the
    /// count, so that writes failing together do not come back together, and a replay
    /// decides the same).
    pub fn retry_at(&self) -> Timestamp {
        let (first, cap) = self.class.backoff();
        let doublings = self.failures.saturating_sub(1).min(20);
        let wait = first
            .as_millis()
            .saturating_mul(1u64 << doublings)
            .min(cap.as_millis());
        // 0.75 .. 1.25 of the wait.
        let spread = 750 + spread_of(self.write, &self.subject, self.failures) % 500;
        self.last_at
            .plus(Dur::from_millis(wait.saturating_mul(spread) / 1000))
    }
}

/// A stable number from what failed (FNV-1a: no seed, the same in every process).
fn spread_of(write: Write, subject: &str, n: u32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in write
        .as_str()
        .bytes()
        .chain(subject.bytes())
        .chain(n.to_le_bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The records by write and object, for look-ups.
pub fn index(records: &[Failure]) -> rustc_hash::FxHashMap<(Write, &str), &Failure> {
    records
        .iter()
        .map(|f| ((f.write, f.subject.as_str()), f))
        .collect()
}
