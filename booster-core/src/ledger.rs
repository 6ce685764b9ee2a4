//! The ledger: what the booster has decided and must remember across restarts.
//!
//! It lives in the cluster (the Kubernetes adapter stores it with optimistic concurrency),
//! never only in memory. Each signalled node has one [`Entry`]; a boost is written here
//! *before* the Auto Scaling call is made (`Applying`), so a controller that restarts at
//! any point sees what it had asked for and never boosts twice for one signal:
//!
//! ```text
//!  RecordSignal ─▶ Queued ──BeginBoost──▶ Applying{from,to} ──ConfirmBoost──▶ Applied
//!        │                                     │ SetDesired(to) only while desired == from
//!        └──────────────▶ Abandoned (no boost: drained without, or expired)
//!  drain: NotStarted ──StartDrain──▶ Draining{since, attempt} ──(pods gone)──▶ Retire
//!  retire: `retiring` stored first, then TerminateInstanceInAutoScalingGroup
//!          (Karpenter NodePools: then the NodeClaim is deleted)
//!  placeholders: RecordSignal ─▶ Placeholders{at} ──Place (stored first, then the pods)
//!          the pods are deleted (Unplace) once the drain ends or the signal is handled
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::outcomes::{Outcomes, SignalOutcome};
use crate::reason::Reason;
use crate::time::Timestamp;

/// Durable state of all signals being handled.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ledger {
    /// One entry per signalled node, by node name.
    #[serde(default)]
    pub entries: BTreeMap<String, Entry>,
    /// When the last drain started, for `time_between_drains` (kept after its entry is gone).
    #[serde(default)]
    pub last_drain_started_at: Option<Timestamp>,
    /// How past signals ended, per pool: `--drain-on adaptive` decides from it, `status`
    /// shows it. Bounded (see [`crate::outcomes`]).
    #[serde(default, skip_serializing_if = "Outcomes::is_empty")]
    pub outcomes: Outcomes,
}

/// One signalled node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// The node's EC2 instance.
    pub instance_id: String,
    /// Its Auto Scaling group.
    pub group: String,
    /// When the signal was issued (the earliest source).
    pub signal_at: Timestamp,
    /// Where the boost stands.
    pub boost: Boost,
    /// Where the drain stands.
    #[serde(default)]
    pub drain: DrainState,
    /// Set when the node was given back (signal expired): the entry then only waits for the
    /// node to go, so that the same signal is not handled again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<Timestamp>,
    /// The group boosted instead of the signal's own, when that one could not launch (a
    /// fallback group): its desired capacity is what `boost` tracks, and its new node is
    /// the replacement. The retire stays in the signal's own group, without decrement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// Written before the terminate call (write-ahead), so that a repeated pass or a restart
    /// never sends a second terminate-with-decrement for one signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retiring: Option<Timestamp>,
    /// The node was already cordoned by somebody else (an operator's maintenance, another
    /// controller) when the signal was recorded: giving it back leaves that cordon.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cordoned_before: bool,
    /// The node's pool (`<instance type>/<zone>`, see [`crate::outcomes::pool_key`]), as
    /// Auto Scaling listed its instance when the signal was recorded.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pool: String,
    /// How the signal ended, once known and counted in [`Ledger::outcomes`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<SignalOutcome>,
}

impl Entry {
    /// The group whose desired capacity this signal's boost raises.
    pub fn boost_group(&self) -> &str {
        self.fallback.as_deref().unwrap_or(&self.group)
    }
}

/// A signal's boost.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum Boost {
    /// Wants a boost that is not allowed yet.
    Queued {
        /// Why it waits.
        reason: Reason,
    },
    /// Recorded; desired capacity is being raised from `from` to `to`.
    Applying {
        /// Desired capacity observed when the boost was recorded.
        from: u32,
        /// Desired capacity asked for (shared by the signals boosted together).
        to: u32,
        /// When it was recorded: replacements are nodes created after this.
        at: Timestamp,
    },
    /// Desired capacity reached the target (or was seen to move past it).
    Applied {
        /// Desired capacity asked for.
        to: u32,
        /// When the boost was recorded.
        at: Timestamp,
        /// Desired capacity was seen at the target (or moved) without our call on record: the
        /// boost is taken as done but may be somebody else's capacity, so its retire will not
        /// decrement.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        assumed: bool,
    },
    /// The capacity is asked for with placeholder pods (a Karpenter NodePool, or
    /// `--boost-mode placeholder`), recorded before they are made: the autoscaler in charge
    /// provisions the replacement, which is the Ready node they run on.
    Placeholders {
        /// When they were asked for.
        at: Timestamp,
    },
    /// This signal gets no boost (its drain started first, or it expired).
    Abandoned {
        /// Why.
        reason: Reason,
    },
}

impl Boost {
    /// When the boost was recorded, for `Applying` and `Applied`.
    pub fn boosted_at(&self) -> Option<Timestamp> {
        match self {
            Boost::Applying { at, .. } | Boost::Applied { at, .. } => Some(*at),
            _ => None,
        }
    }
}

/// A signalled node's drain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum DrainState {
    /// Not started.
    #[default]
    NotStarted,
    /// Evictions are under way.
    Draining {
        /// When this attempt started.
        since: Timestamp,
        /// 1 for the first attempt.
        attempt: u32,
    },
    /// Somebody else was seen evicting the node's pods before the booster drained it: the
    /// booster starts no drain of its own and follows theirs (see [`Reason::DrainedByOthers`]).
    ByOthers {
        /// When it was first seen.
        since: Timestamp,
    },
}

impl DrainState {
    /// Whether the node's pods are being evicted, by the booster or by somebody else: once
    /// none are left, the node is drained.
    pub fn evicting(&self) -> bool {
        !matches!(self, DrainState::NotStarted)
    }
}
