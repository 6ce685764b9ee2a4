//! An action as one line of text: what the controller logs for it, and what tests and the
//! simulator's property checks quote.

use super::Action;
use crate::ledger::{Boost, Entry};

impl std::fmt::Display for Action {
    /// One line for logs and tests: `setDesired spot 3->4 (boostRecorded)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self.reason();
        match self {
            Action::RecordSignal { node, entry, .. } => {
                write!(f, "recordSignal {node} {} ({r})", entry_words(entry))
            }
            Action::BeginBoost {
                group,
                nodes,
                from,
                to,
                ..
            } => {
                write!(
                    f,
                    "beginBoost {group} [{}] {from}->{to} ({r})",
                    nodes.join(",")
                )
            }
            Action::SetDesired {
                group, from, to, ..
            } => write!(f, "setDesired {group} {from}->{to} ({r})"),
            Action::ConfirmBoost {
                group,
                nodes,
                applied,
                ..
            } => {
                let how = if *applied { "applied" } else { "abandoned" };
                write!(f, "confirmBoost {group} [{}] {how} ({r})", nodes.join(","))
            }
            Action::Cordon { node, .. } => write!(f, "cordon {node} ({r})"),
            Action::Protect { node, for_node, .. } => {
                write!(f, "protect {node} for {for_node} ({r})")
            }
            Action::Unprotect { node, .. } => write!(f, "unprotect {node} ({r})"),
            Action::Steer { node, standby, .. } => {
                let what = if *standby { "standby" } else { "clear" };
                write!(f, "steer {node} {what} ({r})")
            }
            Action::StartDrain { node, attempt, .. } => {
                write!(f, "startDrain {node} #{attempt} ({r})")
            }
            Action::FollowDrain { node, .. } => write!(f, "followDrain {node} ({r})"),
            Action::Retire {
                node, decrement, ..
            } => {
                let how = if *decrement {
                    "decrement"
                } else {
                    "keep-desired"
                };
                write!(f, "retire {node} {how} ({r})")
            }
            Action::Release {
                node,
                uncordon: true,
                ..
            } => write!(f, "release {node} ({r})"),
            Action::Release { node, .. } => write!(f, "release {node} keep-cordon ({r})"),
            Action::Place { node, .. } => write!(f, "place {node} ({r})"),
            Action::Unplace { node, .. } => write!(f, "unplace {node} ({r})"),
            Action::DeleteNodeClaim {
                node, nodeclaim, ..
            } => write!(f, "deleteNodeClaim {node} {nodeclaim} ({r})"),
            Action::RecordOutcome {
                node,
                pool,
                outcome,
                ..
            } => write!(
                f,
                "recordOutcome {node} {} in {pool} ({r})",
                outcome.as_str()
            ),
            Action::Forget { node, .. } => write!(f, "forget {node} ({r})"),
            Action::Hold { node, .. } => write!(f, "hold {node} ({r})"),
        }
    }
}

/// A recorded entry as `recordSignal` shows it: its boost, then ` in <fallback group>`,
/// ` released` and ` cordoned-before` when they apply (`queued:boostRecorded in od`).
fn entry_words(entry: &Entry) -> String {
    let boost = match &entry.boost {
        Boost::Queued { reason } => format!("queued:{reason}"),
        Boost::Applying { from, to, .. } => format!("applying:{from}->{to}"),
        Boost::Applied { to, .. } => format!("applied:{to}"),
        Boost::Placeholders { .. } => "placeholders".to_string(),
        Boost::Abandoned { reason } => format!("abandoned:{reason}"),
    };
    let released = if entry.released_at.is_some() {
        " released"
    } else {
        ""
    };
    let via = entry
        .fallback
        .as_ref()
        .map(|g| format!(" in {g}"))
        .unwrap_or_default();
    let kept = if entry.cordoned_before {
        " cordoned-before"
    } else {
        ""
    };
    format!("{boost}{via}{released}{kept}")
}
