//! [`SurgeRecord`]: a surge under way, written on its Deployment in the same patch that
//! raises it, so that a booster restarted mid-surge finds it and finishes or undoes it.

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// The longest record read back: anything longer was not written by us.
const MAX_RECORD_BYTES: usize = 2_048;

/// A surge under way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SurgeRecord {
    /// The pod being moved (uid: a new pod of the same name is another pod).
    pub pod_uid: String,
    /// Its name.
    pub pod: String,
    /// The signalled node it is on.
    pub node: String,
    /// `spec.replicas` before the surge, and what it goes back to.
    pub from: i32,
    /// `spec.replicas` during the surge (`from + 1`).
    pub to: i32,
    /// When the surge began.
    pub started: Timestamp,
    /// When it is undone if the successor is not Ready yet.
    pub deadline: Timestamp,
    /// The pod's own deletion cost before we set it, restored if the surge is undone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior_cost: Option<String>,
}

/// Why an annotation is not a record.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Longer than any record we write.
    #[error("surge record of {0} bytes is longer than {MAX_RECORD_BYTES}")]
    TooLong(usize),
    /// Not our JSON.
    #[error("surge record is not valid: {0}")]
    Invalid(#[from] serde_json::Error),
    /// Valid JSON with values no surge of ours has.
    #[error("surge record is not one of ours: {0}")]
    Inconsistent(&'static str),
}

impl SurgeRecord {
    /// Reads the annotation's value.
    pub fn parse(s: &str) -> Result<SurgeRecord, RecordError> {
        if s.len() > MAX_RECORD_BYTES {
            return Err(RecordError::TooLong(s.len()));
        }
        let r: SurgeRecord = serde_json::from_str(s)?;
        if r.to != r.from.saturating_add(1) || r.from < 1 {
            return Err(RecordError::Inconsistent(
                "to must be from + 1, from at least 1",
            ));
        }
        if r.pod_uid.is_empty() || r.node.is_empty() {
            return Err(RecordError::Inconsistent("no pod uid or node"));
        }
        Ok(r)
    }

    /// The annotation's value.
    pub fn to_annotation(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}
