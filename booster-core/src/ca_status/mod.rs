//! The `status` key of cluster-autoscaler's `cluster-autoscaler-status` ConfigMap.
//!
//! Two formats exist in the wild and [`parse`] tells them apart by their first line:
//!
//! ```text
//! "Cluster-autoscaler status at <go time>:"  -> legacy::parse  (CA <= 1.29, text)
//! anything else                              -> yaml::parse    (CA >= 1.30, YAML)
//! ```
//!
//! Both produce the same [`CaStatus`]. Input that is not a CA status gives a
//! [`CaStatusError`] that says what is wrong and where; nothing here panics.

mod legacy;
mod yaml;
pub use yaml::one_line;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// Which of the two formats a status was written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaStatusFormat {
    /// The text format of cluster-autoscaler 1.29 and older.
    Legacy,
    /// The YAML format of cluster-autoscaler 1.30 and newer.
    Yaml,
}

/// A parsed cluster-autoscaler status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaStatus {
    /// The format the status was written in.
    pub format: CaStatusFormat,
    /// When cluster-autoscaler wrote it, if the input says and the time could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Timestamp>,
    /// `Running` or `Initializing` (YAML); `Initializing` or absent (legacy).
    pub autoscaler_status: Option<String>,
    /// One entry per node group, in input order.
    pub node_groups: Vec<CaNodeGroup>,
}

/// What cluster-autoscaler says about one node group (an Auto Scaling group on AWS).
///
/// A count the input lacks is 0; a status word the input lacks is `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaNodeGroup {
    /// The group's name: for AWS, the Auto Scaling group name.
    pub name: String,
    /// Health status word: `Healthy` or `Unhealthy`.
    pub health: Option<String>,
    /// Ready nodes.
    pub ready: u32,
    /// Unready nodes (the total, resource-unready included).
    pub unready: u32,
    /// Nodes registered but not started yet.
    pub not_started: u32,
    /// Nodes registered with Kubernetes.
    pub registered: u32,
    /// Instances that have not registered for a long time.
    pub long_unregistered: u32,
    /// The size cluster-autoscaler believes the cloud is asked for (the group's desired capacity).
    pub cloud_provider_target: u32,
    /// The group's minimum size as cluster-autoscaler sees it.
    pub min_size: u32,
    /// The group's maximum size as cluster-autoscaler sees it.
    pub max_size: u32,
    /// Scale-up status word: `NoActivity`, `InProgress`, `Backoff`, ...
    pub scale_up: Option<String>,
}

impl CaStatus {
    /// The group called `name`, if cluster-autoscaler reports it.
    pub fn group(&self, name: &str) -> Option<&CaNodeGroup> {
        self.node_groups.iter().find(|g| g.name == name)
    }

    /// Whether cluster-autoscaler says it is still initializing.
    pub fn is_initializing(&self) -> bool {
        self.autoscaler_status
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("initializing"))
    }
}

impl CaNodeGroup {
    /// Whether cluster-autoscaler calls the group healthy (a missing health word is not healthy).
    pub fn is_healthy(&self) -> bool {
        self.health.as_deref() == Some("Healthy")
    }

    /// Whether cluster-autoscaler is backing off from scaling this group up (launches failing).
    pub fn is_backing_off(&self) -> bool {
        self.scale_up.as_deref() == Some("Backoff")
    }
}

/// Why an input is not a readable cluster-autoscaler status.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CaStatusError {
    /// Nothing but white space.
    #[error("empty input: not a cluster-autoscaler status")]
    Empty,
    /// The bytes are not UTF-8.
    #[error("not UTF-8 text (invalid byte at offset {offset})")]
    NotUtf8 {
        /// Byte offset of the first invalid sequence.
        offset: usize,
    },
    /// The legacy text format is broken at a line.
    #[error("legacy status, line {line}: {what}")]
    Legacy {
        /// 1-based line number.
        line: usize,
        /// What is wrong there.
        what: String,
    },
    /// The YAML format is broken.
    #[error("YAML status: {message}")]
    Yaml {
        /// The YAML reader's message, which names the line and column.
        message: String,
    },
    /// Well-formed, but not a cluster-autoscaler status.
    #[error("not a cluster-autoscaler status: {0}")]
    NotCaStatus(String),
}

impl CaStatusError {
    /// A short, stable label for metrics (`spots_booster_ca_status_errors_total{kind=...}`).
    pub fn metric_label(&self) -> &'static str {
        match self {
            CaStatusError::Empty => "empty",
            CaStatusError::NotUtf8 { .. } => "not_utf8",
            CaStatusError::Legacy { .. } => "legacy",
            CaStatusError::Yaml { .. } => "yaml",
            CaStatusError::NotCaStatus(_) => "not_ca_status",
        }
    }
}

/// The first line of every legacy status.
const LEGACY_HEADER: &str = "Cluster-autoscaler status at ";

/// Parses the ConfigMap's `status` value, in either format.
pub fn parse(input: &str) -> Result<CaStatus, CaStatusError> {
    let body = input.trim_start_matches('\u{feff}');
    if body.trim().is_empty() {
        return Err(CaStatusError::Empty);
    }
    if body.trim_start().starts_with(LEGACY_HEADER) {
        legacy::parse(body)
    } else {
        yaml::parse(body)
    }
}

/// Parses raw bytes (a file, a ConfigMap's binary data): UTF-8 first, then [`parse`].
pub fn parse_bytes(input: &[u8]) -> Result<CaStatus, CaStatusError> {
    let text = std::str::from_utf8(input).map_err(|e| CaStatusError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    parse(text)
}

/// Shortens a piece of input for an error message, so that garbage cannot flood a log line.
fn excerpt(s: &str) -> String {
    const MAX: usize = 60;
    let mut out: String = s.chars().take(MAX).collect();
    if s.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}
