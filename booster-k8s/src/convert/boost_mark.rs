//! The boost mark's annotation value: a ledger entry as JSON, believed only when it is
//! small and well-formed.

/// The longest boost mark read: the booster writes about 300 bytes; anything much larger
/// is not its own.
const BOOST_MARK_MAX: usize = 4096;

/// A boost mark as the booster wrote it, or nothing (somebody else's text is no mark).
pub(super) fn boost_mark_of(v: &str) -> Option<booster_core::Entry> {
    if v.len() > BOOST_MARK_MAX {
        tracing::warn!(bytes = v.len(), "boost mark too large: ignored");
        return None;
    }
    serde_json::from_str(v)
        .inspect_err(|e| tracing::warn!(error = %e, "boost mark unreadable: ignored"))
        .ok()
}

/// The boost mark's annotation value for `entry`.
pub fn boost_mark_value(entry: &booster_core::Entry) -> String {
    serde_json::to_string(entry).unwrap_or_default()
}
