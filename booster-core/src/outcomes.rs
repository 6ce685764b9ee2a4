//! How signals ended, per pool (instance type × zone): the evidence `--drain-on adaptive`
//! decides from, kept in the ledger so that a restart does not forget it. Bounded: at most
//! [`MAX_POOLS`] pools, each with its last [`RECENT_KEPT`] outcomes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::time::{Dur, Timestamp};

/// How one rebalance recommendation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SignalOutcome {
    /// An interruption followed: NTH's `spot-itn` taint on the node, or its instance
    /// terminated by somebody other than the booster while the signal was live.
    Interrupted,
    /// The signal expired and no interruption had come.
    NotInterrupted,
    /// Nobody can tell: the booster retired the node first, or gave it back early.
    Unknown,
}

impl SignalOutcome {
    /// Every outcome, in report order (metrics pre-register them).
    pub const ALL: [SignalOutcome; 3] = [
        SignalOutcome::Interrupted,
        SignalOutcome::NotInterrupted,
        SignalOutcome::Unknown,
    ];

    /// The camelCase code (JSON, metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            SignalOutcome::Interrupted => "interrupted",
            SignalOutcome::NotInterrupted => "notInterrupted",
            SignalOutcome::Unknown => "unknown",
        }
    }
}

/// The most pools kept; past it the pool heard from longest ago is dropped.
pub const MAX_POOLS: usize = 200;
/// Outcomes kept per pool for the recent follow-through and lead times.
pub const RECENT_KEPT: usize = 20;

/// A pool's name: `<instance type>/<zone>`, `?` for a part not known.
pub fn pool_key(instance_type: &str, zone: &str) -> String {
    let part = |s: &str| {
        if s.is_empty() {
            "?".to_string()
        } else {
            s.to_string()
        }
    };
    format!("{}/{}", part(instance_type), part(zone))
}

/// One outcome, as the recent history keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recent {
    /// When the outcome was known.
    pub at: Timestamp,
    /// The outcome.
    pub outcome: SignalOutcome,
    /// Recommendation to interruption, for an interruption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead: Option<Dur>,
}

/// The outcomes of one pool's signals.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolOutcomes {
    /// The Auto Scaling group (or NodePool) of its last signal.
    pub group: String,
    /// Counts since the ledger began, by outcome.
    #[serde(default)]
    pub interrupted: u32,
    /// Signals that expired without an interruption.
    #[serde(default)]
    pub not_interrupted: u32,
    /// Signals whose end nobody can tell.
    #[serde(default)]
    pub unknown: u32,
    /// The last [`RECENT_KEPT`] outcomes, oldest first.
    #[serde(default)]
    pub recent: Vec<Recent>,
}

impl PoolOutcomes {
    /// The recent outcomes that say something (interrupted or not), and how many of them
    /// were interruptions.
    pub fn known_recent(&self) -> (u32, u32) {
        let known = self
            .recent
            .iter()
            .filter(|r| r.outcome != SignalOutcome::Unknown);
        let (mut n, mut hit) = (0, 0);
        for r in known {
            n += 1;
            hit += u32::from(r.outcome == SignalOutcome::Interrupted);
        }
        (n, hit)
    }

    /// The last interruption, if one is in the recent history.
    pub fn last_interruption(&self) -> Option<Timestamp> {
        self.recent
            .iter()
            .filter(|r| r.outcome == SignalOutcome::Interrupted)
            .map(|r| r.at)
            .max()
    }

    /// The median recommendation-to-interruption lead time of the recent interruptions.
    pub fn median_lead(&self) -> Option<Dur> {
        let mut leads: Vec<Dur> = self.recent.iter().filter_map(|r| r.lead).collect();
        leads.sort_unstable();
        leads.get(leads.len() / 2).copied()
    }

    fn last_at(&self) -> Timestamp {
        self.recent.last().map_or(Timestamp::EPOCH, |r| r.at)
    }
}

/// The outcomes of every pool, by pool name (see [`pool_key`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Outcomes(pub BTreeMap<String, PoolOutcomes>);

impl Outcomes {
    /// No pool has an outcome yet.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A pool's outcomes, if it has any.
    pub fn pool(&self, pool: &str) -> Option<&PoolOutcomes> {
        self.0.get(pool)
    }

    /// Counts one outcome; drops the pool heard from longest ago past [`MAX_POOLS`].
    pub fn record(&mut self, pool: &str, group: &str, recent: Recent) {
        let p = self.0.entry(pool.to_string()).or_default();
        p.group = group.to_string();
        let count = match recent.outcome {
            SignalOutcome::Interrupted => &mut p.interrupted,
            SignalOutcome::NotInterrupted => &mut p.not_interrupted,
            SignalOutcome::Unknown => &mut p.unknown,
        };
        *count = count.saturating_add(1);
        p.recent.push(recent);
        if p.recent.len() > RECENT_KEPT {
            let extra = p.recent.len() - RECENT_KEPT;
            p.recent = p.recent.split_off(extra);
        }
        while self.0.len() > MAX_POOLS {
            let oldest = self
                .0
                .iter()
                .min_by_key(|(name, p)| (p.last_at(), (*name).clone()))
                .map(|(name, _)| name.clone());
            match oldest {
                Some(name) => self.0.remove(&name),
                None => break,
            };
        }
    }
}
